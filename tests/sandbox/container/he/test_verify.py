"""Encrypted verification: right answers, randomised non-answers, nothing else."""

from __future__ import annotations

import pytest
import tenseal as ts

from sandbox.container.he import verify
from sandbox.container.he.errors import HEInputError, MalformedInput, ProductError
from sandbox.container.he.params import VERIFY_PLAIN_MODULUS as T
from sandbox.container.he.params import VERIFY_SLOTS, PublicContext
from sandbox.container.he.protocol import VerificationQuery, bucket_of, claim_element
from sandbox.container.he.verify import Band
from tests.support.he_keys import (
    PRODUCT,
    TAX_BANDS,
    tax_rows,
    tax_table,
    verification_keys,
    verify_context,
)

SUBJECT, TAX = tax_rows()[123]
TRUE_BAND = TAX_BANDS.value_of(TAX)


def ask(subject: str, claim: int, context: bytes | PublicContext | None = None) -> bytes:
    keys = verification_keys()
    query = keys.encrypt_claim(PRODUCT, subject, claim, bucket_bits=tax_table().bucket_bits)
    return verify.evaluate(tax_table(), context or verify_context(), query)


def bucket_elements(subject: str) -> set[int]:
    bucket = bucket_of(subject, tax_table().bucket_bits)
    return {int(x) for x in tax_table().buckets[bucket]}


def test_a_true_claim_matches() -> None:
    answer = ask(SUBJECT, TRUE_BAND)
    assert verification_keys().read_answer(answer) is True
    slots = verification_keys().decrypt_slots(answer)
    assert slots.count(0) == 1  # one row matched, every other slot is nonzero


def test_the_wrong_band_does_not_match() -> None:
    for claim in {0, 1, 2, 3} - {TRUE_BAND}:
        assert verification_keys().read_answer(ask(SUBJECT, claim)) is False


def test_an_absent_subject_does_not_match() -> None:
    for claim in range(4):
        assert verification_keys().read_answer(ask("91500000MA99999999", claim)) is False


def test_a_yes_no_predicate() -> None:
    months = Band("insured_months", (24.0,))  # 0: under 24 months, 1: 24 or more
    table = verify.build_table("si-24", [("P1", 30), ("P2", 12), ("P3", None)], months)
    keys = verification_keys()

    def asks(subject: str, claim: int) -> bool:
        query = keys.encrypt_claim("si-24", subject, claim, bucket_bits=table.bucket_bits)
        return keys.read_answer(verify.evaluate(table, verify_context(), query))

    assert asks("P1", 1) and not asks("P1", 0)
    assert asks("P2", 0) and not asks("P2", 1)
    assert not asks("P3", 0) and not asks("P3", 1)  # a missing value never matches


def test_claims_do_not_match_across_products() -> None:
    keys = verification_keys()
    query = keys.encrypt_claim("other-product", SUBJECT, TRUE_BAND, bucket_bits=2)
    forged = VerificationQuery(PRODUCT, query.bucket_bits, query.bucket, query.ciphertext)
    assert keys.read_answer(verify.evaluate(tax_table(), verify_context(), forged)) is False


def test_non_answers_are_fresh_randomness() -> None:
    wrong = (TRUE_BAND + 1) % 4
    first = verification_keys().decrypt_slots(ask(SUBJECT, wrong))
    second = verification_keys().decrypt_slots(ask(SUBJECT, wrong))
    assert 0 not in first and 0 not in second
    assert first != second
    assert len(set(first) & set(second)) <= 1  # two draws of 16384 from 2**60 values
    # No slot shows a stored element, the query's element or a raw difference.
    stored = bucket_elements(SUBJECT)
    asked = claim_element(PRODUCT, SUBJECT, wrong)
    revealing = (
        stored | {asked} | {(asked - h) % T for h in stored} | {(h - asked) % T for h in stored}
    )
    assert not revealing & (set(first) | set(second))


def test_a_match_reveals_only_the_zero() -> None:
    slots = verification_keys().decrypt_slots(ask(SUBJECT, TRUE_BAND))
    stored = bucket_elements(SUBJECT)
    asked = claim_element(PRODUCT, SUBJECT, TRUE_BAND)
    revealing = stored | {(asked - h) % T for h in stored} | {(h - asked) % T for h in stored}
    assert revealing & set(slots) == {0}  # the matching row's difference, nothing else


def test_the_zero_moves_between_answers() -> None:
    positions = {verification_keys().decrypt_slots(ask(SUBJECT, TRUE_BAND)).index(0) for _ in "ab"}
    assert len(positions) == 2  # fresh shuffle per query (equal with probability 1/16384)


def test_an_answer_read_with_another_key_is_garbage() -> None:
    answer = ask(SUBJECT, TRUE_BAND)
    other = verification_keys(1)
    assert other.read_answer(answer) is False
    assert len(set(other.decrypt_slots(answer))) > VERIFY_SLOTS // 2


def test_the_server_side_uses_a_public_context_only() -> None:
    public = verification_keys().public_context()
    assert not ts.context_from(public).has_secret_key()
    checked = verify.load_context(public)
    assert checked.context.is_public() and not checked.context.has_secret_key()
    # Plain bytes in, bytes out, and the answer still decodes under the consumer's key.
    assert verification_keys().read_answer(ask(SUBJECT, TRUE_BAND, context=public)) is True


def test_the_bucket_hides_the_subject_among_many() -> None:
    table = tax_table()
    bucket = bucket_of(SUBJECT, table.bucket_bits)
    assert len(table.buckets[bucket]) > 500  # 3000 subjects over 4 buckets
    assert table.largest_bucket() <= VERIFY_SLOTS


def test_a_query_for_another_bucket_setting_is_refused() -> None:
    keys = verification_keys()
    query = keys.encrypt_claim(PRODUCT, SUBJECT, TRUE_BAND, bucket_bits=3)
    with pytest.raises(MalformedInput, match="bucket bits"):
        verify.evaluate(tax_table(), verify_context(), query)
    other = VerificationQuery("other", 2, 0, query.ciphertext)
    with pytest.raises(MalformedInput, match="another product"):
        verify.evaluate(tax_table(), verify_context(), other)
    out_of_range = VerificationQuery(PRODUCT, 2, 4, query.ciphertext)
    with pytest.raises(MalformedInput, match="out of range"):
        verify.evaluate(tax_table(), verify_context(), out_of_range)


def test_products_refuse_bad_definitions() -> None:
    with pytest.raises(ProductError, match="twice"):
        verify.build_table("p", [("A", 1), ("A", 2)], Band("x", (1.0,)))
    for boundaries in [(), (2.0, 1.0), (float("nan"),), tuple(float(i) for i in range(64))]:
        with pytest.raises(ProductError):
            Band("x", boundaries)
    crowded = [(f"S{i}", 1) for i in range(VERIFY_SLOTS + 1)]
    with pytest.raises(ProductError, match="bucket bits"):
        verify.build_table("p", crowded, Band("x", (1.0,)), bucket_bits=0)
    assert issubclass(ProductError, ValueError) and issubclass(HEInputError, ValueError)


def test_table_sizing_picks_enough_bucket_bits() -> None:
    table = verify.build_table("p", [(f"S{i}", i % 3) for i in range(40_000)], Band("x", (1.0,)))
    assert table.bucket_bits == 3  # 40,000 / 8 = 5,000 per bucket on average
    assert table.largest_bucket() <= VERIFY_SLOTS
