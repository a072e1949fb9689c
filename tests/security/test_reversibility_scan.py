"""An operator's Python job smuggles identifiers out where the identifier scan did not look.

The attacker writes the job: it reads the grant's view (pseudonyms) and
publishes outputs through the SDK's file formats, hiding each identifier
where the output rules used to be blind or in a form they did not know:

- PNG text chunks (tEXt, zTXt, compressed iTXt), a private chunk, bytes
  after IEND, and a PNG whose chunks cannot be read;
- Parquet metadata: the file's key-value metadata (``df.attrs``), a field's
  metadata, a nested field's name;
- JSON the checker parsed past: a duplicate key, a top-level list;
- full-width punctuation around a name, zero-width characters inside a
  pseudonym;
- the base64url (and decimal) of the 32 bytes a pseudonym spells;
- a text or Parquet file declared as a figure, so it was parsed as nothing.

Each output goes through the checker's own reading of a job's files
(``read_python_outputs``) and every output rule (``check_output``) with a
real fingerprint index (``build_for_pseudonyms`` over a view's Parquet
file, ``build_from_values`` for a dataset's names). Each must end with an
``identifier_leakage`` FAIL whose message quotes nothing of the value. On
the code before this scan, every attack here passed that rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import struct
import zlib

import matplotlib
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib import pyplot as plt
from PIL import Image, PngImagePlugin

from sandbox.judge.fingerprints import build_for_pseudonyms, build_from_values
from sandbox.judge.outputs.python import read_python_outputs
from sandbox.judge.rules import Context, Finding, Verdict, check_output

matplotlib.use("Agg")

KEY = b"grant-key".ljust(32, b"k")
PSEUDONYMS = [hmac.new(KEY, b"person-%d" % i, hashlib.sha256).hexdigest() for i in range(200)]
VICTIM = PSEUDONYMS[17]
NAME = "欧阳娜娜"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    view = tmp_path_factory.mktemp("view") / "residents.parquet"
    pq.write_table(pa.table({"person_id": PSEUDONYMS, "district_code": ["500103"] * 200}), view)
    index = build_for_pseudonyms(view, ["person_id"]).union(build_from_values([NAME, "张伟"]))
    return Context(fingerprints=index)


def judged(ctx: Context, file: str, content: bytes, kind: str) -> list[Finding]:
    """The findings on one output of a job, read as the checker reads a job's files."""
    entry = {"file": file, "kind": kind, "sha256": hashlib.sha256(content).hexdigest()}
    manifest = json.dumps({"outputs": [entry]}).encode()
    outputs, job_findings = read_python_outputs({"manifest.json": manifest, file: content})
    assert not [f for f in job_findings if f.verdict == Verdict.FAIL]
    (output,) = outputs
    _, findings = check_output(output, ctx)
    return findings


def leaked(findings: list[Finding], *secrets: str) -> bool:
    hits = [f for f in findings if f.rule == "identifier_leakage"]
    for f in hits:
        assert f.verdict == Verdict.FAIL
        for secret in secrets:
            assert secret[:8].lower() not in f.message.lower()
    return bool(hits)


def png(info: PngImagePlugin.PngInfo | None = None, extra: bytes = b"") -> bytes:
    sink = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 90, 160)).save(sink, "PNG", pnginfo=info)
    content = sink.getvalue()
    return content[:-12] + extra + content[-12:]


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# -- PNG --------------------------------------------------------------------------------


def test_a_pseudonym_in_a_figures_metadata_fails(ctx: Context) -> None:
    fig, ax = plt.subplots()
    ax.bar(["Yuzhong", "Jiangbei"], [120, 340])
    sink = io.BytesIO()
    fig.savefig(sink, format="png", metadata={"Description": f"cohort {VICTIM}"})
    plt.close(fig)
    assert leaked(judged(ctx, "bars.png", sink.getvalue(), "figure"), VICTIM)


@pytest.mark.parametrize("how", ["zTXt", "iTXt-compressed", "iTXt-translated-keyword"])
def test_a_pseudonym_in_a_compressed_or_international_text_chunk_fails(
    ctx: Context, how: str
) -> None:
    info = PngImagePlugin.PngInfo()
    if how == "zTXt":
        info.add_text("Comment", base64.b64encode(VICTIM.encode()).decode(), zip=True)
    elif how == "iTXt-compressed":
        info.add_itxt("Comment", VICTIM.encode().hex(), zip=True)
    else:
        info.add_itxt("Comment", "见附表", lang="zh", tkey=VICTIM[::-1])
    assert leaked(judged(ctx, "f.png", png(info), "figure"), VICTIM)


def test_a_pseudonym_in_a_private_chunk_fails(ctx: Context) -> None:
    content = png(
        extra=chunk(b"prVt", b"\x00\x01" + hashlib.sha256(VICTIM.encode()).digest().hex().encode())
    )
    assert leaked(judged(ctx, "f.png", content, "figure"), VICTIM)


