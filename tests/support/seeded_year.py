"""A year of activity through the real gateway, for the end-to-end tests of issue 17.

``seed_year(root, year)`` builds the deployed app (``create_app`` with
``build_runtime`` over ``tests.support.fakebackend.FakeBackend``: the in-container
code as host subprocesses) on the embedded SQLite store, with one
:class:`MovableClock` every service reads, and walks it through a year as its users
would, over REST: organisations and accounts of every role, two providers'
datasets, data requests that become grants (one expires mid-year through the sweep,
one is terminated), monthly SQL jobs (released) and Python jobs (held, then approved
or denied), scope refusals, products registered in both classes with their price
classes, an encrypted verification product called by a bank, charges, an incident,
an emergency stop and its resumption, and failed sign-ins. Only the first
administrator and its token are made in the store (as ``dsr admin`` bootstraps).

Invariants:
- The clock only moves forward and stands still while a job runs (each job is
  waited for before the clock moves), so a job's ``finished_at`` lies in the month
  it was submitted in (steps happen at 10:00 CST, away from month ends).
- :class:`Expected` is written as the seed goes, from what it did and what the
  gateway answered; it is never recomputed from the store, so the tests compare
  the reports with an independent record.
- Price classes and bases are sent with each registration (H2's contract). A
  gateway without those fields still registers the product; ``prices_applied``
  then says the prices are missing and the charges are skipped; ``charging`` says
  whether the charges route answered.
- The audit chain stamps its events with the wall clock on purpose
  (``gateway.audit.chain.append`` takes no clock: its time is taken under the chain
  lock, so time order follows chain order, and no caller can date an event). While the
  year is seeded the chain reads the year's clock instead (:func:`wall_time_from`), so
  the events land in the months they describe, as they would have in a real year.
  Events appended after the seed (report generations, exports) carry the wall time:
  later than the year, so the chain stays in time order. Encrypted calls
  (``he_calls.at``) take the app's clock, the year's; the refusal log (per actor and
  wall-clock minute) is replaced by one on the year's clock.
- Subprocess jobs are counted (26): the seed takes about 30 s on an idle machine.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from unittest import mock

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.audit import chain
from gateway.identity import create_account, issue_token
from gateway.refusals import DenialLog
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.workdays import CST
from sandbox.he.client import VerificationKeys
from sandbox.synthetic import demo
from tests.support.clocked_world import MovableClock
from tests.support.fakebackend import FakeBackend
from tests.support.year_record import Expected
from tests.support.year_steps import (
    ADMIN,
    MARGIN_CAP,
    ORG_NAME,
    RATES,
    REVIEW_MINUTES,
    SQL_ENTERPRISES,
    SQL_RESIDENTS,
    TARIFF,
    VERIFY_CALL_FEN,
    SeededYear,
    Steps,
)

__all__ = ["ORG_NAME", "REVIEW_MINUTES", "VERIFY_CALL_FEN", "SeededYear", "close", "csv_rows",
           "seed_year"]  # fmt: skip


def open_gateway(data_dir: Path, clock: MovableClock) -> tuple[FastAPI, dict[str, str]]:
    """The deployed app on the fake backend, its first administrator made in the store."""
    settings = GatewaySettings.model_validate(
        {"data_dir": data_dir, "database_url": "", "he_evaluator": "process",
         "sweep_every_seconds": 0, "product_publicity_working_days": 0,
         "price_tariff": TARIFF, "price_margin_cap": MARGIN_CAP, **RATES}
    )  # fmt: skip
    backend = FakeBackend(data_dir.parent / "sandboxes")
    app = create_app(settings, build_runtime(settings, backend), clock=clock)
    # The refusal log counts per minute of the wall clock: the year's clock here, so each
    # refusal of the year is its own minute's first event, written at once.
    app.state.denials = DenialLog(app.state.engine, clock)
    with app.state.engine.begin() as conn:
        create_account(conn, ADMIN, {"admin"}, actor="bootstrap", display_name="平台管理员")
        tokens = {ADMIN: issue_token(conn, ADMIN, actor="bootstrap")}
    return app, tokens


@contextmanager
def wall_time_from(clock: MovableClock) -> Iterator[None]:
    """The audit chain's time read from ``clock`` (see the module docstring)."""

    class AnyDatetime(type):  # stored datetimes stay instances of chain.datetime
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, datetime)

    class Clocked(datetime, metaclass=AnyDatetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return clock.now.astimezone(tz)

    with mock.patch.object(chain, "datetime", Clocked):
        yield


def seed_year(root: Path, year: int = 2025) -> SeededYear:
    """The seeded year (see the module docstring); its client entered: the caller calls
    :func:`close` when done."""
    clock = MovableClock(datetime(year, 1, 6, 10, tzinfo=CST))
    data_dir = root / "var"
    city = demo.generate_city(root / "src", residents=1_000, enterprises=300, seed=11)
    app, tokens = open_gateway(data_dir, clock)
    client = TestClient(app)
    client.__enter__()
    y = SeededYear(app, client, tokens, clock, Expected(year), data_dir)
    try:
        with wall_time_from(clock):
            walk(Steps(y, city))
    except BaseException:
        close(y)
        raise
    return y


def close(y: SeededYear) -> None:
    y.client.__exit__(None, None, None)
    y.app.state.engine.dispose()


def walk(s: Steps) -> None:
    """January to December: the grants first, then month by month (``if month == n``)."""
    e, year = s.e, s.e.year
    end = datetime(year + 1, 1, 1, tzinfo=CST) + timedelta(days=180)
    s.people()
    s.datasets()
    s.grant("residents", "op-1", "residents", ("district_code", "gender", "district_name"), end)
    s.grant("enterprises", "op-1", "enterprises", ("industry", "district_code", "employees"), end)
    s.grant("firms", "op-1", "firms", ("annual_tax", "months", "legal_rep", "district"), end)
    june = datetime(year, 7, 1, tzinfo=CST)  # the short grant's term ends with June
    s.grant("short", "op-2", "residents", ("district_code", "gender"), june)
    s.grant("ended", "op-2", "enterprises", ("industry", "district_code"), end)
    keys = VerificationKeys.make()
    held: dict[int, str] = {}
    decisions = {2: "approve", 4: "deny", 5: "approve", 7: "deny", 9: "approve", 11: "approve"}
    first_jobs: dict[str, str] = {}
    he, context = "", ""
    for month in range(1, 13):
        s.at(month, 10)
        job = s.released("op-1", "residents", SQL_RESIDENTS)
        first_jobs.setdefault("residents", job)
        if month in (3, 6, 9, 12):
            first_jobs[f"enterprises-{month}"] = s.released("op-1", "enterprises", SQL_ENTERPRISES)
        if month in decisions:
            held[month] = s.held("op-1", "residents")
        if month in (3, 8, 11):
            s.refused("op-1", "residents")
        if month in (2, 4):
            s.released("op-2", "short", SQL_RESIDENTS)
        if month in (3, 5):
            s.released("op-2", "ended", SQL_ENTERPRISES)
        if month in held:
            reviewer = "rev-1" if month % 2 else "rev-2"
            s.review(held[month], "op-1", "residents", decisions[month], reviewer)
        if month == 5:
            s.at(5, 14)
            s.incident()  # recorded on the 14th, resolved on the 16th
        s.at(month, 20)
        if month == 2:
            s.register("free", "分区户籍人口统计", "public_governance", "free", {},
                       job=first_jobs["residents"], dataset="residents")  # fmt: skip
        if month == 3:
            s.register("conditional", "分区人口结构（政务用途）", "public_governance",
                       "conditionally_free",
                       {"condition": "free for public-service planning by government bodies"},
                       job=held[2], dataset="residents")  # fmt: skip
            s.refused_charge("free", "ref-free-1", 422)
        if month == 4:
            s.register("guided", "行业企业分布表", "industry_development", "guided",
                       {"tariff_item": "table-download"}, job=first_jobs["enterprises-3"],
                       dataset="enterprises")  # fmt: skip
            he = s.he_product()
        if month == 5:
            s.register("verify", "企业纳税等级核验", "industry_development", "guided",
                       {"tariff_item": "verify-call"}, he_product=he, dataset="firms")  # fmt: skip
            context = s.he_context(keys)
            s.charge("guided", 2, "inv-2025-001")
            s.refused_charge("guided", "inv-2025-001", 409)  # the same reference again
        if month == 6:
            s.he_calls(keys, he, context, [5, 40, 77])
            s.register("cost-plus", "行业企业规模分析", "industry_development", "cost_plus",
                       {"margin": 0.1, "expected_units": 1}, job=first_jobs["enterprises-6"],
                       dataset="enterprises")  # fmt: skip
        if month == 7:
            s.at(7, 21)
            s.sweep(expires="short")  # its term ended with June
            s.charge("cost-plus", 5, "inv-2025-002")
        if month == 8:
            s.charge("guided", 3, "inv-2025-003")
            s.at(8, 22)
            suspended = s.emergency_stop()
            assert sorted(suspended) == sorted([e.grants["enterprises"].id, e.grants["ended"].id])
            s.at(8, 26)
            s.resume(suspended)
            s.terminate("ended")  # proposed on the 26th, approved on the 27th
        if month == 9:
            s.he_calls(keys, he, context, [12, 101])
            s.sweep(terminates="ended")  # the notice period is over
        if month == 10:
            s.charge("cost-plus", 5, "inv-2025-004")
            s.failed_signins(3)
        if month == 11:
            s.charge("guided", 1, "inv-2025-005")
        if month == 12:
            s.he_calls(keys, he, context, [8, 150, 222])


def csv_rows(text: str) -> list[dict[str, str]]:
    """A CSV body as rows (header keys)."""
    return list(csv.DictReader(io.StringIO(text)))
