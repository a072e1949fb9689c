"""high_entropy: compressed and encrypted payloads are caught, ordinary outputs are not."""

# Chinese report text is written with full-width punctuation, as real outputs are.

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import lzma
import random
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, PngImagePlugin

from sandbox.judge.rules.entropy import (
    HIGH_ENTROPY,
    MAX_FINDINGS,
    RULES,
    expected_entropy,
    high_entropy,
    judge,
)
from sandbox.judge.types import Context, Finding, Output, Verdict
from sandbox.synthetic import identifiers
from sandbox.synthetic.identifiers import DISTRICTS

RNG = random.Random(20261122)
CSV = (
    "person_id,name,phone,district\n"
    + "".join(
        f"{identifiers.resident_id(RNG)},张伟,{identifiers.mobile(RNG)},渝中区\n" for _ in range(40)
    )
).encode()


def fernet_like(rng: random.Random) -> str:
    """Version byte, timestamp, IV, AES-CBC ciphertext, HMAC: base64url, as Fernet writes."""
    body = b"\x80" + (1_764_000_000).to_bytes(8, "big") + rng.randbytes(16 + 64 + 32)
    return base64.urlsafe_b64encode(body).decode()


def zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("rows.csv", data)
    return out.getvalue()


PAYLOADS: dict[str, Callable[[], str]] = {
    "base64-zlib": lambda: base64.b64encode(zlib.compress(CSV)).decode(),
    "base64-zlib-tiny": lambda: base64.b64encode(zlib.compress(b"a" * 500)).decode(),
    "hex-zlib": lambda: zlib.compress(CSV, 9).hex(),
    "base32-zlib": lambda: base64.b32encode(zlib.compress(CSV)).decode(),
    "urlsafe-gzip": lambda: base64.urlsafe_b64encode(gzip.compress(CSV)).decode().rstrip("="),
    "base64-bz2": lambda: base64.b64encode(bz2.compress(CSV)).decode(),
    "base64-xz": lambda: base64.b64encode(lzma.compress(CSV)).decode(),
    "base64-zip": lambda: base64.b64encode(zipped(CSV)).decode(),
    "hex-7z-header": lambda: (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(16)).hex(),
    "urandom-hex": lambda: RNG.randbytes(32).hex(),
    "urandom-hex-short": lambda: RNG.randbytes(16).hex(),
    "random-base64": lambda: base64.b64encode(RNG.randbytes(96)).decode(),
    "random-base32": lambda: base64.b32encode(RNG.randbytes(40)).decode(),
    "random-base32-lower": lambda: base64.b32encode(RNG.randbytes(40)).decode().lower(),
    "base32-lower-zlib": lambda: base64.b32encode(zlib.compress(CSV)).decode().lower(),
    "fernet-like": lambda: fernet_like(RNG),
}


def out(
    *,
    table: pa.Table | None = None,
    text: str | None = None,
    entry: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    file: str = "out.csv",
) -> Output:
    return Output(
        file=file,
        kind="text" if text is not None else "table",
        source="python",
        content=b"",
        entry=entry if entry is not None else {"kind": "table", "description": "counts"},
        table=table,
        text=text,
        model=model,
    )


def check(output: Output, *secrets: str) -> list[Finding]:
    findings = high_entropy(output, Context())
    for f in findings:
        assert f.rule == HIGH_ENTROPY and f.verdict == Verdict.FAIL
        for secret in secrets:
            assert secret[:12] not in f.message
    return findings


# -- payloads are caught --------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_payloads_in_cells_fail(kind: str) -> None:
    payload = PAYLOADS[kind]()
    table = pa.table({"district": ["渝中区", "江北区"], "note": ["ok", payload]})
    findings = check(out(table=table), payload)
    assert [(f.row, f.column) for f in findings] == [(1, "note")]


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("base64-zlib", "base64-encoded zlib data"),
        ("hex-zlib", "hex-encoded zlib data"),
        ("base32-zlib", "base32-encoded zlib data"),
        ("urlsafe-gzip", "base64-encoded gzip data"),
        ("base64-bz2", "base64-encoded bzip2 data"),
        ("base64-xz", "base64-encoded xz data"),
        ("base64-zip", "base64-encoded zip data"),
        ("hex-7z-header", "hex-encoded 7z data"),
        ("fernet-like", "high-entropy base64 run"),
        ("urandom-hex", "high-entropy hex run"),
    ],
)
def test_findings_say_what_was_found(kind: str, what: str) -> None:
    ((_, found),) = judge(PAYLOADS[kind]())
    assert what in found


