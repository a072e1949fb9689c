"""Building indexes: of identifier values, a dataset's identifier columns, a view's pseudonyms.

Values are read in batches of ``BATCH`` (distinct values of a Parquet column
by DuckDB), turned into forms (``forms``), indexed (``index``) and the
batches' indexes merged into one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.intake.policy import ColumnClass, ExposurePolicy, Visibility
from sandbox.intake.registry import DatasetVersion
from sandbox.judge.fingerprints.forms import byte_forms, value_forms
from sandbox.judge.fingerprints.index import FingerprintIndex, merge
from sandbox.judge.fingerprints.normal import normalise, strings
from sandbox.sqltext import ident

# A pseudonym's first 15 hex digits (60 bits) still track a person; 15 bytes are whole
# base64 (3-byte) and base32 (5-byte) groups, so encodings of any longer prefix hold theirs.
PSEUDONYM_PREFIX = 15
BATCH = 200_000


def _index_of(values: pa.Array, con: duckdb.DuckDBPyConnection) -> FingerprintIndex:
    return FingerprintIndex.of_forms(*value_forms(values, con))


def build_from_values(values: Iterable[str | int]) -> FingerprintIndex:
    """The index of identifier values (strings; integers as decimal strings)."""
    with duckdb.connect() as con:
        return merge(_index_of(chunk, con) for chunk in _chunks(values) if len(chunk))


def _chunks(values: Iterable[str | int]) -> Iterable[pa.Array]:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        arr = strings(values)
        yield from (arr.slice(i, BATCH) for i in range(0, len(arr), BATCH))
        return
    items = iter(values)
    while batch := list(itertools.islice(items, BATCH)):
        try:  # all strings: converted in C
            yield pa.array(batch, pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            yield pa.array([v if isinstance(v, str) else str(v) for v in batch], pa.large_string())


def _distinct(path: Path, columns: Sequence[str]) -> Iterable[pa.Array]:
    """Distinct non-null values of ``columns`` of a Parquet file, as text, in batches."""
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        for name in columns:
            quoted = ident(name)  # names enter SQL only through sandbox.sqltext; the path is bound
            query_sql = (
                f"SELECT DISTINCT CAST({quoted} AS VARCHAR) AS v FROM read_parquet($p) "  # noqa: S608
                f"WHERE {quoted} IS NOT NULL"
            )
            reader = con.sql(query_sql, params={"p": str(path)}).to_arrow_reader(BATCH)
            for batch in reader:
                yield batch.column(0)


def build_for_dataset(version: DatasetVersion, policy: ExposurePolicy) -> FingerprintIndex:
    """Fingerprints of every identifier column of a raw dataset, except ``plain`` ones.

    A ``plain`` identifier (a company name) is public by the provider's decision.
    """
    present = {c.name for c in version.columns}
    columns = [
        name
        for name, col in policy.columns.items()
        if col.column_class == ColumnClass.IDENTIFIER
        and col.visibility != Visibility.PLAIN
        and name in present
    ]
    with duckdb.connect() as con:
        return merge(_index_of(batch, con) for batch in _distinct(version.path, columns))


def build_for_pseudonyms(view_parquet_path: Path, columns: Sequence[str]) -> FingerprintIndex:
    """Fingerprints of the pseudonyms in a view.

    Their forms, the forms of their first ``PSEUDONYM_PREFIX`` hex digits (a
    truncated pseudonym, encoded or not) and of the bytes they spell
    (``byte_forms``).
    """
    parts = []
    with duckdb.connect() as con:
        for batch in _distinct(view_parquet_path, columns):
            prefix = pc.utf8_slice_codeunits(normalise(batch, strip=True), 0, PSEUDONYM_PREFIX)
            empty = pa.array([], pa.large_string())
            parts += [
                _index_of(batch, con),
                _index_of(prefix, con),
                FingerprintIndex.of_forms(byte_forms(batch, con), empty),
            ]
    return merge(parts)
