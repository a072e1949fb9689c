"""Stage 7 of the data flow, the audit log's anchors: when checkpoints are made.

A :class:`Checkpointer` signs the chain head
(:func:`gateway.audit.checkpoints.make_checkpoint`) when it is due:

- the head moved by at least ``audit_checkpoint_every_events`` events since
  the last checkpoint, or
- the head moved at all and ``audit_checkpoint_every_seconds`` passed since
  the last checkpoint (since the checkpointer started, before the first);

and on demand (:meth:`Checkpointer.checkpoint_now`: ``dsr audit
checkpoint``, ``POST /v1/audit/checkpoints``, the gateway's shutdown)
whenever the head moved. In the gateway a background thread
(:func:`start_checkpoints`, from the app's lifespan) asks every few
seconds; a checkpoint is at most one poll late.

Invariants:

- One checkpointer per app (``app.state.checkpointer``, made on first use by
  :func:`checkpointer_of`); it signs with the configured signer
  (:func:`gateway.audit.signers.signer_from_settings`). Gateways sharing a
  store each run one; the table keeps one checkpoint per head and key.
- The last checkpoint is the newest one signed by this signer in the table,
  the log outside the database, or this process's memory: deleting rows from
  the table does not make the gateway sign a rewritten chain.
- The gateway does not start with an unusable signer (an unsafe key file, a
  signer command without a public key). Later, a checkpoint that cannot be
  made (a broken chain, a signer command that fails) is logged and tried
  again at the next poll: it never stops the gateway, and a broken chain is
  never signed.
- Time comes from an injected clock (timezone-aware UTC), so tests drive it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import Engine

from gateway.audit.anchors import latest_known
from gateway.audit.checkpoints import Checkpoint, CheckpointLog, head, log_of, make_checkpoint
from gateway.audit.signers import Signer, key_id, signer_from_settings
from gateway.errors import GatewayError
from gateway.settings import GatewaySettings
from gateway.store.engine import read_transaction

log = logging.getLogger("dsr.audit.checkpoints")

POLL_SECONDS = 5.0  # at most this long between looks at the head
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Checkpointer:
    """Makes checkpoints when due (see the module docstring). Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        log_file: CheckpointLog,
        *,
        every_events: int,
        every_seconds: float,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.log = log_file
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.clock = clock
        self.started = clock()
        self.made = threading.Event()  # set whenever a new checkpoint is kept (tests wait on it)
        self._last: Checkpoint | None = None
        self._loaded = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: GatewaySettings, *, clock: Clock = utc_now
    ) -> Checkpointer:
        return cls(
            engine,
            signer_from_settings(settings),
            log_of(settings.data_dir, settings.audit_checkpoint_log),
            every_events=settings.audit_checkpoint_every_events,
            every_seconds=settings.audit_checkpoint_every_seconds,
            clock=clock,
        )

    def last(self) -> Checkpoint | None:
        """The newest checkpoint signed by this signer (table, log or memory)."""
        with self._lock:
            return self._known()

    def due(self) -> bool:
        """Whether the head moved far enough, or long enough ago, to sign it."""
        with self._lock:
            return self._due()

    def tick(self) -> Checkpoint | None:
        """Make a checkpoint if one is due; the new checkpoint, else None."""
        with self._lock:
            return self._make() if self._due() else None

    def checkpoint_now(self) -> tuple[Checkpoint | None, bool]:
        """Sign the head now if it moved since the last checkpoint: (the newest
        checkpoint, whether it is new); (None, False) while the log is empty."""
        with self._lock:
            before = self._known()
            made = self._make()
            return made, made is not None and made != before

    # -- the background thread ---------------------------------------------------------

    def start(self, poll_seconds: float | None = None) -> None:
        """Start the thread that calls :meth:`tick` (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        poll = min(POLL_SECONDS, self.every_seconds) if poll_seconds is None else poll_seconds
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(poll,), name="dsr-audit-checkpoints", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self, poll: float) -> None:
        said = ""  # the last failure, logged once until something changes
        while not self._stop.wait(poll):
            try:
                self.tick()
                said = ""
            except GatewayError as e:  # logged; tried again at the next poll
                if str(e) != said:
                    log.error("audit checkpoint not made: %s", e)
                said = str(e)
            except Exception:  # the thread must outlive a database hiccup
                log.exception("audit checkpoint not made")

    # -- internals (under self._lock) -----------------------------------------------------

    def _known(self) -> Checkpoint | None:
        if not self._loaded:
            public = self.signer.public_key()
            self._last = latest_known(self.engine, self.log, {key_id(public): public})
            self._loaded = True
        return self._last

    def _due(self) -> bool:
        with read_transaction(self.engine) as conn:
            top = head(conn)
        if top is None:
            return False
        last = self._known()
        moved = top[0] - (0 if last is None else last.event_id)
        if moved <= 0:
            return False
        since = self.started if last is None else last.at
        elapsed = (self.clock() - since).total_seconds()
        return moved >= self.every_events or elapsed >= self.every_seconds

    def _make(self) -> Checkpoint | None:
        last = self._known()
        made = make_checkpoint(self.engine, self.signer, self.log, after=last, now=self.clock())
        if made is not None and made != last:
            self._last = made
            self.made.set()
            log.info("audit checkpoint at event %d (key %s)", made.event_id, made.key_id[:16])
        return made


# -- the app's checkpointer -----------------------------------------------------------------

_APP_LOCK = threading.Lock()


def checkpointer_of(app: FastAPI) -> Checkpointer:
    """The app's checkpointer, made from its settings and engine on first use."""
    with _APP_LOCK:
        made: Checkpointer | None = getattr(app.state, "checkpointer", None)
        if made is None:
            made = Checkpointer.from_settings(app.state.engine, app.state.settings)
            app.state.checkpointer = made
        return made


def start_checkpoints(app: FastAPI) -> None:
    """Start the app's checkpointer thread (the app's lifespan calls this). An
    unusable signer (an unsafe key file, a signer command that gives no public
    key) stops the start with :class:`SignerError`: fail fast, not at the
    first checkpoint."""
    checkpointer = checkpointer_of(app)
    checkpointer.signer.public_key()  # made on first use, checked on every start
    checkpointer.start()


def stop_checkpoints(app: FastAPI) -> None:
    """Stop the thread and sign the head a last time (the app's shutdown)."""
    checkpointer = checkpointer_of(app)
    checkpointer.stop()
    try:
        checkpointer.checkpoint_now()
    except GatewayError as e:
        log.error("audit checkpoint at shutdown not made: %s", e)
    except Exception:  # the rest of the shutdown must still run
        log.exception("audit checkpoint at shutdown not made")
