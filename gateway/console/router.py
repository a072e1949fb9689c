"""The console's front door: sign in with an API token, sign out, the home page; and the
one router (``/console``) that gathers every audience's pages.

A failed sign-in is audited like a refused API call (``auth.failed``: the
token's public id, never its secret).
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from gateway.audit import append
from gateway.auth import engine_of
from gateway.console import (
    audit,
    data_requests,
    feedback,
    incidents,
    notices,
    products,
    providers,
    reviews,
    terminations,
)
from gateway.console.pages import (
    PREFIX,
    ConsoleRoute,
    LoginRequired,
    Viewer,
    check_form,
    check_text,
    render,
    signed_in,
)
from gateway.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    clear_cookie,
    sessions_of,
    set_cookie,
)
from gateway.identity import authenticate, token_id_of
from gateway.store import read_transaction

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
MAX_TOKEN = 200


def _next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if (
        not target
        or not target.startswith(PREFIX + "/")
        or target.startswith(PREFIX + "/login")
        or "//" in target
        or "\\" in target
        or ".." in target
    ):
        return PREFIX + "/"
    return target


def _login_page(
    request: Request, status: int = 200, problem: str | None = None, target: str = ""
) -> Response:
    csrf = secrets.token_urlsafe(32)
    notice = {"out": "login.signed_out", "expired": "login.expired"}.get(
        request.query_params.get("notice", "")
    )
    response = render(
        request,
        "login.html",
        status=status,
        login_csrf=csrf,
        problem=problem,
        notice=notice,
        target=_next(target or request.query_params.get("next")),
    )
    set_cookie(request, response, LOGIN_COOKIE, csrf)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    try:
        signed_in(request)
    except LoginRequired:
        return _login_page(request)
    return RedirectResponse(_next(request.query_params.get("next")), 303)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=MAX_TOKEN)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    target: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    check_form(request, request.cookies.get(LOGIN_COOKIE), csrf)
    check_text(token, target)
    token = token.strip()
    with read_transaction(engine_of(request)) as conn:
        account = authenticate(conn, token)
    if account is None:
        detail = {"route": quote(request.url.path), "method": "POST", "why": "console sign-in"}
        if token_id := token_id_of(token):
            detail["token"] = token_id
        if request.client is not None:
            detail["client"] = request.client.host
        with engine_of(request).begin() as conn:
            append(conn, "auth.failed", "anonymous", detail=detail)
        return _login_page(request, 401, "login.failed", target)
    sessions = sessions_of(request)
    sessions.drop(request.cookies.get(COOKIE))  # a fresh id at every sign-in
    session_id, _ = sessions.create(token)
    response = RedirectResponse(_next(target), 303)
    set_cookie(request, response, COOKIE, session_id)
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    sessions = sessions_of(request)
    session_id = request.cookies.get(COOKIE)
    session = sessions.get(session_id)
    if session is not None:
        check_form(request, session.csrf, csrf)
        sessions.drop(session_id)
    response = RedirectResponse(PREFIX + "/login?notice=out", 303)
    clear_cookie(request, response, COOKIE)
    return response


@router.get("")
def root() -> Response:
    return RedirectResponse(PREFIX + "/", 303)


@router.get("/")
def home(request: Request, viewer: Annotated[Viewer, Depends(signed_in)]) -> Response:
    return render(request, "home.html", viewer)


router.include_router(reviews.router)
router.include_router(providers.router)
router.include_router(data_requests.router)
router.include_router(audit.router)
router.include_router(notices.router)
router.include_router(products.router)
router.include_router(terminations.router)
router.include_router(incidents.router)
router.include_router(feedback.router)
