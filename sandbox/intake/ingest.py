"""Stage 0 of the data flow: datasets enter the system -- turning a provider's file into Parquet.

The registry (``sandbox.intake.registry``) calls this module twice per file:
``inspect_source`` checks the file's format, encoding and delimiter options
and hashes its bytes (the hash names the version); then, only for bytes not
stored yet, ``to_parquet`` writes the Parquet into the registry's staging
directory and says what it holds. Every failure raises ``RegistryError``.

Invariants:

- Bounded memory: the source is hashed, decoded and transcoded in fixed-size
  chunks; DuckDB converts it under a memory limit, spilling to staging.
- CSV is read strictly: a header, RFC 4180 quotes, no comment lines, no
  skipped rows, the same number of fields in every row. Types are detected on
  a sample but never lossily: a numeric column with a leading zero anywhere in
  the file (codes like ``0101``) stays text, and a column a later value does
  not fit (an 18-digit ID ending in ``X``) falls back to text.
- UTF-8 (with or without BOM) is read as is; other encodings are transcoded to
  a staging UTF-8 copy (DuckDB reads only UTF-8 without extensions). When not
  given, the encoding is strict UTF-8, else strict GB18030 (a superset of GBK).
  Decoding, transcoding and the delimiter are ``sandbox.intake.encoding``'s.
- Errors name the problem and the line; they never quote row values.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sandbox.errors import NamesRefused, RegistryError
from sandbox.intake import names
from sandbox.intake.encoding import UTF8, codec_of, sniff_delimiter, stream, utf8_text
from sandbox.sqltext import ident, is_scalar_type

FORMATS = {".csv": "csv", ".parquet": "parquet"}
# Rows DuckDB's type sniffer reads; the leading-zero pass and the fallback on
# conversion errors cover the rest of the file.
SAMPLE_ROWS = 100_000
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE")
DUCKDB_CONFIG: dict[str, Any] = {
    "memory_limit": "512MB",
    "threads": 2,
    "preserve_insertion_order": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
CSV_OPTIONS = (
    "header = true, delim = $delim, quote = '\"', escape = '\"', comment = '', skip = 0, "
    f"strict_mode = true, ignore_errors = false, null_padding = false, sample_size = {SAMPLE_ROWS}"
)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # DuckDB type name: VARCHAR, BIGINT, DATE, DOUBLE, ...


@dataclass(frozen=True)
class Source:
    """A provider's file, checked and hashed by ``inspect_source``; not converted yet."""

    path: Path
    format: str  # "csv" or "parquet"
    codec: str | None  # the encoding the provider named, normalised; None when not named
    delimiter: str | None  # None: sniffed from the header line
    sha256: str  # of the file's bytes
    bad_utf8_line: int | None  # a CSV's first line that is not UTF-8 (None: all are)


@dataclass(frozen=True)
class Converted:
    """What ``to_parquet`` wrote."""

    columns: tuple[ColumnInfo, ...]
    row_count: int
    encoding: str | None  # the encoding the CSV was read in; None for Parquet
    entity_column: str  # as stored (renamed with the rest when the provider asked)
    renamed: tuple[tuple[str, str], ...] = ()  # (name in the file, name stored), when renamed


@dataclass(frozen=True)
class _Names:
    """How a file's columns are stored: the SELECT list over the file, and the renames."""

    projection_sql: str  # "*" when every name is kept
    entity_column: str
    renamed: tuple[tuple[str, str], ...]


