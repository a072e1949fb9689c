"""The gateway: one FastAPI application for operators, providers, reviewers,
administrators and auditors.

``create_app(settings)`` builds it: the store is opened and migrated, routes
are versioned under ``/v1``, OpenAPI is served at ``/openapi.json`` (and
``/docs``). Domain errors know nothing of HTTP; ``_status`` maps them to
status codes in one place, and no response ever carries a traceback.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.admin.router import router as admin_router
from gateway.audit.router import router as audit_router
from gateway.auth import current_account
from gateway.errors import AuditError, ConfigurationError, GatewayError, StoreError
from gateway.identity import Account, AccountExists, IdentityError, UnknownAccount
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate
from sandbox.registry import Registry

log = logging.getLogger("dsr.gateway")

# Most specific first.
_STATUS: tuple[tuple[type[GatewayError], int], ...] = (
    (AccountExists, 409),
    (UnknownAccount, 404),
    (IdentityError, 422),
    (AuditError, 422),
    (StoreError, 503),
    (ConfigurationError, 500),
)


def _status(error: GatewayError) -> int:
    return next((code for kind, code in _STATUS if isinstance(error, kind)), 400)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    app = FastAPI(
        title="Data-sandbox runtime gateway",
        version="1",
        description="Operators submit jobs under grants; providers, reviewers, "
        "administrators and auditors govern what leaves.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.registry = Registry(settings.data_dir)

    @app.exception_handler(GatewayError)
    async def domain_error(request: Request, error: GatewayError) -> JSONResponse:
        status = _status(error)
        if status >= 500:
            log.error("%s on %s %s: %s", type(error).__name__, request.method, request.url, error)
            return JSONResponse({"detail": "the gateway cannot serve this now"}, status)
        return JSONResponse({"detail": str(error)}, status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url)
        return JSONResponse({"detail": "internal error; it has been logged"}, 500)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/me", tags=["meta"])
    def me(account: Annotated[Account, Depends(current_account)]) -> dict[str, Any]:
        return {"name": account.name, "roles": sorted(account.roles)}

    app.include_router(admin_router)
    app.include_router(audit_router)
    return app
