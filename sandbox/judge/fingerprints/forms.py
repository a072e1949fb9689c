"""The forms of identifier values: every way a value could be written in an output.

Forms of a value ``v`` (``value_forms``): ``v`` normalised (``normal``) and
reversed; the hex (and that hex reversed, and the hex of ``v`` reversed),
base32 and base64 of its UTF-8; its unsalted MD5, SHA-1 and SHA-256 hex
digests, each taken of ``v`` and of ``v`` without separators. Values too
short to identify on their own are skipped; values under ``MIN_SCAN_CHARS``
are matched whole only. Hex values (pseudonyms) also get the forms of the
bytes they spell (``byte_forms``). Every form comes out normalised.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.judge.fingerprints.normal import (
    buffers,
    from_buffers,
    normalise,
    strings,
    strip_separators,
)

MIN_CHARS = 4  # shorter values (after stripping) are skipped ...
MIN_NAME_CHARS = 2  # ... unless they hold non-ASCII characters (names)
MIN_DIGITS = 6  # all-digit values shorter than this are skipped
MIN_SCAN_CHARS = 6  # shorter values match whole cells and tokens only

_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", np.uint8)  # lower case: normal form


def value_forms(values: pa.Array, con: duckdb.DuckDBPyConnection) -> tuple[pa.Array, pa.Array]:
    """Normalised forms of identifier values: (scanned as substrings, matched whole only)."""
    values = pc.unique(strings(values))
    stripped = normalise(values, strip=True)
    chars = pc.utf8_length(stripped)
    skip = pc.or_(
        pc.or_(
            pc.less(chars, MIN_NAME_CHARS),
            pc.and_(pc.string_is_ascii(stripped), pc.less(chars, MIN_CHARS)),
        ),
        pc.and_(pc.utf8_is_digit(stripped), pc.less(chars, MIN_DIGITS)),
    )
    keep = pc.invert(skip)
    values, stripped, chars = values.filter(keep), stripped.filter(keep), chars.filter(keep)
    long = pc.greater_equal(chars, MIN_SCAN_CHARS)
    raw = [stripped, pc.utf8_reverse(stripped)]
    scan = [r.filter(long) for r in raw]
    exact = [r.filter(pc.invert(long)) for r in raw]
    # Encodings and digests of the value as given and without separators, computed by
    # DuckDB (vectorised, in C++) over an Arrow table.
    variants = pc.unique(pa.concat_arrays([values, strip_separators(values)]))
    con.register("variants", pa.table({"u": variants}))
    try:
        encoded = con.sql(
            "SELECT lower(hex(encode(u))), lower(hex(encode(reverse(u)))), "
            "to_base64(encode(u)), md5(u), sha1(u), sha256(u) FROM variants"
        ).to_arrow_table()
    finally:
        con.unregister("variants")
    hexed, hex_of_reversed, b64, *digests = (strings(c) for c in encoded.columns)
    scan += [hexed, pc.utf8_reverse(hexed), hex_of_reversed, base32(variants)]
    scan += [normalise(b64, strip=True), *digests]  # base64: case and + / = folded
    return pa.concat_arrays(scan), pa.concat_arrays(exact)


def byte_forms(hex_values: pa.Array, con: duckdb.DuckDBPyConnection) -> pa.Array:
    """Forms of the bytes hex values spell: base64, base32 and the number, in decimal.

    A pseudonym is 64 hex digits; ``base64.b64encode(bytes.fromhex(p))`` or
    ``int(p, 16)`` gives it back as surely as the hex itself.
    """
    stripped = normalise(hex_values, strip=True)
    lengths = pc.utf8_length(stripped)
    even = pc.equal(pc.bit_wise_and(lengths, 1), 0)
    keep = pc.and_(
        pc.and_(even, pc.greater(lengths, 0)), pc.match_substring_regex(stripped, "^[0-9a-f]+$")
    )
    hexes = stripped.filter(keep)
    if not len(hexes):
        return pa.array([], pa.large_string())
    con.register("hexes", pa.table({"h": hexes}))
    try:
        raw = con.sql("SELECT unhex(h) AS b, to_base64(unhex(h)) AS s FROM hexes").to_arrow_table()
    finally:
        con.unregister("hexes")
    numbers = pa.array([str(int(h, 16)) for h in hexes.to_pylist()], pa.large_string())
    b64 = normalise(raw.column("s"), strip=True)
    return pa.concat_arrays(
        [b64, base32(raw.column("b").combine_chunks().cast(pa.large_binary())), numbers]
    )


def base32(texts: pa.Array) -> pa.Array:
    """Base32 of each text's (or binary's) bytes, lower case and without ``=`` padding.

    Vectorised: every value is zero-padded to whole 5-byte groups, each group
    read as a 40-bit number and cut into eight 5-bit letters; the letters a
    padded byte alone produced are dropped.
    """
    offsets, data = buffers(texts)
    lengths = np.diff(offsets)
    groups = (lengths + 4) // 5
    padded = np.concatenate([[0], np.cumsum(groups * 5)])
    buf = np.zeros(int(padded[-1]), np.uint8)
    buf[np.repeat(padded[:-1] - offsets[:-1], lengths) + np.arange(data.size)] = data
    g = buf.reshape(-1, 5).astype(np.uint64)
    word = (g[:, 0] << 32) | (g[:, 1] << 24) | (g[:, 2] << 16) | (g[:, 3] << 8) | g[:, 4]
    letters = _BASE32[(word[:, None] >> np.arange(35, -1, -5, dtype=np.uint64)) & 31].ravel()
    chars = (lengths * 8 + 4) // 5
    start = np.repeat(np.concatenate([[0], np.cumsum(groups * 8)])[:-1], groups * 8)
    keep = np.arange(letters.size) - start < np.repeat(chars, groups * 8)
    return from_buffers(np.concatenate([[0], np.cumsum(chars)]).astype(np.int64), letters[keep])
