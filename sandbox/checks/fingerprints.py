"""Identifier fingerprints: every form an identifier could take in an output, as a set lookup.

Prepared for stage 5 (output checks). Once per dataset version and exposure
policy (and once per view, for pseudonyms) the trusted side fingerprints every
*form* of every identifier value; the ``identifier_leakage`` rule then only
looks texts up. A fingerprint is a 64-bit hash of the form's UTF-8 bytes
(``_hash``: MurmurHash3's finaliser folded over 8-byte words, seeded with the
length), computed with numpy over many forms or text windows at once.

Forms of a value ``v`` (integers as decimal strings): ``v`` itself, lower-case,
without separators (whitespace ``- _ . / : , | ; + =``), reversed; the hex
(and that hex reversed, and the hex of ``v`` reversed), base32 and base64
(standard or URL-safe, padded or not) of its UTF-8; its unsalted MD5, SHA-1
and SHA-256 hex digests. Encodings and digests are taken of ``v`` and of
``v`` without separators. Pseudonyms (64-hex keyed HMACs in views) get the
same forms, the forms of their first 15 hex characters (a truncated
pseudonym still tracks a person, encoded or not) and the base64, base32 and
decimal of the 32 bytes they spell.

Choices, and why:

- Forms and texts are compared in one normal form (``normalise``): format
  characters (zero-width spaces and joiners, BOM) dropped, NFKC (so
  full-width letters and digits count), lower case, separators removed. Stored forms are
  normalised; a text is lower-cased and scanned with its separators removed,
  so ``138-1234-5678``, ``138 1234 5678`` and upper-case hex match too (a
  removed separator still counts as an edge, below). Base64 variants
  collapse: ``+ / - _ =`` are separators.
- Values are skipped when not identifying on their own: under 4 characters
  after stripping (under 2 for non-ASCII values such as Chinese names), and
  all-digit values under 6 digits (they would match every count and year).
- Values under 6 characters (2-5 character Chinese names, short codes) and
  any form under 8 bytes match a *whole* cell or token only (the exact set):
  as substrings they would match ordinary words. Their encodings and digests
  are long and are scanned like other forms.
- Lengths are in UTF-8 bytes (equal to characters for every encoding). Beside
  the fingerprints the index keeps, per form, its *anchor*: its first 8 bytes
  (mixed) with its length. A scan reads the 8 bytes at every position of the
  text at once (numpy), looks them up (a bitmap, then a sorted array), and
  hashes only the windows whose anchor and length fit a form, confirming
  each against the fingerprints: a 1M-cell table takes about two seconds,
  not the minutes hashing every window would.
- All-digit forms under 20 digits (mobiles, resident IDs without an ``X``)
  match only at the edges of a digit run or a cell: a mean printed to 16
  digits otherwise holds one of a million mobile numbers by chance about
  once in 50,000 tries. Under 16 digits they may span at most two cells.

The index holds no value in clear, but anchors are an invertible mix of the
first 8 bytes of each form and fingerprints of low-entropy IDs can be brute
forced: a fingerprint file is as sensitive as its dataset, stays on the
trusted side and must be destroyed with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.destruction import DestructionRecord, destroy_files
from sandbox.fsutil import write_atomic
from sandbox.policy import ColumnClass, ExposurePolicy, Visibility, policy_version
from sandbox.registry import DatasetVersion
from sandbox.sqltext import ident

FORMAT = 2  # changes with the forms: an index of another format is rebuilt
ANCHOR = 8  # bytes read at every position of a scanned text
MIN_CHARS = 4  # shorter values (after stripping) are skipped ...
MIN_NAME_CHARS = 2  # ... unless they hold non-ASCII characters (names)
MIN_DIGITS = 6  # all-digit values shorter than this are skipped
MIN_SCAN_CHARS = 6  # shorter values match whole cells and tokens only
ALIGN_DIGITS_BELOW = 20  # all-digit forms shorter than this match whole digit runs only
TWO_PARTS_DIGITS_BELOW = 16  # ... and when shorter than this, span at most two cells
# A pseudonym's first 15 hex digits (60 bits) still track a person; 15 bytes are whole
# base64 (3-byte) and base32 (5-byte) groups, so encodings of any longer prefix hold theirs.
PSEUDONYM_PREFIX = 15
SEPARATORS = b" \t\n\r\v\f-_./:,|;+="
BATCH = 200_000

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Bytes = npt.NDArray[np.uint8]

_SEPARATOR = np.zeros(256, dtype=bool)
_SEPARATOR[list(SEPARATORS)] = True
_FORMAT_CHAR = r"\p{Cf}"  # RE2: zero-width space/joiners, BOM, soft hyphen, ...
_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", np.uint8)  # lower case: normal form
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection (Fibonacci hashing)
_K = np.uint64(0x87C37B91114253D5)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SEED_STEP = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_HASH_BYTES = 1 << 26  # bytes gathered at once when hashing


# -- normal form ------------------------------------------------------------------


def _strings(texts: Any) -> pa.Array:
    """A large_string array without nulls."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array([str(t) for t in texts], pa.large_string())
    return pc.fill_null(texts.cast(pa.large_string()), "")


