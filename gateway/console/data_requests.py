"""Data requests in the console: the list with each step's deadline on the statutory
calendar (days left, "provisional" where a year's holidays are not known yet), and the
form of whoever's step it is — the administrator's formal review, the providers' review
and their ask to extend it, the administrator's decision on that ask, the provider's
"data provided", the supply that issues the grant (Chengdu rules 004 art. 20).

The rules are ``gateway.requests.service``'s: a form is offered only to who may take
the step now, and its POST calls the same service method as the REST route (which
audits the change as ``request.state``). A refusal shows the list again with the
service's message and the status the REST API would give.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from gateway.auth import engine_of
from gateway.console.pages import (
    PREFIX,
    ConsoleRoute,
    Viewer,
    check_form,
    check_text,
    needs,
    page,
    render,
    status_of,
)
from gateway.errors import GatewayError
from gateway.identity import Account, Role
from gateway.requests import extensions
from gateway.requests.extension_rows import Extension, ExtensionDecision
from gateway.requests.model import MAX_EXTENSION_DAYS, RequestRecord, State
from gateway.requests.service import RequestService, request_service
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Requests = Annotated[Viewer, Depends(page("requests"))]
Admin = Annotated[Viewer, Depends(needs(Role.ADMIN))]
Provider = Annotated[Viewer, Depends(needs(Role.PROVIDER))]
Supplier = Annotated[Viewer, Depends(needs(Role.ADMIN, Role.PROVIDER))]
TERM_DAYS = 365  # the supply form's default term; the grant service caps it
MAX_TEXT = 4000
# The decision form of each step -> the words of its two choices.
CHOICES = {"formal": ("pass", "reject"), "provider": ("approve", "reject")}


def decision_of(service: RequestService, account: Account, record: RequestRecord) -> str | None:
    """The form ``account`` is offered on ``record``: the step it may take now, or None.

    Formal review is the administrators'; provider review each requested dataset's
    provider's, once; supply the administrators' and those providers' (the service's
    rules, which refuse anyone else whatever the page shows)."""
    admin = account.has(Role.ADMIN)
    provides = account.has(Role.PROVIDER) and account.name in service.providers(record)
    if record.state == State.SUBMITTED and admin:
        return "formal"
    if record.state == State.FORMAL_REVIEW_PASSED and provides:
        return None if account.name in record.approvals else "provider"
    if record.state == State.PROVIDER_APPROVED and (admin or provides):
        return "supply"
    if record.state == State.DATA_PROVIDED and admin:
        return "supply"
    return None


def waiting_extension(found: list[Extension]) -> Extension | None:
    """The ask that awaits the city office's decision, if any."""
    return next((e for e in found if e.decision is None), None)


def may_extend(
    service: RequestService, account: Account, record: RequestRecord, found: list[Extension]
) -> bool:
    """Whether the extension form is offered: a provider of the request in its review,
    with no ask waiting and none approved (the service refuses anyone else)."""
    return extensions.can_ask(service, account, record) and all(
        e.decision not in (None, ExtensionDecision.APPROVED) for e in found
    )


def _page(
    request: Request,
    viewer: Viewer,
    *,
    status: int = 200,
    problem: str | None = None,
    failed: str | None = None,
) -> Response:
    service = request_service(request.app)
    now = service.now()
    account = viewer.account
    with read_transaction(engine_of(request)) as conn:
        found = service.visible(conn, account)
        asked = {r.id: extensions.extensions(conn, r.id) for r in found}
    rows = []
    for record in reversed(found):
        waiting = waiting_extension(asked[record.id])
        in_review = record.state == State.FORMAL_REVIEW_PASSED
        rows.append(
            {
                "request": record,
                "deadline": service.deadline(record, now),
                "decision": decision_of(service, account, record),
                "extend": may_extend(service, account, record, asked[record.id]),
                "waiting": waiting,
                "decide": waiting if waiting and in_review and account.has(Role.ADMIN) else None,
                "provide": record.state == State.PROVIDER_APPROVED
                and account.has(Role.PROVIDER)
                and account.name in service.providers(record),
            }
        )
    changed = request.query_params.get("changed")
    notice = next(
        ({"request": r.id, "state": r.state.value, "grant": r.grant_id}
         for r in found if r.id == changed),
        None,
    )  # fmt: skip
    context = {"problem": problem, "failed": failed, "notice": notice}
    return render(request, "requests.html", viewer, status=status, rows=rows, **context)


@router.get("/requests")
def requests(request: Request, viewer: Requests) -> Response:
    return _page(request, viewer)


