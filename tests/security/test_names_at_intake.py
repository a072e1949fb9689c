"""A provider's names are checked once, at upload, and only names every stage can carry are kept.

The adversary is a provider: its file's column names reach the policy, the
grant's scope lines (Casbin objects, where ``*`` is a wildcard), the views,
the dummy data, the SQL the trusted side runs, the catalogue and the console.
Names that are not letters, digits and ``_`` (quotes, ``/``, ``*``, spaces,
controls, bidirectional marks), too long, not NFC, or equal to another once
case and width are ignored are refused with 422, naming each column and
proposing a safe name; nothing is stored. ``rename_columns`` stores the
proposed names instead and shows the mapping.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.errors import NamesRefused
from sandbox.intake.names import MAX_NAME_CHARS, check_columns, is_valid_name, safe_names
from sandbox.intake.registry import Registry
from tests.support.gateway import make_gateway

HOSTILE = [
    "pid\" AS x FROM generated; COPY (SELECT 1) TO '/tmp/x'; --",
    "a/b",
    "*",
    "amount; DROP TABLE t",
    "name -- comment",
    "line\nbreak",
    "tab\there",
    "nul\x00byte",
    "rtl\u202emark",
    "zero\u200bwidth",
    "x" * 1000,
    "e\u0301",  # not NFC
    "__dsr_row",  # reserved by the evidence rewrite
    "收入（元）",  # full-width parentheses
]
FINE = ["person_id", "收入", "年龄段", "x2", "Ｉｎｃｏｍｅ"]


def _csv(header: list[str], rows: int = 3) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for i in range(rows):
        w.writerow([f"p{i}" if j == 0 else str(i) for j in range(len(header))])
    return out.getvalue().encode()


def _parquet(header: list[str], rows: int = 3) -> bytes:
    table = pa.table(
        {h: [f"p{i}" if j == 0 else str(i) for i in range(rows)] for j, h in enumerate(header)}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize("bad", HOSTILE)
def test_each_hostile_name_is_refused_with_a_safe_proposal(bad: str) -> None:
    problems = check_columns(["person_id", bad])
    assert [p.position for p in problems] == [2]
    proposed = problems[0].proposed
    assert is_valid_name(proposed) and proposed != "person_id"
    assert len(proposed) <= MAX_NAME_CHARS


def test_names_equal_once_case_and_width_are_ignored_are_refused() -> None:
    problems = check_columns(["income", "INCOME", "ｉｎｃｏｍｅ", "收入"])
    assert [p.position for p in problems] == [2, 3]
    assert all("same name as column 1" in p.reason for p in problems)
    assert len({n.casefold() for n in safe_names(["income", "INCOME", "ｉｎｃｏｍｅ"])}) == 3


def test_fine_names_pass() -> None:
    assert check_columns(FINE) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_registry_refuses_and_stores_nothing(tmp_path: Path, fmt: str) -> None:
    registry = Registry(tmp_path / "var")
    header = ["person_id", *HOSTILE[:6], "ok"]
    if fmt == "csv":
        header = [h for h in header if "\x00" not in h and "\n" not in h]
    path = tmp_path / f"src.{fmt}"
    path.write_bytes(_csv(header) if fmt == "csv" else _parquet(header))
    with pytest.raises(NamesRefused) as refused:
        registry.register(path, name="people", entity_column="person_id", provider="p")
    shown = [p["position"] for p in refused.value.problems]
    assert shown == list(range(2, len(header)))
    assert registry.names() == []
    assert not list((tmp_path / "var" / "datasets").iterdir())


def test_registry_renames_on_request_and_records_the_mapping(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "var")
    header = [HOSTILE[0], "收入（元）", "Income", "income"]
    path = tmp_path / "src.csv"
    path.write_bytes(_csv(header))
    stored = registry.register(
        path, name="people", entity_column=HOSTILE[0], provider="p", rename_columns=True
    )
    names = [c.name for c in stored.columns]
    assert all(is_valid_name(n) for n in names)
    assert stored.entity_column == names[0]
    assert dict(stored.renamed) == {
        HOSTILE[0]: names[0],
        "收入（元）": names[1],
        "income": names[3],
    }
    assert registry.get("people").renamed == stored.renamed  # kept in the metadata


def test_upload_answers_422_naming_each_column_and_stores_nothing(tmp_path: Path) -> None:
    with make_gateway(tmp_path / "var") as gw:
        header = ["person_id", "x\"; COPY (SELECT 1) TO '/tmp/owned'; --", "a/b", "*", "ok"]
        r = gw.upload("provider", "people", "people.csv", _csv(header), "person_id", delimiter=",")
        assert r.status_code == 422, r.text
        problems = r.json()["detail"]["problems"]
        assert [p["position"] for p in problems] == [2, 3, 4]
        assert [p["column"] for p in problems][1:] == header[2:4]
        assert problems[0]["column"].startswith('x"; COPY')  # (an absolute path is never shown)
        assert all(is_valid_name(p["proposed"]) for p in problems)
        assert gw.get("provider", "/v1/datasets").json() == []
        assert not Path("/tmp/owned").exists()
        # Asked to, the gateway stores the proposed names and shows the mapping.
        r = gw.upload(
            "provider",
            "people",
            "people.csv",
            _csv(header),
            "person_id",
            delimiter=",",
            rename_columns="true",
        )
        assert r.status_code == 201, r.text
        version = r.json()["version"]
        assert [c["name"] for c in version["columns"]] == [
            "person_id",
            *[p["proposed"] for p in problems],
            "ok",
        ]
        assert [m["original"] for m in version["renamed"]] == header[1:4]
        events = gw.get("auditor", "/v1/audit/events").text.splitlines()
        registered = [json.loads(e) for e in events if '"dataset.registered"' in e]
        assert len(registered) == 1 and len(registered[0]["detail"]["renamed"]) == 3


def test_an_unusable_entity_column_name_is_refused_at_upload(tmp_path: Path) -> None:
    """The issue's attack: the entity column's name carries SQL."""
    entity = "person_id\" AS VARCHAR) AS a FROM generated); COPY (SELECT 1) TO '/tmp/x'; --"
    with make_gateway(tmp_path / "var") as gw:
        r = gw.upload(
            "provider", "people", "p.csv", _csv([entity, "income"]), entity, delimiter=","
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["problems"][0]["position"] == 1