def buffers(texts: pa.Array) -> tuple[I64, Bytes]:
    """Offsets (from 0) and UTF-8 bytes of a large_string array without nulls."""
    bufs = texts.buffers()
    offsets = np.frombuffer(bufs[1], np.int64, len(texts) + 1, texts.offset * 8)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    start = int(offsets[0])
    return offsets - start, data[start : int(offsets[-1])]


def _from_buffers(offsets: I64, data: Bytes) -> pa.Array:
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(np.ascontiguousarray(offsets)), pa.py_buffer(data)
    )


def strip_separators(texts: pa.Array) -> pa.Array:
    """The texts without separator bytes (ASCII whitespace and ``- _ . / : , | ; + =``)."""
    offsets, data = buffers(texts)
    keep = ~_SEPARATOR[data]
    kept = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return _from_buffers(kept[offsets], np.ascontiguousarray(data[keep]))


def normalise(texts: Any, *, strip: bool) -> pa.Array:
    """No format characters, NFKC, lower case and (``strip``) no separators.

    How forms and texts are compared. Format characters (Unicode category
    ``Cf``: zero-width spaces and joiners, the byte-order mark, soft hyphens)
    are invisible, so they are dropped; NFKC folds full-width and other
    compatibility forms (full-width ``U+FF01..FF5E``) to ASCII. Only texts holding a
    non-ASCII character are normalised so; the others are only lower-cased.
    """
    arr = pc.ascii_lower(_strings(texts))
    _, data = buffers(arr)
    if data.size and int(data.max()) >= 0x80:
        wide = pc.invert(pc.string_is_ascii(arr))
        folded = pc.utf8_lower(
            pc.utf8_normalize(
                pc.replace_substring_regex(arr.filter(wide), _FORMAT_CHAR, ""), "NFKC"
            )
        )
        arr = pc.replace_with_mask(arr, wide, folded.cast(pa.large_string()))
    return strip_separators(arr) if strip else arr


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
    return _from_buffers(np.concatenate([[0], np.cumsum(chars)]).astype(np.int64), letters[keep])


def _fingerprints(forms: pa.Array) -> U64:
    """The fingerprint of each form's UTF-8 bytes (``_hash``)."""
    offsets, data = buffers(forms)
    return _hash(data, offsets[:-1], np.diff(offsets))


