"""Encrypted verification (BFV), server side: does the record agree with a claim?

The operator defines a product as a band over one column of an authorized
view: public, strictly increasing boundaries; a subject's value is the index
of its band (``bisect_right``), so a single boundary gives a yes/no predicate
("social-insurance months >= 24") and a bool column is the band over 0.5.
``build_table`` turns the view's (subject, value) pairs into the product's
table: per bucket, the claim elements ``h_i = claim_element(P, S_i, band_i)``
(``protocol``). The table never leaves the server.

A consumer sends its public context (public key only) and a
``VerificationQuery``: the bucket in the clear and a ciphertext holding its
claim element ``h_q`` in every one of the N = 16384 slots. ``evaluate``:

1. refuses a context with a secret key, of the wrong scheme, or with other
   parameters than the product's (``params``), and a query that is not one
   fresh two-component ciphertext of N slots;
2. lays out the bucket's elements, pads them to N with random dummies (never
   equal to a real claim but with probability 1/t) and shuffles the slots
   with a fresh permutation, so neither the bucket's size nor a subject's
   position shows;
3. computes ``r_i * (h_q - h_i)`` with fresh uniform nonzero masks ``r_i``:
   a slot decrypts to 0 iff the claim matches that row, and to a uniformly
   random nonzero element otherwise (the raw difference never shows);
4. floods the noise and re-randomises: adds ``Enc(0) * P1 * P2 * P3`` (three
   fresh uniform plaintext polynomials) and a fresh ``Enc(0)``.

Why step 4: BFV noise grows with the plaintext it is multiplied by. The
consumer knows its own fresh noise ``e`` and its own ciphertext, so without
step 4 it could divide the returned second component by the one it sent, or
read ``e * M`` out of the noise, recover the mask polynomial ``M`` and from
it every ``h_q - h_i`` of the bucket (hashes of low-entropy claims, so
brute-forceable). The fresh ``Enc(0)`` makes the second component
pseudorandom; the flooding term has coefficients around 2**213, about 2**80
times the computation's own noise (at most about 2**130 for honestly
encrypted queries) and still 2**115 below the decryption bound q / 2t. This is
heuristic smudging, not a proof, and it does **not** protect against a
consumer that crafts a ciphertext with huge noise on purpose (it would read
``e * M`` over the flooding): the product must be offered only to
authenticated, approved consumers, rate-limited and audited (the gateway's
job), until a proof of well-formed encryption is added.

The consumer learns one bit (some slot is zero or none is); the platform
learns the product, the bucket and the time.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal as ts  # type: ignore[import-untyped]  # TenSEAL ships no type hints

from sandbox.container.he import wire
from sandbox.container.he.errors import EvaluationFailed, MalformedInput, ProductError
from sandbox.container.he.params import (
    MAX_VERIFY_CIPHERTEXT_BYTES,
    MAX_VERIFY_CONTEXT_BYTES,
    VERIFY_PLAIN_MODULUS,
    VERIFY_SLOTS,
    PublicContext,
    check_ciphertext_shape,
    check_size,
    check_verify_parameters,
    facts,
    load_public_context,
)
from sandbox.container.he.protocol import (
    MAX_BUCKET_BITS,
    VerificationQuery,
    bucket_bits_for,
    bucket_of,
    claim_element,
)

MAX_BANDS = 64
FLOOD_FACTORS = 3  # fresh plaintext polynomials multiplied into the flooding Enc(0)
T = VERIFY_PLAIN_MODULUS


@dataclass(frozen=True)
class Band:
    """A column and public band boundaries; a value's band is ``bisect_right``."""

    column: str
    boundaries: tuple[float, ...]

    def __post_init__(self) -> None:
        b = self.boundaries
        if not 1 <= len(b) < MAX_BANDS:
            raise ProductError(f"a band needs 1 to {MAX_BANDS - 1} boundaries")
        if not all(math.isfinite(x) for x in b) or any(x >= y for x, y in itertools.pairwise(b)):
            raise ProductError("band boundaries must be finite and strictly increasing")

    def value_of(self, value: Any) -> int | None:
        """The band index of ``value``; None for a missing value (never matches)."""
        if value is None:
            return None
        number = float(value)
        if math.isnan(number):
            return None
        return bisect.bisect_right(self.boundaries, number)


@dataclass(frozen=True, eq=False)
class VerificationTable:
    """The product's claim elements per bucket. Server-side only, never exported."""

    product_id: str
    bucket_bits: int
    buckets: Mapping[int, np.ndarray]  # bucket -> uint64 claim elements
    subjects: int

    def largest_bucket(self) -> int:
        return max((len(v) for v in self.buckets.values()), default=0)


