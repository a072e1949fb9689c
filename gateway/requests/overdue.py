"""The sweep task that acts on overdue data request steps.

Stage: a data request, from submission to supply. Serves Chengdu rules 004
art. 20 (formal review 5 working days, provider review 10 plus an approved
extension, supply 20, delivery 10): a step past its deadline is not only
shown late, the party who must act and the administrators are told.

Invariants:

- For every open request whose current step's deadline (computed now, on the
  statutory calendar) has passed, one notice keyed
  ``request:<id>:<step>:overdue`` goes to the responsible party
  (``gateway.requests.steps.responsible``) and to the administrators, and one
  audit event ``request.overdue`` (request, step, due, provisional) records it.
- Once: the event is written only when ``notify`` wrote the notice, in the same
  transaction, so a second sweep, or two sweeping at once, add nothing (the
  notice's unique (key, audience) decides who wrote it).
- Each request is acted on in a transaction of its own, re-read there: a
  request that moved on meanwhile is left to the next sweep; one that fails
  does not stop the others (the task then raises ``TaskFailed`` with the lines
  it did, and the next sweep tries again).
"""

from __future__ import annotations

import logging

from gateway.audit import append
from gateway.audit.chain import SYSTEM
from gateway.notices.service import notify
from gateway.requests.model import DEADLINE_DAYS, RequestRecord
from gateway.requests.records import read_request, read_requests
from gateway.requests.service import RequestService
from gateway.requests.steps import STEP_KEY, overseers, responsible
from gateway.store import read_transaction
from gateway.store.types import utc_iso
from gateway.sweep.run import TaskFailed
from gateway.sweep.tasks import SweepContext, Task

EVENT = "request.overdue"
log = logging.getLogger("dsr.gateway.requests")


def _act(service: RequestService, ctx: SweepContext, found: RequestRecord) -> str | None:
    """Tell of ``found``'s overdue step in a transaction of its own; None when it moved on
    meanwhile or was told already."""
    with ctx.engine.begin() as conn:
        record = read_request(conn, found.id)
        deadline = service.deadline(record, ctx.now)
        if record.state != found.state or deadline is None or not deadline.overdue:
            return None
        step, due = STEP_KEY[record.state], utc_iso(deadline.due)
        detail = {"request": record.id, "step": step, "due": due,
                  "provisional": deadline.provisional}  # fmt: skip
        written = notify(
            conn,
            key=f"request:{record.id}:{step}:overdue",
            kind=EVENT,
            subject=f"data request {record.id}: {deadline.step} was due {due}",
            audiences=[*responsible(record, service.providers(record)), *overseers()],
            at=ctx.now,
            detail=detail,
            datasets=record.datasets,
        )
        if not written:
            return None
        append(conn, EVENT, SYSTEM, datasets=record.datasets, detail=detail)
    return f"data request {record.id}: {deadline.step} overdue since {due}"


def act_on_overdue(ctx: SweepContext) -> list[str]:
    """Tell whoever must act on each overdue request step, once; one line per step told."""
    service = RequestService(ctx.grants, dict(DEADLINE_DAYS), lambda: ctx.now, ctx.calendar)
    with read_transaction(ctx.engine) as conn:
        found = read_requests(conn)
    lines: list[str] = []
    failed: list[str] = []
    for record in found:
        deadline = service.deadline(record, ctx.now)
        if deadline is None or not deadline.overdue:
            continue
        try:
            line = _act(service, ctx, record)
        except Exception:  # one request's failure must not keep the others untold
            log.exception("telling of data request %s's overdue step failed", record.id)
            failed.append(record.id)
            continue
        if line:
            lines.append(line)
    if failed:
        raise TaskFailed(f"overdue data requests not told: {', '.join(failed)}", lines)
    return lines


OVERDUE_TASK = Task("requests.overdue", act_on_overdue)
