"""Encryption parameters of the HE products, and the check of a consumer's context.

Both products use parameters fixed here; a consumer's context must match them
(the server evaluates with exactly what the consumer sent, so the check is the
only place parameters are enforced). The floor is the Homomorphic Encryption
Standard (Albrecht et al., 2018, table 1): 128-bit classical security with a
ternary secret allows a total coefficient modulus of at most 218 bits at
N = 8192, 438 bits at N = 16384 and 881 bits at N = 32768. SEAL (under
TenSEAL) also refuses larger moduli when it loads a context; this check says
so plainly instead of failing somewhere inside SEAL.

Verification (BFV):
  N = 16384 (16384 batching slots: the bucket capacity), SEAL's default
  coefficient modulus for N (438 bits: 389 bits of data modulus plus a 49-bit
  special prime, exactly at the 128-bit bound), plain modulus
  ``VERIFY_PLAIN_MODULUS``, the largest prime below 2**60 that is 1 mod 2N
  (needed for batching). N = 8192 would halve sizes and time, but its 174-bit
  data modulus cannot hold the flooding noise (see ``verify``): measured, the
  flooded answer does not decrypt.

Scoring (CKKS):
  N = 8192, coefficient modulus 60 + 40 + 40 + 60 = 200 bits (<= 218), scale
  2**40: two rescalings (the model product, then the slot mask), about 20
  bits of precision before the integer part. Galois keys are needed (the sum
  over slots rotates); relinearisation keys are not (no ciphertext products).

Invariant: ``load_public_context`` never returns a context holding a secret
key; it refuses one before SEAL parses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import tenseal as ts  # type: ignore[import-untyped]  # TenSEAL ships no type hints

from sandbox.container.he import wire
from sandbox.container.he.errors import (
    InputTooLarge,
    MalformedInput,
    MissingKeys,
    SecretKeyPresent,
    WeakParameters,
    WrongScheme,
)

# HE Standard, 128-bit classical security, ternary secret: max total log2(q).
MAX_COEFF_BITS_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}

VERIFY_POLY_DEGREE = 16384
VERIFY_PLAIN_MODULUS = 1152921504606584833  # prime, 60 bits, == 1 mod 2 * 16384
VERIFY_SLOTS = VERIFY_POLY_DEGREE

SCORE_POLY_DEGREE = 8192
SCORE_COEFF_BITS = (60, 40, 40, 60)
SCORE_SCALE = 2.0**40
SCORE_SLOTS = SCORE_POLY_DEGREE // 2
SCORE_MIN_LEVELS = 2  # rescalings the evaluation needs

# Caps, checked before parsing. Measured sizes (TenSEAL 0.3.18): a BFV public
# context (public key only) about 2 MiB and a query ciphertext 1.8 MiB; a
# CKKS public context with Galois keys about 33 MiB, a 32-feature query 0.33 MiB.
MAX_VERIFY_CONTEXT_BYTES = 4 * 2**20
MAX_VERIFY_CIPHERTEXT_BYTES = 3 * 2**20
MAX_SCORE_CONTEXT_BYTES = 48 * 2**20
MAX_SCORE_CIPHERTEXT_BYTES = 1 * 2**20


@dataclass(frozen=True)
class ContextFacts:
    """What a loaded context says about itself (for the checks and for audit)."""

    scheme: str  # "bfv" or "ckks"
    poly_modulus_degree: int
    coeff_modulus_bits: int  # total, special prime included
    levels: int  # rescalings / modulus switches available from the first data level


@dataclass(frozen=True, eq=False)
class PublicContext:
    """A consumer's context that passed the checks for one product kind.

    Made only by ``verify.load_context`` / ``score.load_context``; the gateway
    can keep one per consumer key and skip parsing it on every call.
    """

    purpose: str  # "verify" or "score"
    context: Any  # tenseal.Context, public only
    facts: ContextFacts
    nbytes: int


def check_size(data: bytes, cap: int, what: str) -> None:
    """Refuse ``data`` over ``cap`` bytes, or empty, before anything parses it."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedInput(f"the {what} must be bytes")
    if len(data) > cap:
        raise InputTooLarge(f"the {what} is {len(data):,} bytes; the limit is {cap:,}")
    if not data:
        raise MalformedInput(f"the {what} is empty")


