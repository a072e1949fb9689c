"""Stage 5 of the data flow, whole jobs: read what a job produced and judge it.

``read_python_outputs`` turns a Python job's collected files into outputs
(only the ones ``manifest.json`` declares); ``read_sql_output`` splits an
SQL product's result into the released table and its trusted evidence.
``view_facts`` computes, from the grant's views, the trusted numbers the
rules compare Python outputs against. ``check_job`` runs every rule, then
the differencing ledger, and decides.

Invariants:
- Only declared files are ever released; undeclared ones are named in a
  finding and dropped.
- The decision covers the job as a whole: released (every finding PASS),
  held (worst REVIEW) or blocked (worst FAIL); held and blocked outputs go
  to security review with their findings.
- Released SQL cells enter the ledger only when the release commits
  (``record_release``: check and record in one ledger transaction), so two
  jobs cannot pass against each other and a job refused after checking
  (scope at release, a reviewer's denial) records nothing.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sandbox.checks import (
    Context,
    Finding,
    Output,
    Thresholds,
    Verdict,
    ViewFacts,
    check_output,
    check_outputs,
    worst,
)
from sandbox.checks.files import MANIFEST as MANIFEST_RULE
from sandbox.checks.model import Kind
from sandbox.checks.sqlresult import table_csv
from sandbox.checks.values import cents, norm
from sandbox.errors import CheckError
from sandbox.ledger import Cell, DifferencingFinding, Ledger
from sandbox.policy import ColumnClass, ExposurePolicy, Visibility
from sandbox.sdk.specs import NAME_PATTERN
from sandbox.sqltext import ident

MANIFEST = "manifest.json"
_KINDS = {"table", "model", "figure", "text"}
SPEC_KINDS = frozenset({"query", "glm"})  # manifest entries the trusted side recomputes
_AUTO_ORDER = {"checked": 0, "sql_only": 1, "never": 2}


@dataclass(frozen=True)
class CheckedOutput:
    """One output as it would be released, with its verdict and findings."""

    output: Output
    content: bytes  # the bytes to release (after suppression)
    verdict: Verdict
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class JobReport:
    """The outcome of checking one job."""

    outputs: tuple[CheckedOutput, ...]
    findings: tuple[Finding, ...]  # job-level findings (collection, manifest, file count)
    verdict: Verdict
    decision: str  # "released" | "held" | "blocked"
    cells: tuple[Cell, ...] = field(default=())  # SQL cells for the ledger
    ledger_ids: tuple[int, ...] = field(default=())  # recorded cell ids, when released

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(f for o in self.outputs for f in o.findings)]

    def to_dict(self) -> dict[str, Any]:
        """The report as stored for the review queue: rules and places, never values."""

        def finding(f: Finding) -> dict[str, Any]:
            return {
                "rule": f.rule,
                "verdict": str(f.verdict),
                "file": f.file,
                "row": f.row,
                "column": f.column,
                "message": f.message,
            }

        return {
            "verdict": str(self.verdict),
            "decision": self.decision,
            "findings": [finding(f) for f in self.findings],
            "outputs": [
                {
                    "file": o.output.file,
                    "kind": o.output.kind,
                    "source": o.output.source,
                    "sha256": hashlib.sha256(o.content).hexdigest(),
                    "bytes": len(o.content),
                    "verdict": str(o.verdict),
                    "suppressed_rows": sorted(o.output.suppressed),
                    "findings": [finding(f) for f in o.findings],
                }
                for o in self.outputs
            ],
            "ledger_cells": len(self.cells),
            "ledger_ids": list(self.ledger_ids),
        }


def decide(verdict: Verdict) -> str:
    """A job's outputs are released, held for review or blocked, as a whole."""
    return {Verdict.PASS: "released", Verdict.REVIEW: "held", Verdict.FAIL: "blocked"}[verdict]


def thresholds_for(policies: Sequence[ExposurePolicy]) -> Thresholds:
    """The strictest rules of the datasets an output may derive from."""
    if not policies:
        return Thresholds()
    return Thresholds(
        k=max(p.k for p in policies),
        dominance_p=max(p.dominance.p for p in policies),
        dominance_n=max(p.dominance.n for p in policies),
        dominance_k=min(p.dominance.k for p in policies),
        small_cell_action="block"
        if any(p.small_cell_action == "block" for p in policies)
        else "suppress",
        auto_release=max((p.auto_release for p in policies), key=lambda m: _AUTO_ORDER[m]),
        max_rows=min(p.output_caps.max_rows for p in policies),
        max_bytes=min(p.output_caps.max_bytes for p in policies),
        max_files=min(p.output_caps.max_files for p in policies),
        model_min_df=max(p.models.min_df for p in policies),
        model_max_params_fraction=min(p.models.max_params_fraction for p in policies),
    )


