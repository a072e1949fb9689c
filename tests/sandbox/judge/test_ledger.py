"""The differencing ledger, against a real SQLite file (no engine needed)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sandbox.errors import LedgerError
from sandbox.judge.ledger import Cell, DifferencingFinding, Ledger, LedgerDecision

ROOT = Path(__file__).resolve().parents[3]
K = 10


def person(n: int) -> str:
    """An identifier-like entity key (what must never appear in a message)."""
    return f"11010519{n:010d}"


def people(start: int, stop: int, *, without: tuple[int, ...] = ()) -> frozenset[str]:
    return frozenset(person(n) for n in range(start, stop) if n not in without)


def cell(
    entities: frozenset[str], location: str = "out.csv row 1 column n", dataset: str = "residents"
) -> Cell:
    return Cell(dataset=dataset, entities=entities, location=location)


def release(ledger: Ledger, *cells: Cell, operator: str = "alice", job: str = "J1") -> list[int]:
    return ledger.record(
        list(cells),
        job_id=job,
        grant_id=f"grant-{operator}",
        operator=operator,
        query="SELECT district, count(*) AS n FROM residents GROUP BY district",
    )


def ledger_at(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite")


def all_text(finding: DifferencingFinding) -> str:
    return " ".join(str(v) for v in dataclasses.asdict(finding).values())


# -- the rule ---------------------------------------------------------------


def test_the_classic_attack_fails_with_the_difference_counted(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        [released] = release(ledger, cell(people(0, 50), "district.csv row 1 column n"))
        attack = cell(people(0, 50, without=(17,)), "district2.csv row 1 column n")

        [finding] = ledger.check([attack], K)

    assert finding.rule == "differencing"
    assert finding.verdict == "FAIL"
    assert finding.location == "district2.csv row 1 column n"
    assert finding.differs_by == 1
    assert (finding.only_new, finding.only_other) == (0, 1)
    assert finding.other == f"released cell #{released} (job J1, operator alice)"
    assert finding.other_cell_id == released
    assert finding.dataset == "residents"
    assert "differ by 1 entity (0 only in the new cell, 1 only in the other)" in finding.message


def test_added_and_removed_entities_are_counted_apart(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)))
        # Three people out, two in: |A xor B| = 5.
        [finding] = ledger.check([cell(people(3, 52))], K)
    assert (finding.differs_by, finding.only_new, finding.only_other) == (5, 2, 3)


def test_identical_re_release_passes(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)))
        assert ledger.check([cell(people(0, 50))], K) == []


@pytest.mark.parametrize(("removed", "fails"), [(1, True), (K - 1, True), (K, False), (40, False)])
def test_only_differences_below_k_fail(tmp_path: Path, removed: int, fails: bool) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)))
        findings = ledger.check([cell(people(removed, 50))], K)
    assert [f.differs_by for f in findings] == ([removed] if fails else [])


def test_same_size_but_far_apart_passes(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)))
        assert ledger.check([cell(people(1000, 1050))], K) == []


def test_sizes_far_apart_are_not_even_compared(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(
            ledger,
            cell(people(0, 100)),  # |100 - 100| < k: compared
            cell(people(0, 100 + K - 1)),  # just inside the window: compared
            cell(people(0, 100 - K + 1)),  # just inside the window: compared
            cell(people(0, 100 + K)),  # |A| - |B| = k: cannot violate
            cell(people(0, 100 - K)),
            cell(people(0, 5000)),
            cell(people(0, 20)),
        )
        before = ledger.comparisons
        findings = ledger.check([cell(people(0, 100))], K)
        assert ledger.comparisons - before == 3
    assert sorted(f.differs_by for f in findings) == [K - 1, K - 1]


def test_an_empty_output_needs_no_work(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)))
        assert ledger.check([], K) == []
        assert ledger.comparisons == 0


# -- scope: global per dataset, across operators and grants ------------------


def test_releases_of_any_operator_and_grant_count(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        [first] = release(ledger, cell(people(0, 50)), operator="alice", job="J1")
        # Bob, under his own grant, cannot subtract Alice's product from his.
        decision = ledger.check_and_record(
            [cell(people(0, 49))],
            K,
            job_id="J2",
            grant_id="grant-bob",
            operator="bob",
            query="SELECT count(*) FROM residents WHERE id <> 49",
        )
    assert not decision.released
    assert decision.cell_ids == ()
    [finding] = decision.findings
    assert finding.other == f"released cell #{first} (job J1, operator alice)"


def test_datasets_never_interact(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50), dataset="residents"))
        near = people(0, 49)
        assert ledger.check([cell(near, dataset="enterprises")], K) == []
        release(ledger, cell(near, dataset="enterprises"))
        assert ledger.released("residents") == 1
        assert ledger.released("enterprises") == 1
        assert ledger.released("tax") == 0
        # Within one output, too.
        pair = [cell(near, dataset="tax"), cell(people(0, 50), dataset="land")]
        assert ledger.check(pair, K) == []
        assert ledger.check([*pair, cell(people(0, 50), dataset="tax")], K) != []


# -- pairs within one output -------------------------------------------------


def test_pairs_within_one_output_fail(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        findings = ledger.check(
            [
                cell(people(0, 50), "out.csv row 1 column n"),
                cell(people(100, 300), "out.csv row 2 column n"),
                cell(people(0, 50), "out.csv row 3 column n"),  # identical: fine
                cell(people(1, 50), "out.csv row 4 column n"),
            ],
            K,
        )
    assert {(f.location, f.other, f.differs_by) for f in findings} == {
        ("out.csv row 4 column n", "cell out.csv row 1 column n in this output", 1),
        ("out.csv row 4 column n", "cell out.csv row 3 column n in this output", 1),
    }
    assert all(f.other_cell_id is None for f in findings)
    assert all("in this output" in f.message for f in findings)


def test_a_clean_output_records_and_then_guards(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        decision = ledger.check_and_record(
            [cell(people(0, 50), "a"), cell(people(50, 120), "b")],
            K,
            job_id="J1",
            grant_id="G1",
            operator="alice",
            query="q",
        )
        assert decision == LedgerDecision(findings=(), cell_ids=decision.cell_ids)
        assert decision.released
        assert len(decision.cell_ids) == 2
        assert ledger.released("residents") == 2
        assert [f.other_cell_id for f in ledger.check([cell(people(51, 120))], K)] == [
            decision.cell_ids[1]
        ]


# -- persistence --------------------------------------------------------------


def entity_index(path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT dataset, key, id FROM entity_index").fetchall()
    db.close()
    return {(dataset, key): i for dataset, key, i in rows}


def test_releases_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        [released] = release(ledger, cell(people(0, 50)))
    with Ledger(path) as ledger:
        assert ledger.released("residents") == 1
        [finding] = ledger.check([cell(people(0, 49))], K)
    assert finding.other_cell_id == released


def test_the_entity_index_is_stable_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        release(ledger, cell(people(0, 50)), cell(people(0, 20), dataset="tax"))
    before = entity_index(path)
    assert sorted(i for (d, _), i in before.items() if d == "residents") == list(range(50))
    assert sorted(i for (d, _), i in before.items() if d == "tax") == list(range(20))
    with Ledger(path) as ledger:
        release(ledger, cell(people(30, 80)))
        assert ledger.check([cell(people(30, 79))], K) != []
    after = entity_index(path)
    assert {key: i for key, i in after.items() if key in before} == before
    # New keys continue the dense numbering.
    assert sorted(i for (d, _), i in after.items() if d == "residents") == list(range(80))


def test_released_cells_are_append_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        release(ledger, cell(people(0, 50)))
    assert not [name for name in dir(Ledger) if name.startswith(("update", "delete", "remove"))]
    db = sqlite3.connect(path)
    try:
        for statement in (
            "UPDATE released_cells SET operator = 'mallory'",
            "DELETE FROM released_cells",
            "UPDATE entity_index SET id = id + 1",
            "DELETE FROM entity_index",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
    finally:
        db.close()
    with Ledger(path) as ledger:
        assert ledger.released("residents") == 1


def test_what_is_stored_about_a_release(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        [cell_id] = release(ledger, cell(people(0, 50), "out.csv row 1 column n"))
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM released_cells").fetchone())
    db.close()
    assert row["id"] == cell_id
    assert row["size"] == 50
    assert row["grant_id"] == "grant-alice" and row["operator"] == "alice"
    assert row["job_id"] == "J1" and row["location"] == "out.csv row 1 column n"
    assert row["query"].startswith("SELECT district") and len(row["query_sha256"]) == 64
    assert row["released_at"].endswith("+00:00")
    assert person(0).encode() not in row["entities"]


# -- k per dataset and input errors -----------------------------------------------


def test_k_per_dataset(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)), cell(people(0, 50), dataset="enterprises"))
        new = [cell(people(5, 50)), cell(people(5, 50), dataset="enterprises")]
        findings = ledger.check(new, {"residents": 10, "enterprises": 3})
        assert [(f.dataset, f.differs_by) for f in findings] == [("residents", 5)]
        assert "fewer than k = 10" in findings[0].message
        with pytest.raises(LedgerError, match="no k is given for dataset 'enterprises'"):
            ledger.check(new, {"residents": 10})
        for bad in (0, -1, True):
            with pytest.raises(LedgerError, match="positive integer"):
                ledger.check(new, bad)


def test_bad_input_records_nothing(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        with pytest.raises(LedgerError, match="job, a grant and an operator"):
            ledger.record([cell(people(0, 5))], job_id="", grant_id="G", operator="o", query="q")
        with pytest.raises(LedgerError, match="dataset and a location"):
            release(ledger, cell(people(0, 5), location=""))
        with pytest.raises(LedgerError, match="must be strings"):
            release(ledger, Cell("residents", frozenset({1, 2}), "x"))  # type: ignore[arg-type]
        assert ledger.released("residents") == 0
        release(ledger, cell(people(0, 5)))
        assert ledger.released("residents") == 1


# -- messages -------------------------------------------------------------------


def test_findings_never_carry_entity_keys(tmp_path: Path) -> None:
    keys = people(0, 60)
    with ledger_at(tmp_path) as ledger:
        release(ledger, cell(people(0, 50)), cell(people(10, 60), "out.csv row 2 column n"))
        findings = ledger.check(
            [cell(people(0, 50, without=(7,))), cell(people(1, 50)), cell(people(10, 58))], K
        )
    assert len(findings) >= 4
    for finding in findings:
        text = all_text(finding)
        # No whole key, and no tell-tale fragment of one either.
        assert not any(key in text or key[-6:] in text for key in keys), text


# -- several workers at once ------------------------------------------------


def test_a_second_ledger_sees_releases_made_after_it_cached(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as worker_a, Ledger(path) as worker_b:
        release(worker_a, cell(people(0, 50)))
        assert worker_b.check([cell(people(0, 50))], K) == []  # b caches keys and cells
        # a allocates new keys b has not seen; b must not confuse them with its own.
        release(worker_a, cell(people(500, 600)))
        [finding] = worker_b.check([cell(people(500, 599))], K)
        assert finding.differs_by == 1
        assert worker_b.released("residents") == 2


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from sandbox.judge.ledger import Cell, Ledger

    path, work, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    start, stop = int(sys.argv[4]), int(sys.argv[5])
    cell = Cell("residents", frozenset(f"p{n}" for n in range(start, stop)), f"{me}.csv row 1")
    with Ledger(path) as ledger:
        ledger.released("residents")  # warm up: connection and schema ready
        (work / f"ready-{me}").touch()
        while not (work / "go").exists():
            time.sleep(0.0005)
        decision = ledger.check_and_record(
            [cell], 10, job_id=me, grant_id="g-" + me, operator=me, query="q"
        )
    print(json.dumps({"ids": list(decision.cell_ids),
                      "differs_by": [f.differs_by for f in decision.findings]}))
    """
)


