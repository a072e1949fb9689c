"""Refusals as the caller sees them and as the audit log keeps them.

Every 4xx and 5xx answer of the gateway (REST and console) goes through
here:

- **Reference ids.** Each refusal gets a random reference (``ref-`` and 16
  hex digits), returned in the body and written to the gateway's log with
  the full error, its cause and the route: support finds the details from
  the reference, the caller never sees them.
- **No internals.** :func:`public_text` is what a body may say: absolute
  paths are cut out and an engine's message (DuckDB, SQLite, PostgreSQL,
  SEAL, a traceback) ends the text. Domain errors are written to need no
  scrubbing; this is the net under them.
- **Refusals are audited.** A 403 (a role the route does not admit, an
  object of another tenant) is an ``access.denied`` event: who, the route,
  the object's id, why. A flood cannot grow the log without bound: events
  are aggregated per actor and minute (:class:`DenialLog`). The first
  refusal of an actor in a minute is written at once (``"first"``); the
  rest of that minute is counted and written as one summary event when the
  minute is over (at the actor's next refusal, at the next flush, or when
  the gateway stops), with the routes and objects seen (at most 20 of
  each). So each actor adds at most two events a minute. A process killed
  mid-minute loses that minute's count, never its first refusal.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from gateway.audit import append

log = logging.getLogger("dsr.gateway.refusals")

MAX_KEPT = 20  # routes and objects named in one summary event
MAX_TEXT = 300  # characters of a reason kept in an event

# An absolute path (at least one separator after the root), not a fraction or "and/or".
_PATH = re.compile(r"(?<![\w.~:/])/(?:[^\s'\"`:,;()\[\]<>{}]+/)*[^\s'\"`:,;()\[\]<>{}]*")
# Where an engine's own message starts: what follows is the engine's, not ours.
_ENGINE = re.compile(
    r"Traceback \(most recent call last\)|\bFile \"|"
    # DuckDB's own classes, as it prints them: "Binder Error: ..."
    r"\b(?:Binder|Parser|Catalog|IO|Conversion|Invalid Input|Out of Memory|Constraint|"
    r"Dependency|Internal|Permission|Serialization|Syntax|Transaction|Not implemented|"
    r"Interrupt|Fatal|Sequence|HTTP|Missing Extension|Invalid Configuration) Error:|"
    r"\b[A-Z]\w*(?:Exception|Error)[:(]|OutOfMemory|\[Errno|"
    r"(?i:\b_?duckdb\b|\bsqlite3\b|\bpsycopg\b|\bsqlalchemy\b|\btenseal\b)"
)


def reference() -> str:
    """A fresh reference id for one refusal."""
    return "ref-" + secrets.token_hex(8)


def public_text(text: str) -> str:
    """``text`` as a body may carry it: no absolute path, nothing of an engine's message."""
    cut = _ENGINE.search(text)
    if cut is not None:
        text = text[: cut.start()].rstrip(" :;,-(") or "the request could not be completed"
        text += " (details withheld: see the reference)"
    return _PATH.sub("…", text)


def public_detail(value: Any) -> Any:
    """:func:`public_text` over every string of a JSON-like detail."""
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, list):
        return [public_detail(v) for v in value]
    if isinstance(value, dict):
        return {k: public_detail(v) for k, v in value.items()}
    return value


@dataclass
class _Window:
    minute: datetime
    count: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    objects: list[str] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class Denial:
    """One refused request, as the audit log records it (never a body or a value)."""

    actor: str
    method: str
    route: str  # the route's template, e.g. /v1/jobs/{job_id}
    object_id: str | None  # the id in the path, when there is one
    status: int
    reason: str