def _decide(request: Request, viewer: Viewer, request_id: str, step: str, **form: str) -> Response:
    """Check the form, take the step through the service, show the outcome."""
    service = request_service(request.app)
    decision, days = form.get("decision", ""), form.get("days", "")
    if step in CHOICES and decision not in CHOICES[step]:
        return _page(request, viewer, status=422, problem="requests.decision_missing",
                     failed=request_id)  # fmt: skip
    if step == "supply" and not (days.strip().isdigit() and 0 < int(days) <= 100 * 365):
        return _page(request, viewer, status=422, problem="requests.days_invalid",
                     failed=request_id)  # fmt: skip
    if step == "extend" and not (
        days.strip().isdigit() and 0 < int(days) <= MAX_EXTENSION_DAYS and form["reason"].strip()
    ):
        return _page(request, viewer, status=422, problem="requests.extension_invalid",
                     failed=request_id)  # fmt: skip
    if step == "decide" and not (decision in ("approve", "refuse") and form["reason"].strip()):
        return _page(request, viewer, status=422, problem="requests.extension_decision_missing",
                     failed=request_id)  # fmt: skip
    try:
        with engine_of(request).begin() as conn:
            if step == "formal":
                service.formal_review(conn, request_id, viewer.account.name,
                                      passed=decision == "pass", reason=form["reason"],
                                      legal_basis=form["legal_basis"])  # fmt: skip
            elif step == "provider":
                service.provider_review(conn, request_id, viewer.account.name,
                                        approved=decision == "approve", reason=form["reason"],
                                        legal_basis=form["legal_basis"])  # fmt: skip
            elif step == "extend":
                extensions.ask(service, conn, request_id, viewer.account, days=int(days),
                               reason=form["reason"])  # fmt: skip
            elif step == "decide":
                extensions.decide(service, conn, request_id, form["extension"], viewer.account,
                                  approved=decision == "approve",
                                  reason=form["reason"])  # fmt: skip
            elif step == "provide":
                service.provide(conn, request_id, viewer.account)
            else:
                service.supply(conn, request_id, viewer.account, days=int(days))
    except GatewayError as e:
        status = status_of(e)
        if status >= 500:
            raise
        return _page(request, viewer, status=status, problem=str(e), failed=request_id)
    return RedirectResponse(f"{PREFIX}/requests?changed={quote(request_id, safe='')}", 303)


Csrf = Annotated[str, Form(max_length=100)]
Text = Annotated[str, Form(max_length=MAX_TEXT)]


@router.post("/requests/{request_id}/formal-review")
def formal_review(
    request: Request, viewer: Admin, request_id: str, csrf: Csrf = "", decision: Text = "",
    reason: Text = "", legal_basis: Text = "",
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(decision, reason, legal_basis)
    return _decide(request, viewer, request_id, "formal", decision=decision, reason=reason,
                   legal_basis=legal_basis)  # fmt: skip


@router.post("/requests/{request_id}/provider-review")
def provider_review(
    request: Request, viewer: Provider, request_id: str, csrf: Csrf = "", decision: Text = "",
    reason: Text = "", legal_basis: Text = "",
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(decision, reason, legal_basis)
    return _decide(request, viewer, request_id, "provider", decision=decision, reason=reason,
                   legal_basis=legal_basis)  # fmt: skip


@router.post("/requests/{request_id}/supply")
def supply(
    request: Request, viewer: Supplier, request_id: str, csrf: Csrf = "",
    days: Annotated[str, Form(max_length=10)] = str(TERM_DAYS),
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(days)
    return _decide(request, viewer, request_id, "supply", days=days)


@router.post("/requests/{request_id}/provide")
def provide(request: Request, viewer: Provider, request_id: str, csrf: Csrf = "") -> Response:
    check_form(request, viewer.session.csrf, csrf)
    return _decide(request, viewer, request_id, "provide")


@router.post("/requests/{request_id}/extensions")
def ask_extension(
    request: Request, viewer: Provider, request_id: str, csrf: Csrf = "",
    days: Annotated[str, Form(max_length=10)] = "", reason: Text = "",
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(days, reason)
    return _decide(request, viewer, request_id, "extend", days=days, reason=reason)


@router.post("/requests/{request_id}/extensions/{extension_id}/decision")
def decide_extension(
    request: Request, viewer: Admin, request_id: str, extension_id: str, csrf: Csrf = "",
    decision: Text = "", reason: Text = "",
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(decision, reason)
    return _decide(request, viewer, request_id, "decide", decision=decision, reason=reason,
                   extension=extension_id)  # fmt: skip
