"""Where the ``dsr`` client finds the gateway and its token.

The server URL comes from, first found: the ``--server`` flag, ``DSR_SERVER``,
or the profile of the config file (``--profile``, else ``DSR_PROFILE``, else
the file's ``default``). The token comes from ``--token``, ``DSR_TOKEN``, or
the same profile; a profile's token is only sent to that profile's own
server, never to a URL given by flag or environment.

The config file is ``$DSR_CONFIG`` or ``~/.config/dsr/config.toml``
(``$XDG_CONFIG_HOME`` honoured), written by ``dsr login`` with mode 0600 in a
0700 directory::

    default = "city"

    [profiles.city]
    server = "http://127.0.0.1:8700"
    token = "dsr_..."
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.client.errors import ClientError, UsageError

DEFAULT_PROFILE = "default"


def config_path() -> Path:
    if explicit := os.environ.get("DSR_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dsr" / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The config file's contents ({} when there is none)."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError(f"cannot read the config file {path}: {e.strerror}") from e
    try:
        loaded = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"the config file {path} is not valid TOML: {e}") from e
    return loaded


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    return json.dumps(value)


def save_profile(name: str, server: str, token: str, path: Path | None = None) -> Path:
    """Write (or replace) a profile and make it the default; the file is mode 0600."""
    path = path or config_path()
    config = load_config(path)
    profiles: dict[str, dict[str, str]] = {
        str(k): {str(kk): str(vv) for kk, vv in v.items()}
        for k, v in config.get("profiles", {}).items()
        if isinstance(v, dict)
    }
    profiles[name] = {"server": server, "token": token}
    lines = [f"default = {_toml_string(name)}", ""]
    for profile, values in sorted(profiles.items()):
        lines.append(f"[profiles.{_toml_string(profile)}]")
        lines += [f"{k} = {_toml_string(v)}" for k, v in sorted(values.items())]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, "\n".join(lines).encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Target:
    """The gateway a command speaks to, and the token it speaks with."""

    server: str
    token: str | None
    source: str  # where the server came from: flag, environment or profile <name>


def configured_server(server: str | None = None, profile: str | None = None) -> bool:
    """Whether a gateway is named anywhere (flag, environment or config file)."""
    if server or os.environ.get("DSR_SERVER"):
        return True
    return _profile(load_config(), profile, required=profile is not None) is not None


def _profile(config: dict[str, Any], name: str | None, *, required: bool) -> dict[str, Any] | None:
    name = name or os.environ.get("DSR_PROFILE") or config.get("default")
    profiles = config.get("profiles", {})
    if not name:
        return None
    found = profiles.get(name) if isinstance(profiles, dict) else None
    if found is None:
        if required:
            raise UsageError(f"no profile {name!r} in {config_path()} (see dsr login)")
        return None
    if not isinstance(found, dict):
        raise UsageError(f"profile {name!r} in {config_path()} is not a table")
    return found


def resolve(
    server: str | None = None, token: str | None = None, profile: str | None = None
) -> Target:
    """The target of a command, from flags, environment and config (see the module)."""
    config = load_config()
    chosen = _profile(config, profile, required=bool(profile or os.environ.get("DSR_PROFILE")))
    if server:
        url, source = server, "the --server flag"
    elif env := os.environ.get("DSR_SERVER"):
        url, source = env, "DSR_SERVER"
    elif chosen is not None and chosen.get("server"):
        url, source = str(chosen["server"]), "the config file"
    else:
        raise UsageError(
            "no gateway named: give --server URL, set DSR_SERVER, or run "
            "dsr login --server URL --token TOKEN"
        )
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"the server must be an http:// or https:// URL, not {url!r}")
    tok = token or os.environ.get("DSR_TOKEN")
    if not tok and chosen is not None and str(chosen.get("server", "")).rstrip("/") == url:
        tok = str(chosen.get("token") or "") or None
    _warn_if_readable(config)
    return Target(url, tok, source)


def _warn_if_readable(config: dict[str, Any]) -> None:
    path = config_path()
    if not config or not path.exists():
        return
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        import sys

        print(
            f"dsr: warning: {path} holds tokens and is readable by others (chmod 600 it)",
            file=sys.stderr,
        )


__all__ = [
    "ClientError",
    "Target",
    "config_path",
    "configured_server",
    "load_config",
    "resolve",
    "save_profile",
]
