"""Step 1 of the data flow: who is calling, and may their role use this route.

Every route states its roles with ``requires(...)``. A request without a
valid bearer token gets 401; an account without one of the route's roles
gets 403. Every authentication failure is audited (``auth.failed``: the
token's public id when it has one, the route and the client address; never
the secret), in a transaction of its own so the refusal is recorded even
though the request goes no further.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.identity import Account, Role, authenticate, token_id_of
from gateway.store import read_transaction


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def write(request: Request) -> Iterator[Connection]:
    """A write transaction for the request: state changes and their audit events commit
    together, or neither does."""
    with engine_of(request).begin() as conn:
        yield conn


def read(request: Request) -> Iterator[Connection]:
    """A read-only snapshot for the request (holds no write lock)."""
    with read_transaction(engine_of(request)) as conn:
        yield conn


def _refuse(request: Request, token: str | None, why: str) -> HTTPException:
    # Percent-encoded: a path may carry any character (a NUL the audit log refuses).
    detail = {"route": quote(request.url.path), "method": request.method, "why": why}
    if token and (token_id := token_id_of(token)):
        detail["token"] = token_id
    if request.client is not None:
        detail["client"] = request.client.host
    with engine_of(request).begin() as conn:
        append(conn, "auth.failed", "anonymous", detail=detail)
    return HTTPException(
        status_code=401,
        detail="a valid API token is required (Authorization: Bearer dsr_...)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def current_account(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Account:
    """The account of the bearer token, or 401 (audited)."""
    if not authorization:
        raise _refuse(request, None, "no token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refuse(request, None, "not a bearer token")
    with read_transaction(engine_of(request)) as conn:
        account = authenticate(conn, token.strip())
    if account is None:
        raise _refuse(request, token.strip(), "unknown, revoked or expired token")
    request.state.account = account  # a refusal later in the request is audited under it
    return account


def requires(*roles: Role) -> Callable[..., Awaitable[Account]]:
    """A dependency: the caller's account, which must hold one of ``roles`` (else 403)."""

    async def dependency(account: Annotated[Account, Depends(current_account)]) -> Account:
        # async: no I/O here, so no hop to the thread pool
        if not account.has(*roles):
            raise HTTPException(
                status_code=403,
                detail=f"this needs the role {' or '.join(sorted(roles))}",
            )
        return account

    dependency.roles = frozenset(roles)  # type: ignore[attr-defined]  # read by the access matrix
    return dependency


ANY_ROLE = tuple(Role)
