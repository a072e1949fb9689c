"""A gateway on a clock the test moves, and a grant with a copy of every kind on disk.

For the sweep's tests (``tests/gateway/sweep``): :func:`sweep_world` is
``tests.support.grants_world.make_world`` (an account per role, ``people`` of
provider-1 and ``tax`` of provider-2) with the app's clock a :class:`Hands`
the test sets, and the scheduler's interval given. :func:`copies_of` makes
what a grant's end must destroy (views, a dummy set, an entity map, a held
job's outputs and cells, a privacy-computing product's table and model) and a
released job's outputs, which must stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.audit.chain import Event, iter_events
from gateway.grants.model import GrantRecord
from gateway.he.model import HEProduct, Kind, create_product
from gateway.he.model import State as ProductState
from gateway.identity import create_account, issue_token
from gateway.jobs.model import Outcome, State, create_job, transition
from gateway.settings import GatewaySettings
from sandbox.intake.policy import PolicyStore
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.views.build import ViewBuilder
from sandbox.views.dummy import DummyBuilder
from tests.support.grants_world import ROLES, World, register

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday


@dataclass
class Hands:
    """A clock the test sets (``hands.at = ...``); the app reads it on every call."""

    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at


def sweep_world(
    store_url: str, data_dir: Path, hands: Hands, *, every: float = 0
) -> Iterator[World]:
    """``make_world`` on ``hands``' time, sweeping every ``every`` seconds (0: never)."""
    settings = GatewaySettings(data_dir=data_dir, database_url=store_url, sweep_every_seconds=every)
    app = create_app(settings, clock=hands)
    try:
        tokens = {}
        with app.state.engine.begin() as conn:
            for role in ROLES:
                create_account(conn, f"{role}-1", {role}, actor="test")
                tokens[role] = issue_token(conn, f"{role}-1", actor="test")
            create_account(conn, "provider-2", {"provider"}, actor="test")
            tokens["provider-2"] = issue_token(conn, "provider-2", actor="test")
        register(app)
        register(app, "tax", provider="provider-2")
        with TestClient(app) as client:
            yield World(app, client, tokens)
    finally:
        app.state.engine.dispose()


def grant(w: World, until: datetime, *, scenario: str = "s", at: datetime = T0) -> GrantRecord:
    """A grant of operator-1 over ``people`` and ``tax``, from ``at`` to ``until``."""
    with w.engine.begin() as conn:
        return w.grants.create(
            conn,
            operator="operator-1",
            scenario=scenario,
            purpose="plan care homes by district",
            scopes=[("people", ("age", "income")), ("tax", ("age",))],
            valid_until=until,
            valid_from=at,
            actor="admin-1",
            now=at,
        )


@dataclass
class Copies:
    """What a grant's end destroys, by kind (``what`` of its record), and what stays."""

    destroyed: dict[str, list[Path]] = field(default_factory=dict)
    kept: list[Path] = field(default_factory=list)


def job(w: World, g: GrantRecord, job_id: str, end: State, outcome: Outcome) -> Path:
    """A job of ``g`` run and ended ``end``, its checked outputs on disk; its directory."""
    with w.engine.begin() as conn:
        create_job(conn, job_id=job_id, operator=g.operator, grant_id=g.id, kind="sql",
                   code="SELECT 1", dummy=False, datasets=g.datasets)  # fmt: skip
        for to, why in ((State.RUNNING, Outcome.STARTED), (State.CHECKING, Outcome.RAN)):
            transition(conn, job_id, to, actor="system", outcome=why)
        transition(conn, job_id, end, actor="system", outcome=outcome)
    root = w.data_dir / "work" / "jobs" / job_id
    (root / "outputs").mkdir(parents=True)
    (root / "outputs" / "result.csv").write_text("district,n\n1,12\n")
    return root


def copies_of(w: World, g: GrantRecord, at: datetime) -> Copies:
    """Every kind of copy of ``g`` on disk (built at ``at``, within its term)."""
    cache = w.data_dir / "cache"
    registry = w.app.state.registry
    views = ViewBuilder(registry, PolicyStore(w.data_dir), cache)
    with w.engine.begin() as conn:
        usable = w.grants.active_grant(conn, g.id, at)
    built = views.build(usable)
    dummy = DummyBuilder(views, cache).build(usable, rows=20)
    maps = EntityMaps(cache, ledger_secret(w.data_dir))
    held = job(w, g, "job-held", State.HELD, Outcome.CHECKS_REVIEW)
    (held / "cells.json").write_text(json.dumps({"grant_id": g.id, "k": {}, "cells": []}))
    released = job(w, g, "job-released", State.RELEASED, Outcome.CHECKS_PASSED)
    product = HEProduct(
        id="he-1", kind=Kind.VERIFY, name="income band", operator=g.operator, grant_id=g.id,
        datasets=("people",), spec={}, consumers=("consumer-1",), state=ProductState.APPROVED,
        created_at=at, state_changed_at=at, state_reason="approved",
    )  # fmt: skip
    with w.engine.begin() as conn:
        create_product(conn, product, detail={})
    inputs = w.data_dir / "he" / "sandbox" / "in"
    for folder, name in (("tables", "he-1-0a1b.npz"), ("models", "he-1-2c3d.json")):
        (inputs / folder).mkdir(parents=True, exist_ok=True)
        (inputs / folder / name).write_bytes(b"claim elements")
    return Copies(
        destroyed={
            "views": [v.path for v in built.views],
            "dummy": [v.path for v in dummy.views],
            "entity": [maps.build(usable, registry.get("people"))],
            "unreleased": [held / "outputs" / "result.csv", held / "cells.json"],
            "tables": sorted(inputs.glob("*/he-1-*")),
        },
        kept=[released / "outputs" / "result.csv"],
    )


def events(w: World, kind: str, grant_id: str | None = None) -> list[Event]:
    """The ``kind`` events (of ``grant_id`` when given), oldest first."""
    with w.engine.connect() as conn:
        return [
            e
            for e in iter_events(conn)
            if e.type == kind and (grant_id is None or e.grant_id == grant_id)
        ]
