"""Output specifications: what a Python job asks the trusted side to compute.

Stage: both sides. In the container the SDK (``sandbox/container/sdk/publish.py``)
validates a specification before writing its manifest entry; on the trusted
side the pipeline parses the same entries again with ``parse_spec`` and the
model fitter (``sandbox/container/modelfit.py``) re-checks the formula. A job's own
numbers are never used for a specification: the trusted side recomputes it.

Two kinds of specification, each one manifest entry and no file::

    {"file": "by_district.csv", "kind": "query", "sql": "...", "description": "..."}
    {"file": "income.json", "kind": "glm", "sql": "...", "formula": "...",
     "family": "gaussian", "description": "..."}

Invariants:

- every published name, specification or file, matches ``NAME_PATTERN``;
  query names end in ``.csv``, model names in ``.json``;
- a formula is read by a strict allowlist grammar (``check_formula``), never
  evaluated: only plain column names, ``C()``, ``np.log()``, ``np.log1p()``,
  ``np.sqrt()``, ``I(x ** 2)``, interactions (``:``, ``*``) and the intercept
  switches (``- 1``, ``+ 0``). The fitter passes on the canonical text this
  module rebuilds, not the analyst's;
- error messages name the rule that failed, never the text that failed it.

Standard library only: this module is imported in the container and on the
trusted side.
"""

from __future__ import annotations

import itertools
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}\.(csv|parquet|json|png|txt)")
VARIABLE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
FAMILIES = ("gaussian", "binomial", "poisson", "gamma")
SQL_MAX_BYTES = 64 * 1024
DESCRIPTION_MAX_CHARS = 4000
FORMULA_MAX_CHARS = 1000
MAX_TERMS = 64
MAX_FACTORS_PER_TERM = 4
TRANSFORMS = ("log", "log1p", "sqrt")
# Names the formula machinery gives a meaning of its own.
RESERVED_NAMES = frozenset({"np", "C", "I", "Q"})

QUERY_KIND = "query"
MODEL_KIND = "glm"
SPEC_KINDS = (QUERY_KIND, MODEL_KIND)
_QUERY_KEYS = frozenset({"file", "kind", "sql", "description"})
_MODEL_KEYS = frozenset({"file", "kind", "sql", "formula", "family", "description"})


class SpecError(ValueError):
    """A specification or formula outside the allowed forms (the message quotes none of it)."""


# -- formulas --------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    """One factor of a term: a column, possibly wrapped in one allowed function."""

    variable: str
    wrapper: str = ""  # "", "C", "np.log", "np.log1p", "np.sqrt" or "square"

    @property
    def text(self) -> str:
        if not self.wrapper:
            return self.variable
        if self.wrapper == "square":
            return f"I({self.variable} ** 2)"
        return f"{self.wrapper}({self.variable})"

    @property
    def categorical(self) -> bool:
        return self.wrapper == "C"


Term = tuple[Factor, ...]


@dataclass(frozen=True)
class Formula:
    """A checked formula: its response, its terms and the canonical text to fit."""

    response: Factor
    terms: tuple[Term, ...]
    intercept: bool

    @property
    def variables(self) -> tuple[str, ...]:
        """Every column the formula reads, response first, each once."""
        names = [self.response.variable]
        names += [f.variable for term in self.terms for f in term]
        return tuple(dict.fromkeys(names))

    @property
    def text(self) -> str:
        parts = [":".join(f.text for f in term) for term in self.terms]
        right = " + ".join(parts) if parts else "1"
        if not self.intercept:
            right += " - 1"
        return f"{self.response.text} ~ {right}"


_SPACE = " \t\r\n"
_TOKEN = re.compile(
    r"[ \t\r\n]*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>[0-9]+)|(?P<op>\*\*|[~+\-*:().]))"
)


