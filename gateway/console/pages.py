"""What every console page shares: who is looking, in which language, and how a page,
an error or a refusal is rendered.

Invariants:
- Every console response carries a self-only Content-Security-Policy,
  ``X-Frame-Options: DENY``, ``nosniff``, a same-origin referrer policy and
  ``no-store`` (pages show data that must not linger in caches).
- Templates are Jinja2 with autoescaping on: every value is escaped.
- No console response is a traceback or JSON: domain errors become an error
  page with the status the REST API would give (``gateway.app``'s one map),
  a missing session a redirect to the sign-in page, a wrong role a 403 page,
  a path no console route serves a 404 page (``no_route``).
- Which role sees which page is stated once, in ``PAGES``: the navigation
  and the pages' own checks both read it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Scope

from gateway.auth import engine_of
from gateway.console.messages import LANGUAGES, ZH, pick, translator
from gateway.console.sessions import (
    COOKIE,
    LANG_COOKIE,
    Session,
    same_origin,
    same_token,
    sessions_of,
    set_cookie,
)
from gateway.errors import GatewayError
from gateway.identity import Account, Role, authenticate
from gateway.refusals import note, public_text
from gateway.store import read_transaction
from gateway.workdays import CST

log = logging.getLogger("dsr.gateway.console")

HERE = Path(__file__).parent
PREFIX = "/console"
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser sends "Origin: null" with form POSTs, and the
    # origin check needs the console's own origin there.
    "Referrer-Policy": "same-origin",
}

# Page -> (path, roles that may open it). The navigation shows a role its pages.
PAGES: dict[str, tuple[str, frozenset[Role]]] = {
    "reviews": ("/console/reviews", frozenset({Role.REVIEWER})),
    "datasets": ("/console/datasets", frozenset({Role.PROVIDER, Role.ADMIN, Role.AUDITOR})),
    "requests": ("/console/requests", frozenset({Role.OPERATOR, Role.PROVIDER, Role.ADMIN})),
    "grants": ("/console/grants", frozenset({Role.OPERATOR, Role.PROVIDER, Role.ADMIN})),
    "audit_events": ("/console/audit/events", frozenset({Role.AUDITOR, Role.PROVIDER})),
    "audit_verify": ("/console/audit/verify", frozenset({Role.AUDITOR})),
    "notices": ("/console/notices", frozenset(Role)),
    "products": ("/console/products", frozenset({Role.OPERATOR, Role.ADMIN, Role.AUDITOR})),
    "terminations": (
        "/console/terminations",
        frozenset({Role.OPERATOR, Role.PROVIDER, Role.ADMIN}),
    ),
    "incidents": ("/console/incidents", frozenset({Role.PROVIDER, Role.ADMIN, Role.AUDITOR})),
    "feedback": ("/console/feedback", frozenset({Role.OPERATOR, Role.PROVIDER, Role.ADMIN})),
}

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: datetime | None) -> str:
    """A time as the people of the product read it: China Standard Time, to the minute
    (UTC where a stored time at the calendar's end cannot be moved to UTC+8)."""
    if value is None:
        return ""
    try:
        shown, zone = value.astimezone(CST), "CST"
    except OverflowError:
        shown, zone = value.astimezone(UTC), "UTC"
    return f"{shown.isoformat(sep=' ', timespec='minutes')[:16]} {zone}"


templates.filters["when"] = when


class LoginRequired(Exception):
    """No live session: the browser is sent to the sign-in page."""


class PageForbidden(Exception):
    """The account holds none of the page's roles."""

    def __init__(self, roles: Iterable[Role]) -> None:
        super().__init__("forbidden")
        self.roles = sorted(roles)


class CsrfRefused(Exception):
    """A form POST without the right CSRF token, or from another origin."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page, through which session, in which language."""

    account: Account
    session: Session
    lang: str

    def has(self, *roles: Role) -> bool:
        return self.account.has(*roles)


def lang_of(request: Request) -> str:
    return pick(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def signed_in(request: Request) -> Viewer:
    """The viewer of a live session whose token still authenticates, else LoginRequired."""
    sessions = sessions_of(request)
    session_id = request.cookies.get(COOKIE)
    session = sessions.get(session_id)
    if session is None:
        raise LoginRequired
    with read_transaction(engine_of(request)) as conn:
        account = authenticate(conn, session.token)
    if account is None:  # revoked, expired or disabled since the sign-in
        sessions.drop(session_id)
        raise LoginRequired
    request.state.account = account  # a refusal later in the request is audited under it
    return Viewer(account, session, lang_of(request))


def page(name: str) -> Callable[[Request], Viewer]:
    """A dependency: the viewer, who must hold one of the roles ``PAGES`` gives ``name``."""
    return needs(*PAGES[name][1])


def needs(*roles: Role) -> Callable[[Request], Viewer]:
    """A dependency: the viewer, who must hold one of ``roles`` (a form's own check)."""

    def dependency(request: Request) -> Viewer:
        viewer = signed_in(request)
        if not viewer.has(*roles):
            raise PageForbidden(roles)
        return viewer

    return dependency


def check_form(request: Request, expected: str | None, given: str | None) -> None:
    """Rule: a form POST carries the expected CSRF token and comes from the console's origin."""
    if not same_origin(request) or not same_token(expected, given):
        raise CsrfRefused


def check_text(*values: str) -> None:
    """Form text must be plain: no NUL, no lone surrogate (the stores cannot hold them)."""
    for value in values:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPException(422, detail="error.text") from None
        if "\x00" in value:
            raise HTTPException(422, detail="error.text")


def switch_url(request: Request, lang: str) -> str:
    """The same page in the other language."""
    url = request.url.include_query_params(lang="en" if lang == "zh-CN" else "zh-CN")
    return f"{url.path}?{url.query}"


def nav(account: Account | None) -> list[tuple[str, str]]:
    if account is None:
        return []
    return [(f"nav.{n}", path) for n, (path, roles) in PAGES.items() if account.has(*roles)]


def render(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = viewer.lang if viewer else lang_of(request)
    t = translator(lang)
    account = viewer.account if viewer else None
    body = templates.get_template(template).render(
        t=t,
        lang=lang,
        account=account,
        roles=sorted(account.roles) if account else [],
        nav=nav(account),
        csrf=viewer.session.csrf if viewer else "",
        path=request.url.path,
        switch=switch_url(request, lang),
        **context,
    )
    return HTMLResponse(body, status)


def error_page(
    request: Request,
    status: int,
    detail: str | None = None,
    message: str | None = None,
    error: object = None,
) -> HTMLResponse:
    """The error page: ``message`` (by default the status's), the service's ``detail``
    without internals, and the reference under which the refusal was logged (a 403 is
    audited as ``access.denied``; see ``gateway.refusals``)."""
    t = translator(lang_of(request))
    key = f"error.{status}"
    if message is None:
        message = t(key) if t(key) != key else t("error.422" if status < 500 else "error.500")
    ref = note(request, status, error if error is not None else message, detail or message)
    shown = public_text(detail) if detail else None
    return render(
        request, "error.html", status=status, message=message, detail=shown, reference=ref
    )


def status_of(error: GatewayError) -> int:
    from gateway.app import _status  # the REST API's one map (gateway.app imports us)

    return _status(error)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", 303)


def secure(request: Request, response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES and chosen != request.cookies.get(LANG_COOKIE):
        set_cookie(request, response, LANG_COOKIE, chosen)
    return response


class ConsoleRoute(APIRoute):
    """A route whose every answer is an HTML page with the console's headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except PageForbidden as e:
                roles = ", ".join(translator(lang_of(request))(f"role.{r}") for r in e.roles)
                message = translator(lang_of(request))("error.403_roles", roles=roles)
                response = error_page(request, 403, message=message)
            except CsrfRefused:
                response = error_page(
                    request, 403, message=translator(lang_of(request))("error.csrf")
                )
            except HTTPException as e:
                detail = e.detail if isinstance(e.detail, str) else None
                if detail in ZH:  # a catalogue key
                    detail = translator(lang_of(request))(detail)
                response = error_page(request, e.status_code, detail)
            except RequestValidationError:
                response = error_page(request, 422)
            except GatewayError as e:
                status = status_of(e)
                response = error_page(request, status, str(e) if status < 500 else None, error=e)
            except Exception as e:
                response = error_page(request, 500, error=e)
            return secure(request, response)

        return route


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def no_route(request: Request, error: StarletteHTTPException) -> Response:
    """No console route answers (404) or not to this method (405): the console's error
    page in the viewer's language, not the REST API's JSON."""
    response = error_page(request, error.status_code)
    for name, value in (error.headers or {}).items():  # Allow, on a 405
        response.headers[name] = value
    return secure(request, response)


class ConsoleStatic(StaticFiles):
    """The console's own stylesheet (no CDN, no external fonts), with its headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response


def static_files() -> ConsoleStatic:
    return ConsoleStatic(directory=HERE / "static")