@pytest.mark.parametrize("damage", ["after-iend", "bad-crc", "truncated", "bomb"])
def test_a_png_whose_chunks_cannot_be_read_fails(ctx: Context, damage: str) -> None:
    good = png()
    if damage == "after-iend":
        content = good + VICTIM.encode()
    elif damage == "bad-crc":
        text = chunk(b"tEXt", b"Comment\x00" + VICTIM.encode())
        content = png(extra=text[:-4] + b"\x00\x00\x00\x00")
    elif damage == "truncated":
        content = good[:-20]
    else:  # a zTXt chunk that inflates past the text limit
        body = b"Comment\x00\x00" + zlib.compress(b"0" * (4 << 20))
        content = png(extra=chunk(b"zTXt", body))
    assert leaked(judged(ctx, "f.png", content, "figure"))


# -- Parquet ----------------------------------------------------------------------------


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def counts() -> pd.DataFrame:
    return pd.DataFrame({"district_code": ["500103", "500105"], "n": [120, 340]})


def test_a_pseudonym_in_dataframe_attrs_fails(ctx: Context) -> None:
    frame = counts()
    frame.attrs["source"] = base64.urlsafe_b64encode(VICTIM.encode()).decode()
    sink = io.BytesIO()
    frame.to_parquet(sink)
    assert leaked(judged(ctx, "t.parquet", sink.getvalue(), "table"), VICTIM)


@pytest.mark.parametrize("where", ["file", "field", "field-key"])
def test_a_pseudonym_in_parquet_metadata_fails(ctx: Context, where: str) -> None:
    table = pa.Table.from_pandas(counts(), preserve_index=False)
    if where == "file":
        table = table.replace_schema_metadata({"note": VICTIM.upper()})
    else:
        meta = {"comment": VICTIM} if where == "field" else {VICTIM[::-1]: "1"}
        table = table.cast(table.schema.set(1, table.schema.field("n").with_metadata(meta)))
    assert leaked(judged(ctx, "t.parquet", parquet(table), "table"), VICTIM)


def test_a_pseudonym_in_a_parquet_file_declared_as_a_figure_fails(ctx: Context) -> None:
    nested = pa.table({"n": [120], "s": pa.array([{"x": 1}])})
    nested = nested.rename_columns(["n", "s"]).cast(
        pa.schema([("n", pa.int64()), ("s", pa.struct([(VICTIM[:20], pa.int64())]))])
    )
    assert leaked(judged(ctx, "t.parquet", parquet(nested), "figure"), VICTIM)


# -- JSON the checker parsed past -------------------------------------------------------


def test_a_duplicate_json_key_hiding_a_pseudonym_fails(ctx: Context) -> None:
    content = f'{{"kind": "ols", "note": "{VICTIM}", "note": "none"}}'.encode()
    assert leaked(judged(ctx, "fit.json", content, "model"), VICTIM)


def test_a_pseudonym_in_a_top_level_json_list_fails(ctx: Context) -> None:
    content = json.dumps([{"term": "x", "ref": VICTIM}]).encode()
    assert leaked(judged(ctx, "fit.json", content, "model"), VICTIM)


def test_a_text_declared_as_a_figure_is_still_read(ctx: Context) -> None:
    assert leaked(judged(ctx, "plot.txt", f"id,{VICTIM}\n".encode(), "figure"), VICTIM)


# -- forms the index did not know ---------------------------------------------------------


def test_a_name_between_full_width_punctuation_fails(ctx: Context) -> None:
    text = f"项目组成员：张三／{NAME}／李四。\n"
    assert leaked(judged(ctx, "notes.txt", text.encode(), "text"), NAME)


def test_zero_width_characters_inside_a_pseudonym_fail(ctx: Context) -> None:
    hidden = "\u200b".join(VICTIM[i : i + 4] for i in range(0, 64, 4))
    content = f"label,n\n{hidden},120\nother,340\n".encode()
    assert leaked(judged(ctx, "t.csv", content, "table"), VICTIM)
    name = "\u200d".join(NAME)
    assert leaked(judged(ctx, "t.json", json.dumps({"who": name}).encode(), "model"), NAME)


@pytest.mark.parametrize("form", ["base64url", "decimal"])
def test_the_bytes_a_pseudonym_spells_fail(ctx: Context, form: str) -> None:
    raw = bytes.fromhex(VICTIM)
    value = (
        base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if form == "base64url"
        else str(int.from_bytes(raw, "big"))
    )
    content = f"label,n\n{value},120\nother,340\n".encode()
    assert leaked(judged(ctx, "t.csv", content, "table"), VICTIM)


# -- and what must still pass -------------------------------------------------------------


def test_an_ordinary_figure_and_table_pass(ctx: Context) -> None:
    fig, ax = plt.subplots()
    ax.plot([2019, 2020, 2021], [6512.4, 6781.0, 6998.1])
    sink = io.BytesIO()
    fig.savefig(sink, format="png", metadata={"Title": "缴费基数", "Author": "analyst"})
    plt.close(fig)
    assert not leaked(judged(ctx, "line.png", sink.getvalue(), "figure"))
    table = counts()
    table.attrs["source"] = "社会保险 2025"
    sink = io.BytesIO()
    table.to_parquet(sink)
    assert not leaked(judged(ctx, "t.parquet", sink.getvalue(), "table"))
