"""What an issue or an answer may say: plain text about the data, never the data.

The audit log and notices outlive grants and go to every party; an issue is
read by the provider and the administrators. So its words are bounded and
plain: a title on one line (at most :data:`TITLE_MAX` characters), a text of
at most :data:`TEXT_MAX` characters, no control characters but newlines and
tabs, and no run of :data:`DIGIT_RUN` or more digits (an identity card, a
phone, an account or a credit code number: a value quoted from the data).
Columns are named, never their values.
"""

from __future__ import annotations

import re

from gateway.feedback.errors import FeedbackError

TITLE_MAX = 120
TEXT_MAX = 2000
DIGIT_RUN = 8
_VALUE = re.compile(rf"\d{{{DIGIT_RUN},}}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def checked(what: str, value: str, *, limit: int, one_line: bool = False) -> str:
    """``value`` stripped, if it obeys the rules above; else a FeedbackError naming ``what``."""
    value = value.strip()
    if not value:
        raise FeedbackError(f"the {what} is empty")
    if len(value) > limit:
        raise FeedbackError(f"the {what} is longer than {limit} characters")
    if _CONTROL.search(value) or (one_line and ("\n" in value or "\t" in value)):
        raise FeedbackError(f"the {what} must be plain text" + (" on one line" if one_line else ""))
    if _VALUE.search(value):
        raise FeedbackError(
            f"the {what} holds a run of {DIGIT_RUN} or more digits: describe the problem by "
            "column and kind, never by quoting values from the data"
        )
    return value
