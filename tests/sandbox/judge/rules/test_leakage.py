"""identifier_leakage over real identifiers of the synthetic city, and no false alarms."""

# Chinese report text is written with full-width punctuation, as real outputs are.

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.judge.fingerprints import FingerprintIndex, build_for_pseudonyms
from sandbox.judge.rules.files import PNG_SIGNATURE
from sandbox.judge.rules.leakage import IDENTIFIER_LEAKAGE, MAX_FINDINGS, RULES, identifier_leakage
from sandbox.judge.types import Context, Finding, Output, Verdict
from sandbox.synthetic.identifiers import DISTRICTS
from tests.support.fingerprints import (
    City,
    city_views,
    encodings,
    index_for,
    registered_city,
)

INDUSTRIES = ["制造业", "批发和零售业", "建筑业", "金融业", "教育", "住宿和餐饮业"]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return registered_city(tmp_path_factory.mktemp("city"))


@pytest.fixture(scope="module")
def pseudonyms(city: City) -> tuple[FingerprintIndex, list[str]]:
    view = next(v for v in city_views(city, "g-leak").views if v.dataset == "residents")
    keys = [str(k) for k in pq.read_table(view.path).column("person_id").to_pylist()]
    return build_for_pseudonyms(view.path, ["person_id"]), keys


@pytest.fixture(scope="module")
def ctx(city: City, pseudonyms: tuple[FingerprintIndex, list[str]]) -> Context:
    index = index_for(city, "residents").union(index_for(city, "enterprises"))
    return Context(datasets=("residents", "enterprises"), fingerprints=index.union(pseudonyms[0]))


@pytest.fixture(scope="module")
def person(city: City) -> dict[str, str]:
    p = city.rows["residents"][7]
    firm = city.rows["enterprises"][3]
    return {
        "id": str(p["person_id"]),
        "phone": str(p["phone"]),
        "name": str(p["name"]),
        "credit_code": str(firm["credit_code"]),
    }


def table_output(
    table: pa.Table,
    *,
    file: str = "by_district.csv",
    entry: Mapping[str, Any] | None = None,
    text: str | None = None,
    model: Mapping[str, Any] | None = None,
) -> Output:
    return Output(
        file=file,
        kind="table" if text is None else "text",
        source="python",
        content=b"",
        entry=entry if entry is not None else {"kind": "table", "description": "counts"},
        table=table,
        text=text,
        model=model,
    )


def leaks(output: Output, ctx: Context, *secrets: str) -> list[Finding]:
    findings = identifier_leakage(output, ctx)
    for f in findings:
        assert f.rule == IDENTIFIER_LEAKAGE and f.verdict == Verdict.FAIL
        for secret in secrets:  # a message never quotes the value, nor part of it
            assert secret not in f.message and secret[:8] not in f.message
            assert f.column is None or secret[:8] not in f.column
    return findings


def aggregate_table(rows: int = 400, seed: int = 3) -> pa.Table:
    """A realistic legitimate aggregate: districts, years, industries, counts, means."""
    rng = np.random.default_rng(seed)
    codes = np.array(sorted(DISTRICTS))
    d = rng.integers(0, len(codes), rows)
    counts = rng.integers(10, 90_000, rows)
    return pa.table(
        {
            "district_code": codes[d],
            "district_name": np.array([DISTRICTS[c] for c in codes])[d],
            "year": rng.integers(2015, 2026, rows),
            "industry": np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), rows)],
            "n": counts,
            "mean_base": rng.lognormal(8.8, 0.4, rows),  # full precision, like pandas writes
            "mean_rounded": np.round(rng.lognormal(8.8, 0.4, rows), 2),
            "total_amount": np.round(counts * rng.lognormal(7.4, 0.4, rows), 2),
            "share": rng.random(rows),
            "employees": counts.astype(float),
        }
    )


# -- encodings in cells ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["id", "phone", "credit_code"])
@pytest.mark.parametrize("form", sorted(encodings("500101199001011234")))
def test_every_encoding_in_a_cell_fails(
    ctx: Context, person: dict[str, str], which: str, form: str
) -> None:
    value = encodings(person[which])[form]
    table = pa.table({"district": ["渝中区", "江北区", "万州区"], "label": ["a", value, "c"]})
    findings = leaks(table_output(table), ctx, person[which])
    assert [(f.row, f.column) for f in findings] == [(1, "label")]
    assert "identifier" in findings[0].message


