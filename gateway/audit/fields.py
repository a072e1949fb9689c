"""What an audit event may hold: names, dataset lists and a plain-JSON detail.

Checked before anything is written (``gateway.audit.chain.append``), so that
what the chain hashes is exactly what reads back from either backend: JSON
objects with string keys and str, int, finite float, bool, None, list or
object values, no NUL characters (PostgreSQL text cannot hold them), no
NaN or infinities (not JSON), nested at most 16 deep and at most 64 KiB in
canonical form. The size cap is a reminder as much as a limit: an event
records ids, hashes, counts, rule ids, column names and reasons, never data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.errors import AuditError

MAX_NAME = 200  # characters in actor, grant_id and each dataset name
MAX_DETAIL_BYTES = 64 * 1024  # canonical JSON of detail: an event, not a data dump
MAX_DEPTH = 16


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
    """``detail`` checked to be plain JSON, as it will read back from the store."""
    if not isinstance(detail, Mapping):
        raise AuditError("detail must be a JSON object (a mapping)")
    check_plain(detail, "detail", 0)
    encoded = canonical_json(detail)
    if len(encoded) > MAX_DETAIL_BYTES:
        raise AuditError(f"detail is {len(encoded)} bytes; at most {MAX_DETAIL_BYTES} allowed")
    plain: dict[str, Any] = json.loads(encoded)
    return plain


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
