"""The identifier fingerprint index: forms, builders over the synthetic city, the cache."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sandbox.judge.fingerprints import (
    FingerprintIndex,
    FingerprintStore,
    build_for_pseudonyms,
    build_from_values,
    normalise,
)
from sandbox.synthetic import identifiers
from tests.support.fingerprints import City, city_views, encodings, index_for, registered_city


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return registered_city(tmp_path_factory.mktemp("city"))


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    rng = random.Random(2026)
    return {
        "resident_id": identifiers.resident_id(rng),
        "resident_id_x": next(
            v for v in iter(lambda: identifiers.resident_id(rng), "") if "X" in v
        ),
        "mobile": identifiers.mobile(rng),
        "credit_code": identifiers.credit_code(rng),
    }


@pytest.fixture(scope="module")
def index(values: dict[str, str]) -> FingerprintIndex:
    return build_from_values([*values.values(), "张伟", "欧阳娜娜", 1234, "ab"])


# -- forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["resident_id", "resident_id_x", "mobile", "credit_code"])
def test_every_encoding_is_found_whole_and_inside_text(
    index: FingerprintIndex, values: dict[str, str], kind: str
) -> None:
    forms = encodings(values[kind])
    found = index.scan([f"ref: {form} (see appendix)" for form in forms.values()])
    assert dict(zip(forms, found.tolist(), strict=True)) == dict.fromkeys(forms, True)
    assert all(index.contains(form) for form in forms.values())


def test_integers_are_fingerprinted_as_decimal_strings() -> None:
    index = build_from_values([13812345678])
    assert index.contains("13812345678")
    assert index.scan(["call 13812345678"]).tolist() == [True]


def test_short_values_are_skipped_and_names_match_whole_only(index: FingerprintIndex) -> None:
    assert not index.contains("1234") and not index.contains("ab")
    assert index.contains("张伟") and index.contains("欧阳娜娜") and index.contains(" 张 伟 ")
    # Names are never scanned as substrings: they would match ordinary words.
    assert index.scan(["张伟", "张伟的收入", "欧阳娜娜"]).tolist() == [False, False, False]
    assert index.exact_hits(normalise(["张伟", "张伟的收入", "李娜"], strip=True)).tolist() == [
        True,
        False,
        False,
    ]
    # Their encodings are long and distinctive: scanned.
    assert index.scan(["张伟".encode().hex(), hashlib.md5("张伟".encode()).hexdigest()]).all()


def test_short_digit_forms_match_whole_digit_runs_only(
    index: FingerprintIndex, values: dict[str, str]
) -> None:
    mobile = values["mobile"]
    texts = [
        f"2024 {mobile}",  # a separator is an edge
        f"tel{mobile}ok",
        f"{mobile[:3]}.{mobile[3:]}",
        f"1{mobile}",  # inside a longer number: a mean printed in full, say
        f"{mobile}7",
        f"0.{mobile}3",
    ]
    assert index.scan(texts).tolist() == [True, True, True, False, False, False]


def test_parts_split_a_form_and_spans_are_reported(
    index: FingerprintIndex, values: dict[str, str]
) -> None:
    rid, mobile = values["resident_id"], values["mobile"]
    parts = ["x", rid[:7], rid[7:], "y", mobile[:4], mobile[4:8], mobile[8:]]
    lower = normalise(parts, strip=False)
    found = index.find(lower, np.array([0, 4, 7]))
    assert found.tolist() == [[0, 1, 2]]  # a mobile never spans three cells
    assert index.find(lower, np.array([0, 4, 7]), max_parts=1).size == 0


def test_union_save_and_load(tmp_path: Path, values: dict[str, str]) -> None:
    a = build_from_values([values["mobile"]])
    b = build_from_values([values["resident_id"], "王芳"])
    both = a.union(b)
    assert len(both) == len(a) + len(b)
    assert both.contains(values["mobile"]) and both.contains(values["resident_id"])
    assert both.contains("王芳") and both.lengths == a.lengths | b.lengths
    path = tmp_path / "i.npz"
    both.save(path)
    loaded = FingerprintIndex.load(path)
    assert np.array_equal(loaded.fingerprints, both.fingerprints)
    assert loaded.scan([values["resident_id"][::-1]]).tolist() == [True]
    assert [p.name for p in tmp_path.iterdir()] == ["i.npz"]  # no temporary file left
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="not a fingerprint index"):
        FingerprintIndex.load(tmp_path / "bad.npz")


def test_empty_index_finds_nothing() -> None:
    empty = build_from_values([])
    assert len(empty) == 0 and not empty.contains("x")
    assert empty.scan(["13812345678", ""]).tolist() == [False, False]


# -- builders over the city -----------------------------------------------------------


def test_dataset_index_holds_hidden_and_join_key_identifiers(city: City) -> None:
    residents = index_for(city, "residents")
    people = city.rows["residents"]
    assert all(residents.contains(str(p["person_id"])) for p in people)
    assert all(residents.contains(str(p["phone"])) for p in people)
    assert all(residents.contains(str(p["name"])) for p in people)  # hidden, exact only
    assert residents.scan([str(p["phone"])[::-1] for p in people]).all()
    # Quasi-identifiers and attributes are not identifiers.
    assert not residents.scan([str(p["district_code"]) for p in people]).any()
    assert not residents.contains(str(people[0]["district_name"]))


def test_plain_identifiers_are_not_indexed(city: City) -> None:
    firms = index_for(city, "enterprises")
    rows = city.rows["enterprises"]
    assert all(firms.contains(str(r["credit_code"])) for r in rows)
    assert all(firms.contains(str(r["legal_person_id"])) for r in rows)
    # The company name is plain by the provider's decision (public register).
    assert not any(firms.contains(str(r["name"])) for r in rows)
    assert not firms.scan([str(r["name"]) for r in rows]).any()


def test_pseudonym_index_finds_pseudonyms_truncated_and_encoded(city: City) -> None:
    view = next(v for v in city_views(city).views if v.dataset == "enterprises")
    index = build_for_pseudonyms(view.path, ["credit_code", "legal_person_id"])
    keys = [str(v) for v in pq.read_table(view.path).column("legal_person_id").to_pylist()]
    assert all(len(k) == 64 for k in keys)
    k = keys[0]
    forms = {**encodings(k), "truncated": k[:16], "prefixed": "n_" + k[:20]}
    found = index.scan(list(forms.values()))
    assert dict(zip(forms, found.tolist(), strict=True)) == dict.fromkeys(forms, True)
    assert not index.scan([k[:12], hashlib.sha256(b"something else").hexdigest()]).any()


# -- the store ------------------------------------------------------------------------


def test_store_builds_once_then_loads(city: City, tmp_path: Path) -> None:
    version, policy = city.registry.get("residents"), city.policies.get("residents").policy
    store = FingerprintStore(tmp_path)
    first = store.get(version, policy)
    path = store.path(version, policy)
    assert path.parent == tmp_path / "fingerprints" / "residents"
    assert path.name.startswith(version.version + "-") and path.suffix == ".npz"
    assert store.get(version, policy) is first  # held in memory
    stamp = path.stat().st_mtime_ns
    # A new store loads the file: it never reads the dataset again.
    moved = version.path.with_suffix(".away")
    version.path.rename(moved)
    try:
        again = FingerprintStore(tmp_path).get(version, policy)
    finally:
        moved.rename(version.path)
    assert np.array_equal(again.fingerprints, first.fingerprints)
    assert path.stat().st_mtime_ns == stamp


def test_store_rebuilds_an_unreadable_file(city: City, tmp_path: Path) -> None:
    version, policy = city.registry.get("enterprises"), city.policies.get("enterprises").policy
    path = FingerprintStore(tmp_path).path(version, policy)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00" * 100)
    index = FingerprintStore(tmp_path).get(version, policy)
    assert index.contains(str(city.rows["enterprises"][0]["credit_code"]))
    assert FingerprintIndex.load(path).fingerprints.size == index.fingerprints.size


def test_concurrent_builders_agree_and_leave_one_whole_file(city: City, tmp_path: Path) -> None:
    version, policy = city.registry.get("residents"), city.policies.get("residents").policy
    results: list[FingerprintIndex] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(FingerprintStore(tmp_path).get(version, policy))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(np.array_equal(r.fingerprints, results[0].fingerprints) for r in results)
    folder = tmp_path / "fingerprints" / "residents"
    assert sorted(p.suffix for p in folder.iterdir()) == [".lock", ".npz"]  # no temp files
    assert FingerprintIndex.load(next(folder.glob("*.npz"))).exact.size == results[0].exact.size


def test_store_destroys_a_versions_indexes(city: City, tmp_path: Path) -> None:
    version, policy = city.registry.get("enterprises"), city.policies.get("enterprises").policy
    store = FingerprintStore(tmp_path)
    store.get(version, policy)
    path = store.path(version, policy)
    record = store.destroy("enterprises", version.version)
    assert record is not None and not path.exists()
    assert [p for p, _ in record.files] == [str(path)]
    assert store.destroy("enterprises", version.version) is None


def test_normal_form_drops_invisible_characters_and_folds_full_width() -> None:
    texts = ["１３８\u200b１２３４\ufeff５６７８", "ab\u00adcd", "渝中区", "Plain"]
    assert normalise(texts, strip=True).to_pylist() == ["13812345678", "abcd", "渝中区", "plain"]


def test_pseudonym_prefixes_and_bytes_are_found_in_every_encoding(city: City) -> None:
    view = next(v for v in city_views(city).views if v.dataset == "residents")
    index = build_for_pseudonyms(view.path, ["person_id"])
    k = str(pq.read_table(view.path).column("person_id")[0])
    raw = bytes.fromhex(k)
    forms = {
        "hex-of-prefix": k[:20].encode().hex(),
        "base64-of-prefix": base64.b64encode(k[:30].encode()).decode(),
        "base32": base64.b32encode(k.encode()).decode(),
        "bytes-base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "bytes-base32": base64.b32encode(raw).decode(),
        "bytes-decimal": str(int.from_bytes(raw, "big")),
    }
    found = index.scan(list(forms.values()))
    assert dict(zip(forms, found.tolist(), strict=True)) == dict.fromkeys(forms, True)
