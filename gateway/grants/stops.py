"""Stopping a grant: who governs it, who holds a stop on it, placing and lifting one.

Stage: governing a grant (before data flow step 1; in force at every step).
:class:`Stops` is mixed into :class:`gateway.grants.service.GrantService`; its
methods use the service's reading and its one ``transition()``.

Invariants:

- A suspension is a set of holds, one per party (``gateway.grants.model``):
  each provider of the grant's datasets that stopped it, and the
  administrators as one party. A party places at most one hold and lifts
  only its own; a provider cannot lift another provider's stop or the
  administrators' (an emergency stop), and administrators do not lift a
  provider's (they may revoke the grant).
- The grant is ``suspended`` exactly while it has a hold: placing the first
  one moves it from ``active``, lifting the last one moves it back, through
  ``transition()`` in the same transaction as the hold's row and its
  ``grant.hold`` event (placed or lifted, the holder, the reason, who still
  holds it), with the grant's row locked so two parties queue (the state
  itself moves by compare-and-set, like every lifecycle's).
- A stop may carry a rectification deadline (``rectify_by``, 004 art. 33), kept on
  its hold; ``gateway.terminations.rectification`` acts when it passes.
- An emergency stop places the administrators' hold on every live grant on the
  dataset, already suspended ones included, so no provider's resumption ends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from gateway.audit import append
from gateway.grants import holds
from gateway.grants.errors import GrantError, GrantForbidden, GrantHeld, IllegalGrantTransition
from gateway.grants.model import (
    ADMINISTRATORS,
    ENDED,
    LIVE,
    GrantRecord,
    Holder,
    HolderKind,
    State,
)
from gateway.identity import Role


class _Grants(Protocol):
    """What :class:`Stops` uses of the grant service."""

    def now(self, now: datetime | None = None) -> datetime: ...

    def provider_of(self, dataset: str) -> str | None: ...

    def holder_for(
        self, account_name: str, roles: Iterable[Role], grant: GrantRecord
    ) -> Holder | None: ...

    def get(self, conn: Connection, grant_id: str) -> GrantRecord: ...

    def find(
        self,
        conn: Connection,
        *,
        operator: str | None = None,
        datasets: Iterable[str] | None = None,
        states: Iterable[State] | None = None,
    ) -> list[GrantRecord]: ...

    def locked(self, conn: Connection, grant_id: str) -> GrantRecord: ...

    def transition(
        self,
        conn: Connection,
        grant_id: str,
        to: State,
        actor: str,
        reason: str,
        *,
        now: datetime | None = None,
    ) -> GrantRecord: ...

    def suspend(
        self,
        conn: Connection,
        grant_id: str,
        holder: Holder,
        actor: str,
        reason: str,
        *,
        now: datetime | None = None,
        rectify_by: datetime | None = None,
    ) -> GrantRecord: ...


def held_by(holders: Iterable[Holder]) -> str:
    """``the administrators and provider p-2``: who holds a grant, for messages."""
    return " and ".join(str(h) for h in holders) or "nobody"


def _audit(
    conn: Connection, grant: GrantRecord, holder: Holder, action: str, actor: str, reason: str,
    remaining: Iterable[Holder], rectify_by: datetime | None = None,
) -> None:  # fmt: skip
    detail: dict[str, Any] = {"action": action, "holder_kind": holder.kind.value}
    detail |= {"holder": holder.name, "reason": reason, "held_by": [str(h) for h in remaining]}
    if rectify_by is not None:
        detail["rectify_by"] = rectify_by.isoformat()
    append(conn, "grant.hold", actor, grant_id=grant.id, datasets=grant.datasets, detail=detail)


class Stops:
    """Who governs a grant and who holds a stop on it (see the module docstring)."""

    # -- who ---------------------------------------------------------------------------

    def holder_for(
        self: _Grants, account_name: str, roles: Iterable[Role], grant: GrantRecord
    ) -> Holder | None:
        """Rule: an administrator stops and lifts as the administrators (one hold, whoever
        of them placed it); a provider of one of the grant's datasets as itself; anyone
        else holds nothing. An account with both roles acts as an administrator."""
        roles = set(roles)
        if Role.ADMIN in roles:
            return ADMINISTRATORS
        if Role.PROVIDER in roles and any(
            self.provider_of(d) == account_name for d in grant.datasets
        ):
            return Holder(HolderKind.PROVIDER, account_name)
        return None

    def can_govern(
        self: _Grants, account_name: str, roles: Iterable[Role], grant: GrantRecord
    ) -> bool:
        """Rule: administrators govern every grant (read it, stop it, revoke it); providers
        those touching their datasets. Lifting a stop is narrower (:meth:`can_lift`)."""
        return self.holder_for(account_name, roles, grant) is not None

    def check_govern(
        self: _Grants, account_name: str, roles: Iterable[Role], grant: GrantRecord
    ) -> Holder:
        """Rule: administrators govern every grant; providers those touching their datasets.
        The party the account acts as; GrantForbidden for anyone else."""
        holder = self.holder_for(account_name, roles, grant)
        if holder is None:
            raise GrantForbidden(
                f"{account_name} is not a provider of any dataset of grant {grant.id}"
            )
        return holder

    def can_stop(
        self: _Grants, account_name: str, roles: Iterable[Role], grant: GrantRecord
    ) -> bool:
        """Rule: a party governing a live grant stops it once (one hold per party)."""
        holder = self.holder_for(account_name, roles, grant)
        return holder is not None and grant.state in LIVE and holder not in grant.holders

    def can_lift(
        self: _Grants, account_name: str, roles: Iterable[Role], grant: GrantRecord
    ) -> bool:
        """Rule: a party lifts only its own stop (administrators theirs, a provider its own)."""
        holder = self.holder_for(account_name, roles, grant)
        return holder is not None and grant.state in LIVE and holder in grant.holders

    # -- placing and lifting --------------------------------------------------------------

    def suspend(
        self: _Grants,
        conn: Connection,
        grant_id: str,
        holder: Holder,
        actor: str,
        reason: str,
        *,
        now: datetime | None = None,
        rectify_by: datetime | None = None,
    ) -> GrantRecord:
        """Place ``holder``'s stop (with its rectification deadline, if any); an active
        grant becomes ``suspended``. GrantHeld when ``holder`` holds one already."""
        now, reason = self.now(now), reason.strip()
        if not reason:
            raise GrantError("a grant is stopped with a reason")
        grant = self.locked(conn, grant_id)
        if grant.state not in LIVE:
            raise IllegalGrantTransition(
                f"grant {grant_id} cannot go from {grant.state} to {State.SUSPENDED}: "
                f"{grant.state} is final"
            )
        if holder in grant.holders:
            verb = "hold" if holder.kind == HolderKind.ADMIN else "holds"
            raise GrantHeld(f"{holder} {verb} a stop on grant {grant_id} already")
        holds.place(
            conn, grant_id, holder, reason=reason, actor=actor, at=now, rectify_by=rectify_by
        )
        _audit(conn, grant, holder, "placed", actor, reason, [*grant.holders, holder], rectify_by)
        if grant.state == State.ACTIVE:
            return self.transition(conn, grant_id, State.SUSPENDED, actor, reason, now=now)
        return self.get(conn, grant_id)

    def resume(
        self: _Grants,
        conn: Connection,
        grant_id: str,
        holder: Holder,
        actor: str,
        reason: str,
        *,
        now: datetime | None = None,
    ) -> GrantRecord:
        """Lift ``holder``'s stop; the grant becomes ``active`` when none is left.
        GrantHeld when ``holder`` holds none (the message names who does)."""
        now, reason = self.now(now), reason.strip()
        if not reason:
            raise GrantError("a stop is lifted with a reason")
        grant = self.locked(conn, grant_id)
        if grant.state != State.SUSPENDED:
            raise IllegalGrantTransition(
                f"grant {grant_id} cannot go from {grant.state} to {State.ACTIVE}"
                + (f": {grant.state} is final" if grant.state in ENDED else ": no stop is held")
            )
        if holder not in grant.holders:
            raise GrantHeld(
                f"grant {grant_id} is held by {held_by(grant.holders)}, not by {holder}: "
                "only they can lift their stop"
            )
        holds.lift(conn, grant_id, holder)
        left = [h for h in grant.holders if h != holder]
        _audit(conn, grant, holder, "lifted", actor, reason, left)
        if not left:
            return self.transition(conn, grant_id, State.ACTIVE, actor, reason, now=now)
        return self.get(conn, grant_id)

    def emergency_stop(
        self: _Grants,
        conn: Connection,
        dataset: str,
        actor: str,
        reason: str,
        *,
        rectify_by: datetime | None = None,
    ) -> tuple[list[str], list[str]]:
        """Place the administrators' stop on every live grant on ``dataset`` (active, or
        suspended by someone else): the ids stopped now, and those already held by the
        administrators (left as they are)."""
        stopped, already = [], []
        for g in self.find(conn, datasets=[dataset], states=LIVE):
            if ADMINISTRATORS in g.holders:
                already.append(g.id)
                continue
            self.suspend(
                conn, g.id, ADMINISTRATORS, actor, f"emergency stop: {reason}",
                rectify_by=rectify_by,
            )  # fmt: skip
            stopped.append(g.id)
        return stopped, already
