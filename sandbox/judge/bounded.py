"""Checking outside the gateway's process, within memory and time limits.

Stage 5 of the data flow runs here: reading a job's outputs, the trusted
facts, every rule and the ledger's check. What a job produced decides how
much work that is (a GROUP BY with 19,000 tiny groups, 20,000 files), so it
never runs in the process that serves the API. ``BoundedPool.call`` runs a
function of ours in one of a few long-lived worker processes (started from
a fresh interpreter, so they share no threads or locks with the caller, and
keep their caches between jobs) and watches it: a worker whose resident
memory passes ``memory_bytes`` or whose call runs past ``seconds`` is
killed, and ``call`` raises ``CheckLimitExceeded`` with a plain reason.
A worker is a fresh interpreter (``python -m sandbox.judge.bounded``) talking
over a socket pair: no fork of the serving process, so none of its threads,
locks or memory.

Invariants:
- Only module-level functions of ours are called, with picklable
  arguments; a worker that was killed is replaced on the next call.
- A limit is a property of the call: the same pool serves several
  pipelines with different limits.
- Exceptions raised by the function come back as themselves (pickled);
  a worker that dies otherwise is ``CheckLimitExceeded("the checker stopped")``.
- A pool belongs to whoever made it (the gateway's runtime: one per app,
  ``gateway.runtime.build_runtime``), who closes it (the app's shutdown).
  There is no process-wide pool; a pool dropped without ``close`` still
  ends its workers when it is collected or the interpreter exits.
- A closed pool refuses calls, and a worker coming back from a call that
  was running while the pool closed is ended, not kept.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from sandbox.errors import CheckError

PRELOAD = [
    "sandbox.judge.outputs.python",
    "sandbox.judge.facts",
    "sandbox.judge.verdict",
    "sandbox.judge.rules",
    "sandbox.judge.ledger",
    "sandbox.judge.ledger_keys",
]
POLL_SECONDS = 0.05
CHECKERS = 2  # checker processes of one gateway's pool: the job worker's concurrency
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class CheckLimitExceeded(CheckError):
    """Checking a job needed more memory or time than the settings allow."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 2 * 1024**3
    seconds: float = 300.0


def _serve(conn: Connection) -> None:
    """A worker's loop: call what is asked, send back the result or the exception."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result: tuple[bool, Any] = (True, fn(*args))
        except BaseException as e:  # sent back whole: the caller decides
            result = (False, e)
        try:
            conn.send(result)
        except Exception as e:  # an unpicklable result or exception
            conn.send(
                (False, CheckError(f"the checker's answer could not be sent: {type(e).__name__}"))
            )


def _rss(pid: int) -> int:
    """Resident memory of a process, in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _Worker:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.judge.bounded", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        theirs.close()
        self.conn = Connection(ours.detach())

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.conn.close()


class BoundedPool:
    """A few checker processes; ``call`` runs one function in one of them, bounded."""

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._free: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False
        # Ends the idle workers if the pool is dropped unclosed, or at exit.
        self._finalizer = weakref.finalize(self, _kill_all, self._free)

    @property
    def closed(self) -> bool:
        return self._closed

    def call(self, fn: Callable[..., Any], *args: Any, limits: Limits | None = None) -> Any:
        """``fn(*args)`` in a checker, within ``limits``; CheckError once the pool is closed."""
        limits = limits or Limits()
        with self._slots:
            worker = self._take()
            try:
                result = self._run(worker, fn, args, limits)
            except BaseException:
                worker.kill()
                raise
            with self._lock:
                keep = not self._closed
                if keep:
                    self._free.append(worker)
            if not keep:
                worker.kill()
            return result

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise CheckError("the checker pool is closed")
            while self._free:
                worker = self._free.pop()
                if worker.alive:
                    return worker
                worker.kill()
        return _Worker()

    def _run(
        self, worker: _Worker, fn: Callable[..., Any], args: tuple[Any, ...], limits: Limits
    ) -> Any:
        worker.conn.send((fn, args))
        deadline = time.monotonic() + limits.seconds
        pid = worker.process.pid
        while not worker.conn.poll(POLL_SECONDS):
            if not worker.alive:
                raise CheckLimitExceeded("the checker stopped before it finished")
            if pid is not None and _rss(pid) > limits.memory_bytes:
                raise CheckLimitExceeded(
                    f"checking needed more than {limits.memory_bytes // 1024**2} MiB of memory"
                )
            if time.monotonic() > deadline:
                raise CheckLimitExceeded(f"checking took longer than {limits.seconds:g} seconds")
        try:
            ok, value = worker.conn.recv()
        except (EOFError, OSError) as e:
            raise CheckLimitExceeded("the checker stopped before it finished") from e
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """End every checker and refuse further calls (idempotent)."""
        with self._lock:
            self._closed = True
            workers = list(self._free)
            self._free.clear()
        _kill_all(workers)


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.kill()


def _main(fd: int) -> None:
    for name in PRELOAD:  # warm: the first job should not pay for imports
        importlib.import_module(name)
    _serve(Connection(fd))


if __name__ == "__main__":
    _main(int(sys.argv[1]))
