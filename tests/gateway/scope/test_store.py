"""The scope lines' store (gateway.scope.store): the Casbin adapter on every store
backend, and several processes sharing one store through its revision."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import casbin
import pytest
from casbin.persist.adapters import FileAdapter
from sqlalchemy import Engine, create_engine, func, select

from gateway.scope.objects import NO_MATCH, Rule
from gateway.scope.policy import MODEL_PATH, ScopePolicy
from gateway.scope.store import ScopeRuleAdapter, create_scope_tables, scope_rules
from sandbox.views.build import DatasetScope

OP, OTHER = "op-a", "op-b"
G1, G2 = "G-1", "G-2"
AGE = "dataset:residents/column:age"
INCOME = "dataset:residents/column:income"


def line(sub: str, grant: str, obj: str, act: str = "read", eft: str = "allow") -> Rule:
    return Rule(sub, grant, obj, act, eft)


ALLOW_AGE = line(OP, G1, AGE)
DENY_AGE = line(OP, G1, AGE, eft="deny")
G2_INCOME = line(OTHER, G2, INCOME)


def write_csv(path: Path, lines: Sequence[Sequence[str]]) -> Path:
    path.write_text("".join("p, " + ", ".join(r) + "\n" for r in lines), encoding="utf-8")
    return path


# -- the store adapter --------------------------------------------------------


@pytest.fixture
def any_store(store_url: str) -> Iterator[Engine]:
    """``scope_rules`` on every store backend (tests/gateway/conftest.py: SQLite, PostgreSQL)."""
    engine = create_engine(store_url)
    create_scope_tables(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def stored(engine: Engine) -> list[tuple[str, ...]]:
    with engine.connect() as db:
        rows = db.execute(select(scope_rules).order_by(scope_rules.c.id)).all()
    return [(r.ptype, r.v0, r.v1, r.v2, r.v3, r.v4, r.v5) for r in rows]


def test_adapter_save_and_reload_in_a_fresh_enforcer(any_store: Engine, tmp_path: Path) -> None:
    lines = [ALLOW_AGE, DENY_AGE, G2_INCOME, line(OP, G1, "dataset:residents/column:收入(元), 月")]
    source = casbin.Enforcer(str(MODEL_PATH), FileAdapter(str(write_csv(tmp_path / "s.csv", []))))
    for r in lines:  # a comma inside a field: never through Casbin's CSV reader
        source.add_policy(*r)
    ScopeRuleAdapter(any_store).save_policy(source.get_model())
    assert stored(any_store) == [("p", *r, "") for r in lines]
    fresh = casbin.Enforcer(str(MODEL_PATH), ScopeRuleAdapter(any_store))
    assert sorted(map(tuple, fresh.get_policy())) == sorted(lines)
    assert fresh.enforce(OTHER, G2, INCOME, "read")
    # save replaces
    source.remove_policy(*DENY_AGE)
    ScopeRuleAdapter(any_store).save_policy(source.get_model())
    assert len(stored(any_store)) == 3


def test_adapter_add_and_remove(any_store: Engine) -> None:
    adapter = ScopeRuleAdapter(any_store)
    adapter.add_policy("p", "p", list(ALLOW_AGE))
    adapter.add_policies("p", "p", [list(DENY_AGE), list(G2_INCOME)])
    adapter.remove_policy("p", "p", list(DENY_AGE))
    adapter.remove_policies("p", "p", [list(G2_INCOME), list(line(OP, G1, INCOME))])
    assert stored(any_store) == [("p", *ALLOW_AGE, "")]
    with pytest.raises(Exception, match=r"(?i)unique"):  # a duplicate fails the whole batch
        adapter.add_policies("p", "p", [list(G2_INCOME), list(ALLOW_AGE)])
    assert stored(any_store) == [("p", *ALLOW_AGE, "")]
    with pytest.raises(ValueError, match="at most 6"):
        adapter.add_policy("p", "p", ["x"] * 7)


def test_adapter_removes_many_lines_in_batches(any_store: Engine) -> None:
    adapter = ScopeRuleAdapter(any_store)
    lines = [list(line(OP, G1, f"dataset:residents/column:c{i}")) for i in range(450)]
    adapter.add_policies("p", "p", lines)
    adapter.remove_policies("p", "p", lines[:430])
    with any_store.connect() as db:
        assert db.execute(select(func.count()).select_from(scope_rules)).scalar() == 20


def test_adapter_filtered_removal(any_store: Engine) -> None:
    adapter = ScopeRuleAdapter(any_store)
    lines = [ALLOW_AGE, line(OP, G1, AGE, "export"), line(OP, G1, INCOME), G2_INCOME]
    adapter.add_policies("p", "p", [list(r) for r in lines])
    adapter.remove_filtered_policy("p", "p", 1, G1, "", "export")  # "" matches anything
    assert [r[1:6] for r in stored(any_store)] == [ALLOW_AGE, line(OP, G1, INCOME), G2_INCOME]
    adapter.remove_filtered_policy("p", "p", 1, G1)
    assert [r[1:6] for r in stored(any_store)] == [G2_INCOME]
    # through Casbin's own API (a plain Enforcer: FastEnforcer's index cannot take it)
    enforcer = casbin.Enforcer(str(MODEL_PATH), adapter)
    enforcer.add_policy(*ALLOW_AGE)
    enforcer.remove_filtered_policy(0, OTHER)
    assert [r[1:6] for r in stored(any_store)] == [ALLOW_AGE]
    assert enforcer.get_policy() == [list(ALLOW_AGE)]
    with pytest.raises(ValueError, match="unknown"):
        adapter.remove_filtered_policy("p", "p", 5, "a", "b")


# -- several processes on one store ------------------------------------------------

CHANGE_IN_ANOTHER_PROCESS = """
import sys
from sqlalchemy import create_engine
from gateway.scope.policy import ScopePolicy
from sandbox.views.build import DatasetScope
policy = ScopePolicy.from_engine(create_engine(sys.argv[1]))
getattr(policy, sys.argv[2])(*sys.argv[3:]) if sys.argv[2] != "grant_rules" else \\
    policy.grant_rules(sys.argv[3], sys.argv[4], [DatasetScope("residents", ("age",))], ["read"])
