"""The scheduler: a background thread of the gateway that sweeps every few minutes.

Stage: the gateway's lifetime. ``create_app`` includes
:data:`gateway.sweep.router.router`, whose lifespan starts one
:class:`Sweeper` per app (:func:`start_sweeps`, ``app.state.sweeper``) after
the job worker and the audit checkpointer, and stops it before them
(:func:`stop_sweeps`).

Invariants:

- Every ``sweep_every_seconds`` (``DSR_GATEWAY_SWEEP_EVERY_SECONDS``, 300 by
  default; 0: no thread, leave sweeping to ``dsr sweep`` from cron) the thread
  runs every task once (:func:`gateway.sweep.run.run_sweep`) at the app's
  clock's time. The first sweep is one interval after the start.
- The thread outlives any failure: a task's is contained by ``run_sweep``,
  anything else (the store unreachable) is logged and tried at the next tick.
- Several gateways on one store each sweep: every task is idempotent and safe
  when two run at once (see :mod:`gateway.sweep.tasks`), so no election is needed.
- Stopping waits for a sweep in progress (up to a timeout): a sweep is never
  cut between an action and its audit event (each is one transaction anyway).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from gateway.sweep.run import SweepResult

log = logging.getLogger("dsr.gateway.sweep")


class Sweeper:
    """Calls ``sweep`` every ``every_seconds`` on a thread of its own until stopped."""

    def __init__(self, sweep: Callable[[], SweepResult], every_seconds: float) -> None:
        if every_seconds <= 0:
            raise ValueError("a sweeper sweeps every so many seconds (more than 0)")
        self.sweep = sweep
        self.every_seconds = every_seconds
        self.ran = threading.Event()  # set after each sweep (tests wait on it)
        self.last: SweepResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dsr-sweep", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            try:
                self.last = self.sweep()
            except Exception:  # the thread must outlive a database hiccup
                log.exception("sweep not run")
            finally:
                self.ran.set()


def start_sweeps(app: Any, sweep: Callable[[], SweepResult]) -> Sweeper | None:
    """Start the app's sweeper (``app.state.sweeper``) unless the settings disable it."""
    every = float(app.state.settings.sweep_every_seconds)
    if every <= 0:
        app.state.sweeper = None
        return None
    sweeper = Sweeper(sweep, every)
    app.state.sweeper = sweeper
    sweeper.start()
    return sweeper


def stop_sweeps(app: Any) -> None:
    sweeper: Sweeper | None = getattr(app.state, "sweeper", None)
    if sweeper is not None:
        sweeper.stop()
