"""Data requests in the console: each deadline with its working days left and the
provisional mark (zh-CN and English), a provider's extension ask and "data provided",
an administrator's decision on the ask, all through the console's own forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.console import Console
from tests.support.requests_world import World, cst, make_world


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, cst(2026, 12, 20, 10))


def test_deadlines_extensions_and_provision_in_the_console(world: World) -> None:
    rid = world.ask()
    world.pass_formal(rid)  # provider review runs into 2027: provisional
    c = Console(world.client, world.tokens)
    csrf = c.login("provider-1")
    page = c.client.get("/console/requests").text
    assert "暂定" in page and re.search(r"剩余 \d+ 个工作日", page)
    assert 'data-step="extend"' in page and 'data-step="provide"' not in page
    english = c.client.get("/console/requests?lang=en").text
    assert ">provisional<" in english and "working day(s) left" in english
    url = f"/console/requests/{rid}/extensions"
    too_long = c.client.post(url, data={"csrf": csrf, "days": "11", "reason": "late data"})
    assert too_long.status_code == 422
    asked = c.client.post(url, data={"csrf": csrf, "days": "3", "reason": "late data"},
                          follow_redirects=False)  # fmt: skip
    assert asked.status_code == 303, asked.text
    assert world.get("admin-1", f"/v1/requests/{rid}/extensions").json()[0]["days"] == 3
    assert 'data-step="extend"' not in c.client.get("/console/requests").text  # one waits

    csrf = c.login("admin-1")
    page = c.client.get("/console/requests").text
    assert 'data-step="decide"' in page and "late data" in page
    xid = world.get("admin-1", f"/v1/requests/{rid}/extensions").json()[0]["id"]
    decided = c.client.post(
        f"/console/requests/{rid}/extensions/{xid}/decision",
        data={"csrf": csrf, "decision": "approve", "reason": "year end"},
        follow_redirects=False,
    )
    assert decided.status_code == 303, decided.text
    assert world.request(rid)["extension_days"] == 3
    assert "含延长 3 个工作日" in c.client.get("/console/requests").text

    world.approve(rid)
    csrf = c.login("provider-1")
    assert 'data-step="provide"' in c.client.get("/console/requests").text
    provided = c.client.post(f"/console/requests/{rid}/provide", data={"csrf": csrf},
                             follow_redirects=False)  # fmt: skip
    assert provided.status_code == 303, provided.text
    assert world.request(rid)["state"] == "data_provided"
    c.login("admin-1")
    page = c.client.get("/console/requests").text
    assert "数据已提供" in page and "交付" in page and 'data-step="supply"' in page
    other = Console(world.client, world.tokens)
    csrf = other.login("provider-2")  # not this request's provider
    refused = other.client.post(f"/console/requests/{rid}/extensions",
                                data={"csrf": csrf, "days": "2", "reason": "x"})  # fmt: skip
    assert refused.status_code == 403
