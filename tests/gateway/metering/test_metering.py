"""``GET /v1/metering`` and ``dsr metering``: usage totals per job, grant, product and
operator for a period, on SQLite and PostgreSQL.

A stored year of usage (``tests.support.metering_world``) is totalled through the API:
sums per key, the largest memory peak, CST period boundaries (a job that ends at 00:00
CST on 1 April is April's), dummy runs left out, encrypted calls counted by their time
and credited to their product, review minutes capped per vote; an operator reads its own
usage only; a bad period is a 422. Then a real SQL job on the fake backend: its job JSON
carries the kernel's CPU seconds and the trusted scan figures, and metering by job
returns the same. The CLI prints the same totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gateway.cli import app as dsr
from gateway.identity import create_account
from sandbox.run.metering import BYTES_STEP, ROWS_STEP, coarse
from tests.support.access import METERING
from tests.support.gateway_jobs import PY_HELD, SQL_RELEASED, Gateway, residents_grant
from tests.support.grants_world import ROLES, World, issue, make_world
from tests.support.metering_world import (
    add_he_call,
    add_he_product,
    add_job,
    add_product,
    add_review,
    cst,
)
from tests.support.served_gateway import serve

MiB = 1024 * 1024


@dataclass
class Seeded:
    w: World
    grant_a: str  # operator-1's
    grant_b: str  # operator-2's


@pytest.fixture
def seeded(store_url: str, tmp_path: Path) -> Iterator[Seeded]:
    for w in make_world(store_url, tmp_path):
        a = issue(w, operator="operator-1").id
        b = issue(w, operator="operator-2").id
        e = w.engine
        with e.begin() as conn:
            create_account(conn, "reviewer-2", {"reviewer"}, actor="test")
        add_job(e, "j1", "operator-1", a, cst(2025, 3, 1), cpu_seconds=1.5,
                memory_peak_bytes=100 * MiB, rows_scanned=1000, bytes_scanned=5000,
                output_bytes=200, sandbox_seconds=2.0)  # fmt: skip
        # 00:00 CST on 1 April: the second quarter's, not the first's.
        add_job(e, "j2", "operator-1", a, cst(2025, 4, 1, 0, 0), cpu_seconds=2.5,
                memory_peak_bytes=300 * MiB, rows_scanned=3000, bytes_scanned=7000,
                output_bytes=800, sandbox_seconds=3.0)  # fmt: skip
        # A Python job: no trusted scan figures.
        add_job(e, "j3", "operator-2", b, cst(2025, 7, 1), kind="python", cpu_seconds=4.0,
                memory_peak_bytes=50 * MiB, output_bytes=10, sandbox_seconds=5.0)  # fmt: skip
        # 00:00 CST on 1 January 2026: next year's.
        add_job(e, "j4", "operator-1", a, cst(2026, 1, 1, 0, 0), cpu_seconds=9.0,
                rows_scanned=1, bytes_scanned=1, output_bytes=1, sandbox_seconds=1.0)  # fmt: skip
        # A dummy run: the development loop, not counted.
        add_job(e, "d1", "operator-1", a, cst(2025, 5, 1), dummy=True, cpu_seconds=7.0,
                output_bytes=70, sandbox_seconds=7.0)  # fmt: skip
        add_review(e, "j2", cst(2025, 4, 2, 9), [("reviewer-1", cst(2025, 4, 2, 9, 30)),
                                                 ("reviewer-2", cst(2025, 4, 2, 15))])  # fmt: skip
        add_he_product(e, "he-1", "operator-1", a)
        add_product(e, "p-job", "operator-1", a, job_id="j1")
        add_product(e, "p-he", "operator-1", a, he_product_id="he-1")
        add_he_call(e, "he-1", cst(2025, 2, 1), 10.5)
        add_he_call(e, "he-1", cst(2025, 8, 1), 20.0)
        add_he_call(e, "he-1", cst(2025, 9, 1), None)  # evaluated before eval_ms was kept
        add_he_call(e, "he-1", cst(2024, 12, 31, 23, 59), 99.0)  # last year's
        yield Seeded(w, a, b)


def get(s: Seeded, who: str, **params: str) -> Any:
    response = s.w.client.get("/v1/metering", headers=s.w.headers(who), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_key(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in body["rows"]}


def test_sums_per_operator_with_the_largest_memory_peak(seeded: Seeded) -> None:
    body = get(seeded, "admin", period="2025", by="operator")
    assert body["period"] == "2025" and body["by"] == "operator"
    rows = by_key(body)
    assert list(rows) == ["operator-1", "operator-2"]
    one = rows["operator-1"]
    # j1 + j2 (not j4: 2026; not d1: a dummy run), and he-1's three calls of 2025.
    assert one["jobs"] == 2
    assert one["cpu_seconds"] == pytest.approx(4.0)
    assert one["memory_peak_bytes"] == 300 * MiB
    assert (one["rows_scanned"], one["bytes_scanned"]) == (4000, 12000)
    assert one["output_bytes"] == 1000
    assert one["sandbox_seconds"] == pytest.approx(5.0)
    assert one["review_minutes"] == pytest.approx(30 + 240)  # 6 h capped at 4 h
    assert (one["he_calls"], one["he_eval_ms"]) == (3, pytest.approx(30.5))
    two = rows["operator-2"]
    assert (two["jobs"], two["rows_scanned"], two["bytes_scanned"]) == (1, 0, 0)
    assert two["memory_peak_bytes"] == 50 * MiB
    totals = body["totals"]
    assert totals["jobs"] == 3 and totals["cpu_seconds"] == pytest.approx(8.0)
    assert totals["memory_peak_bytes"] == 300 * MiB
    assert totals["he_calls"] == 3 and totals["output_bytes"] == 1010


def test_per_job_grant_and_product(seeded: Seeded) -> None:
    jobs = by_key(get(seeded, "auditor", period="2025", by="job"))
    assert list(jobs) == ["j1", "j2", "j3"]  # encrypted calls have no job
    assert jobs["j2"]["review_minutes"] == pytest.approx(270)
    assert jobs["j3"]["rows_scanned"] == 0 and jobs["j3"]["he_calls"] == 0
    grants = by_key(get(seeded, "admin", period="2025", by="grant"))
    assert grants[seeded.grant_a]["jobs"] == 2 and grants[seeded.grant_a]["he_calls"] == 3
    assert grants[seeded.grant_b]["cpu_seconds"] == pytest.approx(4.0)
    made = by_key(get(seeded, "admin", period="2025", by="product"))
    assert list(made) == ["p-he", "p-job"]
    assert made["p-job"]["jobs"] == 1 and made["p-job"]["cpu_seconds"] == pytest.approx(1.5)
    assert made["p-job"]["he_calls"] == 0
    assert made["p-he"]["jobs"] == 0 and made["p-he"]["he_calls"] == 3
    only = get(seeded, "admin", period="2025", by="operator", product="p-job")
    assert by_key(only)["operator-1"]["jobs"] == 1 and only["totals"]["he_calls"] == 0


def test_period_boundaries_are_cst_days(seeded: Seeded) -> None:
    q1 = by_key(get(seeded, "admin", period="2025-Q1", by="job"))
    assert list(q1) == ["j1"]
    q2 = by_key(get(seeded, "admin", period="2025-Q2", by="job"))
    assert list(q2) == ["j2"]
    days = get(seeded, "admin", period="2025-02-01..2025-03-01", by="operator")
    assert days["totals"]["jobs"] == 1 and days["totals"]["he_calls"] == 1
    next_year = get(seeded, "admin", period="2026", by="operator")
    assert by_key(next_year)["operator-1"]["cpu_seconds"] == pytest.approx(9.0)
    last_year = get(seeded, "admin", period="2024", by="operator")
    assert last_year["totals"]["he_calls"] == 1 and last_year["totals"]["jobs"] == 0


def test_an_operator_reads_its_own_usage_only(seeded: Seeded) -> None:
    mine = get(seeded, "operator", period="2025", by="job")
    assert list(by_key(mine)) == ["j1", "j2"]
    assert list(by_key(get(seeded, "operator", period="2025", by="operator"))) == ["operator-1"]
    # Another operator's grant narrows to nothing; naming another operator is refused.
    theirs = get(seeded, "operator", period="2025", by="job", grant=seeded.grant_b)
    assert theirs["rows"] == [] and theirs["totals"]["jobs"] == 0
    w = seeded.w
    refused = w.client.get("/v1/metering", headers=w.headers("operator"),
                           params={"period": "2025", "operator": "operator-2"})  # fmt: skip
    assert refused.status_code == 403
    assert by_key(get(seeded, "operator-2", period="2025", by="job")).keys() == {"j3"}


def test_roles_and_bad_parameters(seeded: Seeded) -> None:
    w = seeded.w
    allowed = METERING[("GET", "/v1/metering")]
    for role in ROLES:
        r = w.client.get("/v1/metering", headers=w.headers(role), params={"period": "2025"})
        assert r.status_code == (200 if role in allowed else 403), (role, r.text)
    assert w.client.get("/v1/metering", params={"period": "2025"}).status_code == 401
    for params in ({"period": "2025-13"}, {"period": "last year"}, {"period": "2025", "by": "x"}):
        r = w.client.get("/v1/metering", headers=w.headers("admin"), params=params)
        assert r.status_code == 422, (params, r.text)
    bad = w.client.get("/v1/metering", headers=w.headers("admin"), params={"period": "2025-13"})
    assert "2025-13" in bad.text


def test_the_cli_prints_the_totals(seeded: Seeded, tmp_path: Path) -> None:
    w = seeded.w
    with serve(w.app) as base:
        env = {"DSR_SERVER": base, "DSR_TOKEN": w.tokens["admin"],
               "DSR_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
        done = CliRunner().invoke(dsr, ["metering", "--period", "2025", "--by", "job", "--json"],
                                  env=env)  # fmt: skip
        assert done.exit_code == 0, done.output
        assert [r["key"] for r in json.loads(done.output)["rows"]] == ["j1", "j2", "j3"]
        text = CliRunner().invoke(dsr, ["metering", "--period", "2025-Q2"], env=env)
        assert text.exit_code == 0, text.output
        assert "operator-1" in text.output and "(total)" in text.output
        assert "300.0" in text.output  # j2's memory peak, in MiB
        env["DSR_TOKEN"] = w.tokens["operator"]
        refused = CliRunner().invoke(dsr, ["metering", "--period", "2025", "--operator",
                                           "operator-2"], env=env)  # fmt: skip
        assert refused.exit_code != 0 and "Traceback" not in refused.output


def test_a_real_sql_job_is_metered_from_the_kernel_and_the_views(fake_gw: Gateway) -> None:
    g = fake_gw
    g.grant(residents_grant("g-meter", "op-1"))
    job = g.wait("op-1", g.submit("op-1", "g-meter", "sql", SQL_RELEASED)["id"])
    assert job["state"] == "released", job
    assert job["cpu_seconds"] is not None and job["cpu_seconds"] > 0
    assert job["output_bytes"] and job["output_bytes"] > 0
    # The query reads district_code (and the entity column, for the evidence): every row
    # of the view, and those two columns' compressed bytes; never a data-dependent count.
    (view,) = g.app.state.runtime.views.build(residents_grant("g-meter", "op-1")).views
    meta = pq.ParquetFile(view.path).metadata
    read = {"district_code", view.entity_column}
    expected = sum(
        meta.row_group(g_).column(c).total_compressed_size
        for g_ in range(meta.num_row_groups)
        for c in range(meta.num_columns)
        if meta.row_group(g_).column(c).path_in_schema in read
    )
    # Told coarsened: whole steps, rounded up, never the view's exact size.
    rows_told, bytes_told = coarse(meta.num_rows, ROWS_STEP), coarse(expected, BYTES_STEP)
    assert meta.num_rows % ROWS_STEP and expected % BYTES_STEP  # not already whole steps
    assert (job["rows_scanned"], job["bytes_scanned"]) == (rows_told, bytes_told)
    assert job["rows_scanned"] != meta.num_rows and job["bytes_scanned"] != expected
    # The days around the job's end (finished_at is UTC; periods are CST days).
    day = date.fromisoformat(job["finished_at"][:10])
    first, last = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()
    body = g.client.get("/v1/metering", headers=g.h("admin-1"),
                        params={"period": f"{first}..{last}", "by": "job"}).json()  # fmt: skip
    (row,) = [r for r in body["rows"] if r["key"] == job["id"]]
    assert row["cpu_seconds"] == pytest.approx(job["cpu_seconds"], abs=1e-3)
    assert (row["rows_scanned"], row["bytes_scanned"]) == (rows_told, bytes_told)
    assert row["output_bytes"] == job["output_bytes"]
    # A Python job reads the views in its own code: CPU (its dummy and real runs
    # together), no scan figures.
    held = g.wait("op-1", g.submit("op-1", "g-meter", "python", PY_HELD)["id"])
    assert held["state"] == "held", held
    assert held["cpu_seconds"] is not None and held["cpu_seconds"] > 0
    assert held["rows_scanned"] is None and held["bytes_scanned"] is None
