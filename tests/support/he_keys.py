"""Key pairs and small products shared by the HE tests (made once per session:
key generation is the slow part)."""

from __future__ import annotations

import functools

from sandbox.container.he import score, verify
from sandbox.container.he.params import PublicContext
from sandbox.container.he.verify import Band, VerificationTable
from sandbox.he.client import ScoringKeys, VerificationKeys

PRODUCT = "tax-band"
TAX_BANDS = Band("annual_tax", (10_000.0, 50_000.0, 200_000.0))  # bands 0..3


@functools.cache
def verification_keys(n: int = 0) -> VerificationKeys:
    """Consumer ``n``'s BFV keys."""
    return VerificationKeys.make()


@functools.cache
def scoring_keys(n: int = 0) -> ScoringKeys:
    return ScoringKeys.make()


@functools.cache
def verify_context() -> PublicContext:
    return verify.load_context(verification_keys().public_context())


@functools.cache
def score_context() -> PublicContext:
    return score.load_context(scoring_keys().public_context())


def tax_rows(count: int = 3000) -> list[tuple[str, float]]:
    """Enterprises with annual tax spread over every band."""
    return [(f"91500000MA{i:08d}", float((i * 7919) % 400_000)) for i in range(count)]


@functools.cache
def tax_table() -> VerificationTable:
    return verify.build_table(PRODUCT, tax_rows(), TAX_BANDS, bucket_bits=2)
