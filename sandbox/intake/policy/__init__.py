"""Exposure policies: what of a dataset may be seen, and how (written by its provider).

One YAML file per dataset classifies every column (class, security level,
visibility, optional generalisation and value domain) and sets the
dataset's release rules (``k``, dominance, small-cell action, auto-release,
output caps, row filters). See ``policies/exposure/`` for examples.

In the order a policy passes them: ``parse`` reads the YAML into ``model``'s
``ExposurePolicy`` and checks it against the dataset's columns; ``store``
keeps it as a version named by its content. Views, checks and rules then
read it from the store.

Invariants:
- Deny by default: every column of the dataset must be classified, and a
  policy naming a column the dataset does not have is rejected.
- An identifier is never ``plain`` without an explicit, reasoned override.
- A policy is applied only when every column's visibility is one its security
  level allows in the grading table (``grading``, ``policies/grading.yaml``).
- A rejected policy stores nothing; every problem is reported at once,
  naming the field and its line in the YAML.
- Policies are versioned by content; a stored version never changes.
"""

from sandbox.intake.policy.grading import (
    Grade,
    GradingTable,
    default_grading,
    level_name,
    load_grading,
)
from sandbox.intake.policy.model import (
    DOMINANCE_DEFAULTS,
    Bands,
    Categories,
    ColumnClass,
    ColumnPolicy,
    DateRange,
    Domain,
    Dominance,
    ExposurePolicy,
    Format,
    Generalisation,
    ModelRules,
    NumberRange,
    OutputCaps,
    Prefix,
    RowFilter,
    SecurityLevel,
    Truncate,
    Visibility,
    Width,
)
from sandbox.intake.policy.parse import (
    check_against_schema,
    check_grading,
    parse_policy,
    policy_version,
)
from sandbox.intake.policy.store import PolicyStore, PolicyVersion

__all__ = [
    "DOMINANCE_DEFAULTS",
    "Bands",
    "Categories",
    "ColumnClass",
    "ColumnPolicy",
    "DateRange",
    "Domain",
    "Dominance",
    "ExposurePolicy",
    "Format",
    "Generalisation",
    "Grade",
    "GradingTable",
    "ModelRules",
    "NumberRange",
    "OutputCaps",
    "PolicyStore",
    "PolicyVersion",
    "Prefix",
    "RowFilter",
    "SecurityLevel",
    "Truncate",
    "Visibility",
    "Width",
    "check_against_schema",
    "check_grading",
    "default_grading",
    "level_name",
    "load_grading",
    "parse_policy",
    "policy_version",
]
