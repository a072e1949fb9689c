"""Stage 0 of the data flow: the names a provider's file brings, checked once at intake.

A column name travels further than any value: into the exposure policy, the
grant's scope lines (Casbin objects), the views, the dummy data, the SQL the
trusted side runs, the catalogue, the console and the audit log. So it is
checked once, when the file is registered, and only names every later stage
can carry are stored:

- letters (any script: 收入 too), ASCII digits and ``_``, nothing
  else: no quote, space, slash, star, dot, parenthesis, control, format or
  bidirectional mark;
- 1 to :data:`MAX_NAME_CHARS` characters, in Unicode normal form NFC;
- unique after folding (NFKC, then case folding: DuckDB compares identifiers
  without case, and a full-width ``income`` is ``income`` to a reader);
- never starting with the prefix the trusted side's SQL rewrite reserves.

A file whose names break a rule is refused with every problem and a safe name
to use instead (:func:`check_columns`); or, when the provider asks for it,
stored under those safe names with the mapping recorded (:func:`safe_names`).
The SQL the trusted side builds still quotes every name (``sandbox.sqltext``):
the rules here keep names usable, the quoting keeps them harmless.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

MAX_NAME_CHARS = 64
RESERVED_PREFIX = "__dsr_"  # the evidence rewrite's own names (sandbox.precheck.sql.evidence)


@dataclass(frozen=True)
class NameProblem:
    """One refused name: where it is, why, and a name that would be accepted there."""

    position: int  # 1-based column position in the file
    name: str  # the name as the file has it (the provider's own data)
    reason: str
    proposed: str

    def to_json(self) -> dict[str, object]:
        # The name as text any JSON encoder can carry back: undecodable parts
        # escaped, NUL escaped, and at most 200 characters.
        shown = self.name.encode("utf-8", "backslashreplace").decode("utf-8")
        shown = shown.replace("\x00", "\\x00")
        return {
            "position": self.position,
            "column": shown if len(shown) <= 200 else shown[:200] + "…",
            "reason": self.reason,
            "proposed": self.proposed,
        }


def fold(name: str) -> str:
    """The form two names are compared in: NFKC, then case folding."""
    return unicodedata.normalize("NFKC", name).casefold()


def _allowed(ch: str) -> bool:
    return ch == "_" or "0" <= ch <= "9" or unicodedata.category(ch).startswith("L")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a column name, or None when it can (uniqueness aside)."""
    if not isinstance(name, str) or not name:
        return "the name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the name is longer than {MAX_NAME_CHARS} characters"
    if unicodedata.normalize("NFC", name) != name:
        return "the name is not in Unicode normal form NFC"
    bad = next((ch for ch in name if not _allowed(ch)), None)
    if bad is not None:
        what = unicodedata.name(bad, "").lower() or f"code point U+{ord(bad):04X}"
        return f"only letters, digits and _ are allowed (found {what}, U+{ord(bad):04X})"
    if fold(name).startswith(RESERVED_PREFIX):
        return f"names starting with {RESERVED_PREFIX} are reserved"
    return None


def is_valid_name(name: str) -> bool:
    """Rule: a column name is 1-64 NFC characters, each a letter, an ASCII digit or _."""
    return name_problem(name) is None


def _safe(name: str, position: int) -> str:
    text = unicodedata.normalize("NFKC", name if isinstance(name, str) else "")
    out, gap = [], False
    for ch in text:
        if _allowed(ch):
            out.append(ch)
            gap = False
        elif not gap and out:
            out.append("_")
            gap = True
    safe = unicodedata.normalize("NFC", "".join(out).strip("_"))[:MAX_NAME_CHARS].rstrip("_")
    if not safe or fold(safe).startswith(RESERVED_PREFIX):
        safe = f"column_{position}" if not safe else f"c_{safe}"[:MAX_NAME_CHARS]
    return safe


def safe_names(names: Sequence[str]) -> list[str]:
    """A valid, fold-unique name for each of ``names``: the name itself when it is valid
    and its fold unseen so far, else a cleaned form with a numeric suffix if needed."""
    taken: set[str] = set()
    out: list[str] = []
    for i, name in enumerate(names, start=1):
        base = name if is_valid_name(name) else _safe(name, i)
        candidate, n = base, 2
        while fold(candidate) in taken or not is_valid_name(candidate):
            suffix = f"_{n}"
            candidate = base[: MAX_NAME_CHARS - len(suffix)] + suffix
            n += 1
        taken.add(fold(candidate))
        out.append(candidate)
    return out


def check_columns(names: Sequence[str]) -> list[NameProblem]:
    """Every column name that breaks a rule (none: the names can be stored as they are)."""
    proposals = safe_names(names)
    seen: dict[str, int] = {}
    problems: list[NameProblem] = []
    for i, name in enumerate(names, start=1):
        reason = name_problem(name)
        if reason is None:
            first = seen.setdefault(fold(name), i)
            if first != i:
                reason = f"the same name as column {first} once case and width are ignored"
        if reason is not None:
            problems.append(NameProblem(i, name, reason, proposals[i - 1]))
    return problems