def build_table(
    product_id: str,
    rows: Iterable[tuple[str, Any]],
    band: Band,
    *,
    bucket_bits: int | None = None,
) -> VerificationTable:
    """The table of ``product_id`` from (subject key, column value) pairs.

    One value per subject (a repeated subject is refused: the predicate must
    yield one answer). ``bucket_bits`` defaults to ``bucket_bits_for`` the
    number of subjects; a bucket over the slot count is refused.
    """
    values: dict[str, int | None] = {}
    for subject, value in rows:
        if not isinstance(subject, str) or not subject:
            raise ProductError("every subject key must be a non-empty string")
        if subject in values:
            raise ProductError("a subject appears twice; the predicate must give one value")
        values[subject] = band.value_of(value)
    bits = bucket_bits_for(len(values)) if bucket_bits is None else bucket_bits
    if not 0 <= bits <= MAX_BUCKET_BITS:
        raise ProductError(f"bucket bits must be between 0 and {MAX_BUCKET_BITS}")
    grouped: dict[int, list[int]] = {}
    for subject, index in values.items():
        if index is not None:
            grouped.setdefault(bucket_of(subject, bits), []).append(
                claim_element(product_id, subject, index)
            )
    buckets = {b: np.array(v, dtype=np.uint64) for b, v in grouped.items()}
    table = VerificationTable(product_id, bits, buckets, len(values))
    if table.largest_bucket() > VERIFY_SLOTS:
        raise ProductError(
            f"a bucket holds more than {VERIFY_SLOTS} subjects; use more bucket bits"
        )
    return table


def _uniform(count: int, modulus: int) -> np.ndarray:
    """``count`` elements uniform in [0, modulus) from the OS's CSPRNG.

    64 random bits reduced mod a 60-bit modulus: the bias is below 2**-59.
    """
    raw = np.frombuffer(os.urandom(8 * count), dtype=np.uint64)
    return raw % np.uint64(modulus)


def _centered(values: np.ndarray) -> list[int]:
    signed = values.astype(np.int64)
    return np.where(values > np.uint64(T // 2), signed - np.int64(T), signed).tolist()  # type: ignore[no-any-return]


def bucket_slots(table: VerificationTable, bucket: int) -> np.ndarray:
    """The bucket's claim elements padded to the slot count with random
    dummies, in a fresh random order."""
    real = table.buckets.get(bucket, np.empty(0, dtype=np.uint64))
    slots = np.concatenate([real, _uniform(VERIFY_SLOTS - len(real), T)])
    rng = np.random.default_rng(int.from_bytes(os.urandom(32), "big"))
    return slots[rng.permutation(VERIFY_SLOTS)]


def load_context(data: bytes) -> PublicContext:
    """A consumer's BFV public context, checked for this product (see ``params``)."""
    context = load_public_context(data, scheme="bfv", cap=MAX_VERIFY_CONTEXT_BYTES)
    check_verify_parameters(context)
    return PublicContext("verify", context, facts(context), len(data))


def evaluate(
    table: VerificationTable, context: bytes | PublicContext, query: VerificationQuery
) -> bytes:
    """The encrypted answer to ``query``: a BFV vector whose slots decrypt to
    zero where the claim matches and to uniform nonzero elements elsewhere.

    ``context`` is the consumer's serialized public context, or one already
    checked by ``load_context``. Works with a public context only; raises an
    ``HEInputError`` for anything the consumer sent wrong.
    """
    if query.product_id != table.product_id:
        raise MalformedInput("the query names another product")
    if query.bucket_bits != table.bucket_bits:
        raise MalformedInput(f"this product uses {table.bucket_bits} bucket bits")
    if not 0 <= query.bucket < 2**table.bucket_bits:
        raise MalformedInput("the bucket is out of range")
    checked = context if isinstance(context, PublicContext) else load_context(context)
    if checked.purpose != "verify":
        raise MalformedInput("the context was checked for another product kind")
    ctx = checked.context
    check_size(query.ciphertext, MAX_VERIFY_CIPHERTEXT_BYTES, "query ciphertext")
    data = bytes(query.ciphertext)
    if wire.vector_chunks(data) != 1:
        raise MalformedInput("the query must be one ciphertext")
    try:
        claim = ts.bfv_vector_from(ctx, data)
    except Exception as e:
        raise MalformedInput("the query does not parse as a BFV vector") from e
    check_ciphertext_shape(claim, ctx, slots=VERIFY_SLOTS)

    rows = _centered(bucket_slots(table, query.bucket))
    masks = _centered(_uniform(VERIFY_SLOTS, T - 1) + np.uint64(1))
    zeros = [0] * VERIFY_SLOTS
    try:
        answer = (claim - rows) * masks
        flood = ts.bfv_vector(ctx, zeros)
        for _ in range(FLOOD_FACTORS):
            flood = flood * _centered(_uniform(VERIFY_SLOTS, T))
        answer = answer + flood + ts.bfv_vector(ctx, zeros)
        return answer.serialize()  # type: ignore[no-any-return]
    except Exception as e:
        raise EvaluationFailed("the evaluation failed on this query") from e
