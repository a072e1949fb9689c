"""``dsr accounts``, ``dsr tokens``, ``dsr audit``: the local administration commands;
and the gateway options every client command shares (``--server``, ``--token``,
``--profile``, ``--json``): declared once, accepted before the command (on its
group) and after it, the nearer one winning, the environment and the config file
still behind the flags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gateway.cli import app
from gateway.client import render
from gateway.client.config import save_profile
from tests.support.live import free_port


@pytest.fixture
def dsr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DSR_GATEWAY_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DSR_GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.setenv("DSR_CONFIG", str(tmp_path / "no-dsr-config.toml"))  # the local store
    for name in ("DSR_SERVER", "DSR_TOKEN", "DSR_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_bootstrap_an_admin_then_verify_the_audit_log(dsr) -> None:  # type: ignore[no-untyped-def]
    made = dsr("accounts", "create", "wang-admin", "--role", "admin", "--role", "auditor")
    assert made.exit_code == 0, made.output
    assert "admin, auditor" in made.output
    token = dsr("tokens", "issue", "wang-admin")
    assert token.exit_code == 0 and token.output.startswith("dsr_")
    listed = json.loads(dsr("accounts", "list", "--json").output)
    assert listed == [{"name": "wang-admin", "roles": ["admin", "auditor"], "disabled": False}]
    verified = dsr("audit", "verify")
    assert verified.exit_code == 0 and "audit chain ok: 2 events" in verified.output
    exported = [json.loads(line) for line in dsr("audit", "export").output.splitlines()]
    assert [e["type"] for e in exported] == ["account.created", "token.issued", "audit.verified"]
    assert token.output.strip().split("_", 2)[2] not in json.dumps(exported)


def test_errors_are_messages_and_exit_codes(dsr) -> None:  # type: ignore[no-untyped-def]
    bad = dsr("accounts", "create", "x1", "--role", "root")
    assert bad.exit_code == 1 and "roles must be one or more of" in bad.output
    assert "Traceback" not in bad.output
    missing = dsr("tokens", "issue", "nobody")
    assert missing.exit_code == 1 and "no account 'nobody'" in missing.output
    revoked = dsr("tokens", "revoke", "000000000000")
    assert revoked.exit_code == 1


def test_json_output_for_scripts(dsr) -> None:  # type: ignore[no-untyped-def]
    made = json.loads(dsr("accounts", "create", "li-ops", "--role", "operator", "--json").output)
    assert (made["name"], made["roles"], made["disabled"]) == ("li-ops", ["operator"], False)
    issued = dsr("tokens", "issue", "li-ops", "--label", "laptop", "--json")
    token = json.loads(issued.output)
    assert issued.exit_code == 0 and token["token"].startswith(f"dsr_{token['id']}_")
    assert (token["account"], token["label"]) == ("li-ops", "laptop")
    revoked = json.loads(dsr("tokens", "revoke", token["id"], "--json").output)
    assert revoked == {"id": token["id"], "revoked": True}
    verified = dsr("audit", "verify", "--json")
    result = json.loads(verified.output)
    assert verified.exit_code == 0 and result["ok"] is True and result["checked"] == 3
    keys = {"ok", "checked", "first_broken", "reason", "head_id", "head_hash", "checkpoints"}
    assert set(result) == keys  # "checkpoints": the signed heads it was checked against


# -- the gateway options every client command shares ---------------------------------------

CLIENT_GROUPS = (
    "accounts", "tokens", "audit", "catalog", "jobs", "requests", "datasets", "policies",
    "grants", "reviews", "products", "dev", "he products", "he products create",
)  # fmt: skip
CLIENT_COMMANDS = ("whoami", "emergency-stop")  # at the top level: after the command only
NO_JSON = {"audit export", "audit public-key", "catalog dummy", "dev fetch", "dev run"}
DECLARED = {
    "server": render.Server,
    "token": render.Token,
    "profile": render.Profile,
    "as_json": render.Json,
}
CLIENT = Path(render.__file__).parent
CLIENT_SOURCES = [*CLIENT.glob("*.py"), CLIENT.parent / "cli.py"]


def _find(root: Any, path: str) -> Any:
    for name in path.split():
        root = root.commands[name]
    return root


def _leaves(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _leaves(sub, f"{path} {name}")
    else:
        yield path, command


def test_every_client_command_takes_the_gateway_options_from_one_declaration() -> None:
    root = typer.main.get_command(app)
    groups = [(g, _find(root, g)) for g in CLIENT_GROUPS]
    commands = [(c, _find(root, c)) for c in CLIENT_COMMANDS]
    commands += [leaf for g, group in groups for leaf in _leaves(group, g)]
    assert len(commands) >= 55
    for path, command in [*groups, *commands]:
        wanted = set(DECLARED) - ({"as_json"} if path in NO_JSON else set())
        found = {p.name: p for p in command.params if p.name in DECLARED}
        assert set(found) == wanted, path
        for name, param in found.items():
            (info,) = DECLARED[name].__metadata__  # the typer.Option of the declaration
            assert param.opts == [info.default], (path, name)  # Annotated: the name comes first
            assert param.help == info.help and param.rich_help_panel == info.rich_help_panel
    # Declared in one place: no client module spells these options out again (``dsr
    # login`` takes its own, required, --server and --token: the profile it saves).
    spelled = re.compile(r'typer\.Option\(\s*"--(server|token|profile|json)"')
    where = {
        (path.name, m.group(1))
        for path in CLIENT_SOURCES
        for m in spelled.finditer(path.read_text())
    }
    login = {("admin.py", "server"), ("admin.py", "token"), ("admin.py", "profile")}
    assert where - login == {("render.py", o) for o in ("server", "token", "profile", "json")}


def _unreachable(done: Any, url: str) -> bool:
    return done.exit_code == 3 and f"cannot reach the gateway at {url} " in done.output


def test_gateway_options_work_before_and_after_the_command(
    dsr, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    down, other = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    for args in (
        ("jobs", "--server", down, "--token", "t", "list"),
        ("jobs", "list", "--server", down, "--token", "t"),
        ("jobs", "--token", "t", "list", "--server", down),
        ("he", "products", "--server", down, "--token", "t", "list"),
        ("he", "products", "create", "--server", down, "score", "--name", "n", "--grant", "g",
         "--job", "j", "--file", "f", "--features", "a", "--consumer", "c", "--token", "t"),
        ("whoami", "--server", down, "--token", "t"),
    ):  # fmt: skip
        assert _unreachable(dsr(*args), down), args
    # The option nearer the command wins; a flag in either place wins over the environment.
    assert _unreachable(
        dsr("jobs", "--server", other, "list", "--server", down, "--token", "t"), down
    )
    monkeypatch.setenv("DSR_SERVER", other)
    monkeypatch.setenv("DSR_TOKEN", "t")
    assert _unreachable(dsr("grants", "--server", down, "list"), down)
    assert _unreachable(dsr("grants", "list"), other)
    refused = dsr("jobs", "--server", "localhost:8700", "list")
    assert refused.exit_code == 2 and "http://" in refused.output
    assert "Traceback" not in refused.output


def test_a_profile_named_before_the_command_is_used_with_its_token(dsr, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city, other = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    config = tmp_path / "no-dsr-config.toml"  # DSR_CONFIG
    save_profile("city", city, "dsr_city", path=config)
    save_profile("other", other, "dsr_other", path=config)  # the default now
    assert _unreachable(dsr("reviews", "--profile", "city", "list"), city)  # its token: no exit 4
    assert _unreachable(dsr("reviews", "list", "--profile", "city"), city)
    assert _unreachable(dsr("reviews", "list"), other)
    missing = dsr("reviews", "--profile", "nobody", "list")
    assert missing.exit_code == 2 and "no profile 'nobody'" in missing.output


def test_json_and_local_before_and_after_the_command(dsr) -> None:  # type: ignore[no-untyped-def]
    assert dsr("accounts", "create", "li-ops", "--role", "operator").exit_code == 0
    before, after = dsr("accounts", "--json", "list"), dsr("accounts", "list", "--json")
    assert before.exit_code == after.exit_code == 0
    assert (
        json.loads(before.output)
        == json.loads(after.output)
        == [{"name": "li-ops", "roles": ["operator"], "disabled": False}]
    )
    issued = json.loads(dsr("tokens", "--json", "issue", "li-ops").output)
    assert issued["account"] == "li-ops" and issued["token"].startswith("dsr_")
    # --local opens the store: a --server before the command is refused as after it.
    both = dsr("audit", "--server", "http://127.0.0.1:1", "verify", "--local")
    assert both.exit_code == 2 and "--local" in both.output
    # A command with no JSON form refuses --json given to its group (it takes none itself).
    for args in (("audit", "--json", "export"), ("catalog", "--json", "dummy", "v")):
        done = dsr(*args)
        assert done.exit_code == 2 and "--json does not apply to dsr " in done.output, args
        assert "Traceback" not in done.output
    assert dsr("audit", "export", "--json").exit_code == 2  # no such option, as before
