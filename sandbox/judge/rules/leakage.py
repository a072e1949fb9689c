"""Identifier leakage: no identifier of a data subject, nor a reversible encoding of one, leaves.

Rule of stage 5. Everything an output carries is looked up in the
fingerprint index of its datasets and views (``ctx.fingerprints``, see
``sandbox.judge.fingerprints``): every table cell (numbers as written,
whole floats as integers), every column name, the file name, every string,
key and number of the manifest entry and of a model document (term names),
and the lines of a text output. An identifier split into parts is found
too: each table row is scanned as the concatenation of its cells, each
column as pairs of adjacent cells, a text across its lines.

The file's bytes are read as well, whatever its declared kind, so nothing
rides along unseen (``_content``, the texts read by ``carried``): every key
and string of a JSON file at any depth (duplicate keys included), the text
chunks and other ancillary chunks of a PNG
(``sandbox.judge.rules.files.png_texts``), a Parquet file's key-value
metadata (JSON and base64 values decoded too), field names and field
metadata at any depth, writer name and column statistics, and any other file
as text. A PNG or Parquet file whose structure cannot be read fails: what it
carries could not be checked.

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

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sandbox.judge.fingerprints import FingerprintIndex, normalise, strip_separators
from sandbox.judge.rules.carried import Piece, leaves, parquet_pieces, read_json, shown
from sandbox.judge.rules.files import PNG_SIGNATURE, png_texts
from sandbox.judge.types import Context, Finding, Output, Verdict

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

_PNG_UNREADABLE = "the image's chunks cannot be read in full, so what they carry cannot be checked"

Place = tuple[int | None, str | None, str]  # (row, column, message)


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
            text = pa.array([shown(v) for v in column.to_pylist()], pa.large_string())
    return pc.fill_null(text, "")


def _fractional(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Which cells are numbers with a fractional part."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_floating(column.type):
        return pa.array(np.zeros(len(column), dtype=bool))
    values = column.cast(pa.float64())
    return pc.fill_null(pc.not_equal(pc.floor(values), values), False)


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


def _document(index: FingerprintIndex, doc: Mapping[str, Any], name: str) -> list[Place]:
    found = list(leaves(doc, ()))
    if not found:
        return []
    flagged = _flagged(index, [text for _, _, text in found])
    pairs = list(zip(found, flagged, strict=True))
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
        document = read_json(content)
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
        pieces = parquet_pieces(meta, schema)
        table = file.read() if read_table else None
    except (pa.ArrowException, OSError, ValueError):
        return [(None, None, "the Parquet file cannot be read in full, so it cannot be checked")]
    places = _pieces(index, pieces)
    if table is not None:
        places += _table(index, table)
    return places