def _tokens(formula: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(formula):
        if not formula[position:].strip(_SPACE):
            break
        match = _TOKEN.match(formula, position)
        if match is None:
            raise SpecError("the formula holds a character outside the formula grammar")
        tokens.append(match.group().strip(_SPACE))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the allowlist grammar; builds terms, evaluates nothing."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise SpecError("the formula does not follow the grammar 'response ~ term + term'")
        self.at += 1
        return token

    def variable(self) -> str:
        name = self.take()
        if (
            not VARIABLE_PATTERN.fullmatch(name)
            or keyword.iskeyword(name)
            or name in RESERVED_NAMES
            or (name.startswith("__") and name.endswith("__"))
        ):
            raise SpecError(
                "a formula variable must be a column name of 1 to 64 letters, digits and '_' "
                "(not a keyword, a dunder name, np, C, I or Q)"
            )
        return name

    def factor(self) -> Factor:
        current = self.peek()
        following = self.tokens[self.at + 1] if self.at + 1 < len(self.tokens) else None
        if current == "np" and following == ".":
            self.take("np")
            self.take(".")
            function = self.take()
            if function not in TRANSFORMS:
                raise SpecError("only np.log, np.log1p and np.sqrt may be used in a formula")
            return self._wrapped(f"np.{function}")
        if current == "C" and following == "(":
            self.take("C")
            return self._wrapped("C")
        if current == "I" and following == "(":
            self.take("I")
            self.take("(")
            name = self.variable()
            self.take("**")
            self.take("2")
            self.take(")")
            return Factor(name, "square")
        if following == "(":
            raise SpecError("only C(), I(x ** 2), np.log, np.log1p and np.sqrt may be called")
        return Factor(self.variable())

    def _wrapped(self, wrapper: str) -> Factor:
        self.take("(")
        name = self.variable()
        self.take(")")
        return Factor(name, wrapper)

    def interaction(self) -> Term:
        factors = [self.factor()]
        while self.peek() == ":":
            self.take(":")
            factors.append(self.factor())
        return tuple(dict.fromkeys(factors))

    def product(self) -> list[Term]:
        """``a * b * c``: every non-empty combination of the operands, lower orders first."""
        operands = [self.interaction()]
        while self.peek() == "*":
            self.take("*")
            operands.append(self.interaction())
            if len(operands) > MAX_FACTORS_PER_TERM:
                raise SpecError(f"a term may interact at most {MAX_FACTORS_PER_TERM} factors")
        terms: list[Term] = []
        for size in range(1, len(operands) + 1):
            for chosen in itertools.combinations(operands, size):
                terms.append(tuple(dict.fromkeys(f for term in chosen for f in term)))
        return terms

    def right_side(self) -> tuple[list[Term], bool]:
        terms: list[Term] = []
        intercept = True
        sign = "+"
        while True:
            if self.peek() in ("0", "1"):
                switch = sign + self.take()
                if switch == "-0":
                    raise SpecError("'- 0' is not an allowed intercept switch; use '- 1'")
                if switch in ("-1", "+0"):
                    intercept = False
            elif sign == "-":
                raise SpecError("only '- 1' may be subtracted in a formula")
            else:
                terms.extend(self.product())
            joiner = self.peek()
            if joiner is None:
                return terms, intercept
            if joiner not in ("+", "-"):
                raise SpecError("terms must be joined with '+'")
            sign = self.take()


def check_formula(formula: str) -> Formula:
    """Read ``formula`` by the allowlist grammar; raise ``SpecError`` outside it."""
    if not isinstance(formula, str):
        raise SpecError("the formula must be a string")
    if len(formula) > FORMULA_MAX_CHARS:
        raise SpecError(f"the formula is longer than {FORMULA_MAX_CHARS} characters")
    parser = _Parser(_tokens(formula))
    response = parser.factor()
    if response.categorical:
        raise SpecError("the response cannot be C(); use a 0/1 column for binomial models")
    parser.take("~")
    terms, intercept = parser.right_side()
    terms = list(dict.fromkeys(tuple(sorted(t, key=_factor_order)) for t in terms))
    if any(len(t) > MAX_FACTORS_PER_TERM for t in terms):
        raise SpecError(f"a term may interact at most {MAX_FACTORS_PER_TERM} factors")
    if len(terms) > MAX_TERMS:
        raise SpecError(f"a formula may have at most {MAX_TERMS} terms")
    if not terms and not intercept:
        raise SpecError("the formula has no terms and no intercept")
    if any(f.variable == response.variable for t in terms for f in t):
        raise SpecError("the response variable also appears among the terms")
    return Formula(response, tuple(terms), intercept)


def _factor_order(factor: Factor) -> tuple[str, str]:
    """An interaction's factors in a fixed order, so ``a:b`` and ``b:a`` are one term."""
    return (factor.variable, factor.wrapper)


# -- manifest entries ------------------------------------------------------


@dataclass(frozen=True)
class QuerySpec:
    """A table the trusted side computes through the SQL-product path."""

    file: str
    sql: str
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A GLM the trusted side fits from a query's rows in a fresh sandbox."""

    file: str
    sql: str
    formula: str  # canonical text (``Formula.text``)
    family: str = "gaussian"
    description: str = ""


def check_name(name: object, extension: str) -> str:
    """A published name: ``NAME_PATTERN`` and the given extension (``.csv`` ...)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise SpecError(
            "an output name is 1 to 48 lower-case letters, digits, '_' or '-' (starting with "
            "a letter or digit) and one of .csv, .parquet, .json, .png, .txt"
        )
    if not name.endswith(extension):
        raise SpecError(f"this output's name must end with {extension}")
    return name


def check_sql(sql: object) -> str:
    """The SQL text of a specification (checked by the SQL-product path later)."""
    if not isinstance(sql, str) or not sql.strip():
        raise SpecError("the SQL must be a non-empty string")
    if len(sql.encode("utf-8", errors="replace")) > SQL_MAX_BYTES:
        raise SpecError(f"the SQL is longer than {SQL_MAX_BYTES} bytes")
    return sql


def check_description(description: object) -> str:
    if not isinstance(description, str):
        raise SpecError("the description must be a string")
    if len(description) > DESCRIPTION_MAX_CHARS:
        raise SpecError(f"the description is longer than {DESCRIPTION_MAX_CHARS} characters")
    return description


def check_family(family: object) -> str:
    if not isinstance(family, str) or family not in FAMILIES:
        raise SpecError(f"the family must be one of {', '.join(FAMILIES)}")
    return family


def query_spec(name: object, sql: object, description: object = "") -> QuerySpec:
    return QuerySpec(check_name(name, ".csv"), check_sql(sql), check_description(description))


def model_spec(
    name: object,
    formula: object,
    sql: object,
    family: object = "gaussian",
    description: object = "",
) -> ModelSpec:
    if not isinstance(formula, str):
        raise SpecError("the formula must be a string")
    return ModelSpec(
        check_name(name, ".json"),
        check_sql(sql),
        check_formula(formula).text,
        check_family(family),
        check_description(description),
    )


def spec_entry(spec: QuerySpec | ModelSpec) -> dict[str, str]:
    """The manifest entry of a specification (``parse_spec`` reads it back)."""
    if isinstance(spec, QuerySpec):
        return {
            "file": spec.file,
            "kind": QUERY_KIND,
            "sql": spec.sql,
            "description": spec.description,
        }
    return {
        "file": spec.file,
        "kind": MODEL_KIND,
        "sql": spec.sql,
        "formula": spec.formula,
        "family": spec.family,
        "description": spec.description,
    }


def parse_spec(entry: Mapping[str, object]) -> QuerySpec | ModelSpec | None:
    """The specification in a manifest entry; None when the entry is not a spec kind.

    Strict: unknown or missing keys, wrong types, bad names, families or
    formulas raise ``SpecError``.
    """
    if not isinstance(entry, Mapping):
        raise SpecError("a manifest entry must be an object")
    kind = entry.get("kind")
    if kind not in SPEC_KINDS:
        return None
    keys = _QUERY_KEYS if kind == QUERY_KIND else _MODEL_KEYS
    if set(entry) != keys:
        raise SpecError(f"a {kind} specification has exactly the keys {', '.join(sorted(keys))}")
    if kind == QUERY_KIND:
        return query_spec(entry["file"], entry["sql"], entry["description"])
    return model_spec(
        entry["file"], entry["formula"], entry["sql"], entry["family"], entry["description"]
    )