def test_payload_in_text_entry_names_and_model_fail() -> None:
    blob = PAYLOADS["base64-zlib"]()
    text = "Appendix A\n\nThe data follow.\n" + blob + "\nEnd of appendix.\n"
    assert [f.message[:31] for f in check(out(text=text), blob)] == [
        "line 4 of the text holds base64"
    ]
    entry = {"kind": "table", "description": "see " + blob, "columns": ["a"]}
    (f,) = check(out(table=pa.table({"a": [1]}), entry=entry), blob)
    assert f.message.startswith("the manifest entry has a field under description holding")
    token = PAYLOADS["fernet-like"]()
    (f,) = check(out(table=pa.table({token: [1], "n": [2]})), token)
    assert f.message.startswith("the name of column 1 holds") and f.column is None
    model = {"coefficients": {"Intercept": 1.0, token: 0.5}, "description": ""}
    (f,) = check(out(table=None, model=model, file="fit.json"), token)
    assert f.message.startswith("the model has a key under coefficients")
    name = base64.urlsafe_b64encode(RNG.randbytes(48)).decode() + ".csv"
    (f,) = check(out(table=pa.table({"a": [1]}), file=name), name)
    assert f.message.startswith("the file name holds")


def test_the_files_own_digest_in_the_manifest_passes() -> None:
    content = b"district_code,n\n500101,120\n"
    entry = {"kind": "table", "sha256": hashlib.sha256(content).hexdigest(), "bytes": 27}
    output = Output("t.csv", "table", "python", content, entry, table=pa.table({"n": [120]}))
    assert check(output) == []
    forged = {**entry, "sha256": RNG.randbytes(32).hex()}
    (f,) = check(Output("t.csv", "table", "python", content, forged, table=output.table))
    assert f.message.startswith("the manifest entry has a field under sha256")


def test_binary_cells_are_checked() -> None:
    values = [b"plain text", zlib.compress(CSV), RNG.randbytes(64), None]
    table = pa.table({"blob": pa.array(values, pa.binary())})
    assert [f.row for f in check(out(table=table))] == [1, 2]


def test_padding_does_not_hide_a_payload() -> None:
    padded = "A" * 3000 + base64.b64encode(RNG.randbytes(300)).decode()
    assert judge(padded)


def test_random_payloads_are_caught_reliably() -> None:
    rng = random.Random(7)
    for n in (24, 32, 48, 96):  # bytes: 32 to 128 base64 characters
        for encode in (
            lambda b: base64.b64encode(b).decode(),
            lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
            lambda b: b.hex(),
        ):
            caught = sum(bool(judge(encode(rng.randbytes(n)))) for _ in range(200))
            assert caught >= 198, (n, caught)


def test_findings_are_capped_per_file() -> None:
    table = pa.table({"token": [base64.b64encode(RNG.randbytes(48)).decode() for _ in range(30)]})
    findings = check(out(table=table))
    assert len(findings) == MAX_FINDINGS + 1
    assert findings[-1].message.startswith("10 more places")


def test_expected_entropy_matches_the_closed_form() -> None:
    assert expected_entropy(32, 64) == pytest.approx(4.559, abs=0.005)
    assert expected_entropy(64, 16) == pytest.approx(3.820, abs=0.005)
    assert expected_entropy(5000, 64) == pytest.approx(6 - 63 / (2 * 5000 * np.log(2)))
    assert set(RULES) == {HIGH_ENTROPY}


# -- ordinary outputs pass ------------------------------------------------------------

