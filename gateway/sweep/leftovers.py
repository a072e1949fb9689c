"""The sweep task ``grants.leftovers``: what a job stored after its grant ended goes too.

Stage: after a grant's end. Serves 004 art. 25 (the copies destroyed, every one
recorded). A grant's end destroys what exists then (``gateway.grants.destroy``),
but a job already running is left to the worker: it ends later (refused at
release, since the grant's scope lines are gone, or held), and the outputs the
checks stored are then on disk under an ended grant. This task destroys them.

Invariants:

- For every ended grant (revoked, expired) whose jobs that were not released
  have outputs or ledger cells on disk, they are destroyed and each recorded
  (``destruction``, ``because``: the grant's state) by
  ``gateway.grants.destroy.destroy_left_outputs``.
- Each grant in a transaction of its own, its row locked first
  (``GrantService.locked``; on SQLite every write transaction holds the lock), so
  two sweeps at once destroy and record each job's outputs once; the second
  finds nothing left.
- Jobs still queued, running or checking are not touched (the worker owns their
  directories); the next sweep after they end finds their outputs.
"""

from __future__ import annotations

from gateway.audit.chain import SYSTEM
from gateway.grants.destroy import Layout, destroy_left_outputs, grants_with_left_outputs
from gateway.store import read_transaction
from gateway.sweep.tasks import SweepContext, Task


def destroy_leftovers(ctx: SweepContext) -> list[str]:
    """Destroy the unreleased outputs stored under ended grants; one line per record."""
    layout = Layout(ctx.grants.data_dir)
    with read_transaction(ctx.engine) as conn:
        found = grants_with_left_outputs(conn, layout)
    lines: list[str] = []
    for grant_id in found:
        with ctx.engine.begin() as conn:
            grant = ctx.grants.locked(conn, grant_id)
            records = destroy_left_outputs(
                conn, grant, layout, actor=SYSTEM, because=grant.state.value
            )
        lines += [f"grant {grant_id} ({grant.state.value}): {r.what} destroyed" for r in records]
    return lines


LEFTOVERS_TASK = Task("grants.leftovers", destroy_leftovers)
