"""The grading table: one documented row per level, defaults as the rules ask, and a
deployment's table refused when it is incomplete or laxer at a higher level."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from sandbox.errors import PolicyError
from sandbox.intake.policy import SecurityLevel, Visibility, default_grading, level_name
from sandbox.intake.policy.grading import DEFAULT_GRADING_FILE, parse_grading

README = Path(__file__).resolve().parents[4] / "policies" / "README.md"
ARTICLE = re.compile(r"\b00[0-4] art\. \d+")
ALL = frozenset(Visibility)


def test_every_level_of_the_model_has_a_row_citing_an_article_and_documented() -> None:
    table = default_grading()
    readme = README.read_text(encoding="utf-8")
    for level in typing.get_args(SecurityLevel):
        grade = table.grade(level)
        assert ARTICLE.search(grade.basis), level
        assert f"| `{level_name(level)}` |" in readme, f"policies/README.md lacks level {level}"


def test_the_defaults() -> None:
    t = default_grading()
    for level in (1, 2):  # the rules say nothing more of general levels 1-2
        g = t.grade(level)
        assert (g.visibilities, g.k_multiplier, g.auto_release) == (ALL, 1, True)
    assert Visibility.PLAIN not in t.grade(3).visibilities
    assert t.grade(4).identifier_visibilities == {Visibility.HIDDEN, Visibility.JOIN_KEY}
    important = t.grade("important")
    assert Visibility.PLAIN not in important.visibilities
    assert (important.k_multiplier, important.auto_release) == (2, False)
    core = t.grade("core")
    assert core.visibilities == {Visibility.HIDDEN, Visibility.AGGREGATE_ONLY}
    assert (core.k_multiplier, core.auto_release, core.dummy) == (3, False, "synthetic")


def _table_text() -> str:
    return DEFAULT_GRADING_FILE.read_text(encoding="utf-8")


def test_a_table_missing_a_level_is_refused() -> None:
    text = _table_text()
    cut = text[: text.index("  core:")]
    with pytest.raises(PolicyError) as e:
        parse_grading(cut)
    assert any("missing ['core']" in p for p in e.value.problems)


def test_a_higher_level_laxer_than_a_lower_one_is_refused() -> None:
    text = _table_text().replace(
        "    visibilities: [hidden, aggregate_only]\n",
        "    visibilities: [hidden, aggregate_only, plain]\n",
    )
    with pytest.raises(PolicyError) as e:
        parse_grading(text)
    assert any(
        "level core is laxer than level important in: visibilities" in p for p in e.value.problems
    )
    with pytest.raises(PolicyError):
        parse_grading(_table_text().replace("k_multiplier: 3", "k_multiplier: 1"))
