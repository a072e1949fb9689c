"""Irreversible destruction of stored data, with the record the audit log keeps.

On revocation or termination the operator's copies (views, caches, datasets)
are destroyed and a destruction record (what, when, how, hash) is kept for
three years. Files are overwritten with zeros, flushed, then unlinked.
(On copy-on-write or journaling filesystems overwriting does not guarantee
the old blocks are gone; deployments that need that use encrypted volumes
and destroy the key. The record says what was done, no more.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sandbox.fsutil import sha256_file

HOW = "overwritten with zeros, flushed to disk, then unlinked"


@dataclass(frozen=True)
class DestructionRecord:
    what: str
    when: datetime
    how: str
    sha256: str  # over the destroyed files' hashes, in path order
    files: tuple[tuple[str, str], ...]  # (path, sha256) of each destroyed file


def _overwrite(path: Path) -> None:
    size = path.stat().st_size
    zeros = b"\0" * (1 << 20)
    with path.open("r+b") as f:
        left = size
        while left > 0:
            n = min(left, len(zeros))
            f.write(zeros[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def destroy_tree(what: str, directory: Path, shown_as: Path | None = None) -> DestructionRecord:
    """Destroy every file under ``directory`` and the directory itself.

    ``shown_as`` is where the files lived before the caller moved them aside
    for destruction; the record names them there.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
    return destroy_files(what, files, remove_dir=directory, shown_from=directory, shown_as=shown_as)


def destroy_files(
    what: str,
    paths: Iterable[Path],
    remove_dir: Path | None = None,
    shown_from: Path | None = None,
    shown_as: Path | None = None,
) -> DestructionRecord:
    """Destroy ``paths`` (hashing each first) and optionally the directory holding them."""
    done: list[tuple[str, str]] = []
    for path in sorted(paths):
        digest = sha256_file(path)
        _overwrite(path)
        shown = path
        if shown_from is not None and shown_as is not None:
            shown = shown_as / path.relative_to(shown_from)
        done.append((str(shown), digest))
    if remove_dir is not None and remove_dir.exists():
        shutil.rmtree(remove_dir)
    overall = hashlib.sha256("".join(f"{p}\0{h}\n" for p, h in done).encode()).hexdigest()
    return DestructionRecord(
        what=what, when=datetime.now(UTC), how=HOW, sha256=overall, files=tuple(done)
    )
