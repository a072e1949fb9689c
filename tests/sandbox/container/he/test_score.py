"""Encrypted scoring: the score, within CKKS precision, and nothing else."""

from __future__ import annotations

import random

from sandbox.container.he import score, wire
from sandbox.container.he.params import SCORE_SLOTS
from sandbox.container.he.score import LinearModel
from tests.support.he_keys import score_context, scoring_keys

RNG = random.Random(7)
MODEL = LinearModel.of([RNG.uniform(-2, 2) for _ in range(32)], -0.75)
FEATURES = [RNG.uniform(-3, 3) for _ in range(32)]
TOLERANCE = MODEL.resolution / 2 + 1e-4  # the blur, plus CKKS error (about 1e-6 measured)


def all_slots(answer: bytes) -> list[float]:
    """Every CKKS slot of an answer, as a consumer with raw SEAL could read them."""
    import tenseal as ts

    vector = ts.ckks_vector_from(scoring_keys().context, wire.with_size(answer, SCORE_SLOTS))
    return list(vector.decrypt())


def test_the_score_matches_the_plaintext_dot_product() -> None:
    keys = scoring_keys()
    for features in (FEATURES, [0.0] * 32, [1.0] * 32):
        answer = score.evaluate(MODEL, score_context(), keys.encrypt_features(features))
        assert abs(keys.read_score(answer) - MODEL.score(features)) <= TOLERANCE


def test_the_server_works_from_the_public_bytes() -> None:
    keys = scoring_keys()
    answer = score.evaluate(MODEL, keys.public_context(), keys.encrypt_features(FEATURES))
    assert abs(keys.read_score(answer) - MODEL.score(FEATURES)) <= TOLERANCE
    assert score_context().context.is_public()


def test_other_slots_hold_fresh_randomness_not_partial_sums() -> None:
    keys = scoring_keys()
    query = keys.encrypt_features(FEATURES)
    first = all_slots(score.evaluate(MODEL, score_context(), query))
    second = all_slots(score.evaluate(MODEL, score_context(), query))
    assert abs(first[0] - MODEL.score(FEATURES)) <= TOLERANCE
    # Partial sums of the rotate-and-sum would leak single terms c_j * x_j.
    terms = [c * x for c, x in zip(MODEL.coefficients, FEATURES, strict=True)]
    # Unmasked, slot j - 1 minus slot j would be terms[j - 1] (to about 1e-6).
    leaks = [abs(first[j - 1] - first[j] - terms[j - 1]) < 1e-4 for j in range(2, 32)]
    assert sum(leaks) <= 1
    assert all(abs(v) <= 1.01 for v in first[1:])
    assert sum(abs(a - b) > 1e-3 for a, b in zip(first[1:], second[1:], strict=True)) > 4000
    assert first[0] != second[0]  # the blur is fresh per answer


def test_an_answer_read_with_another_key_is_garbage() -> None:
    answer = score.evaluate(MODEL, score_context(), scoring_keys().encrypt_features(FEATURES))
    assert abs(scoring_keys(1).read_score(answer) - MODEL.score(FEATURES)) > 1.0
