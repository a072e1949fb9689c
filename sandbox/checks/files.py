"""Allowed file types, size caps and manifest integrity.

Rules of stage 5. Only CSV, Parquet, JSON, PNG and plain text (TXT, MD)
leave, each recognised by its content as well as its name, within the
policy's caps on bytes per file, rows per table and files per job. A file
whose bytes differ from the SHA-256 its manifest entry declares fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from sandbox.checks.model import Context, Finding, Output, Verdict

FILE_TYPE = "file_type"
SIZE_CAP = "size_cap"
MANIFEST = "manifest"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = ("csv", "txt", "md")
ALLOWED = (*TEXT_TYPES, "json", "parquet", "png")


def _content_problem(extension: str, content: bytes) -> str | None:
    if extension in TEXT_TYPES:
        if b"\x00" in content:
            return "holds binary data (NUL bytes)"
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return "is not UTF-8 text"
        return None
    if extension == "json":
        try:
            json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return "is not valid JSON"
        return None
    if extension == "parquet":
        ok = len(content) >= 12 and content[:4] == b"PAR1" and content[-4:] == b"PAR1"
        return None if ok else "is not a Parquet file"
    if extension == "png":
        return None if content.startswith(PNG_SIGNATURE) else "is not a PNG image"
    return "is not an allowed type"


def file_type(output: Output, ctx: Context) -> list[Finding]:
    """Only allowed types leave, recognised by content as well as by name."""
    extension = output.file.rsplit(".", 1)[-1].lower() if "." in output.file else ""
    if extension not in ALLOWED:
        return [
            Finding(
                FILE_TYPE,
                Verdict.FAIL,
                output.file,
                f"files of this type may not leave (allowed: {', '.join(ALLOWED)})",
            )
        ]
    problem = _content_problem(extension, output.content)
    if problem:
        return [Finding(FILE_TYPE, Verdict.FAIL, output.file, f"the file {problem}")]
    return []


def size_caps(output: Output, ctx: Context) -> list[Finding]:
    """Each file within the byte cap; each table within the row cap."""
    caps = ctx.thresholds
    findings = []
    if len(output.content) > caps.max_bytes:
        findings.append(
            Finding(
                SIZE_CAP,
                Verdict.FAIL,
                output.file,
                f"the file has {len(output.content)} bytes; the cap is {caps.max_bytes}",
            )
        )
    if output.table is not None and output.table.num_rows > caps.max_rows:
        findings.append(
            Finding(
                SIZE_CAP,
                Verdict.FAIL,
                output.file,
                f"the table has {output.table.num_rows} rows; the cap is {caps.max_rows}",
            )
        )
    return findings


def manifest_integrity(output: Output, ctx: Context) -> list[Finding]:
    """The released bytes are the ones the manifest declared (SHA-256 and size)."""
    declared = output.entry.get("sha256")
    if output.source != "python" or declared is None:
        return []
    if hashlib.sha256(output.content).hexdigest() != declared:
        return [
            Finding(
                MANIFEST,
                Verdict.FAIL,
                output.file,
                "the file's SHA-256 differs from the one its manifest entry declares",
            )
        ]
    return []


def file_count(outputs: Sequence[Output], ctx: Context) -> list[Finding]:
    """A job releases at most ``max_files`` files (a rule over the whole job)."""
    cap = ctx.thresholds.max_files
    if len(outputs) <= cap:
        return []
    return [
        Finding(
            SIZE_CAP,
            Verdict.FAIL,
            "manifest.json",
            f"the job declares {len(outputs)} outputs; the cap is {cap}",
        )
    ]
