"""``dsr accounts``, ``dsr tokens``, ``dsr audit``: the local administration commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app


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
