"""Stage 0 of the data flow: datasets enter the system -- the registry of what entered.

A data provider registers a Parquet or CSV file; ``sandbox.intake.ingest`` turns it
into Parquet and the registry stores that under
``root/datasets/<name>/<version>/{data.parquet,dataset.json}``. Later stages
build views from that Parquet only; the raw file is not kept.

Invariants:

- A version is the first 16 hex digits of the sha256 of the *source bytes*.
  The same bytes under the same name return the stored version and write
  nothing. A version never changes; it only disappears through ``destroy``.
- All or nothing: a version is built in a staging directory under ``root``
  and renamed into place last. Any failure raises ``RegistryError`` and
  leaves nothing under ``datasets/``.
- The conversion keeps ``sandbox.intake.ingest``'s invariants: streaming in bounded
  memory, strict CSV parsing, encodings detected or named, and errors that
  never quote row values.

``destroy`` overwrites the stored Parquet with zeros, fsyncs and unlinks it.
On journaling or copy-on-write filesystems and SSDs that does not prove the
old blocks are gone; where that matters, ``root`` belongs on an encrypted
volume whose key is destroyed with the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.errors import RegistryError
from sandbox.fsutil import write_atomic
from sandbox.intake import ingest
from sandbox.intake.destruction import DestructionRecord, destroy_tree
from sandbox.intake.ingest import ColumnInfo as ColumnInfo  # re-exported: part of DatasetVersion

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VERSION_RE = re.compile(r"^[0-9a-f]{16}$")
DATA_FILE = "data.parquet"
META_FILE = "dataset.json"


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: str  # sha256 of the source bytes, first 16 hex digits
    columns: tuple[ColumnInfo, ...]
    row_count: int
    entity_column: str  # the data subject
    source: str  # the file's base name
    source_sha256: str
    source_format: str  # "csv" or "parquet"
    source_encoding: str | None  # None for Parquet
    provider: str
    registered_at: datetime  # UTC
    path: Path  # the stored Parquet
    # (name in the provider's file, name stored) for each column renamed at intake
    # because its name broke the rules of sandbox.intake.names (only when the provider asked).
    renamed: tuple[tuple[str, str], ...] = ()


class Registry:
    """Datasets stored as Parquet under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.datasets = self.root / "datasets"
        self.datasets.mkdir(parents=True, exist_ok=True)

    def register(
        self,
        path: Path,
        *,
        name: str,
        entity_column: str,
        provider: str,
        encoding: str | None = None,
        source_format: str | None = None,
        delimiter: str | None = None,
        rename_columns: bool = False,
    ) -> DatasetVersion:
        """Store ``path`` as a version of ``name``; the same bytes again return that version.

        Column names must pass ``sandbox.intake.names`` (NamesRefused lists each one that
        does not, with a safe name); ``rename_columns`` stores those safe names
        instead and records the renames on the version.
        """
        _check_name(name)
        if not entity_column or not provider:
            raise RegistryError("the entity column and the provider must be named")
        source = ingest.inspect_source(
            path, source_format=source_format, encoding=encoding, delimiter=delimiter
        )
        version = source.sha256[:16]

        existing = self._load(name, version)
        if existing is not None:
            if entity_column not in (existing.entity_column, *dict(existing.renamed).keys()):
                raise RegistryError(
                    f"{name} version {version} is already registered with entity column "
                    f"{existing.entity_column!r}"
                )
            return existing

        final = self.datasets / name / version
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            built = staging / version
            built.mkdir()
            parquet = ingest.to_parquet(
                source,
                entity_column=entity_column,
                staging=staging,
                target=built / DATA_FILE,
                rename_columns=rename_columns,
            )
            meta = DatasetVersion(
                name=name,
                version=version,
                columns=parquet.columns,
                row_count=parquet.row_count,
                entity_column=parquet.entity_column,
                source=source.path.name,
                source_sha256=source.sha256,
                source_format=source.format,
                source_encoding=parquet.encoding,
                provider=provider,
                registered_at=datetime.now(UTC),
                path=final / DATA_FILE,
                renamed=parquet.renamed,
            )
            with (built / DATA_FILE).open("rb") as f:
                os.fsync(f.fileno())
            write_atomic(built / META_FILE, json.dumps(_to_json(meta), indent=2).encode())
            final.parent.mkdir(exist_ok=True)
            try:
                os.rename(built, final)
            except OSError:
                raced = self._load(name, version)  # the same bytes, registered concurrently
                if raced is None:
                    raise
                return raced
            return meta
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):  # not empty: another version lives there
                final.parent.rmdir()

    def get(self, name: str, version: str | None = None) -> DatasetVersion:
        """One version of ``name``: the one given, or the newest registered."""
        if version is None:
            found = self.versions(name)
            if not found:
                raise RegistryError(f"no dataset named {name!r}")
            return found[-1]
        _check_name(name)
        loaded = self._load(name, version) if VERSION_RE.match(version) else None
        if loaded is None:
            raise RegistryError(f"dataset {name!r} has no version {version!r}")
        return loaded

    def versions(self, name: str) -> list[DatasetVersion]:
        """The stored versions of ``name``, oldest first (none when the name is unknown)."""
        _check_name(name)
        folder = self.datasets / name
        if not folder.is_dir():
            return []
        found = [
            v
            for d in folder.iterdir()
            if VERSION_RE.match(d.name) and (v := self._load(name, d.name)) is not None
        ]
        return sorted(found, key=lambda v: (v.registered_at, v.version))

    def names(self) -> list[str]:
        """The names with at least one stored version, sorted."""
        return sorted(
            d.name
            for d in self.datasets.iterdir()
            if NAME_RE.match(d.name) and self.versions(d.name)
        )

    def destroy(self, name: str, version: str) -> DestructionRecord:
        """Remove one version for good: hash it, overwrite it with zeros, unlink it."""
        folder = self.get(name, version).path.parent
        # Out of the registry first: a crash midway never leaves a listed
        # version whose data is half zeros.
        trash = Path(tempfile.mkdtemp(prefix=".destroying-", dir=self.root))
        os.rename(folder, trash / version)
        record = destroy_tree(f"dataset {name} version {version}", trash / version, shown_as=folder)
        trash.rmdir()
        with contextlib.suppress(OSError):
            folder.parent.rmdir()
        return record

    def _load(self, name: str, version: str) -> DatasetVersion | None:
        meta = self.datasets / name / version / META_FILE
        if not meta.is_file():
            return None
        try:
            return _from_json(json.loads(meta.read_bytes()), meta.parent / DATA_FILE)
        except (ValueError, KeyError, TypeError) as e:
            raise RegistryError(f"the metadata of {name} version {version} is unreadable") from e


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise RegistryError(
            f"{name!r} is not a valid dataset name (a lowercase letter, then up to 62 "
            "lowercase letters, digits or underscores)"
        )


def _to_json(v: DatasetVersion) -> dict[str, Any]:
    d = asdict(v)
    del d["path"]  # where the directory lies says it, so the root can move
    return {**d, "registered_at": v.registered_at.isoformat(), "format": 1}


def _from_json(d: dict[str, Any], path: Path) -> DatasetVersion:
    registered_at = datetime.fromisoformat(d["registered_at"])
    if registered_at.tzinfo is None:
        raise ValueError("registered_at has no timezone")
    fields = {k: d[k] for k in DatasetVersion.__dataclass_fields__ if k != "path" and k in d}
    fields["columns"] = tuple(ColumnInfo(**c) for c in d["columns"])
    fields["renamed"] = tuple((str(a), str(b)) for a, b in d.get("renamed", ()))
    fields["registered_at"] = registered_at.astimezone(UTC)
    return DatasetVersion(**fields, path=path)
