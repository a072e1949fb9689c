"""High-entropy payloads: no compressed or encrypted blob leaves in cells, names or text.

Rule of stage 5. A compressed or encrypted payload cannot be checked by any
other rule, so it may not leave. Table cells (text and binary columns),
column names, the file name, text outputs and every string and key of the
manifest entry and of a model document are searched for *runs*: 16 or more
characters of the base64 alphabet (standard or URL-safe, ``=`` padding
allowed). A run is flagged when

- it decodes (hex, base32 or base64, from its first character) to a known
  compressed or archive format: zlib (``78 01/5e/9c/da``, confirmed by
  inflating), gzip (``1f 8b``, confirmed too), zip, bzip2, xz, 7z, zstd; or
- it is at least ``MIN_RUN`` (32) characters long and its Shannon entropy per
  character is near that of random text over its alphabet: at least
  ``E(n, k) - MARGIN / sqrt(n)``, where ``E(n, k)`` is the exact expected
  empirical entropy of ``n`` uniform characters from ``k`` (16 for hex, 32
  for base32, 64 for base64) and ``MARGIN`` is 3 (about three standard
  deviations: random runs fall below it about once in a thousand). Runs over
  128 characters are also judged in windows of 128, so a payload cannot
  hide behind padding.

Why ordinary text passes: words are shorter than 32 characters or joined by
separators outside the alphabet (spaces, dots, Chinese text); snake_case and
camelCase names reach about 4.2 bits against 4.4 or more for random base64 of
their length, and runs must also change character class (upper, lower,
digit, other) between enough adjacent characters (``MIN_CLASS_CHANGES``:
random base64 does so at 0.65, base32 at 0.30, words at 0.05 to 0.3).
All-decimal runs (numbers, district codes, 18-character resident IDs) are
never judged: at most 3.32 bits per character, and legitimately long. Hex
runs need a letter; base32 runs (one case) a digit 2-7. A digest or random
token of 32+ hex characters *is* flagged: it cannot be told apart from a key
or ciphertext; so may be 32+ lower-case letters run together with digits 2-7
inside (read as base32).

The manifest entry's ``sha256`` is skipped when it is the digest of the
file itself (the SDK writes it); any other digest-like string is judged.
So are the texts a file carries besides its table or text: a PNG's text
and other ancillary chunks (``sandbox.judge.rules.files.png_texts``; one that
cannot be read is failed by ``identifier_leakage``) and a Parquet file's
key-value and field metadata, except the ``ARROW:schema`` entry pyarrow
writes (a base64 schema, read back by pyarrow itself).

Invariants: the verdict is FAIL; messages give lengths and bits per
character, never the text; at most ``MAX_FINDINGS`` findings per file, then
one counting the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sandbox.judge.rules.files import PNG_SIGNATURE, png_texts
from sandbox.judge.types import Context, Finding, Output, Verdict

HIGH_ENTROPY = "high_entropy"
RULES = {
    HIGH_ENTROPY: "no compressed or encrypted payload (a high-entropy base64, base32 or hex "
    "run, or an encoded zlib, gzip, zip, bzip2, xz, 7z or zstd stream) leaves",
}
MIN_RUN = 32  # characters judged by entropy
MIN_MAGIC_RUN = 16  # characters decoded to look for a compressed format
WINDOW = 128  # long runs are also judged in windows of this size (half overlapping)
MARGIN = 3.0  # threshold = E(n, k) - MARGIN / sqrt(n)
MIN_CLASS_CHANGES = {"hex": 0.0, "base32": 0.06, "base64": 0.35}  # random: 0.47, 0.30, 0.65
MAX_FINDINGS = 20
MAX_DECODED = 4096  # characters of a run decoded to confirm a zlib or gzip stream
SUFFIX = "; a compressed or encrypted payload cannot be checked"

_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_RUN_ARROW = r"[A-Za-z0-9+/_\-]{16}"
_HEX = frozenset("0123456789abcdefABCDEF")
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_ALPHABET = {"hex": 16, "base32": 32, "base64": 64}
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_ZLIB = frozenset((b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"))

Place = tuple[int | None, str | None, str]


# Module-level on purpose: a pure function of (n, k), bounded in size; no state.
@lru_cache(maxsize=4096)
def expected_entropy(n: int, k: int) -> float:
    """Expected empirical entropy (bits per character) of ``n`` uniform draws from ``k``."""
    if n > 2048:  # Miller-Madow: exact enough for long runs
        return math.log2(k) - (k - 1) / (2 * n * math.log(2))
    p, total = 1 / k, 0.0
    log_n = math.lgamma(n + 1)
    for j in range(2, n + 1):
        log_pmf = (
            log_n - math.lgamma(j + 1) - math.lgamma(n - j + 1)
            + j * math.log(p) + (n - j) * math.log1p(-p)
        )  # fmt: skip
        if log_pmf < -50 and j > n * p:
            break
        total += math.exp(log_pmf) * j * math.log2(j)
    return math.log2(n) - k * total / n


def entropy(text: str | bytes) -> float:
    """Shannon entropy per character (or byte) of ``text``."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def _alphabet(body: str) -> str | None:
    chars = set(body)
    if chars <= _HEX:
        return "hex" if chars - set("0123456789") else None  # all decimal: a number
    single_case = chars <= _BASE32 or chars <= {c.lower() for c in _BASE32}
    if single_case and chars & set("234567"):
        return "base32"
    return "base64"


