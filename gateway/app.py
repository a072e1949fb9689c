"""The gateway: one FastAPI application for operators, providers, reviewers,
administrators and auditors.

``create_app(settings)`` builds it: the store is opened and migrated, routes
are versioned under ``/v1``, OpenAPI is served at ``/openapi.json`` (and
``/docs``). Every service the routes share is built here, once per app, and
kept on ``app.state`` (the grant service with its suspension hooks, the one
scope policy, the catalogue, the provider service, the console's sessions);
nothing is a process-wide registry, so two apps in one process share
nothing. What the app owns it closes at shutdown: the job runtime's checker
processes, the HE evaluation sandbox. Before any route, a request's body size and text are checked
(``gateway.inputs``). Domain errors know nothing of HTTP; ``_status`` maps
them to status codes in one place, and no response ever carries a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.admin.router import router as admin_router
from gateway.audit.checkpointer import start_checkpoints, stop_checkpoints
from gateway.audit.router import router as audit_router
from gateway.auth import current_account
from gateway.catalog.router import router as catalog_router
from gateway.catalog.service import CatalogService
from gateway.console import is_console, no_route
from gateway.console import router as console_router
from gateway.console import static_files as console_static
from gateway.console.sessions import Sessions
from gateway.costs.errors import CostError, CostForbidden
from gateway.costs.router import router as costs_router
from gateway.errors import AuditError, ConfigurationError, GatewayError, StoreError
from gateway.feedback.errors import FeedbackConflict, FeedbackError, FeedbackForbidden, UnknownIssue
from gateway.feedback.router import router as feedback_router
from gateway.grants.errors import GrantConflict, GrantError, GrantForbidden, UnknownGrant
from gateway.grants.router import router as grants_router
from gateway.grants.service import build_grant_service, grant_service
from gateway.he.errors import (
    HEConflict,
    HEForbidden,
    HEProductError,
    HERateLimited,
    HETooLarge,
    HEUnavailable,
    UnknownHEProduct,
)
from gateway.he.model import suspend_grant_products, withdraw_grant_products
from gateway.he.router import router as he_router
from gateway.identity import Account, AccountExists, IdentityError, UnknownAccount
from gateway.incidents.errors import (
    IncidentConflict,
    IncidentError,
    IncidentForbidden,
    UnknownIncident,
)
from gateway.incidents.router import router as incidents_router
from gateway.inputs import BodyLimit, plain_text, validation_failed
from gateway.jobs.errors import (
    CodeRejected,
    Conflict,
    Forbidden,
    NotConfigured,
    NotFound,
    QueueFull,
)
from gateway.jobs.router import router as jobs_router
from gateway.jobs.service import cancel_queued_for_grant
from gateway.jobs.worker import JobRuntime, start_worker, stop_worker
from gateway.metering.errors import MeteringError, MeteringForbidden
from gateway.metering.router import router as metering_router
from gateway.metrics.registry import build_metrics
from gateway.metrics.router import router as metrics_router
from gateway.notices.router import router as notices_router
from gateway.organisations.errors import OrganisationError, OrganisationExists, UnknownOrganisation
from gateway.organisations.router import router as organisations_router
from gateway.portal.router import router as portal_router
from gateway.portal.router import static_files as portal_static
from gateway.pricing.errors import PricingConflict, PricingError, PricingForbidden
from gateway.pricing.router import router as pricing_router
from gateway.products.router import router as products_router
from gateway.providers.router import router as providers_router
from gateway.providers.service import (
    DatasetForbidden,
    ProviderError,
    ProviderService,
    UnknownDataset,
    UploadTooLarge,
)
from gateway.refusals import DenialLog, answer
from gateway.reports.errors import ReportError, ReportForbidden, UnknownSubject
from gateway.reports.router import router as reports_router
from gateway.requests.errors import (
    IllegalRequestTransition,
    RequestError,
    RequestForbidden,
    UnknownRequest,
)
from gateway.requests.router import router as requests_router
from gateway.reviews.router import router as reviews_router
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate
from gateway.store.lifecycle import Clock, system_clock
from gateway.sweep.router import router as sweep_router
from gateway.terminations.router import router as terminations_router
from gateway.workdays import CALENDAR_FILE, Calendar
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry

log = logging.getLogger("dsr.gateway")

# Most specific first.
_STATUS: tuple[tuple[type[GatewayError], int], ...] = (
    (UnknownGrant, 404),
    (GrantForbidden, 403),
    (GrantConflict, 409),
    (GrantError, 422),
    (UnknownRequest, 404),
    (RequestForbidden, 403),
    (IllegalRequestTransition, 409),
    (RequestError, 422),
    (UnknownDataset, 404),
    (DatasetForbidden, 403),
    (UploadTooLarge, 413),
    (ProviderError, 422),
    (UnknownHEProduct, 404),
    (HEForbidden, 403),
    (HEConflict, 409),
    (HETooLarge, 413),
    (HEUnavailable, 503),
    (HERateLimited, 429),
    (HEProductError, 422),
    (MeteringForbidden, 403),
    (MeteringError, 422),
    (PricingForbidden, 403),
    (PricingConflict, 409),
    (PricingError, 422),
    (CostForbidden, 403),
    (CostError, 422),
    (UnknownSubject, 404),
    (ReportForbidden, 403),
    (ReportError, 422),
    (UnknownIncident, 404),
    (IncidentForbidden, 403),
    (IncidentConflict, 409),
    (IncidentError, 422),
    (UnknownOrganisation, 404),
    (OrganisationExists, 409),
    (OrganisationError, 422),
    (UnknownIssue, 404),
    (FeedbackForbidden, 403),
    (FeedbackConflict, 409),
    (FeedbackError, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (CodeRejected, 422),
    (QueueFull, 429),
    (NotConfigured, 503),
    (AccountExists, 409),
    (UnknownAccount, 404),
    (IdentityError, 422),
    (AuditError, 422),
    (StoreError, 503),
    (ConfigurationError, 500),
)


def _status(error: GatewayError) -> int:
    return next((code for kind, code in _STATUS if isinstance(error, kind)), 400)


def create_app(
    settings: GatewaySettings | None = None,
    runtime: JobRuntime | None = None,
    *,
    clock: Clock = system_clock,
) -> FastAPI:
    """The gateway; ``runtime`` (see ``gateway.runtime.build_runtime``) runs jobs;
    ``clock`` is the time every service's state changes and deadlines take."""
    settings = settings or GatewaySettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The job worker runs where whoever built the app gave it a sandbox
        # (app.state.runtime) and a grant resolver (app.state.grant_resolver);
        # app.state.worker_autostart = False leaves starting it to the caller.
        state = app.state
        configured = getattr(state, "runtime", None) and getattr(state, "grant_resolver", None)
        if configured and getattr(state, "worker_autostart", True):
            start_worker(app)
        start_checkpoints(app)  # signed heads of the audit chain (gateway.audit.checkpointer)
        try:
            yield
        finally:
            stop_worker(app)
            app.state.denials.flush(everything=True)  # the last minute's refusals
            stop_checkpoints(app)  # after the worker's last events: a last checkpoint
            he = getattr(state, "he", None)
            if he is not None:
                he.evaluator.close()  # the HE evaluation sandbox (gateway.he.sandboxed)
            if runtime is not None and runtime.checkers is not None:
                runtime.checkers.close()  # this app's checker processes, not another's

    app = FastAPI(
        lifespan=lifespan,
        title="Data-sandbox runtime gateway",
        version="1",
        description="Operators submit jobs under grants; providers, reviewers, "
        "administrators and auditors govern what leaves.",
        dependencies=[Depends(plain_text)],
    )
    # Dataset uploads stream to disk under their own cap (gateway.providers); so do
    # the contexts and ciphertexts of privacy-computing products (gateway.he).
    exempt = {("POST", "/v1/datasets"), ("POST", "/v1/he/contexts")}
    exempt |= {("POST", f"/v1/he/products/{{product_id}}/{call}") for call in ("verify", "score")}
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, exempt=exempt)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.state.settings = settings
    app.state.engine = engine
    app.state.denials = DenialLog(engine)  # access.denied, per actor and minute
    registry = Registry(settings.data_dir)
    app.state.registry = registry
    app.state.clock = clock
    app.state.calendar = Calendar.from_file(
        settings.calendar_file or settings.data_dir / CALENDAR_FILE
    )
    if runtime is not None:
        app.state.runtime = runtime
    # Jobs find their grant through the grant service (expiry enforced on every use).
    app.state.grant_resolver = lambda conn, grant_id: grant_service(app).active_grant(
        conn, grant_id
    )
    # Suspending a grant cancels its queued jobs and suspends its products in the same
    # transaction: the hooks belong to this app's grant service alone.
    grants = build_grant_service(
        settings,
        engine,
        registry,
        on_suspend=(cancel_queued_for_grant, suspend_grant_products),
        on_end=(withdraw_grant_products,),
        clock=clock,
    )
    app.state.grants = grants
    app.state.scope = grants.scope  # the app's one scope policy (job checks see changes at once)
    app.state.catalog = CatalogService(engine, grants, grants.scope, settings.data_dir / "cache")
    app.state.provider_service = ProviderService(registry, PolicyStore(registry.root), engine)
    app.state.console_sessions = Sessions()
    app.state.metrics = build_metrics(app)  # this app's own registry (gateway.metrics)

    # Every refusal: a reference in the body and the log, no internals in the body, and
    # an access.denied event for a 403 (gateway.refusals).
    @app.exception_handler(GatewayError)
    async def domain_error(request: Request, error: GatewayError) -> JSONResponse:
        status = _status(error)
        problems = getattr(error, "problems", None)
        detail: Any = str(error)
        if isinstance(problems, list):
            detail = {"message": str(error), "problems": problems}
        headers = getattr(error, "headers", None)
        return await run_in_threadpool(answer, request, status, detail, error, headers)

    @app.exception_handler(StarletteHTTPException)
    async def no_such_route(request: Request, error: StarletteHTTPException) -> Response:
        # Under /console a missing route or method is an HTML page like the console's own.
        if is_console(request.url.path):
            return no_route(request, error)
        return await run_in_threadpool(
            answer, request, error.status_code, error.detail, error, error.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return await run_in_threadpool(answer, request, 500, None, error)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/me", tags=["meta"])
    def me(account: Annotated[Account, Depends(current_account)]) -> dict[str, Any]:
        return {"name": account.name, "roles": sorted(account.roles)}

    app.include_router(admin_router)
    app.include_router(audit_router)
    app.include_router(jobs_router)
    app.include_router(reviews_router)
    app.include_router(products_router)
    app.include_router(grants_router)
    app.include_router(requests_router)
    app.include_router(providers_router)
    app.include_router(he_router)
    app.include_router(catalog_router)
    app.include_router(notices_router)
    app.include_router(sweep_router)  # its lifespan runs the scheduler inside the app's
    app.include_router(terminations_router)
    app.include_router(incidents_router)
    app.include_router(organisations_router)
    app.include_router(feedback_router)
    app.include_router(metering_router)
    app.include_router(pricing_router)
    app.include_router(costs_router)
    app.include_router(reports_router)
    app.include_router(portal_router)  # /v1/public in the OpenAPI document, /portal not
    app.mount("/portal/static", portal_static(), name="portal-static")
    app.include_router(metrics_router)
    app.include_router(console_router)  # HTML pages, left out of the OpenAPI document
    app.mount("/console/static", console_static(), name="console-static")
    return app