# -- reading outputs ------------------------------------------------------------


def _finding(rule: str, verdict: Verdict, file: str, message: str) -> Finding:
    return Finding(rule, verdict, file, message)


def read_python_outputs(files: Mapping[str, bytes]) -> tuple[list[Output], list[Finding]]:
    """The outputs a Python job declared in its manifest, and job-level findings."""
    findings: list[Finding] = []
    raw = files.get(MANIFEST)
    for name in sorted(set(files) - {MANIFEST}):
        findings.append(
            _finding(
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
            _finding(MANIFEST_RULE, Verdict.FAIL, MANIFEST, "the manifest cannot be read")
        )
        return [], findings
    outputs = []
    declared: set[str] = set()
    for entry in entries:
        if isinstance(entry, dict) and entry.get("kind") in SPEC_KINDS:
            continue  # a specification: the trusted side computes it (sandbox/pipeline.py)
        file = entry.get("file") if isinstance(entry, dict) else None
        if (
            not isinstance(file, str)
            or not NAME_PATTERN.fullmatch(file)
            or file in declared
            or file == MANIFEST
        ):
            findings.append(
                _finding(MANIFEST_RULE, Verdict.FAIL, MANIFEST, "a manifest entry is invalid")
            )
            continue
        declared.add(file)
        findings = [f for f in findings if not (f.rule == "undeclared_file" and f.file == file)]
        content = files.get(file)
        if content is None:
            findings.append(
                _finding(
                    MANIFEST_RULE, Verdict.FAIL, file, "declared in the manifest but not found"
                )
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


def _csv(table: pa.Table) -> bytes:
    return table_csv(table)


def _release_bytes(output: Output) -> bytes:
    """The bytes to release: the table as suppressed, else the file unchanged."""
    if output.suppressed and output.table is not None:
        if output.file.lower().endswith(".parquet"):
            sink = io.BytesIO()
            pq.write_table(output.table, sink)
            return sink.getvalue()
        return _csv(output.table)
    return output.content


# -- trusted facts from the views ------------------------------------------------


def view_facts(
    views: Mapping[str, Path],
    policies: Mapping[str, ExposurePolicy],
    outputs: Sequence[Output],
    k: int,
) -> ViewFacts:
    """Entity counts, the combination counts the outputs need and rare sensitive values.

    ``views``: dataset -> its view's Parquet file (as mounted for the job).
    """
    entities: dict[str, int] = {}
    combos: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], int]] = {}
    quasi: dict[str, tuple[str, ...]] = {}
    sensitive: dict[str, frozenset[float]] = {}
    tables = [o for o in outputs if o.kind == "table" and o.table is not None]
    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
    try:
        for dataset, path in views.items():
            policy = policies[dataset]
            bound = {"view": str(path)}  # the path is bound, never pasted
            entity = ident(policy.entity_column)
            row = con.execute(
                f"SELECT count(DISTINCT {entity}) FROM read_parquet($view)",  # noqa: S608
                bound,
            ).fetchall()
            entities[dataset] = int(row[0][0])
            present = set(pq.read_schema(path).names)
            quasi[dataset] = tuple(
                name
                for name, col in policy.columns.items()
                if name in present
                and name != policy.entity_column
                and col.visibility in (Visibility.GROUP_KEY, Visibility.PLAIN)
            )
            for output in tables:
                if output.evidence is not None:
                    continue
                columns = tuple(c for c in output.group_by if c in quasi[dataset])
                if columns and (dataset, columns) not in combos:
                    cols_sql = ", ".join(ident(c) for c in columns)
                    rows = con.execute(
                        f"SELECT {cols_sql}, count(DISTINCT {entity}) "  # noqa: S608
                        "FROM read_parquet($view) GROUP BY ALL",
                        bound,
                    ).fetchall()
                    combos[(dataset, columns)] = {
                        tuple(norm(v) for v in r[:-1]): int(r[-1]) for r in rows
                    }
            if any(o.measures and o.evidence is None for o in tables):
                sensitive[dataset] = _rare_sensitive(con, path, policy, present, entity, k)
    finally:
        con.close()
    return ViewFacts(
        entities=entities, combos=combos, quasi_columns=quasi, sensitive_values=sensitive
    )


