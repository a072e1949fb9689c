"""Proposing, requesting, deciding, withdrawing and taking effect of terminations.

Stage: governing a grant. Serves Chengdu implementation rules (004) art. 24 and 33,
Chengdu draft (002) art. 26 and Chongqing authorized-operation measures (001) art. 22.

Invariants:

- A termination states its basis: a reason and a legal basis (an operator's request
  and a missed rectification deadline carry theirs, art. 24 para. 2 and art. 33).
- Who: a provider of one of the grant's datasets or an administrator proposes; the
  grant's operator requests, listing the grant's datasets; only an administrator
  (acting for the data authority) approves or refuses; the proposer withdraws its
  own (an administrator one the system raised) before effect.
- An operator's request lists every dataset of the grant: a grant's scope lines are
  one set that ends whole, so a partial list is refused with a message saying so.
- Notice period: ``effective_after`` is the end of the ``notice_days``-th working
  day (``gateway.workdays.Calendar``) after the proposal's day; nothing takes effect
  before it, nor without approval.
- Taking effect moves the termination to ``effective`` by compare-and-set *before*
  revoking the grant through ``GrantService.transition`` (scope lines removed, copies
  destroyed and recorded), in one transaction: two sweeps at once revoke it once.
- Every move is a ``transition()`` on the :data:`TERMINATION` table (audited as
  ``termination.state``); notices go through ``gateway.notices.service.notify``
  with a key per termination and step, so each is written once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.audit import append
from gateway.audit.chain import SYSTEM
from gateway.grants.model import LIVE, GrantRecord
from gateway.grants.model import State as GrantState
from gateway.grants.service import GrantService
from gateway.identity import Account, Role
from gateway.notices.service import ADMINISTRATORS, notify, to_account
from gateway.store.lifecycle import Audit, Clock, MovedMeanwhile, system_clock, transition
from gateway.store.tables import he_products, terminations
from gateway.terminations.errors import (
    TerminationConflict,
    TerminationError,
    TerminationForbidden,
    UnknownTermination,
)
from gateway.terminations.model import (
    REQUEST_BASIS,
    TERMINATION,
    Kind,
    State,
    TerminationRecord,
)
from gateway.workdays import Calendar

NOTICE = "termination"  # the notices' kind


def _record(row: sa.Row[Any]) -> TerminationRecord:
    m = row._mapping
    return TerminationRecord(
        id=m["id"],
        grant_id=m["grant_id"],
        kind=Kind(m["kind"]),
        datasets=tuple(m["datasets"]),
        reason=m["reason"],
        legal_basis=m["legal_basis"],
        proposed_by=m["proposed_by"],
        proposed_at=m["proposed_at"],
        effective_after=m["effective_after"],
        provisional=bool(m["provisional"]),
        state=State(m["state"]),
        state_changed_at=m["state_changed_at"],
        decided_by=m["decided_by"],
        decision_reason=m["decision_reason"],
        origin=m["origin"],
    )


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise TerminationError(f"a termination states its {what}")
    return value


@dataclass
class TerminationService:
    """Terminations of the grants of ``grants``, their notice periods on ``calendar``."""

    grants: GrantService
    calendar: Calendar
    notice_days: int = 10
    clock: Clock = system_clock

    # -- reading --------------------------------------------------------------------

    def get(self, conn: Connection, termination_id: str) -> TerminationRecord:
        row = conn.execute(sa.select(terminations).where(terminations.c.id == termination_id))
        found = row.first()
        if found is None:
            raise UnknownTermination(f"no termination {termination_id!r}")
        return _record(found)

    def find(self, conn: Connection) -> list[TerminationRecord]:
        """Every termination, oldest first."""
        query = sa.select(terminations).order_by(terminations.c.proposed_at, terminations.c.id)
        return [_record(r) for r in conn.execute(query)]

    def can_see(self, account: Account, grant: GrantRecord) -> bool:
        """Rule: administrators see every termination, providers those of grants on their
        datasets, operators those of their own grants."""
        return grant.operator == account.name or self.grants.can_govern(
            account.name, account.roles, grant
        )

    def visible(self, conn: Connection, account: Account) -> list[TerminationRecord]:
        found = self.find(conn)
        grants = {g.id: g for g in self.grants.find(conn)} if found else {}
        return [t for t in found if self.can_see(account, grants[t.grant_id])]

    def shown(self, conn: Connection, account: Account, termination_id: str) -> TerminationRecord:
        """The termination, if ``account`` may see it (404 otherwise: not even that it is)."""
        found = self.get(conn, termination_id)
        if not self.can_see(account, self.grants.get(conn, found.grant_id)):
            raise UnknownTermination(f"no termination {termination_id!r}")
        return found

    # -- proposing ------------------------------------------------------------------

    def propose(
        self, conn: Connection, account: Account, grant_id: str, reason: str, legal_basis: str
    ) -> TerminationRecord:
        """Rule: an administrator or a provider of one of the grant's datasets proposes
        ending a live grant, with a reason and a legal basis."""
        grant = self.grants.get(conn, grant_id)
        if not self.grants.can_govern(account.name, account.roles, grant):
            raise TerminationForbidden(
                f"{account.name} is not a provider of any dataset of grant {grant_id}"
            )
        return self._made(self._open(
            conn, grant, Kind.PROPOSAL, grant.datasets, _text(reason, "reason"),
            _text(legal_basis, "legal basis"), account.name,
        ))  # fmt: skip

    def request(
        self, conn: Connection, account: Account, grant_id: str, datasets: Iterable[str],
        reason: str,
    ) -> TerminationRecord:  # fmt: skip
        """Rule: the grant's operator asks to end supply with the list of its data, which
        must be every dataset of the grant (a grant ends whole)."""
        grant = self.grants.get(conn, grant_id)
        if grant.operator != account.name:
            raise TerminationForbidden(f"grant {grant_id} is not {account.name}'s")
        listed = sorted(set(datasets))
        if listed != sorted(grant.datasets):
            raise TerminationError(
                f"a request to end supply lists the data it ends: grant {grant_id} covers "
                f"{', '.join(sorted(grant.datasets))}, and a grant ends whole (its scope is one "
                "set), so list every one of them"
            )
        return self._made(self._open(
            conn, grant, Kind.REQUEST, tuple(listed), _text(reason, "reason"), REQUEST_BASIS,
            account.name,
        ))  # fmt: skip

    def raise_once(
        self, conn: Connection, grant: GrantRecord, *, kind: Kind, reason: str,
        legal_basis: str, origin: str, now: datetime,
    ) -> TerminationRecord | None:  # fmt: skip
        """A proposal by the system for the event ``origin``, unless one was raised for it
        already (by this sweep or another at once): the new record, or None."""
        return self._open(
            conn, grant, kind, grant.datasets, reason, legal_basis, SYSTEM, origin=origin,
            now=now,
        )  # fmt: skip

    def _open(
        self, conn: Connection, grant: GrantRecord, kind: Kind, datasets: tuple[str, ...],
        reason: str, legal_basis: str, actor: str, *, origin: str | None = None,
        now: datetime | None = None,
    ) -> TerminationRecord | None:  # fmt: skip
        """Write a proposal and tell the administrators; None when ``origin`` had one."""
        now = now or self.clock()
        if grant.state not in LIVE:
            raise TerminationConflict(f"grant {grant.id} is {grant.state}: it has ended already")
        due = self.calendar.deadline(now, self.notice_days)
        new_id = f"t-{secrets.token_hex(8)}"
        row: dict[str, Any] = {
            "id": new_id, "grant_id": grant.id, "kind": kind.value,
            "datasets": list(datasets), "reason": reason, "legal_basis": legal_basis,
            "proposed_by": actor, "proposed_at": now, "effective_after": due.at,
            "provisional": due.provisional, "state": State.PROPOSED.value,
            "state_changed_at": now, "origin": origin,
        }  # fmt: skip
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(terminations).values(row)
        if origin is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["origin"])
        if conn.execute(stmt.returning(terminations.c.id)).first() is None:
            return None  # raised for this origin already (RETURNING: rowcount is not portable)
        detail = {
            "termination": row["id"], "to": State.PROPOSED.value, "kind": kind.value,
            "reason": reason, "legal_basis": legal_basis,
            "effective_after": due.at.isoformat(),
        }  # fmt: skip
        append(conn, TERMINATION.event, actor, grant_id=grant.id, datasets=datasets,
               detail=detail)  # fmt: skip
        notify(
            conn, key=f"termination:{row['id']}:proposed", kind=NOTICE,
            subject=f"termination {row['id']} of grant {grant.id} proposed: decide it",
            audiences=[ADMINISTRATORS], at=now, grant_id=grant.id, datasets=datasets,
            detail={"termination": row["id"], "grant": grant.id,
                    "effective_after": due.at.isoformat()},
        )  # fmt: skip
        return self.get(conn, new_id)

    @staticmethod
    def _made(found: TerminationRecord | None) -> TerminationRecord:
        if found is None:  # only a proposal with an origin can be skipped
            raise TerminationConflict("the termination was proposed already")
        return found

    # -- deciding -------------------------------------------------------------------

    def _move(
        self, conn: Connection, t: TerminationRecord, to: State, actor: str, reason: str,
        **values: Any,
    ) -> None:  # fmt: skip
        if not TERMINATION.allows(t.state, to):
            raise TerminationConflict(f"termination {t.id} is {t.state}: it cannot become {to}")
        audit = Audit(actor, grant_id=t.grant_id, datasets=t.datasets, detail={"reason": reason})
        try:
            transition(
                conn, TERMINATION, t.id, t.state, to, audit,
                values={"state_changed_at": self.clock(), **values},
            )  # fmt: skip
        except MovedMeanwhile as e:
            raise TerminationConflict(f"termination {t.id} changed meanwhile: try again") from e

    def approve(
        self, conn: Connection, account: Account, termination_id: str, reason: str
    ) -> TerminationRecord:
        """Rule: only an administrator approves, with a reason. The operator, the consumers
        of its encrypted products and the grant's providers are told; it takes effect at
        once when its notice period is over already."""
        self._check_admin(account)
        t = self.get(conn, termination_id)
        reason = _text(reason, "decision's reason")
        self._move(conn, t, State.APPROVED, account.name, reason,
                   decided_by=account.name, decision_reason=reason)  # fmt: skip
        grant = self.grants.get(conn, t.grant_id)
        now = self.clock()
        notify(
            conn, key=f"termination:{t.id}:approved", kind=NOTICE,
            subject=f"grant {grant.id} ends after {t.effective_after.date().isoformat()}: "
            "stop the service and tell your developers",
            audiences=self.concerned(conn, grant), at=now, grant_id=grant.id,
            datasets=t.datasets,
            detail={"termination": t.id, "grant": grant.id,
                    "effective_after": t.effective_after.isoformat()},
        )  # fmt: skip
        if now >= t.effective_after:
            self.take_effect(conn, t.id)
        return self.get(conn, t.id)

    def refuse(
        self, conn: Connection, account: Account, termination_id: str, reason: str
    ) -> TerminationRecord:
        """Rule: only an administrator refuses, with a reason; the proposer is told."""
        self._check_admin(account)
        t = self.get(conn, termination_id)
        reason = _text(reason, "decision's reason")
        self._move(conn, t, State.REFUSED, account.name, reason,
                   decided_by=account.name, decision_reason=reason)  # fmt: skip
        who = [ADMINISTRATORS] if t.proposed_by == SYSTEM else [to_account(t.proposed_by)]
        notify(
            conn, key=f"termination:{t.id}:refused", kind=NOTICE,
            subject=f"termination {t.id} of grant {t.grant_id} refused", audiences=who,
            at=self.clock(), grant_id=t.grant_id, detail={"termination": t.id},
        )  # fmt: skip
        return self.get(conn, t.id)

    def withdraw(
        self, conn: Connection, account: Account, termination_id: str, reason: str
    ) -> TerminationRecord:
        """Rule: the proposer withdraws its own before effect (an administrator one the
        system raised)."""
        t = self.shown(conn, account, termination_id)
        own = t.proposed_by == account.name
        if not (own or (t.proposed_by == SYSTEM and account.has(Role.ADMIN))):
            raise TerminationForbidden(f"only {t.proposed_by} withdraws termination {t.id}")
        self._move(conn, t, State.WITHDRAWN, account.name, _text(reason, "reason"))
        return self.get(conn, t.id)

    @staticmethod
    def _check_admin(account: Account) -> None:
        if not account.has(Role.ADMIN):
            raise TerminationForbidden("only an administrator (the data authority) decides")

    # -- taking effect --------------------------------------------------------------

    def take_effect(self, conn: Connection, termination_id: str) -> bool:
        """End the grant of an approved termination whose notice period is over: True when
        this call did it (False: not due, or another did it first)."""
        t = self.get(conn, termination_id)
        now = self.clock()
        if t.state != State.APPROVED or now < t.effective_after:
            return False
        grant = self.grants.get(conn, t.grant_id)
        if grant.state not in LIVE:
            self._move(conn, t, State.MOOT, SYSTEM, f"grant {grant.id} is {grant.state}")
            return False
        self._move(conn, t, State.EFFECTIVE, SYSTEM, "notice period over")
        reason = f"termination {t.id}: {t.reason}"
        self.grants.transition(conn, grant.id, GrantState.REVOKED, SYSTEM, reason, now=now)
        notify(
            conn, key=f"termination:{t.id}:effective", kind=NOTICE,
            subject=f"grant {grant.id} ended by termination {t.id}: keep its logs 3 years",
            audiences=self.concerned(conn, grant), at=now, grant_id=grant.id,
            datasets=t.datasets, detail={"termination": t.id, "grant": grant.id},
        )  # fmt: skip
        return True

    def due(self, conn: Connection) -> list[str]:
        """Approved terminations whose notice period is over (oldest first)."""
        query = (
            sa.select(terminations.c.id)
            .where(terminations.c.state == State.APPROVED.value)
            .where(terminations.c.effective_after <= self.clock())
            .order_by(terminations.c.effective_after, terminations.c.id)
        )
        return list(conn.execute(query).scalars())

    def concerned(self, conn: Connection, grant: GrantRecord) -> list[str]:
        """Who is told of a grant's end: its operator, the consumers of its encrypted
        products, the providers of its datasets, the administrators."""
        consumers = conn.execute(
            sa.select(he_products.c.consumers).where(he_products.c.grant_id == grant.id)
        ).scalars()
        names = {grant.operator, *(c for listed in consumers for c in listed)}
        names |= {p for d in grant.datasets if (p := self.grants.provider_of(d))}
        return [ADMINISTRATORS, *(to_account(n) for n in sorted(names))]


def termination_service(app: Any) -> TerminationService:
    """The application's termination service, over its grant service, calendar and clock."""
    from gateway.grants.service import grant_service

    return TerminationService(
        grants=grant_service(app),
        calendar=app.state.calendar,
        notice_days=app.state.settings.termination_notice_workdays,
        clock=app.state.clock,
    )