class DenialLog:
    """``access.denied`` events aggregated per actor and minute (see the module docstring)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._open: dict[str, _Window] = {}

    def record(self, denial: Denial) -> None:
        """Count ``denial``; write the minute's first refusal now, summaries of past minutes."""
        minute = self._clock().replace(second=0, microsecond=0)
        with self._lock:
            due = self._close_before(minute)
            window = self._open.get(denial.actor)
            first = window is None
            if window is None:
                window = self._open[denial.actor] = _Window(minute)
            window.count += 1
            key = f"{denial.method} {denial.route}"
            if key in window.routes or len(window.routes) < MAX_KEPT:
                window.routes[key] += 1
            else:
                window.truncated = True
            if denial.object_id and denial.object_id not in window.objects:
                if len(window.objects) < MAX_KEPT:
                    window.objects.append(denial.object_id[:200])
                else:
                    window.truncated = True
        events = [(a, self._summary(w)) for a, w in due if w.count > 1]
        if first:  # after the summaries of closed minutes: the log reads in time order
            events.append((denial.actor, self._first(denial, minute)))
        self._write(events)

    def flush(self, everything: bool = False) -> int:
        """Write the summaries of closed minutes (all windows when ``everything``); how many."""
        with self._lock:
            if everything:
                due = list(self._open.items())
                self._open.clear()
            else:
                due = self._close_before(self._clock().replace(second=0, microsecond=0))
        events = [(a, self._summary(w)) for a, w in due if w.count > 1]
        self._write(events)
        return len(events)

    def _close_before(self, minute: datetime) -> list[tuple[str, _Window]]:
        closed = [(a, w) for a, w in self._open.items() if w.minute < minute]
        for actor, _ in closed:
            del self._open[actor]
        return closed

    @staticmethod
    def _first(d: Denial, minute: datetime) -> dict[str, Any]:
        return {
            "minute": minute.isoformat(),
            "first": True,
            "count": 1,
            "method": d.method,
            "route": d.route,
            "object": d.object_id[:200] if d.object_id else None,
            "status": d.status,
            "reason": public_text(d.reason)[:MAX_TEXT],
        }

    @staticmethod
    def _summary(w: _Window) -> dict[str, Any]:
        return {
            "minute": w.minute.isoformat(),
            "first": False,
            "count": w.count,  # every refusal of the minute, the first one included
            "routes": dict(sorted(w.routes.items())),
            "objects": w.objects,
            "truncated": w.truncated,
        }

    def _write(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if not events:
            return
        try:
            with self._engine.begin() as conn:
                for actor, detail in events:
                    append(conn, "access.denied", actor, detail=detail)
        except Exception:  # the refusal stands even when the log cannot take it now
            log.exception("access.denied events could not be written")


# -- from a refusal to an answer -------------------------------------------------------


def note(request: Request, status: int, error: object, reason: str = "") -> str:
    """Log a refusal under a fresh reference (the full error stays in the log), audit it
    when it is a 403, and return the reference for the body."""
    ref = reference()
    route = getattr(request.scope.get("route"), "path", request.url.path)
    cause = error if isinstance(error, BaseException) else None
    level = logging.ERROR if status >= 500 else logging.INFO
    log.log(
        level,
        "%s %s %s -> %d: %s",
        ref,
        request.method,
        route,
        status,
        error,
        exc_info=cause if status >= 500 and cause is not None else None,
    )
    metrics = getattr(request.app.state, "metrics", None)  # dsr_refusals_total (gateway.metrics)
    if metrics is not None:
        metrics.refused(status, error)
    account = getattr(request.state, "account", None)
    denials: DenialLog | None = getattr(request.app.state, "denials", None)
    if status == 403 and account is not None and denials is not None:
        ids = [str(v) for v in request.path_params.values()]
        denials.record(
            Denial(
                actor=account.name,
                method=request.method,
                route=str(route),
                object_id=ids[-1] if ids else None,
                status=status,
                reason=reason or str(error),
            )
        )
    return ref


def answer(
    request: Request,
    status: int,
    detail: Any,
    error: object,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON body of a refusal: the public detail and the reference, nothing else."""
    ref = note(request, status, error, detail if isinstance(detail, str) else "")
    if status >= 500:
        detail = "the gateway cannot serve this now"
    body = {"detail": public_detail(detail), "reference": ref}
    return JSONResponse(body, status, headers=dict(headers) if headers else None)