def _rare_sensitive(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    policy: ExposurePolicy,
    present: set[str],
    entity_sql: str,
    k: int,
) -> frozenset[float]:
    values: set[float] = set()
    for name, col in policy.columns.items():
        if name not in present or col.column_class != ColumnClass.SENSITIVE:
            continue
        try:
            rows = con.execute(
                f"SELECT round(TRY_CAST({ident(name)} AS DOUBLE), 2) AS v "  # noqa: S608
                "FROM read_parquet($view) WHERE v IS NOT NULL GROUP BY v "
                f"HAVING count(DISTINCT {entity_sql}) < {int(k)}",
                {"view": str(path)},
            ).fetchall()
        except duckdb.Error:
            continue
        values.update(c for (v,) in rows if (c := cents(v)) is not None)
    return frozenset(values)


# -- the job ------------------------------------------------------------------------


def _ledger_finding(d: DifferencingFinding) -> Finding:
    file, _, rest = d.location.partition(" row ")
    row = int(rest) - 1 if rest.isdigit() else None
    return Finding("differencing", Verdict.FAIL, file, d.message, row=row)


def sql_cells(output: Output) -> list[Cell]:
    """The ledger cells of an SQL product: one per released row and dataset."""
    if output.evidence is None or output.table is None:
        return []
    cells = []
    for dataset, sets in output.evidence.entity_sets.items():
        for row, keys in enumerate(sets):
            if row in output.suppressed:
                continue
            cells.append(Cell(dataset, keys, f"{output.file} row {row + 1}"))
    return cells


def check_job(
    outputs: Sequence[Output],
    ctx: Context,
    *,
    job_findings: Sequence[Finding] = (),
    ledger: Ledger | None = None,
    ledger_k: Mapping[str, int] | None = None,
    contexts: Sequence[Context] | None = None,
) -> JobReport:
    """Every rule over every output, then the ledger's check; the job's verdict and decision.

    Nothing is recorded here: released cells enter the ledger when the release
    commits (``record_release``), so a refusal after checking records nothing.
    ``contexts``: one per output (facts of the datasets it derives from);
    ``ctx`` for all when absent.
    """
    checked = []
    cells: list[Cell] = []
    for i, output in enumerate(outputs):
        released, findings = check_output(output, contexts[i] if contexts else ctx)
        checked.append((released, findings))
        cells.extend(sql_cells(released))
    job_level = [*job_findings, *check_outputs(outputs, ctx)]
    before = worst([*job_level, *(f for _, fs in checked for f in fs)])
    if ledger is not None and cells and before != Verdict.FAIL:  # blocked already: no need
        by_file: dict[str, list[Finding]] = {}
        for d in ledger.check(cells, dict(ledger_k or {})):
            f = _ledger_finding(d)
            by_file.setdefault(f.file, []).append(f)
        checked = [(o, fs + by_file.get(o.file, [])) for o, fs in checked]
    results = tuple(CheckedOutput(o, _release_bytes(o), worst(fs), tuple(fs)) for o, fs in checked)
    verdict = worst([*job_level, *(f for r in results for f in r.findings)])
    return JobReport(
        outputs=results,
        findings=tuple(job_level),
        verdict=verdict,
        decision=decide(verdict),
        cells=tuple(cells),
    )


def record_release(
    report: JobReport,
    ledger: Ledger,
    ledger_k: Mapping[str, int],
    *,
    job_id: str,
    grant_id: str,
    operator: str,
    query: str,
) -> tuple[int, ...]:
    """Record a reviewed and approved job's cells in the ledger (re-checked atomically).

    Returns the recorded ids; raises ``CheckError`` when the cells now fail
    against releases made since the job was checked.
    """
    if not report.cells:
        return ()
    decision = ledger.check_and_record(
        list(report.cells),
        dict(ledger_k),
        job_id=job_id,
        grant_id=grant_id,
        operator=operator,
        query=query,
    )
    if decision.findings:
        raise CheckError("the output now differs from a released cell by fewer than k entities")
    return decision.cell_ids
