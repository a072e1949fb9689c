"""Encrypted scoring (CKKS), server side: a linear model's score of features
the server never sees.

The operator's model (coefficients and intercept) was trained on authorized
data and released through the normal output checks; here it is plaintext
input. A consumer sends its public context (public key and Galois keys, no
relinearisation keys needed) and a CKKS vector of the features. ``evaluate``:

1. refuses a secret key, the wrong scheme, parameters under the floor or
   without room for the circuit, a context without Galois keys, and a query
   that is not one fresh two-component ciphertext of exactly ``len(model)``
   slots;
2. computes the dot product with the coefficients (multiply, rotate-and-sum);
3. multiplies by the mask (1, 0, 0, ...): the rotate-and-sum leaves partial
   sums in the other slots, and slot 0 minus slot 1 would be one
   coefficient times one feature;
4. adds a fresh encryption of (intercept + u, v_1, v_2, ...): ``u`` uniform in
   [-resolution/2, resolution/2] blurs the last digits of the score, the
   ``v_j`` uniform in [-1, 1] bury what is left in the other slots, and the
   fresh ciphertext re-randomises the result.

Precision and what the consumer learns. CKKS decryption is approximate: with
scale 2**40 the score comes back within about 1e-6 of the exact dot product
(measured), plus ``u``. The score itself is the product: the consumer learns
it and nothing else per query. But a linear model of d features is fully
determined by d + 1 well-chosen queries (unit vectors), so serving it is
releasing it to whoever may call it often enough: that is why the
coefficients must pass the output checks as a release (degrees-of-freedom
rules) and why calls are rate-limited. ``u`` slows exact extraction (each
coefficient only to about the resolution per query) but does not prevent
it. The CKKS noise of the answer depends on the coefficients; ``u`` is about
2**10 times that noise, which blunts but (as for BFV) does not provably remove
what the noise could tell a consumer who crafts its ciphertext on purpose.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import tenseal as ts  # type: ignore[import-untyped]  # TenSEAL ships no type hints

from sandbox.container.he import wire
from sandbox.container.he.errors import EvaluationFailed, MalformedInput, ProductError
from sandbox.container.he.params import (
    MAX_SCORE_CIPHERTEXT_BYTES,
    MAX_SCORE_CONTEXT_BYTES,
    PublicContext,
    check_ciphertext_shape,
    check_score_parameters,
    check_size,
    facts,
    load_public_context,
)

MAX_FEATURES = 1024
DEFAULT_RESOLUTION = 2.0**-10
_SYSTEM = secrets.SystemRandom()


@dataclass(frozen=True)
class LinearModel:
    """score = intercept + sum(coefficients[j] * features[j]), blurred by ``resolution``."""

    coefficients: tuple[float, ...]
    intercept: float
    resolution: float = DEFAULT_RESOLUTION

    def __post_init__(self) -> None:
        if not 1 <= len(self.coefficients) <= MAX_FEATURES:
            raise ProductError(f"a model needs 1 to {MAX_FEATURES} coefficients")
        numbers = (*self.coefficients, self.intercept, self.resolution)
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in numbers):
            raise ProductError("coefficients, intercept and resolution must be finite numbers")
        if not 0 <= self.resolution <= 1:
            raise ProductError("the resolution must be between 0 and 1")

    @classmethod
    def of(cls, coefficients: Sequence[float], intercept: float, **kw: float) -> LinearModel:
        return cls(tuple(float(c) for c in coefficients), float(intercept), **kw)

    def score(self, features: Sequence[float]) -> float:
        """The plaintext score (for tests and for the operator's own checks)."""
        terms = zip(self.coefficients, features, strict=True)
        return self.intercept + math.fsum(c * x for c, x in terms)


def load_context(data: bytes) -> PublicContext:
    """A consumer's CKKS public context, checked for scoring (see ``params``)."""
    context = load_public_context(data, scheme="ckks", cap=MAX_SCORE_CONTEXT_BYTES)
    check_score_parameters(context)
    return PublicContext("score", context, facts(context), len(data))


def evaluate(model: LinearModel, context: bytes | PublicContext, query: bytes) -> bytes:
    """The encrypted score of the encrypted features ``query``; only slot 0
    means anything. ``context`` is the consumer's serialized public context,
    or one already checked by ``load_context``. Works with a public context
    only; raises an ``HEInputError`` for anything the consumer sent wrong.
    """
    checked = context if isinstance(context, PublicContext) else load_context(context)
    if checked.purpose != "score":
        raise MalformedInput("the context was checked for another product kind")
    ctx = checked.context
    check_size(query, MAX_SCORE_CIPHERTEXT_BYTES, "query ciphertext")
    data = bytes(query)
    if wire.vector_chunks(data) != 1:
        raise MalformedInput("the query must be one ciphertext")
    try:
        features = ts.ckks_vector_from(ctx, data)
    except Exception as e:
        raise MalformedInput("the query does not parse as a CKKS vector") from e
    check_ciphertext_shape(features, ctx, slots=len(model.coefficients))

    slots = ctx.seal_context().data.first_context_data().parms().poly_modulus_degree() // 2
    half = model.resolution / 2
    blind = [model.intercept + _SYSTEM.uniform(-half, half)]
    blind += [_SYSTEM.uniform(-1.0, 1.0) for _ in range(slots - 1)]
    try:
        score = features.dot(list(model.coefficients)) * [1.0]
        noise = ts.ckks_vector_from(ctx, wire.with_size(ts.ckks_vector(ctx, blind).serialize(), 1))
        return (score + noise).serialize()  # type: ignore[no-any-return]
    except Exception as e:
        raise EvaluationFailed("the evaluation failed on this query") from e