@pytest.mark.parametrize("round_", range(3))
def test_check_and_record_race_between_processes(tmp_path: Path, round_: int) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    racers = {
        name: subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(tmp_path), name, "0", str(stop)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, stop in (("one", 100), ("two", 99))
    }
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{name}").exists() for name in racers):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(p.poll() is None for p in racers.values()), "a racer died"
        time.sleep(0.005)
    (tmp_path / "go").touch()
    results = {}
    for name, proc in racers.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        results[name] = json.loads(out)
    winners = [r for r in results.values() if r["ids"]]
    losers = [r for r in results.values() if not r["ids"]]
    assert len(winners) == 1 and winners[0]["differs_by"] == []
    assert len(losers) == 1 and losers[0]["differs_by"] == [1]
    with Ledger(path) as ledger:
        assert ledger.released("residents") == 1


def test_check_and_record_race_between_threads(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    barrier = threading.Barrier(2)
    decisions: dict[str, LedgerDecision] = {}

    def racer(name: str, entities: frozenset[str]) -> None:
        with Ledger(path) as ledger:
            barrier.wait()
            decisions[name] = ledger.check_and_record(
                [cell(entities, f"{name}.csv row 1")],
                K,
                job_id=name,
                grant_id=name,
                operator=name,
                query="q",
            )

    threads = [
        threading.Thread(target=racer, args=("one", people(0, 100))),
        threading.Thread(target=racer, args=("two", people(0, 99))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(d.released for d in decisions.values()) == [False, True]
    with Ledger(path) as ledger:
        assert ledger.released("residents") == 1


def test_one_ledger_shared_by_threads(tmp_path: Path) -> None:
    with ledger_at(tmp_path) as ledger:
        errors: list[BaseException] = []

        def work(offset: int) -> None:
            try:
                for n in range(20):
                    start = offset + n * 1000
                    ledger.check_and_record(
                        [cell(people(start, start + 50))],
                        K,
                        job_id=f"J{offset}-{n}",
                        grant_id="G",
                        operator="o",
                        query="q",
                    )
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(o,)) for o in (0, 100_000)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert ledger.released("residents") == 40