def test_numbers_are_read_as_written(ctx: Context, person: dict[str, str]) -> None:
    phone = int(person["phone"])
    table = pa.table({"n": pa.array([12, phone, 7]), "x": pa.array([0.5, 1.25, float(phone)])})
    findings = leaks(table_output(table), ctx, person["phone"])
    assert sorted((f.row, f.column) for f in findings) == [(1, "n"), (2, "x")]


def test_cells_of_any_type_are_read(ctx: Context, person: dict[str, str]) -> None:
    table = pa.table(
        {
            "raw": pa.array([b"ok", person["id"].encode(), b"\xff"], pa.binary()),
            "listed": pa.array([[1], [2], [int(person["phone"])]]),
            "code": pa.array(["a", "b", person["credit_code"]]).dictionary_encode(),
            "day": pa.array([20240101, 20240102, 20240103], pa.int32()),
        }
    )
    findings = leaks(table_output(table), ctx, person["id"], person["phone"])
    assert sorted((f.row, f.column) for f in findings) == [(1, "raw"), (2, "code"), (2, "listed")]


def test_an_identifier_split_across_two_columns_fails(ctx: Context, person: dict[str, str]) -> None:
    rid = person["id"]
    table = pa.table({"a": ["x", rid[:9], "y"], "b": ["z", rid[9:], "w"], "n": [10, 20, 30]})
    (finding,) = leaks(table_output(table), ctx, rid)
    assert (finding.row, finding.column) == (1, "a")
    assert "column a to column b" in finding.message and "split" in finding.message


def test_an_identifier_split_across_two_rows_fails(ctx: Context, person: dict[str, str]) -> None:
    phone = person["phone"]
    table = pa.table({"code": ["500101", phone[:5], phone[5:], "500103"], "n": [10, 11, 12, 13]})
    (finding,) = leaks(table_output(table), ctx, phone)
    assert (finding.row, finding.column) == (1, "code")
    assert "the one below" in finding.message


def test_names_match_whole_cells(ctx: Context, person: dict[str, str]) -> None:
    name = person["name"]
    table = pa.table({"who": [name, f"{name}等人", "其他"], "n": [50, 60, 70]})
    findings = leaks(table_output(table), ctx, name)
    assert [(f.row, f.column) for f in findings] == [(0, "who")]


def test_pseudonyms_and_truncated_pseudonyms_fail(
    ctx: Context, pseudonyms: tuple[FingerprintIndex, list[str]]
) -> None:
    _, keys = pseudonyms
    k = keys[5]
    table = pa.table(
        {
            "full": [k, "x", "x", "x", "x"],
            "upper": ["x", k.upper(), "x", "x", "x"],
            "short": ["x", "x", k[:16], "x", "x"],
            "sha256": ["x", "x", "x", encodings(k)["sha256"], "x"],
            "halves": ["x", "x", "x", "x", k[:32]],
            "rest": ["x", "x", "x", "x", k[32:]],
        }
    )
    findings = leaks(table_output(table), ctx, k)
    assert {(f.row, f.column) for f in findings} == {
        (0, "full"),
        (1, "upper"),
        (2, "short"),
        (3, "sha256"),
        (4, "halves"),  # the first half holds the 16-digit prefix; both halves, all of it
    }
    assert any("split across cells" in f.message for f in findings)


# -- everywhere else ------------------------------------------------------------------


def test_column_names_are_checked_and_never_quoted(ctx: Context, person: dict[str, str]) -> None:
    phone = person["phone"]
    table = pa.table({"district": ["渝中区"], f"n_{phone}": [phone]})
    findings = leaks(table_output(table), ctx, phone)
    assert {(f.row, f.column) for f in findings} == {(None, None), (0, "#2")}
    assert any("name of column 2" in f.message for f in findings)


def test_file_name_is_checked(ctx: Context, person: dict[str, str]) -> None:
    table = aggregate_table(20)
    findings = leaks(table_output(table, file=f"report_{person['id']}.csv"), ctx, person["id"])
    assert [f.message.split(" holds")[0] for f in findings] == ["the file name"]


