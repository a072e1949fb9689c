"""Data requests: the operator states content, use, scenario, purpose and the data needed;
the administrator reviews the form, the providers review the substance, then a grant
supplies it.

Invariants:

- :meth:`RequestService.transition` is the only state change: it moves the
  request through ``gateway.store.lifecycle.transition`` (the
  :data:`DATA_REQUEST` table, a compare-and-set on the state, the step's
  start time from which its deadline counts, the ``request.state`` event),
  in the caller's transaction.
- A rejection carries a non-empty reason and legal basis, or it is refused.
- Provider review passes only when the provider of every requested dataset
  has approved (one approval covers all of that provider's datasets). Each
  provider votes once, as a row of ``request_votes`` (``gateway.requests.votes``);
  the request moves when the last needed approval is counted, or at the
  first rejection. Each approval is audited as it comes.
- Time comes from the service's clock (``clock``), or a caller's ``now``.
- A request asks only for what a grant could hold: known datasets, columns
  visible under the current exposure policy (checked again at supply). Its
  scenario may repeat one the operator holds a grant for (a renewal is asked
  for before the term ends); supply refuses it while that grant is live (one
  scenario, one authorization, names compared as people read them:
  ``GrantService.check_scenario_free``).
- A provider of the request's datasets marks it ``data_provided`` once the data
  is on the city platform; supplying creates the grant and marks the request
  ``supplied`` with the grant's id, in one transaction: from ``data_provided``
  only an administrator (the city office) supplies, from ``provider_approved``
  (provided and delivered at once) an administrator or one of its providers.
- Every deadline counts on the service's statutory calendar (``calendar``) from
  the step's start, whenever it is read (``gateway.requests.steps``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from gateway.audit import append
from gateway.grants.service import GrantService, check_scopes, grant_service
from gateway.identity import Account, Role
from gateway.requests import votes
from gateway.requests.errors import (
    IllegalRequestTransition,
    RequestError,
    RequestForbidden,
)
from gateway.requests.model import (
    DATA_REQUEST,
    DEADLINE_DAYS,
    TRANSITIONS,
    Decision,
    RequestRecord,
    State,
)
from gateway.requests.records import read_request, read_requests
from gateway.requests.steps import Deadline, deadline_of
from gateway.store import lifecycle
from gateway.store.lifecycle import Audit, Clock, IllegalMove, MovedMeanwhile, system_clock
from gateway.store.tables import data_requests
from gateway.workdays import Calendar


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise RequestError("times must be timezone-aware")
    return now.astimezone(UTC)


def _text(value: str | None) -> str:
    return (value or "").strip()


@dataclass
class RequestService:
    grants: GrantService
    deadline_days: Mapping[State, int] = field(default_factory=lambda: dict(DEADLINE_DAYS))
    clock: Clock = system_clock
    calendar: Calendar = field(default_factory=Calendar)

    def now(self, now: datetime | None = None) -> datetime:
        """``now`` as UTC (refusing a naive time), or the clock's time when None."""
        return _utc(self.clock() if now is None else now)

    # -- reading ------------------------------------------------------------------

    def get(self, conn: Connection, request_id: str) -> RequestRecord:
        return read_request(conn, request_id)

    def find(
        self,
        conn: Connection,
        *,
        operator: str | None = None,
        datasets: Iterable[str] | None = None,
    ) -> list[RequestRecord]:
        """Requests, oldest first: of ``operator``, touching any of ``datasets``."""
        found = read_requests(conn, operator=operator)
        if datasets is not None:
            wanted = set(datasets)
            found = [r for r in found if wanted & set(r.datasets)]
        return found

    def visible(self, conn: Connection, account: Account) -> list[RequestRecord]:
        """Rule: operators see their own requests; providers those touching their datasets;
        administrators all of them."""
        if account.has(Role.ADMIN):
            return self.find(conn)
        mine = self.find(conn, operator=account.name) if account.has(Role.OPERATOR) else []
        theirs = (
            self.find(conn, datasets=self.grants.provider_datasets(account.name))
            if account.has(Role.PROVIDER)
            else []
        )
        return list({r.id: r for r in [*mine, *theirs]}.values())

    def deadline(self, request: RequestRecord, now: datetime | None = None) -> Deadline | None:
        """The current step's deadline on the calendar (None once supplied or rejected)."""
        return deadline_of(self.calendar, request, self.deadline_days, self.now(now))

    def providers(self, request: RequestRecord) -> set[str]:
        """The providers whose approval the request needs (one per dataset, maybe shared)."""
        found = {self.grants.provider_of(d) for d in request.datasets}
        return {p for p in found if p is not None}

    def pending_for(self, account: Account, request: RequestRecord) -> bool:
        """Whether ``request`` waits for something ``account`` may do next."""
        admin_steps = (State.SUBMITTED, State.PROVIDER_APPROVED, State.DATA_PROVIDED)
        if account.has(Role.ADMIN) and request.state in admin_steps:
            return True
        if account.has(Role.PROVIDER) and account.name in self.providers(request):
            if request.state == State.FORMAL_REVIEW_PASSED:
                return account.name not in request.approvals
            return request.state == State.PROVIDER_APPROVED
        return (
            account.has(Role.OPERATOR)
            and account.name == request.operator
            and (bool(TRANSITIONS[request.state]))
        )

    def check_read(self, account: Account, request: RequestRecord) -> None:
        """Rule: a request is read by its operator, its datasets' providers and administrators."""
        if not (
            account.has(Role.ADMIN)
            or (account.has(Role.OPERATOR) and account.name == request.operator)
            or (account.has(Role.PROVIDER) and account.name in self.providers(request))
        ):
            raise RequestForbidden(f"{account.name} may not read data request {request.id}")

    # -- the one state change ------------------------------------------------------

    def transition(
        self,
        conn: Connection,
        request_id: str,
        to: State,
        actor: str,
        *,
        reason: str | None = None,
        legal_basis: str | None = None,
        grant_id: str | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        """Move the request to ``to``; a rejection needs ``reason`` and ``legal_basis``.
        IllegalRequestTransition when the table refuses or the request moved meanwhile."""
        now = self.now(now)
        to = State(to)
        request = self.get(conn, request_id)
        reason, legal_basis = _text(reason), _text(legal_basis)
        if DATA_REQUEST.allows(request.state, to):  # a move the table refuses is refused below
            if to == State.REJECTED and not (reason and legal_basis):
                raise RequestError("a rejection must give its reason and its legal basis (both)")
            if to == State.SUPPLIED and not grant_id:
                raise RequestError("a supplied request names the grant that supplies it")
        detail: dict[str, Any] = {}
        if reason:
            detail["reason"] = reason
        if legal_basis:
            detail["legal_basis"] = legal_basis
        if grant_id:
            detail["grant"] = grant_id
        audit = Audit(actor, grant_id=grant_id, datasets=request.datasets, detail=detail)
        values = {
            "step_started_at": now,
            "reason": reason or None,
            "legal_basis": legal_basis or None,
            "grant_id": grant_id,
        }
        try:
            lifecycle.transition(
                conn, DATA_REQUEST, request_id, request.state, to, audit,
                values=values, key_name="request",
            )  # fmt: skip
        except IllegalMove as e:
            raise IllegalRequestTransition(
                f"data request {request_id} cannot go from {request.state} to {to}"
                + (f": {request.state} is final" if not TRANSITIONS[request.state] else "")
            ) from e
        except MovedMeanwhile as e:
            raise IllegalRequestTransition(
                f"data request {request_id} changed state meanwhile: read it again"
            ) from e
        return self.get(conn, request_id)

    # -- steps ----------------------------------------------------------------------

    def create(
        self,
        conn: Connection,
        *,
        operator: str,
        scenario: str,
        purpose: str,
        content: str,
        use: str,
        scopes: Iterable[tuple[str, Sequence[str]]],
        now: datetime | None = None,
    ) -> RequestRecord:
        """Submit a request (state ``submitted``) with its ``request.state`` event."""
        now = self.now(now)
        fields = {"scenario": scenario, "purpose": purpose, "content": content, "use": use}
        missing = [k for k, v in fields.items() if not _text(v)]
        if missing:
            raise RequestError(f"a data request states its {', '.join(missing)}")
        checked = check_scopes(self.grants.registry, self.grants.policies, scopes)
        request_id = "r-" + secrets.token_hex(8)
        conn.execute(
            data_requests.insert().values(
                id=request_id,
                operator=operator,
                scenario=_text(scenario),
                purpose=_text(purpose),
                content=_text(content),
                intended_use=_text(use),
                scopes=[{"dataset": s.dataset, "columns": list(s.columns)} for s in checked],
                state=State.SUBMITTED.value,
                created_at=now,
                step_started_at=now,
                reason=None,
                legal_basis=None,
                grant_id=None,
            )
        )
        append(
            conn,
            "request.state",
            operator,
            datasets=[s.dataset for s in checked],
            detail={
                "request": request_id,
                "from": None,
                "to": State.SUBMITTED.value,
                "scenario": _text(scenario),
                "columns": {s.dataset: list(s.columns) for s in checked},
            },
        )
        return self.get(conn, request_id)

    def formal_review(
        self,
        conn: Connection,
        request_id: str,
        actor: str,
        *,
        passed: bool,
        reason: str | None = None,
        legal_basis: str | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        to = State.FORMAL_REVIEW_PASSED if passed else State.REJECTED
        return self.transition(
            conn, request_id, to, actor, reason=reason, legal_basis=legal_basis, now=now
        )

    def provider_review(
        self,
        conn: Connection,
        request_id: str,
        provider: str,
        *,
        approved: bool,
        reason: str | None = None,
        legal_basis: str | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        """One provider's decision: a rejection ends the request; the last approval passes it."""
        request = self.get(conn, request_id)
        needed = self.providers(request)
        if provider not in needed:
            raise RequestForbidden(
                f"{provider} provides none of the datasets of data request {request_id}"
            )
        if request.state != State.FORMAL_REVIEW_PASSED:
            raise IllegalRequestTransition(
                f"data request {request_id} is {request.state}: provider review needs "
                f"{State.FORMAL_REVIEW_PASSED}"
            )
        if not approved:
            reason, legal_basis = _text(reason), _text(legal_basis)
            if not (reason and legal_basis):
                raise RequestError("a rejection must give its reason and its legal basis (both)")
        now = self.now(now)
        decision = Decision.APPROVED if approved else Decision.REJECTED
        votes.cast(conn, request_id, provider, decision, now)
        if not approved:
            return self.transition(
                conn,
                request_id,
                State.REJECTED,
                provider,
                reason=reason,
                legal_basis=legal_basis,
                now=now,
            )
        counted = self.get(conn, request_id)
        waiting = sorted(needed - set(counted.approvals))
        if not waiting:
            return self.transition(conn, request_id, State.PROVIDER_APPROVED, provider, now=now)
        append(
            conn,
            "request.state",
            provider,
            datasets=request.datasets,
            detail={
                "request": request_id,
                "from": request.state.value,
                "to": request.state.value,
                "approved_by": provider,
                "waiting_for": waiting,
            },
        )
        return counted

    def supply(
        self,
        conn: Connection,
        request_id: str,
        account: Account,
        *,
        valid_until: datetime | None = None,
        days: int | None = None,
        valid_from: datetime | None = None,
        now: datetime | None = None,
    ) -> RequestRecord:
        """Issue the grant the request asked for, for a term ending at ``valid_until`` or
        ``days`` after its start (``GrantService.create``), and mark it ``supplied``.

        Rule: administrators supply; providers of one of the requested datasets too, while
        the data is not marked provided (provided and delivered at once).
        """
        request = self.get(conn, request_id)
        provides = account.has(Role.PROVIDER) and account.name in self.providers(request)
        if not (account.has(Role.ADMIN) or (provides and request.state != State.DATA_PROVIDED)):
            raise RequestForbidden(
                f"{account.name} provides none of the datasets of data request {request_id}"
            )
        if State.SUPPLIED not in TRANSITIONS[request.state]:
            raise IllegalRequestTransition(
                f"data request {request_id} cannot go from {request.state} to {State.SUPPLIED}"
            )
        grant = self.grants.create(
            conn,
            operator=request.operator,
            scenario=request.scenario,
            purpose=request.purpose,
            scopes=[(s.dataset, s.columns) for s in request.scopes],
            valid_from=valid_from,
            valid_until=valid_until,
            days=days,
            actor=account.name,
            request_id=request_id,
            now=now,
        )
        return self.transition(
            conn, request_id, State.SUPPLIED, account.name, grant_id=grant.id, now=now
        )

    def provide(
        self, conn: Connection, request_id: str, account: Account, *, now: datetime | None = None
    ) -> RequestRecord:
        """Mark an approved request's data as provided to the city platform (art. 20: within
        20 working days of approval); delivery's 10 working days start.

        Rule: only a provider of one of the requested datasets marks its data provided."""
        request = self.get(conn, request_id)
        if not (account.has(Role.PROVIDER) and account.name in self.providers(request)):
            raise RequestForbidden(
                f"{account.name} provides none of the datasets of data request {request_id}"
            )
        return self.transition(conn, request_id, State.DATA_PROVIDED, account.name, now=now)


def request_service(app: Any) -> RequestService:
    """The application's request service: the grant service's clock, the app's calendar."""
    grants = grant_service(app)
    return RequestService(grants, dict(DEADLINE_DAYS), grants.clock, app.state.calendar)