ORDINARY = [
    "average_contribution_base_by_district_2024",
    "averageContributionBaseByDistrictAndYear2024",
    "Average_Contribution_Base_2024_By_District_And_Industry",
    "social_insurance_contributions_by_district_and_year_2015_2025",
    "employment_rate_among_residents_aged_18_to_59_by_district",
    "CHONGQINGMUNICIPALPUBLICDATAAUTHORITYANNUALREPORT",
    "3141592653589793238462643383279502884197169399375105820974944",
    "https://data.cq.gov.cn/products/2025/annual_report_on_enterprises.csv",
    "2024-01-01/2024-12-31/500101/500102/500103/500104/500105",
    "550e8400-e29b-41d4-a716-446655440000",
    "重庆市2024年社会保险缴费基数平均值为6500元，同比增长4%",
    "The mean contribution base in Wanzhou district rose by 4.2 percent from 2023 to 2024.",
    "mean_base_500101_500102_500103_500104_500105_500106_500107_500108",
    "6781.009212345678",
    "socialinsurancecontributionsbydistrictandyear2",
    "TOTALCONTRIBUTIONSBYDISTRICTANDYEARTWENTYTWENTYFIVE2",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_strings_pass(text: str) -> None:
    assert judge(text) == []


def test_identifiers_are_not_payloads() -> None:
    rng = random.Random(3)
    values = [identifiers.resident_id(rng) for _ in range(200)]
    values += [identifiers.credit_code(rng) for _ in range(200)]
    values += [identifiers.mobile(rng) for _ in range(200)]
    assert [v for v in values if judge(v)] == []


def test_a_legitimate_aggregate_table_and_report_pass() -> None:
    rng = np.random.default_rng(5)
    rows = 5_000
    codes = np.array(sorted(DISTRICTS))
    d = rng.integers(0, len(codes), rows)
    table = pa.table(
        {
            "district_code": codes[d],
            "district_name": np.array([DISTRICTS[c] for c in codes])[d],
            "month": pa.array(np.datetime64("2024-01-01") + rng.integers(0, 365, rows)),
            "industry": np.array(["制造业", "信息传输、软件和信息技术服务业", "金融业"])[
                rng.integers(0, 3, rows)
            ],
            "n": rng.integers(10, 90_000, rows),
            "mean_base": rng.lognormal(8.8, 0.4, rows),
            "label": np.array(ORDINARY[:5])[rng.integers(0, 5, rows)],
        }
    )
    text = "\n".join(ORDINARY) + "\n各区县分行业缴费人数见附表 by_district.csv。\n"
    entry = {"kind": "table", "description": "\n".join(ORDINARY), "columns": table.column_names}
    assert check(out(table=table, entry=entry)) == []
    assert check(out(text=text, file="report.md")) == []


def test_a_million_cells_are_checked_in_seconds() -> None:
    rng = np.random.default_rng(9)
    rows = 100_000
    columns = {f"n{i}": rng.integers(0, 10**6, rows) for i in range(6)}
    columns |= {f"x{i}": rng.random(rows) for i in range(2)}
    columns |= {f"s{i}": np.array(ORDINARY)[rng.integers(0, len(ORDINARY), rows)] for i in range(2)}
    output = out(table=pa.table(columns))
    start = time.perf_counter()
    assert check(output) == []
    assert time.perf_counter() - start < 30


def test_payloads_in_png_chunks_and_parquet_metadata_fail() -> None:
    payload = PAYLOADS["fernet-like"]()
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "matplotlib version 3.11")
    info.add_itxt("Comment", payload, zip=True)
    sink = io.BytesIO()
    Image.new("RGB", (4, 4)).save(sink, "PNG", pnginfo=info)
    figure = Output("f.png", "figure", "python", sink.getvalue(), {"kind": "figure"})
    (finding,) = check(figure, payload)
    assert finding.message.startswith("the image's chunk 3 holds a high-entropy base64 run")

    table = pa.table({"n": [1, 2]}).replace_schema_metadata({"note": PAYLOADS["base64-zlib"]()})
    field = table.schema.field("n").with_metadata({"k": PAYLOADS["random-base64"]()})
    table = table.cast(table.schema.set(0, field))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    output = Output("t.parquet", "table", "python", sink.getvalue(), {}, table=table)
    assert sorted(f.message.split(" holds")[0] for f in check(output)) == [
        "the Parquet file's key-value metadata",
        "the field metadata of column 1",
    ]


def test_an_ordinary_figure_and_pandas_parquet_pass() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "matplotlib version 3.11.2, https://matplotlib.org/")
    info.add_itxt("Title", "各区参保人数（2025 年）")
    sink = io.BytesIO()
    Image.new("RGB", (4, 4)).save(sink, "PNG", pnginfo=info)
    figure = Output("f.png", "figure", "python", sink.getvalue(), {"kind": "figure"})
    assert check(figure) == []
    frame = pd.DataFrame({"district_code": ["500103"], "n": [120]}).set_index("district_code")
    sink = io.BytesIO()
    frame.to_parquet(sink)
    output = Output("t.parquet", "table", "python", sink.getvalue(), {}, table=pa.table({}))
    assert check(output) == []
