"""Fingerprints: a 64-bit hash of a form's UTF-8 bytes, over many byte strings at once.

MurmurHash3's finaliser folded over 8-byte words, seeded with the length.
The index hashes its forms and a scan hashes its candidate windows with the
same ``hash_bytes``, so a window equal to a form has its fingerprint.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sandbox.judge.fingerprints.normal import I64, U64, Bytes, buffers

ANCHOR = 8  # bytes read at every position of a scanned text (one word)

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection (Fibonacci hashing)
_K = np.uint64(0x87C37B91114253D5)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SEED_STEP = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
_HASH_BYTES = 1 << 26  # bytes gathered at once when hashing


def fingerprints_of(forms: pa.Array) -> U64:
    """The fingerprint of each form's UTF-8 bytes (``hash_bytes``)."""
    offsets, data = buffers(forms)
    return hash_bytes(data, offsets[:-1], np.diff(offsets))


def hash_bytes(data: Bytes, starts: I64, lengths: I64) -> U64:
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


def mix(words: U64) -> U64:
    """Anchor words times an odd constant: a bijection whose top bits depend on every byte."""
    return np.asarray(words * _MIX)
