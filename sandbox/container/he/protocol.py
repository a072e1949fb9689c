"""What the consumer and the server of the verification product agree on.

A claim is "subject S has value V under product P" (V a band index, or 0/1).
Both sides map it to one element of the plaintext field:

    claim_element(P, S, V) = SHA-256("dsr-he-v1/claim" | P | S | V) mod t

(each part length-prefixed, so no two claims share an encoding). The server
holds ``claim_element`` of every (subject, true value) of the product; the
consumer encrypts the element of its claim. Equal elements mean the claim
holds; two different claims collide with probability 1/t (t about 2**60).

The subject is hidden in a bucket: ``bucket_of(S, bits)`` is the first
``bits`` bits of SHA-256("dsr-he-v1/bucket" | S), sent in the clear. It does
not depend on the product, so queries about one subject under several
products all name the same bucket (at the finest product's resolution) and
cannot be intersected to single it out. The platform learns the bucket; with
the default sizing about half the slot count (8,000) of real subjects share it.

False matches: the answer's slot i is ``r_i * (h_q - h_i)``, zero exactly
when ``h_q == h_i`` (t is prime, ``r_i`` nonzero). A slot wrongly reads
"match" only when a different claim's element equals the query's: at most
``VERIFY_SLOTS / t`` = 2**14 / 2**60 = 2**-46 per query, counting the dummy
slots.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from sandbox.container.he.params import VERIFY_PLAIN_MODULUS, VERIFY_SLOTS

DOMAIN_CLAIM = b"dsr-he-v1/claim"
DOMAIN_BUCKET = b"dsr-he-v1/bucket"
MAX_BUCKET_BITS = 24
FALSE_MATCH_BOUND = VERIFY_SLOTS / VERIFY_PLAIN_MODULUS  # per query, about 1.4e-14


@dataclass(frozen=True)
class VerificationQuery:
    """What a consumer sends: the bucket in the clear, the claim encrypted."""

    product_id: str
    bucket_bits: int
    bucket: int
    ciphertext: bytes


def _parts(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def claim_element(product_id: str, subject: str, value: int) -> int:
    """The field element of "``subject`` has ``value`` under ``product_id``"."""
    digest = hashlib.sha256(
        _parts(DOMAIN_CLAIM, product_id.encode(), subject.encode(), str(int(value)).encode())
    ).digest()
    return int.from_bytes(digest, "big") % VERIFY_PLAIN_MODULUS


def bucket_of(subject: str, bits: int) -> int:
    """The bucket of ``subject``: the first ``bits`` bits of its bucket hash."""
    if not 0 <= bits <= MAX_BUCKET_BITS:
        raise ValueError(f"bucket bits must be between 0 and {MAX_BUCKET_BITS}")
    digest = hashlib.sha256(_parts(DOMAIN_BUCKET, subject.encode())).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bits) if bits else 0


def bucket_bits_for(population: int, capacity: int = VERIFY_SLOTS) -> int:
    """The fewest bucket bits that put about ``capacity / 2`` subjects in a bucket.

    Half the capacity leaves room for the binomial spread: at 8,192 expected
    subjects the standard deviation is about 90, so a bucket over 16,384 does
    not happen in practice (``build_table`` refuses one if it does).
    """
    if population <= capacity // 2:
        return 0
    return min(MAX_BUCKET_BITS, math.ceil(math.log2(population / (capacity // 2))))


def centered(value: int, modulus: int = VERIFY_PLAIN_MODULUS) -> int:
    """``value`` mod t as the signed int64 TenSEAL's batch encoder takes."""
    value %= modulus
    return value - modulus if value > modulus // 2 else value
