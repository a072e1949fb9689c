"""What one job's sandbox run used, as the trusted side meters it (001 art. 34, 004 art. 28).

Stage 4 of the data flow, after collection. The kernel's figures (CPU seconds,
peak memory) are in the run's ``Execution`` (``sandbox.run.backends.cgroups``);
this module adds:

- ``output_bytes``: the bytes of the files collected from the run's ``/output``;
- ``scanned``: what an SQL product's evidence query reads from the views, from
  the views' Parquet metadata: the rows of each view it reads, and the
  compressed bytes of the column chunks of every column it references (the
  entity column included: the evidence reads it), in every row group.

Why not DuckDB's profile of the query (``query.total_rows_scanned``,
``query.total_bytes_scanned``; tracking those two costs about 2% of a 1M-row
scan)? Its rows scanned are counted *after* the filters DuckDB pushes into the
scan: ``WHERE id < 500000`` over a million rows reports exactly 500000. Shown to
the operator (the job and its metering are the operator's to read), that is an
exact count of the rows matching any filter, however small, beside an output
whose small cells were suppressed; its bytes follow row-group pruning, which
follows the values. The figures here depend only on the query's text and the
views' sizes, and a re-run gives the same ones. They are what the query may read
(the most DuckDB would scan). Even so, a view's exact row count is a count the
catalogue does not tell (a small view's is a small count), and its columns'
compressed size follows their values; so both are told coarsened, rounded up to
whole ``ROWS_STEP`` rows and ``BYTES_STEP`` bytes: enough for accounting, never
an exact size.

Invariants:
- Nothing the job writes or prints is read here.
- A Python job's own code reads the views inside the container, whatever it
  likes: no trusted count of its scans exists, so they are ``None``, never an
  estimate.
"""

from __future__ import annotations

from collections.abc import Collection as CollectionOf
from dataclasses import dataclass

import pyarrow.parquet as pq

from sandbox.run.backends.base import RunResult
from sandbox.views.build import ViewSet

ROWS_STEP = 10_000  # rows scanned are told in whole steps of this many, rounded up
BYTES_STEP = 1 << 20  # bytes scanned likewise, in whole MiB


def coarse(value: int, step: int) -> int:
    """``value`` rounded up to a whole number of ``step``s (0 stays 0)."""
    return -(-value // step) * step


@dataclass(frozen=True)
class Scanned:
    """Rows and bytes an evidence query reads from the views, coarsened (see above)."""

    rows: int
    bytes: int


def output_bytes(run: RunResult) -> int:
    """The bytes of the files collected from the run's ``/output``."""
    return run.collection.total_bytes


def scanned(view_set: ViewSet, columns: CollectionOf[tuple[str, str]]) -> Scanned:
    """What a query referencing ``columns`` ((dataset, column) pairs) reads of ``view_set``."""
    rows = size = 0
    for view in view_set.views:
        read = {c for d, c in columns if d == view.dataset}
        if not read:
            continue
        read.add(view.entity_column)
        metadata = pq.ParquetFile(view.path).metadata
        rows += metadata.num_rows
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for i in range(group.num_columns):
                chunk = group.column(i)
                if chunk.path_in_schema.split(".")[0] in read:
                    size += chunk.total_compressed_size
    return Scanned(coarse(rows, ROWS_STEP), coarse(size, BYTES_STEP))
