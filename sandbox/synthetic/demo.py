"""A synthetic city for demos, tests and benchmarks, generated at run time.

``generate_city`` writes four Parquet tables about a made-up Chongqing:
``residents``, ``enterprises``, ``social_insurance`` (person x month) and
``tax_payments`` (enterprise x quarter x tax type). The data is generated,
never committed, and describes nobody: identifiers have a real *form* (see
``sandbox.synthetic.identifiers``) but random content.

Invariants:

- deterministic: the same arguments give the same rows (for the same Faker
  and numpy versions); "now" is the fixed ``as_of`` date, never the clock;
- ``person_id`` and ``credit_code`` are unique and pass their validators;
  gender, birth date and district agree with the resident ID; an
  enterprise's district agrees with its credit code;
- every ``person_id`` / ``credit_code`` / ``legal_person_id`` referenced by a
  table exists in ``residents`` / ``enterprises``; a legal person was at least
  18 when the enterprise was established; nobody pays into social insurance
  before turning 18 or before the employer's month of establishment;
- memory stays bounded: the resident table is held as compact numpy columns
  (8 bytes a person, plus a transient sort to make IDs unique), enterprises
  as one table, and the rest is generated and written ``BATCH`` rows or so at
  a time; Faker is used only for small pools of names, sampled from.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from faker import Faker

from sandbox.synthetic.identifiers import (
    COMMON_MOBILE_PREFIXES,
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_WEIGHTS,
    DISTRICTS,
    ORG_CODE_WEIGHTS,
    RESIDENT_ID_CHECK_MAP,
    RESIDENT_ID_WEIGHTS,
)

AS_OF = datetime.date(2025, 12, 31)
BATCH = 100_000
MONTHS = 24  # social insurance covers the 24 months up to and including as_of's month
QUARTERS = 8
ADULT_DAYS = 18 * 366  # at least 18 years, whatever the leap days
EMPLOYMENT_RATE = 0.30  # of residents aged 18-59
PENSION_RATE = 0.24  # employer 16% + individual 8% of the contribution base
BASE_FLOOR, BASE_CEILING = 4_000.0, 21_000.0  # yuan a month, illustrative
NAME_POOL = 2_048  # per sex
COMPANY_POOL = 256  # per industry

# Rough relative populations of the districts (about the 2020 census, 10k people).
_DISTRICT_WEIGHTS = {
    "500101": 156, "500102": 111, "500103": 59, "500104": 42, "500105": 93, "500106": 148,
    "500107": 153, "500108": 119, "500109": 83, "500110": 75, "500111": 83, "500112": 219,
    "500113": 118, "500114": 49, "500115": 69, "500116": 136, "500117": 124, "500118": 114,
    "500119": 57, "500120": 76, "500151": 69, "500152": 69, "500153": 67, "500154": 120,
    "500155": 64, "500156": 35,
}  # fmt: skip
# Share of the population in each 5-year age band, 0-4 ... 85-89 (a 2020-like pyramid).
_AGE_BANDS = (55, 63, 59, 52, 53, 65, 88, 71, 66, 82, 87, 72, 52, 53, 37, 23, 15, 8)
# GB/T 4754 sections: name, share of enterprises, capital scale, name keywords.
INDUSTRIES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("农、林、牧、渔业", 0.04, 0.8, ("生态农业", "种植", "养殖", "农业开发")),
    ("采矿业", 0.005, 4.0, ("矿业", "石材")),
    ("制造业", 0.12, 2.0, ("机械", "电子", "汽车配件", "新材料", "食品", "摩托车")),
    ("电力、热力、燃气及水生产和供应业", 0.01, 6.0, ("能源", "燃气", "供水")),
    ("建筑业", 0.08, 2.0, ("建筑工程", "建设", "装饰工程")),
    ("批发和零售业", 0.30, 0.6, ("商贸", "贸易", "百货", "医药")),
    ("交通运输、仓储和邮政业", 0.04, 1.2, ("物流", "运输", "货运代理")),
    ("住宿和餐饮业", 0.04, 0.5, ("餐饮管理", "酒店管理", "火锅")),
    ("信息传输、软件和信息技术服务业", 0.07, 1.0, ("科技", "软件", "网络科技", "信息技术")),
    ("金融业", 0.01, 10.0, ("投资", "融资担保", "小额贷款")),
    ("房地产业", 0.03, 5.0, ("房地产开发", "物业管理", "置业")),
    ("租赁和商务服务业", 0.13, 0.8, ("企业管理", "商务咨询", "广告", "人力资源")),
    ("科学研究和技术服务业", 0.08, 1.0, ("工程技术", "检测", "设计")),
    ("居民服务、修理和其他服务业", 0.035, 0.4, ("家政服务", "汽车维修", "美容")),
    ("文化、体育和娱乐业", 0.03, 0.8, ("文化传媒", "体育", "影视")),
)
_COMPANY_FORMS = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司")
TAX_TYPES = ("增值税", "城市维护建设税", "企业所得税")

_str, _date, _f64 = pa.string(), pa.date32(), pa.float64()
SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema([pa.field(n, t, nullable=False) for n, t in fields])
    for name, fields in {
        "residents": [("person_id", _str), ("name", _str), ("gender", _str),
                      ("birth_date", _date), ("district_code", _str),
                      ("district_name", _str), ("phone", _str)],
        "enterprises": [("credit_code", _str), ("name", _str), ("industry", _str),
                        ("district_code", _str), ("registered_capital", _f64),
                        ("employees", pa.int32()), ("established", _date),
                        ("legal_person_id", _str)],
        "social_insurance": [("person_id", _str), ("credit_code", _str), ("month", _date),
                             ("contribution_base", _f64), ("amount", _f64)],
        "tax_payments": [("credit_code", _str), ("quarter", _date), ("tax_type", _str),
                         ("amount", _f64)],
    }.items()
}  # fmt: skip

Ints = np.ndarray[Any, np.dtype[np.integer[Any]]]
_DISTRICT_CODES = sorted(DISTRICTS)
_CODES = np.array(_DISTRICT_CODES, dtype=np.int64)
_WEIGHTS = np.array([_DISTRICT_WEIGHTS[c] for c in _DISTRICT_CODES], dtype=np.float64)
_EPOCH = datetime.date(1970, 1, 1)
_ID_CHECK = np.frombuffer(RESIDENT_ID_CHECK_MAP.encode(), dtype=np.uint8)
_USCC = np.frombuffer(CREDIT_CODE_ALPHABET.encode(), dtype=np.uint8)
_USCC_VALUE = np.zeros(128, dtype=np.int64)
_USCC_VALUE[_USCC] = np.arange(31)
_ORG_VALUE = np.zeros(128, dtype=np.int64)  # GB 11714: 0-9, then A-Z = 10-35
_ORG_VALUE[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)] = np.arange(36)


def _days(d: datetime.date) -> int:
    return (d - _EPOCH).days


def _digits(values: Ints, width: int) -> Ints:
    """ASCII codes of ``values`` written as zero-padded decimals, shape (n, width)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10 + 48