def inspect_source(
    path: Path,
    *,
    source_format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Source:
    """Check ``path`` and the options for reading it, and hash its bytes in one streaming pass."""
    source = Path(path)
    if not source.is_file():
        raise RegistryError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise RegistryError(f"{source.name}: the file is empty")
    fmt = source_format or FORMATS.get(source.suffix.lower())
    if fmt not in ("csv", "parquet"):
        raise RegistryError(f"{source.name}: unknown format (expected .csv or .parquet)")
    if fmt == "parquet" and (encoding or delimiter):
        raise RegistryError("encoding and delimiter apply only to CSV")
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
        raise RegistryError("the delimiter must be one character, not a quote or newline")
    codec = codec_of(encoding) if encoding else None
    digest = hashlib.sha256()
    check = "utf-8" if fmt == "csv" and codec in (None, *UTF8) else None
    bad_utf8_line = stream(source, check, feed=digest.update)
    return Source(source, fmt, codec, delimiter, digest.hexdigest(), bad_utf8_line)


def to_parquet(
    source: Source,
    *,
    entity_column: str,
    staging: Path,
    target: Path,
    rename_columns: bool = False,
) -> Converted:
    """Write ``source`` as Parquet to ``target``; scratch files go under ``staging``.

    The file must hold ``entity_column`` and at least one row, and its column
    names must pass ``sandbox.intake.names`` (NamesRefused lists every one that does
    not, with a safe name), unless ``rename_columns``: then the safe names are
    stored and the renames returned.
    """
    with _connect(staging) as con:
        if source.format == "parquet":
            used = None
            plan = _parquet_to_parquet(con, source.path, entity_column, target, rename_columns)
        else:
            text, used = utf8_text(source.path, source.codec, source.bad_utf8_line, staging)
            delim = source.delimiter or sniff_delimiter(text)
            plan = _csv_to_parquet(
                con, text, delim, entity_column, target, source.path.name, rename_columns
            )
        columns, row_count = _stored(con, target, source.path.name)
    return Converted(columns, row_count, used, plan.entity_column, plan.renamed)


def _names(
    columns: tuple[ColumnInfo, ...],
    entity_column: str,
    rename: bool,
    label: str,
    header: list[str] | None = None,
) -> _Names:
    """The checked names of a file's columns (see ``sandbox.intake.names``) and their types.

    ``header``: the names as the file spells them, when the reader changed them
    (DuckDB's CSV reader makes duplicates unique): those are the ones checked.
    """
    nested = [i for i, c in enumerate(columns, start=1) if not is_scalar_type(c.type)]
    if nested:
        raise RegistryError(
            f"{label}: column(s) {', '.join(map(str, nested))} hold nested values (a list, "
            "struct or map): store one scalar value per column"
        )
    read = [c.name for c in columns]
    original = header if header is not None and len(header) == len(read) else read
    safe = names.safe_names(original)
    # The entity column as the file names it, or (when renaming) by its new name.
    at = next(
        (
            n.index(entity_column)
            for n in (original, read, safe if rename else [])
            if entity_column in n
        ),
        None,
    )
    if at is None:
        raise RegistryError(
            f"{label}: entity column {entity_column!r} is not among the file's "
            f"{len(columns)} columns"
        )
    problems = names.check_columns(original)
    if not problems and original == read:
        return _Names("*", read[at], ())
    if not rename:
        raise NamesRefused(
            f"{label}: {len(problems)} column name(s) cannot be used: letters, digits and _ "
            f"only, at most {names.MAX_NAME_CHARS} characters, unique ignoring case; "
            "rename them (or register with rename_columns to store the proposed names)",
            [p.to_json() for p in problems],
        )
    # By position: the file's own names (controls, quotes, anything) never enter the SQL.
    projection_sql = ", ".join(f"#{int(i)} AS {ident(n)}" for i, n in enumerate(safe, start=1))
    renamed = tuple((o, n) for o, n in zip(original, safe, strict=True) if o != n)
    return _Names(projection_sql, safe[at], renamed)


def _csv_header(path: Path, delim: str) -> list[str] | None:
    """The header row as the file spells it (None when it cannot be read as one row)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        try:
            return next(csv.reader(f, delimiter=delim, strict=True))
        except (csv.Error, StopIteration, UnicodeDecodeError):
            return None


@contextlib.contextmanager
def _connect(staging: Path) -> Iterator[Any]:
    config = {**DUCKDB_CONFIG, "temp_directory": str(staging / "spill")}
    with duckdb.connect(":memory:", config=config) as con:
        con.execute("SET enable_progress_bar = false")  # a library never draws on stdout
        yield con


def _parquet_to_parquet(
    con: Any, source: Path, entity_column: str, target: Path, rename: bool
) -> _Names:
    query, params = "SELECT * FROM read_parquet($src)", {"src": str(source)}
    with _wrapped(source.name):
        columns = _columns(con, query, params)
    plan = _names(columns, entity_column, rename, source.name)
    with _wrapped(source.name):
        _copy(con, query, params, target, plan.projection_sql)
    return plan


def _csv_to_parquet(
    con: Any, path: Path, delim: str, entity_column: str, target: Path, label: str, rename: bool
) -> _Names:
    params: dict[str, Any] = {"src": str(path), "delim": delim}
    try:
        columns = _columns(con, f"SELECT * FROM read_csv($src, {CSV_OPTIONS})", params)  # noqa: S608
    except duckdb.Error as e:
        # When the bad row is inside its sample, the sniffer gives no line.
        raise RegistryError(f"{label}: {_bad_row(path, delim) or _message(e)}") from e
    plan = _names(columns, entity_column, rename, label, _csv_header(path, delim))
    with _wrapped(label):
        types = _leading_zero_columns(con, columns, params)
    while True:
        typed = ", types = $types" if types else ""
        query = f"SELECT * FROM read_csv($src, {CSV_OPTIONS}{typed})"  # noqa: S608
        try:
            _copy(
                con,
                query,
                {**params, "types": types} if types else params,
                target,
                plan.projection_sql,
            )
            return plan
        except duckdb.Error as e:
            found = re.search(r'Error when converting column "(.*)"\. Could not', str(e))
            if found is None or found.group(1) in types:
                raise RegistryError(f"{label}: {_message(e)}") from e
            types[found.group(1)] = "VARCHAR"  # a value past the sample does not fit


def _leading_zero_columns(
    con: Any, columns: tuple[ColumnInfo, ...], params: dict[str, Any]
) -> dict[str, str]:
    """Numeric columns with a leading zero anywhere in the file, mapped to VARCHAR.

    One streaming pass over the text: ``0101`` past the sniffer's sample
    would otherwise be stored as the number 101.
    """
    numeric = [(i, c.name) for i, c in enumerate(columns, start=1) if c.type in NUMERIC_TYPES]
    if not numeric:
        return {}
    # Columns by position: the file's names (any text) never enter the SQL.
    checks_sql = ", ".join(
        f"coalesce(bool_or(regexp_matches(#{int(i)}, " + r"'^\s*[+-]?0[0-9]')), false)"
        for i, _ in numeric
    )
    query = f"SELECT {checks_sql} FROM read_csv($src, {CSV_OPTIONS}, all_varchar = true)"  # noqa: S608
    row = con.execute(query, params).fetchone()
    return {name: "VARCHAR" for (_, name), zero in zip(numeric, row, strict=True) if zero}


def _bad_row(path: Path, delim: str) -> str | None:
    """Where the first row with the wrong number of fields is, if any."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delim, strict=True)
        try:
            width = len(next(reader))
            for row in reader:
                if row and len(row) != width:
                    return (
                        f"malformed CSV: line {reader.line_num} has {len(row)} fields, "
                        f"the header has {width}"
                    )
        except csv.Error:
            return f"malformed CSV at line {reader.line_num}"
        except StopIteration:
            return None
    return None


def _columns(con: Any, query_sql: str, params: dict[str, Any]) -> tuple[ColumnInfo, ...]:
    rows = con.execute(f"DESCRIBE {query_sql}", params).fetchall()
    return tuple(ColumnInfo(str(r[0]), str(r[1])) for r in rows)


def _copy(
    con: Any, query_sql: str, params: dict[str, Any], target: Path, projection_sql: str = "*"
) -> None:
    sql = (
        f"COPY (SELECT {projection_sql} FROM ({query_sql})) "  # noqa: S608
        "TO $dst (FORMAT parquet, COMPRESSION zstd)"
    )
    con.execute(sql, {**params, "dst": str(target)})


def _stored(con: Any, target: Path, label: str) -> tuple[tuple[ColumnInfo, ...], int]:
    """Columns and row count of the Parquet written; no rows is an error."""
    params, query = {"src": str(target)}, "SELECT * FROM read_parquet($src)"
    with _wrapped(label):
        columns = _columns(con, query, params)
        row = con.execute("SELECT count(*) FROM read_parquet($src)", params).fetchone()
    if not row or not row[0]:
        raise RegistryError(f"{label}: the file holds no rows")
    return columns, int(row[0])


@contextlib.contextmanager
def _wrapped(label: str) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as e:
        raise RegistryError(f"{label}: {_message(e)}") from e


def _message(e: Exception) -> str:
    """What went wrong, in our words: the line and the kind of problem, never the engine's
    text (it quotes rows, paths and settings)."""
    text = str(e)
    found = re.search(r"Line: (\d+)", text)
    line = f" at line {found.group(1)}" if found else ""
    counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if counts and found:
        return (
            f"malformed CSV: line {found.group(1)} has {counts.group(2)} fields, "
            f"the header has {counts.group(1)}"
        )
    if "Could not convert" in text or text.startswith("Conversion Error"):
        return f"a value{line} does not fit the type found for its column"
    if "sniff" in text or "dialect" in text:
        return "the CSV's delimiter and quoting could not be detected: name the delimiter"
    if "quote" in text.lower():
        return f"malformed CSV{line}: a quoted field is not closed"
    if "Parquet" in text or "parquet" in text:
        return "not a readable Parquet file"
    return f"the file cannot be read{line}"
