"""What a grant's end destroys: every copy held under it, each with its own record.

Stage: the end of a grant (revoked, expired, terminated). Serves Chengdu rules
004 art. 25 (退出机制: when the operating agreement ends the access is revoked at
once and the data and its copies are destroyed irreversibly, the destruction
recorded and the records kept at least three years), Chongqing measures 001
art. 22-23 (the agreement ends, the grant is withdrawn) and the Tiemenguan plan
003 二(三)2 (access ended, retained data deleted).

The complete set, the same for every way a grant ends (:func:`destroy_copies`):

1. the grant's pseudonym key, overwritten in its ``grants`` row, so no one can
   link its pseudonyms again (a database write, recorded with the key's SHA-256);
2. its authorized views, ``<data>/cache/views/<key>``;
3. its dummy view sets, ``<data>/cache/dummy/<key>`` (the ``<key>.json`` beside
   each names its grant, as for the views);
4. its entity maps, ``<data>/cache/entitymaps/<grant>``;
5. the checked outputs of its jobs that were never released (held, blocked,
   denied, refused ...), ``<data>/work/jobs/<job>/outputs`` and the ledger cells
   kept beside them; released outputs stay (they passed the checks); a job still
   queued, running or checking is left to the worker, which refuses it, and what
   it stores after the end the sweep destroys (:func:`destroy_left_outputs`);
6. the tables and models its privacy-computing products handed the evaluation
   sandbox, ``<data>/he/sandbox/in/{tables,models}/<product>-*``.

Invariants:

- One :class:`DestructionRecord` per copy, and one ``destruction`` audit event per
  record, in the caller's transaction (the grant's state change).
- The database writes come first (the key), the files after them: a failure
  while destroying files rolls the grant back to live, never leaves it ended
  without the proof of what was destroyed. Files cannot roll back.
- Idempotent: what was destroyed is gone, so a second call records nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.grants.model import ENDED, GrantRecord
from gateway.store.tables import grants, he_products, jobs
from sandbox.intake.destruction import DestructionRecord, destroy_files, destroy_tree
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.views.build import ViewBuilder

DESTROYED_KEY = ""  # what a grant's pseudonym key column holds once destroyed
KEY_HOW = "overwritten in the grants row of the store"
# Job states whose outputs stay: released (they passed the checks) and those the
# worker still owns.
KEPT_JOB_STATES = frozenset({"released", "queued", "running", "checking"})
CELLS = "cells.json"  # gateway.jobs.endings.CELLS: the ledger cells of a held product
HE_FOLDERS = ("tables", "models")


@dataclass(frozen=True)
class Layout:
    """Where the copies of grants live under the gateway's data directory."""

    data_dir: Path

    @property
    def cache(self) -> Path:
        return self.data_dir / "cache"

    @property
    def dummy(self) -> Path:
        return self.cache / "dummy"  # sandbox.views.dummy.DummyBuilder's root

    def job_root(self, job_id: str) -> Path:
        return self.data_dir / "work" / "jobs" / job_id  # gateway.runtime's work_dir

    @property
    def he_inputs(self) -> Path:
        return self.data_dir / "he" / "sandbox" / "in"  # gateway.he.sandboxed


def destroy_copies(
    conn: Connection,
    grant: GrantRecord,
    registry: Registry,
    layout: Layout,
    *,
    actor: str,
    because: str,
    now: datetime,
) -> list[DestructionRecord]:
    """Destroy everything held under ``grant`` (see the module docstring) and record each
    destruction as a ``destruction`` event in ``conn``'s transaction; the records."""
    records = [r for r in [_destroy_key(conn, grant, now)] if r is not None]
    records += _destroy_files(conn, grant, registry, layout)
    _audit(conn, grant, records, actor=actor, because=because)
    return records


def destroy_left_outputs(
    conn: Connection, grant: GrantRecord, layout: Layout, *, actor: str, because: str
) -> list[DestructionRecord]:
    """Destroy the unreleased outputs an ended ``grant``'s jobs stored after its end (a job
    still running when the grant ended is refused or held later, its outputs written
    then); each recorded like the others. Nothing when there are none."""
    records = [
        r
        for job_id in _unreleased_jobs(conn, grant.id)
        for r in _job_outputs(layout, grant.id, job_id)
    ]
    _audit(conn, grant, records, actor=actor, because=because)
    return records


