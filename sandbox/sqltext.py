"""SQL text on the trusted side: the one way a name or a type enters it.

Every statement the trusted side runs (DuckDB over providers' data, views,
dummy data, checks, entity maps, encrypted products' tables) is a constant
text with bound parameters (``$source``, ``$dst``, values), into which only
the functions of this module put names and types:

- :func:`ident` quotes an identifier (a column or a CTE name) as a DuckDB
  double-quoted identifier, doubling embedded quotes; it refuses what no
  identifier may hold (NUL, control characters, an empty or overlong name),
  so a name that slipped past the intake checks still cannot end the quote.
- :func:`sql_type` passes a column type only when it is one of the scalar
  types this product stores (``BIGINT``, ``DECIMAL(18,2)``, ``VARCHAR``...),
  never a nested type whose text carries field names.
- :func:`sql_number` and :func:`sql_string` write the few constants of the
  trusted side's own (a policy's band edges and their labels) as literals.
- Paths and values are never pasted: they are bound parameters.

Names are data: they come from providers' files, policies and jobs, and
``tests/security/test_names.py`` walks the trusted code and fails on any SQL
text formatted from anything else.
"""

from __future__ import annotations

import math
import re

from sandbox.errors import SqlNameError

# Longer than any name the intake accepts (sandbox.intake.names.MAX_NAME_CHARS), so a
# name stored before the intake rules existed still quotes.
MAX_IDENT_CHARS = 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# The scalar types the registry stores (DuckDB's names, as DESCRIBE prints them).
_SCALAR = re.compile(
    r"(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT"
    r"|UHUGEINT|FLOAT|DOUBLE|VARCHAR|BLOB|DATE|TIME|TIMESTAMP|TIMESTAMP WITH TIME ZONE"
    r"|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|INTERVAL|UUID|DECIMAL\([0-9]{1,2},\s?[0-9]{1,2}\))"
)


def ident(name: str) -> str:
    """``name`` as a quoted DuckDB identifier; SqlNameError when no identifier may hold it."""
    if not isinstance(name, str) or not name or len(name) > MAX_IDENT_CHARS:
        raise SqlNameError("a name in SQL must be 1 to 1,024 characters of text")
    if _CONTROL.search(name):
        raise SqlNameError("a name in SQL cannot hold control characters")
    return '"' + name.replace('"', '""') + '"'


def sql_type(type_name: str) -> str:
    """``type_name`` when it is a scalar type the registry stores; SqlNameError otherwise."""
    normal = " ".join(type_name.upper().split()) if isinstance(type_name, str) else ""
    if not _SCALAR.fullmatch(normal):
        raise SqlNameError("a column type in SQL must be one of the stored scalar types")
    return normal


def sql_number(value: float | int) -> str:
    """A finite number as an SQL literal (a policy's band edge, a width); SqlNameError else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SqlNameError("a number in SQL must be an int or a float")
    if isinstance(value, float) and not math.isfinite(value):
        raise SqlNameError("a number in SQL must be finite")
    return repr(value) if isinstance(value, int) else repr(float(value))


def sql_string(text: str) -> str:
    """A constant of the trusted side's own as an SQL string literal (a band's label)."""
    if not isinstance(text, str) or _CONTROL.search(text):
        raise SqlNameError("a string in SQL must be text without control characters")
    return "'" + text.replace("'", "''") + "'"


def is_scalar_type(type_name: str) -> bool:
    """Rule: a stored column has one of the scalar types :func:`sql_type` passes."""
    try:
        sql_type(type_name)
    except SqlNameError:
        return False
    return True
