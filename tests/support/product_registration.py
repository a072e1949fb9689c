"""Helpers of the product-registration tests (``gateway.products``).

``make_world`` (``build_world``: without entering its client) builds a gateway on
``store_url`` whose services all read one :class:`MovableClock` the test moves: the
accounts of ``tests.support.he_world``, the firms dataset and a grant of ``op-1``
from the clock's time for ``grant_days``. ``to_publicity`` takes an application
through acceptance and formal review into publicity over REST.

``register_in_store`` takes a first registration through the whole procedure with
the service functions at the times the procedure needs (publicity ended), and
``finish_in_store`` / ``finish_in_data_dir`` an application already made (in an
app's store, in a served gateway's): for tests of other areas whose gateways run
on the system clock and need a registered product (an HE product offered to
consumers, a job's product under a stopped grant).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from gateway.app import create_app
from gateway.products import procedure
from gateway.products.model import Category, Kind, Step
from gateway.products.procedure import Application
from gateway.settings import DATABASE_FILE, GatewaySettings
from gateway.store import make_engine
from gateway.store.lifecycle import system_clock
from gateway.workdays import CALENDAR_FILE, Calendar
from tests.support.clocked_world import MovableClock
from tests.support.he_world import World, populate


def make_world(
    store_url: str, tmp_path: Path, clock: MovableClock, *, grant_days: int = 365, **settings: Any
) -> Iterator[World]:
    """The world, its client entered (the app's lifespan runs) for the test's duration."""
    w = build_world(store_url, tmp_path, clock, grant_days=grant_days, **settings)
    with w.client:
        yield w
    w.app.state.engine.dispose()


def build_world(
    store_url: str, tmp_path: Path, clock: MovableClock, *, grant_days: int = 365, **settings: Any
) -> World:
    """The world (see the module docstring); its client not entered."""
    data_dir = tmp_path / "var"
    config = GatewaySettings(
        data_dir=data_dir, database_url=store_url, he_evaluator="process", **settings
    )
    return populate(create_app(config, clock=clock), data_dir, grant_days=grant_days)


def first(job: str | None = None, he_product: str | None = None) -> dict[str, Any]:
    """The body of a first registration of a job or an HE product."""
    body: dict[str, Any] = {"type": "first", "name": "Tax bands by district"}
    body |= {"description": "Counts of firms per tax band.", "category": "public_governance"}
    return body | ({"job": job} if job else {"he_product": he_product})


def post(w: World, who: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return w.client.post(f"/v1/products{path}", headers=w.h(who), json=body)


def to_publicity(w: World, registration_id: str, admin: str = "admin-1") -> dict[str, Any]:
    """Accept, review and publicise an application (each step answered 200)."""
    found: dict[str, Any] = {}
    for step in ("accept", "review", "publicise"):
        answer = post(w, admin, f"/registrations/{registration_id}/{step}")
        assert answer.status_code == 200, (step, answer.text)
        found = answer.json()
    return found


def register_in_store(
    app: FastAPI, applicant: str, *, job: str | None = None, he_product: str | None = None
) -> str:
    """A first registration taken through the procedure in the store (see the module
    docstring); returns the product's id."""
    application = Application(
        kind=Kind.FIRST, name="registered for the test", description="a product under test",
        category=Category.PUBLIC_GOVERNANCE, job_id=job, he_product_id=he_product,
    )  # fmt: skip
    with app.state.engine.begin() as conn:
        found = procedure.apply(conn, applicant, application, system_clock())
    return finish_in_store(app, found.id)


def finish_in_store(app: FastAPI, registration_id: str) -> str:
    """An application taken from ``applied`` to ``registered`` by ``admin-1``, registered
    when its publicity ends; returns the product's id."""
    settings: GatewaySettings = app.state.settings
    return _finish(app.state.engine, app.state.calendar, settings, registration_id)


def finish_in_data_dir(data_dir: Path, registration_id: str) -> str:
    """:func:`finish_in_store` on the store of a gateway served from ``data_dir`` (its
    embedded SQLite, default settings)."""
    engine = make_engine(f"sqlite:///{data_dir / DATABASE_FILE}")
    try:
        calendar = Calendar.from_file(data_dir / CALENDAR_FILE)
        return _finish(engine, calendar, GatewaySettings(data_dir=data_dir), registration_id)
    finally:
        engine.dispose()


def _finish(
    engine: Engine, calendar: Calendar, settings: GatewaySettings, registration_id: str
) -> str:
    now = system_clock()
    with engine.begin() as conn:
        for to in (Step.ACCEPTED, Step.FORMAL_REVIEW):
            procedure.step(conn, registration_id, to, admin="admin-1", now=now)
        found = procedure.publicise(
            conn, registration_id, admin="admin-1", now=now, calendar=calendar,
            days=settings.product_publicity_working_days,
        )  # fmt: skip
        assert found.publicity_ends_at is not None
        done = procedure.register(
            conn, registration_id, admin="admin-1", now=found.publicity_ends_at,
            code_format=settings.product_code_format,
        )  # fmt: skip
    assert done.product_id is not None
    return done.product_id
