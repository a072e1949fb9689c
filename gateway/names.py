"""Names as people read them: when two names count as the same.

Stage: before data flow step 1 (grants and data requests). "One scenario, one
authorization" must not be bypassed by a name that only *looks* different:
``Elderly care``, ``elderly care``, ``\\u0435lderly care`` (a Cyrillic e),
``\\uff45\\uff4cderly care`` (full-width letters), ``EIderly care`` (a capital I
for the l) or ``elderly care\\u200b`` (a zero-width space) are one scenario.

A name's *readings* (:func:`name_keys`) are for comparison only; names are
stored and shown as written. Each reading is repeated until nothing changes
(a few rounds at most) and is built from:

- cleaning: NFKC (full-width letters, ligatures, circled digits, the
  ideographic space) and dropping what renders as nothing (format
  characters: zero-width spaces and joiners, bidirectional controls, the
  soft hyphen; control characters, variation selectors, the combining
  grapheme joiner, Hangul fillers);
- case folding;
- the confusable skeleton of Unicode TS #39: NFD, every character replaced by
  its prototype in Unicode's ``confusables.txt`` (as shipped by the
  ``confusable-homoglyphs`` package: Cyrillic ``\\u0430`` -> ``a``, ``0`` ->
  ``O``, ``I`` -> ``l``, ``m`` -> ``rn``), NFC, whitespace runs collapsed to
  one space.

Two readings, because case and shape disagree: folded first, ``I`` is ``i``
(``Elderly``/``ELDERLY`` agree); shaped first, ``I`` is ``l``
(``EIderly``/``Elderly`` agree). Two names are the same when they share a
reading (:func:`same_name`).

The package's data holds both directions of each mapping (a source lists its
prototype; a prototype lists its sources): a character listing exactly one
other character is a source of that prototype. Where two characters list
only each other, the data cannot say which is the prototype; both are mapped
to the smaller code point, which is all a comparison needs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

from confusable_homoglyphs import confusables  # type: ignore[import-untyped]

_LRM = "\u200e"  # the package wraps right-to-left characters in marks for display
_SPACES = re.compile(r"\s+")
_MAX_ROUNDS = 8
_INVISIBLE = (
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0}  # CGJ, fillers, Khmer
    | set(range(0x180B, 0x1810))  # Mongolian variation selectors and vowel separator
    | set(range(0xFE00, 0xFE10))  # variation selectors
    | set(range(0xE0100, 0xE01F0))  # variation selectors supplement
)


# Module-level on purpose: the table is a pure function of the installed confusables
# data, the same for every app in the process; nothing is registered in it.
@cache
def prototypes() -> dict[str, str]:
    """Character -> its confusable prototype (one character or a short sequence)."""
    data: dict[str, list[dict[str, str]]] = confusables.confusables_data
    listed = {k.replace(_LRM, ""): [e["c"].replace(_LRM, "") for e in v] for k, v in data.items()}
    found: dict[str, str] = {}
    for char, others in listed.items():
        if len(char) != 1 or len(others) != 1 or others[0] == char:
            continue  # a prototype (it lists its sources), or a sequence
        target = others[0]
        back = listed.get(target, [])
        if len(target) == 1 and back == [char]:  # two listing only each other
            target = min(char, target)
        if target != char:
            found[char] = target
    return found


def _visible(char: str) -> bool:
    return unicodedata.category(char) not in ("Cf", "Cc") and ord(char) not in _INVISIBLE


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.replace(_LRM, ""))
    return "".join(c for c in text if _visible(c) or c.isspace())


def _skeleton(text: str) -> str:
    table = prototypes()
    text = "".join(table.get(c, c) for c in unicodedata.normalize("NFD", text))
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _fixpoint(step: Callable[[str], str], text: str) -> str:
    for _ in range(_MAX_ROUNDS):
        following = step(text)
        if following == text:
            break
        text = following
    return text


def name_keys(name: str) -> frozenset[str]:
    """The readings of ``name`` (see the module docstring): folded then reduced to its
    skeleton, and reduced to its skeleton then folded."""
    folded_first = _fixpoint(lambda t: _skeleton(_clean(t).casefold()), name)
    shape_first = _fixpoint(lambda t: _skeleton(_clean(t)).casefold(), name)
    return frozenset({folded_first, shape_first})


def same_name(a: str, b: str) -> bool:
    """Rule: two names are the same when they read the same (a reading in common)."""
    return not name_keys(a).isdisjoint(name_keys(b))
