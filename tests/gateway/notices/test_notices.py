"""Notices: written once per key and audience, audited once, read by their audiences only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gateway.app import create_app
from gateway.identity import Role, create_account, issue_token
from gateway.notices.service import (
    ADMINISTRATORS,
    NoticeError,
    notify,
    sent,
    to_account,
    to_role,
)
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events, notices

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _notify(engine: Engine, key: str = "grant:g-1:term-ends") -> bool:
    with engine.begin() as conn:
        return notify(
            conn,
            key=key,
            kind="grant.term_ends",
            subject="grant g-1 ends on 2026-06-02",
            audiences=[to_account("operator-1"), ADMINISTRATORS],
            at=AT,
            detail={"grant": "g-1"},
        )


def _count(engine: Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
        )


def test_a_notice_is_written_and_audited_once(engine: Engine) -> None:
    assert _notify(engine) is True
    assert _notify(engine) is False
    assert _count(engine, notices) == 2  # one per audience
    assert _count(engine, audit_events, audit_events.c.type == "notice.sent") == 1
    with engine.connect() as conn:
        assert sent(conn, "grant:g-1:term-ends") and not sent(conn, "grant:g-2:term-ends")


def test_two_sweeps_notifying_at_once_write_it_once(engine: Engine) -> None:
    results: list[object] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(_notify(engine, "request:r-1:formal_review:overdue"))
        except Exception as e:  # reported below
            results.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == ["False", "False", "False", "True"]
    assert _count(engine, audit_events, audit_events.c.type == "notice.sent") == 1


@pytest.mark.parametrize("audience", ["operator-1", "role:king", "account:", "team:x"])
def test_an_audience_is_an_account_or_a_role(engine: Engine, audience: str) -> None:
    with engine.begin() as conn, pytest.raises((NoticeError, ValueError)):
        notify(conn, key="k", kind="x", subject="s", audiences=[audience], at=AT)
    with engine.begin() as conn, pytest.raises(NoticeError, match="no audience"):
        notify(conn, key="k", kind="x", subject="s", audiences=[], at=AT)


def test_each_account_reads_the_notices_addressed_to_it_or_its_roles(
    store_url: str, tmp_path: Path
) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path / "var", database_url=store_url))
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in [("operator-1", "operator"), ("operator-2", "operator"),
                           ("admin-1", "admin"), ("consumer-1", "consumer")]:  # fmt: skip
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    try:
        _notify(app.state.engine)
        with app.state.engine.begin() as conn:
            notify(conn, key="all-operators", kind="k", subject="to every operator",
                   audiences=[to_role(Role.OPERATOR)], at=AT)  # fmt: skip
        with TestClient(app) as client:

            def keys(who: str) -> list[str]:
                r = client.get("/v1/notices", headers={"Authorization": f"Bearer {tokens[who]}"})
                assert r.status_code == 200, r.text
                return sorted(n["key"] for n in r.json())

            assert keys("operator-1") == ["all-operators", "grant:g-1:term-ends"]
            assert keys("operator-2") == ["all-operators"]
            assert keys("admin-1") == ["grant:g-1:term-ends"]
            assert keys("consumer-1") == []
            assert client.get("/v1/notices").status_code == 401
    finally:
        app.state.engine.dispose()