def _class_changes(body: str) -> float:
    """Share of adjacent characters of different classes (upper, lower, digit, other)."""
    kinds = [
        "u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "o" for c in body
    ]
    return sum(a != b for a, b in pairwise(kinds)) / max(len(body) - 1, 1)


def _decode(body: str, kind: str, chars: int) -> bytes:
    """The bytes the first ``chars`` characters of a run encode (whole units only)."""
    part = body[:chars]
    part = part[: len(part) - len(part) % {"hex": 2, "base32": 8, "base64": 4}[kind]]
    try:
        if kind == "hex":
            return bytes.fromhex(part)
        if kind == "base32":
            return base64.b32decode(part.upper())
        return base64.b64decode(part.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        return b""


def _compressed(body: str, kind: str) -> str | None:
    """The compressed format a run decodes to, from its first character, if any."""
    kinds = [kind] + (["base64"] if kind == "base32" else [])
    for k in kinds:
        head = _decode(body, k, 64)
        for magic, name in _MAGIC:
            if head.startswith(magic) and (name != "gzip" or _inflates(body, k, 31)):
                return f"{k}-encoded {name} data"
        if head[:2] in _ZLIB and _inflates(body, k, 15):
            return f"{k}-encoded zlib data"
    return None


def _inflates(body: str, kind: str, wbits: int) -> bool:
    try:
        zlib.decompressobj(wbits).decompress(_decode(body, kind, MAX_DECODED), 256)
    except zlib.error:
        return False
    return True


def _random(body: str, kind: str) -> str | None:
    k = _ALPHABET[kind]
    pieces = [body]
    if len(body) > WINDOW:
        pieces += [body[i : i + WINDOW] for i in range(0, len(body) - WINDOW + 1, WINDOW // 2)]
    for piece in pieces:
        n, h = len(piece), entropy(piece)
        if h < expected_entropy(n, k) - MARGIN / math.sqrt(n):
            continue
        if _class_changes(piece) < MIN_CLASS_CHANGES[kind]:
            continue
        return f"a high-entropy {kind} run ({len(body)} characters, {h:.1f} bits per character)"
    return None


def judge(text: str) -> list[tuple[int, str]]:
    """(offset, what) for every payload-like run of ``text``; ``what`` never quotes it."""
    found = []
    for m in _RUN.finditer(text):
        body = m.group().rstrip("=")
        kind = _alphabet(body)
        if kind is None or len(body) < MIN_MAGIC_RUN:
            continue
        what = _compressed(body, kind)
        if what is None and len(body) >= MIN_RUN:
            what = _random(body, kind)
        if what is not None:
            found.append((m.start(), what))
    return found


def _judge_bytes(value: bytes) -> str | None:
    for magic, name in _MAGIC:
        if value.startswith(magic):
            return f"{name} data"
    if value[:2] in _ZLIB:
        return "zlib data"
    n = len(value)
    if n >= MIN_RUN and entropy(value) >= expected_entropy(n, 256) - MARGIN / math.sqrt(n):
        return f"high-entropy bytes ({n} bytes, {entropy(value):.1f} bits per byte)"
    return None


def high_entropy(output: Output, ctx: Context) -> list[Finding]:
    """No compressed or encrypted payload in the output's cells, names or text."""
    places: list[Place] = []
    for _, what in judge(output.file)[:1]:
        places.append((None, None, f"the file name holds {what}{SUFFIX}"))
    entry = dict(output.entry)
    if entry.get("sha256") == hashlib.sha256(output.content).hexdigest():
        del entry["sha256"]  # the file's own digest, as the SDK declares it: not a payload
    places += _document(entry, "the manifest entry")
    if output.table is not None:
        places += _table(output.table)
    if output.text is not None:
        for offset, what in judge(output.text):
            line = output.text.count("\n", 0, offset) + 1
            places.append((None, None, f"line {line} of the text holds {what}{SUFFIX}"))
    if output.model is not None:
        places += _document(output.model, "the model")
    for where, text in _embedded(output.content):
        for _, what in judge(text)[:1]:
            places.append((None, None, f"{where} holds {what}{SUFFIX}"))
    unique = list(dict.fromkeys(places))
    findings = [
        Finding(HIGH_ENTROPY, Verdict.FAIL, output.file, message, row=row, column=column)
        for row, column, message in unique[:MAX_FINDINGS]
    ]
    if len(unique) > MAX_FINDINGS:
        findings.append(
            Finding(
                HIGH_ENTROPY,
                Verdict.FAIL,
                output.file,
                f"{len(unique) - MAX_FINDINGS} more places hold payload-like runs (not listed)",
            )
        )
    return findings


def _table(table: pa.Table) -> list[Place]:
    names = [str(n) for n in table.column_names]
    places: list[Place] = []
    label = []
    for i, name in enumerate(names):
        bad = judge(name)
        if bad:
            places.append((None, None, f"the name of column {i + 1} holds {bad[0][1]}{SUFFIX}"))
        label.append(f"#{i + 1}" if bad else name)
    for i, column in enumerate(table.columns):
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            for row, value in enumerate(column.to_pylist()):
                what = _judge_bytes(value) if value is not None else None
                if what is not None:
                    places.append((row, label[i], f"the cell holds {what}{SUFFIX}"))
            continue
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue  # numbers, dates and booleans cannot hold a run
        candidates = pc.fill_null(pc.match_substring_regex(column, _RUN_ARROW), False)
        rows = np.flatnonzero(candidates.to_numpy(zero_copy_only=False))
        seen: dict[str, list[tuple[int, str]]] = {}  # cells repeat: judge each value once
        for row, value in zip(rows.tolist(), column.take(pa.array(rows)).to_pylist(), strict=True):
            found = seen[value] if value in seen else seen.setdefault(value, judge(value))
            for _, what in found[:1]:
                places.append((row, label[i], f"the cell holds {what}{SUFFIX}"))
    return places


def _strings(doc: Any, path: str) -> Iterator[tuple[str, bool, str]]:
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            yield path, True, str(key)
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(doc, list | tuple):
        for i, value in enumerate(doc):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(doc, str):
        yield path, False, doc


def _document(doc: Mapping[str, Any], name: str) -> list[Place]:
    places: list[Place] = []
    for path, is_key, text in _strings(doc, ""):
        for _, what in judge(text)[:1]:
            # A path made of keys that hold payloads would quote them: name the top field only.
            top = re.split(r"[.\[]", path, maxsplit=1)[0] if path else ""
            where = f" under {top}" if top and not judge(top) else ""
            kind = "a key" if is_key else "a field"
            places.append((None, None, f"{name} has {kind}{where} holding {what}{SUFFIX}"))
    return places


def _embedded(content: bytes) -> list[tuple[str, str]]:
    """(place, text) of what a PNG's chunks or a Parquet file's metadata carry."""
    if content.startswith(PNG_SIGNATURE):
        try:
            texts = png_texts(content)
        except ValueError:
            return []  # identifier_leakage fails it
        return [(f"the image's chunk {t.chunk + 1}", t.text) for t in texts]
    if not (content[:4] == b"PAR1" and content[-4:] == b"PAR1"):
        return []
    try:
        schema = pq.ParquetFile(pa.BufferReader(content)).schema_arrow
    except (pa.ArrowException, OSError, ValueError):
        return []  # identifier_leakage fails it
    found = [
        ("the Parquet file's key-value metadata", item.decode("utf-8", "replace"))
        for key, value in (schema.metadata or {}).items()
        if key != b"ARROW:schema"
        for item in (key, value)
    ]
    for i, field in enumerate(schema):
        for key, value in (field.metadata or {}).items():
            found += [
                (f"the field metadata of column {i + 1}", item.decode("utf-8", "replace"))
                for item in (key, value)
            ]
    return found
