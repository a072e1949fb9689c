"""Check-character algorithms, generators and validators of ``sandbox.synthetic.identifiers``."""

from __future__ import annotations

import datetime
import random

import pytest

from sandbox.synthetic.identifiers import (
    COMMON_MOBILE_PREFIXES,
    CREDIT_CODE_ALPHABET,
    DISTRICTS,
    MOBILE_PREFIXES,
    credit_code,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_mobile,
    is_valid_resident_id,
    mobile,
    org_code_check_char,
    parse_resident_id,
    resident_id,
    resident_id_check_char,
)

N = 3_000

# Published examples: GB 11643-1999's own examples, and credit codes of large companies.
KNOWN_RESIDENT_IDS = ["11010519491231002X", "440524188001010014"]
KNOWN_CREDIT_CODES = [
    "91350100M000100Y43",
    "914403001922038216",
    "9144030071526726XG",
    "91330100716105852F",
    "91110108551385082Q",
    "91440300708461136T",
]


# --- resident identity number ------------------------------------------------


@pytest.mark.parametrize("s", KNOWN_RESIDENT_IDS)
def test_known_resident_ids_are_valid(s: str) -> None:
    assert is_valid_resident_id(s)
    assert resident_id_check_char(s[:17]) == s[17]


def test_resident_id_check_char_by_hand() -> None:
    # 1*7 + 1*9 + 0 + 1*5 + 0 + 5*4 + 1*2 + 9*1 + 4*6 + 9*3 + 1*7 + 2*9 + 3*10 + 1*5 + 0 + 0 + 2*2
    assert (7 + 9 + 5 + 20 + 2 + 9 + 24 + 27 + 7 + 18 + 30 + 5 + 4) % 11 == 2
    assert resident_id_check_char("11010519491231002") == "X"


def test_resident_id_round_trip_and_fields() -> None:
    rng = random.Random(1)
    seen = set()
    for _ in range(N):
        s = resident_id(rng)
        seen.add(s)
        info = parse_resident_id(s)
        assert is_valid_resident_id(s)
        assert info.district in DISTRICTS
        assert datetime.date(1940, 1, 1) <= info.birth <= datetime.date(2007, 12, 31)
        assert s[6:14] == info.birth.strftime("%Y%m%d")
    assert len(seen) > N * 0.99


def test_resident_id_arguments_are_honoured() -> None:
    rng = random.Random(2)
    birth = datetime.date(2000, 2, 29)
    for male in (True, False):
        for _ in range(200):
            s = resident_id(rng, district="500103", birth=birth, male=male)
            assert parse_resident_id(s) == ("500103", birth, male)
            assert int(s[14:17]) % 2 == (1 if male else 0)
            assert s[14:17] != "000"
    with pytest.raises(ValueError):
        resident_id(rng, district="5001")


def test_resident_id_is_deterministic() -> None:
    assert [resident_id(random.Random(9)) for _ in range(3)] == [
        resident_id(random.Random(9)) for _ in range(3)
    ]


def test_every_single_character_corruption_is_detected() -> None:
    rng = random.Random(3)
    for _ in range(200):
        s = resident_id(rng)
        for i in range(18):
            for c in "0123456789X":
                if c != s[i]:
                    assert not is_valid_resident_id(s[:i] + c + s[i + 1 :]), (s, i, c)


@pytest.mark.parametrize(
    "s",
    [
        "",
        "11010519491231002",  # too short
        "11010519491231002XX",  # too long
        "11010519491231002x",  # lower-case x
        "1101051949123100\uff12X",  # full-width digit
        "990105194912310020",  # no province 99
        "110105194902300028",  # 30 February
        "110105194913010025",  # month 13
    ],
)
def test_malformed_resident_ids_are_rejected(s: str) -> None:
    assert not is_valid_resident_id(s)


# --- organisation code and unified social credit code ------------------------


@pytest.mark.parametrize("s", KNOWN_CREDIT_CODES)
def test_known_credit_codes_are_valid(s: str) -> None:
    assert is_valid_credit_code(s)
    assert credit_code_check_char(s[:17]) == s[17]
    assert org_code_check_char(s[8:16]) == s[16]


def test_org_code_check_char_by_hand() -> None:
    # M=22, Y=34 in GB 11714: 22*3 + 1*5 + 34*2 = 139; 139 % 11 = 7; 11 - 7 = 4
    assert org_code_check_char("M000100Y") == "4"
    assert org_code_check_char("00000000") == "0"  # 11 - 0 = 11 -> "0"


def test_credit_code_round_trip() -> None:
    rng = random.Random(4)
    codes = [credit_code(rng) for _ in range(N)]
    assert len(set(codes)) == N
    for s in codes:
        assert is_valid_credit_code(s)
        assert s[:2] == "91" and s[2:8] in DISTRICTS
        assert set(s) <= set(CREDIT_CODE_ALPHABET)
    assert any(s[8:10] == "MA" for s in codes) and any(s[8:16].isdigit() for s in codes)
    assert credit_code(rng, district="500112", kind="93")[:8] == "93500112"


def test_credit_code_detects_every_single_substitution() -> None:
    rng = random.Random(5)
    for _ in range(100):
        s = credit_code(rng)
        for i in range(18):
            for c in CREDIT_CODE_ALPHABET:
                if c != s[i]:
                    t = s[:i] + c + s[i + 1 :]
                    assert not is_valid_credit_code(t, check_org_code=False), (s, i, c)


def test_org_code_check_is_enforced_separately() -> None:
    s = "91350100M000100Y43"
    wrong_org = s[:16] + "5"
    fixed = wrong_org + credit_code_check_char(wrong_org)
    assert not is_valid_credit_code(fixed)
    assert is_valid_credit_code(fixed, check_org_code=False)


@pytest.mark.parametrize(
    "s",
    [
        "",
        "91350100M000100Y4",  # too short
        "91350100m000100y43",  # lower case
        "91350100M000100I43",  # I is not in the alphabet
        "9135A100M000100Y43",  # division code not digits
    ],
)
def test_malformed_credit_codes_are_rejected(s: str) -> None:
    assert not is_valid_credit_code(s)


# --- mobile numbers ----------------------------------------------------------


def test_mobiles_use_real_prefixes() -> None:
    rng = random.Random(6)
    numbers = [mobile(rng) for _ in range(N)]
    for s in numbers:
        assert is_valid_mobile(s)
        assert len(s) == 11 and s[0] == "1" and s[1] in "356789"
        assert s[:3] in COMMON_MOBILE_PREFIXES
    assert {s[:3] for s in numbers} == set(COMMON_MOBILE_PREFIXES)
    assert set(COMMON_MOBILE_PREFIXES) <= set(MOBILE_PREFIXES)


@pytest.mark.parametrize(
    "s", ["", "1380013800", "138001380000", "12000138000", "1380013800a", "+8613800138000"]
)
def test_malformed_mobiles_are_rejected(s: str) -> None:
    assert not is_valid_mobile(s)


def test_district_table() -> None:
    assert DISTRICTS["500103"] == "渝中区" and DISTRICTS["500112"] == "渝北区"
    assert all(len(c) == 6 and c.startswith("50") for c in DISTRICTS)
