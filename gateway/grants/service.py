"""Grants: issued for one scenario, with the minimum necessary columns, for a fixed term.

Stage: before data flow step 1. A grant's scope lines are what the scope
check (``gateway.scope``) allows; its pseudonym key is what the views
(``sandbox.views.build``) are keyed with.

Invariants:

- Issuing (``gateway.grants.issue``, mixed in here) grants the minimum
  necessary columns, for one scenario per operator, for a bounded term.
- Expiry is enforced on every use (:meth:`GrantService.active_grant`), which
  is asked before anything is done under a grant: a submission, a download, a
  product's registration or renewal, a privacy-computing call.
- A suspension is a set of holds: a provider of the grant's datasets places
  and lifts its own; the administrators theirs (a suspension by an
  administrator, an emergency stop). ``gateway.grants.stops`` (mixed in here)
  changes one hold, audits it (``grant.hold``) and, when the set goes from
  empty to not or back, moves the state, in one transaction.
- :meth:`GrantService.transition` is the only state change: it checks the
  holds (``suspended`` with a hold, ``active`` with none) and moves the grant
  through ``gateway.store.lifecycle.transition`` (the :data:`GRANT` table, a
  compare-and-set on the state, the ``grant.state`` event), then changes the
  scope lines, all in the caller's transaction. Suspension adds deny lines
  and calls the ``on_suspend`` hooks given to the constructor
  (``create_app``: queued jobs cancelled, privacy-computing products
  suspended); revocation and expiry drop the holds, remove every line, call
  the ``on_end`` hooks (``create_app``: privacy-computing products withdrawn) and
  destroy every copy held under the grant irreversibly (``gateway.grants.destroy``:
  its key, views, dummy sets, entity maps, unreleased outputs, product tables),
  each destruction recorded as a ``destruction`` event. Files cannot roll back: they are
  destroyed after every database write, so a failure leaves the grant live
  with its copies, never ended without its proof.
- Time comes from the service's clock (``clock``), or a caller's ``now``.
- The pseudonym key is stored in the ``grants`` table (``gateway.grants.issue``):
  whoever reads the store can link the grant's pseudonyms, until the grant ends
  and the key is overwritten there.
- Expiry does not wait for use: the sweep (``gateway.sweep.expiry``) expires every
  live grant past its term, each in a transaction of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from gateway.errors import ConfigurationError
from gateway.grants import holds
from gateway.grants.columns import check_scopes as check_scopes
from gateway.grants.destroy import Layout, destroy_copies
from gateway.grants.errors import (
    GrantConflict,
    GrantError,
    GrantHeld,
    GrantInactive,
    IllegalGrantTransition,
    UnknownGrant,
)
from gateway.grants.issue import Issue
from gateway.grants.model import (
    ENDED,
    GRANT,
    LIVE,
    GrantRecord,
    State,
)
from gateway.grants.model import TRANSITIONS as TRANSITIONS
from gateway.grants.stops import Stops, held_by
from gateway.grants.terms import DEFAULT_CLOCK_SKEW, utc
from gateway.identity import Account, Role
from gateway.scope.errors import ScopeError
from gateway.scope.lines import ConnectionScopeAdapter, reload_on_rollback
from gateway.scope.policy import ScopePolicy
from gateway.settings import GatewaySettings
from gateway.store import lifecycle
from gateway.store.lifecycle import Audit, Clock, IllegalMove, MovedMeanwhile, system_clock
from gateway.store.tables import grants
from sandbox.errors import RegistryError
from sandbox.intake.destruction import DestructionRecord
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.views.build import DatasetScope, Grant

# Called with (conn, grant_id) inside every suspension's transaction, after the
# deny lines are written (``create_app`` passes the jobs service's, which cancels
# queued jobs, and the privacy-computing products'). A hook that raises undoes the
# suspension.
SuspendHook = Callable[[Connection, str], object]


def _record(row: sa.Row[Any]) -> GrantRecord:
    m = row._mapping
    return GrantRecord(
        id=m["id"],
        operator=m["operator"],
        scenario=m["scenario"],
        purpose=m["purpose"],
        scopes=tuple(DatasetScope(s["dataset"], tuple(s["columns"])) for s in m["scopes"]),
        state=State(m["state"]),
        valid_from=m["valid_from"],
        valid_until=m["valid_until"],
        key_id=m["key_id"],
        request_id=m["request_id"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        state_changed_at=m["state_changed_at"],
        state_reason=m["state_reason"],
    )


@dataclass
class GrantService(Issue, Stops):
    """Grants over the store of ``engine`` and the datasets under ``data_dir``."""

    engine: Engine
    registry: Registry
    data_dir: Path
    # A deployment's lower maximum term in days (None: three calendar years only).
    max_days: int | None = None
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW
    on_suspend: Sequence[SuspendHook] = ()
    clock: Clock = system_clock
    # Called like the suspension hooks when the grant ends (revoked, expired), before its
    # copies are destroyed (``create_app``: its privacy-computing products withdrawn).
    on_end: Sequence[SuspendHook] = ()

    def __post_init__(self) -> None:
        self.policies = PolicyStore(self.data_dir)
        self.adapter = ConnectionScopeAdapter(self.engine)
        self.scope = ScopePolicy(self.adapter)

    def now(self, now: datetime | None = None) -> datetime:
        """``now`` as UTC (refusing a naive time), or the clock's time when None."""
        return self.clock() if now is None else utc(now)

    # -- reading ------------------------------------------------------------------

    def _with_holds(self, conn: Connection, found: list[GrantRecord]) -> list[GrantRecord]:
        held = holds.holds_of(conn, [g.id for g in found if g.state in LIVE])
        return [replace(g, holds=held.get(g.id, ())) for g in found]

    def get(self, conn: Connection, grant_id: str) -> GrantRecord:
        row = conn.execute(sa.select(grants).where(grants.c.id == grant_id)).first()
        if row is None:
            raise UnknownGrant(f"no grant {grant_id!r}")
        return self._with_holds(conn, [_record(row)])[0]

    def find(
        self,
        conn: Connection,
        *,
        operator: str | None = None,
        datasets: Iterable[str] | None = None,
        states: Iterable[State] | None = None,
    ) -> list[GrantRecord]:
        """Grants, oldest first: of ``operator``, touching any of ``datasets``, in ``states``."""
        stmt = sa.select(grants).order_by(grants.c.created_at, grants.c.id)
        if operator is not None:
            stmt = stmt.where(grants.c.operator == operator)
        if states is not None:
            stmt = stmt.where(grants.c.state.in_([s.value for s in states]))
        found = [_record(r) for r in conn.execute(stmt)]
        if datasets is not None:
            wanted = set(datasets)
            found = [g for g in found if wanted & set(g.datasets)]
        return self._with_holds(conn, found)

    def visible(self, conn: Connection, account: Account) -> list[GrantRecord]:
        """Rule: administrators see every grant; providers grants on their datasets;
        operators their own."""
        if account.has(Role.ADMIN):
            return self.find(conn)
        mine = self.find(conn, operator=account.name) if account.has(Role.OPERATOR) else []
        theirs = (
            self.find(conn, datasets=self.provider_datasets(account.name))
            if account.has(Role.PROVIDER)
            else []
        )
        return list({g.id: g for g in [*mine, *theirs]}.values())

    def provider_of(self, dataset: str) -> str | None:
        """The provider the registry records for the newest version of ``dataset``."""
        try:
            return self.registry.get(dataset).provider
        except RegistryError:
            return None

    def provider_datasets(self, provider: str) -> set[str]:
        """The datasets whose newest version ``provider`` registered."""
        return {n for n in self.registry.names() if self.provider_of(n) == provider}

    # -- the one state change ------------------------------------------------------

    def locked(self, conn: Connection, grant_id: str) -> GrantRecord:
        """The grant, its row locked until the end of ``conn``'s transaction (so two
        parties changing its holds queue; its state still moves by compare-and-set)."""
        row = conn.execute(
            sa.select(grants).where(grants.c.id == grant_id).with_for_update()
        ).first()
        if row is None:
            raise UnknownGrant(f"no grant {grant_id!r}")
        return self._with_holds(conn, [_record(row)])[0]

    def transition(
        self,
        conn: Connection,
        grant_id: str,
        to: State,
        actor: str,
        reason: str,
        *,
        now: datetime | None = None,
    ) -> GrantRecord:
        """Move the grant to ``to`` (see the module docstring); 409 when the table or the
        holds refuse (``suspended`` needs a hold, ``active`` none: see :meth:`suspend`),
        or when the grant moved meanwhile."""
        now = self.now(now)
        to = State(to)
        if not reason.strip():
            raise GrantError("a grant's state changes with a reason")
        grant = self.get(conn, grant_id)
        if GRANT.allows(grant.state, to):  # a move the table refuses is refused below
            if to == State.ACTIVE and grant.holds:
                raise GrantHeld(
                    f"grant {grant_id} is held by {held_by(grant.holders)}: it is active "
                    "again only when every stop is lifted"
                )
            if to == State.SUSPENDED and not grant.holds:
                raise GrantConflict(f"grant {grant_id} is suspended by a stop: none is held")
        detail: dict[str, Any] = {"reason": reason.strip()}
        if to in ENDED and grant.holds:
            detail["holds_dropped"] = [str(h) for h in grant.holders]
        audit = Audit(actor, grant_id=grant_id, datasets=grant.datasets, detail=detail)
        values = {"state_changed_at": now, "state_reason": reason.strip()}
        try:
            lifecycle.transition(conn, GRANT, grant_id, grant.state, to, audit, values=values)
        except IllegalMove as e:
            raise IllegalGrantTransition(
                f"grant {grant_id} cannot go from {grant.state} to {to}"
                + (f": {grant.state} is final" if not TRANSITIONS[grant.state] else "")
            ) from e
        except MovedMeanwhile as e:
            raise GrantConflict(f"grant {grant_id} changed state meanwhile: try again") from e
        if to == State.SUSPENDED:
            self._scope(conn, lambda: self.scope.suspend(grant_id))
            for hook in self.on_suspend:
                hook(conn, grant_id)
        elif to == State.ACTIVE:
            self._scope(conn, lambda: self.scope.resume(grant_id))
        elif to in ENDED:
            holds.clear(conn, grant_id)
            self._scope(conn, lambda: self.scope.revoke_rules(grant_id))
            for hook in self.on_end:
                hook(conn, grant_id)
            self._destroy(conn, grant, actor, to, now)
        return self.get(conn, grant_id)

    def _scope(self, conn: Connection, change: Callable[[], object]) -> None:
        reload_on_rollback(conn, self.scope)
        try:
            with self.adapter.bound(conn):
                change()
        except ScopeError as e:
            raise GrantError(f"the grant's scope lines cannot change: {e}") from e

    def _destroy(
        self, conn: Connection, grant: GrantRecord, actor: str, because: State, now: datetime
    ) -> list[DestructionRecord]:
        """Every copy held under ``grant`` destroyed, each recorded (``gateway.grants.destroy``:
        the same complete set whether the grant was revoked, expired or terminated)."""
        layout = Layout(self.data_dir)
        return destroy_copies(
            conn, grant, self.registry, layout, actor=actor, because=because.value, now=now
        )

    # -- use ----------------------------------------------------------------------

    def active_grant(self, conn: Connection, grant_id: str, now: datetime | None = None) -> Grant:
        """The grant as the views need it, if it may be used at ``now``; else GrantInactive.

        Rule: a grant is used only while active and within its term. A live
        grant past its term is moved to ``expired`` in ``conn``'s transaction
        before the refusal: the caller commits that transaction (see
        :meth:`use`, which does).
        """
        now = self.now(now)
        grant = self.get(conn, grant_id)
        if grant.state in LIVE and now >= grant.valid_until:
            self.transition(conn, grant_id, State.EXPIRED, "system", "term ended", now=now)
            raise GrantInactive(f"grant {grant_id} expired on {grant.valid_until.isoformat()}")
        if grant.state != State.ACTIVE:
            raise GrantInactive(f"grant {grant_id} is {grant.state}: it cannot be used")
        if now < grant.valid_from:
            raise GrantInactive(f"grant {grant_id} is valid from {grant.valid_from.isoformat()}")
        key = conn.execute(
            sa.select(grants.c.pseudonym_key).where(grants.c.id == grant_id)
        ).scalar_one()
        return Grant(
            grant_id=grant.id,
            operator=grant.operator,
            scenario=grant.scenario,
            scopes=grant.scopes,
            key=bytes.fromhex(key),
            key_id=grant.key_id,
        )

    def use(self, grant_id: str, now: datetime | None = None) -> Grant:
        """:meth:`active_grant` in a transaction of its own, committed even on refusal."""
        with self.engine.begin() as conn:
            try:
                return self.active_grant(conn, grant_id, now)
            except GrantInactive as e:
                refusal = e  # leave the block normally, so an expiry commits
        raise refusal

    def expire_if_due(self, conn: Connection, grant_id: str, now: datetime | None = None) -> bool:
        """Move the grant to ``expired`` if it is live and past its term at ``now``, in
        ``conn``'s transaction; False when it is not due, or another transaction ended it
        meanwhile (the compare-and-set lost: it was done)."""
        now = self.now(now)
        grant = self.get(conn, grant_id)
        if grant.state not in LIVE or now < grant.valid_until:
            return False
        try:
            self.transition(conn, grant_id, State.EXPIRED, "system", "term ended", now=now)
        except GrantConflict:
            return False
        return True

    def expire_due(self, conn: Connection, now: datetime | None = None) -> list[str]:
        """Move every live grant past its term to ``expired`` in ``conn``'s transaction;
        the ids this call expired (the sweep's task, ``gateway.sweep.expiry``, gives each
        grant a transaction of its own)."""
        now = self.now(now)
        due = [g.id for g in self.find(conn, states=LIVE) if now >= g.valid_until]
        return [grant_id for grant_id in due if self.expire_if_due(conn, grant_id, now)]


