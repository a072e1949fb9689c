"""Realistic-in-form Chinese identifiers, and validators for them.

Synthetic data (dummy views, the demo city, benchmarks) should look like the
real thing to the checks that inspect it: a resident identity number with a
correct check character, a unified social credit code that passes both of its
check characters, a mobile number on a real carrier prefix. This module makes
such values and validates them. Nothing here is real personal data; the
values are random and only their *form* is real.

Invariants:

- every generator is a pure function of the ``random.Random`` it is given (and
  its keyword arguments): the same seed gives the same values;
- every generated value passes its validator, and validators never raise;
- validators check form only (lengths, alphabets, dates, check characters,
  prefixes), never whether a value was actually issued to anyone;
- check characters follow the standards exactly: GB 11643 (resident identity
  number, ISO 7064 MOD 11-2), GB 11714 (organisation code, MOD 11) and
  GB 32100-2015 (unified social credit code, MOD 31).
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

# --- administrative divisions ------------------------------------------------

#: The districts of Chongqing (重庆市) with their administrative division codes (GB/T 2260).
DISTRICTS: Mapping[str, str] = MappingProxyType(
    {
        "500101": "万州区",
        "500102": "涪陵区",
        "500103": "渝中区",
        "500104": "大渡口区",
        "500105": "江北区",
        "500106": "沙坪坝区",
        "500107": "九龙坡区",
        "500108": "南岸区",
        "500109": "北碚区",
        "500110": "綦江区",
        "500111": "大足区",
        "500112": "渝北区",
        "500113": "巴南区",
        "500114": "黔江区",
        "500115": "长寿区",
        "500116": "江津区",
        "500117": "合川区",
        "500118": "永川区",
        "500119": "南川区",
        "500120": "璧山区",
        "500151": "铜梁区",
        "500152": "潼南区",
        "500153": "荣昌区",
        "500154": "开州区",
        "500155": "梁平区",
        "500156": "武隆区",
    }
)

#: First two digits of every province-level division code (incl. Taiwan, Hong Kong, Macao).
PROVINCE_CODES: frozenset[str] = frozenset(
    (
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34",
        "35", "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52",
        "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
    )
)  # fmt: skip

# --- resident identity number (GB 11643, ISO 7064 MOD 11-2) ------------------

RESIDENT_ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK_MAP = "10X98765432"

_BIRTH_MIN = datetime.date(1940, 1, 1)
_BIRTH_MAX = datetime.date(2007, 12, 31)
_DIGITS = frozenset("0123456789")


class ResidentIdInfo(NamedTuple):
    """What a resident identity number says about its holder."""

    district: str
    birth: datetime.date
    male: bool


def resident_id_check_char(body: str) -> str:
    """The MOD 11-2 check character for the first 17 digits of a resident ID."""
    if len(body) != 17 or not _DIGITS.issuperset(body):
        raise ValueError("a resident ID body is 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(body, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK_MAP[total % 11]


def _district_or_random(rng: random.Random, district: str | None) -> str:
    if district is None:
        return rng.choice(sorted(DISTRICTS))
    if len(district) != 6 or not _DIGITS.issuperset(district):
        raise ValueError("a division code is 6 ASCII digits")
    return district


def resident_id(
    rng: random.Random,
    *,
    district: str | None = None,
    birth: datetime.date | None = None,
    male: bool | None = None,
) -> str:
    """An 18-character resident identity number (居民身份证号码).

    Division code (a Chongqing district unless ``district`` is given), birth
    date ``YYYYMMDD`` (uniform over 1940-2007 unless given), a 3-digit sequence
    number whose parity is the sex (odd = male), and the check character.
    """
    code = _district_or_random(rng, district)
    if birth is None:
        span = (_BIRTH_MAX - _BIRTH_MIN).days
        birth = _BIRTH_MIN + datetime.timedelta(days=rng.randint(0, span))
    if male is None:
        male = rng.random() < 0.5
    sequence = 2 * rng.randint(0, 498) + (1 if male else 2)  # 001..997 odd, 002..998 even
    body = f"{code}{birth:%Y%m%d}{sequence:03d}"
    return body + resident_id_check_char(body)


def parse_resident_id(s: str) -> ResidentIdInfo:
    """Division code, birth date and sex of a valid resident ID; ``ValueError`` otherwise."""
    if len(s) != 18 or not _DIGITS.issuperset(s[:17]) or s[17] not in RESIDENT_ID_CHECK_MAP:
        raise ValueError("not 17 digits followed by a digit or X")
    if s[:2] not in PROVINCE_CODES:
        raise ValueError("unknown province code")
    try:
        birth = datetime.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("birth date is not a real date") from None
    if birth.year < 1800:
        raise ValueError("birth date is implausibly early")
    if resident_id_check_char(s[:17]) != s[17]:
        raise ValueError("check character does not match")
    return ResidentIdInfo(district=s[:6], birth=birth, male=int(s[16]) % 2 == 1)


def is_valid_resident_id(s: str) -> bool:
    """Whether ``s`` has the form of a resident ID: digits, province, real date, check char.

    The check character must be an upper-case ``X`` where it is a letter.
    """
    try:
        parse_resident_id(s)
    except ValueError:
        return False
    return True


# --- organisation code (GB 11714) and unified social credit code (GB 32100) --

ORG_CODE_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
CREDIT_CODE_WEIGHTS: tuple[int, ...] = (
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
)  # fmt: skip
_CREDIT_VALUES = {c: i for i, c in enumerate(CREDIT_CODE_ALPHABET)}

#: Registration authority + organisation type pairs (GB 32100-2015 appendix), for reference.
CREDIT_CODE_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "11": "机构编制: 机关",
        "12": "机构编制: 事业单位",
        "13": "机构编制: 中央编办直接管理机构编制的群众团体",
        "19": "机构编制: 其他",
        "51": "民政: 社会团体",
        "52": "民政: 民办非企业单位",
        "53": "民政: 基金会",
        "59": "民政: 其他",
        "91": "工商: 企业",
        "92": "工商: 个体工商户",
        "93": "工商: 农民专业合作社",
        "Y1": "其他",
    }
)


def org_code_check_char(body: str) -> str:
    """The GB 11714 check character for an 8-character organisation code body.

    Characters count 0-9 for digits and 10-35 for ``A``-``Z``; the check is
    ``11 - sum % 11`` written as ``X`` for 10 and ``0`` for 11.
    """
    if len(body) != 8 or not all(c in _DIGITS or "A" <= c <= "Z" for c in body):
        raise ValueError("an organisation code body is 8 digits or upper-case letters")
    total = sum(int(c, 36) * w for c, w in zip(body, ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def credit_code_check_char(body: str) -> str:
    """The GB 32100 MOD 31 check character for the first 17 characters of a credit code."""
    if len(body) != 17 or not all(c in _CREDIT_VALUES for c in body):
        raise ValueError(f"a credit code body is 17 characters of {CREDIT_CODE_ALPHABET}")
    total = sum(_CREDIT_VALUES[c] * w for c, w in zip(body, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def credit_code(rng: random.Random, *, district: str | None = None, kind: str = "91") -> str:
    """An 18-character unified social credit code (统一社会信用代码).

    ``kind`` is the registration authority and organisation type (default
    ``91``, an enterprise registered with market regulation); then the division
    code, a 9-character organisation code with its GB 11714 check character,
    and the GB 32100 check character. Half the organisation codes are legacy
    all-digit ones, half the ``MA…`` form issued since 2015.
    """
    if len(kind) != 2 or not all(c in _CREDIT_VALUES for c in kind):
        raise ValueError(f"kind is 2 characters of {CREDIT_CODE_ALPHABET}")
    code = _district_or_random(rng, district)
    if rng.random() < 0.5:
        org = f"{rng.randrange(10**8):08d}"
    else:
        org = "MA" + "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(6))
    body = kind + code + org + org_code_check_char(org)
    return body + credit_code_check_char(body)


def is_valid_credit_code(s: str, *, check_org_code: bool = True) -> bool:
    """Whether ``s`` has the form of a unified social credit code.

    18 characters of the GB 32100 alphabet (upper case), a 6-digit division
    code in positions 3-8, the MOD 31 check character, and (unless
    ``check_org_code`` is false) the GB 11714 check character of the embedded
    organisation code.
    """
    if len(s) != 18 or not all(c in _CREDIT_VALUES for c in s):
        return False
    if not _DIGITS.issuperset(s[2:8]):
        return False
    if check_org_code and org_code_check_char(s[8:16]) != s[16]:
        return False
    return credit_code_check_char(s[:17]) == s[17]


# --- mobile numbers ----------------------------------------------------------

_CARRIER_PREFIXES = {
    "中国移动": "134 135 136 137 138 139 147 148 150 151 152 157 158 159 172 178 "
    "182 183 184 187 188 195 197 198",
    "中国联通": "130 131 132 145 146 155 156 166 175 176 185 186 196",
    "中国电信": "133 149 153 173 177 180 181 189 190 191 193 199",
    "中国广电": "192",
    "虚拟运营商": "162 165 167 170 171",
}

#: Mainland 11-digit mobile number prefixes and their carriers.
MOBILE_PREFIXES: Mapping[str, str] = MappingProxyType(
    {p: carrier for carrier, ps in _CARRIER_PREFIXES.items() for p in ps.split()}
)

#: The prefixes ``mobile`` draws from: the big carriers' voice segments (no 14x data segments).
COMMON_MOBILE_PREFIXES: tuple[str, ...] = tuple(
    sorted(p for p, c in MOBILE_PREFIXES.items() if c != "虚拟运营商" and not p.startswith("14"))
)


def mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number on a real carrier prefix."""
    return rng.choice(COMMON_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def is_valid_mobile(s: str) -> bool:
    """Whether ``s`` is 11 ASCII digits starting with a known carrier prefix."""
    return len(s) == 11 and _DIGITS.issuperset(s) and s[:3] in MOBILE_PREFIXES
