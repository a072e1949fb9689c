"""What the scope policy speaks of: objects, actions, policy lines and decisions.

Stage: data flow step 1 and 5 (scope checks). Pure values and checks, no
state: ``gateway.scope.policy`` decides with them, ``gateway.scope.store``
keeps the lines, ``gateway.scope.lines`` writes a grant's.

Invariants:

- An object has one of two shapes: ``dataset:<name>`` or
  ``dataset:<name>/column:<column>``. Dataset names follow the registry's
  rule; a column name is printable text without "/" or "*", no surrounding
  spaces, at most 256 characters. So no request can carry a "*" pattern.
- A policy line is five fields (sub, grant, obj, act, eft); ``rule_problem``
  is the one rule every loaded and written line obeys: a pattern object
  ("*", ``column:*``) is only ever in a line, never in a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sandbox.intake.registry import NAME_RE as DATASET_NAME_RE

ACTIONS = ("read", "aggregate", "join", "export")
EFFECTS = ("allow", "deny")
NO_MATCH = "no rule matched: denied by default"
EVERYTHING = "*"  # the object of a suspension's deny lines
ALL_COLUMNS = "*"

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")  # operator and grant ids
MAX_COLUMN = 256
OBJECT_RE = re.compile(r"^dataset:(?P<dataset>[^/]*)(?:/column:(?P<column>.*))?$", re.DOTALL)

BAD_DATASET = "dataset name is not a registry name (a-z, then a-z 0-9 _)"


@dataclass(frozen=True)
class Decision:
    """One scope decision, as the audit log records it.

    ``reason`` is the policy line that decided (sub, grant, obj, act, eft), or
    a one-element tuple: "no rule matched: denied by default", or
    "malformed request: ...". Where several allow lines match (a column line
    and a ``column:*`` line), Casbin reports one of them.
    """

    allowed: bool
    subject: str
    grant: str
    object: str
    action: str
    reason: tuple[str, ...]


class Rule(NamedTuple):
    """One policy line (``p, sub, grant, obj, act, eft``)."""

    subject: str
    grant: str
    object: str
    action: str
    effect: str


def dataset_object(dataset: str) -> str:
    """The object naming a whole dataset: ``dataset:<name>``."""
    return f"dataset:{dataset}"


def column_object(dataset: str, column: str) -> str:
    """The object naming one column: ``dataset:<name>/column:<column>``."""
    return f"dataset:{dataset}/column:{column}"


def parse_object(obj: str) -> tuple[str, str | None]:
    """``(dataset, column)`` of a request object (column None for a dataset); ValueError if bad.

    Dataset names follow the registry's rule; a column name is any printable
    text without "/" or "*", no surrounding spaces, at most 256 characters.
    """
    m = OBJECT_RE.fullmatch(obj) if isinstance(obj, str) else None
    if m is None:
        raise ValueError("object is not dataset:<name> or dataset:<name>/column:<column>")
    dataset, column = m["dataset"], m["column"]
    if not DATASET_NAME_RE.fullmatch(dataset):
        raise ValueError(BAD_DATASET)
    if column is not None:
        problem = column_problem(column)
        if problem:
            raise ValueError(problem)
    return dataset, column


def column_problem(column: str) -> str | None:
    """Why ``column`` is not a column name a request or a line may hold, or None."""
    if not column or len(column) > MAX_COLUMN:
        return f"column name is empty or longer than {MAX_COLUMN} characters"
    if "/" in column or "*" in column:
        return 'column name holds "/" or "*"'
    if not column.isprintable() or column != column.strip():
        return "column name holds control characters or surrounding spaces"
    return None


def request_problem(subject: str, grant: str, obj: str, action: str) -> str | None:
    """Why a request is malformed (it is then denied before Casbin sees it), or None."""
    for label, value in (("subject", subject), ("grant", grant)):
        if not isinstance(value, str) or not ID_RE.fullmatch(value):
            return f"{label} is not an id (letters, digits, _ . : @ -)"
    if action not in ACTIONS:
        return f"action is not one of {', '.join(ACTIONS)}"
    try:
        parse_object(obj)
    except ValueError as e:
        return str(e)
    return None


def rule_problem(rule: Sequence[str]) -> str | None:
    """Why a policy line is invalid, or None: the rule every loaded and written line obeys."""
    if len(rule) != 5 or not all(isinstance(v, str) for v in rule):
        return "a line has five fields: sub, grant, obj, act, eft"
    subject, grant, obj, action, effect = rule
    if effect not in EFFECTS:
        return f"eft is not one of {', '.join(EFFECTS)}"
    if obj == EVERYTHING:
        if effect != "deny":
            return 'object "*" is only for deny lines (suspension)'
        obj = dataset_object("x")  # stands in; the other fields are still checked
    elif obj.startswith("dataset:") and obj.endswith("/column:" + ALL_COLUMNS):
        obj = obj[: -len(ALL_COLUMNS)] + "x"
    return request_problem(subject, grant, obj, action)


def is_suspension(rule: Rule) -> bool:
    """Whether ``rule`` is a suspension line: deny, object "*"."""
    return rule.object == EVERYTHING and rule.effect == "deny"
