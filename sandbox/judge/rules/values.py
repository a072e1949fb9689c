"""One normal form for values compared between outputs and views.

An output read back from CSV holds strings and numbers; a view holds dates,
doubles and strings. Both sides go through ``norm`` before they are
compared: whole numbers as integers, other numbers rounded to 6 places,
dates as ISO text, everything else as stripped text.
"""

from __future__ import annotations

import datetime
import math
from typing import Any


def norm(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(round(value, 6))
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return norm(number) if math.isfinite(number) and text[:1] in "+-.0123456789" else text


def cents(value: Any) -> float | None:
    """A number rounded to cents, or None when ``value`` is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 2) if math.isfinite(number) else None


def has_at_most_cents(value: Any) -> bool:
    """Whether a number has no digits beyond the second decimal place."""
    number = cents(value)
    if number is None:
        return False
    return abs(float(value) - number) < 1e-9