def _hash(data: Bytes, starts: I64, lengths: I64) -> U64:
    """A 64-bit hash of each byte string ``data[start:start + length]``, vectorised.

    Strings of one length are hashed together: their bytes, zero-padded to
    whole 8-byte words, are folded word by word into a state seeded with the
    length (``h = fmix64((h ^ word) * K)``, MurmurHash3's finaliser), so a
    scan hashes its candidate windows the way the index hashed its forms.
    """
    out = np.empty(lengths.size, dtype=np.uint64)
    padded = np.concatenate([data, np.zeros(ANCHOR, np.uint8)])
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        for part in np.array_split(rows, max(1, rows.size * max(length, 1) // _HASH_BYTES)):
            words = -(-length // ANCHOR)
            width = np.arange(words * ANCHOR)
            block = padded[starts[part, None] + width] * (width < length)  # zero past the end
            block = np.ascontiguousarray(block, dtype=np.uint8).view("<u8")
            h = np.full(part.size, (length * _SEED_STEP) & _MASK, dtype=np.uint64)
            for w in range(words):
                h = _fmix((h ^ block[:, w]) * _K)
            out[part] = h
    return out


def _fmix(h: U64) -> U64:
    h = h ^ (h >> np.uint64(33))
    h = h * _FMIX1
    h = h ^ (h >> np.uint64(33))
    h = h * _FMIX2
    return np.asarray(h ^ (h >> np.uint64(33)))


def _all_digits(offsets: I64, data: Bytes) -> Bools:
    digit = np.concatenate([[0], np.cumsum((data - 48) < 10, dtype=np.int64)])
    lengths = np.diff(offsets)
    return np.asarray((digit[offsets[1:]] - digit[offsets[:-1]] == lengths) & (lengths > 0))


def _mix(words: U64) -> U64:
    """Anchor words times an odd constant: a bijection whose top bits depend on every byte."""
    return np.asarray(words * _MIX)


def _sorted_unique(values: Any) -> Any:
    values = np.sort(values)
    if values.size < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


_LOW = np.uint64(0xFFFF)  # an anchor key's low 16 bits hold the form's length
_HIGH = ~_LOW


class FingerprintIndex:
    """Fingerprints of identifier forms: scanned as substrings, or matched whole (exact set).

    ``fingerprints`` and ``exact`` are sorted uint64 arrays (scanned forms,
    whole-match forms). ``anchors`` holds, per scanned form, the mixed first
    8 bytes in the high 48 bits and the form's byte length in the low 16,
    sorted: a scan finds the lengths to hash at a position with one lookup.
    """

    def __init__(self, fingerprints: U64, exact: U64, anchors: U64, exact_lengths: I64) -> None:
        """Sorted unique arrays (``_merge`` makes them)."""
        self.fingerprints = fingerprints
        self.exact = exact
        self.anchors = anchors
        self.exact_lengths = exact_lengths
        self._bitmap: Bytes | None = None
        self._shift = np.uint64(0)

    @classmethod
    def empty(cls) -> FingerprintIndex:
        none = np.zeros(0, np.uint64)
        return cls(none, none, none, np.zeros(0, np.int64))

    @classmethod
    def _of_forms(cls, scan: pa.Array, exact: pa.Array) -> FingerprintIndex:
        """The index of normalised forms: ``scan`` as substrings, ``exact`` whole only.

        Repeated forms need no removing first: every array is made sorted and unique.
        """
        length = pc.binary_length(scan)
        whole = pc.or_(pc.less(length, ANCHOR), pc.greater(length, int(_LOW)))
        exact = pa.concat_arrays([exact, scan.filter(whole)])
        scan = scan.filter(pc.invert(whole))
        offsets, data = buffers(scan)
        words = data[offsets[:-1, None] + np.arange(ANCHOR)].view("<u8").ravel()
        anchors = (_mix(words.astype(np.uint64)) & _HIGH) | np.diff(offsets).astype(np.uint64)
        e_offsets, e_data = buffers(exact)
        exact = exact.filter(pa.array(~_all_digits(e_offsets, e_data)))
        e_lengths = pc.binary_length(exact).to_numpy(zero_copy_only=False).astype(np.int64)
        arrays = (_fingerprints(scan), _fingerprints(exact), anchors, e_lengths)
        return cls(*(_sorted_unique(a) for a in arrays))

    def __len__(self) -> int:
        return int(self.fingerprints.size + self.exact.size)

    @property
    def lengths(self) -> frozenset[int]:
        """Byte lengths of the scanned forms (characters, for every encoding)."""
        return frozenset(int(n) for n in _sorted_unique(self.anchors & _LOW))

    def union(self, other: FingerprintIndex) -> FingerprintIndex:
        """An index holding the forms of both."""
        return _merge([self, other])

    # -- lookups ----------------------------------------------------------------------

    def contains(self, text: str) -> bool:
        """Whether ``text`` (normalised) is exactly one fingerprinted form."""
        fp = _fingerprints(normalise([text], strip=True))
        return bool(_isin(fp, self.fingerprints)[0] or _isin(fp, self.exact)[0])

    def scan(self, texts: Sequence[str]) -> Bools:
        """Per text, whether it holds a scanned form as a substring (exact-only forms aside)."""
        lower = normalise(texts, strip=False)
        found = np.zeros(len(lower), dtype=bool)
        found[self.find(lower, np.arange(len(lower) + 1, dtype=np.int64))[:, 0]] = True
        return found

    def find(self, lower: pa.Array, bounds: I64, *, max_parts: int | None = None) -> I64:
        """Where forms occur in texts made of parts: rows ``(segment, first part, last part)``.

        ``lower`` holds the parts in normal form without stripping
        (``normalise(..., strip=False)``); segment ``i`` is the concatenation
        of parts ``bounds[i]:bounds[i + 1]`` (a table row, a column, the lines
        of a text). A form may span parts, at most ``max_parts`` of them when
        given; part numbers in the result are relative to the segment.

        One pass over the text with separators stripped finds what a pass over
        the lower-case text would, and more; where a separator was removed
        counts as an edge for all-digit forms, as it would in that text.
        """
        offsets, data = buffers(lower)
        keep = ~_SEPARATOR[data]
        kept = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        data = np.ascontiguousarray(data[keep])
        edge = np.zeros(data.size + 1, dtype=bool)
        edge[kept[offsets]] = True
        edge[kept[np.flatnonzero(~keep)]] = True  # where a separator was
        found = self._find(kept[offsets], data, edge, bounds, max_parts)
        return np.unique(found, axis=0) if found.size else found

    def exact_hits(self, stripped: pa.Array) -> Bools:
        """Per (normalised, stripped) text, whether it is wholly an exact-only form."""
        out = np.zeros(len(stripped), dtype=bool)
        if not self.exact.size:
            return out
        offsets, data = buffers(stripped)
        wanted = np.isin(np.diff(offsets), self.exact_lengths) & ~_all_digits(offsets, data)
        idx = np.flatnonzero(wanted)
        if not idx.size:
            return out
        texts = stripped.take(pa.array(idx))
        unique = pc.unique(texts)
        matched = unique.filter(pa.array(_isin(_fingerprints(unique), self.exact)))
        out[idx[pc.is_in(texts, value_set=matched).to_numpy(zero_copy_only=False)]] = True
        return out

    def _maybe(self, keys: U64) -> I64:
        """Positions whose anchor is probably indexed (a bitmap: no false negatives)."""
        if self._bitmap is None:
            bits = int(np.clip(np.ceil(np.log2(max(self.anchors.size, 1))) + 5, 16, 30))
            self._shift = np.uint64(64 - bits)
            slot = self.anchors >> self._shift
            bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
            np.bitwise_or.at(
                bitmap, slot >> np.uint64(3), (1 << (slot & np.uint64(7))).astype(np.uint8)
            )
            self._bitmap = bitmap
        slot = keys >> self._shift
        bit = (self._bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1
        return np.flatnonzero(bit).astype(np.int64)

    def _find(
        self, offsets: I64, data: Bytes, edge: Bools, bounds: I64, max_parts: int | None
    ) -> I64:
        n = data.size
        if n < ANCHOR or not self.anchors.size:
            return np.zeros((0, 3), dtype=np.int64)
        words = np.empty(n - ANCHOR + 1, dtype=np.uint64)
        for o in range(ANCHOR):  # the 8 bytes at every position, as one little-endian word
            words[o::ANCHOR] = np.frombuffer(data, "<u8", (words.size - o + ANCHOR - 1) // 8, o)
        keys = _mix(words) & _HIGH
        pos = self._maybe(keys)
        lo = _search(self.anchors, keys[pos], "left")
        count = _search(self.anchors, keys[pos] | _LOW, "right") - lo
        pos = np.repeat(pos, count)
        record = np.repeat(lo - (np.cumsum(count) - count), count) + np.arange(pos.size)
        length = (self.anchors[record] & _LOW).astype(np.int64)
        end = pos + length
        starts = offsets[:-1]
        part = _search(starts, pos, "right") - 1
        segment = np.repeat(np.arange(bounds.size - 1), np.diff(bounds))[part]
        ok = end <= offsets[bounds[1:]][segment]
        pos, length, end, part, segment = pos[ok], length[ok], end[ok], part[ok], segment[ok]
        last = _search(starts, end - 1, "right") - 1
        spans = last - part + 1
        digit = (data - 48) < 10
        run = np.concatenate([[0], np.cumsum(digit, dtype=np.int64)])
        all_digits = run[end] - run[pos] == length
        aligned = (edge[pos] | ~digit[np.maximum(pos - 1, 0)]) & (
            edge[end] | ~digit[np.minimum(end, n - 1)]
        )
        ok = ~(all_digits & (length < ALIGN_DIGITS_BELOW)) | aligned
        ok &= ~(all_digits & (length < TWO_PARTS_DIGITS_BELOW)) | (spans <= 2)
        if max_parts is not None:
            ok &= spans <= max_parts
        pos, length, part, last, segment = pos[ok], length[ok], part[ok], last[ok], segment[ok]
        hit = _isin(_hash(data, pos, length), self.fingerprints)
        base = bounds[segment[hit]]
        return np.stack([segment[hit], part[hit] - base, last[hit] - base], axis=1)

    # -- storage ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (``.npz``) atomically: readers see all of it or none."""
        out = io.BytesIO()
        np.savez(
            out,
            format=np.array([FORMAT]),
            fingerprints=self.fingerprints,
            exact=self.exact,
            anchors=self.anchors,
            exact_lengths=self.exact_lengths,
        )
        write_atomic(path, out.getvalue())

    @classmethod
    def load(cls, path: Path) -> FingerprintIndex:
        """An index saved by ``save``; ``ValueError`` when the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as f:
                if int(f["format"][0]) != FORMAT:
                    raise ValueError(f"fingerprint file format {int(f['format'][0])}")
                arrays = [f[k] for k in ("fingerprints", "exact", "anchors", "exact_lengths")]
        except (OSError, KeyError, EOFError, ValueError) as e:
            raise ValueError(f"{path.name} is not a fingerprint index") from e
        if any(a.dtype != d for a, d in zip(arrays, ("<u8", "<u8", "<u8", "<i8"), strict=True)):
            raise ValueError(f"{path.name} is not a fingerprint index")
        return cls(*arrays)


def _merge(indexes: Iterable[FingerprintIndex]) -> FingerprintIndex:
    """One index of the forms of all, its arrays sorted and unique."""
    parts = [i for i in indexes if len(i)]
    if len(parts) < 2:
        return parts[0] if parts else FingerprintIndex.empty()
    names = ("fingerprints", "exact", "anchors", "exact_lengths")
    return FingerprintIndex(
        *(_sorted_unique(np.concatenate([getattr(p, name) for p in parts])) for name in names)
    )


def _search(sorted_array: Any, queries: Any, side: Any) -> I64:
    """``np.searchsorted`` with the queries sorted first: ten times faster on large arrays."""
    order = np.argsort(queries, kind="stable")
    found = np.empty(queries.size, dtype=np.int64)
    found[order] = np.searchsorted(sorted_array, queries[order], side)
    return found


def _isin(values: U64, sorted_set: U64) -> Bools:
    if not sorted_set.size:
        return np.zeros(values.size, dtype=bool)
    at = np.minimum(_search(sorted_set, values, "left"), sorted_set.size - 1)
    return np.asarray(sorted_set[at] == values)


# -- building -----------------------------------------------------------------------


def _forms(values: pa.Array, con: duckdb.DuckDBPyConnection) -> tuple[pa.Array, pa.Array]:
    """Normalised forms of identifier values: (scanned as substrings, matched whole only)."""
    values = pc.unique(_strings(values))
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
    hexed, hex_of_reversed, b64, *digests = (_strings(c) for c in encoded.columns)
    scan += [hexed, pc.utf8_reverse(hexed), hex_of_reversed, base32(variants)]
    scan += [normalise(b64, strip=True), *digests]  # base64: case and + / = folded
    return pa.concat_arrays(scan), pa.concat_arrays(exact)


def _byte_forms(hex_values: pa.Array, con: duckdb.DuckDBPyConnection) -> pa.Array:
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


def _index_of(values: pa.Array, con: duckdb.DuckDBPyConnection) -> FingerprintIndex:
    return FingerprintIndex._of_forms(*_forms(values, con))


def build_from_values(values: Iterable[str | int]) -> FingerprintIndex:
    """The index of identifier values (strings; integers as decimal strings)."""
    with duckdb.connect() as con:
        return _merge(_index_of(chunk, con) for chunk in _chunks(values) if len(chunk))


def _chunks(values: Iterable[str | int]) -> Iterable[pa.Array]:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        arr = _strings(values)
        yield from (arr.slice(i, BATCH) for i in range(0, len(arr), BATCH))
        return
    items = iter(values)
    while batch := list(itertools.islice(items, BATCH)):
        try:  # all strings: converted in C
            yield pa.array(batch, pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            yield pa.array([v if isinstance(v, str) else str(v) for v in batch], pa.large_string())


def _distinct(path: Path, columns: Sequence[str]) -> Iterable[pa.Array]:
    """Distinct non-null values of ``columns`` of a Parquet file, as text, in batches."""
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        for name in columns:
            quoted = ident(name)  # names enter SQL only through sandbox.sqltext; the path is bound
            query_sql = (
                f"SELECT DISTINCT CAST({quoted} AS VARCHAR) AS v FROM read_parquet($p) "  # noqa: S608
                f"WHERE {quoted} IS NOT NULL"
            )
            reader = con.sql(query_sql, params={"p": str(path)}).to_arrow_reader(BATCH)
            for batch in reader:
                yield batch.column(0)


def build_for_dataset(version: DatasetVersion, policy: ExposurePolicy) -> FingerprintIndex:
    """Fingerprints of every identifier column of a raw dataset, except ``plain`` ones.

    A ``plain`` identifier (a company name) is public by the provider's decision.
    """
    present = {c.name for c in version.columns}
    columns = [
        name
        for name, col in policy.columns.items()
        if col.column_class == ColumnClass.IDENTIFIER
        and col.visibility != Visibility.PLAIN
        and name in present
    ]
    with duckdb.connect() as con:
        return _merge(_index_of(batch, con) for batch in _distinct(version.path, columns))


def build_for_pseudonyms(view_parquet_path: Path, columns: Sequence[str]) -> FingerprintIndex:
    """Fingerprints of the pseudonyms in a view.

    Their forms, the forms of their first ``PSEUDONYM_PREFIX`` hex digits (a
    truncated pseudonym, encoded or not) and of the bytes they spell
    (``_byte_forms``).
    """
    parts = []
    with duckdb.connect() as con:
        for batch in _distinct(view_parquet_path, columns):
            prefix = pc.utf8_slice_codeunits(normalise(batch, strip=True), 0, PSEUDONYM_PREFIX)
            empty = pa.array([], pa.large_string())
            parts += [
                _index_of(batch, con),
                _index_of(prefix, con),
                FingerprintIndex._of_forms(_byte_forms(batch, con), empty),
            ]
    return _merge(parts)


class FingerprintStore:
    """Indexes cached under ``root/fingerprints/<dataset>/<version>-<policy version>.npz``.

    Built once per dataset version and policy version, loaded afterwards.
    Builders in several processes take a lock, so one builds and the others
    load; the file is written atomically, so a reader never sees half of it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "fingerprints"
        self._loaded: dict[Path, FingerprintIndex] = {}

    def path(self, version: DatasetVersion, policy: ExposurePolicy) -> Path:
        return self.root / version.name / f"{version.version}-{policy_version(policy)}.npz"

    def get(self, version: DatasetVersion, policy: ExposurePolicy) -> FingerprintIndex:
        path = self.path(version, policy)
        if path in self._loaded:
            return self._loaded[path]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = None
            if path.is_file():
                with contextlib.suppress(ValueError):  # unreadable: build it again
                    index = FingerprintIndex.load(path)
            if index is None:
                index = build_for_dataset(version, policy)
                index.save(path)
        self._loaded[path] = index
        return index

    def destroy(self, dataset: str, version: str) -> DestructionRecord | None:
        """Destroy the cached indexes of one dataset version (as sensitive as the data).

        Call it with ``Registry.destroy`` of the same version; None when none was built.
        """
        folder = self.root / dataset
        paths = sorted(folder.glob(f"{version}-*.npz")) if folder.is_dir() else []
        for path in paths:
            self._loaded.pop(path, None)
        if not paths:
            return None
        return destroy_files(f"identifier fingerprints of {dataset} version {version}", paths)
