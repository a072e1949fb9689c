"""Stage 5 of the data flow (output checking): the differencing ledger.

One module, past 400 lines on purpose: the caches, the transactions, the rule
and the recording keep the invariants below only together, so they are read
together.

Every released SQL cell (an aggregate over a set of entities: persons,
enterprises) is kept here with its exact entity set, query, grant, operator,
job and time. A new cell whose entity set differs from a released cell of the
same dataset by fewer than ``k`` entities, but is not identical, FAILS:
releasing both would let anyone subtract one from the other and learn about
the few entities in the difference ("count by district", then the same with
one person excluded). Two such cells within one new output fail too.

Invariants:

- The rule: for a new set A and a released (or sibling) set B of the same
  dataset, d = |A xor B|; ``0 < d < k`` is a FAIL, ``d == 0`` passes (the same
  cell released twice reveals nothing new). Since d >= | |A| - |B| |, only
  released cells with a size in (|A| - k, |A| + k) are compared; the index on
  (dataset, size) finds them.
- Global per dataset: every operator's and every grant's releases count;
  different datasets never interact. Entity keys must therefore be stable per
  dataset across grants (the entity column's value or a dataset-level keyed
  pseudonym, never the per-grant pseudonym of a view), else two grants'
  cells could never match.
- Entity keys never leave this module: findings, messages and errors carry
  counts and locations only. Keys are mapped to dense integer ids per dataset
  (allocated ascending under the write lock, never reused or changed) and
  sets are stored as serialized roaring bitmaps.
- Append-only: the only write is ``record`` (or ``check_and_record``); SQLite
  triggers abort any UPDATE or DELETE of released cells or entity ids.
- ``check_and_record`` checks and records under one ``BEGIN IMMEDIATE``
  transaction, so two workers cannot both pass against each other; each
  check reads one consistent snapshot (WAL), so caches never mix states.
- Caches only ever hold committed state: they grow from SQLite by id (rows
  are never changed), and any failed transaction drops them.

The caches hold every key of a dataset once touched (roughly 100 bytes per
entity in memory) and the bitmaps of compared cells, loaded lazily.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from pyroaring import AbstractBitMap, BitMap, FrozenBitMap

from sandbox.errors import LedgerError

RULE = "differencing"
MAX_FINDINGS = 1000  # per check: enough to show a reviewer the pattern
_CHUNK = 500  # ids per `IN (...)` when loading bitmaps

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entity_index (
    dataset TEXT NOT NULL, key TEXT NOT NULL, id INTEGER NOT NULL CHECK (id >= 0),
    PRIMARY KEY (dataset, key), UNIQUE (dataset, id)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS released_cells (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: caches read new rows by id
    dataset TEXT NOT NULL, size INTEGER NOT NULL CHECK (size >= 0),
    entities BLOB NOT NULL,  -- serialized roaring bitmap of entity_index ids
    query_sha256 TEXT NOT NULL, query TEXT NOT NULL,
    grant_id TEXT NOT NULL, operator TEXT NOT NULL, job_id TEXT NOT NULL,
    location TEXT NOT NULL, released_at TEXT NOT NULL  -- UTC, ISO 8601
)""",
    "CREATE INDEX IF NOT EXISTS released_cells_by_size ON released_cells (dataset, size)",
    "CREATE INDEX IF NOT EXISTS released_cells_by_id ON released_cells (dataset, id)",
)
_INSERT_CELL = (
    "INSERT INTO released_cells (dataset, size, entities, query_sha256, query, "
    "grant_id, operator, job_id, location, released_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in ("entity_index", "released_cells")
    for op in ("UPDATE", "DELETE")
)


@dataclass(frozen=True)
class Cell:
    """One output cell: an aggregate over ``entities`` of ``dataset``."""

    dataset: str
    entities: frozenset[str]  # entity keys of the cell
    location: str  # e.g. "out.csv row 3 column n" -- never a raw value


@dataclass(frozen=True)
class DifferencingFinding:
    """A cell that could be differenced against ``other``. The gateway shows the
    operator ``message``; ``other`` names the other cell's job and operator."""

    rule: str  # "differencing"
    location: str  # the new cell's location
    other: str  # "released cell #123 (job J, operator O)" or "cell <location> in this output"
    differs_by: int  # |symmetric difference|
    message: str  # plain words, no entity keys, no raw values
    dataset: str = ""
    only_new: int = 0  # entities in the new cell only
    only_other: int = 0  # entities in the other cell only
    other_cell_id: int | None = None  # the released cell's id; None for a cell in this output
    verdict: str = "FAIL"