def test_manifest_strings_are_checked(ctx: Context, person: dict[str, str]) -> None:
    entry = {
        "kind": "table",
        "description": f"负责人：{person['name']}。Contact {encodings(person['phone'])['base64']}",
        "columns": ["district", "n"],
        "notes": {person["credit_code"].lower(): "ok"},
    }
    findings = leaks(table_output(aggregate_table(20), entry=entry), ctx, person["phone"])
    messages = sorted(f.message for f in findings)
    assert len(messages) == 2
    assert messages[0].startswith("the manifest entry has a key under notes")
    assert messages[1].startswith("the manifest entry's field description")
    assert person["credit_code"].lower() not in " ".join(messages)


def test_text_outputs_are_checked_line_by_line(ctx: Context, person: dict[str, str]) -> None:
    rid = person["id"]
    text = (
        "# 2025 年社会保险缴费分析\n\n各区缴费基数平均值见附表。\n"
        f"样本编号 {rid[:10]}\n{rid[10:]} 号（已核实）\n"
        f"联系人：{person['name']}，电话见内网。\n"
    )
    output = Output("notes.md", "text", "python", text.encode(), {"kind": "text"}, text=text)
    findings = leaks(output, ctx, rid, person["name"])
    assert sorted(f.message.split(" on ")[-1] for f in findings) == ["line 6", "lines 4 to 5"]


def test_model_terms_are_checked(ctx: Context, person: dict[str, str]) -> None:
    term = f"C(person)[T.{person['id']}]"
    model = {"kind": "ols", "coefficients": {"Intercept": 1.0, term: 0.5}, "n": 500}
    entry = {"kind": "model", "terms": ["Intercept", term], "description": ""}
    output = Output("fit.json", "model", "python", b"{}", entry, model=model)
    findings = leaks(output, ctx, person["id"])
    assert sorted(f.message.split(" holds")[0].split(" that")[0] for f in findings) == [
        "the manifest entry's field terms[1]",
        "the model has a key under coefficients",
    ]


def test_findings_are_capped_per_file(ctx: Context, city: City) -> None:
    phones = [str(p["phone"]) for p in city.rows["residents"][:60]]
    findings = leaks(table_output(pa.table({"phone": phones, "n": list(range(60))})), ctx)
    assert len(findings) == MAX_FINDINGS + 1
    assert findings[-1].row is None and findings[-1].message.startswith("40 more places")


def test_without_an_index_nothing_is_found(person: dict[str, str]) -> None:
    table = pa.table({"id": [person["id"]]})
    assert identifier_leakage(table_output(table), Context()) == []
    assert set(RULES) == {IDENTIFIER_LEAKAGE}


# -- no false alarms ------------------------------------------------------------------


def test_a_legitimate_aggregate_table_passes(ctx: Context) -> None:
    table = aggregate_table(2_000)
    entry = {
        "kind": "table",
        "description": "各区县分行业社会保险缴费人数与平均缴费基数（2015-2025 年）",
        "columns": table.column_names,
        "group_by": ["district_code", "district_name", "year", "industry"],
        "measures": ["mean_base", "mean_rounded", "total_amount", "share", "employees"],
        "count": "n",
        "rows": table.num_rows,
    }
    assert identifier_leakage(table_output(table, entry=entry), ctx) == []


def test_ordinary_report_text_passes(ctx: Context) -> None:
    text = (
        "重庆市 2025 年社会保险缴费情况报告\n"
        "一、总体情况：全市参保单位 12,345 家，参保人数 1,234,567 人，同比增长 4.2%。\n"
        "二、分区情况：渝中区（500103）、江北区（500105）、渝北区（500112）平均缴费基数最高，\n"
        "分别为 7,412.35 元、7,105.80 元和 6,998.12 元；万州区 2024-01-01 至 2024-12-31 期间\n"
        "参保率 63.81234567%。三、行业：制造业、批发和零售业、信息传输、软件和信息技术服务业。\n"
        "The mean contribution base rose from 6,512.4431287 yuan in 2023 to 6,781.0092 yuan in "
        "2024 (n = 138,123; 95% CI 6,702.11-6,859.90). Districts 500101-500156 are covered.\n"
    )
    output = Output("report.md", "text", "python", text.encode(), {"kind": "text"}, text=text)
    assert identifier_leakage(output, ctx) == []


def test_a_million_cells_are_checked_in_seconds(ctx: Context) -> None:
    table = aggregate_table(100_000, seed=11)
    output = table_output(table)
    start = time.perf_counter()
    findings = identifier_leakage(output, ctx)
    elapsed = time.perf_counter() - start
    assert findings == []
    assert elapsed < 30, f"{table.num_rows * table.num_columns} cells took {elapsed:.1f} s"


