"""The texts an output carries beyond its table, text or model, for the leakage rule.

Every string, key and number of a JSON-like document (``leaves``; duplicate
keys kept, ``read_json``), and what a Parquet file's metadata holds
(``parquet_pieces``): writer name, key-value metadata (JSON and base64 values
decoded too), field names and field metadata at any depth, column paths and
statistics. Pure reading: nothing here knows which texts are identifiers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # splits the strings out of decoded binary
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{8,}={0,2}")

Piece = tuple[str, str]  # (where, text)


def shown(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


FieldPath = tuple[str | int, ...]


class Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs in order, duplicate keys kept."""


def leaves(doc: Any, path: FieldPath) -> Iterator[tuple[FieldPath, bool, str]]:
    """(path, is a key, text) of every string, key and number of a JSON-like document.

    Depth first, without recursion: a document nested thousands deep is read whole.
    """
    stack: list[Iterator[tuple[FieldPath, bool, Any]]] = [iter([(path, False, doc)])]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        where, is_key, value = item
        if is_key:
            yield where, True, value
        elif isinstance(value, Mapping | Pairs):
            pairs = value.items() if isinstance(value, Mapping) else value
            stack.append(_members(where, pairs))
        elif isinstance(value, list | tuple):
            stack.append(_items(where, value))
        elif isinstance(value, str):
            yield where, False, value
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            yield where, False, str(value)
        elif isinstance(value, float):
            yield where, False, str(int(value)) if value.is_integer() else repr(value)


def _items(path: FieldPath, values: Any) -> Iterator[tuple[FieldPath, bool, Any]]:
    for i, value in enumerate(values):
        yield (*path, i), False, value


def _members(path: FieldPath, pairs: Any) -> Iterator[tuple[FieldPath, bool, Any]]:
    for key, value in pairs:
        yield path, True, str(key)
        yield (*path, str(key)), False, value


def read_json(content: bytes) -> Any:
    """The JSON document with every object as its pairs (duplicates kept); None if not JSON."""
    try:
        return json.loads(content.decode("utf-8"), object_pairs_hook=Pairs)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def parquet_pieces(meta: pq.FileMetaData, schema: pa.Schema) -> list[Piece]:
    pieces: list[Piece] = [("the Parquet file's writer name", meta.created_by or "")]
    for i, (key, value) in enumerate((meta.metadata or {}).items()):
        where = f"the Parquet file's key-value metadata (entry {i + 1})"
        pieces += [(where, text) for text in (*bytes_texts(key), *bytes_texts(value))]
    for i, top in enumerate(schema):
        for depth, field in _fields(top):
            if depth:
                pieces.append((f"the name of a field nested in column {i + 1}", field.name))
            for key, value in (field.metadata or {}).items():
                where = f"the field metadata of column {i + 1}"
                pieces += [(where, text) for text in (*bytes_texts(key), *bytes_texts(value))]
    for j in range(meta.num_columns):
        path = meta.schema.column(j).path
        pieces.append((f"the path of Parquet column {j + 1}", path))
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for j in range(group.num_columns):
            chunk = group.column(j)
            where = f"the Parquet statistics of row group {g + 1}, column {j + 1}"
            pieces.append((where, chunk.file_path or ""))
            stats = chunk.statistics
            if stats is not None and stats.has_min_max:
                pieces += [(where, shown(stats.min) or ""), (where, shown(stats.max) or "")]
    return [(where, text) for where, text in pieces if text]


def _fields(field: pa.Field, depth: int = 0) -> Iterator[tuple[int, pa.Field]]:
    yield depth, field
    kind = field.type
    if isinstance(kind, pa.StructType):
        children = [kind.field(i) for i in range(kind.num_fields)]
    elif isinstance(kind, pa.MapType):
        children = [kind.key_field, kind.item_field]
    elif isinstance(kind, pa.ListType | pa.LargeListType | pa.FixedSizeListType):
        children = [kind.value_field]
    else:
        children = []
    for child in children:
        yield from _fields(child, depth + 1)


def bytes_texts(value: bytes) -> list[str]:
    """A metadata value as text, and what it holds when it is JSON or base64 (decoded)."""
    text = value.decode("utf-8", "replace")
    texts = [text] if value.isascii() else [text, value.decode("latin-1")]
    document = read_json(value)
    if isinstance(document, Pairs | list):
        texts += [leaf for _, _, leaf in leaves(document, ())]
    for run in _BASE64.findall(text):
        body = run.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            decoded = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        texts += [p for p in _CONTROL.split(decoded.decode("utf-8", "replace")) if p]
    return texts
