"""An incident's kinds, severities, states and the one table of moves between them.

The rules: the operator reports a data security incident (loss, leak, tampering,
damage of data, or a major risk) to the implementing agency at once and acts on its
plan (Tiemenguan plan, 003 (六)4 应急处置机制); an applicant undertakes to report
incidents and cooperate in handling them (Chongqing call, 000 annex 4, item 四); the
implementing agency secures the platform and the operator bears the data security
responsibility (Chongqing authorized-operation measures, 001 art. 33). An incident is
``open`` while handled and ``resolved`` once closed, with its resolution; actions are
rows of their own (``incident_actions``), never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.store.lifecycle import Lifecycle
from gateway.store.tables import incidents


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Kind(StrEnum):
    """The incident's type (003 (六)4: 数据丢失、泄露、篡改、毁损). Values are stored."""

    DATA_LOSS = "data_loss"
    DATA_LEAK = "data_leak"
    TAMPERING = "tampering"
    DAMAGE = "damage"
    UNAUTHORIZED_ACCESS = "unauthorized_access"
    MAJOR_RISK = "major_risk"
    OTHER = "other"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


INCIDENT: Lifecycle[Status] = Lifecycle(
    name="incident",
    states=Status,
    moves={Status.OPEN: frozenset({Status.RESOLVED}), Status.RESOLVED: frozenset()},
    table=incidents,
    key="id",
    state="state",
    event="incident.state",
    description="Recorded `open` (by an administrator, a provider, or an emergency stop); "
    "acted on; `resolved` with its resolution.",
)


@dataclass(frozen=True)
class Action:
    at: datetime
    actor: str
    action: str


@dataclass(frozen=True)
class IncidentRecord:
    id: str
    kind: Kind
    severity: Severity
    summary: str
    datasets: tuple[str, ...]
    grants: tuple[str, ...]
    occurred_at: datetime
    detected_at: datetime
    reported_by: str
    reported_at: datetime
    state: Status
    resolved_at: datetime | None
    resolution: str | None
    actions: tuple[Action, ...] = ()
