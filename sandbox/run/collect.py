"""Stage 5 of the data flow, first half: take outputs out of the sandbox safely.

The backend streams ``/output`` as a tar archive through the engine; this
module reads that stream *as hostile input*:

- only regular files are taken; symlinks, hard links, FIFOs, devices and
  anything else are refused, never followed, never created on the host;
- names are sanitised: no absolute paths, no ``..``, no empty or dot
  components, no NUL or control characters, no backslashes, bounded length
  and depth, valid UTF-8; duplicates are refused;
- the number of files, each file's size and the total are capped, and the
  stream itself is read no further than the caps allow;
- files are written with ``O_EXCL | O_NOFOLLOW`` under a directory this
  module creates, so nothing outside it can be touched.

Refused entries keep only a hash of their name: a name is analyst-chosen
and may itself carry data.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sandbox.run.backends.base import Collection, OutputFile, RefusedMember

MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255
MAX_DEPTH = 8
KEEP_REFUSALS = 100
# Tar headers, padding and end blocks on top of the file bytes themselves.
ARCHIVE_OVERHEAD_PER_ENTRY = 3 * 512


@dataclass(frozen=True)
class CollectLimits:
    max_files: int
    max_file_bytes: int
    max_total_bytes: int


class StreamTooLarge(Exception):
    """The archive stream went past the bytes the caps allow."""


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks, refusing to read past ``cap``."""

    def __init__(self, chunks: Iterable[bytes], cap: int) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self._cap = cap
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        if self.consumed + n > self._cap:
            raise StreamTooLarge
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self.consumed += n
        return n


def _kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfifo():
        return "fifo"
    if member.ischr():
        return "chardev"
    if member.isblk():
        return "blockdev"
    return "other"


def sanitise_name(raw: str) -> str | None:
    """The safe relative form of an archive member name, or None if unsafe."""
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if not name or name == ".":
        return None
    if name.startswith("/") or "\\" in name:
        return None
    try:
        encoded = name.encode("utf-8")  # surrogates from undecodable bytes fail here
    except UnicodeEncodeError:
        return None
    if len(encoded) > MAX_NAME_BYTES:
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        return None
    parts = name.split("/")
    if len(parts) > MAX_DEPTH:
        return None
    for part in parts:
        if part in ("", ".", "..") or len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return None
    return name


def _refusal(index: int, name: str, kind: str, reason: str) -> RefusedMember:
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    return RefusedMember(index=index, name_sha256=digest, kind=kind, reason=reason)


def _write(dest: Path, name: str, source: IO[bytes], size: int) -> OutputFile:
    target = dest / name
    target.parent.mkdir(parents=True, exist_ok=True)
    # The parent chain was built here from sanitised components; O_NOFOLLOW and
    # O_EXCL make sure the final component is a fresh regular file.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
    digest = hashlib.sha256()
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while written < size:
                block = source.read(min(1 << 20, size - written))
                if not block:
                    raise tarfile.ReadError("archive ended inside a file")
                digest.update(block)
                out.write(block)
                written += len(block)
    except BaseException:
        target.unlink()  # never leave a partial file behind
        raise
    return OutputFile(name=name, size=written, sha256=digest.hexdigest(), path=target)


def collect_archive(chunks: Iterable[bytes], dest: Path, limits: CollectLimits) -> Collection:
    """Read a tar stream of ``/output`` into ``dest`` (which must not exist yet)."""
    dest.mkdir(parents=True, exist_ok=False)
    stream_cap = limits.max_total_bytes + ARCHIVE_OVERHEAD_PER_ENTRY * (limits.max_files + 64)
    # Refused entries still pass through the stream; allow headers for a fair
    # number of them, then stop reading.
    stream_cap += ARCHIVE_OVERHEAD_PER_ENTRY * 4096
    reader = _ChunkReader(chunks, stream_cap)
    buffered = io.BufferedReader(reader, buffer_size=1 << 16)
    files: list[OutputFile] = []
    refused: list[RefusedMember] = []
    refused_total = 0
    seen: set[str] = set()
    total = 0
    complete = True
    detail = ""

    def refuse(index: int, name: str, kind: str, reason: str) -> None:
        nonlocal refused_total
        refused_total += 1
        if len(refused) < KEEP_REFUSALS:
            refused.append(_refusal(index, name, kind, reason))

    try:
        with tarfile.open(fileobj=buffered, mode="r|") as archive:
            for index, member in enumerate(archive):
                kind = _kind(member)
                if kind == "dir":
                    continue
                name = sanitise_name(member.name)
                if kind != "file":
                    refuse(index, member.name, kind, "only regular files are collected")
                    continue
                if name is None:
                    refuse(index, member.name, kind, "unsafe file name")
                    continue
                if name in seen:
                    refuse(index, member.name, kind, "duplicate file name")
                    continue
                if len(files) >= limits.max_files:
                    refuse(index, member.name, kind, "too many output files")
                    complete = False
                    continue
                if member.size > limits.max_file_bytes:
                    refuse(index, member.name, kind, "file larger than the per-file cap")
                    complete = False
                    continue
                if total + member.size > limits.max_total_bytes:
                    refuse(index, member.name, kind, "outputs larger than the total cap")
                    complete = False
                    continue
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have data
                    refuse(index, member.name, kind, "unreadable file")
                    continue
                files.append(_write(dest, name, source, member.size))
                seen.add(name)
                total += member.size
    except StreamTooLarge:
        complete = False
        detail = "output archive larger than the caps allow; reading stopped"
    except tarfile.TarError as e:
        complete = False
        detail = f"output archive is malformed ({type(e).__name__})"
    return Collection(
        files=tuple(files),
        refused=tuple(refused),
        refused_total=refused_total,
        complete=complete,
        detail=detail,
    )