# -- the file's bytes, whatever was parsed from them ------------------------------------


def _png(*chunks: tuple[bytes, bytes]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    middle = b"".join(chunk(kind, body) for kind, body in chunks)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + middle + pixels + chunk(b"IEND", b"")


def test_png_chunks_are_read_and_named_by_position(ctx: Context, person: dict[str, str]) -> None:
    rid = person["id"]
    content = _png(
        (b"tEXt", b"Software\x00matplotlib"),
        (b"zTXt", b"Comment\x00\x00" + zlib.compress(f"sample {rid}".encode())),
        (b"iTXt", b"Title\x00\x01\x00zh\x00\x00" + zlib.compress(person["name"].encode())),
        (b"quIt", encodings(rid)["base64"].encode()),
    )
    output = Output("f.png", "figure", "python", content, {"kind": "figure"})
    assert sorted(f.message.split(" holds")[0] for f in leaks(output, ctx, rid)) == [
        "the image's chunk 3 (zTXt)",
        "the image's chunk 4 (iTXt)",
        "the image's chunk 5 (of an unknown type)",
    ]


def test_a_png_that_cannot_be_read_fails_with_or_without_an_index(ctx: Context) -> None:
    broken = _png((b"tEXt", b"Comment\x00ok"))[:-5]
    output = Output("f.png", "figure", "python", broken, {"kind": "figure"})
    for context in (ctx, Context()):
        (finding,) = identifier_leakage(output, context)
        assert finding.verdict == Verdict.FAIL and "cannot be read" in finding.message
    many = _png(*[(b"tEXt", b"k\x00v")] * 1_000)
    assert identifier_leakage(replace(output, content=many), Context())


def test_parquet_metadata_is_read_and_named(ctx: Context, person: dict[str, str]) -> None:
    phone = person["phone"]
    table = aggregate_table(5).replace_schema_metadata({"made_by": f"tel {phone}"})
    field = table.schema.field("n").with_metadata({"note": person["credit_code"]})
    table = table.cast(table.schema.set(table.schema.get_field_index("n"), field))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    content = sink.getvalue()
    output = Output("t.parquet", "table", "python", content, {}, table=pq.read_table(sink))
    messages = sorted(f.message.split(" holds")[0] for f in leaks(output, ctx, phone))
    assert messages == [
        "the Parquet file's key-value metadata (entry 1)",
        "the Parquet file's key-value metadata (entry 2)",  # ARROW:schema, decoded
        "the field metadata of column 5",
    ]
    unreadable = replace(output, content=b"PAR1" + content[4:-12] + b"\x00" * 8 + b"PAR1")
    assert [f.message for f in identifier_leakage(unreadable, ctx)] == [
        "the Parquet file cannot be read in full, so it cannot be checked"
    ]


def test_bytes_are_read_whatever_kind_was_declared(ctx: Context, person: dict[str, str]) -> None:
    rid = person["id"]
    as_figure = Output("t.csv", "figure", "python", f"a,b\n{rid},1\n".encode(), {})
    duplicated = f'{{"note": "{rid}", "note": "x"}}'.encode()
    as_model = Output("m.json", "model", "python", duplicated, {}, model={"note": "x"})
    listed = Output("m.json", "model", "python", json.dumps([[{"k": rid}]]).encode(), {})
    assert leaks(as_figure, ctx, rid)[0].message.endswith("on line 2")
    assert [f.message.split(" holds")[0] for f in leaks(as_model, ctx, rid)] == [
        "the model's field note"
    ]
    assert leaks(listed, ctx, rid)[0].message.startswith("the model's field [0][0].k")


def test_full_width_and_invisible_characters_hide_nothing(
    ctx: Context, person: dict[str, str]
) -> None:
    name, phone = person["name"], person["phone"]
    wide = "".join(chr(ord(c) + 0xFEE0) for c in phone)
    table = pa.table({"district": ["渝中区", "江北区"], f"n\u200b{wide}": [1, 2]})
    entry = {"description": f"负责人：{name}／李四", "notes": {"\u200c".join(name): 1}}
    findings = leaks(table_output(table, entry=entry), ctx, phone, name)
    assert sorted(f.message.split(" holds")[0].split(" that")[0] for f in findings) == [
        "the manifest entry has a key under notes",
        "the manifest entry's field description",
        "the name of column 2",
    ]
