"""Extending a data request's provider review: a provider asks, the city office decides.

Stage: a data request's provider review. Serves Chengdu rules 004 art. 20: a
provider who needs longer than 10 working days asks the city office
(市城市运行和政务服务办, here the administrators) to agree, the implementing
agency is told, and the extension is at most 10 working days.

Invariants:

- Only a provider of one of the request's datasets asks, only while the request
  is in provider review, for 1 to :data:`MAX_EXTENSION_DAYS` working days with a
  reason. While an ask waits for its decision, or once one was approved, no
  other ask is taken: at most one approved extension per request, so its total
  is at most :data:`MAX_EXTENSION_DAYS`.
- Only an administrator decides, once, with a reason, while the request is still
  in provider review. An approval's days join the provider-review deadline
  (``gateway.requests.steps``).
- Each ask and decision is audited (``request.extension``) and told, in the
  same transaction: the ask to the administrators, the decision back to the
  provider who asked (and to the administrators, who oversee every request).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Connection

from gateway.audit import append
from gateway.identity import Account, Role
from gateway.notices.service import ADMINISTRATORS, notify, to_account
from gateway.requests import extension_rows
from gateway.requests.errors import (
    IllegalRequestTransition,
    RequestError,
    RequestForbidden,
    UnknownExtension,
)
from gateway.requests.extension_rows import Extension, ExtensionDecision
from gateway.requests.model import MAX_EXTENSION_DAYS, RequestRecord, State
from gateway.requests.service import RequestService

EVENT = "request.extension"


def _in_review(request: RequestRecord, what: str) -> None:
    if request.state != State.FORMAL_REVIEW_PASSED:
        raise IllegalRequestTransition(
            f"data request {request.id} is {request.state}: {what} only during provider review"
        )


def _audit(conn: Connection, actor: str, request: RequestRecord, extension: Extension) -> None:
    detail: dict[str, object] = {
        "request": request.id,
        "extension": extension.id,
        "days": extension.days,
        "decision": extension.decision.value if extension.decision else "asked",
        "reason": extension.decision_reason if extension.decision else extension.reason,
    }
    append(conn, EVENT, actor, datasets=request.datasets, detail=detail)


def check_ask(service: RequestService, account: Account, request: RequestRecord) -> None:
    """Rule: a provider of one of the request's datasets asks for an extension."""
    if not (account.has(Role.PROVIDER) and account.name in service.providers(request)):
        raise RequestForbidden(
            f"{account.name} provides none of the datasets of data request {request.id}"
        )


def can_ask(service: RequestService, account: Account, request: RequestRecord) -> bool:
    """Whether ``account`` may ask to extend ``request``'s provider review now."""
    return (
        account.has(Role.PROVIDER)
        and account.name in service.providers(request)
        and request.state == State.FORMAL_REVIEW_PASSED
    )


def ask(
    service: RequestService,
    conn: Connection,
    request_id: str,
    account: Account,
    *,
    days: int,
    reason: str,
    now: datetime | None = None,
) -> Extension:
    """Ask the city office for ``days`` more working days of provider review."""
    at = service.now(now)
    request = service.get(conn, request_id)
    check_ask(service, account, request)
    reason = (reason or "").strip()
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise RequestError(f"an extension is 1 to {MAX_EXTENSION_DAYS} working days, not {days}")
    if not reason:
        raise RequestError("an extension states its reason")
    _in_review(request, "an extension is asked")
    extension_rows.serialise(conn, request_id)
    for earlier in extensions(conn, request_id):
        if earlier.decision is None:
            raise IllegalRequestTransition(
                f"extension {earlier.id} of data request {request_id} awaits its decision"
            )
        if earlier.decision == ExtensionDecision.APPROVED:
            raise IllegalRequestTransition(
                f"data request {request_id} was extended already (once, by at most "
                f"{MAX_EXTENSION_DAYS} working days)"
            )
    made = Extension(
        "x-" + secrets.token_hex(8), request_id, account.name, days, reason, at,
        None, None, None, None,
    )  # fmt: skip
    extension_rows.insert(conn, made)
    _audit(conn, account.name, request, made)
    notify(
        conn,
        key=f"request:{request_id}:extension:{made.id}:asked",
        kind="request.extension",
        subject=f"data request {request_id}: {account.name} asks {days} more working days",
        audiences=[ADMINISTRATORS],
        at=at,
        detail={"request": request_id, "extension": made.id, "days": days},
        datasets=request.datasets,
    )
    return made


def decide(
    service: RequestService,
    conn: Connection,
    request_id: str,
    extension_id: str,
    account: Account,
    *,
    approved: bool,
    reason: str,
    now: datetime | None = None,
) -> Extension:
    """The city office approves or refuses an ask, with its reason.

    Rule: only an administrator decides an extension."""
    at = service.now(now)
    if not account.has(Role.ADMIN):
        raise RequestForbidden(f"{account.name} may not decide extensions (administrators do)")
    reason = (reason or "").strip()
    if not reason:
        raise RequestError("a decision on an extension states its reason")
    request = service.get(conn, request_id)
    extension_rows.serialise(conn, request_id)
    found = next((e for e in extensions(conn, request_id) if e.id == extension_id), None)
    if found is None:
        raise UnknownExtension(f"data request {request_id} has no extension {extension_id!r}")
    _in_review(request, "an extension is decided")
    decision = ExtensionDecision.APPROVED if approved else ExtensionDecision.REFUSED
    if not extension_rows.record_decision(conn, extension_id, decision, account.name, reason, at):
        raise IllegalRequestTransition(f"extension {extension_id} was decided already")
    decided = Extension(
        found.id, request_id, found.provider, found.days, found.reason, found.asked_at,
        decision, account.name, reason, at,
    )  # fmt: skip
    _audit(conn, account.name, request, decided)
    notify(
        conn,
        key=f"request:{request_id}:extension:{extension_id}:{decision.value}",
        kind="request.extension",
        subject=f"data request {request_id}: extension of {found.days} working days {decision}",
        audiences=[to_account(found.provider), ADMINISTRATORS],
        at=at,
        detail={"request": request_id, "extension": extension_id, "decision": decision.value},
        datasets=request.datasets,
    )
    return decided


def extensions(conn: Connection, request_id: str) -> list[Extension]:
    """The request's extensions, oldest first."""
    return extension_rows.extensions_of(conn, [request_id]).get(request_id, [])
