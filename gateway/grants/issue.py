"""Issuing a grant: one scenario, the minimum necessary columns, a bounded term.

Stage: before data flow step 1. :class:`Issue` is mixed into
:class:`gateway.grants.service.GrantService`; its methods use the service's
reading, clock and scope lines.

Invariants:

- Minimum necessary: a grant covers exactly the columns it lists; each must
  exist in the dataset and be visible (not ``hidden``) under the dataset's
  current exposure policy (``gateway.grants.columns``). Its scope lines are
  one per dataset and column object, per action in
  :data:`~gateway.grants.model.ACTIONS`.
- One scenario, one authorization: an operator holds at most one live
  (active or suspended) grant per scenario, scenario names compared as people
  read them (``gateway.names``: case, full-width and look-alike letters,
  invisible characters do not make a new scenario).
- A term that starts at issue and runs at most three calendar years, ending
  by 2100 (``gateway.grants.terms``), or a deployment's lower maximum.
- A grant is born ``active``: the row, its ``grant.state`` event (from none)
  and its scope lines are written in the caller's transaction.
- The pseudonym key (32 random bytes) is stored in the ``grants`` table: it
  is a secret of the trusted side, never returned by the API nor written to
  the audit log.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection

from gateway.audit import append
from gateway.grants.columns import check_scopes
from gateway.grants.errors import GrantConflict, GrantError
from gateway.grants.model import ACTIONS, LIVE, GrantRecord, State
from gateway.grants.terms import check_term, end_after, utc
from gateway.identity import Role, UnknownAccount, get_account
from gateway.names import same_name
from gateway.scope.policy import ScopePolicy
from gateway.store.tables import grants
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry

KEY_BYTES = 32


class _Issuer(Protocol):
    """What :class:`Issue` uses of the grant service."""

    registry: Registry
    policies: PolicyStore
    scope: ScopePolicy
    max_days: int | None
    clock_skew: timedelta

    def now(self, now: datetime | None = None) -> datetime: ...

    def get(self, conn: Connection, grant_id: str) -> GrantRecord: ...

    def find(
        self,
        conn: Connection,
        *,
        operator: str | None = None,
        datasets: Iterable[str] | None = None,
        states: Iterable[State] | None = None,
    ) -> list[GrantRecord]: ...

    def check_scenario_free(self, conn: Connection, operator: str, scenario: str) -> None: ...

    def _scope(self, conn: Connection, change: Callable[[], object]) -> None: ...


class Issue:
    """Issuing grants (see the module docstring)."""

    def check_scenario_free(self: _Issuer, conn: Connection, operator: str, scenario: str) -> None:
        """Rule: one scenario, one authorization: ``operator`` holds no live grant whose
        scenario reads the same as ``scenario`` (``gateway.names.same_name``)."""
        for g in self.find(conn, operator=operator, states=LIVE):
            if same_name(g.scenario, scenario):
                raise GrantConflict(  # names no other grant: it may be another provider's
                    f"{operator} already holds a live grant for a scenario that reads as "
                    f"{scenario!r} (case and look-alike letters aside): one scenario, one "
                    "authorization"
                )

    def create(
        self: _Issuer,
        conn: Connection,
        *,
        operator: str,
        scenario: str,
        purpose: str,
        scopes: Iterable[tuple[str, Sequence[str]]],
        actor: str,
        valid_until: datetime | None = None,
        days: int | None = None,
        valid_from: datetime | None = None,
        request_id: str | None = None,
        now: datetime | None = None,
    ) -> GrantRecord:
        """Issue a grant (state ``active``), its scope lines and its ``grant.state`` event.

        The term ends at ``valid_until`` or ``days`` days after ``valid_from`` (one of
        them); see ``gateway.grants.terms`` for its bounds."""
        now = self.now(now)
        start = utc(valid_from, "valid_from") if valid_from is not None else now
        if valid_until is not None and days is None:
            end = utc(valid_until, "valid_until")
        elif days is not None and valid_until is None:
            end = end_after(start, days)
        else:
            raise GrantError("give the term's end as valid_until or as days (one of them)")
        check_term(start, end, now, clock_skew=self.clock_skew, max_days=self.max_days)
        scenario, purpose = scenario.strip(), purpose.strip()
        if not scenario or not purpose:
            raise GrantError("a grant names its scenario and its purpose")
        try:
            account = get_account(conn, operator)
        except UnknownAccount as e:
            raise GrantError(str(e)) from e
        if Role.OPERATOR not in account.roles or account.disabled:
            raise GrantError(f"{operator!r} is not an enabled operator account")
        checked = check_scopes(self.registry, self.policies, scopes)
        self.check_scenario_free(conn, operator, scenario)
        grant_id = "g-" + secrets.token_hex(8)
        key = secrets.token_bytes(KEY_BYTES)
        key_id = "k-" + secrets.token_hex(6)
        conn.execute(
            grants.insert().values(
                id=grant_id,
                operator=operator,
                scenario=scenario,
                purpose=purpose,
                scopes=[{"dataset": s.dataset, "columns": list(s.columns)} for s in checked],
                state=State.ACTIVE.value,
                valid_from=start,
                valid_until=end,
                pseudonym_key=key.hex(),
                key_id=key_id,
                request_id=request_id,
                created_by=actor,
                created_at=now,
                state_changed_at=now,
                state_reason="issued",
            )
        )
        append(
            conn,
            "grant.state",
            actor,
            grant_id=grant_id,
            datasets=[s.dataset for s in checked],
            detail={
                "from": None,
                "to": State.ACTIVE.value,
                "operator": operator,
                "scenario": scenario,
                "columns": {s.dataset: list(s.columns) for s in checked},
                "valid_from": start.isoformat(),
                "valid_until": end.isoformat(),
                "key_id": key_id,
                "request_id": request_id,
            },
        )
        self._scope(conn, lambda: self.scope.grant_rules(grant_id, operator, checked, ACTIONS))
        return self.get(conn, grant_id)
