"""Exposure policies: parsing, errors that name field and line, schema fit, the store."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.errors import PolicyError
from sandbox.intake.policy import (
    Bands,
    PolicyStore,
    Prefix,
    Truncate,
    Visibility,
    check_against_schema,
    parse_policy,
    policy_version,
)
from tests.support.engine import ROOT

EXAMPLES = sorted((ROOT / "policies" / "exposure").glob("*.yaml"))

SCHEMA = {
    "person_id": "VARCHAR",
    "name": "VARCHAR",
    "age": "INTEGER",
    "birth": "DATE",
    "district": "VARCHAR",
    "income": "DOUBLE",
}

GOOD = """\
dataset: people
entity_column: person_id
columns:
  person_id: {class: identifier, level: 4, visibility: join_key}
  name: {class: identifier, level: 4, visibility: hidden}
  age: {class: quasi_identifier, level: 2, visibility: group_key, generalise: {bands: [18, 35, 60]}}
  birth: {class: quasi_identifier, level: 3, visibility: group_key, generalise: {truncate: month}}
  district: {class: quasi_identifier, level: 2, visibility: group_key, generalise: {prefix: 4}}
  income: {class: sensitive, level: important, visibility: aggregate_only}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "test.yaml")
    return info.value.problems


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path):
    policy = parse_policy(path.read_text(encoding="utf-8"), path.name)
    assert policy.dataset == path.stem


def test_defaults_follow_the_design():
    policy = parse_policy(GOOD)
    assert policy.k == 10
    assert (policy.dominance.p, policy.dominance.n, policy.dominance.k) == (0.10, 2, 0.90)
    assert policy.small_cell_action == "suppress" and policy.auto_release == "sql_only"
    assert isinstance(policy.columns["age"].generalise, Bands)
    assert isinstance(policy.columns["birth"].generalise, Truncate)
    assert isinstance(policy.columns["district"].generalise, Prefix)
    assert policy.columns["name"].visibility == Visibility.HIDDEN
    assert policy.columns["income"].level == "important"


def test_every_problem_is_reported_with_field_and_line():
    text = textwrap.dedent("""\
        dataset: people
        entity_column: person_id
        k: 1
        small_cell_action: shrug
        columns:
          person_id: {class: identifier, level: 4, visibility: join_key}
          name:
            class: identifier
            level: 5
            visibility: hidden
          age: {class: attribute, level: 2, visibility: plain, generalise: {width: 10}}
          zip: {class: secret, level: 2, visibility: group_key}
        """)
    found = problems(text)
    assert any(p.startswith("k (line 3)") for p in found)
    assert any(p.startswith("small_cell_action (line 4)") for p in found)
    assert any(p.startswith("columns.name.level (line 9)") for p in found)
    assert any(p.startswith("columns.age (line 11)") and "group_key" in p for p in found)
    assert any(p.startswith("columns.zip.class (line 12)") for p in found)


def test_identifier_plain_needs_an_override():
    text = GOOD.replace(
        "name: {class: identifier, level: 4, visibility: hidden}",
        "name: {class: identifier, level: 4, visibility: plain}",
    )
    assert any("plain_override" in p for p in problems(text))
    ok = GOOD.replace(
        "name: {class: identifier, level: 4, visibility: hidden}",
        "name: {class: identifier, level: 4, visibility: plain, plain_override: 'public'}",
    )
    assert parse_policy(ok).columns["name"].visibility == Visibility.PLAIN


def test_entity_column_must_exist_and_not_show():
    assert any(
        "entity_column" in p
        for p in problems(GOOD.replace("entity_column: person_id", "entity_column: nobody"))
    )
    assert any(
        "entity column must be hidden or join_key" in p
        for p in problems(
            GOOD.replace(
                "person_id: {class: identifier, level: 4, visibility: join_key}",
                "person_id: {class: identifier, level: 4, visibility: group_key}",
            )
        )
    )


@pytest.mark.parametrize(
    "text,needle",
    [
        ("dataset: [unclosed\n", "not valid YAML (line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
    ],
)
def test_unreadable_yaml(text, needle):
    with pytest.raises(PolicyError, match=r"not valid YAML|must be a YAML mapping") as info:
        parse_policy(text, "test.yaml")
    assert needle in str(info.value)


def test_unknown_fields_are_rejected():
    assert any(
        "extra" in p.lower() or "not permitted" in p.lower()
        for p in problems(GOOD + "surprise: true\n")
    )


def test_row_filter_shapes():
    base = GOOD + "row_filters:\n"
    assert parse_policy(base + "  - {column: district, op: prefix, value: '5001'}\n")
    assert any(
        "non-empty list" in p
        for p in problems(base + "  - {column: district, op: in, value: '5001'}\n")
    )
    assert any(
        "single value" in p for p in problems(base + "  - {column: age, op: '>=', value: [1, 2]}\n")
    )


def test_schema_fit():
    policy = parse_policy(GOOD)
    check_against_schema(policy, SCHEMA, "people")
    with pytest.raises(PolicyError) as info:
        check_against_schema(policy, {**SCHEMA, "extra": "VARCHAR"}, "people")
    assert any("'extra' is not classified" in p for p in info.value.problems)
    with pytest.raises(PolicyError) as info:
        check_against_schema(policy, {k: v for k, v in SCHEMA.items() if k != "income"})
    assert any("no column 'income'" in p for p in info.value.problems)
    with pytest.raises(PolicyError) as info:
        check_against_schema(policy, {**SCHEMA, "age": "VARCHAR", "birth": "INTEGER"})
    assert len(info.value.problems) == 2  # bands need numbers, truncate needs dates
    with pytest.raises(PolicyError, match="not 'others'"):
        check_against_schema(policy, SCHEMA, "others")


def test_version_is_content_not_formatting():
    reformatted = GOOD.replace(
        "{class: identifier, level: 4, visibility: join_key}",
        "{visibility: join_key, level: 4, class: identifier}",
    )
    assert policy_version(parse_policy(GOOD)) == policy_version(parse_policy(reformatted))
    assert policy_version(parse_policy(GOOD)) != policy_version(parse_policy(GOOD + "k: 11\n"))


def test_store_versions_and_rejects_without_storing(tmp_path: Path):
    store = PolicyStore(tmp_path)
    first = store.apply(GOOD, SCHEMA, dataset="people", author="provider-a")
    assert store.apply(GOOD, SCHEMA, dataset="people", author="provider-a") == first
    second = store.apply(GOOD + "k: 20\n", SCHEMA, dataset="people", author="provider-a")
    assert second.version != first.version
    assert [v.version for v in store.versions("people")] == [first.version, second.version]
    assert store.get("people").version == second.version
    assert store.get("people", first.version).policy.k == 10
    before = sorted(p.name for p in (tmp_path / "policies" / "people").iterdir())
    with pytest.raises(PolicyError):
        store.apply(
            GOOD.replace("level: important", "level: 9"),
            SCHEMA,
            dataset="people",
            author="provider-a",
        )
    with pytest.raises(PolicyError):
        store.apply(GOOD, {**SCHEMA, "extra": "VARCHAR"}, dataset="people", author="x")
    assert sorted(p.name for p in (tmp_path / "policies" / "people").iterdir()) == before
    with pytest.raises(PolicyError, match="no exposure policy"):
        store.get("nobody")
    with pytest.raises(PolicyError, match="no policy version"):
        store.get("people", "../../etc")