@dataclass(frozen=True)
class LedgerDecision:
    """What ``check_and_record`` did: released (ids) or refused (findings), never both."""

    findings: tuple[DifferencingFinding, ...]
    cell_ids: tuple[int, ...]

    @property
    def released(self) -> bool:
        return not self.findings


@dataclass
class _Dataset:
    """Committed state of one dataset, as far as this process has read it."""

    keys: dict[str, int] = field(default_factory=dict)  # dense: ids 0..len-1
    index: list[tuple[int, int]] = field(default_factory=list)  # (size, cell id), sorted
    last_id: int = 0  # highest released cell id in ``index``
    stored: dict[int, tuple[AbstractBitMap, str]] = field(default_factory=dict)  # id -> set, label


def _label(cell_id: int, job_id: str, operator: str) -> str:
    return f"released cell #{cell_id} (job {job_id}, operator {operator})"


def _thresholds(groups: Mapping[str, list[int]], k: int | Mapping[str, int]) -> dict[str, int]:
    ks: dict[str, int] = {}
    for dataset in groups:
        value = k if isinstance(k, int) else k.get(dataset)
        if value is None:
            raise LedgerError(f"no k is given for dataset {dataset!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LedgerError(f"k for dataset {dataset!r} must be a positive integer")
        ks[dataset] = value
    return ks


def _entities(n: int) -> str:
    return f"{n} entit{'y' if n == 1 else 'ies'}"


def _message(location: str, other: str, d: int, only_new: int, only_other: int, k: int) -> str:
    return (
        f"{location} covers almost the same entities as {other}: the two differ by "
        f"{_entities(d)} ({only_new} only in the new cell, {only_other} only in the other), "
        f"fewer than k = {k}. Releasing both would let anyone subtract one from the other "
        f"and learn about the entities in the difference."
    )


def _by_dataset(cells: Sequence[Cell]) -> dict[str, list[int]]:
    """Positions in ``cells`` per dataset, in order."""
    groups: dict[str, list[int]] = {}
    for n, cell in enumerate(cells):
        if not isinstance(cell, Cell) or not cell.dataset or not cell.location:
            raise LedgerError("every cell needs a dataset and a location")
        if not set(map(type, cell.entities)) <= {str}:
            raise LedgerError(f"the entity keys of {cell.location} must be strings")
        groups.setdefault(cell.dataset, []).append(n)
    return groups


def _release(job_id: str, grant_id: str, operator: str, query: str) -> tuple[str, str, str, str]:
    if not (job_id and grant_id and operator):
        raise LedgerError("a release needs a job, a grant and an operator")
    return job_id, grant_id, operator, query


class Ledger:
    """The differencing ledger in one SQLite file. Safe to share between threads
    (one lock); several processes may open the same file (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._datasets: dict[str, _Dataset] = {}
        self._comparisons = 0
        try:
            self._db = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # A release the ledger forgot after a power cut could be differenced later.
            self._db.execute("PRAGMA synchronous=FULL")
            with self._tx(immediate=True):
                for statement in (*_SCHEMA, *_TRIGGERS):
                    self._db.execute(statement)
        except (sqlite3.Error, LedgerError) as e:
            raise LedgerError(f"cannot open the ledger at {path}: {e}") from e

    # -- public API ----------------------------------------------------------

    def check(self, cells: Sequence[Cell], k: int | Mapping[str, int]) -> list[DifferencingFinding]:
        """Findings for ``cells`` against every released cell of their datasets and
        against each other; an empty list means none of them can be differenced."""
        groups = _by_dataset(cells)  # bad input fails before any transaction
        ks = _thresholds(groups, k)
        with self._lock, self._tx(immediate=False):
            return self._check(cells, groups, ks)

    def record(
        self, cells: Sequence[Cell], *, job_id: str, grant_id: str, operator: str, query: str
    ) -> list[int]:
        """Store ``cells`` as released, in one transaction; returns their ids in order."""
        groups = _by_dataset(cells)
        release = _release(job_id, grant_id, operator, query)
        with self._lock, self._tx(immediate=True):
            return self._record(cells, groups, release)

    def check_and_record(
        self,
        cells: Sequence[Cell],
        k: int | Mapping[str, int],
        *,
        job_id: str,
        grant_id: str,
        operator: str,
        query: str,
    ) -> LedgerDecision:
        """Check ``cells``; record them only if there is no finding. Both happen
        under one write lock, so a concurrent job is checked against these cells."""
        groups = _by_dataset(cells)
        ks = _thresholds(groups, k)
        release = _release(job_id, grant_id, operator, query)
        with self._lock, self._tx(immediate=True):
            findings = self._check(cells, groups, ks)
            if findings:
                return LedgerDecision(tuple(findings), ())
            return LedgerDecision((), tuple(self._record(cells, groups, release)))

    def released(self, dataset: str) -> int:
        """How many cells of ``dataset`` are released."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM released_cells WHERE dataset = ?", (dataset,)
            ).fetchone()
        return int(row[0])

    @property
    def comparisons(self) -> int:
        """Set comparisons made since this ledger was opened (for tests and benchmarks)."""
        return self._comparisons

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._datasets.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions and caches -------------------------------------------

    @contextmanager
    def _tx(self, *, immediate: bool) -> Iterator[None]:
        """One transaction: a consistent snapshot to read, or (immediate) the write
        lock taken up front. On any failure it rolls back and drops the caches."""
        try:
            self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        except sqlite3.Error as e:
            raise LedgerError(f"the ledger is not available: {e}") from e
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as e:
            self._datasets.clear()
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise LedgerError(f"the ledger transaction failed: {e}") from e
            raise

    def _refresh(self, dataset: str) -> _Dataset:
        """Bring the dataset's cache up to the current snapshot. Rows are never
        changed, so reading the ids past what is cached is enough."""
        ds = self._datasets.setdefault(dataset, _Dataset())
        keys = self._db.execute(
            "SELECT key, id FROM entity_index WHERE dataset = ? AND id >= ? ORDER BY id",
            (dataset, len(ds.keys)),
        ).fetchall()
        if keys:
            ds.keys.update(keys)
            if len(ds.keys) != keys[-1][1] + 1:
                raise LedgerError(f"the entity index of dataset {dataset!r} is inconsistent")
        cells = self._db.execute(
            "SELECT id, size FROM released_cells WHERE dataset = ? AND id > ? ORDER BY id",
            (dataset, ds.last_id),
        ).fetchall()
        if cells:
            ds.index.extend((size, cell_id) for cell_id, size in cells)
            ds.index.sort()
            ds.last_id = cells[-1][0]
        return ds

    def _load(self, dataset: str, ds: _Dataset, ids: list[int]) -> None:
        """Read the bitmaps of released cells ``ids`` into the cache."""
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT id, size, entities, job_id, operator FROM released_cells "  # noqa: S608
                f"WHERE id IN ({marks}) AND dataset = ?",
                (*chunk, dataset),
            ).fetchall()
            for cell_id, size, blob, job_id, operator in rows:
                bitmap = FrozenBitMap.deserialize(blob)
                if len(bitmap) != size:
                    raise LedgerError(f"released cell #{cell_id} is corrupt")
                ds.stored[cell_id] = (bitmap, _label(cell_id, job_id, operator))
        if any(cell_id not in ds.stored for cell_id in ids):
            raise LedgerError(f"a released cell of dataset {dataset!r} cannot be read")

    # -- the rule ----------------------------------------------------------

    def _check(
        self, cells: Sequence[Cell], groups: dict[str, list[int]], ks: dict[str, int]
    ) -> list[DifferencingFinding]:
        findings: list[DifferencingFinding] = []
        for dataset, positions in groups.items():
            group = [cells[n] for n in positions]
            threshold = ks[dataset]
            ds = self._refresh(dataset)
            temp: dict[str, int] = {}
            sets = [self._bitmap(ds, cell.entities, temp) for cell in group]
            sizes = [len(s) for s in sets]
            found = itertools.chain(
                *(
                    self._against_released(dataset, ds, cell, new, size, threshold)
                    for cell, new, size in zip(group, sets, sizes, strict=True)
                ),
                self._within(dataset, group, sets, sizes, threshold),
            )
            findings.extend(itertools.islice(found, MAX_FINDINGS - len(findings)))
            if len(findings) >= MAX_FINDINGS:
                break  # the cells fail already; the rest would only cost time and memory
        return findings

    def _bitmap(self, ds: _Dataset, keys: frozenset[str], temp: dict[str, int]) -> BitMap:
        known = ds.keys
        unknown = keys.difference(known)  # iterates `keys` only
        if not unknown:
            return BitMap(map(known.__getitem__, keys))
        # Keys never released get ids past the index: they are in no stored set.
        for key in unknown:
            temp.setdefault(key, len(known) + len(temp))
        bitmap = BitMap(map(known.__getitem__, keys - unknown))
        bitmap.update(map(temp.__getitem__, unknown))
        return bitmap

    def _against_released(
        self, dataset: str, ds: _Dataset, cell: Cell, new: BitMap, size: int, k: int
    ) -> Iterator[DifferencingFinding]:
        lo = bisect.bisect_left(ds.index, size - k + 1, key=lambda e: e[0])
        hi = bisect.bisect_left(ds.index, size + k, key=lambda e: e[0])
        candidates = [cell_id for _, cell_id in ds.index[lo:hi]]
        stored = ds.stored
        self._load(dataset, ds, [c for c in candidates if c not in stored])
        self._comparisons += len(candidates)
        distance = new.symmetric_difference_cardinality
        for cell_id in candidates:
            other, label = stored[cell_id]
            d = distance(other)
            if 0 < d < k:
                yield self._finding(dataset, cell, label, d, size, len(other), k, cell_id)

    def _within(
        self, dataset: str, group: list[Cell], sets: list[BitMap], sizes: list[int], k: int
    ) -> Iterator[DifferencingFinding]:
        order = sorted(range(len(group)), key=sizes.__getitem__)
        for n, i in enumerate(order):
            for j in order[n + 1 :]:
                if sizes[j] - sizes[i] >= k:
                    break
                self._comparisons += 1
                d = sets[i].symmetric_difference_cardinality(sets[j])
                if 0 < d < k:
                    first, later = min(i, j), max(i, j)
                    other = f"cell {group[first].location} in this output"
                    yield self._finding(
                        dataset, group[later], other, d, sizes[later], sizes[first], k, None
                    )

    @staticmethod
    def _finding(
        dataset: str,
        cell: Cell,
        other: str,
        d: int,
        size: int,
        other_size: int,
        k: int,
        other_id: int | None,
    ) -> DifferencingFinding:
        # |A \ B| - |B \ A| = |A| - |B| and their sum is d.
        only_new = (d + size - other_size) // 2
        only_other = d - only_new
        subject = other if other_id is None else f"a released cell (#{other_id})"
        return DifferencingFinding(
            rule=RULE,
            location=cell.location,
            other=other,
            differs_by=d,
            message=_message(cell.location, subject, d, only_new, only_other, k),
            dataset=dataset,
            only_new=only_new,
            only_other=only_other,
            other_cell_id=other_id,
        )

    # -- recording ---------------------------------------------------------

    def _record(
        self,
        cells: Sequence[Cell],
        groups: dict[str, list[int]],
        release: tuple[str, str, str, str],
    ) -> list[int]:
        job_id, grant_id, operator, query = release
        query_sha256 = hashlib.sha256(query.encode()).hexdigest()
        released_at = datetime.now(UTC).isoformat()
        ids: dict[int, int] = {}  # position in ``cells`` -> released cell id
        for dataset, positions in groups.items():
            ds = self._refresh(dataset)  # under the write lock: the ids below are exact
            wanted = set().union(*(cells[n].entities for n in positions))
            missing = sorted(wanted.difference(ds.keys))
            base = len(ds.keys)
            self._db.executemany(
                "INSERT INTO entity_index (dataset, key, id) VALUES (?, ?, ?)",
                ((dataset, key, base + n) for n, key in enumerate(missing)),
            )
            ds.keys.update(zip(missing, range(base, base + len(missing)), strict=True))
            for n in positions:
                cell = cells[n]
                bitmap = FrozenBitMap(map(ds.keys.__getitem__, cell.entities))
                what = (dataset, len(bitmap), bitmap.serialize(), query_sha256, query)
                who = (grant_id, operator, job_id, cell.location, released_at)
                cursor = self._db.execute(_INSERT_CELL, (*what, *who))
                cell_id = cursor.lastrowid
                if cell_id is None or cell_id <= ds.last_id:
                    raise LedgerError("released cell ids must grow")
                ids[n] = cell_id
                # Nobody else can write until we commit: extend the cache in place
                # (a failed commit drops it).
                ds.stored[cell_id] = (bitmap, _label(cell_id, job_id, operator))
                ds.index.append((len(bitmap), cell_id))
                ds.last_id = cell_id
            ds.index.sort()
        return [ids[n] for n in range(len(cells))]
