"""Identifier leakage: no identifier of a data subject, nor a reversible encoding of one, leaves.

Rule of stage 5. Everything an output carries is looked up in the
fingerprint index of its datasets and views (``ctx.fingerprints``, see
``sandbox.checks.fingerprints``): every table cell (numbers as written,
whole floats as integers), every column name, the file name, every string,
key and number of the manifest entry and of a model document (term names),
and the lines of a text output. An identifier split into parts is found
too: each table row is scanned as the concatenation of its cells, each
column as pairs of adjacent cells, a text across its lines.

The file's bytes are read as well, whatever its declared kind, so nothing
rides along unseen (``_content``): every key and string of a JSON file at
any depth (duplicate keys included), the text chunks and other ancillary
chunks of a PNG (``sandbox.checks.files.png_texts``), a Parquet file's
key-value metadata (JSON and base64 values decoded too), field names and
field metadata at any depth, writer name and column statistics, and any
other file as text. A PNG or Parquet file whose structure cannot be read
fails: what it carries could not be checked.

Every text is compared in the index's normal form (``normalise``: format
characters such as zero-width spaces dropped, NFKC, lower case), so
full-width letters and invisible characters hide nothing.

Short values (2-5 character names) match a whole cell, or a whole token of
a name, a text line or a manifest string, never as part of a longer word.

Invariants: the verdict is FAIL; messages name places (row, column, line,
field, chunk, metadata entry) and never quote a value, nor a column name or
key that itself holds an identifier; at most ``MAX_FINDINGS`` findings per
file, then one that counts the rest. Without an index the rule only fails
a PNG whose chunks cannot be read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sandbox.checks.files import PNG_SIGNATURE, png_texts
from sandbox.checks.fingerprints import FingerprintIndex, normalise, strip_separators
from sandbox.checks.model import Context, Finding, Output, Verdict

IDENTIFIER_LEAKAGE = "identifier_leakage"
RULES = {
    IDENTIFIER_LEAKAGE: "no identifier of a data subject (resident ID, mobile, credit code, "
    "name, pseudonym), nor its hex, base32, base64, reversed or hashed form, leaves in any "
    "part of an output, its metadata and image text chunks included",
}
MAX_FINDINGS = 20
WHAT = (
    "an identifier of a data subject, or a reversible encoding of one "
    "(hex/base32/base64/reversed/hash)"
)
# Tokens for whole-token matches: split at ASCII punctuation and whitespace, and at
# full-width (CJK) punctuation.
_TOKEN = re.compile(
    r"[\s,.;:|/\\()\[\]{}<>\"'`!?=+*&^%$#@~_\-"
    "\uff0c\u3002\u3001\uff1b\uff1a\uff01\uff1f\uff08\uff09\u3010\u3011"
    "\u300a\u300b\u201c\u201d\u2018\u2019\u2026\u00b7]+"
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # splits the strings out of decoded binary
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{8,}={0,2}")

_PNG_UNREADABLE = "the image's chunks cannot be read in full, so what they carry cannot be checked"

Place = tuple[int | None, str | None, str]  # (row, column, message)
Piece = tuple[str, str]  # (where, text)


def identifier_leakage(output: Output, ctx: Context) -> list[Finding]:
    """No identifier, nor an encoding or hash of one, anywhere in the output."""
    index = ctx.fingerprints
    if index is None or not len(index):
        return _unreadable(output)
    places: list[Place] = []
    if _flagged(index, [output.file])[0]:
        places.append((None, None, f"the file name holds {WHAT}"))
    places += _document(index, output.entry, "the manifest entry")
    if output.table is not None:
        places += _table(index, output.table)
    if output.text is not None:
        places += _text(index, output.text)
    if output.model is not None:
        places += _document(index, output.model, "the model")
    places += _content(index, output)
    unique = list(dict.fromkeys(places))
    findings = [
        Finding(IDENTIFIER_LEAKAGE, Verdict.FAIL, output.file, message, row=row, column=column)
        for row, column, message in unique[:MAX_FINDINGS]
    ]
    if len(unique) > MAX_FINDINGS:
        findings.append(
            Finding(
                IDENTIFIER_LEAKAGE,
                Verdict.FAIL,
                output.file,
                f"{len(unique) - MAX_FINDINGS} more places hold identifiers of data subjects "
                "or encodings of them (not listed)",
            )
        )
    return findings


def _flagged(index: FingerprintIndex, texts: list[str]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Per text: holds a form, or one of its tokens is wholly a short (exact-only) form."""
    lower = normalise(texts, strip=False)
    found = np.zeros(len(texts), dtype=bool)
    found[index.find(lower, np.arange(len(texts) + 1, dtype=np.int64))[:, 0]] = True
    tokens, owner = [], []
    for i, text in enumerate(lower.to_pylist()):
        for token in [text, *_TOKEN.split(text)]:
            if token:
                tokens.append(token)
                owner.append(i)
    if tokens:
        hits = index.exact_hits(strip_separators(pa.array(tokens, pa.large_string())))
        found[np.asarray(owner, dtype=np.int64)[hits]] = True
    return found


