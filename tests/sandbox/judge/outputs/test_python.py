"""A Python job's own files: only what its manifest declares becomes an output."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pytest

from sandbox.judge.outputs.python import read_python_outputs
from sandbox.judge.rules import Verdict


def manifest(*entries: dict[str, object]) -> bytes:
    return json.dumps({"version": 1, "outputs": list(entries)}).encode()


def entry(name: str, content: bytes, **extra: object) -> dict[str, object]:
    return {"file": name, "sha256": hashlib.sha256(content).hexdigest(), **extra}


def test_only_declared_files_are_outputs() -> None:
    table = b"district,n\n500101,40\n"
    files = {
        "manifest.json": manifest(
            entry("t.csv", table, kind="table", group_by=["district"], measures=[], count="n")
        ),
        "t.csv": table,
        "raw.csv": b"everything",
    }
    outputs, findings = read_python_outputs(files)
    assert [o.file for o in outputs] == ["t.csv"]
    assert outputs[0].table is not None and outputs[0].count == "n"
    # Group keys stay text as written; declared counts are numbers.
    assert outputs[0].table.column("district").type == pa.string()
    assert outputs[0].table.column("n").to_pylist() == [40.0]
    assert [(f.rule, f.file, f.verdict) for f in findings] == [
        ("undeclared_file", "raw.csv", Verdict.PASS)
    ]


@pytest.mark.parametrize(
    "files",
    [
        {"manifest.json": b"{not json"},
        {"manifest.json": manifest({"file": "../etc/passwd", "kind": "text"})},
        {"manifest.json": manifest({"file": "a.txt", "kind": "text"})},  # missing file
        {"manifest.json": manifest({"kind": "text"})},
    ],
)
def test_broken_manifests_fail(files: dict[str, bytes]) -> None:
    outputs, findings = read_python_outputs(files)
    assert outputs == []
    assert any(f.rule == "manifest" and f.verdict == Verdict.FAIL for f in findings)


def test_no_manifest_releases_nothing() -> None:
    outputs, findings = read_python_outputs({"x.csv": b"a"})
    assert outputs == [] and [f.rule for f in findings] == ["undeclared_file"]
