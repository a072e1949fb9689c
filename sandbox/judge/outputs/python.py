"""Stage 5 of the data flow, a Python job's own files: the outputs its manifest declares.

``read_python_outputs`` turns the files collected from a Python job's real
run into outputs: only those ``manifest.json`` declares, each read by its
declared kind (CSV and Parquet tables, model summaries, text; anything else
is checked as a file). Specifications in the manifest (``publish_query``,
``publish_model``) are skipped: the trusted side computes them itself
(``sandbox/run/recompute.py``).

Invariants:
- Only declared files become outputs; an undeclared one is named in a
  finding and never released.
- A manifest that cannot be read, or an invalid entry, is a FAIL finding;
  a file that cannot be parsed as its declared kind is checked as an
  opaque file (kind ``other``).
- A CSV table is read as text, as written; only declared measures and
  counts become numbers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sandbox.container.sdk.specs import NAME_PATTERN
from sandbox.judge.rules.files import MANIFEST as MANIFEST_RULE
from sandbox.judge.types import Finding, Kind, Output, Verdict

MANIFEST = "manifest.json"
SPEC_KINDS = frozenset({"query", "glm"})  # manifest entries the trusted side recomputes
_KINDS = {"table", "model", "figure", "text"}


def read_python_outputs(files: Mapping[str, bytes]) -> tuple[list[Output], list[Finding]]:
    """The outputs a Python job declared in its manifest, and job-level findings."""
    findings: list[Finding] = []
    raw = files.get(MANIFEST)
    for name in sorted(set(files) - {MANIFEST}):
        findings.append(
            Finding(
                "undeclared_file",
                Verdict.PASS,
                name,
                "not declared in the manifest: it is not released",
            )
        )
    if raw is None:
        return [], findings
    try:
        manifest = json.loads(raw.decode("utf-8"))
        entries = manifest["outputs"]
        if not isinstance(entries, list):
            raise TypeError("outputs is not a list")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        findings.append(
            Finding(MANIFEST_RULE, Verdict.FAIL, MANIFEST, "the manifest cannot be read")
        )
        return [], findings
    outputs = []
    declared: set[str] = set()
    for entry in entries:
        if isinstance(entry, dict) and entry.get("kind") in SPEC_KINDS:
            continue  # a specification: the trusted side computes it (sandbox/run/recompute.py)
        file = entry.get("file") if isinstance(entry, dict) else None
        if (
            not isinstance(file, str)
            or not NAME_PATTERN.fullmatch(file)
            or file in declared
            or file == MANIFEST
        ):
            findings.append(
                Finding(MANIFEST_RULE, Verdict.FAIL, MANIFEST, "a manifest entry is invalid")
            )
            continue
        declared.add(file)
        findings = [f for f in findings if not (f.rule == "undeclared_file" and f.file == file)]
        content = files.get(file)
        if content is None:
            findings.append(
                Finding(MANIFEST_RULE, Verdict.FAIL, file, "declared in the manifest but not found")
            )
            continue
        outputs.append(_python_output(file, content, entry))
    return outputs, findings


def _python_output(name: str, content: bytes, entry: Mapping[str, Any]) -> Output:
    declared = entry.get("kind")
    kind: Kind = declared if declared in _KINDS else "other"
    base = Output(file=name, kind=kind, source="python", content=content, entry=entry)
    extension = name.rsplit(".", 1)[-1].lower()
    try:
        if kind == "table":
            if extension == "csv":
                table = _read_csv(content, entry)
            elif extension == "parquet":
                table = pq.read_table(io.BytesIO(content))
            else:
                return replace(base, kind="other")
            count = entry.get("count")
            return replace(
                base,
                table=table,
                group_by=tuple(str(c) for c in entry.get("group_by") or ()),
                measures=tuple(str(c) for c in entry.get("measures") or ()),
                count=count if isinstance(count, str) else None,
            )
        if kind == "model":
            document = json.loads(content.decode("utf-8"))
            return replace(base, model=document if isinstance(document, dict) else None)
        if kind == "text":
            return replace(base, text=content.decode("utf-8", errors="replace"))
    except (pa.ArrowInvalid, UnicodeDecodeError, ValueError, RecursionError):
        return replace(base, kind="other")
    return base


def _read_csv(content: bytes, entry: Mapping[str, Any]) -> pa.Table:
    """A CSV table as text, as written; declared measures and counts as numbers.

    Inferring types would lose what the rules must see: the hex of a
    pseudonym is all digits and would come back as a float.
    """
    first = content.split(b"\n", 1)[0].decode("utf-8")
    names = next(csv.reader([first]), [])
    text = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
    )
    table = pacsv.read_csv(io.BytesIO(content), convert_options=text)
    numeric = {*(entry.get("measures") or ()), entry.get("count")}
    for i, name in enumerate(table.column_names):
        if name in numeric:
            # Not numbers: the rules see the text.
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = table.set_column(i, name, pc.cast(table.column(i), pa.float64()))
    return table
