"""The public facts of a year (001 authorized-operation art. 24-25; 004 art. 30), read
from a store that saw 2025 and early 2026 (``tests.support.portal_world``).

A product shows in every year it was registered some time of: a refused or never
finished registration never shows, a product revoked in 2025 shows in 2025 (revoked,
with the day) and not in 2026. A grant shows in the years its term met and it had not
ended: one revoked in 2025 not in 2026, one starting in 2026 not in 2025. Usage counts
the year's jobs (not dummy runs), released jobs and registered products per grantee and
dataset; names are the organisation's when the account belongs to one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit import append
from gateway.disclosure import facts
from gateway.periods import Period
from tests.support.portal_world import ORGANISATION, PortalWorld, make_world


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[PortalWorld]:
    yield from make_world(store_url, tmp_path)


def _facts(world: PortalWorld, label: str) -> tuple[list, list, list]:  # type: ignore[type-arg]
    period = Period.parse(label)
    with world.w.app.state.engine.connect() as conn:
        return facts.products(conn, period), facts.grantees(conn, period), facts.usage(conn, period)


def test_products_grants_and_usage_of_each_year(world: PortalWorld) -> None:
    made = world.made
    products, grants, usage = _facts(world, "2025")
    by_id = {p.id: p for p in products}
    assert set(by_id) == {
        made.products[n] for n in ("governance", "guided", "cost_plus", "revoked")
    }
    assert [p.registration_code for p in products] == sorted(
        by_id[i].registration_code for i in by_id
    )
    governance, guided, cost_plus, revoked = (
        by_id[made.products[n]] for n in ("governance", "guided", "cost_plus", "revoked")
    )
    assert (governance.category, governance.price_class) == (
        "public_governance",
        "conditionally_free",
    )
    assert governance.price_basis == {"condition": "仅限政府部门用于公共服务"}
    assert (governance.unit, governance.unit_price_fen) == (None, None)
    assert (guided.unit, guided.unit_price_fen) == ("次", 120)
    assert (cost_plus.unit, cost_plus.unit_price_fen) == ("次", 275)  # 250 fen plus 10 %
    assert {p.operator for p in products} == {ORGANISATION}
    assert {p.datasets for p in products} == {("firms",)} and {p.kind for p in products} == {"file"}
    assert (revoked.status, revoked.ended_at) == ("revoked", datetime(2025, 6, 16, 2, tzinfo=UTC))
    assert governance.status == "registered" and governance.ended_at is None

    assert [(g.id, g.grantee, g.state) for g in grants] == [
        (made.grants["revoked_grant"], "op-2", "revoked"),
        (made.grants["g2025"], ORGANISATION, "active"),
    ]
    assert grants[0].ended_at == datetime(2025, 6, 16, 2, tzinfo=UTC)
    assert grants[1].scopes[0][0] == "firms"
    assert set(grants[1].scopes[0][1]) == {"annual_tax", "months", "legal_rep", "district"}

    # Six jobs ran and were released in 2025 (the dummy run is not counted); four
    # products were registered from them (the refused and pending ones were not).
    assert [(u.grantee, u.dataset, u.provider, u.grants, u.jobs, u.released, u.products)
            for u in usage] == [
        ("op-2", "firms", "provider-1", 1, 0, 0, 0),
        (ORGANISATION, "firms", "provider-1", 1, 6, 6, 4),
    ]  # fmt: skip

    products, grants, usage = _facts(world, "2026")
    assert {p.id for p in products} == {
        made.products[n] for n in ("governance", "guided", "cost_plus")
    }
    assert {g.id for g in grants} == {made.grants["g2025"], made.grants["g2026"]}
    assert [(u.grantee, u.grants, u.jobs, u.products) for u in usage] == [
        ("op-2", 1, 0, 0),
        (ORGANISATION, 1, 0, 0),
    ]
    assert _facts(world, "2024") == ([], [], [])
    # Any period, not only a year: by the end of March 2025 one product was registered
    # (on 18 March) and op-2's grant was not issued yet.
    products, grants, _ = _facts(world, "2025-Q1")
    assert [p.id for p in products] == [made.products["governance"]]
    assert [g.id for g in grants] == [made.grants["g2025"]]
    # The provider is who uploaded the dataset first, whoever uploads under its name later.
    with world.w.app.state.engine.begin() as conn:
        append(conn, "dataset.registered", "provider-9", datasets=["firms"],
               detail={"name": "firms", "version": "1" * 16})  # fmt: skip
    assert {u.provider for u in _facts(world, "2025")[2]} == {"provider-1"}