def grants_with_left_outputs(conn: Connection, layout: Layout) -> list[str]:
    """The ended grants a job of which, not released, has outputs on disk (one query for
    them all: the sweep asks every few minutes)."""
    found = conn.execute(
        sa.select(jobs.c.grant_id, jobs.c.id)
        .join(grants, grants.c.id == jobs.c.grant_id)
        .where(
            grants.c.state.in_(sorted(s.value for s in ENDED)),
            jobs.c.state.not_in(sorted(KEPT_JOB_STATES)),
        )
        .order_by(jobs.c.grant_id, jobs.c.id)
    )
    held = {
        grant_id
        for grant_id, job_id in found
        if (layout.job_root(job_id) / "outputs").exists()
        or (layout.job_root(job_id) / CELLS).exists()
    }
    return sorted(held)


def _audit(
    conn: Connection,
    grant: GrantRecord,
    records: list[DestructionRecord],
    *,
    actor: str,
    because: str,
) -> None:
    for record in records:
        append(
            conn,
            "destruction",
            actor,
            grant_id=grant.id,
            datasets=grant.datasets,
            detail={
                "what": record.what,
                "when": record.when.isoformat(),
                "how": record.how,
                "sha256": record.sha256,
                "files": len(record.files),
                "because": because,
            },
        )


def _destroy_key(conn: Connection, grant: GrantRecord, now: datetime) -> DestructionRecord | None:
    key = conn.execute(sa.select(grants.c.pseudonym_key).where(grants.c.id == grant.id)).scalar()
    if not key:
        return None
    conn.execute(
        sa.update(grants).where(grants.c.id == grant.id).values(pseudonym_key=DESTROYED_KEY)
    )
    return DestructionRecord(
        what=f"pseudonym key {grant.key_id} of grant {grant.id}",
        when=now,
        how=KEY_HOW,
        sha256=hashlib.sha256(bytes.fromhex(key)).hexdigest(),
        files=(),
    )


def _destroy_files(
    conn: Connection, grant: GrantRecord, registry: Registry, layout: Layout
) -> list[DestructionRecord]:
    views = ViewBuilder(registry, PolicyStore(layout.data_dir), layout.cache)
    maps = EntityMaps(layout.cache, ledger_secret(layout.data_dir))
    unreleased = _unreleased_jobs(conn, grant.id)
    products = (
        conn.execute(
            sa.select(he_products.c.id)
            .where(he_products.c.grant_id == grant.id)
            .order_by(he_products.c.id)
        )
        .scalars()
        .all()
    )
    return [
        *views.destroy_grant(grant.id),
        *_dummy_sets(layout.dummy, grant.id),
        *maps.destroy_grant_maps(grant.id),
        *(r for job_id in unreleased for r in _job_outputs(layout, grant.id, job_id)),
        *(r for product_id in products for r in _he_files(layout, grant.id, product_id)),
    ]


def _unreleased_jobs(conn: Connection, grant_id: str) -> list[str]:
    found = conn.execute(
        sa.select(jobs.c.id)
        .where(jobs.c.grant_id == grant_id, jobs.c.state.not_in(sorted(KEPT_JOB_STATES)))
        .order_by(jobs.c.id)
    )
    return list(found.scalars())


def _dummy_sets(root: Path, grant_id: str) -> Iterator[DestructionRecord]:
    if not root.is_dir():
        return
    for meta_path in sorted(root.glob("*.json")):
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if meta.get("grant_id") != grant_id:
            continue
        entry = root / meta_path.stem
        if entry.is_dir():
            yield destroy_tree(f"dummy views of grant {grant_id} ({entry.name})", entry)
        meta_path.unlink()


def _job_outputs(layout: Layout, grant_id: str, job_id: str) -> Iterator[DestructionRecord]:
    root = layout.job_root(job_id)
    outputs = root / "outputs"
    found = (
        [p for p in outputs.rglob("*") if p.is_file() and not p.is_symlink()]
        if outputs.is_dir()
        else []
    )
    if (root / CELLS).is_file():
        found.append(root / CELLS)
    if found:
        what = f"unreleased outputs of job {job_id} under grant {grant_id}"
        yield destroy_files(what, found, remove_dir=outputs if outputs.is_dir() else None)
    elif outputs.is_dir():  # no file in it: nothing to destroy or record, nothing to find again
        shutil.rmtree(outputs)


def _he_files(layout: Layout, grant_id: str, product_id: str) -> Iterator[DestructionRecord]:
    found = [
        p
        for folder in HE_FOLDERS
        for p in (layout.he_inputs / folder).glob(f"{product_id}-*")
        if p.is_file() and not p.is_symlink()
    ]
    if found:
        what = f"tables of privacy-computing product {product_id} under grant {grant_id}"
        yield destroy_files(what, found)
