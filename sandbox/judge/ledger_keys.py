"""Ledger keys for the entities behind an SQL product's cells (trusted side).

Stage 5 of the data flow. An SQL product's evidence names the entities of
each output row by their per-grant pseudonyms (what the views hold). The
differencing ledger needs keys that are stable per dataset across grants
and operators, else two grants' releases could never be compared. Here a
pseudonym is mapped to a *ledger key*: HMAC-SHA256 of the raw entity value
under the installation's ledger secret, so the ledger file never holds a
raw identifier and nobody without the secret can test a guess against it.

The map of a (grant key, dataset version) is computed once with DuckDB over
the raw dataset (both HMACs per distinct entity) and cached beside the
grant's views, under ``<cache>/entitymaps/<grant id>/``; it is destroyed
with the grant's views on revocation (``destroy_grant_maps``).

Invariants:
- The ledger secret is 32 random bytes in ``<data dir>/keys/ledger.key``
  (mode 0600), made on first use and never rotated (rotation would break
  comparability with every past release).
- A pseudonym that maps to no entity of the dataset is an error, never
  silently dropped: it would mean the evidence is not what the views hold.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from sandbox.errors import CheckError
from sandbox.fsutil import write_atomic
from sandbox.intake.destruction import DestructionRecord, destroy_tree
from sandbox.intake.registry import DatasetVersion
from sandbox.sqltext import ident
from sandbox.views.build import Grant
from sandbox.views.query import hmac_pads, hmac_sql

LEDGER_KEY_BYTES = 32


def ledger_secret(data_dir: Path) -> bytes:
    """The installation's ledger secret, created on first use."""
    path = data_dir / "keys" / "ledger.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(LEDGER_KEY_BYTES))
    secret = path.read_bytes()
    if len(secret) != LEDGER_KEY_BYTES:
        raise CheckError(f"the ledger secret {path} is damaged")
    return secret


class EntityMaps:
    """Pseudonym -> ledger key maps per grant and dataset version, cached."""

    def __init__(self, cache_root: Path, secret: bytes) -> None:
        self.cache_root = cache_root
        self._root = cache_root / "entitymaps"
        self._secret = secret

    @property
    def secret(self) -> bytes:
        """The ledger secret (passed to the checker process, never logged)."""
        return self._secret

    def _path(self, grant: Grant, version: DatasetVersion) -> Path:
        name = f"{version.name}-{version.version}-{grant.key_id}.parquet"
        return self._root / grant.grant_id / name

    def build(self, grant: Grant, version: DatasetVersion) -> Path:
        """The cached map file of ``version`` under ``grant``'s key, built when missing."""
        path = self._path(grant, version)
        if path.is_file():
            return path
        grant_pads = hmac_pads(grant.key)
        ledger_pads = hmac_pads(self._secret)
        entity = ident(version.entity_column)
        ledger_hmac = hmac_sql("v").replace("$ipad", "$lipad").replace("$opad", "$lopad")
        sql = (
            f"SELECT {hmac_sql('v')} AS p, {ledger_hmac} AS l FROM "  # noqa: S608
            f"(SELECT DISTINCT {entity} AS v FROM read_parquet($source) WHERE {entity} IS NOT NULL)"
        )
        con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
        try:
            table: pa.Table = con.sql(
                sql,
                params={
                    "source": str(version.path),
                    "ipad": grant_pads["ipad"],
                    "opad": grant_pads["opad"],
                    "lipad": ledger_pads["ipad"],
                    "lopad": ledger_pads["opad"],
                },
            ).to_arrow_table()
        finally:
            con.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = pa.BufferOutputStream()
        import pyarrow.parquet as pq

        pq.write_table(table, sink, compression="zstd")
        write_atomic(path, sink.getvalue().to_pybytes())
        return path

    def ledger_keys(
        self, grant: Grant, version: DatasetVersion, rows: Iterable[Iterable[str]]
    ) -> list[frozenset[str]]:
        """Each row's pseudonyms mapped to ledger keys (one frozenset per row)."""
        rows = [list(r) for r in rows]
        wanted = pa.table(
            {
                "row": pa.array([i for i, r in enumerate(rows) for _ in r], pa.int64()),
                "p": pa.array([p for r in rows for p in r], pa.string()),
            }
        )
        path = self.build(grant, version)
        con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
        try:
            con.register("wanted", wanted)
            mapped: pa.Table = con.sql(
                "SELECT w.row, m.l FROM wanted w LEFT JOIN read_parquet($map) m ON w.p = m.p",
                params={"map": str(path)},
            ).to_arrow_table()
        finally:
            con.close()
        keys: list[set[str]] = [set() for _ in rows]
        missing = 0
        for row, key in zip(
            mapped.column("row").to_pylist(), mapped.column("l").to_pylist(), strict=True
        ):
            if key is None:
                missing += 1
            else:
                keys[row].add(key)
        if missing:
            raise CheckError(
                f"{missing} entity pseudonyms of {version.name} do not belong to the dataset"
            )
        return [frozenset(k) for k in keys]

    def destroy_grant_maps(self, grant_id: str) -> list[DestructionRecord]:
        """Destroy every cached map of ``grant_id``."""
        directory = self._root / grant_id
        if not directory.is_dir():
            return []
        return [destroy_tree(f"entity maps of grant {grant_id}", directory)]


def mapping_for(
    maps: EntityMaps,
    grant: Grant,
    versions: Mapping[str, DatasetVersion],
    entity_lists: Mapping[str, list[list[str]]],
) -> dict[str, list[frozenset[str]]]:
    """Ledger keys per dataset for every row's entity list."""
    return {
        dataset: maps.ledger_keys(grant, versions[dataset], rows)
        for dataset, rows in entity_lists.items()
    }
