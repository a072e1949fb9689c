"""Identifier fingerprints: every form an identifier could take in an output, as a set lookup.

Prepared for stage 5 (output checks). Once per dataset version and exposure
policy (and once per view, for pseudonyms) the trusted side fingerprints every
*form* of every identifier value; the ``identifier_leakage`` rule then only
looks texts up. In the order data passes them:

1. ``build``: identifier values in (given, a raw dataset's identifier columns
   or a view's pseudonyms), in batches;
2. ``forms``: every form of each value, in the normal form of ``normal``;
3. ``hashing``: a 64-bit fingerprint of each form's UTF-8 bytes
   (MurmurHash3's finaliser folded over 8-byte words, seeded with the length),
   computed with numpy over many forms or text windows at once;
4. ``index``: ``FingerprintIndex``, the sorted fingerprints and anchors, which
   scans normalised texts and says where a form occurs;
5. ``store``: ``FingerprintStore``, one index per dataset and policy version,
   built once, cached on disk, destroyed with the data.

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

from sandbox.judge.fingerprints.build import (
    build_for_dataset,
    build_for_pseudonyms,
    build_from_values,
)
from sandbox.judge.fingerprints.forms import base32
from sandbox.judge.fingerprints.index import FingerprintIndex
from sandbox.judge.fingerprints.normal import normalise, strip_separators
from sandbox.judge.fingerprints.store import FingerprintStore

__all__ = [
    "FingerprintIndex",
    "FingerprintStore",
    "base32",
    "build_for_dataset",
    "build_for_pseudonyms",
    "build_from_values",
    "normalise",
    "strip_separators",
]
