"""The one normal form identifier forms and output texts are compared in.

Texts travel as Arrow ``large_string`` arrays and are worked on as their raw
buffers (offsets and UTF-8 bytes) with numpy. ``normalise`` drops format
characters, folds NFKC and lower-cases; with ``strip`` it also removes the
separator bytes (ASCII whitespace and ``- _ . / : , | ; + =``), so
``138-1234-5678`` and ``13812345678`` are one form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

SEPARATORS = b" \t\n\r\v\f-_./:,|;+="

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Bytes = npt.NDArray[np.uint8]

SEPARATOR = np.zeros(256, dtype=bool)  # per byte value: whether it is a separator
SEPARATOR[list(SEPARATORS)] = True
_FORMAT_CHAR = r"\p{Cf}"  # RE2: zero-width space/joiners, BOM, soft hyphen, ...


def strings(texts: Any) -> pa.Array:
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


def from_buffers(offsets: I64, data: Bytes) -> pa.Array:
    """The large_string array of ``offsets`` (from 0) into UTF-8 ``data``."""
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(np.ascontiguousarray(offsets)), pa.py_buffer(data)
    )


def strip_separators(texts: pa.Array) -> pa.Array:
    """The texts without separator bytes (ASCII whitespace and ``- _ . / : , | ; + =``)."""
    offsets, data = buffers(texts)
    keep = ~SEPARATOR[data]
    kept = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    return from_buffers(kept[offsets], np.ascontiguousarray(data[keep]))


def normalise(texts: Any, *, strip: bool) -> pa.Array:
    """No format characters, NFKC, lower case and (``strip``) no separators.

    How forms and texts are compared. Format characters (Unicode category
    ``Cf``: zero-width spaces and joiners, the byte-order mark, soft hyphens)
    are invisible, so they are dropped; NFKC folds full-width and other
    compatibility forms (full-width ``U+FF01..FF5E``) to ASCII. Only texts holding a
    non-ASCII character are normalised so; the others are only lower-cased.
    """
    arr = pc.ascii_lower(strings(texts))
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


def all_digits(offsets: I64, data: Bytes) -> Bools:
    """Per text, whether it is non-empty and made of ASCII digits only."""
    digit = np.concatenate([[0], np.cumsum((data - 48) < 10, dtype=np.int64)])
    lengths = np.diff(offsets)
    return np.asarray((digit[offsets[1:]] - digit[offsets[:-1]] == lengths) & (lengths > 0))