def _pieces(index: FingerprintIndex, pieces: list[Piece]) -> list[Place]:
    """One finding per place whose text holds a form (places named by the caller, fixed)."""
    if not pieces:
        return []
    flagged = _flagged(index, [text for _, text in pieces])
    return [
        (None, None, f"{where} holds {WHAT}")
        for (where, _), hit in zip(pieces, flagged, strict=True)
        if hit
    ]


# -- tables -------------------------------------------------------------------------


def cell_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Cells as text the way an output shows them; whole floats as integers, nulls empty."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind = column.type
    if pa.types.is_floating(kind):
        values = column.cast(pa.float64())
        whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), float(2**63)))
        whole = pc.fill_null(whole, False)
        ints = pc.if_else(whole, values, 0.0).cast(pa.int64()).cast(pa.large_string())
        text = pc.if_else(whole, ints, values.cast(pa.large_string()))
    else:
        try:
            text = column.cast(pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            # Lists, structs, bytes that are not UTF-8: as Python would print them.
            text = pa.array([_shown(v) for v in column.to_pylist()], pa.large_string())
    return pc.fill_null(text, "")


def _fractional(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Which cells are numbers with a fractional part."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_floating(column.type):
        return pa.array(np.zeros(len(column), dtype=bool))
    values = column.cast(pa.float64())
    return pc.fill_null(pc.not_equal(pc.floor(values), values), False)


def _shown(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def _table(index: FingerprintIndex, table: pa.Table) -> list[Place]:
    names = [str(n) for n in table.column_names]
    named = _flagged(index, names)
    places: list[Place] = [
        (None, None, f"the name of column {i + 1} holds {WHAT}") for i in np.flatnonzero(named)
    ]
    # A column whose name holds an identifier is named by its position only.
    label = [f"#{i + 1}" if named[i] else name for i, name in enumerate(names)]
    rows, cols = table.num_rows, table.num_columns
    if not rows or not cols:
        return places
    cells = pa.concat_arrays([cell_text(c) for c in table.columns])  # column after column
    lower = normalise(cells, strip=False)
    # A number with a fraction is a measure: scanned on its own, but never joined to its
    # neighbours (a count beside a mean reads as a mobile number about once in 10^5 rows).
    fraction = pa.concat_arrays([_fractional(c) for c in table.columns])
    joinable = pc.if_else(fraction, pa.scalar("~", pa.large_string()), lower)
    if pc.any(fraction).as_py():
        alone = index.find(pc.if_else(fraction, lower, ""), np.arange(0, rows * cols + 1))
        for flat, _, _ in alone.tolist():
            places.append((flat % rows, label[flat // rows], f"the cell holds {WHAT}"))
        lower = joinable
    order = pa.array((np.arange(cols)[None, :] * rows + np.arange(rows)[:, None]).ravel())
    by_row = index.find(lower.take(order), np.arange(0, rows * cols + 1, cols))
    for row, first, last in by_row.tolist():
        if first == last:
            places.append((row, label[first], f"the cell holds {WHAT}"))
        else:
            places.append(
                (
                    row,
                    label[first],
                    f"the row's cells from column {label[first]} to column {label[last]} "
                    f"together hold {WHAT}, split across cells",
                )
            )
    by_column = index.find(lower, np.arange(0, rows * cols + 1, rows), max_parts=2)
    for col, first, last in by_column.tolist():
        if first != last:
            places.append((first, label[col], f"the cell and the one below together hold {WHAT}"))
    for flat in np.flatnonzero(index.exact_hits(strip_separators(lower))).tolist():
        places.append((flat % rows, label[flat // rows], f"the cell holds {WHAT}"))
    return sorted(places, key=lambda p: (p[0] if p[0] is not None else -1, p[2]))


# -- text and documents -------------------------------------------------------------


def _text(index: FingerprintIndex, text: str) -> list[Place]:
    lines = text.splitlines() or [""]
    lower = normalise(pa.array(lines, pa.large_string()), strip=False)
    bounds = np.array([0, len(lines)], dtype=np.int64)
    hits = index.find(lower, bounds)
    places: list[Place] = []
    for _, first, last in hits.tolist():
        where = f"line {first + 1}" if first == last else f"lines {first + 1} to {last + 1}"
        places.append((None, None, f"the text holds {WHAT} on {where}"))
    tokens, owner = [], []
    for i, line in enumerate(lower.to_pylist()):
        for token in _TOKEN.split(line):
            if token:
                tokens.append(token)
                owner.append(i)
    if tokens:
        hits_exact = index.exact_hits(strip_separators(pa.array(tokens, pa.large_string())))
        for line_no in sorted({owner[i] for i in np.flatnonzero(hits_exact)}):
            places.append((None, None, f"the text holds {WHAT} on line {line_no + 1}"))
    return places


FieldPath = tuple[str | int, ...]


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs in order, duplicate keys kept."""


def _leaves(doc: Any, path: FieldPath) -> Iterator[tuple[FieldPath, bool, str]]:
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
        elif isinstance(value, Mapping | _Pairs):
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


def _document(index: FingerprintIndex, doc: Mapping[str, Any], name: str) -> list[Place]:
    leaves = list(_leaves(doc, ()))
    if not leaves:
        return []
    flagged = _flagged(index, [text for _, _, text in leaves])
    pairs = list(zip(leaves, flagged, strict=True))
    bad_keys = {text for (_, is_key, text), hit in pairs if is_key and hit}
    places: list[Place] = []
    for (path, is_key, _), hit in pairs:
        if not hit:
            continue
        where = "".join(
            f"[{p}]" if isinstance(p, int) else f".{'<key>' if p in bad_keys else p}" for p in path
        ).lstrip(".")
        if is_key:
            inside = f" under {where}" if where else ""
            places.append((None, None, f"{name} has a key{inside} that holds {WHAT}"))
        else:
            places.append((None, None, f"{name}'s field {where or '(top)'} holds {WHAT}"))
    return places


# -- the file's bytes ---------------------------------------------------------------


def _content(index: FingerprintIndex, output: Output) -> list[Place]:
    """What the file's bytes carry besides the table, text or model read from them."""
    content = output.content
    extension = output.file.rsplit(".", 1)[-1].lower() if "." in output.file else ""
    if content.startswith(PNG_SIGNATURE) or extension == "png":
        return _png(index, content)
    if extension == "parquet" or (content[:4] == b"PAR1" and content[-4:] == b"PAR1"):
        return _parquet(index, content, read_table=output.table is None)
    if extension == "json" or output.kind == "model":
        document = _json(content)
        if document is not None:
            name = "the model" if output.kind == "model" else "the JSON document"
            return _document(index, document, name)
    if output.table is None and output.text is None:
        return _text(index, content.decode("utf-8", "replace"))
    return []


def _unreadable(output: Output) -> list[Finding]:
    """Without an index: only whether a PNG's chunks can be read at all (else a FAIL)."""
    if not output.content.startswith(PNG_SIGNATURE):
        return []
    try:
        png_texts(output.content)
    except ValueError:
        return [Finding(IDENTIFIER_LEAKAGE, Verdict.FAIL, output.file, _PNG_UNREADABLE)]
    return []


def _json(content: bytes) -> Any:
    """The JSON document with every object as its pairs (duplicates kept); None if not JSON."""
    try:
        return json.loads(content.decode("utf-8"), object_pairs_hook=_Pairs)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _png(index: FingerprintIndex, content: bytes) -> list[Place]:
    try:
        texts = png_texts(content)
    except ValueError:
        return [(None, None, _PNG_UNREADABLE)]
    pieces = [
        (
            f"the image's chunk {t.chunk + 1} "
            + ("(of an unknown type)" if t.kind == "other" else f"({t.kind})"),
            t.text,
        )
        for t in texts
    ]
    return _pieces(index, pieces)


def _parquet(index: FingerprintIndex, content: bytes, *, read_table: bool) -> list[Place]:
    """Field names and metadata at any depth, key-value metadata, writer, statistics."""
    try:
        file = pq.ParquetFile(pa.BufferReader(content))
        meta, schema = file.metadata, file.schema_arrow
        pieces = _parquet_pieces(meta, schema)
        table = file.read() if read_table else None
    except (pa.ArrowException, OSError, ValueError):
        return [(None, None, "the Parquet file cannot be read in full, so it cannot be checked")]
    places = _pieces(index, pieces)
    if table is not None:
        places += _table(index, table)
    return places


def _parquet_pieces(meta: pq.FileMetaData, schema: pa.Schema) -> list[Piece]:
    pieces: list[Piece] = [("the Parquet file's writer name", meta.created_by or "")]
    for i, (key, value) in enumerate((meta.metadata or {}).items()):
        where = f"the Parquet file's key-value metadata (entry {i + 1})"
        pieces += [(where, text) for text in (*_bytes_texts(key), *_bytes_texts(value))]
    for i, top in enumerate(schema):
        for depth, field in _fields(top):
            if depth:
                pieces.append((f"the name of a field nested in column {i + 1}", field.name))
            for key, value in (field.metadata or {}).items():
                where = f"the field metadata of column {i + 1}"
                pieces += [(where, text) for text in (*_bytes_texts(key), *_bytes_texts(value))]
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
                pieces += [(where, _shown(stats.min) or ""), (where, _shown(stats.max) or "")]
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


def _bytes_texts(value: bytes) -> list[str]:
    """A metadata value as text, and what it holds when it is JSON or base64 (decoded)."""
    text = value.decode("utf-8", "replace")
    texts = [text] if value.isascii() else [text, value.decode("latin-1")]
    document = _json(value)
    if isinstance(document, _Pairs | list):
        texts += [leaf for _, _, leaf in _leaves(document, ())]
    for run in _BASE64.findall(text):
        body = run.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            decoded = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        texts += [p for p in _CONTROL.split(decoded.decode("utf-8", "replace")) if p]
    return texts
