"""The audit log on both backends: the chain, the append-only guard, tampering,
concurrent writers, provider exports, migrations, and the event-type catalogue."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import multiprocessing
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from gateway.audit import EVENT_TYPES, GENESIS, append, event_hash, export_jsonl, verify
from gateway.audit.chain import iter_events
from gateway.audit.fields import MAX_DETAIL_BYTES, canonical_json, summarise
from gateway.errors import AuditError, ChainBroken
from gateway.store import make_engine, metadata, migrate, read_transaction
from gateway.store.migrations import current_revision, head_revision

# Every event type ever stored. Values never change once stored: a type may be
# added to EVENT_TYPES (and then here), never renamed or removed.
STORED_TYPES = {
    "access.denied",
    "notice.sent",
    "sweep.run",
    "request.extension",
    "request.overdue",
    "product.registration",
    "product.objection",
    "product.status",
    "termination.state",
    "incident.state",
    "incident.action",
    "incident.exported",
    "organisation.created",
    "organisation.member",
    "feedback.filed",
    "feedback.state",
    "product.price",
    "charge.recorded",
    "report.generated",
    "auth.failed",
    "scope.decision",
    "view.built",
    "job.submitted",
    "job.state",
    "job.run",
    "job.refused",
    "verdict",
    "review.viewed",
    "review.vote",
    "review.state",
    "download",
    "policy.applied",
    "grant.state",
    "request.state",
    "dataset.registered",
    "destruction",
    "product.registered",
    "audit.verified",
    "audit.exported",
    "account.created",
    "token.issued",
    "token.revoked",
    "he.product",
    "he.context",
    "he.call",
    "grant.hold",
}
TYPES = sorted(EVENT_TYPES)


def fill(engine: Engine, n: int, *, start: int = 1) -> None:
    """Append events ``start``..``start + n - 1`` in one transaction; event i
    mentions dataset ``ds<i % 3>`` and carries the marker ``m<i>=`` in its detail."""
    with engine.begin() as conn:
        for i in range(start, start + n):
            append(
                conn,
                TYPES[i % len(TYPES)],
                f"operator-{i % 5}",
                grant_id=f"G-{i % 4}" if i % 2 else None,
                datasets=[f"ds{i % 3}"],
                detail={"marker": f"m{i:04d}=", "count": i, "share": i / 7, "ok": i % 2 == 0},
            )


def sql(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)


def drop_guards(engine: Engine) -> None:
    """What a privileged attacker does first: remove the append-only triggers."""
    if engine.dialect.name == "sqlite":
        sql(engine, "DROP TRIGGER audit_events_no_update")
        sql(engine, "DROP TRIGGER audit_events_no_delete")
    else:
        sql(engine, "DROP TRIGGER audit_events_no_update_delete ON audit_events")


def test_the_chain_verifies_after_many_appends(engine: Engine) -> None:
    fill(engine, 120)
    for start in range(121, 301, 30):
        fill(engine, 30, start=start)
    with read_transaction(engine) as conn:
        result = verify(conn, batch=64)
        events = list(iter_events(conn))
    assert result.ok, result.reason
    assert (result.checked, result.first_broken, result.head_id) == (300, None, 300)
    assert result.head_hash == events[-1].hash
    assert [e.id for e in events] == list(range(1, 301))
    assert events[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
        assert after.at >= before.at and after.at.tzinfo is not None
    e = events[41]
    fields = (e.id, e.at, e.type, e.actor, e.grant_id, e.datasets, e.detail, e.prev_hash)
    assert event_hash(*fields) == e.hash
    assert e.detail == {"marker": "m0042=", "count": 42, "share": 6.0, "ok": True}


def test_an_empty_log_verifies(engine: Engine) -> None:
    with read_transaction(engine) as conn:
        result = verify(conn)
    assert result.ok and result.checked == 0 and result.head_id is None


def test_the_event_commits_with_the_callers_transaction(engine: Engine) -> None:
    fill(engine, 3)
    with engine.connect() as conn:
        with conn.begin():
            append(conn, "grant.state", "admin-1", grant_id="G-9", detail={"to": "suspended"})
            conn.rollback()  # the state change failed: its event goes with it
        with conn.begin():
            event = append(conn, "grant.state", "admin-1", grant_id="G-9", detail={"to": "x"})
    assert event.id == 4  # no gap where the rolled-back event was
    with engine.connect() as conn:
        assert verify(conn).ok


def test_append_refuses_what_does_not_belong_in_the_log(engine: Engine) -> None:
    bad: list[dict[str, object]] = [
        {"type": "job.deleted"},
        {"actor": ""},
        {"actor": "x" * 201},
        {"datasets": "tax"},
        {"detail": {"values": {1, 2}}},
        {"detail": {"rate": float("nan")}},
        {"detail": {"blob": b"\x00raw"}},
        {"detail": {1: "non-string key"}},
        {"detail": ["not", "an", "object"]},
    ]
    with engine.begin() as conn:
        for override in bad:
            kwargs: dict[str, object] = {"type": "verdict", "actor": "system"} | override
            with pytest.raises(AuditError):
                append(conn, **kwargs)  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert verify(conn).checked == 0


def test_a_detail_over_the_cap_is_summarised_and_the_chain_verifies(engine: Engine) -> None:
    outputs = [{"file": f"f{i:05d}.csv", "sha256": f"{i:064x}", "verdict": "FAIL"}
               for i in range(20_000)]  # fmt: skip
    detail = {"job": "job-1", "outputs": outputs, "rules": ["size_cap"], "note": "y" * 100_000}
    with engine.begin() as conn:
        event = append(conn, "verdict", "system", grant_id="G-1", datasets=["ds"], detail=detail)
        append(conn, "review.viewed", "r", detail={"files": outputs[:3]})  # small: as given
    stored = event.detail
    assert len(canonical_json(stored)) <= MAX_DETAIL_BYTES and stored["summarised"] is True
    assert stored["job"] == "job-1" and stored["rules"] == ["size_cap"]
    assert stored["outputs"] == {
        "count": 20_000,
        "sha256": hashlib.sha256(canonical_json(outputs)).hexdigest(),
    }
    assert stored["note"] == {
        "chars": 100_000,
        "sha256": hashlib.sha256(canonical_json("y" * 100_000)).hexdigest(),
    }
    with engine.connect() as conn:
        events = list(iter_events(conn))
        assert verify(conn).ok and verify(conn).checked == 2
    assert events[0].detail == stored and "summarised" not in events[1].detail


def test_summarising_always_fits() -> None:
    wide = {f"k{i}": "x" * 60 for i in range(5_000)}  # too many keys: one stand-in
    deep = {"a": [[["z" * 200] * 6] * 6] * 6, "b": ["w" * 5_000] * 3, "c": 1}
    for detail in (wide, deep):
        summary = summarise(detail)
        assert len(canonical_json(summary)) <= MAX_DETAIL_BYTES and summary["summarised"]
    assert summarise(wide)["whole"]["keys"] == 5_000
    assert summarise(deep)["c"] == 1


def test_a_read_only_transaction_cannot_append(engine: Engine) -> None:
    # SQLite: append sees the transaction holds no write lock; PostgreSQL: the
    # READ ONLY transaction refuses the insert.
    refused = AuditError if engine.dialect.name == "sqlite" else DBAPIError
    with read_transaction(engine) as conn, pytest.raises(refused, match=r"write transac|read-only"):
        append(conn, "verdict", "system")


def test_the_database_refuses_update_delete_and_truncate(engine: Engine) -> None:
    fill(engine, 5)
    statements = [
        "UPDATE audit_events SET actor = 'someone-else' WHERE id = 2",
        "DELETE FROM audit_events WHERE id = 5",
        "DELETE FROM audit_events",
    ]
    if engine.dialect.name == "postgresql":
        statements += ["TRUNCATE audit_events", "UPDATE audit_events SET actor = 'x' WHERE false"]
    for statement in statements:
        refused = f"audit_events is append-only: {statement.split()[0]} refused"
        with pytest.raises(DBAPIError, match=refused) as caught:
            sql(engine, statement)
        assert isinstance(caught.value, sa.exc.IntegrityError), statement
    with engine.connect() as conn:
        result = verify(conn)
    assert result.ok and result.checked == 5


def test_a_changed_field_names_its_event(engine: Engine) -> None:
    fill(engine, 40)
    drop_guards(engine)
    sql(engine, "UPDATE audit_events SET actor = 'nobody' WHERE id = 17")
    with engine.connect() as conn:
        result = verify(conn)
    assert not result.ok
    assert (result.first_broken, result.checked, result.head_id) == (17, 16, 16)
    assert "changed after it was written" in result.reason
    with pytest.raises(ChainBroken) as caught:
        result.raise_if_broken()
    assert caught.value.first_broken == 17


def test_a_rehashed_event_breaks_the_next_link(engine: Engine) -> None:
    fill(engine, 30)
    with engine.connect() as conn:
        e = next(ev for ev in iter_events(conn) if ev.id == 9)
    forged = event_hash(e.id, e.at, e.type, "nobody", e.grant_id, e.datasets, e.detail, e.prev_hash)
    drop_guards(engine)
    sql(engine, f"UPDATE audit_events SET actor = 'nobody', hash = '{forged}' WHERE id = 9")
    with engine.connect() as conn:
        result = verify(conn)
    assert result.first_broken == 10 and "prev_hash" in result.reason


def test_a_removed_event_is_a_gap(engine: Engine) -> None:
    fill(engine, 30)
    drop_guards(engine)
    sql(engine, "DELETE FROM audit_events WHERE id IN (12, 13)")
    with engine.connect() as conn:
        result = verify(conn)
    assert (result.ok, result.first_broken) == (False, 14)
    assert "events 12 to 13 are missing" in result.reason


def test_an_inserted_event_breaks_the_link_after_it(engine: Engine) -> None:
    """The attacker shifts events 8.. up by one and slips a well-formed event
    in at 8: it verifies on its own, but the shifted event after it does not."""
    fill(engine, 20)
    with engine.connect() as conn:
        prev = next(ev for ev in iter_events(conn) if ev.id == 7)
    drop_guards(engine)
    sql(engine, "UPDATE audit_events SET id = id + 1000 WHERE id >= 8")
    sql(engine, "UPDATE audit_events SET id = id - 999 WHERE id >= 1000")
    at = prev.at + timedelta(microseconds=1)
    forged = event_hash(8, at, "download", "operator-1", None, ["ds1"], {}, prev.hash)
    with engine.begin() as conn:
        row = {"id": 8, "at": at, "type": "download", "actor": "operator-1", "grant_id": None}
        row |= {"datasets": ["ds1"], "detail": {}, "prev_hash": prev.hash, "hash": forged}
        conn.execute(sa.insert(metadata.tables["audit_events"]).values(row))
    with engine.connect() as conn:
        result = verify(conn)
    assert (result.first_broken, result.checked) == (9, 8)


def test_cut_off_events_show_against_an_anchor(engine: Engine) -> None:
    fill(engine, 25)
    with engine.connect() as conn:
        anchor = verify(conn)
    assert anchor.head_id == 25 and anchor.head_hash is not None
    drop_guards(engine)
    sql(engine, "DELETE FROM audit_events WHERE id > 20")
    with engine.connect() as conn:
        assert verify(conn).ok  # the chain alone cannot see a cut tail
        result = verify(conn, anchors=[(anchor.head_id, anchor.head_hash)])
    assert (result.ok, result.first_broken) == (False, 21)
    assert "cut off" in result.reason


def test_raw_writes_to_the_sqlite_file_are_found(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    fill(engine, 50)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    # 1. Bytes changed in the file, no SQL at all (so no trigger can object).
    data = path.read_bytes()
    assert data.count(b"m0033=") == 1
    path.write_bytes(data.replace(b"m0033=", b"m0034="))
    # 2. Through the sqlite3 module, triggers dropped first.
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER audit_events_no_update")
    raw.execute("UPDATE audit_events SET grant_id = 'G-stolen' WHERE id = 45")
    raw.commit()
    raw.close()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        result = verify(conn)
    assert (result.ok, result.first_broken, result.checked) == (False, 33, 32)
    engine.dispose()


def test_an_unreadable_row_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    fill(engine, 5)
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER audit_events_no_update")
    raw.execute("UPDATE audit_events SET detail = '{not json' WHERE id = 3")
    raw.commit()
    raw.close()
    with engine.connect() as conn:
        result = verify(conn)
        assert (result.first_broken, "unreadable" in result.reason) == (3, True)
        with pytest.raises(AuditError, match="unreadable"):
            export_jsonl(conn, io.StringIO())
    engine.dispose()


def _append_many(url: str, worker: int, n: int, start: Any) -> None:
    engine = make_engine(url)
    try:
        start.wait(timeout=60)  # every process imported and ready: now they contend
        for i in range(n):
            with engine.begin() as conn:
                append(conn, "job.state", f"worker-{worker}", detail={"i": i})
    finally:
        engine.dispose()


def test_concurrent_threads_leave_one_chain(engine: Engine) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait(timeout=60)
            for i in range(25):
                with engine.begin() as conn:
                    append(conn, "job.state", f"worker-{worker}", detail={"i": i})
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        result = verify(conn)
    assert result.ok and result.checked == 200, result.reason


@pytest.mark.slow
def test_concurrent_processes_leave_one_chain(engine: Engine, store_url: str) -> None:
    context = multiprocessing.get_context("spawn")  # no inherited connections
    start = context.Barrier(4)
    workers = [
        context.Process(target=_append_many, args=(store_url, w, 25, start)) for w in range(4)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * 4
    with engine.connect() as conn:
        result = verify(conn)
        actors = {e.actor for e in iter_events(conn)}
    assert result.ok and result.checked == 100, result.reason
    assert actors == {f"worker-{w}" for w in range(4)}


def test_export_filters_by_dataset_and_time(engine: Engine) -> None:
    fill(engine, 30)
    with engine.begin() as conn:
        append(conn, "view.built", "system", datasets=["ds1", "tax"], detail={"k": "测试"})
        append(conn, "audit.verified", "auditor-1")  # about no dataset
    with read_transaction(engine) as conn:
        everything, mine, none, later = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
        assert export_jsonl(conn, everything) == 32
        assert export_jsonl(conn, mine, datasets=["tax", "ds2"]) == 11
        assert export_jsonl(conn, none, datasets=[]) == 0
        cut = next(e for e in iter_events(conn) if e.id == 31).at
        assert export_jsonl(conn, later, since=cut) == 2
        with pytest.raises(AuditError):
            export_jsonl(conn, io.StringIO(), since=datetime(2026, 1, 1))
    lines = [json.loads(line) for line in mine.getvalue().splitlines()]
    assert [ev["id"] for ev in lines] == [2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 31]
    assert all({"tax", "ds2"} & set(ev["datasets"]) for ev in lines)
    assert lines[-1]["detail"] == {"k": "测试"}
    for ev in lines:  # each exported event carries what its hash needs
        at = datetime.fromisoformat(ev["at"])
        fields = (ev["id"], at, ev["type"], ev["actor"], ev["grant_id"], ev["datasets"])
        assert event_hash(*fields, ev["detail"], ev["prev_hash"]) == ev["hash"]
    assert [json.loads(line)["id"] for line in later.getvalue().splitlines()] == [31, 32]
    assert datetime.fromisoformat(lines[0]["at"]).utcoffset() == timedelta(0)
    assert cut.tzinfo == UTC


def test_migrations_are_idempotent_and_concurrent(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        results: list[object] = []

        def run() -> None:
            try:
                results.append(migrate(engine))
            except BaseException as e:  # reported below
                results.append(e)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [head_revision()] * 3
        fill(engine, 3)
        assert migrate(engine) == head_revision()
        with engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            assert verify(conn).checked == 3  # nothing re-created, nothing lost
    finally:
        engine.dispose()


def test_the_migrations_build_the_schema_tables_describes(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_every_event_type_is_documented_and_none_was_removed() -> None:
    assert set(EVENT_TYPES) >= STORED_TYPES, "stored event types never go away"
    assert set(EVENT_TYPES) == STORED_TYPES, "new event type: add it to STORED_TYPES"
    for name, description in EVENT_TYPES.items():
        assert re.fullmatch(r"[a-z]+(\.[a-z]+)?", name), name
        assert len(name) <= 64  # the column's width
        assert description.strip() and "\n" not in description, name
        assert description[0].isupper() and description.endswith("."), name
