"""Console sessions: a signed-in browser holds a random session id, never the token.

Step 1 of the data flow for people in a browser. The token typed into the
login form is checked with ``gateway.identity.authenticate`` and kept in the
gateway's memory, under the SHA-256 of a fresh random session id; the
browser gets only that id, in an ``HttpOnly``, ``SameSite=Strict`` cookie
scoped to ``/console`` (``Secure`` over HTTPS). Every page authenticates the
kept token again, so revoking a token or disabling an account ends its
sessions at the next click.

Invariants:
- A session ends after ``IDLE`` seconds without use or ``LIFETIME`` seconds
  in all, on sign-out, or when the gateway restarts (the table is in memory:
  the gateway serves from one process).
- Every form that changes something carries the session's CSRF token, and
  its POST is refused unless the token matches (constant-time) and the
  ``Origin`` header, when sent, is the console's own. The sign-in form,
  before any session exists, carries a token bound to a cookie instead
  (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request
from starlette.responses import Response

COOKIE = "dsr_console"
LOGIN_COOKIE = "dsr_console_login"
LANG_COOKIE = "lang"
PATH = "/console"
IDLE = 30 * 60
LIFETIME = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass
class Session:
    token: str
    csrf: str
    created: float
    seen: float


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Sessions:
    """The gateway's console sessions (see the module docstring)."""

    idle: float = IDLE
    lifetime: float = LIFETIME
    limit: int = MAX_SESSIONS
    _table: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, token: str) -> tuple[str, Session]:
        """A new session for ``token``: its id (for the cookie) and the session."""
        now = time.monotonic()
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            if len(self._table) >= self.limit:  # drop the least recently used
                oldest = min(self._table, key=lambda k: self._table[k].seen)
                del self._table[oldest]
            self._table[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of ``session_id`` (its idle clock restarted), else None."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._table.get(_key(session_id))
            if session is None:
                return None
            if now - session.seen > self.idle or now - session.created > self.lifetime:
                del self._table[_key(session_id)]
                return None
            session.seen = now
            return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._table.pop(_key(session_id), None)

    def _expire(self, now: float) -> None:
        stale = [
            k
            for k, s in self._table.items()
            if now - s.seen > self.idle or now - s.created > self.lifetime
        ]
        for k in stale:
            del self._table[k]


def sessions_of(request: Request) -> Sessions:
    """The app's session table, made on first use."""
    state = request.app.state
    table: Sessions | None = getattr(state, "console_sessions", None)
    if table is None:
        table = Sessions()
        state.console_sessions = table
    return table


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


def same_origin(request: Request) -> bool:
    """Rule: a form POST comes from the console's own origin (when the browser says where)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
