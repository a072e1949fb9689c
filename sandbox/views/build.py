"""Stage 3 of the data flow: materialise the authorized views of a grant.

For each dataset a grant covers, DuckDB writes one Parquet view holding
only what the grant asks for *and* the exposure policy lets out:

- hidden columns are absent; asking for one is an error, not a silent drop;
- ``join_key`` columns, and always the entity column, become a keyed
  pseudonym: HMAC-SHA256 under the grant's key, computed in SQL (stable
  within a grant so its datasets join, different across grants so two
  grants cannot link their outputs);
- group keys are generalised as the policy says (bands, year/month, code
  prefix); row filters are applied with bound parameters.

The SQL of a view is ``sandbox.views.query``'s; this module runs it, caches
and describes the result, and destroys a grant's views on revocation.

Views go into a content-addressed cache: the key covers the dataset
versions, policy versions, the grant's scope and its key id, so a repeated
job under the same grant reuses the files. A cache entry is built in a
temporary directory and renamed into place whole. ``catalog.json`` beside
the views tells analyst code what it has. Raw dataset files are read here,
on the trusted side, and are never mounted into a container.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from sandbox.errors import PolicyError, RegistryError, ViewError
from sandbox.fsutil import sha256_file
from sandbox.intake.destruction import DestructionRecord, destroy_tree
from sandbox.intake.policy import ExposurePolicy, PolicyStore, PolicyVersion
from sandbox.intake.registry import DatasetVersion, Registry
from sandbox.views.query import hmac_pads, view_query

CACHE_FORMAT = "2"  # bump when the way views are built changes


@dataclass(frozen=True)
class DatasetScope:
    """The columns of one dataset a grant covers (``version`` pins a dataset version)."""

    dataset: str
    columns: tuple[str, ...]
    version: str | None = None


@dataclass(frozen=True)
class Grant:
    """What views need of a grant: its scope and its pseudonym key (held by the gateway)."""

    grant_id: str
    operator: str
    scenario: str
    scopes: tuple[DatasetScope, ...]
    key: bytes
    key_id: str

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise ViewError("a grant's pseudonym key must be at least 32 bytes")
        if not self.scopes:
            raise ViewError("a grant must cover at least one dataset")


Resolved = tuple[DatasetScope, DatasetVersion, PolicyVersion]


@dataclass(frozen=True)
class ViewColumn:
    name: str
    type: str
    column_class: str
    level: int | str
    visibility: str  # the policy's, or "entity" for the pseudonymised entity column
    generalised: str | None


@dataclass(frozen=True)
class View:
    name: str
    dataset: str
    dataset_version: str
    policy_version: str
    entity_column: str
    k: int
    rows: int
    columns: tuple[ViewColumn, ...]
    path: Path
    sha256: str


@dataclass(frozen=True)
class ViewSet:
    """The directory to mount at ``/data``: one Parquet file per view and ``catalog.json``."""

    grant_id: str
    cache_key: str
    directory: Path
    views: tuple[View, ...]
    cache_hit: bool


_COMPRESSIONS = {"zstd": "zstd", "snappy": "snappy", "gzip": "gzip", "uncompressed": "uncompressed"}


class ViewBuilder:
    """Builds and caches the views of grants; destroys a grant's cache on revocation."""

    def __init__(
        self,
        registry: Registry,
        policies: PolicyStore,
        cache_root: Path,
        *,
        memory_limit: str = "1GB",
        threads: int = 2,
        compression: str = "zstd",
    ) -> None:
        self._registry = registry
        self._policies = policies
        self._root = cache_root / "views"
        self._memory_limit = memory_limit
        self._threads = threads
        if compression not in _COMPRESSIONS:
            raise ViewError(f"unknown Parquet compression {compression!r}")
        self._compression = compression

    def resolve(self, grant: Grant) -> list[Resolved]:
        """Each scope of ``grant`` with its dataset version and current policy."""
        resolved = []
        for scope in grant.scopes:
            try:
                dataset = self._registry.get(scope.dataset, scope.version)
                policy = self._policies.get(scope.dataset)
            except (RegistryError, PolicyError) as e:
                raise ViewError(str(e)) from e
            if policy.policy.entity_column not in {c.name for c in dataset.columns}:
                raise ViewError(f"policy of {scope.dataset!r} does not fit its dataset")
            resolved.append((scope, dataset, policy))
        return resolved

    def cache_key(self, grant: Grant) -> str:
        """The cache key of the grant's views as they would be built now."""
        return self.key_for(grant, self.resolve(grant))

    def key_for(self, grant: Grant, resolved: list[Resolved]) -> str:
        """Cache key over dataset versions, policy versions, the scope and the key id."""
        body = {
            "format": CACHE_FORMAT,
            "compression": self._compression,
            "grant": grant.grant_id,
            "key_id": grant.key_id,
            "views": sorted(
                [s.dataset, d.version, p.version, sorted(set(s.columns))] for s, d, p in resolved
            ),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]

    def build(self, grant: Grant) -> ViewSet:
        """The grant's views, from the cache when they are there."""
        resolved = self.resolve(grant)
        key = self.key_for(grant, resolved)
        final = self._root / key
        if (final / "catalog.json").is_file():
            return self.load(final, grant.grant_id, key, cache_hit=True)

        def build_set(tmp: Path) -> dict[str, Any]:
            views = [self.write_view(tmp, grant, s, d, p) for s, d, p in resolved]
            # Which grant an entry belongs to lives beside it, not in the
            # directory mounted into containers. Written first, so no entry
            # exists without it (destroy_grant finds it by this file).
            meta = {
                "grant_id": grant.grant_id,
                "key_id": grant.key_id,
                "built_at": datetime.now(UTC).isoformat(),
            }
            (self._root / f"{key}.json").write_text(json.dumps(meta))
            return _catalog(views)

        publish_view_set(self._root, final, build_set)
        return self.load(final, grant.grant_id, key, cache_hit=False)

    def _connect(self, spill: Path) -> duckdb.DuckDBPyConnection:
        # Spill files go beside the cache, never into a directory that is mounted.
        con = duckdb.connect(
            config={
                "memory_limit": self._memory_limit,
                "threads": self._threads,
                "preserve_insertion_order": False,
                "temp_directory": str(spill),
            }
        )
        con.execute("SET enable_progress_bar = false")
        return con

    def write_view(
        self,
        out: Path,
        grant: Grant,
        scope: DatasetScope,
        dataset: DatasetVersion,
        policy: PolicyVersion,
    ) -> View:
        """Write one view of ``dataset`` into ``out`` and describe it."""
        sql, params, notes = view_query(policy.policy, scope)
        params = {**params, **hmac_pads(grant.key), "source": str(dataset.path)}
        target = out / f"{scope.dataset}.parquet"
        spill = Path(tempfile.mkdtemp(dir=out.parent, prefix=".spill-"))
        con = self._connect(spill)
        try:
            # The target is bound; the compression is one of an allowlist.
            con.execute(
                f"COPY ({sql}) TO $dst (FORMAT parquet, COMPRESSION "
                f"{_COMPRESSIONS[self._compression]})",
                {**params, "dst": str(target)},
            )
            view = {"view": str(target)}
            described = con.execute("DESCRIBE SELECT * FROM read_parquet($view)", view).fetchall()
            rows = con.execute("SELECT count(*) FROM read_parquet($view)", view).fetchall()[0][0]
        except duckdb.Error as e:
            # The engine's text (it can quote paths and values) stays in the cause and the log.
            kind = "out of memory" if "Out of Memory" in str(e) else "the engine refused it"
            raise ViewError(f"cannot build the view of {scope.dataset!r}: {kind}") from e
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
        pol: ExposurePolicy = policy.policy
        columns = []
        for name, type_, *_ in described:
            c = pol.columns[name]
            visibility = "entity" if name == pol.entity_column else c.visibility.value
            columns.append(
                ViewColumn(name, type_, c.column_class.value, c.level, visibility, notes.get(name))
            )
        return View(
            scope.dataset,
            dataset.name,
            dataset.version,
            policy.version,
            pol.entity_column,
            pol.k,
            int(rows),
            tuple(columns),
            target,
            sha256_file(target),
        )

    def load(self, directory: Path, grant_id: str, key: str, cache_hit: bool) -> ViewSet:
        """The view set stored in ``directory`` (read back from its catalog)."""
        catalog = json.loads((directory / "catalog.json").read_text(encoding="utf-8"))
        views = tuple(
            View(
                v["name"],
                v["dataset"],
                v["dataset_version"],
                v["policy_version"],
                v["entity_column"],
                v["k"],
                v["rows"],
                tuple(
                    ViewColumn(
                        c["name"],
                        c["type"],
                        c["class"],
                        c["level"],
                        c["visibility"],
                        c["generalised"],
                    )
                    for c in v["columns"]
                ),
                directory / f"{v['name']}.parquet",
                v["sha256"],
            )
            for v in catalog["views"]
        )
        return ViewSet(grant_id, key, directory, views, cache_hit)

    def destroy_grant(self, grant_id: str) -> list[DestructionRecord]:
        """Destroy every cached view set built for ``grant_id``; one record per set."""
        records: list[DestructionRecord] = []
        if not self._root.is_dir():
            return records
        for meta_path in sorted(self._root.glob("*.json")):
            meta: Mapping[str, Any] = json.loads(meta_path.read_text())
            if meta.get("grant_id") != grant_id:
                continue
            entry = self._root / meta_path.stem
            what = f"views of grant {grant_id} ({entry.name})"
            if entry.is_dir():
                records.append(destroy_tree(what, entry))
            meta_path.unlink()
        return records


def publish_view_set(root: Path, final: Path, build: Callable[[Path], dict[str, Any]]) -> None:
    """Build a view set in a fresh directory under ``root`` and rename it to ``final``.

    ``build`` writes the views into the directory it is given and returns the
    catalog. The set appears whole or not at all; a twin built concurrently
    wins quietly.
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:
        catalog = build(tmp)
        (tmp / "catalog.json").write_text(
            json.dumps(catalog, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        for p in (tmp, *tmp.iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)  # readable by the sandbox uid
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "catalog.json").is_file():  # not a concurrent twin: a real error
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _catalog(views: list[View]) -> dict[str, Any]:
    return {
        "views": [
            {
                "name": v.name,
                "dataset": v.dataset,
                "dataset_version": v.dataset_version,
                "policy_version": v.policy_version,
                "entity_column": v.entity_column,
                "k": v.k,
                "rows": v.rows,
                "sha256": v.sha256,
                "columns": [
                    {
                        "name": c.name,
                        "type": c.type,
                        "class": c.column_class,
                        "level": c.level,
                        "visibility": c.visibility,
                        "generalised": c.generalised,
                    }
                    for c in v.columns
                ],
            }
            for v in views
        ]
    }
