"""A refusal tells the caller what to do, never how the gateway is built.

Every 4xx and 5xx body carries a reference id and no path, engine message or
stack; the gateway's log holds the details under that reference
(``gateway.refusals``). An adversary probing with broken files and broken
requests learns nothing about the data directory, the cache, the engines or
the code.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.gateway import Gateway, make_gateway

ENGINE = re.compile(
    r"Traceback|File \"|[A-Z]\w* Error:|Exception|(?i:duckdb|sqlite|psycopg|sqlalchemy)|OutOfMemory"
)
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:tmp|var|root|home|usr|etc|work|opt)/")


def no_internals(r: httpx.Response, data: Path) -> str:
    """The reference of refusal ``r``, after checking its body shows nothing internal."""
    assert r.status_code >= 400, r.text
    assert str(data) not in r.text
    assert not ABSOLUTE_PATH.search(r.text), r.text
    assert not ENGINE.search(r.text), r.text
    body = r.json()
    assert re.fullmatch(r"ref-[0-9a-f]{16}", body.get("reference", "")), body
    return str(body["reference"])


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "cannot build the view of 'x': IO Error: No files found that match the "
            'pattern "/var/dsr/cache/.build-1/.raw-x.parquet"',
            "cannot build the view of 'x' (details withheld: see the reference)",
        ),
        ("OutOfMemoryException: could not allocate 8 MB", None),
        ("see /var/lib/dsr/cache/abc for it", "see … for it"),
        ('the model cannot serve: ValueError("bad shape")', None),
        (
            "line 1: syntax error: '(' was never closed",
            "line 1: syntax error: '(' was never closed",
        ),
        ("1/2 of the cells, and/or the margins", "1/2 of the cells, and/or the margins"),
    ],
)
def test_public_text_cuts_paths_and_engine_messages(text: str, shown: str | None) -> None:
    from gateway.refusals import public_text

    out = public_text(text)
    assert not ENGINE.search(out) and "/var/" not in out
    if shown is not None:
        assert out == shown


def _dataset(gw: Gateway, name: str) -> None:
    t = pa.table(
        {
            "pid": [f"p{i}" for i in range(50)],
            "code": [f"c{i}" for i in range(50)],
            "g": ["a", "b"] * 25,
        }
    )
    sink = io.BytesIO()
    pq.write_table(t, sink)
    assert gw.upload("provider", name, "g.parquet", sink.getvalue(), "pid").status_code == 201
    policy = (
        f"dataset: {name}\nentity_column: pid\nk: 2\ncolumns:\n"
        "  pid: {class: identifier, level: 4, visibility: join_key, domain: {format: uuid}}\n"
        "  code: {class: identifier, level: 2, visibility: plain, "
        "plain_override: a public register, domain: {format: uuid}}\n"
        "  g: {class: attribute, level: 1, visibility: plain, domain: {categories: [a, b]}}\n"
    )
    assert gw.put_policy("provider", name, policy).status_code == 200


def test_a_broken_upload_is_refused_in_our_words(tmp_path: Path) -> None:
    data = tmp_path / "var"
    with make_gateway(data) as gw:
        r = gw.upload("provider", "bad", "a.parquet", b"id,x\n1,2\n", "id")
        assert r.status_code == 422
        no_internals(r, data)
        assert "not a readable Parquet file" in r.json()["detail"]
        rows = b"id,x\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(20)) + b'1,"x\n'
        r = gw.upload("provider", "bad", "b.csv", rows, "id")
        assert r.status_code == 422
        no_internals(r, data)


def test_a_server_error_gives_a_reference_and_the_log_the_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The trusted side's own files broken under it: 500, nothing but the reference."""
    data = tmp_path / "var"
    with make_gateway(data) as gw:
        _dataset(gw, "good")
        gw.grant_through_requests(
            "operator", "provider", "s", [{"dataset": "good", "columns": ["pid", "code", "g"]}]
        )
        for stored in (data / "datasets" / "good").rglob("data.parquet"):
            stored.write_bytes(b"not parquet" * 8)
        with caplog.at_level(logging.INFO, logger="dsr.gateway.refusals"):
            r = gw.get("operator", "/v1/catalog/good/dummy")
        assert r.status_code == 500
        ref = no_internals(r, data)
        assert set(r.json()) == {"detail", "reference"}
        logged = [rec for rec in caplog.records if ref in rec.getMessage()]
        assert logged and logged[0].exc_info is not None  # the details, under the reference


def test_every_refusal_carries_a_reference(tmp_path: Path) -> None:
    data = tmp_path / "var"
    with make_gateway(data) as gw:
        c = gw.client
        answers = {
            401: c.get("/v1/me"),
            403: gw.get("operator", "/v1/accounts"),
            404: gw.get("operator", "/v1/jobs/job-0000000000000000"),
            405: c.delete("/v1/health"),
            413: gw.post("admin", "/v1/accounts", content=b"x" * (2 << 20)),
            422: gw.post("admin", "/v1/accounts", json={"name": 7}),
        }
        for status, r in answers.items():
            assert r.status_code == status, (status, r.text)
            no_internals(r, data)
