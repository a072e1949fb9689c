"""The ``dsr`` client's side of the REST API: one httpx client, errors made plain.

``Api`` speaks to the gateway named by :mod:`gateway.client.config` with the
bearer token. Every failure becomes a :class:`ClientError` carrying what the
user needs and the exit code: the server's own message and status for a
refusal (``detail``, its ``problems`` listed), "cannot reach the gateway at
URL" when nothing answers, a plain message for a token the gateway refuses.
No traceback reaches the user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from gateway.client.config import Target, resolve
from gateway.client.errors import AuthFailed, ClientError, Unreachable, UsageError

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def _problems(detail: Any) -> tuple[str, list[str]]:
    """The message and listed problems of an error body's ``detail``."""
    if isinstance(detail, str):
        return detail, []
    if isinstance(detail, dict):
        problems = [_problem(p) for p in detail.get("problems", []) or []]
        return str(detail.get("message") or "refused"), problems
    if isinstance(detail, list):  # request validation: where and what
        return "the request is not valid", [_problem(p) for p in detail]
    return "refused", []


def _problem(p: Any) -> str:
    if isinstance(p, dict):
        where = p.get("loc") or p.get("field") or p.get("path")
        if isinstance(where, list):
            where = ".".join(str(x) for x in where if x not in ("body", "query"))
        line = f" (line {p['line']})" if p.get("line") else ""
        message = p.get("msg") or p.get("message") or json.dumps(p, ensure_ascii=False)
        return f"{where}{line}: {message}" if where else f"{message}{line}"
    return str(p)


def q(part: str) -> str:
    """One path segment, quoted."""
    return quote(part, safe="")


def save(path: Path, content: bytes) -> None:
    """Write a downloaded body to ``path`` (its directories made); a failure is a UsageError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from e


def target_of(
    server: str | None, token: str | None, profile: str | None, *, auth: bool = True
) -> Target:
    """The gateway and token of a command; no token is an AuthFailed where one is needed."""
    target = resolve(server, token, profile)
    if auth and not target.token:
        raise AuthFailed(
            f"no API token for {target.server}: give --token, set DSR_TOKEN, or run "
            "dsr login --server URL --token TOKEN"
        )
    return target


def refusal(response: httpx.Response) -> ClientError:
    """The ClientError for a 4xx or 5xx answer: the server's message, its problems."""
    status = response.status_code
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text.strip()[:500] or response.reason_phrase
    message, problems = _problems(detail)
    if status == 401:
        return AuthFailed(f"the gateway refused the token ({status}): {message}", status=status)
    if status >= 500:
        return Unreachable(f"the gateway cannot serve this now ({status}): {message}")
    return ClientError(f"{message} ({status})", status=status, problems=problems)


def transport_failure(e: httpx.HTTPError, server: str) -> ClientError:
    """The ClientError for a request that got no answer (or could not be sent)."""
    if isinstance(e, httpx.TimeoutException):
        return Unreachable(f"the gateway at {server} did not answer in time")
    if isinstance(e, httpx.ConnectError | httpx.RemoteProtocolError | httpx.NetworkError):
        return Unreachable(
            f"cannot reach the gateway at {server} ({_reason(e)}); "
            "is it running, and is the URL right?"
        )
    if isinstance(e, httpx.UnsupportedProtocol):
        return UsageError(f"not a usable gateway URL: {server}")
    return Unreachable(f"talking to {server} failed: {e}")


class Api:
    """An authenticated client of one gateway."""

    def __init__(self, target: Target) -> None:
        self.target = target
        headers = {"User-Agent": "dsr"}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        self._client = httpx.Client(base_url=target.server, headers=headers, timeout=TIMEOUT)

    @classmethod
    def from_options(
        cls, server: str | None, token: str | None, profile: str | None, *, auth: bool = True
    ) -> Api:
        return cls(target_of(server, token, profile, auth=auth))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a refusal or a failure to connect is a ClientError."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise transport_failure(e, self.target.server) from e
        if response.status_code >= 400:
            raise refusal(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self.request("POST", path, json=dict(body or {}))
        return response.json() if response.content else None

    def put_text(self, path: str, text: bytes, content_type: str) -> Any:
        response = self.request("PUT", path, content=text, headers={"Content-Type": content_type})
        return response.json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def upload(self, path: str, file: IO[bytes], filename: str, fields: dict[str, str]) -> Any:
        response = self.request(
            "POST",
            path,
            files={"file": (filename, file, "application/octet-stream")},
            data=fields,
            timeout=UPLOAD_TIMEOUT,
        )
        return response.json()

    def download(self, path: str, **params: Any) -> bytes:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).content

    @contextmanager
    def lines(self, path: str, **params: Any) -> Iterator[Iterator[str]]:
        """A streamed body, line by line (the audit export)."""
        clean = {k: v for k, v in params.items() if v is not None}
        try:
            with self._client.stream("GET", path, params=clean) as response:
                if response.status_code >= 400:
                    response.read()
                    raise refusal(response)
                yield response.iter_lines()
        except httpx.TimeoutException as e:
            raise Unreachable(f"the gateway at {self.target.server} did not answer in time") from e
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.NetworkError) as e:
            raise Unreachable(
                f"cannot reach the gateway at {self.target.server} ({_reason(e)})"
            ) from e


def _reason(e: Exception) -> str:
    text = str(e)
    if "refused" in text.lower():
        return "connection refused"
    return text.split(":")[-1].strip() or type(e).__name__
