"""The scope policy (gateway.scope.policy): truth tables over policy lines, grant changes.

Each truth-table row is (policy lines, request) -> (allowed, reason); the
same table runs against a policy loaded from a CSV file and one loaded from
the ``scope_rules`` table of a real SQLite file.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import casbin
import pytest
from sqlalchemy import Engine, create_engine, text

from gateway.scope.errors import ScopeDenied, ScopeRuleError, ScopeStoreError
from gateway.scope.objects import ACTIONS, NO_MATCH, Decision, Rule
from gateway.scope.policy import MODEL_PATH, ScopePolicy
from gateway.scope.store import ScopeRuleAdapter, create_scope_tables
from sandbox.views.build import DatasetScope

OP, OTHER = "op-a", "op-b"
G1, G2 = "G-1", "G-2"
AGE = "dataset:residents/column:age"
INCOME = "dataset:residents/column:income"
RESIDENTS = "dataset:residents"


def line(sub: str, grant: str, obj: str, act: str = "read", eft: str = "allow") -> Rule:
    return Rule(sub, grant, obj, act, eft)


def malformed(problem: str) -> tuple[str, ...]:
    return (f"malformed request: {problem}",)


@dataclass(frozen=True)
class Case:
    name: str
    lines: tuple[Rule, ...]
    request: tuple[str, str, str, str]  # (sub, grant, obj, act)
    allowed: bool
    reason: tuple[str, ...]  # the expected line, or a fixed text


ALLOW_AGE = line(OP, G1, AGE)
DENY_AGE = line(OP, G1, AGE, eft="deny")
SUSPENDED = line(OP, G1, "*", eft="deny")
ALL_COLUMNS = line(OP, G1, "dataset:residents/column:*")
DATASET = line(OP, G1, RESIDENTS)
G2_INCOME = line(OTHER, G2, INCOME)

BAD_OBJECT = "object is not dataset:<name> or dataset:<name>/column:<column>"
BAD_DATASET = "dataset name is not a registry name (a-z, then a-z 0-9 _)"
BAD_COLUMN_CHARS = 'column name holds "/" or "*"'
BAD_COLUMN_SPACES = "column name holds control characters or surrounding spaces"
BAD_COLUMN_EMPTY = "column name is empty or longer than 256 characters"
BAD_SUBJECT = "subject is not an id (letters, digits, _ . : @ -)"
BAD_GRANT = "grant is not an id (letters, digits, _ . : @ -)"
BAD_ACTION = "action is not one of read, aggregate, join, export"

CASES: list[Case] = [
    # the grant's own column, and what lies next to it
    Case("allowed column", (ALLOW_AGE,), (OP, G1, AGE, "read"), True, ALLOW_AGE),
    Case("column not in grant", (ALLOW_AGE,), (OP, G1, INCOME, "read"), False, (NO_MATCH,)),
    Case(
        "other grant's column",
        (ALLOW_AGE, G2_INCOME),
        (OP, G1, INCOME, "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "operator asks under another operator's grant",
        (ALLOW_AGE, G2_INCOME),
        (OP, G2, INCOME, "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "other operator under the same grant id",
        (ALLOW_AGE,),
        (OTHER, G1, AGE, "read"),
        False,
        (NO_MATCH,),
    ),
    # deny lines
    Case(
        "explicit deny beats allow", (ALLOW_AGE, DENY_AGE), (OP, G1, AGE, "read"), False, DENY_AGE
    ),
    Case(
        "explicit deny beats a column pattern",
        (ALL_COLUMNS, DENY_AGE),
        (OP, G1, AGE, "read"),
        False,
        DENY_AGE,
    ),
    Case(
        "a column deny leaves other columns",
        (ALL_COLUMNS, DENY_AGE),
        (OP, G1, INCOME, "read"),
        True,
        ALL_COLUMNS,
    ),
    Case("suspended grant", (ALLOW_AGE, SUSPENDED), (OP, G1, AGE, "read"), False, SUSPENDED),
    Case(
        "suspension covers the dataset object",
        (DATASET, SUSPENDED),
        (OP, G1, RESIDENTS, "read"),
        False,
        SUSPENDED,
    ),
    Case(
        "suspension of one grant leaves the other",
        (ALLOW_AGE, SUSPENDED, line(OP, G2, AGE)),
        (OP, G2, AGE, "read"),
        True,
        line(OP, G2, AGE),
    ),
    Case("revoked grant (no lines left)", (G2_INCOME,), (OP, G1, AGE, "read"), False, (NO_MATCH,)),
    # dataset-level and column-level objects
    Case("dataset line allows the dataset", (DATASET,), (OP, G1, RESIDENTS, "read"), True, DATASET),
    Case(
        "dataset line does not cover a column",
        (DATASET,),
        (OP, G1, AGE, "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "column line does not cover the dataset",
        (ALLOW_AGE,),
        (OP, G1, RESIDENTS, "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "column pattern covers a column",
        (ALL_COLUMNS,),
        (OP, G1, INCOME, "read"),
        True,
        ALL_COLUMNS,
    ),
    Case(
        "column pattern does not cover the dataset object",
        (ALL_COLUMNS,),
        (OP, G1, RESIDENTS, "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "column pattern does not leak to a dataset sharing the prefix",
        (ALL_COLUMNS,),
        (OP, G1, "dataset:residents_archive/column:age", "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "column of another dataset with the same name",
        (ALLOW_AGE,),
        (OP, G1, "dataset:enterprises/column:age", "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "column names are exact (no prefix match)",
        (ALLOW_AGE,),
        (OP, G1, AGE + "_band", "read"),
        False,
        (NO_MATCH,),
    ),
    Case(
        "column names keep their case and script",
        (line(OP, G1, "dataset:residents/column:收入(元)"),),
        (OP, G1, "dataset:residents/column:收入(元)", "read"),
        True,
        line(OP, G1, "dataset:residents/column:收入(元)"),
    ),
    # empty policy
    *(
        Case(f"empty policy denies {obj} {act}", (), (OP, G1, obj, act), False, (NO_MATCH,))
        for obj in (AGE, RESIDENTS)
        for act in ACTIONS
    ),
    # malformed requests: denied before Casbin, even where a pattern would match
    *(
        Case(f"malformed object {obj!r}", (ALL_COLUMNS, DATASET), (OP, G1, obj, "read"), False, why)
        for obj, why in [
            ("", malformed(BAD_OBJECT)),
            ("*", malformed(BAD_OBJECT)),
            ("residents.age", malformed(BAD_OBJECT)),
            ("column:age", malformed(BAD_OBJECT)),
            ("dataset:residents/age", malformed(BAD_OBJECT)),
            (" dataset:residents/column:age", malformed(BAD_OBJECT)),
            ("dataset:residents/column:*", malformed(BAD_COLUMN_CHARS)),
            ("dataset:residents/column:a*", malformed(BAD_COLUMN_CHARS)),
            ("dataset:residents/column:age/column:x", malformed(BAD_COLUMN_CHARS)),
            ("dataset:residents/column:", malformed(BAD_COLUMN_EMPTY)),
            ("dataset:residents/column:" + "x" * 257, malformed(BAD_COLUMN_EMPTY)),
            ("dataset:residents/column: age", malformed(BAD_COLUMN_SPACES)),
            ("dataset:residents/column:age\n", malformed(BAD_COLUMN_SPACES)),
            ("dataset:residents/column:a\x00ge", malformed(BAD_COLUMN_SPACES)),
            ("dataset:Residents/column:age", malformed(BAD_DATASET)),
            ("dataset:/column:age", malformed(BAD_DATASET)),
            ("dataset:*", malformed(BAD_DATASET)),
            ("dataset:residents*", malformed(BAD_DATASET)),
            ("dataset:residents:x/column:age", malformed(BAD_DATASET)),
            ("dataset:residents\n", malformed(BAD_DATASET)),
        ]
    ),
    Case("empty subject", (ALLOW_AGE,), ("", G1, AGE, "read"), False, malformed(BAD_SUBJECT)),
    Case("pattern subject", (ALLOW_AGE,), ("*", G1, AGE, "read"), False, malformed(BAD_SUBJECT)),
    Case(
        "subject newline", (ALLOW_AGE,), (f"{OP}\n", G1, AGE, "read"), False, malformed(BAD_SUBJECT)
    ),
    Case("empty grant", (ALLOW_AGE,), (OP, "", AGE, "read"), False, malformed(BAD_GRANT)),
    Case("unknown action", (ALLOW_AGE,), (OP, G1, AGE, "write"), False, malformed(BAD_ACTION)),
    Case("action case", (ALLOW_AGE,), (OP, G1, AGE, "READ"), False, malformed(BAD_ACTION)),
    # Casbin evaluates the matcher once with empty line fields when no line is
    # left after filtering: an all-empty request would match it.
    Case("all-empty request, empty policy", (), ("", "", "", ""), False, malformed(BAD_SUBJECT)),
]

# each action: a line for one action allows that action and no other
CASES += [
    Case(
        f"line for {granted} asked for {asked}",
        (line(OP, G1, AGE, granted),),
        (OP, G1, AGE, asked),
        granted == asked,
        line(OP, G1, AGE, granted) if granted == asked else (NO_MATCH,),
    )
    for granted in ACTIONS
    for asked in ACTIONS
]


def write_csv(path: Path, lines: Sequence[Sequence[str]]) -> Path:
    path.write_text("".join("p, " + ", ".join(r) + "\n" for r in lines), encoding="utf-8")
    return path


@pytest.fixture
def scope_engine(tmp_path: Path) -> Iterator[Engine]:
    """A real SQLite file holding an empty ``scope_rules`` table."""
    engine = create_engine(f"sqlite:///{tmp_path / 'scope.sqlite'}")
    create_scope_tables(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def policy_from(source: str, lines: Sequence[Rule], tmp_path: Path, engine: Engine) -> ScopePolicy:
    if source == "file":
        return ScopePolicy.from_file(write_csv(tmp_path / "scope.csv", lines))
    ScopeRuleAdapter(engine).add_policies("p", "p", [list(r) for r in lines])
    return ScopePolicy.from_engine(engine)


@pytest.mark.parametrize("source", ["file", "sqlite"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_truth_table(case: Case, source: str, tmp_path: Path, scope_engine: Engine) -> None:
    policy = policy_from(source, case.lines, tmp_path, scope_engine)
    decision = policy.decide(*case.request)
    assert (decision.allowed, decision.reason) == (case.allowed, tuple(case.reason))
    sub, grant, obj, act = case.request
    assert decision == Decision(case.allowed, sub, grant, obj, act, tuple(case.reason))
    assert policy.can_access(*case.request) is case.allowed
    assert policy.decide(*case.request) == decision  # memoised or not, the same answer


def test_two_matching_allow_lines_report_one_of_them(tmp_path: Path) -> None:
    policy = ScopePolicy.from_file(write_csv(tmp_path / "s.csv", [ALLOW_AGE, ALL_COLUMNS]))
    decision = policy.decide(OP, G1, AGE, "read")
    assert decision.allowed
    assert decision.reason in {ALLOW_AGE, ALL_COLUMNS}


def test_plain_enforcer_agrees_with_the_table(tmp_path: Path) -> None:
    """The model alone (no index narrowing the lines) gives the same answers."""
    for n, case in enumerate(c for c in CASES if not c.reason[0].startswith("malformed")):
        csv = write_csv(tmp_path / f"plain{n}.csv", case.lines)
        allowed, rule = casbin.Enforcer(str(MODEL_PATH), str(csv)).enforce_ex(*case.request)
        assert allowed is case.allowed, case.name
        assert (tuple(rule) if rule else (NO_MATCH,)) == tuple(case.reason), case.name


# -- loading --------------------------------------------------------


def test_default_policy_is_empty_and_denies() -> None:
    policy = ScopePolicy.from_file()
    assert policy.rules() == []
    assert not policy.can_access(OP, G1, AGE, "read")


@pytest.mark.parametrize(
    "bad, problem",
    [
        (line(OP, G1, "*"), 'object "*" is only for deny lines'),
        (line(OP, G1, AGE, "write"), "action is not one of"),
        (line(OP, G1, AGE, eft="maybe"), "eft is not one of"),
        (line(OP, G1, "dataset:*/column:*"), "dataset name"),
        (line(OP, G1, "dataset:residents*"), "dataset name"),
        (line(OP, "G 1", AGE), "grant is not an id"),
        (line("*", G1, AGE), "subject is not an id"),
    ],
)
def test_an_invalid_line_stops_the_load(
    bad: Rule, problem: str, tmp_path: Path, scope_engine: Engine
) -> None:
    with pytest.raises(ScopeRuleError, match="invalid scope policy lines"):
        ScopePolicy.from_file(write_csv(tmp_path / "bad.csv", [ALLOW_AGE, bad]))
    ScopeRuleAdapter(scope_engine).add_policies("p", "p", [list(ALLOW_AGE), list(bad)])
    with pytest.raises(ScopeRuleError, match=re.escape(problem)):
        ScopePolicy.from_engine(scope_engine)


def test_a_short_line_stops_the_load(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(f"p, {OP}, {G1}, {AGE}, read\n")
    with pytest.raises(ScopeRuleError, match="five fields"):
        ScopePolicy.from_file(path)


def test_reload_refusing_a_line_denies_everything(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    policy.grant_rules(G1, OP, [DatasetScope("residents", ("age",))], ["read"])
    ScopeRuleAdapter(scope_engine).add_policy("p", "p", list(line(OP, G1, "*")))
    with pytest.raises(ScopeRuleError):
        policy.reload()
    assert not policy.can_access(OP, G1, AGE, "read")


# -- job scope ----------------------------------------------------------------


def granted(policy: ScopePolicy, *actions: str) -> list[Rule]:
    scopes = [
        DatasetScope("residents", ("age", "district")),
        DatasetScope("social_insurance", ("contribution_base",)),
    ]
    return policy.grant_rules(G1, OP, scopes, actions or ("read",))


def test_check_job_scope_allows_a_lineage_within_the_grant(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy, "read", "export")
    lineage = [
        ("residents", "age"),
        ("residents", "district"),
        ("residents", "age"),  # repeated: decided once
        ("social_insurance", "contribution_base"),
        ("residents", None),  # the dataset itself
    ]
    decisions = policy.check_job_scope(OP, G1, lineage, "export")
    assert [d.object for d in decisions] == [
        AGE,
        "dataset:residents/column:district",
        "dataset:social_insurance/column:contribution_base",
        RESIDENTS,
    ]
    assert all(d.allowed and d.reason[-1] == "allow" for d in decisions)
    assert policy.can_job_scope(OP, G1, lineage, "export")


def test_check_job_scope_raises_with_every_decision(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy, "read")
    lineage = [("residents", "age"), ("residents", "income"), ("residents", "district")]
    with pytest.raises(ScopeDenied) as caught:
        policy.check_job_scope(OP, G1, lineage, "read")
    assert [d.allowed for d in caught.value.decisions] == [True, False, True]
    assert [d.object for d in caught.value.denied] == [INCOME]
    assert "dataset:residents/column:income (read): " + NO_MATCH in str(caught.value)
    assert not policy.can_job_scope(OP, G1, lineage, "read")
    # the release check: read was granted, export was not
    with pytest.raises(ScopeDenied):
        policy.check_job_scope(OP, G1, [("residents", "age")], "export")


def test_nothing_to_check_is_denied(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy)
    with pytest.raises(ScopeDenied, match="nothing to check"):
        policy.check_job_scope(OP, G1, [], "read")
    assert not policy.can_job_scope(OP, G1, [], "read")


def test_a_dataset_name_cannot_smuggle_a_column(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy)
    smuggled = [("residents/column:age", None)]  # would spell AGE
    assert not policy.can_job_scope(OP, G1, smuggled, "read")
    with pytest.raises(ScopeDenied) as caught:
        policy.check_job_scope(OP, G1, smuggled, "read")
    assert caught.value.denied[0].reason == malformed(BAD_DATASET)


def test_check_access_pairs_with_can_access(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy)
    assert policy.check_access(OP, G1, AGE, "read").allowed
    with pytest.raises(ScopeDenied) as caught:
        policy.check_access(OP, G1, INCOME, "read")
    assert caught.value.decisions == (Decision(False, OP, G1, INCOME, "read", (NO_MATCH,)),)


def test_decide_many_is_the_lineage_in_order(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy)
    decisions = policy.decide_many(OP, G1, [INCOME, AGE, INCOME, "bad"], "read")
    assert [(d.object, d.allowed) for d in decisions] == [
        (INCOME, False),
        (AGE, True),
        ("bad", False),
    ]


# -- grant changes ------------------------------------------------------------


def test_grant_rules_write_exactly_the_grant(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    written = granted(policy, "read", "aggregate")
    objects = {
        RESIDENTS,
        AGE,
        "dataset:residents/column:district",
        "dataset:social_insurance",
        "dataset:social_insurance/column:contribution_base",
    }
    expected = sorted(line(OP, G1, o, a) for o in objects for a in ("read", "aggregate"))
    assert written == expected
    assert policy.rules(G1) == expected
    assert ScopePolicy.from_engine(scope_engine).rules() == expected  # stored
    assert granted(policy, "read", "aggregate") == expected  # idempotent
    assert ScopePolicy.from_engine(scope_engine).rules() == expected


def test_an_amended_grant_narrows_at_once(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy, "read", "export")
    assert policy.can_access(OP, G1, AGE, "export")  # memoised now
    policy.grant_rules(G1, OP, [DatasetScope("residents", ("district",))], ["read"])
    assert not policy.can_access(OP, G1, AGE, "read")
    assert not policy.can_access(OP, G1, AGE, "export")
    assert policy.can_access(OP, G1, "dataset:residents/column:district", "read")
    assert ScopePolicy.from_engine(scope_engine).rules() == policy.rules()


@pytest.mark.parametrize(
    "scopes, actions, message",
    [
        ([DatasetScope("residents", ("age",))], [], "at least one"),
        ([], ["read"], "at least one"),
        ([DatasetScope("residents", ("age",))], ["write"], "action is not one of"),
        ([DatasetScope("residents", ("*",))], ["read"], "column name"),
        ([DatasetScope("residents", ("a/column:b",))], ["read"], "column name"),
        ([DatasetScope("residents/column:age", ())], ["read"], "dataset name"),
        ([DatasetScope("Residents", ("age",))], ["read"], "dataset name"),
    ],
)
def test_grant_rules_refuse_bad_scopes(
    scopes: list[DatasetScope], actions: list[str], message: str, scope_engine: Engine
) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    with pytest.raises(ScopeRuleError, match=message):
        policy.grant_rules(G1, OP, scopes, actions)
    assert policy.rules() == []


def test_a_grant_id_belongs_to_one_operator(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    granted(policy)
    with pytest.raises(ScopeRuleError, match="another operator"):
        policy.grant_rules(G1, OTHER, [DatasetScope("residents", ("age",))], ["read"])
    assert not policy.can_access(OTHER, G1, AGE, "read")
    assert {r.subject for r in policy.rules()} == {OP}


def test_suspend_and_resume(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    scope = granted(policy, "read", "export")
    policy.grant_rules(G2, OP, [DatasetScope("residents", ("age",))], ["read"])
    assert policy.can_access(OP, G1, AGE, "read")  # memoised now
    lines = policy.suspend(G1)
    assert lines == [line(OP, G1, "*", a, "deny") for a in ACTIONS]
    assert policy.suspend(G1) == lines  # idempotent
    assert policy.is_suspended(G1) and not policy.is_suspended(G2)
    for action in ("read", "export"):
        decision = policy.decide(OP, G1, AGE, action)
        assert not decision.allowed
        assert decision.reason == line(OP, G1, "*", action, "deny")
    assert policy.can_access(OP, G2, AGE, "read")  # another grant of the operator
    fresh = ScopePolicy.from_engine(scope_engine)  # the suspension is stored
    assert not fresh.can_access(OP, G1, AGE, "read")

    assert sorted(policy.resume(G1)) == sorted(lines)
    assert policy.can_access(OP, G1, AGE, "read")
    assert policy.rules(G1) == scope  # the scope was kept while suspended
    assert ScopePolicy.from_engine(scope_engine).can_access(OP, G1, AGE, "read")


def test_resume_keeps_other_deny_lines(tmp_path: Path) -> None:
    policy = ScopePolicy.from_file(write_csv(tmp_path / "s.csv", [ALL_COLUMNS, DENY_AGE]))
    policy.suspend(G1)
    assert not policy.can_access(OP, G1, INCOME, "read")
    policy.resume(G1)
    assert policy.can_access(OP, G1, INCOME, "read")
    assert policy.decide(OP, G1, AGE, "read").reason == DENY_AGE


def test_suspending_an_unknown_grant_is_an_error(scope_engine: Engine) -> None:
    with pytest.raises(ScopeRuleError, match="nothing to suspend"):
        ScopePolicy.from_engine(scope_engine).suspend(G1)


def test_revoke_removes_every_line_of_the_grant(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    scope = granted(policy, "read")
    policy.grant_rules(G2, OTHER, [DatasetScope("residents", ("income",))], ["read"])
    policy.suspend(G1)
    assert policy.can_access(OTHER, G2, INCOME, "read")
    removed = policy.revoke_rules(G1)
    assert sorted(removed) == sorted([*scope, *(line(OP, G1, "*", a, "deny") for a in ACTIONS)])
    assert policy.rules(G1) == []
    assert policy.decide(OP, G1, AGE, "read").reason == (NO_MATCH,)
    assert policy.can_access(OTHER, G2, INCOME, "read")
    assert ScopePolicy.from_engine(scope_engine).rules() == policy.rules()
    assert policy.revoke_rules(G1) == []


def test_add_rules_for_administration(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    assert policy.add_rules([ALL_COLUMNS, DENY_AGE]) == [ALL_COLUMNS, DENY_AGE]
    assert policy.add_rules([ALL_COLUMNS]) == []
    assert policy.decide(OP, G1, AGE, "read").reason == DENY_AGE
    assert policy.can_access(OP, G1, INCOME, "read")
    with pytest.raises(ScopeRuleError):
        policy.add_rules([line(OP, G1, "*")])
    with pytest.raises(ScopeRuleError, match="five fields"):
        policy.add_rules([("a", "b")])


def test_a_failed_store_write_changes_nothing(scope_engine: Engine) -> None:
    policy = ScopePolicy.from_engine(scope_engine)
    scope = granted(policy)
    with scope_engine.begin() as db:
        db.execute(text("DROP TABLE scope_rules"))
    with pytest.raises(ScopeStoreError):
        policy.suspend(G1)
    assert policy.can_access(OP, G1, AGE, "read")
    with pytest.raises(ScopeStoreError):
        policy.revoke_rules(G1)
    assert policy.rules() == scope


def test_decisions_in_parallel_threads_stay_apart(tmp_path: Path) -> None:
    """The index narrows lines through state on the shared policy: the lock keeps threads apart."""
    lines = [
        line(f"op-{g}", f"G-{g}", f"dataset:d{g}/column:c{c}") for g in range(8) for c in range(5)
    ]
    policy = ScopePolicy.from_file(write_csv(tmp_path / "many.csv", lines), memo_size=0)
    # (request, expected): allowed only for the grant's own dataset and columns c0..c4
    table = [
        ((f"op-{g}", f"G-{g}", f"dataset:d{h}/column:c{c}", "read"), g == h and c < 5)
        for g in range(8)
        for h in range(8)
        for c in range(6)
    ]
    barrier = threading.Barrier(8)

    def work(shard: int) -> list[bool]:
        barrier.wait()
        return [
            policy.decide(*request).allowed is expected for request, expected in table[shard::8] * 5
        ]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: without the lock, some answers go wrong
    try:
        with ThreadPoolExecutor(8) as pool:
            results = [ok for shard in pool.map(work, range(8)) for ok in shard]
    finally:
        sys.setswitchinterval(interval)
    assert len(results) == len(table) * 5
    assert all(results)
