"""What an audit event may hold: names, dataset lists and a plain-JSON detail.

Checked before anything is written (``gateway.audit.chain.append``), so that
what the chain hashes is exactly what reads back from either backend: JSON
objects with string keys and str, int, finite float, bool, None, list or
object values, no NUL characters (PostgreSQL text cannot hold them), no
NaN or infinities (not JSON), nested at most 16 deep and at most 64 KiB in
canonical form. The size cap is a reminder as much as a limit: an event
records ids, hashes, counts, rule ids, column names and reasons, never data.

A detail over the cap is summarised, never refused (:func:`summarise`): long
lists and long strings give way to their length and the SHA-256 of their
canonical JSON, and the detail says ``"summarised": true``. What is stored
is what the chain hashes, so a summarised event verifies like any other; the
hashes let anyone holding the full list (a job's ``report.json``) show it is
the one the event stood for.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.errors import AuditError

MAX_NAME = 200  # characters in actor, grant_id and each dataset name
MAX_DETAIL_BYTES = 64 * 1024  # canonical JSON of detail: an event, not a data dump
MAX_DEPTH = 16
SUMMARY_ITEMS = 8  # a list longer than this is summarised first
SUMMARY_CHARS = 1024  # and a string longer than this
MIN_SUMMARY_CHARS = 128  # strings shorter than this are never summarised


def canonical_json(value: Any) -> bytes:
    """The canonical JSON encoding the chain hashes (see the module docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def name(value: object, what: str) -> str:
    """``value`` if it is a usable name (actor, grant id, dataset), else :class:`AuditError`."""
    if not isinstance(value, str) or not value.strip():
        raise AuditError(f"{what} must be a non-empty string")
    if len(value) > MAX_NAME or "\x00" in value:
        raise AuditError(f"{what} must be at most {MAX_NAME} characters, without NUL")
    return value


def dataset_names(datasets: Iterable[str]) -> tuple[str, ...]:
    """The dataset names as stored: checked, unique and sorted."""
    if isinstance(datasets, str | bytes):
        raise AuditError("datasets must be a collection of names, not one string")
    return tuple(sorted({name(d, "dataset name") for d in datasets}))


def plain_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` checked to be plain JSON, as it will read back from the store;
    summarised (:func:`summarise`) when its canonical form is over ``MAX_DETAIL_BYTES``."""
    if not isinstance(detail, Mapping):
        raise AuditError("detail must be a JSON object (a mapping)")
    check_plain(detail, "detail", 0)
    encoded = canonical_json(detail)
    if len(encoded) > MAX_DETAIL_BYTES:
        encoded = canonical_json(summarise(json.loads(encoded)))
    plain: dict[str, Any] = json.loads(encoded)
    return plain


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _stand_in(value: Any) -> dict[str, Any]:
    """What stands for a summarised value: its size and the hash of its canonical JSON."""
    if isinstance(value, str):
        return {"chars": len(value), "sha256": digest(value)}
    if isinstance(value, dict):
        return {"keys": len(value), "sha256": digest(value)}
    return {"count": len(value), "sha256": digest(value)}


def _is_stand_in(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) not in _STAND_IN_KEYS:
        return False
    return isinstance(value["sha256"], str) and len(value["sha256"]) == 64


_STAND_IN_KEYS = ({"count", "sha256"}, {"chars", "sha256"}, {"keys", "sha256"})


def _shorten(value: Any, items: int, chars: int) -> Any:
    """``value`` with every list over ``items`` items and string over ``chars``
    characters, at any depth, replaced by its stand-in."""
    if isinstance(value, str):
        return _stand_in(value) if len(value) > chars else value
    if isinstance(value, list):
        if len(value) > items:
            return _stand_in(value)
        return [_shorten(v, items, chars) for v in value]
    if isinstance(value, dict) and not _is_stand_in(value):
        return {k: _shorten(v, items, chars) for k, v in value.items()}
    return value


def _fits(detail: Mapping[str, Any]) -> bool:
    return len(canonical_json(detail)) <= MAX_DETAIL_BYTES


def summarise(detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` (plain JSON) made to fit ``MAX_DETAIL_BYTES``, marked ``"summarised": true``.

    Step by step, until it fits: lists longer than ``SUMMARY_ITEMS`` and
    strings longer than ``SUMMARY_CHARS`` become their stand-ins (``{"count":
    n, "sha256": ...}``, ``{"chars": n, "sha256": ...}``), then shorter ones
    (lists down to none, strings down to ``MIN_SUMMARY_CHARS``: a stand-in is
    not much shorter), then the largest top-level values whole (objects as
    ``{"keys": n, "sha256": ...}``); a detail with too many keys for even that
    becomes one stand-in of itself.
    """
    out: dict[str, Any] = dict(detail)
    items, chars = SUMMARY_ITEMS, SUMMARY_CHARS
    while True:
        out = {k: _shorten(v, items, chars) for k, v in out.items()} | {"summarised": True}
        if _fits(out) or items == 0:
            break
        items, chars = items // 2, max(chars // 4, MIN_SUMMARY_CHARS)
    by_size = sorted(out, key=lambda k: len(canonical_json(out[k])), reverse=True)
    for key in by_size:
        if _fits(out):
            return out
        if key != "summarised" and isinstance(out[key], list | dict):
            out[key] = _stand_in(out[key])
    if _fits(out):
        return out
    return {"summarised": True, "whole": _stand_in(dict(detail))}


def check_plain(value: object, where: str, depth: int) -> None:
    """Raise :class:`AuditError` naming the first part of ``value`` (at ``where``)
    that is not plain JSON; messages name keys and types, never values."""
    if depth > MAX_DEPTH:
        raise AuditError(f"{where} nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditError(f"{where} is not a finite number")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise AuditError(f"{where} contains NUL")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise AuditError(f"{where} is not valid Unicode text") from e
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError(f"{where} has a key that is not a string")
            check_plain(key, f"{where} key", depth + 1)
            check_plain(item, f"{where}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]", depth + 1)
        return
    raise AuditError(f"{where} is a {type(value).__name__}, not plain JSON")
