"""Recording, acting on and resolving security incidents; an emergency stop's record.

Stage: governing the platform. Serves Tiemenguan plan (003) (六)4 (report at once, act
on the plan), Chongqing call (000) annex 4 item 四 (report, cooperate in handling and
investigation), Chongqing authorized-operation measures (001) art. 33 (security
protection, internal audit).

Invariants:

- Who: an administrator records any incident; a provider one on its own datasets
  (at least one named). The reporter, a provider of a touched dataset, or an
  administrator adds actions; the reporter or an administrator resolves. The
  administrators and auditors read every incident; a provider those it reported
  or that touch its datasets.
- Times: an incident occurred no later than it was detected, and neither is after
  it was recorded.
- Actions are rows appended, never rewritten; each is audited (``incident.action``),
  like the record and its resolution (``incident.state``, through ``transition()``).
- An emergency stop records an incident (or adds itself to the one named), as an
  action listing the grants stopped, and notifies the administrators, the dataset's
  provider and the stopped grants' operators (a notice per stop).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.identity import Account, Role
from gateway.incidents.errors import (
    IncidentConflict,
    IncidentError,
    IncidentForbidden,
    UnknownIncident,
)
from gateway.incidents.model import (
    INCIDENT,
    Action,
    IncidentRecord,
    Kind,
    Severity,
    Status,
)
from gateway.notices.service import ADMINISTRATORS, notify, to_account
from gateway.store.lifecycle import Audit, Clock, MovedMeanwhile, system_clock, transition
from gateway.store.tables import incident_actions, incidents

NOTICE = "incident"


def _record(row: sa.Row[Any], actions: tuple[Action, ...]) -> IncidentRecord:
    m = row._mapping
    return IncidentRecord(
        id=m["id"],
        kind=Kind(m["kind"]),
        severity=Severity(m["severity"]),
        summary=m["summary"],
        datasets=tuple(m["datasets"]),
        grants=tuple(m["grants"]),
        occurred_at=m["occurred_at"],
        detected_at=m["detected_at"],
        reported_by=m["reported_by"],
        reported_at=m["reported_at"],
        state=Status(m["state"]),
        resolved_at=m["resolved_at"],
        resolution=m["resolution"],
        actions=actions,
    )


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise IncidentError(f"an incident's {what} is not empty")
    return value


@dataclass
class IncidentService:
    """Incidents in the store; ``provider_of`` names a dataset's provider (or None)."""

    provider_of: Callable[[str], str | None]
    clock: Clock = system_clock

    # -- reading --------------------------------------------------------------------

    def _actions(self, conn: Connection, ids: list[str]) -> dict[str, list[Action]]:
        found: dict[str, list[Action]] = {i: [] for i in ids}
        if ids:
            query = (
                sa.select(incident_actions)
                .where(incident_actions.c.incident_id.in_(ids))
                .order_by(incident_actions.c.id)
            )
            for r in conn.execute(query):
                found[r.incident_id].append(Action(r.at, r.actor, r.action))
        return found

    def find(
        self, conn: Connection, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[IncidentRecord]:
        """Incidents detected in [since, until) (all when unbounded), oldest first."""
        query = sa.select(incidents).order_by(incidents.c.detected_at, incidents.c.id)
        if since is not None:
            query = query.where(incidents.c.detected_at >= since)
        if until is not None:
            query = query.where(incidents.c.detected_at < until)
        rows = list(conn.execute(query))
        acts = self._actions(conn, [r.id for r in rows])
        return [_record(r, tuple(acts[r.id])) for r in rows]

    def get(self, conn: Connection, incident_id: str) -> IncidentRecord:
        row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise UnknownIncident(f"no incident {incident_id!r}")
        return _record(row, tuple(self._actions(conn, [incident_id])[incident_id]))

    def can_see(self, account: Account, incident: IncidentRecord) -> bool:
        """Rule: administrators and auditors see every incident; a provider those it
        reported or that touch its datasets."""
        if account.has(Role.ADMIN, Role.AUDITOR):
            return True
        return incident.reported_by == account.name or self._touches_own(account, incident)

    def _touches_own(self, account: Account, incident: IncidentRecord) -> bool:
        return account.has(Role.PROVIDER) and any(
            self.provider_of(d) == account.name for d in incident.datasets
        )

    def visible(self, conn: Connection, account: Account) -> list[IncidentRecord]:
        return [i for i in self.find(conn) if self.can_see(account, i)]

    def shown(self, conn: Connection, account: Account, incident_id: str) -> IncidentRecord:
        found = self.get(conn, incident_id)
        if not self.can_see(account, found):
            raise UnknownIncident(f"no incident {incident_id!r}")
        return found

    # -- recording ------------------------------------------------------------------

    def check_create(self, account: Account, datasets: Iterable[str]) -> None:
        """Rule: an administrator records any incident; a provider one naming only its own
        datasets (at least one)."""
        if account.has(Role.ADMIN):
            return
        named = list(datasets)
        if not (
            account.has(Role.PROVIDER)
            and named
            and all(self.provider_of(d) == account.name for d in named)
        ):
            raise IncidentForbidden(
                f"{account.name} records incidents only on datasets it provides"
            )

    def create(
        self, conn: Connection, account: Account, *, kind: Kind, severity: Severity,
        summary: str, datasets: Iterable[str] = (), grants: Iterable[str] = (),
        occurred_at: datetime | None = None, detected_at: datetime | None = None,
    ) -> IncidentRecord:  # fmt: skip
        datasets, grants = sorted(set(datasets)), sorted(set(grants))
        self.check_create(account, datasets)
        return self._create(
            conn, account.name, Kind(kind), Severity(severity), _text(summary, "summary"),
            datasets, grants, occurred_at, detected_at,
        )  # fmt: skip

    def _create(
        self, conn: Connection, actor: str, kind: Kind, severity: Severity, summary: str,
        datasets: list[str], grants: list[str], occurred_at: datetime | None,
        detected_at: datetime | None,
    ) -> IncidentRecord:  # fmt: skip
        now = self.clock()
        detected = detected_at or now
        occurred = occurred_at or detected
        if not occurred <= detected <= now:
            raise IncidentError("an incident occurs before it is detected, and both are past")
        incident_id = f"i-{secrets.token_hex(8)}"
        conn.execute(
            incidents.insert().values(
                id=incident_id, kind=kind.value, severity=severity.value, summary=summary,
                datasets=datasets, grants=grants, occurred_at=occurred, detected_at=detected,
                reported_by=actor, reported_at=now, state=Status.OPEN.value,
            )
        )  # fmt: skip
        detail = {"incident": incident_id, "to": Status.OPEN.value, "kind": kind.value,
                  "severity": severity.value}  # fmt: skip
        append(conn, INCIDENT.event, actor, datasets=datasets, detail=detail)
        notify(
            conn, key=f"incident:{incident_id}:recorded", kind=NOTICE,
            subject=f"{severity.value} incident {incident_id} ({kind.value}) recorded",
            audiences=[ADMINISTRATORS], at=now, datasets=datasets,
            detail={"incident": incident_id},
        )  # fmt: skip
        return self.get(conn, incident_id)

    def _check_act(self, account: Account, incident: IncidentRecord) -> None:
        """Rule: the reporter, a provider of a touched dataset or an administrator acts."""
        if not (
            account.has(Role.ADMIN)
            or incident.reported_by == account.name
            or self._touches_own(account, incident)
        ):
            raise IncidentForbidden(f"{account.name} may not act on incident {incident.id}")

    def _act(self, conn: Connection, incident_id: str, actor: str, action: str) -> None:
        conn.execute(
            incident_actions.insert().values(
                incident_id=incident_id, at=self.clock(), actor=actor, action=action
            )
        )
        append(conn, "incident.action", actor, detail={"incident": incident_id, "action": action})

    def add_action(
        self, conn: Connection, account: Account, incident_id: str, action: str
    ) -> IncidentRecord:
        incident = self.shown(conn, account, incident_id)
        self._check_act(account, incident)
        if incident.state != Status.OPEN:
            raise IncidentConflict(f"incident {incident_id} is resolved: reopen none, record anew")
        self._act(conn, incident_id, account.name, _text(action, "action"))
        return self.get(conn, incident_id)

    def resolve(
        self, conn: Connection, account: Account, incident_id: str, resolution: str
    ) -> IncidentRecord:
        """Rule: the reporter or an administrator resolves an open incident, saying how."""
        incident = self.shown(conn, account, incident_id)
        if not (account.has(Role.ADMIN) or incident.reported_by == account.name):
            raise IncidentForbidden(f"only {incident.reported_by} or an administrator resolves")
        resolution = _text(resolution, "resolution")
        if not INCIDENT.allows(incident.state, Status.RESOLVED):
            raise IncidentConflict(f"incident {incident_id} is {incident.state} already")
        try:
            transition(
                conn, INCIDENT, incident_id, incident.state, Status.RESOLVED,
                Audit(account.name, datasets=incident.datasets,
                      detail={"resolution": resolution}),
                values={"resolved_at": self.clock(), "resolution": resolution},
            )  # fmt: skip
        except MovedMeanwhile as e:
            raise IncidentConflict(f"incident {incident_id} changed meanwhile") from e
        return self.get(conn, incident_id)

    # -- the emergency stop ---------------------------------------------------------

    def record_emergency_stop(
        self, conn: Connection, account: Account, *, dataset: str, reason: str,
        stopped: list[str], already: list[str], operators: Iterable[str],
        incident_id: str | None = None,
    ) -> IncidentRecord:  # fmt: skip
        """Record the stop on an incident (the one named, else a new one) and tell the
        administrators, the dataset's provider and the stopped grants' operators."""
        if incident_id is None:
            incident = self._create(
                conn, account.name, Kind.MAJOR_RISK, Severity.HIGH, reason, [dataset],
                sorted({*stopped, *already}), None, None,
            )  # fmt: skip
        else:
            incident = self.get(conn, incident_id)
            if incident.state != Status.OPEN:
                raise IncidentConflict(f"incident {incident_id} is resolved: name an open one")
            conn.execute(
                incidents.update()
                .where(incidents.c.id == incident_id)
                .values(
                    datasets=sorted({*incident.datasets, dataset}),
                    grants=sorted({*incident.grants, *stopped, *already}),
                )
            )
        action = f"emergency stop on {dataset}: grants stopped {', '.join(stopped) or 'none'}"
        self._act(conn, incident.id, account.name, action)
        provider = self.provider_of(dataset)
        audiences = [ADMINISTRATORS, *(to_account(o) for o in sorted(set(operators)))]
        audiences += [to_account(provider)] if provider else []
        notify(
            conn, key=f"incident:{incident.id}:stop:{dataset}:{self.clock().isoformat()}",
            kind=NOTICE, subject=f"emergency stop on dataset {dataset} (incident {incident.id})",
            audiences=audiences, at=self.clock(), datasets=[dataset],
            detail={"incident": incident.id, "dataset": dataset, "grants": stopped},
        )  # fmt: skip
        return self.get(conn, incident.id)


def incident_service(app: Any) -> IncidentService:
    """The application's incident service (its grant service names datasets' providers)."""
    from gateway.grants.service import grant_service

    return IncidentService(provider_of=grant_service(app).provider_of, clock=app.state.clock)
