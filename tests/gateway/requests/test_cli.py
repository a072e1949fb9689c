"""``dsr requests`` for deadlines, extensions and delivery: the commands talk REST to a
gateway in this process (the HTTP transport is the test client's, nothing else is
replaced), and show each deadline with its working days left and the provisional mark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.client import http
from gateway.client.data_requests import requests_app
from tests.support.requests_world import World, cst, make_world


@pytest.fixture
def world(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for w in make_world(store_url, tmp_path, cst(2026, 12, 20, 10)):

        def in_process(api: http.Api, target: Any) -> None:
            api.target = target
            headers = {"Authorization": f"Bearer {target.token}"}
            api._client = TestClient(w.app, headers=headers)

        monkeypatch.setattr(http.Api, "__init__", in_process)
        yield w


def dsr(world: World, who: str, *args: str) -> str:
    token = world.tokens[who]
    done = CliRunner().invoke(
        requests_app, [*args, "--server", "http://testserver", "--token", token]
    )
    assert done.exit_code == 0, done.output
    return done.output


def test_extend_decide_provide_and_the_deadlines_shown(world: World) -> None:
    rid = world.ask()
    world.pass_formal(rid)
    shown = dsr(world, "provider-1", "show", rid)
    assert "(provisional)" in shown and "working days left" in shown
    listed = dsr(world, "provider-1", "list")
    assert "WORKING DAYS LEFT" in listed and "(provisional)" in listed
    xid = dsr(world, "provider-1", "extend", rid, "--days", "3", "--reason", "year end")
    xid = xid.strip().splitlines()[0]
    assert xid.startswith("x-")
    decided = dsr(world, "admin-1", "decide-extension", rid, xid, "--decision", "approve",
                  "--reason", "agreed")  # fmt: skip
    assert "approved" in decided
    assert world.request(rid)["extension_days"] == 3
    assert "year end" in dsr(world, "admin-1", "show", rid)  # the extension table
    world.approve(rid)
    provided = dsr(world, "provider-1", "provide", rid)
    assert "data_provided" in provided and "delivery" in provided
