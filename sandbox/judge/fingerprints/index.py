"""The fingerprint index: looks normalised texts up against the forms of identifiers.

Beside the fingerprints (``hashing``) the index keeps, per scanned form, its
*anchor*: its first 8 bytes (mixed) with its length. A scan reads the 8 bytes
at every position of the text at once, looks them up (a bitmap, then a
sorted array) and hashes only the windows whose anchor and length fit a form,
confirming each against the fingerprints. All-digit forms under 20 digits
match only at the edges of a digit run or a cell, and under 16 digits span
at most two cells (the package docstring says why).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.fsutil import write_atomic
from sandbox.judge.fingerprints.hashing import ANCHOR, fingerprints_of, hash_bytes, mix
from sandbox.judge.fingerprints.normal import (
    I64,
    SEPARATOR,
    U64,
    Bools,
    Bytes,
    all_digits,
    buffers,
    normalise,
)

FORMAT = 2  # changes with the forms: an index of another format is rebuilt
ALIGN_DIGITS_BELOW = 20  # all-digit forms shorter than this match whole digit runs only
TWO_PARTS_DIGITS_BELOW = 16  # ... and when shorter than this, span at most two cells


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
        """Sorted unique arrays (``merge`` makes them)."""
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
    def of_forms(cls, scan: pa.Array, exact: pa.Array) -> FingerprintIndex:
        """The index of normalised forms: ``scan`` as substrings, ``exact`` whole only.

        Repeated forms need no removing first: every array is made sorted and unique.
        """
        length = pc.binary_length(scan)
        whole = pc.or_(pc.less(length, ANCHOR), pc.greater(length, int(_LOW)))
        exact = pa.concat_arrays([exact, scan.filter(whole)])
        scan = scan.filter(pc.invert(whole))
        offsets, data = buffers(scan)
        words = data[offsets[:-1, None] + np.arange(ANCHOR)].view("<u8").ravel()
        anchors = (mix(words.astype(np.uint64)) & _HIGH) | np.diff(offsets).astype(np.uint64)
        e_offsets, e_data = buffers(exact)
        exact = exact.filter(pa.array(~all_digits(e_offsets, e_data)))
        e_lengths = pc.binary_length(exact).to_numpy(zero_copy_only=False).astype(np.int64)
        arrays = (fingerprints_of(scan), fingerprints_of(exact), anchors, e_lengths)
        return cls(*(_sorted_unique(a) for a in arrays))

    def __len__(self) -> int:
        return int(self.fingerprints.size + self.exact.size)

    @property
    def lengths(self) -> frozenset[int]:
        """Byte lengths of the scanned forms (characters, for every encoding)."""
        return frozenset(int(n) for n in _sorted_unique(self.anchors & _LOW))

    def union(self, other: FingerprintIndex) -> FingerprintIndex:
        """An index holding the forms of both."""
        return merge([self, other])

    # -- lookups ----------------------------------------------------------------------

    def contains(self, text: str) -> bool:
        """Whether ``text`` (normalised) is exactly one fingerprinted form."""
        fp = fingerprints_of(normalise([text], strip=True))
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
        keep = ~SEPARATOR[data]
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
        wanted = np.isin(np.diff(offsets), self.exact_lengths) & ~all_digits(offsets, data)
        idx = np.flatnonzero(wanted)
        if not idx.size:
            return out
        texts = stripped.take(pa.array(idx))
        unique = pc.unique(texts)
        matched = unique.filter(pa.array(_isin(fingerprints_of(unique), self.exact)))
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
        keys = mix(words) & _HIGH
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
        hit = _isin(hash_bytes(data, pos, length), self.fingerprints)
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


def merge(indexes: Iterable[FingerprintIndex]) -> FingerprintIndex:
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