_LOCK = threading.Lock()
MAX_DAYS_SETTING = "grant_max_days"  # app.state attribute: a lower maximum term in days


def build_grant_service(
    settings: GatewaySettings,
    engine: Engine,
    registry: Registry,
    *,
    on_suspend: Sequence[SuspendHook],
    on_end: Sequence[SuspendHook] = (),
    clock: Clock = system_clock,
) -> GrantService:
    """The application's grant service, as ``create_app`` builds it: its clock skew from
    ``settings``, its suspension hooks and clock given here."""
    return GrantService(
        engine=engine,
        registry=registry,
        data_dir=settings.data_dir,
        clock_skew=timedelta(seconds=settings.grant_clock_skew_seconds),
        on_suspend=tuple(on_suspend),
        on_end=tuple(on_end),
        clock=clock,
    )


def grant_service(app: Any) -> GrantService:
    """The application's grant service (``app.state.grants``, built by ``create_app``).

    A lower maximum term set as ``app.state.grant_max_days`` applies. Its
    scope policy becomes the app's one scope policy (``app.state.scope``,
    which the job routes read), so a suspension or revocation is seen by the
    next scope decision at once; a policy made there earlier is replaced.
    """
    with _LOCK:
        service: GrantService | None = getattr(app.state, "grants", None)
        if service is None:
            raise ConfigurationError("the application has no grant service (see create_app)")
        lowered = getattr(app.state, MAX_DAYS_SETTING, None)
        if lowered is not None:
            service.max_days = lowered
        if getattr(app.state, "scope", None) is not service.scope:
            app.state.scope = service.scope
        return service
