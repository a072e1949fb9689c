"""What the server refuses: secret keys, the wrong scheme, weak parameters,
oversized or malformed bytes. Every refusal is a ValueError with a plain message."""

from __future__ import annotations

import pytest
import tenseal as ts

from sandbox.container.he import score, verify, wire
from sandbox.container.he.errors import (
    HEInputError,
    InputTooLarge,
    MalformedInput,
    MissingKeys,
    SecretKeyPresent,
    WeakParameters,
    WrongScheme,
)
from sandbox.container.he.params import (
    MAX_COEFF_BITS_128,
    MAX_SCORE_CIPHERTEXT_BYTES,
    MAX_VERIFY_CIPHERTEXT_BYTES,
    MAX_VERIFY_CONTEXT_BYTES,
    VERIFY_PLAIN_MODULUS,
    VERIFY_POLY_DEGREE,
    VERIFY_SLOTS,
    ContextFacts,
    check_security_floor,
)
from sandbox.container.he.protocol import VerificationQuery
from sandbox.container.he.score import LinearModel
from tests.support.he_keys import (
    PRODUCT,
    score_context,
    scoring_keys,
    tax_table,
    verification_keys,
    verify_context,
)

MODEL = LinearModel.of([0.5] * 32, 1.0)


def query_with(ciphertext: bytes) -> VerificationQuery:
    return VerificationQuery(PRODUCT, tax_table().bucket_bits, 0, ciphertext)


def ckks_public_key_only() -> bytes:
    return scoring_keys().context.serialize(save_galois_keys=False, save_relin_keys=False)


def good_query() -> VerificationQuery:
    return verification_keys().encrypt_claim(PRODUCT, "S", 1, bucket_bits=2)


def test_a_context_with_a_secret_key_is_refused_before_parsing() -> None:
    private = verification_keys().context.serialize(save_secret_key=True)
    assert wire.context_has_secret_key(private)
    assert not wire.context_has_secret_key(verification_keys().public_context())
    with pytest.raises(SecretKeyPresent, match="secret key"):
        verify.load_context(private)
    with pytest.raises(SecretKeyPresent):
        verify.evaluate(tax_table(), private, good_query())
    scoring_private = scoring_keys().context.serialize(
        save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )
    with pytest.raises(SecretKeyPresent):
        score.evaluate(MODEL, scoring_private, scoring_keys().encrypt_features([0.0] * 32))


def test_the_wrong_scheme_is_refused() -> None:
    with pytest.raises(WrongScheme, match="BFV"):
        verify.evaluate(tax_table(), ckks_public_key_only(), good_query())
    with pytest.raises(WrongScheme, match="CKKS"):
        score.evaluate(MODEL, verification_keys().public_context(), good_query().ciphertext)
    with pytest.raises(MalformedInput, match="another product kind"):
        verify.evaluate(tax_table(), score_context(), good_query())


def test_parameters_other_than_the_products_are_refused() -> None:
    small = ts.context(ts.SCHEME_TYPE.BFV, 8192, plain_modulus=786433, n_threads=1)
    small.make_context_public()
    with pytest.raises(WeakParameters, match="N = 16384"):
        verify.load_context(small.serialize(save_relin_keys=False))
    other_t = ts.context(ts.SCHEME_TYPE.BFV, VERIFY_POLY_DEGREE, plain_modulus=786433)
    other_t.make_context_public()
    with pytest.raises(WeakParameters, match="plain modulus"):
        verify.load_context(other_t.serialize(save_relin_keys=False))


def test_the_security_floor_follows_the_he_standard() -> None:
    assert MAX_COEFF_BITS_128[8192] == 218 and MAX_COEFF_BITS_128[16384] == 438
    check_security_floor(ContextFacts("bfv", 16384, 438, 8))
    for n, bits in [(16384, 439), (8192, 219), (4096, 110), (1000, 20)]:
        with pytest.raises(WeakParameters, match="128-bit"):
            check_security_floor(ContextFacts("bfv", n, bits, 1))
    # The product's own contexts are at or under the bound.
    assert verify_context().facts.coeff_modulus_bits <= MAX_COEFF_BITS_128[VERIFY_POLY_DEGREE]
    assert score_context().facts.coeff_modulus_bits <= MAX_COEFF_BITS_128[8192]


def test_the_plain_modulus_is_a_batching_prime() -> None:
    t = VERIFY_PLAIN_MODULUS
    assert t.bit_length() == 60 and t % (2 * VERIFY_POLY_DEGREE) == 1
    assert all(pow(a, t - 1, t) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37))


def test_scoring_needs_galois_keys() -> None:
    without = scoring_keys().context.serialize(save_galois_keys=False, save_relin_keys=False)
    with pytest.raises(MissingKeys, match="Galois"):
        score.load_context(without)


def test_sizes_are_capped_before_parsing() -> None:
    with pytest.raises(InputTooLarge, match="limit"):
        verify.load_context(b"\0" * (MAX_VERIFY_CONTEXT_BYTES + 1))
    with pytest.raises(InputTooLarge):
        verify.evaluate(
            tax_table(), verify_context(), query_with(b"\0" * (MAX_VERIFY_CIPHERTEXT_BYTES + 1))
        )
    with pytest.raises(InputTooLarge):
        score.evaluate(MODEL, score_context(), b"\0" * (MAX_SCORE_CIPHERTEXT_BYTES + 1))


@pytest.mark.parametrize("junk", [b"", b"\xff" * 64, b"\x0a\x05abc", b"not a context at all"])
def test_malformed_bytes_are_refused_plainly(junk: bytes) -> None:
    with pytest.raises(HEInputError):
        verify.load_context(junk)
    with pytest.raises(HEInputError):
        verify.evaluate(tax_table(), verify_context(), query_with(junk))
    with pytest.raises(HEInputError):
        score.evaluate(MODEL, score_context(), junk)


def test_a_query_must_be_one_ciphertext_of_the_right_width() -> None:
    keys = verification_keys()
    narrow = ts.bfv_vector(keys.context, [1] * 10).serialize()
    with pytest.raises(MalformedInput, match="16384 slots"):
        verify.evaluate(tax_table(), verify_context(), query_with(narrow))
    context = keys.context.copy()
    context.auto_relin = False
    squared = ts.bfv_vector(context, [1] * VERIFY_SLOTS)
    squared = squared * squared  # three components: one would escape re-randomisation
    assert squared.ciphertext()[0].size() == 3
    with pytest.raises(MalformedInput, match="fresh"):
        verify.evaluate(tax_table(), verify_context(), query_with(squared.serialize()))
    features = scoring_keys().encrypt_features([1.0] * 31)
    with pytest.raises(MalformedInput, match="32 slots"):
        score.evaluate(MODEL, score_context(), features)


def test_a_wrong_product_definition_is_a_value_error() -> None:
    for bad in [([], 0.0), ([float("inf")], 0.0), ([1.0], float("nan"))]:
        with pytest.raises(ValueError):
            LinearModel.of(*bad)
