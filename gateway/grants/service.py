"""Grants: issued for one scenario, with the minimum necessary columns, for a fixed term.

Stage: before data flow step 1. A grant's scope lines are what the scope
check (``gateway.scope``) allows; its pseudonym key is what the views
(``sandbox.views``) are keyed with.

Invariants:

- Minimum necessary: a grant covers exactly the columns it lists; each must
  exist in the dataset and be visible (not ``hidden``) under the dataset's
  current exposure policy. Its scope lines are one per dataset and column
  object, per action in :data:`~gateway.grants.model.ACTIONS`.
- One scenario, one authorization: an operator holds at most one live
  (active or suspended) grant per scenario.
- A term of at most ``max_days`` (three years by default); expiry is
  enforced on every use (:meth:`GrantService.active_grant`).
- :meth:`GrantService.transition` is the only state change: it validates the
  move against ``TRANSITIONS``, persists it, writes the ``grant.state``
  event and changes the scope lines, all in the caller's transaction.
  Suspension adds deny lines and calls the ``on_suspend`` hooks (the jobs
  service cancels queued jobs there); revocation and expiry remove every
  line and destroy the grant's views and entity maps irreversibly, each
  destruction recorded as a ``destruction`` event. Files cannot roll back:
  they are destroyed after every database write, so a failure leaves the
  grant live with its copies, never ended without its proof.
- The pseudonym key (32 random bytes) is stored in the ``grants`` table: it
  is a secret of the trusted side, never returned by the API nor written to
  the audit log. Whoever reads the store can link the grant's pseudonyms.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.grants.errors import (
    GrantConflict,
    GrantError,
    GrantForbidden,
    GrantInactive,
    IllegalGrantTransition,
    UnknownGrant,
)
from gateway.grants.model import ACTIONS, ENDED, LIVE, MAX_GRANT_DAYS, GrantRecord, State
from gateway.grants.model import TRANSITIONS as TRANSITIONS
from gateway.grants.scope_lines import ConnectionScopeAdapter, reload_on_rollback
from gateway.identity import Account, Role, UnknownAccount, get_account
from gateway.scope import ScopeError, ScopePolicy
from gateway.store.tables import grants
from sandbox.destruction import DestructionRecord
from sandbox.entitymap import EntityMaps, ledger_secret
from sandbox.errors import PolicyError, RegistryError
from sandbox.policy import PolicyStore, Visibility
from sandbox.registry import Registry
from sandbox.views import DatasetScope, Grant, ViewBuilder

SuspendHook = Callable[[Connection, str], object]

# Called with (conn, grant_id) inside every suspension's transaction, after the
# deny lines are written (the jobs service registers one that cancels queued
# jobs). A hook that raises undoes the suspension.
on_suspend: list[SuspendHook] = []

KEY_BYTES = 32


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise GrantError("times must be timezone-aware")
    return now.astimezone(UTC)


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


def check_scopes(
    registry: Registry, policies: PolicyStore, scopes: Iterable[tuple[str, Sequence[str]]]
) -> tuple[DatasetScope, ...]:
    """The scopes, checked: known datasets, each listed column exists and is not hidden.

    Rule: a grant (or a request for one) names only columns its dataset's
    current exposure policy lets out, each at most once. Raises GrantError.
    """
    checked: dict[str, DatasetScope] = {}
    for dataset, columns in scopes:
        if dataset in checked:
            raise GrantError(f"dataset {dataset!r} is listed twice")
        try:
            registry.get(dataset)
            policy = policies.get(dataset).policy
        except (RegistryError, PolicyError) as e:
            raise GrantError(f"dataset {dataset!r} cannot be granted: {e}") from e
        if not columns:
            raise GrantError(f"name the columns of {dataset!r} the scenario needs (none listed)")
        if len(set(columns)) != len(columns):
            raise GrantError(f"a column of {dataset!r} is listed twice")
        for column in columns:
            col = policy.columns.get(column)
            if col is None:
                raise GrantError(f"dataset {dataset!r} has no column {column!r}")
            if col.visibility == Visibility.HIDDEN:
                raise GrantError(
                    f"column {dataset}.{column} is hidden by the exposure policy: "
                    "it cannot be granted"
                )
        checked[dataset] = DatasetScope(dataset, tuple(sorted(columns)))
    if not checked:
        raise GrantError("a grant covers at least one dataset")
    return tuple(checked[d] for d in sorted(checked))


@dataclass
class GrantService:
    """Grants over the store of ``engine`` and the datasets under ``data_dir``."""

    engine: Engine
    registry: Registry
    data_dir: Path
    max_days: int = MAX_GRANT_DAYS
    on_suspend: list[SuspendHook] = field(default_factory=lambda: on_suspend)

    def __post_init__(self) -> None:
        self.policies = PolicyStore(self.data_dir)
        self.adapter = ConnectionScopeAdapter(self.engine)
        self.scope = ScopePolicy(self.adapter)

    # -- reading ------------------------------------------------------------------

    def get(self, conn: Connection, grant_id: str) -> GrantRecord:
        row = conn.execute(sa.select(grants).where(grants.c.id == grant_id)).first()
        if row is None:
            raise UnknownGrant(f"no grant {grant_id!r}")
        return _record(row)

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
        return found

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

    def can_govern(self, account_name: str, roles: Iterable[Role], grant: GrantRecord) -> bool:
        """Rule: administrators govern every grant; providers those touching their datasets."""
        roles = set(roles)
        if Role.ADMIN in roles:
            return True
        return Role.PROVIDER in roles and any(
            self.provider_of(d) == account_name for d in grant.datasets
        )

    def check_govern(self, account_name: str, roles: Iterable[Role], grant: GrantRecord) -> None:
        """Rule: administrators govern every grant; providers those touching their datasets."""
        if not self.can_govern(account_name, roles, grant):
            raise GrantForbidden(
                f"{account_name} is not a provider of any dataset of grant {grant.id}"
            )

    # -- issuing ------------------------------------------------------------------

    def create(
        self,
        conn: Connection,
        *,
        operator: str,
        scenario: str,
        purpose: str,
        scopes: Iterable[tuple[str, Sequence[str]]],
        valid_until: datetime,
        actor: str,
        valid_from: datetime | None = None,
        request_id: str | None = None,
        now: datetime | None = None,
    ) -> GrantRecord:
        """Issue a grant (state ``active``), its scope lines and its ``grant.state`` event."""
        now = _now(now)
        start = _now(valid_from) if valid_from is not None else now
        end = _now(valid_until)
        scenario, purpose = scenario.strip(), purpose.strip()
        if not scenario or not purpose:
            raise GrantError("a grant names its scenario and its purpose")
        if end <= start:
            raise GrantError("valid_until must be after valid_from")
        if end <= now:
            raise GrantError("valid_until is in the past")
        if end - start > timedelta(days=self.max_days):
            raise GrantError(f"a grant runs at most {self.max_days} days")
        try:
            account = get_account(conn, operator)
        except UnknownAccount as e:
            raise GrantError(str(e)) from e
        if Role.OPERATOR not in account.roles or account.disabled:
            raise GrantError(f"{operator!r} is not an enabled operator account")
        checked = check_scopes(self.registry, self.policies, scopes)
        live = self.find(conn, operator=operator, states=LIVE)
        if any(g.scenario == scenario for g in live):
            raise GrantConflict(
                f"{operator} already holds a live grant for scenario {scenario!r}: "
                "one scenario, one authorization"
            )
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

    # -- the one state change ------------------------------------------------------

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
        """Move the grant to ``to`` (see the module docstring); 409 when the table refuses."""
        now = _now(now)
        to = State(to)
        if not reason.strip():
            raise GrantError("a grant's state changes with a reason")
        row = conn.execute(
            sa.select(grants).where(grants.c.id == grant_id).with_for_update()
        ).first()
        if row is None:
            raise UnknownGrant(f"no grant {grant_id!r}")
        grant = _record(row)
        if to not in TRANSITIONS[grant.state]:
            raise IllegalGrantTransition(
                f"grant {grant_id} cannot go from {grant.state} to {to}"
                + (f": {grant.state} is final" if not TRANSITIONS[grant.state] else "")
            )
        conn.execute(
            grants.update()
            .where(grants.c.id == grant_id)
            .values(state=to.value, state_changed_at=now, state_reason=reason.strip())
        )
        append(
            conn,
            "grant.state",
            actor,
            grant_id=grant_id,
            datasets=grant.datasets,
            detail={"from": grant.state.value, "to": to.value, "reason": reason.strip()},
        )
        if to == State.SUSPENDED:
            self._scope(conn, lambda: self.scope.suspend(grant_id))
            for hook in list(self.on_suspend):
                hook(conn, grant_id)
        elif to == State.ACTIVE:
            self._scope(conn, lambda: self.scope.resume(grant_id))
        elif to in ENDED:
            self._scope(conn, lambda: self.scope.revoke_rules(grant_id))
            for record in self._destroy(grant_id):
                append(
                    conn,
                    "destruction",
                    actor,
                    grant_id=grant_id,
                    datasets=grant.datasets,
                    detail={
                        "what": record.what,
                        "when": record.when.isoformat(),
                        "how": record.how,
                        "sha256": record.sha256,
                        "files": len(record.files),
                        "because": to.value,
                    },
                )
        return self.get(conn, grant_id)

    def _scope(self, conn: Connection, change: Callable[[], object]) -> None:
        reload_on_rollback(conn, self.scope)
        try:
            with self.adapter.bound(conn):
                change()
        except ScopeError as e:
            raise GrantError(f"the grant's scope lines cannot change: {e}") from e

    def _destroy(self, grant_id: str) -> list[DestructionRecord]:
        cache = self.data_dir / "cache"
        views = ViewBuilder(self.registry, self.policies, cache)
        maps = EntityMaps(cache, ledger_secret(self.data_dir))
        return [*views.destroy_grant(grant_id), *maps.destroy_grant_maps(grant_id)]

    # -- use ----------------------------------------------------------------------

    def active_grant(self, conn: Connection, grant_id: str, now: datetime | None = None) -> Grant:
        """The grant as the views need it, if it may be used at ``now``; else GrantInactive.

        Rule: a grant is used only while active and within its term. A live
        grant past its term is moved to ``expired`` in ``conn``'s transaction
        before the refusal: the caller commits that transaction (see
        :meth:`use`, which does).
        """
        now = _now(now)
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

    def expire_due(self, conn: Connection, now: datetime | None = None) -> list[str]:
        """Move every live grant past its term to ``expired``; their ids."""
        now = _now(now)
        due = [g for g in self.find(conn, states=LIVE) if now >= g.valid_until]
        for g in due:
            self.transition(conn, g.id, State.EXPIRED, "system", "term ended", now=now)
        return [g.id for g in due]

    def emergency_stop(self, conn: Connection, dataset: str, actor: str, reason: str) -> list[str]:
        """Suspend every active grant on ``dataset``; their ids."""
        found = self.find(conn, datasets=[dataset], states=[State.ACTIVE])
        for g in found:
            self.transition(conn, g.id, State.SUSPENDED, actor, f"emergency stop: {reason}")
        return [g.id for g in found]


_LOCK = threading.Lock()
MAX_DAYS_SETTING = "grant_max_days"  # app.state attribute overriding MAX_GRANT_DAYS


def grant_service(app: Any) -> GrantService:
    """The application's grant service (one per app, made on first use).

    Its scope policy becomes the app's one scope policy (``app.state.scope``,
    which the job routes read), so a suspension or revocation is seen by the
    next scope decision at once; a policy made there earlier is replaced.
    """
    with _LOCK:
        service: GrantService | None = getattr(app.state, "grants", None)
        if service is None:
            service = GrantService(
                engine=app.state.engine,
                registry=app.state.registry,
                data_dir=app.state.settings.data_dir,
                max_days=getattr(app.state, MAX_DAYS_SETTING, MAX_GRANT_DAYS),
            )
            app.state.grants = service
        if getattr(app.state, "scope", None) is not service.scope:
            app.state.scope = service.scope
        return service