def facts(context: Any) -> ContextFacts:
    seal = context.seal_context().data
    key_data = seal.key_context_data()
    first = seal.first_context_data()
    scheme = key_data.parms().scheme()
    name = "bfv" if scheme == ts.SCHEME_TYPE.BFV.value else ""
    name = "ckks" if scheme == ts.SCHEME_TYPE.CKKS.value else name
    return ContextFacts(
        scheme=name,
        poly_modulus_degree=int(key_data.parms().poly_modulus_degree()),
        coeff_modulus_bits=int(key_data.total_coeff_modulus_bit_count()),
        levels=int(first.chain_index()),
    )


def check_security_floor(found: ContextFacts) -> None:
    """Refuse parameters under 128-bit security (HE Standard table)."""
    n, bits = found.poly_modulus_degree, found.coeff_modulus_bits
    limit = MAX_COEFF_BITS_128.get(n)
    if limit is None or bits > limit:
        raise WeakParameters(
            f"N = {n} with a {bits}-bit coefficient modulus is below the 128-bit "
            "security floor (HE Standard: at most 218 bits at 8192, 438 at 16384)"
        )


def check_before_parsing(data: bytes, cap: int) -> bytes:
    """The checks of a context that need no SEAL (pure Python, safe anywhere):
    size, no secret key, not symmetric. Returns the bytes as ``bytes``."""
    check_size(data, cap, "context")
    data = bytes(data)
    if wire.context_has_secret_key(data):
        raise SecretKeyPresent(
            "the context carries a secret key; send the public context only "
            "(the platform must never hold a secret key)"
        )
    if wire.context_is_symmetric(data):
        raise MissingKeys("the context is for symmetric encryption; a public key is needed")
    return data


def load_public_context(data: bytes, *, scheme: str, cap: int) -> Any:
    """Parse a consumer's public context, refusing a secret key, the wrong
    scheme, parameters under the floor, or a context without a public key.

    The returned context computes with one thread (the server scales with
    worker processes, not threads).
    """
    data = check_before_parsing(data, cap)
    try:
        context = ts.context_from(data, n_threads=1)
    except Exception as e:  # SEAL raises ValueError / RuntimeError of its own
        raise MalformedInput("the context does not parse as a TenSEAL context") from e
    if context.has_secret_key() or context.is_private():  # defence in depth
        raise SecretKeyPresent("the context carries a secret key; send the public context only")
    if not context.has_public_key():
        raise MissingKeys("the context has no public key")
    found = facts(context)
    if found.scheme != scheme:
        raise WrongScheme(f"this product needs a {scheme.upper()} context, not {found.scheme}")
    check_security_floor(found)
    return context


def check_verify_parameters(context: Any) -> None:
    """The BFV context has exactly the verification parameters."""
    found = facts(context)
    plain_half = context.seal_context().data.first_context_data().plain_upper_half_threshold()
    if found.poly_modulus_degree != VERIFY_POLY_DEGREE or plain_half != (
        (VERIFY_PLAIN_MODULUS + 1) // 2
    ):
        raise WeakParameters(
            f"verification needs N = {VERIFY_POLY_DEGREE} and the product's plain modulus"
        )
    if found.levels < 1:
        raise WeakParameters("the coefficient modulus is too small for the evaluation")


def check_score_parameters(context: Any) -> None:
    """The CKKS context has room for the scoring circuit and Galois keys."""
    found = facts(context)
    if found.poly_modulus_degree < SCORE_POLY_DEGREE:
        raise WeakParameters(f"scoring needs N >= {SCORE_POLY_DEGREE}")
    if found.levels < SCORE_MIN_LEVELS:
        raise WeakParameters(f"scoring needs {SCORE_MIN_LEVELS} rescaling levels")
    scale = context.global_scale
    if not (math.isfinite(scale) and 2.0**20 <= scale <= 2.0**50):
        raise WeakParameters("the context's scale must be between 2**20 and 2**50")
    if not context.has_galois_keys():
        raise MissingKeys("scoring needs Galois keys in the public context")


def check_ciphertext_shape(vector: Any, context: Any, *, slots: int) -> None:
    """One fresh-looking ciphertext: two components, not transparent, at the
    first data level, holding ``slots`` slots.

    A third component would escape the re-randomisation (its product with the
    mask polynomial would come back unchanged) and a transparent one is not an
    encryption at all.
    """
    chunks = vector.ciphertext()
    if len(chunks) != 1:
        raise MalformedInput("the query must be one ciphertext")
    if vector.size() != slots:
        raise MalformedInput(f"the query must hold {slots} slots, not {vector.size()}")
    ct = chunks[0]
    first = context.seal_context().data.first_parms_id()
    if ct.size() != 2 or ct.is_transparent() or ct.parms_id() != first:
        raise MalformedInput("the query is not a fresh two-component ciphertext")
