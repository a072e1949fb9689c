"""Reversibility matrix: every (encoding x place) an operator could get an identifier out by.

Each combination builds an output the way a job writes it (CSV and Parquet
through pyarrow, PNG text chunks through Pillow, JSON through ``json``),
with one identifier hidden in one place under one encoding, and checks it
with ``identifier_leakage`` against real fingerprint indexes: a view's
pseudonyms (``build_for_pseudonyms``) and a dataset's resident IDs and
mobiles (``build_from_values``). Every combination must be found, with a
FAIL whose message quotes no part of the value; innocent outputs (Chinese
district names, numbers, words, dates in every place) must pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import matplotlib
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from matplotlib import pyplot as plt
from PIL import Image, PngImagePlugin

from sandbox.judge.fingerprints import (
    FingerprintIndex,
    base32,
    build_for_pseudonyms,
    build_from_values,
)
from sandbox.judge.rules.leakage import IDENTIFIER_LEAKAGE, identifier_leakage
from sandbox.judge.types import Context, Finding, Output, Verdict
from sandbox.synthetic import identifiers

matplotlib.use("Agg")

RNG = random.Random(2027)
SECRETS = {
    "pseudonym": hmac.new(b"k" * 32, b"person-17", hashlib.sha256).hexdigest(),
    "resident_id": identifiers.resident_id(RNG),
    "mobile": identifiers.mobile(RNG),
}
OTHER_PSEUDONYMS = [hmac.new(b"k" * 32, b"p%d" % i, hashlib.sha256).hexdigest() for i in range(50)]


def full_width(v: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in v)


def every(n: int, sep: str) -> Callable[[str], str]:
    return lambda v: sep.join(v[i : i + n] for i in range(0, len(v), n))


def zero_width(mark: str) -> Callable[[str], str]:
    return lambda v: mark.join(v[i : i + 3] for i in range(0, len(v), 3))


def hexed(v: str) -> str:
    return v.encode().hex()


ENCODINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda v: v,
    "upper": str.upper,
    "lower": str.lower,
    "hex": hexed,
    "HEX": lambda v: hexed(v).upper(),
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64-urlsafe": lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
    "base64-nopad": lambda v: base64.b64encode(v.encode()).decode().rstrip("="),
    "base64url-nopad": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "base32": lambda v: base64.b32encode(v.encode()).decode(),
    "base32-nopad-lower": lambda v: base64.b32encode(v.encode()).decode().rstrip("=").lower(),
    "reversed": lambda v: v[::-1],
    "reversed-hex": lambda v: hexed(v)[::-1],
    "hex-of-reversed": lambda v: hexed(v[::-1]),
    **{f"sep{sep!r}-every-{n}": every(n, sep) for sep in "- :._/" for n in (1, 4)},
    "hex-colons": lambda v: every(2, ":")(hexed(v)),
    "full-width": full_width,
    "full-width-mixed": lambda v: "".join(full_width(c) if i % 2 else c for i, c in enumerate(v)),
    "full-width-hex": lambda v: full_width(hexed(v)),
    **{f"zero-width-{ord(z):04X}": zero_width(z) for z in "\u200b\u200c\u200d\ufeff"},
    "zero-width-base64": lambda v: zero_width("\u200b")(base64.b64encode(v.encode()).decode()),
    "md5": lambda v: hashlib.md5(v.encode()).hexdigest(),
    "sha1": lambda v: hashlib.sha1(v.encode()).hexdigest(),
    "sha256": lambda v: hashlib.sha256(v.encode()).hexdigest(),
    "SHA256": lambda v: hashlib.sha256(v.encode()).hexdigest().upper(),
}
# Forms only a 64-hex pseudonym has: prefixes, and the 32 bytes it spells.
PSEUDONYM_ENCODINGS: dict[str, Callable[[str], str]] = {
    "truncated-16": lambda v: v[:16],
    "truncated-24": lambda v: v[:24],
    "truncated-40": lambda v: v[:40],
    "bytes-base64": lambda v: base64.b64encode(bytes.fromhex(v)).decode(),
    "bytes-base64url-nopad": lambda v: (
        base64.urlsafe_b64encode(bytes.fromhex(v)).decode().rstrip("=")
    ),
    "bytes-base32": lambda v: base64.b32encode(bytes.fromhex(v)).decode(),
    "bytes-decimal": lambda v: str(int(v, 16)),
}


# -- outputs, as a job writes them ----------------------------------------------------


def csv_output(table: pa.Table, file: str = "t.csv") -> Output:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    content = sink.getvalue()
    names = table.column_names
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    parsed = pacsv.read_csv(io.BytesIO(content), convert_options=options)
    return Output(file, "table", "python", content, {"kind": "table"}, table=parsed)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def parquet_output(table: pa.Table, kind: Any = "table") -> Output:
    content = parquet_bytes(table)
    parsed = pq.read_table(io.BytesIO(content)) if kind == "table" else None
    return Output("t.parquet", kind, "python", content, {"kind": kind}, table=parsed)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(info: PngImagePlugin.PngInfo, extra: bytes = b"") -> bytes:
    """A 4x4 image from Pillow; ``extra`` chunks go just before IEND."""
    sink = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(sink, "PNG", pnginfo=info)
    content = sink.getvalue()
    return content[:-12] + extra + content[-12:]


def png_output(info: PngImagePlugin.PngInfo, extra: bytes = b"") -> Output:
    content = png_bytes(info, extra)
    return Output("figure.png", "figure", "python", content, {"kind": "figure"})


def json_output(document: Any, kind: Any = "other") -> Output:
    content = json.dumps(document, ensure_ascii=False).encode()
    model = document if kind == "model" and isinstance(document, dict) else None
    return Output("result.json", kind, "python", content, {"kind": kind}, model=model)


def text_output(text: str) -> Output:
    return Output("notes.md", "text", "python", text.encode(), {"kind": "text"}, text=text)


def aggregate(**extra: list[Any]) -> pa.Table:
    return pa.table({"district": ["渝中区", "江北区"], "n": [120, 340], **extra})


def _png_text(enc: str, how: str) -> Output:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "matplotlib version 3.11")
    if how == "tEXt":
        info.add_text("Comment", f"made for {enc}")
    elif how == "tEXt-keyword":  # written by hand: Pillow keeps to Latin-1 and 79 bytes
        return png_output(info, extra=chunk(b"tEXt", enc.encode() + b"\x00x"))
    elif how == "zTXt":
        info.add_text("Comment", f"made for {enc}", zip=True)
    elif how == "iTXt":
        info.add_itxt("Comment", f"made for {enc}", lang="zh", tkey="说明")
    elif how == "iTXt-compressed":
        info.add_itxt("Comment", f"made for {enc}", zip=True)
    return png_output(info)


def _parquet_meta(enc: str, how: str) -> Output:
    table = aggregate()
    if how == "kv":
        table = table.replace_schema_metadata({"source": f"run {enc}"})
    elif how == "kv-key":
        table = table.replace_schema_metadata({enc: "1"})
    elif how == "field":
        field = table.schema.field("n").with_metadata({"comment": enc})
        table = table.cast(table.schema.set(1, field))
    elif how == "nested-name":
        inner = pa.array([{enc: 1}, {enc: 2}])
        table = table.append_column("s", inner)
    return parquet_output(table)


PLACES: dict[str, Callable[[str], Output]] = {
    "csv-cell": lambda e: csv_output(aggregate(label=["a", e])),
    "parquet-cell": lambda e: parquet_output(aggregate(label=["a", e])),
    "csv-column-name": lambda e: csv_output(pa.table({"district": ["渝中区"], e: [1]})),
    "parquet-column-name": lambda e: parquet_output(pa.table({"district": ["渝中区"], e: [1]})),
    "file-name": lambda e: Output(f"report_{e}.csv", "other", "python", b"a\n", {}),
    "json-key-deep": lambda e: json_output({"a": [{"b": {"c": {e: 1}}}]}),
    "json-value-deep": lambda e: json_output({"a": [1, {"b": [f"ref {e}"]}]}),
    "json-duplicate-key": lambda e: Output(
        "r.json", "model", "python", f'{{"t": "{e}", "t": "x"}}'.encode(), {}, model={"t": "x"}
    ),
    "model-key": lambda e: json_output({"coefficients": {f"C(g)[T.{e}]": 0.5}}, "model"),
    "model-top-level-list": lambda e: json_output([{"term": e}], "model"),
    "text-line": lambda e: text_output(f"# 报告\n\n见附表。\nref: {e} (appendix)\n"),
    "text-as-other": lambda e: Output("n.txt", "other", "python", f"x\n{e}\n".encode(), {}),
    "manifest-field": lambda e: Output(
        "t.csv", "table", "python", b"", {"description": f"by {e}"}, table=aggregate()
    ),
    "manifest-key": lambda e: Output(
        "t.csv", "table", "python", b"", {"notes": {e: "ok"}}, table=aggregate()
    ),
    "png-tEXt": lambda e: _png_text(e, "tEXt"),
    "png-tEXt-keyword": lambda e: _png_text(e, "tEXt-keyword"),
    "png-zTXt": lambda e: _png_text(e, "zTXt"),
    "png-iTXt": lambda e: _png_text(e, "iTXt"),
    "png-iTXt-compressed": lambda e: _png_text(e, "iTXt-compressed"),
    "parquet-kv-metadata": lambda e: _parquet_meta(e, "kv"),
    "parquet-kv-key": lambda e: _parquet_meta(e, "kv-key"),
    "parquet-field-metadata": lambda e: _parquet_meta(e, "field"),
    "parquet-nested-field-name": lambda e: _parquet_meta(e, "nested-name"),
    "parquet-as-other": lambda e: parquet_output(aggregate(label=["a", e]), kind="other"),
}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    view = tmp_path_factory.mktemp("view") / "view.parquet"
    keys = [SECRETS["pseudonym"], *OTHER_PSEUDONYMS]
    pq.write_table(pa.table({"person_id": keys, "district": ["渝中区"] * len(keys)}), view)
    dataset = build_from_values([SECRETS["resident_id"], SECRETS["mobile"], "张伟", "欧阳娜娜"])
    index: FingerprintIndex = build_for_pseudonyms(view, ["person_id"]).union(dataset)
    return Context(fingerprints=index)


def leaks(output: Output, ctx: Context, secret: str) -> list[Finding]:
    findings = identifier_leakage(output, ctx)
    for f in findings:
        assert f.rule == IDENTIFIER_LEAKAGE and f.verdict == Verdict.FAIL
        for part in (secret, secret[:8], secret[-8:], hexed(secret)[:16]):
            assert part.lower() not in f.message.lower()
            assert f.column is None or part.lower() not in f.column.lower()
    return findings


ALL_ENCODINGS = {**ENCODINGS, **PSEUDONYM_ENCODINGS}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("encoding", ALL_ENCODINGS)
def test_every_encoding_in_every_place_is_found(ctx: Context, encoding: str, place: str) -> None:
    kinds = ["pseudonym"] if encoding in PSEUDONYM_ENCODINGS else list(SECRETS)
    missed = [
        who
        for who in kinds
        if not leaks(PLACES[place](ALL_ENCODINGS[encoding](SECRETS[who])), ctx, SECRETS[who])
    ]
    assert missed == [], f"{encoding} in {place} was not found for {missed}"


@pytest.mark.parametrize("encoding", ALL_ENCODINGS)
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_split_across_adjacent_cells_is_found(ctx: Context, encoding: str, kind: str) -> None:
    encoded = ALL_ENCODINGS[encoding](SECRETS["pseudonym"])
    half = len(encoded) // 2
    make = csv_output if kind == "csv" else parquet_output
    across = aggregate(a=["x", encoded[:half]], b=["y", encoded[half:]])
    down = pa.table({"label": ["x", encoded[:half], encoded[half:], "y"], "n": [1, 2, 3, 4]})
    for table in (across, down):
        assert leaks(make(table), ctx, SECRETS["pseudonym"])


def test_names_are_found_whole_in_every_place_and_through_invisible_marks(ctx: Context) -> None:
    for name in ("张伟", "张\u200b伟", "\ufeff欧阳娜娜", "欧阳\u200d娜娜"):
        outputs = [
            csv_output(aggregate(who=["李四", name])),
            parquet_output(aggregate(who=["李四", name])),
            json_output({"people": [{"name": name}]}),
            text_output(f"负责人：{name}。\n"),
            _png_text(name, "iTXt-compressed"),
            _parquet_meta(name, "kv"),
        ]
        for output in outputs:
            assert leaks(output, ctx, name), (output.file, output.kind)


# -- innocent outputs -----------------------------------------------------------------

INNOCENT = [
    "渝中区",
    "江北区 沙坪坝区 九龙坡区",
    "两江新区（直管区）",
    "500103",
    "2024-01-01",
    "2025年12月31日",
    "12,345",
    "1234567.891",
    "0.6381234567",
    "mean contribution base",
    "制造业、批发和零售业",
    "ＡＢＣ　１２３",  # full-width letters and digits of no identifier
    "z\u200bero width",
    "matplotlib version 3.11.2, https://matplotlib.org",
    hashlib.sha256(b"an unrelated file").hexdigest(),
    base64.b64encode(b"an unrelated sentence here").decode(),
]


@pytest.mark.parametrize("place", sorted(set(PLACES) - {"file-name"}))
def test_innocent_values_pass_in_every_place(ctx: Context, place: str) -> None:
    for value in INNOCENT:
        output = PLACES[place](value)
        assert identifier_leakage(output, ctx) == [], (place, value)


def test_innocent_file_names_pass(ctx: Context) -> None:
    for name in ("渝中区_2025.csv", "counts_500103.csv", "report-2024-01-01.md"):
        output = Output(name, "other", "python", b"a\n", {})
        assert identifier_leakage(output, ctx) == [], name


def test_a_realistic_figure_and_parquet_pass(ctx: Context) -> None:
    fig, ax = plt.subplots()
    ax.bar(["Yuzhong", "Jiangbei"], [120, 340])
    sink = io.BytesIO()
    fig.savefig(sink, format="png", metadata={"Title": "各区参保人数", "Author": "analyst"})
    plt.close(fig)
    figure = Output("bars.png", "figure", "python", sink.getvalue(), {"kind": "figure"})
    assert identifier_leakage(figure, ctx) == []
    frame = pd.DataFrame({"district": ["渝中区", "江北区"], "n": [120, 340]}).set_index("district")
    sink = io.BytesIO()
    frame.to_parquet(sink)
    content = sink.getvalue()
    table = pq.read_table(io.BytesIO(content))
    output = Output("t.parquet", "table", "python", content, {"kind": "table"}, table=table)
    assert identifier_leakage(output, ctx) == []


def test_base32_matches_the_standard_library() -> None:
    values = ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "张伟", "x" * 37]
    found = base32(pa.array(values, pa.large_string())).to_pylist()
    assert found == [base64.b32encode(v.encode()).decode().rstrip("=").lower() for v in values]
