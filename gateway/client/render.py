"""How ``dsr`` client commands print: human tables on stdout, ``--json`` for
scripts, messages and progress on stderr, and errors as one line (plus the
server's listed problems) with the exit code of :mod:`gateway.client.errors`.

Also the one declaration of the options every remote command shares
(``--server``, ``--token``, ``--profile``, ``--json``; where they are accepted
and how they reach a command: :mod:`gateway.client.options`) and
:func:`session`, which opens the API client for a command's options and turns
every :class:`ClientError` into its message and exit code.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.client.errors import ClientError
from gateway.client.http import Api

if TYPE_CHECKING:
    from gateway.client.options import ClientContext

PANEL = "Gateway"
Server = Annotated[
    str | None,
    typer.Option(
        "--server", help="the gateway's URL (else DSR_SERVER, else the config file)",
        rich_help_panel=PANEL, show_default=False,
    ),
]  # fmt: skip
Token = Annotated[
    str | None,
    typer.Option(
        "--token", help="the API token (else DSR_TOKEN, else the config file)",
        rich_help_panel=PANEL, show_default=False,
    ),
]  # fmt: skip
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile", help="a profile of the config file (else DSR_PROFILE, else its default)",
        rich_help_panel=PANEL, show_default=False,
    ),
]  # fmt: skip
Json = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]


def fail(error: ClientError) -> typer.Exit:
    """Print ``error`` (and the server's problems) on stderr; the Exit to raise."""
    typer.echo(f"dsr: {error.message}", err=True)
    for problem in error.problems:
        typer.echo(f"  - {problem}", err=True)
    return typer.Exit(error.exit_code)


@contextmanager
def handled() -> Iterator[None]:
    """Run a command's body; a ClientError ends it with its message and exit code."""
    try:
        yield
    except ClientError as e:
        raise fail(e) from None


@contextmanager
def session(gw: ClientContext, *, auth: bool = True) -> Iterator[Api]:
    """An API client for the command's options (the gateway and token they name, see
    :mod:`gateway.client.config`), errors handled."""
    with handled():
        api = Api.from_options(gw.server, gw.token, gw.profile, auth=auth)
        try:
            yield api
        finally:
            api.close()


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def note(message: str) -> None:
    """A message for the human, on stderr (stdout stays clean for pipes)."""
    typer.echo(message, err=True)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value) or "-"
    text = str(value)
    if len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T":  # an ISO timestamp
        return text[:16].replace("T", " ")
    return text


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """Rows as an aligned table: ``columns`` are (key, header) pairs."""
    if not rows:
        note("(none)")
        return
    cells = [[cell(r.get(k)) for k, _ in columns] for r in rows]
    headers = [h for _, h in columns]
    widths = [max(_width(x) for x in [h, *(c[i] for c in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True)]
        return "  ".join(padded).rstrip()

    typer.echo(line(headers))
    for c in cells:
        typer.echo(line(c))


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """Label: value lines, aligned."""
    width = max((_width(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        typer.echo(f"{key}{' ' * (width - _width(key))}  {cell(value)}")