"""


def in_another_process(url: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHANGE_IN_ANOTHER_PROCESS, url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_a_change_in_another_process_is_in_force_at_the_next_decision(
    any_store: Engine,
) -> None:
    url = any_store.url.render_as_string(hide_password=False)
    here = ScopePolicy.from_engine(any_store)
    assert not here.can_access(OP, G1, AGE, "read")  # loaded, and memoised, before the change
    in_another_process(url, "grant_rules", G1, OP)
    assert here.can_access(OP, G1, AGE, "read")
    in_another_process(url, "suspend", G1)
    decision = here.decide(OP, G1, AGE, "read")
    assert not decision.allowed and decision.reason[-1] == "deny"
    in_another_process(url, "resume", G1)
    assert here.can_job_scope(OP, G1, [("residents", "age")], "read")
    in_another_process(url, "revoke_rules", G1)
    assert here.decide(OP, G1, AGE, "read").reason == (NO_MATCH,)
    assert here.rules(G1) == []


def test_a_change_made_on_stale_lines_is_computed_on_the_stored_ones(any_store: Engine) -> None:
    other_engine = create_engine(any_store.url)
    try:
        here = ScopePolicy.from_engine(any_store)
        there = ScopePolicy.from_engine(other_engine)
        here.grant_rules(G1, OP, [DatasetScope("residents", ("age",))], ["read"])
        # "there" loaded before the grant existed; suspending needs its lines.
        assert [r.effect for r in there.suspend(G1)] == ["deny"] * 4
        assert not here.can_access(OP, G1, AGE, "read")
        there.revoke_rules(G1)
        assert here.rules() == [] and stored(any_store) == []
    finally:
        other_engine.dispose()


def test_every_change_counts_one_revision(any_store: Engine) -> None:
    adapter = ScopeRuleAdapter(any_store)
    start = adapter.current_revision()
    adapter.add_policies("p", "p", [list(ALLOW_AGE), list(G2_INCOME)])
    adapter.remove_policy("p", "p", list(G2_INCOME))
    adapter.remove_filtered_policy("p", "p", 1, G1)
    assert adapter.current_revision() == start + 3
    # Its own writes keep its memory current only while nobody else wrote in between.
    policy = ScopePolicy(adapter)
    assert adapter.loaded_revision == start + 3
    ScopeRuleAdapter(any_store).add_policy("p", "p", list(ALLOW_AGE))
    adapter.add_policy("p", "p", list(G2_INCOME))
    assert adapter.loaded_revision is None  # memory lacks the other writer's line
    assert sorted(policy.rules()) == sorted([ALLOW_AGE, G2_INCOME])  # so it reloads
    assert adapter.loaded_revision == start + 5
