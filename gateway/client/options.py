"""The gateway options every ``dsr`` client command shares, and the context they make.

``--server``, ``--token``, ``--profile`` and ``--json`` are declared once
(:data:`gateway.client.render.Server` and its siblings) and accepted in two
places: after the command (``dsr jobs list --server URL``) and
before it, on its group (``dsr jobs --server URL list``, ``dsr he products
--json list``). Each group's callback (:func:`group_callback`, set by
:func:`client_group`) puts what it was given in ``ctx.obj``; each command,
wrapped by :func:`gateway_options`, lays its own over that (the option
nearest the command wins) and leaves the result in ``ctx.obj``: a frozen
:class:`ClientContext`, which the command reads with :func:`client_context`.

The context holds the options as the user gave them. Where the URL and the
token come from when no flag names them (``DSR_SERVER``, ``DSR_TOKEN``, a
profile of the config file, in that order) is settled by
:mod:`gateway.client.config` when the command first speaks to a gateway: the
commands that can run on the local store or on local files need none, and
an environment variable is not a flag (``--local`` refuses ``--server``, not
``DSR_SERVER``).

A command with no JSON form (``dsr catalog dummy``, ``dsr dev run``, ...) is
wrapped with ``json=False``: it does not take ``--json``, and a ``--json``
given to its group is a usage error rather than silently ignored.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast, overload

import typer

from gateway.client.errors import UsageError
from gateway.client.render import Json, Profile, Server, Token, fail

C = TypeVar("C", bound=Callable[..., Any])


class Output(StrEnum):
    """How a command prints what it found."""

    TEXT = "text"  # tables and fields for a person
    JSON = "json"  # JSON on stdout, for scripts (--json)


@dataclass(frozen=True)
class ClientContext:
    """The gateway options of one command, from both places they may be given."""

    server: str | None = None
    token: str | None = None
    profile: str | None = None
    output: Output = Output.TEXT

    @property
    def as_json(self) -> bool:
        return self.output is Output.JSON

    def over(self, base: ClientContext) -> ClientContext:
        """These options laid over ``base``: each one given here wins, ``--json`` adds up."""
        as_json = Output.JSON in (self.output, base.output)
        return ClientContext(
            server=self.server or base.server,
            token=self.token or base.token,
            profile=self.profile or base.profile,
            output=Output.JSON if as_json else Output.TEXT,
        )


def client_context(ctx: typer.Context) -> ClientContext:
    """The options in force for the running command (none given: all unset, text)."""
    return ctx.obj if isinstance(ctx.obj, ClientContext) else ClientContext()


# The declaration of the shared options, as parameters appended to a command's own.
_KW = inspect.Parameter.KEYWORD_ONLY
_GATEWAY = (
    inspect.Parameter("server", _KW, default=None, annotation=Server),
    inspect.Parameter("token", _KW, default=None, annotation=Token),
    inspect.Parameter("profile", _KW, default=None, annotation=Profile),
)
_JSON = inspect.Parameter("as_json", _KW, default=False, annotation=Json)


@overload
def gateway_options(command: C, /) -> C: ...
@overload
def gateway_options(*, json: bool = True) -> Callable[[C], C]: ...
def gateway_options(command: C | None = None, /, *, json: bool = True) -> C | Callable[[C], C]:
    """Give a command (or a group's callback) the shared options.

    The command declares only its own parameters, ``ctx: typer.Context`` first
    (where the options are left). ``--server``, ``--token``, ``--profile`` (and
    ``--json`` unless ``json=False``) are appended to its signature; what they
    were given is laid over the group's in ``ctx.obj`` before the command runs."""

    def wrap(command: C) -> C:
        own = inspect.signature(command, eval_str=True)
        shared = (*_GATEWAY, _JSON) if json else _GATEWAY
        clash = {p.name for p in shared} & set(own.parameters)
        assert not clash, f"{command.__name__} declares {clash} itself"
        first = next(iter(own.parameters.values()), None)
        assert first is not None and first.name == "ctx" and first.annotation is typer.Context, (
            f"{command.__name__} takes ctx: typer.Context first"
        )

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = ClientContext(
                server=kwargs.pop("server"),
                token=kwargs.pop("token"),
                profile=kwargs.pop("profile"),
                output=Output.JSON if kwargs.pop("as_json", False) else Output.TEXT,
            )
            ctx: typer.Context = kwargs["ctx"]  # typer passes every parameter by name
            merged = given.over(client_context(ctx))
            if merged.as_json and not json:
                raise fail(UsageError(f"--json does not apply to {_named(ctx)}: it prints no JSON"))
            ctx.obj = merged
            return command(*args, **kwargs)

        wrapper.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[*own.parameters.values(), *shared]
        )
        return cast(C, wrapper)

    return wrap if command is None else wrap(command)


def _named(ctx: typer.Context) -> str:
    """``dsr catalog dummy``, whatever the program was called."""
    return " ".join(["dsr", *ctx.command_path.split()[1:]])


@gateway_options
def group_callback(ctx: typer.Context) -> None:
    """The group's share of the options (before the command): kept in ``ctx.obj``."""


def client_group(help: str) -> typer.Typer:
    """A command group of the client: its help, and the options before its commands."""
    return typer.Typer(help=help, no_args_is_help=True, callback=group_callback)


__all__ = [
    "ClientContext",
    "Output",
    "client_context",
    "client_group",
    "gateway_options",
    "group_callback",
]
