"""Apply time: a policy breaking the grading table is refused with a 422 naming column,
level and rule, and nothing is stored (001 art. 33, 004 art. 5, 19, 26).

Through the provider's REST route (PUT /v1/datasets/{name}/policy) of a real gateway.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.intake.policy import default_grading
from tests.support.gateway import Gateway, make_gateway
from tests.support.grading_world import POLICY, parquet_bytes

TABLE = default_grading()
CORE = TABLE.grade("core").basis
IMPORTANT = TABLE.grade("important").basis
LEVEL_4 = TABLE.grade(4).basis
LEVEL_3 = TABLE.grade(3).basis

# The compliant policy's line for amount_core, and its line number in the YAML.
CORE_LINE = "  amount_core: {class: sensitive, level: core, visibility: aggregate_only,\n"
CORE_DOMAIN = "                domain: {min: 1, max: 60, integer: true}}\n"
LINE = POLICY.format(name="levels").splitlines(keepends=True).index(CORE_LINE) + 1


def _with(column_line: str) -> str:
    """The compliant policy with amount_core's entry replaced by ``column_line``."""
    return POLICY.format(name="levels").replace(CORE_LINE + CORE_DOMAIN, column_line)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with make_gateway(tmp_path_factory.mktemp("grading") / "var", worker=False) as gateway:
        made = gateway.upload("provider", "levels", "levels.parquet", parquet_bytes(), "pid")
        assert made.status_code == 201, made.text
        yield gateway


CASES = [
    (
        "  amount_core: {class: sensitive, level: core, visibility: plain}\n",
        f"columns.amount_core.visibility (line {LINE}): a column of level core may not be "
        f"plain (level core allows hidden, aggregate_only): {CORE}",
    ),
    (
        "  amount_core: {class: attribute, level: core, visibility: group_key}\n",
        f"columns.amount_core.visibility (line {LINE}): a column of level core may not be "
        f"group_key (level core allows hidden, aggregate_only): {CORE}",
    ),
    (
        "  amount_core: {class: identifier, level: core, visibility: join_key}\n",
        f"columns.amount_core.visibility (line {LINE}): an identifier of level core may not "
        f"be join_key (level core allows hidden): {CORE}",
    ),
    (
        "  amount_core: {class: sensitive, level: core, visibility: aggregate_only,\n"
        "                domain: {categories: [1, 2, 3]}}\n",
        f"columns.amount_core.domain (line {LINE + 1}): a column of level core may not list "
        "its values as categories (the catalogue and the dummy data would show them "
        f"verbatim): {CORE}",
    ),
    (
        "  amount_core: {class: attribute, level: important, visibility: plain}\n",
        f"columns.amount_core.visibility (line {LINE}): a column of level important may not "
        f"be plain (level important allows hidden, join_key, aggregate_only, group_key): "
        f"{IMPORTANT}",
    ),
    (
        "  amount_core: {class: identifier, level: 4, visibility: aggregate_only}\n",
        f"columns.amount_core.visibility (line {LINE}): an identifier of level 4 may not be "
        f"aggregate_only (level 4 allows hidden, join_key): {LEVEL_4}",
    ),
    (
        "  amount_core: {class: identifier, level: 4, visibility: plain, "
        "plain_override: a register}\n",
        f"columns.amount_core.visibility (line {LINE}): an identifier of level 4 may not be "
        f"plain (level 4 allows hidden, join_key): {LEVEL_4}",
    ),
    (
        "  amount_core: {class: sensitive, level: 3, visibility: plain}\n",
        f"columns.amount_core.visibility (line {LINE}): a column of level 3 may not be plain "
        f"(level 3 allows hidden, join_key, aggregate_only, group_key): {LEVEL_3}",
    ),
]


@pytest.mark.parametrize(("column_line", "problem"), CASES)
def test_each_rule_of_the_table_is_refused_with_its_message(
    gw: Gateway, column_line: str, problem: str
) -> None:
    before = gw.get("admin", "/v1/datasets/levels/policy/versions").json()
    refused = gw.put_policy("provider", "levels", _with(column_line))
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == {
        "message": "policy for 'levels' breaks the grading table",
        "problems": [problem],
    }
    assert gw.get("admin", "/v1/datasets/levels/policy/versions").json() == before


def test_the_compliant_policy_is_applied(gw: Gateway) -> None:
    applied = gw.put_policy("provider", "levels", POLICY.format(name="levels"))
    assert applied.status_code == 200, applied.text