def _strings(chars: Ints) -> pa.Array:
    """A string array from an (n, width) array of ASCII codes, without Python objects."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _sample(rng: np.random.Generator, weights: np.ndarray[Any, Any], n: int) -> Ints:
    cum = np.cumsum(weights, dtype=np.float64)
    return np.searchsorted(cum / cum[-1], rng.random(n), side="right").astype(np.int64)


def _ymd(days: Ints) -> Ints:
    """Days since 1970-01-01 as integers ``YYYYMMDD``."""
    d = days.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    year = month.astype("datetime64[Y]").astype(np.int64) + 1970
    mm = month.astype(np.int64) % 12 + 1
    dd = (d - month.astype("datetime64[D]")).astype(np.int64) + 1
    return np.asarray(year * 10_000 + mm * 100 + dd, dtype=np.int64)


class _Residents:
    """The resident table as compact columns; ID strings are built on demand."""

    def __init__(self, rng: np.random.Generator, n: int, as_of: datetime.date) -> None:
        self.district = _sample(rng, _WEIGHTS, n).astype(np.int8)
        band = _sample(rng, np.array(_AGE_BANDS, dtype=np.float64), n)
        age_days = ((band * 5 + rng.random(n) * 5) * 365.25).astype(np.int32)
        self.birth = (_days(as_of) - age_days).astype(np.int32)
        self.male = rng.random(n) < 0.51
        # Sequence numbers unique within (district, birth date, sex): rank within the group.
        key = (
            self.district.astype(np.int32) * 100_000 + self.birth - self.birth.min()
        ) * 2 + self.male
        order = np.argsort(key.astype(np.int32), kind="stable")
        sorted_key = key[order]
        del key
        start = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
        rank = np.arange(n) - first
        if n and rank.max() >= 499:
            raise ValueError("too many residents for unique IDs per district, date and sex")
        slot = np.empty(n, dtype=np.int16)
        slot[order] = (rng.integers(0, 499, n)[first] + rank) % 499
        self.sequence = 2 * slot + np.where(self.male, 1, 2).astype(np.int16)

    def ids(self, idx: Ints) -> pa.Array:
        body = np.concatenate(
            [
                _digits(_CODES[self.district[idx]], 6),
                _digits(_ymd(self.birth[idx]), 8),
                _digits(self.sequence[idx], 3),
            ],
            axis=1,
        )
        check = _ID_CHECK[((body - 48) @ np.array(RESIDENT_ID_WEIGHTS)) % 11]
        return _strings(np.concatenate([body, check[:, None]], axis=1))


def _credit_codes(rng: np.random.Generator, district: Ints, modern: np.ndarray[Any, Any]) -> Any:
    """Unique codes ``91`` + division + organisation code (``MA…`` if modern) + check."""
    n = len(district)
    org = np.empty((n, 8), dtype=np.int64)
    n_new = int(modern.sum())
    serial = rng.choice(31**6, n_new, replace=False)
    org[modern, :2] = np.frombuffer(b"MA", dtype=np.uint8)
    org[modern, 2:] = _USCC[(serial[:, None] // 31 ** np.arange(5, -1, -1)) % 31]
    org[~modern] = _digits(rng.choice(10**8, n - n_new, replace=False), 8)
    org_check = 11 - (_ORG_VALUE[org] @ np.array(ORG_CODE_WEIGHTS)) % 11
    org_check = np.where(org_check == 11, 48, np.where(org_check == 10, ord("X"), 48 + org_check))
    kind = np.broadcast_to(np.frombuffer(b"91", dtype=np.uint8), (n, 2))
    body = np.concatenate([kind, _digits(_CODES[district], 6), org, org_check[:, None]], axis=1)
    check = _USCC[(31 - (_USCC_VALUE[body] @ np.array(CREDIT_CODE_WEIGHTS)) % 31) % 31]
    return _strings(np.concatenate([body, check[:, None]], axis=1))


def _pools(seed: int) -> tuple[pa.Array, pa.Array]:
    """Faker pools: ``NAME_POOL`` male then female names; ``COMPANY_POOL`` per industry."""
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    male = [fake.last_name() + fake.first_name_male() for _ in range(NAME_POOL)]
    female = [fake.last_name() + fake.first_name_female() for _ in range(NAME_POOL)]
    names = pa.array(male + female)
    companies = []
    for _, _, _, words in INDUSTRIES:
        for i in range(COMPANY_POOL):
            brand = fake.first_name()
            brand = brand if len(brand) == 2 else (brand + fake.first_name())[:2]
            companies.append(f"重庆{brand}{words[i % len(words)]}{_COMPANY_FORMS[i % 5]}")
    return names, pa.array(companies)


def _write(path: Path, schema: pa.Schema, batches: Iterator[pa.Table]) -> int:
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for table in batches:
            writer.write_table(table.cast(schema))
            rows += table.num_rows
    return rows


def _chunks(n: int, size: int = BATCH) -> Iterator[Ints]:
    for lo in range(0, n, size):
        yield np.arange(lo, min(n, lo + size), dtype=np.int64)


def generate_city(
    out_dir: Path,
    *,
    residents: int = 100_000,
    enterprises: int = 10_000,
    seed: int = 7,
    as_of: datetime.date = AS_OF,
) -> dict[str, Path]:
    """Write the four tables as ``out_dir/<table>.parquet``; return {table: path}."""
    if residents < 1 or enterprises < 1:
        raise ValueError("a city needs at least one resident and one enterprise")
    out_dir.mkdir(parents=True, exist_ok=True)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    names, companies = _pools(seed)
    people = _Residents(rngs[0], residents, as_of)
    today = _days(as_of)
    paths = {name: out_dir / f"{name}.parquet" for name in SCHEMAS}

    def resident_batches() -> Iterator[pa.Table]:
        rng = rngs[1]
        phone_prefix = np.array(COMMON_MOBILE_PREFIXES, dtype=np.int64)
        district_codes = pa.array(_DISTRICT_CODES)
        district_names = pa.array([DISTRICTS[c] for c in _DISTRICT_CODES])
        for idx in _chunks(residents):
            phone = phone_prefix[rng.integers(0, len(phone_prefix), len(idx))] * 10**8
            phone += rng.integers(0, 10**8, len(idx))
            district = people.district[idx]
            name = np.where(people.male[idx], 0, NAME_POOL) + rng.integers(0, NAME_POOL, len(idx))
            yield pa.table({
                "person_id": people.ids(idx),
                "name": names.take(name),
                "gender": pc.if_else(pa.array(people.male[idx]), "男", "女"),
                "birth_date": pa.array(people.birth[idx].astype(np.int32), pa.date32()),
                "district_code": district_codes.take(district),
                "district_name": district_names.take(district),
                "phone": _strings(_digits(phone, 11)),
            })  # fmt: skip

    _write(paths["residents"], SCHEMAS["residents"], resident_batches())

    # Enterprises: small enough (a tenth of residents) to build in one go.
    rng = rngs[2]
    adults = np.flatnonzero(people.birth <= today - ADULT_DAYS)
    if len(adults) == 0:
        raise ValueError("no adult resident to be a legal person")
    legal = adults[rng.integers(0, len(adults), enterprises)]
    earliest = np.maximum(people.birth[legal] + ADULT_DAYS, _days(datetime.date(1990, 1, 1)))
    earliest = np.minimum(earliest, today)
    established = earliest + ((today - earliest) * np.sqrt(rng.random(enterprises))).astype(int)
    industry = _sample(rng, np.array([i[1] for i in INDUSTRIES]), enterprises)
    scale = np.array([i[2] for i in INDUSTRIES])[industry]
    capital = np.round(rng.lognormal(np.log(100), 1.5, enterprises) * scale, 2)
    employees = np.minimum(rng.lognormal(1.8, 1.4, enterprises), 50_000).astype(np.int64) + 1
    district = _sample(rng, _WEIGHTS, enterprises)
    modern = established >= _days(datetime.date(2015, 10, 1))
    codes = _credit_codes(rng, district, modern)
    company = industry * COMPANY_POOL + rng.integers(0, COMPANY_POOL, enterprises)
    enterprise_table = pa.table({
        "credit_code": codes,
        "name": companies.take(company),
        "industry": pa.array([i[0] for i in INDUSTRIES]).take(industry),
        "district_code": pa.array(_DISTRICT_CODES).take(district),
        "registered_capital": capital,
        "employees": employees,
        "established": pa.array(established.astype(np.int32), pa.date32()),
        "legal_person_id": people.ids(legal),
    })  # fmt: skip
    _write(paths["enterprises"], SCHEMAS["enterprises"], iter([enterprise_table]))

    first_month = np.datetime64(as_of, "M") - (MONTHS - 1)
    est_month = established.astype("datetime64[D]").astype("datetime64[M]") - first_month
    est_month = np.maximum(est_month.astype(np.int64), 0)

    def insurance_batches() -> Iterator[pa.Table]:
        rng = rngs[3]
        for idx in _chunks(residents):
            age = today - people.birth[idx]
            working = idx[(age >= ADULT_DAYS) & (age < 60 * 365.25)]
            person = working[rng.random(len(working)) < EMPLOYMENT_RATE]
            n = len(person)
            employer = _sample(rng, employees.astype(np.float64), n)
            start = np.where(rng.random(n) < 0.65, 0, rng.integers(0, MONTHS, n))
            end = np.where(rng.random(n) < 0.5, MONTHS - 1, rng.integers(0, MONTHS, n))
            adult = people.birth[person] + ADULT_DAYS  # no contributions before 18
            adult_month = adult.astype("datetime64[D]").astype("datetime64[M]") - first_month
            start = np.maximum(np.maximum(start, est_month[employer]), adult_month.astype(int))
            end = np.maximum(start, end)
            base = rng.lognormal(np.log(6_500), 0.45, n)
            count = end - start + 1
            row = np.repeat(np.arange(n), count)
            offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            month = first_month + (start[row] + offset)
            raised = month.astype("datetime64[Y]") > first_month.astype("datetime64[Y]")
            monthly = np.clip(np.round(base[row] * np.where(raised, 1.04, 1.0)), BASE_FLOOR,
                              BASE_CEILING)  # fmt: skip
            yield pa.table({
                "person_id": people.ids(person).take(row),
                "credit_code": codes.take(employer[row]),
                "month": pa.array(month.astype("datetime64[D]").astype(np.int32), pa.date32()),
                "contribution_base": monthly,
                "amount": np.round(monthly * PENSION_RATE, 2),
            })  # fmt: skip

    _write(paths["social_insurance"], SCHEMAS["social_insurance"], insurance_batches())

    first_quarter = np.datetime64(as_of, "M") - (as_of.month - 1) % 3 - 3 * (QUARTERS - 1)

    def tax_batches() -> Iterator[pa.Table]:
        rng = rngs[4]
        for idx in _chunks(enterprises, BATCH // QUARTERS):
            ent = np.repeat(idx, QUARTERS)
            quarter = first_quarter + 3 * np.tile(np.arange(QUARTERS), len(idx))
            q_end = (quarter + 3).astype("datetime64[D]").astype(np.int64)
            ent_q, quarter = ent[q_end > established[ent]], quarter[q_end > established[ent]]
            n = len(ent_q)
            vat = np.round(employees[ent_q] * rng.lognormal(np.log(3_000), 1.0, n), 2)
            has_vat = rng.random(n) < 0.85
            cit = np.round(employees[ent_q] * rng.lognormal(np.log(2_000), 1.2, n), 2)
            has_cit = rng.random(n) < 0.35
            amounts = (vat, np.round(vat * 0.07, 2), cit)
            keep = (has_vat, has_vat, has_cit)
            order = np.lexsort((np.repeat(np.arange(3), n), np.tile(np.arange(n), 3)))
            mask = np.concatenate(keep)[order]
            row = np.tile(np.arange(n), 3)[order][mask]
            kind = np.repeat(np.arange(3), n)[order][mask]
            yield pa.table({
                "credit_code": codes.take(ent_q[row]),
                "quarter": pa.array(quarter[row].astype("datetime64[D]").astype(np.int32),
                                    pa.date32()),
                "tax_type": pa.array(TAX_TYPES).take(kind),
                "amount": np.concatenate(amounts)[order][mask],
            })  # fmt: skip

    _write(paths["tax_payments"], SCHEMAS["tax_payments"], tax_batches())
    return paths


def main(argv: list[str] | None = None) -> None:
    """``python -m sandbox.synthetic.demo OUT_DIR [--residents N] [--enterprises N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.synthetic.demo",
        description="Generate the synthetic demo city as Parquet.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    paths = generate_city(
        args.out_dir, residents=args.residents, enterprises=args.enterprises, seed=args.seed
    )
    total = 0
    for name, path in paths.items():
        rows = pq.ParquetFile(path).metadata.num_rows
        total += rows
        print(f"{name:<17} {rows:>12,} rows  {path}")
    print(f"{'total':<17} {total:>12,} rows")


if __name__ == "__main__":
    main()
