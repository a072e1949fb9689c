"""The consumer's side of the HE products: keys, queries, answers.

The secret key is made here and stays here: ``public_context()`` serializes
the context without it (and without keys the product does not need), and that
is all the server ever receives besides ciphertexts.

    keys = VerificationKeys.make()
    query = keys.encrypt_claim("tax-band", "91500000MA5U000000", 3, bucket_bits=7)
    answer = verify.evaluate(table, keys.public_context(), query)   # server side
    keys.read_answer(answer)                                       # True / False

    keys = ScoringKeys.make()
    answer = score.evaluate(model, keys.public_context(), keys.encrypt_features(x))
    keys.read_score(answer)                                        # float
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tenseal as ts  # type: ignore[import-untyped]  # TenSEAL ships no type hints

from sandbox.container.he.errors import MalformedInput
from sandbox.container.he.params import (
    SCORE_COEFF_BITS,
    SCORE_POLY_DEGREE,
    SCORE_SCALE,
    VERIFY_PLAIN_MODULUS,
    VERIFY_POLY_DEGREE,
    VERIFY_SLOTS,
)
from sandbox.container.he.protocol import VerificationQuery, bucket_of, centered, claim_element


def _decode(context: Any, data: bytes, loader: Any) -> Any:
    try:
        return loader(context, data)
    except Exception as e:
        raise MalformedInput("the answer does not parse under this key") from e


@dataclass(frozen=True, eq=False)
class VerificationKeys:
    """A BFV key pair for the verification product (secret key included)."""

    context: Any  # tenseal.Context, private

    @classmethod
    def make(cls) -> VerificationKeys:
        context = ts.context(
            ts.SCHEME_TYPE.BFV,
            poly_modulus_degree=VERIFY_POLY_DEGREE,
            plain_modulus=VERIFY_PLAIN_MODULUS,
        )
        return cls(context)

    def public_context(self) -> bytes:
        """The context to send: public key only (no secret, relin or Galois keys)."""
        return self.context.serialize(  # type: ignore[no-any-return]
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )

    def encrypt_claim(
        self, product_id: str, subject: str, claim: int, *, bucket_bits: int
    ) -> VerificationQuery:
        """The query for "``subject`` has value ``claim`` under ``product_id``"."""
        element = centered(claim_element(product_id, subject, claim))
        vector = ts.bfv_vector(self.context, [element] * VERIFY_SLOTS)
        return VerificationQuery(
            product_id, bucket_bits, bucket_of(subject, bucket_bits), vector.serialize()
        )

    def decrypt_slots(self, answer: bytes) -> list[int]:
        """Every slot of an answer, as elements of [0, t). For tests and audits."""
        vector = _decode(self.context, answer, ts.bfv_vector_from)
        return [v % VERIFY_PLAIN_MODULUS for v in vector.decrypt()]

    def read_answer(self, answer: bytes) -> bool:
        """True iff the record agrees with the claim (some slot is zero)."""
        return 0 in self.decrypt_slots(answer)


@dataclass(frozen=True, eq=False)
class ScoringKeys:
    """A CKKS key pair for the scoring product (secret key included)."""

    context: Any  # tenseal.Context, private

    @classmethod
    def make(cls) -> ScoringKeys:
        context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=SCORE_POLY_DEGREE,
            coeff_mod_bit_sizes=list(SCORE_COEFF_BITS),
        )
        context.global_scale = SCORE_SCALE
        context.generate_galois_keys()
        return cls(context)

    def public_context(self) -> bytes:
        """The context to send: public and Galois keys (no secret or relin keys)."""
        return self.context.serialize(  # type: ignore[no-any-return]
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=True,
            save_relin_keys=False,
        )

    def encrypt_features(self, features: Sequence[float]) -> bytes:
        return ts.ckks_vector(self.context, [float(x) for x in features]).serialize()  # type: ignore[no-any-return]

    def read_score(self, answer: bytes) -> float:
        vector = _decode(self.context, answer, ts.ckks_vector_from)
        return float(vector.decrypt()[0])
