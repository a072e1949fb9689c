"""Three months before a grant's term ends (003 二(二)4) the operator, the providers of
its datasets and the administrators are told, once (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.sweep.term_notice import months_before
from tests.support.grants_world import World
from tests.support.sweep_world import T0, Hands, events, grant, sweep_world


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2027, 11, 23, 2, tzinfo=UTC), datetime(2027, 8, 23, 2, tzinfo=UTC)),
        (datetime(2027, 5, 31, 8, tzinfo=UTC), datetime(2027, 2, 28, 8, tzinfo=UTC)),
        (datetime(2028, 5, 31, 8, tzinfo=UTC), datetime(2028, 2, 29, 8, tzinfo=UTC)),
        (datetime(2027, 2, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC)),
        (datetime(2027, 1, 31, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)),
    ],
)
def test_three_calendar_months_before(moment: datetime, expected: datetime) -> None:
    assert months_before(moment, 3) == expected


@pytest.fixture
def hands() -> Hands:
    return Hands()


@pytest.fixture
def world(store_url: str, tmp_path: Path, hands: Hands) -> Iterator[World]:
    yield from sweep_world(store_url, tmp_path / "var", hands)


def _sweep(world: World) -> list[str]:
    r = world.client.post("/v1/admin/sweep", headers=world.headers("admin"))
    assert r.status_code == 200 and not r.json()["failures"], r.text
    return [line for line in r.json()["lines"] if "term ends" in line]


def _told(world: World, who: str) -> list[dict[str, object]]:
    found = world.client.get("/v1/notices", headers=world.headers(who)).json()
    return [n for n in found if n["kind"] == "grant.term_ends"]


def test_the_term_notice_comes_three_months_before_and_once(world: World, hands: Hands) -> None:
    ends = T0 + timedelta(days=365)  # 2027-11-23 02:00
    g = grant(world, ends)
    hands.at = datetime(2027, 8, 23, 1, 59, 59, tzinfo=UTC)
    assert _sweep(world) == []
    assert _told(world, "operator") == []

    hands.at = datetime(2027, 8, 23, 2, tzinfo=UTC)
    assert _sweep(world) == [f"grant {g.id}: its term ends {ends.isoformat()}; told"]
    for who in ("operator", "provider", "provider-2", "admin"):
        (notice,) = _told(world, who)
        assert notice["key"] == f"grant:{g.id}:term-ends"
        assert notice["detail"]["valid_until"] == ends.isoformat()  # type: ignore[index]
    assert _told(world, "reviewer") == [] and _told(world, "auditor") == []

    hands.at = datetime(2027, 9, 1, tzinfo=UTC)
    assert _sweep(world) == []
    assert len(events(world, "notice.sent", g.id)) == 1


def test_an_ended_grant_is_not_told(world: World, hands: Hands) -> None:
    g = grant(world, T0 + timedelta(days=365))
    hands.at = T0 + timedelta(days=1)
    r = world.client.post(
        f"/v1/grants/{g.id}/revoke", headers=world.headers("admin"), json={"reason": "done"}
    )
    assert r.status_code == 200
    hands.at = T0 + timedelta(days=300)
    assert _sweep(world) == []


def test_a_grant_shorter_than_three_months_is_told_at_once(world: World, hands: Hands) -> None:
    g = grant(world, T0 + timedelta(days=30))
    hands.at = T0 + timedelta(minutes=5)
    assert _sweep(world) == [
        f"grant {g.id}: its term ends {(T0 + timedelta(days=30)).isoformat()}; told"
    ]
