"""Allowed file types, size caps and manifest integrity.

Rules of stage 5. Only CSV, Parquet, JSON, PNG and plain text (TXT, MD)
leave, each recognised by its content as well as its name, within the
policy's caps on bytes per file, rows per table and files per job. A file
whose bytes differ from the SHA-256 its manifest entry declares fails.

``file_type`` recognises a PNG by its signature; ``png_texts`` reads it
chunk by chunk for the rules that look inside (``identifier_leakage``
fails a PNG it cannot read so): every chunk's length and CRC must hold,
the first is ``IHDR`` and nothing follows ``IEND``; at most
``PNG_MAX_CHUNKS`` chunks and ``PNG_MAX_TEXT`` bytes of text (after
inflating) are read.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.judge.types import Context, Finding, Output, Verdict

FILE_TYPE = "file_type"
SIZE_CAP = "size_cap"
MANIFEST = "manifest"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = ("csv", "txt", "md")
ALLOWED = (*TEXT_TYPES, "json", "parquet", "png")
PNG_MAX_CHUNKS = 1_000
PNG_MAX_TEXT = 1 << 20  # bytes of text read out of one image, inflated
# Chunks that hold pixels, colour and layout only; every other chunk's bytes are read as text.
PNG_IMAGE_CHUNKS = frozenset(
    b"IHDR PLTE IDAT IEND tRNS cHRM gAMA sBIT sRGB cICP mDCv cLLi cLLI bKGD hIST pHYs tIME "
    b"acTL fcTL fdAT".split()
)


@dataclass(frozen=True)
class PngText:
    """A text a PNG chunk carries: its chunk's number (from 0), type and the text."""

    chunk: int
    kind: str  # tEXt, zTXt, iTXt, iCCP, sPLT, eXIf, or "other" (a chunk of unknown type)
    text: str


def png_texts(content: bytes) -> list[PngText]:
    """Every text a PNG carries outside its pixels; ``ValueError`` if its chunks cannot be read.

    Text chunks give their keywords and texts (zTXt and compressed iTXt
    inflated); iCCP its profile name and inflated profile, sPLT its name, and
    eXIf and chunks of unknown type their bytes. Bytes that are not UTF-8 are
    read as Latin-1 as well, the way PNG defines tEXt.
    """
    if not content.startswith(PNG_SIGNATURE):
        raise ValueError("no PNG signature")
    texts: list[PngText] = []
    budget = [PNG_MAX_TEXT]
    at, number = len(PNG_SIGNATURE), 0
    while True:
        if number >= PNG_MAX_CHUNKS:
            raise ValueError("too many chunks")
        if at + 8 > len(content):
            raise ValueError("truncated chunk header")
        length, kind = struct.unpack(">I4s", content[at : at + 8])
        body = content[at + 8 : at + 8 + length]
        crc = content[at + 8 + length : at + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError("truncated chunk")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError("bad chunk CRC")
        if (number == 0) != (kind == b"IHDR"):
            raise ValueError("IHDR is not the first chunk")
        texts += [PngText(number, _chunk_name(kind), t) for t in _chunk_texts(kind, body, budget)]
        at += 12 + length
        number += 1
        if kind == b"IEND":
            break
    if at != len(content):
        raise ValueError("data after IEND")
    return texts


def _chunk_name(kind: bytes) -> str:
    known = {b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"sPLT", b"eXIf"}
    return kind.decode("ascii") if kind in known else "other"


def _chunk_texts(kind: bytes, body: bytes, budget: list[int]) -> list[str]:
    if kind in PNG_IMAGE_CHUNKS:
        return []
    if kind == b"tEXt":
        keyword, _, text = body.partition(b"\x00")
        return _decoded([keyword, text], budget)
    if kind in (b"zTXt", b"iCCP"):
        keyword, _, rest = body.partition(b"\x00")
        if not rest or rest[0] != 0:
            raise ValueError("unknown compression method")
        return _decoded([keyword, _inflate(rest[1:], budget)], budget)
    if kind == b"iTXt":
        keyword, _, rest = body.partition(b"\x00")
        if len(rest) < 2 or rest[0] not in (0, 1) or rest[1] != 0:
            raise ValueError("bad iTXt flags")
        compressed = rest[0] == 1
        language, _, rest = rest[2:].partition(b"\x00")
        translated, _, text = rest.partition(b"\x00")
        if compressed:
            text = _inflate(text, budget)
        return _decoded([keyword, language, translated, text], budget)
    if kind == b"sPLT":
        return _decoded([body.partition(b"\x00")[0]], budget)
    return _decoded([body], budget)  # eXIf, private and unknown chunks: read as text


def _inflate(data: bytes, budget: list[int]) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, budget[0] + 1)
    except zlib.error as e:
        raise ValueError("a compressed chunk does not inflate") from e
    if len(out) > budget[0] or not inflater.eof:
        raise ValueError("too much text, or a truncated stream")
    return out


def _decoded(parts: list[bytes], budget: list[int]) -> list[str]:
    texts = []
    for part in parts:
        budget[0] -= len(part)
        if budget[0] < 0:
            raise ValueError("too much text")
        if not part:
            continue
        try:
            texts.append(part.decode("utf-8"))
        except UnicodeDecodeError:
            texts += [part.decode("utf-8", "replace"), part.decode("latin-1")]
    return texts


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
        if not content.startswith(PNG_SIGNATURE):
            return "is not a PNG image"
        try:
            png_texts(content)
        except ValueError:
            return "is not a readable PNG image"
        return None
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
