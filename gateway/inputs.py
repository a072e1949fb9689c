"""Before any route: what every request must be, whatever the route.

- A body of at most ``GatewaySettings.max_body_bytes`` (``BodyLimit``, 413).
  A declared ``Content-Length`` above the limit is refused before the app
  runs, so no route acts on a request it then refuses; a body sent without
  one (chunked) is counted as it is read. Dataset uploads stream to disk
  under their own, larger cap (``gateway.providers``) and are exempt.
- Plain text (``plain_text``, 422): no NUL character and no unpaired
  surrogate in the path, the query or a JSON body. PostgreSQL text cannot
  hold a NUL, neither store can encode a lone surrogate, and no input of
  the gateway needs either.
- Validation errors that name the field and the problem, never echo the
  input (``validation_failed``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.refusals import note, public_detail, reference


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the most this route accepts"


class BodyLimit:
    """ASGI middleware: refuse a request body above ``limit`` bytes with 413.

    ``exempt`` lists the (method, path) pairs whose routes cap their own bodies;
    a ``{name}`` segment in a path stands for any one segment.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: Collection[tuple[str, str]] = ()) -> None:
        self.app, self.limit = app, limit
        self.exempt = frozenset(e for e in exempt if "{" not in e[1])
        self.patterns = tuple(
            (method, re.compile(re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(path))))
            for method, path in exempt
            if "{" in path
        )

    def _exempt(self, method: str, path: str) -> bool:
        if (method, path) in self.exempt:
            return True
        return any(m == method and p.fullmatch(path) for m, p in self.patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            body = {"detail": too_large(self.limit), "reference": reference()}
            response = JSONResponse(body, 413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                # Raised inside the route reading the body: the app's handler answers.
                raise HTTPException(413, detail=too_large(self.limit))
            return message

        await self.app(scope, counted, send)


def _plain(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate (a JSON "\ud800")
        return False
    return True


def _has_unplain(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (parsed JSON) is not plain text.

    Iterative: a body nested as deep as the JSON parser allows must not
    exhaust the stack here."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _plain(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind.startswith("application/") and (
        kind == "application/json" or kind.endswith("+json")
    )


async def plain_text(request: Request) -> None:
    """A dependency of every route: 422 for a NUL or a lone surrogate in the path,
    the query or a JSON body (see the module docstring)."""
    where = None
    params = [*request.path_params.values(), *request.query_params.keys()]
    params += request.query_params.values()
    if any(isinstance(p, str) and not _plain(p) for p in params):
        where = "the URL"
    elif _is_json(request):
        try:  # the body is within the limit, and parsed once: the route reuses it
            body = await request.json()
        except (ValueError, RecursionError):
            body = None  # not JSON (or nested beyond the parser): the route's validation answers
        if _has_unplain(body):
            where = "the request body"
    if where is not None:
        raise HTTPException(
            422, detail=f"text in {where} must not contain NUL characters or unpaired surrogates"
        )


async def validation_failed(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 for a body or parameter that does not validate, without ``input``
    (the caller's own values, which can be large or binary, are not echoed)."""
    assert isinstance(error, RequestValidationError)
    problems = [{k: v for k, v in e.items() if k != "input"} for e in error.errors()]
    # "ctx" can quote a pattern or a limit, never the input; it is ours.
    detail = public_detail(jsonable_encoder(problems))
    return JSONResponse({"detail": detail, "reference": note(request, 422, error)}, 422)
