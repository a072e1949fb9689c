"""Stage 7 of the data flow: the audit log, append-only and hash-chained.

Every decision and every data access is one event in ``audit_events``:
who (``actor``: an account, or ``"system"``), under which grant, about which
datasets, what happened (``type``, one of :data:`EVENT_TYPES`) and the
particulars (``detail``: ids, hashes, counts, rule ids, column names,
verdicts and reasons). **Never raw data values** in ``detail``: no cell
values, rows, query results or job logs. The log goes to the data providers
and outlives grants (kept at least three years); a value stored here has
left the domain.

Invariants:

- Append-only: :func:`append` is the only write; the database refuses UPDATE
  and DELETE (and TRUNCATE on PostgreSQL) by trigger, so only someone able to
  change the schema can alter the log, and then :func:`verify` shows where.
- Hash chain: event ``n`` stores ``prev_hash`` = the hash of event ``n - 1``
  (:data:`GENESIS` for event 1) and ``hash`` = SHA-256 (hex) of the UTF-8
  canonical JSON (sorted keys, no spaces, no ASCII escaping, no NaN) of the
  array ``[id, at, type, actor, grant_id, datasets, detail, prev_hash]``, with
  ``at`` as ISO 8601 UTC with microseconds (``2026-11-22T05:32:00.123456+00:00``)
  and ``datasets`` sorted and unique. :func:`event_hash` is that function; an
  exported line carries everything needed to recompute its event's hash.
- One chain, never forked: ids are 1, 2, 3 ... without gaps, assigned by
  ``append`` while it holds the chain lock inside the caller's transaction
  (SQLite: the write lock of ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
  lock), so concurrent writers queue; the primary key refuses a second event
  with the same id should anything write without the lock. A rolled-back
  transaction takes its event with it and leaves no gap.
- The caller's transaction: the gateway calls ``append`` in the transaction
  of the state change it records, so both commit or neither does.
- Event type values never change once stored: add new types, never rename or
  remove one (a test holds the list).

A hash chain shows any change to stored events, a removed event, and an
event slipped between two others; it cannot show that the newest events were
cut off, or that the whole tail was rewritten and rehashed, unless a head
(id, hash) recorded elsewhere is compared: pass such heads to ``verify`` as
``anchors`` (every verification and export reports its head for that). The
gateway records them itself as signed checkpoints held outside the store
(``gateway.audit.checkpoints``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from gateway.audit.fields import canonical_json, dataset_names, name, plain_detail
from gateway.errors import AuditError, ChainBroken, StoreError
from gateway.store.engine import is_sqlite, serialise_writers
from gateway.store.tables import audit_events, utc_iso

# Every event type, with what it records. Values are stored: never rename or
# remove one; add new ones at the end of their group.
EVENT_TYPES: dict[str, str] = {
    "auth.failed": "A sign-in or API token was refused (who tried and why, never the secret).",
    "scope.decision": "The scope check allowed or denied an action on datasets and columns.",
    "view.built": "Authorized views were built for a job (views, columns, cache key, policies).",
    "job.submitted": "An operator submitted code under a grant (job id, kind, code hash).",
    "job.state": "A job moved from one state to another (from, to, outcome code).",
    "job.run": "A job ran in the sandbox (runtime, exit class, duration, resources; no logs).",
    "job.refused": "Code failed the static checks, or the operator's queue was full (rule "
    "queue_full); nothing was queued (rule ids, code hash).",
    "verdict": "The output checks decided PASS, REVIEW or FAIL (rule ids, output hashes).",
    "review.viewed": "A security reviewer opened the evidence of a held output.",
    "review.vote": "A security reviewer approved or denied a held output, with the reason.",
    "review.state": "A security review ended: approved, denied, or refused at release.",
    "download": "A released product or file was downloaded (product id, file hashes).",
    "policy.applied": "A provider registered or changed the exposure policy of a dataset.",
    "grant.state": "A grant was issued, suspended, resumed, revoked or expired.",
    "request.state": "A data request (reviewed, rejected with reason and basis, supplied).",
    "dataset.registered": "A provider registered a dataset version (schema, classes, data hash).",
    "destruction": "Copies held under a grant were destroyed irreversibly (what, where, proof).",
    "product.registered": "A released data product entered the catalogue (class, manifest hash).",
    "audit.verified": "The audit chain was verified (events checked, result, head id and hash).",
    "audit.exported": "Audit events were exported (for whom, filter, events written, head).",
    "account.created": "An administrator created an account with its roles.",
    "token.issued": "An API token was issued for an account (token id, never the secret).",
    "token.revoked": "An API token was revoked (token id).",
    "he.product": "A privacy-computing product was defined, decided, suspended or withdrawn.",
    "he.context": "A consumer registered a public context, or it was refused (id, hash, size).",
    "he.call": "A consumer called a privacy-computing product (product, bucket, outcome; no data).",
    "grant.hold": "A party placed or lifted its stop on a grant (holder, reason, who still holds).",
    "access.denied": "Requests refused with 403, per actor and minute (route, object, count).",
    "notice.sent": "The gateway told people of something without being asked (kind, to whom).",
    "sweep.run": "The sweep ran its tasks (when, the tasks, lines done per task, failures).",
    "request.extension": "A provider asked to extend a data request's provider review, or the "
    "city office approved or refused it (request, extension, days, reason).",
    "request.overdue": "A data request step passed its deadline and who must act was told "
    "(request, step, due, provisional).",
    "product.registration": "A product registration application moved (applied, accepted, "
    "formal review, publicity, registered, refused with reason and basis).",
    "product.objection": "An objection to a registration in publicity was raised or resolved.",
    "product.status": "A registered product expired, or was cancelled or revoked (reason, basis).",
    "termination.state": "A termination of a grant was proposed, approved, refused, withdrawn "
    "or took effect (basis, notice period, decision).",
    "incident.state": "A security incident was recorded or resolved (type, severity, scope).",
    "incident.action": "An action taken on a security incident was recorded.",
    "incident.exported": "Incidents of a period were exported as a report (period, count).",
    "organisation.created": "An administrator created an organisation (id, kind).",
    "organisation.member": "An administrator assigned an account to an organisation, or "
    "removed it (account, from, to).",
    "feedback.filed": "An operator filed a data-quality issue on a dataset (id, columns; no text).",
    "feedback.state": "A provider answered a data-quality issue (issue, answer, from, to).",
    "product.price": "A product's price class or basis was set or changed (from, to, by whom).",
    "charge.recorded": "A consumer was charged for a product (product, payer, amount, basis).",
    "report.generated": "A report or statement was generated (kind, period, format, digest).",
}

GENESIS = "0" * 64  # prev_hash of event 1
CHAIN_LOCK = "dsr.audit_events"  # name of the writers' lock (see serialise_writers)
SYSTEM = "system"  # the actor of events no account caused


# Built once: statement construction costs more than the SQL it runs.
_HEAD = (
    sa.select(audit_events.c.id, audit_events.c.hash).order_by(audit_events.c.id.desc()).limit(1)
)
_INSERT = sa.insert(audit_events)


@dataclass(frozen=True)
class Event:
    """One stored audit event (see the module docstring for the fields)."""

    id: int
    at: datetime
    type: str
    actor: str
    grant_id: str | None
    datasets: tuple[str, ...]
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The event as one exported JSON object (``at`` as ISO 8601 UTC)."""
        return {
            "id": self.id,
            "at": utc_iso(self.at),
            "type": self.type,
            "actor": self.actor,
            "grant_id": self.grant_id,
            "datasets": list(self.datasets),
            "detail": self.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found. ``checked`` counts the events that verified
    before the first broken link (all of them when ``ok``); ``head_id`` and
    ``head_hash`` name the last of those, to keep as an anchor."""

    ok: bool
    checked: int
    first_broken: int | None
    reason: str
    head_id: int | None = None
    head_hash: str | None = None

    def raise_if_broken(self) -> None:
        """Raise :class:`ChainBroken` unless the chain verified."""
        if not self.ok:
            raise ChainBroken(self.first_broken or 0, self.reason)


def event_hash(
    id: int,
    at: datetime,
    type: str,
    actor: str,
    grant_id: str | None,
    datasets: Iterable[str],
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The hex SHA-256 an event with these fields must carry."""
    fields = [id, utc_iso(at), type, actor, grant_id, list(datasets), detail, prev_hash]
    return hashlib.sha256(canonical_json(fields)).hexdigest()


def append(
    conn: Connection,
    type: str,
    actor: str,
    *,
    grant_id: str | None = None,
    datasets: Iterable[str] = (),
    detail: Mapping[str, Any] | None = None,
) -> Event:
    """Append one event to the chain in the caller's transaction and return it.

    Refuses (:class:`AuditError`) an unknown ``type``, empty or oversized
    names, and a ``detail`` that is not a plain JSON object (str keys; str,
    int, finite float, bool, None, list, dict values). A detail over 64 KiB is
    stored summarised (``gateway.audit.fields.summarise``), never refused.
    Waits for the chain lock, which it holds until the caller's transaction
    ends; on SQLite the transaction must be a write transaction of an engine
    from :func:`gateway.store.make_engine`. On PostgreSQL the transaction
    should be READ COMMITTED (the default): under a stricter isolation level
    a stale snapshot makes the append fail rather than fork the chain.
    """
    if type not in EVENT_TYPES:
        raise AuditError(f"unknown audit event type {type!r}: add it to EVENT_TYPES first")
    actor = name(actor, "actor")
    grant = None if grant_id is None else name(grant_id, "grant_id")
    names = dataset_names(datasets)
    plain = plain_detail({} if detail is None else detail)
    try:
        serialise_writers(conn, CHAIN_LOCK)
    except StoreError as e:
        raise AuditError(str(e)) from e
    head = conn.execute(_HEAD).first()
    event_id, prev = (1, GENESIS) if head is None else (int(head.id) + 1, str(head.hash))
    at = datetime.now(UTC)  # under the lock, so time order follows chain order
    digest = event_hash(event_id, at, type, actor, grant, names, plain, prev)
    event = Event(event_id, at, type, actor, grant, names, plain, prev, digest)
    row = event.to_json() | {"at": at, "datasets": list(names)}
    try:
        conn.execute(_INSERT, row)
    except IntegrityError as e:
        raise AuditError(
            f"event {event_id} could not be added: the chain head moved "
            "(something wrote audit events without the chain lock)"
        ) from e
    return event


def verify(
    conn: Connection,
    *,
    anchors: Iterable[tuple[int, str]] = (),
    batch: int = 1000,
    start: tuple[int, str] | None = None,
) -> Verification:
    """Recompute the chain in id order, streaming ``batch`` rows at a time, and
    report the first broken link: a changed field, a removed event (a gap in
    the ids), an inserted or reordered event (a ``prev_hash`` that does not
    match), an unreadable row, or a difference from ``anchors`` ((id, hash)
    pairs recorded earlier, e.g. by an earlier verification or export).

    ``start``: an (id, hash) anchor already trusted (a signed checkpoint):
    recompute from that event on instead of from event 1; the event must
    still carry that hash. ``checked`` then counts the events from it on."""
    expected = dict(anchors)
    checked, prev, head_id = 0, GENESIS, 0
    stmt = _raw_select(conn)
    if start is not None:  # the first row links to whatever it names; its hash is anchored
        expected[start[0]] = start[1]
        stmt = stmt.where(audit_events.c.id >= start[0])
        head_id = start[0] - 1
    # Closed explicitly: on PostgreSQL the rows come through a server-side cursor.
    with conn.execute(stmt.execution_options(yield_per=batch)) as rows:
        for row in rows:
            event_id = int(row.id)
            if start is not None and checked == 0:
                prev = str(row.prev_hash)
            problem = _link_problem(row, head_id + 1, prev)
            if problem is None and expected.get(event_id, row.hash) != row.hash:
                problem = "its hash differs from the one recorded earlier: the chain was rewritten"
            if problem is not None:
                return _broken(event_id, problem, checked, head_id if checked else 0, prev)
            checked, prev, head_id = checked + 1, str(row.hash), event_id
    missing = [i for i in expected if i > head_id]
    if missing:
        reason = f"the log ends at event {head_id}, but event {max(missing)} was recorded earlier"
        ended = head_id if checked or start is None else 0  # nothing verified from start on
        return _broken(head_id + 1, reason + ": events were cut off", checked, ended, prev)
    return Verification(
        ok=True,
        checked=checked,
        first_broken=None,
        reason=f"all {checked} events verify",
        head_id=head_id or None,
        head_hash=prev if head_id else None,
    )


class Writer(Protocol):
    def write(self, text: str, /) -> object: ...


def export_jsonl(
    conn: Connection,
    out: Writer,
    *,
    datasets: Iterable[str] | None = None,
    since: datetime | None = None,
    batch: int = 1000,
) -> int:
    """Write events as JSON Lines (one :meth:`Event.to_json` object per line,
    id order) and return how many. ``datasets``: only events about at least
    one of them (a provider's export); ``since``: only events at or after
    that time. The caller records the export (``audit.exported``)."""
    stmt = _raw_select(conn)
    if since is not None:
        if since.tzinfo is None or since.utcoffset() is None:
            raise AuditError("since must be timezone-aware")
        stmt = stmt.where(audit_events.c.at >= since)
    if datasets is not None:
        names = dataset_names(datasets)
        if not names:
            return 0
        stmt = stmt.where(_mentions_any(conn, names))
    written = 0
    with conn.execute(stmt.execution_options(yield_per=batch)) as rows:
        for row in rows:
            try:
                event = _decode(row)
            except ValueError as e:
                raise AuditError(f"event {row.id} is unreadable ({e}): run verify") from e
            line = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
            out.write(line + "\n")
            written += 1
    return written


def iter_events(conn: Connection, *, batch: int = 1000) -> Iterator[Event]:
    """Every event in id order, streaming (for tests and tools)."""
    with conn.execute(_raw_select(conn).execution_options(yield_per=batch)) as rows:
        for row in rows:
            yield _decode(row)


# -- internals ----------------------------------------------------------------


def _raw_select(conn: Connection) -> sa.Select[Any]:
    """Rows as stored: JSON columns as text and, on SQLite, ``at`` as text, so
    a damaged row is reported by verify instead of failing the whole read."""
    c = audit_events.c
    at = sa.type_coerce(c.at, sa.Text()).label("at") if is_sqlite(conn) else c.at
    return sa.select(
        c.id,
        at,
        c.type,
        c.actor,
        c.grant_id,
        sa.cast(c.datasets, sa.Text()).label("datasets"),
        sa.cast(c.detail, sa.Text()).label("detail"),
        c.prev_hash,
        c.hash,
    ).order_by(c.id)


def _decode(row: sa.Row[Any]) -> Event:
    at = row.at
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError("at is not a timezone-aware timestamp")
    datasets = json.loads(row.datasets)
    detail = json.loads(row.detail)
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise ValueError("datasets is not a list of names")
    if not isinstance(detail, dict):
        raise ValueError("detail is not a JSON object")
    return Event(
        id=int(row.id),
        at=at.astimezone(UTC),
        type=str(row.type),
        actor=str(row.actor),
        grant_id=None if row.grant_id is None else str(row.grant_id),
        datasets=tuple(datasets),
        detail=detail,
        prev_hash=str(row.prev_hash),
        hash=str(row.hash),
    )


def _link_problem(row: sa.Row[Any], expected_id: int, prev: str) -> str | None:
    """Why the event in ``row`` does not continue the chain, or None."""
    if row.id != expected_id:
        if row.id < expected_id:
            return "ids are out of order"
        if row.id == expected_id + 1:
            return f"event {expected_id} is missing"
        return f"events {expected_id} to {row.id - 1} are missing"
    try:
        event = _decode(row)
        recomputed = event_hash(
            event.id,
            event.at,
            event.type,
            event.actor,
            event.grant_id,
            event.datasets,
            event.detail,
            event.prev_hash,
        )
    except (ValueError, TypeError) as e:
        return f"the stored event is unreadable ({e})"
    if event.prev_hash != prev:
        if expected_id == 1:
            return "the first event does not start from the genesis hash"
        return f"its prev_hash does not match the hash of event {expected_id - 1}"
    if recomputed != event.hash:
        return "its stored hash does not match its fields: it was changed after it was written"
    return None


def _broken(event_id: int, reason: str, checked: int, head_id: int, prev: str) -> Verification:
    return Verification(
        ok=False,
        checked=checked,
        first_broken=event_id,
        reason=reason,
        head_id=head_id or None,
        head_hash=prev if head_id else None,
    )


def _mentions_any(conn: Connection, names: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """SQL: the event's ``datasets`` list holds at least one of ``names``."""
    if is_sqlite(conn):
        each = sa.func.json_each(audit_events.c.datasets).table_valued("value")
    else:
        each = (
            sa.func.json_array_elements_text(audit_events.c.datasets)
            .table_valued("value")
            .render_derived()
        )
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value.in_(names)))
