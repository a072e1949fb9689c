"""The sweep task ``grants.expire``: a grant's term ends, and its copies with it, unasked.

Stage: the end of a grant. Serves 004 art. 25 (退出机制: an agreement that runs
out ends the access at once and the data and its copies are destroyed
irreversibly, with records kept three years), 001 art. 22 (一: 运营协议期满) and
003 二(三)2 (1): without it a grant nobody uses stays ``active`` with its copies
on disk long after its term, because ``GrantService.active_grant`` expires a
grant only when someone uses it.

Invariants:

- Every live grant (active or suspended) whose ``valid_until`` is at or before
  ``ctx.now`` is moved to ``expired`` by ``GrantService.expire_if_due``: the
  ``grant.state`` event, the holds dropped, the scope lines removed and every
  copy destroyed with its ``destruction`` event (``gateway.grants.destroy``).
- Each grant in a transaction of its own, re-read there: a grant another sweep
  (or a use) expired meanwhile is skipped, never an error, so two sweeps at once
  expire it once and destroy its copies once.
- A grant that cannot be expired (a file that cannot be destroyed) stays live
  with its copies, is logged, and is tried again at the next sweep; the others
  are expired regardless (:class:`~gateway.sweep.run.TaskFailed`).
"""

from __future__ import annotations

import logging

from gateway.grants.model import LIVE
from gateway.store import read_transaction
from gateway.sweep.run import TaskFailed
from gateway.sweep.tasks import SweepContext, Task

log = logging.getLogger("dsr.gateway.sweep")


def expire_grants(ctx: SweepContext) -> list[str]:
    """Expire every live grant past its term at ``ctx.now``; one line per grant expired."""
    with read_transaction(ctx.engine) as conn:
        due = [g for g in ctx.grants.find(conn, states=LIVE) if ctx.now >= g.valid_until]
    lines: list[str] = []
    failed: list[str] = []
    for grant in due:
        try:
            with ctx.engine.begin() as conn:
                expired = ctx.grants.expire_if_due(conn, grant.id, ctx.now)
        except Exception:
            log.exception("grant %s not expired: tried again at the next sweep", grant.id)
            failed.append(grant.id)
            continue
        if expired:
            ended = grant.valid_until.isoformat(timespec="seconds")
            lines.append(f"grant {grant.id} expired (term ended {ended}); its copies destroyed")
    if failed:
        raise TaskFailed(f"grants not expired (see the log): {', '.join(failed)}", lines)
    return lines


EXPIRE_TASK = Task("grants.expire", expire_grants)
