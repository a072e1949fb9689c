"""Stage 0 of the data flow: datasets enter the system -- turning a provider's file into Parquet.

The registry (``sandbox.registry``) calls this module twice per file:
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
- Errors name the problem and the line; they never quote row values.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb

from sandbox.errors import RegistryError

FORMATS = {".csv": "csv", ".parquet": "parquet"}
UTF8 = ("utf-8", "utf-8-sig")
CHUNK = 1 << 20
# Rows DuckDB's type sniffer reads; the leading-zero pass and the fallback on
# conversion errors cover the rest of the file.
SAMPLE_ROWS = 100_000
DELIMITER_CANDIDATES = (",", "\t", ";", "|")
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
    codec = _codec(encoding) if encoding else None
    digest = hashlib.sha256()
    check = "utf-8" if fmt == "csv" and codec in (None, *UTF8) else None
    bad_utf8_line = _stream(source, check, feed=digest.update)
    return Source(source, fmt, codec, delimiter, digest.hexdigest(), bad_utf8_line)


def to_parquet(source: Source, *, entity_column: str, staging: Path, target: Path) -> Converted:
    """Write ``source`` as Parquet to ``target``; scratch files go under ``staging``.

    The file must hold ``entity_column`` and at least one row.
    """
    with _connect(staging) as con:
        if source.format == "parquet":
            used = None
            _parquet_to_parquet(con, source.path, entity_column, target)
        else:
            text, used = _utf8_text(source.path, source.codec, source.bad_utf8_line, staging)
            delim = source.delimiter or _sniff_delimiter(text)
            _csv_to_parquet(con, text, delim, entity_column, target, source.path.name)
        columns, row_count = _stored(con, target, source.path.name)
    return Converted(columns, row_count, used)


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError as e:
        raise RegistryError(f"unknown encoding {encoding!r}") from e


def _stream(
    path: Path,
    codec: str | None,
    *,
    feed: Callable[[bytes], object] | None = None,
    out: IO[str] | None = None,
) -> int | None:
    """Read ``path`` in chunks into ``feed``, decoding strictly with ``codec`` into ``out``.

    Returns the line of the first byte ``codec`` cannot decode (None when all
    can). Past that byte, ``feed`` still gets the rest; ``out`` gets no more.
    """
    decoder = codecs.getincrementaldecoder(codec)("strict") if codec else None
    lines, bad = 0, None
    with path.open("rb") as f:
        while decoder is not None or feed is not None:
            chunk = f.read(CHUNK)
            if feed is not None:
                feed(chunk)
            if decoder is not None:
                try:
                    text = decoder.decode(chunk, not chunk)
                except UnicodeDecodeError as e:
                    # Bytes a decoder holds back between chunks are never a
                    # newline, so counting newlines in what it saw is exact.
                    seen = e.object if isinstance(e.object, bytes) else b""
                    decoder, bad = None, lines + 1 + seen[: e.start].count(b"\n")
                    if out is not None:
                        return bad
                else:
                    lines += chunk.count(b"\n")
                    if out is not None:
                        out.write(text)
            if not chunk:
                break
    return bad


def _utf8_text(
    source: Path, codec: str | None, bad_utf8_line: int | None, staging: Path
) -> tuple[Path, str]:
    """A UTF-8 file holding the CSV's text, and the encoding the source was read in."""
    if codec in (None, *UTF8) and bad_utf8_line is None:
        with source.open("rb") as f:
            bom = f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        return source, codec or ("utf-8-sig" if bom else "utf-8")
    if codec in UTF8:
        raise RegistryError(f"{source.name}: does not decode as {codec} at line {bad_utf8_line}")
    target, used = staging / "source.utf8.csv", codec or "gb18030"
    with target.open("w", encoding="utf-8", newline="") as out:
        bad = _stream(source, used, out=out)
    if bad is not None and codec is not None:
        raise RegistryError(f"{source.name}: does not decode as {codec} at line {bad}")
    if bad is not None:
        raise RegistryError(
            f"{source.name}: encoding not detected: not UTF-8 (line {bad_utf8_line}) "
            f"nor GB18030 (line {bad}); name it with encoding="
        )
    return target, used


def _sniff_delimiter(path: Path) -> str:
    """The candidate seen most often in the header line (',' when none is).

    Not left to DuckDB: its sniffer falls back to one column when rows
    disagree, which would accept a malformed file.
    """
    with path.open("rb") as f:
        header = f.readline(CHUNK).decode("utf-8", errors="replace")
    best = max(DELIMITER_CANDIDATES, key=header.count)
    return best if header.count(best) else ","


@contextlib.contextmanager
def _connect(staging: Path) -> Iterator[Any]:
    config = {**DUCKDB_CONFIG, "temp_directory": str(staging / "spill")}
    with duckdb.connect(":memory:", config=config) as con:
        con.execute("SET enable_progress_bar = false")  # a library never draws on stdout
        yield con


def _parquet_to_parquet(con: Any, source: Path, entity_column: str, target: Path) -> None:
    query, params = "SELECT * FROM read_parquet($src)", {"src": str(source)}
    with _wrapped(source.name):
        _check_entity(_columns(con, query, params), entity_column, source.name)
        _copy(con, query, params, target)


def _csv_to_parquet(
    con: Any, path: Path, delim: str, entity_column: str, target: Path, label: str
) -> None:
    params: dict[str, Any] = {"src": str(path), "delim": delim}
    try:
        columns = _columns(con, f"SELECT * FROM read_csv($src, {CSV_OPTIONS})", params)  # noqa: S608
    except duckdb.Error as e:
        # When the bad row is inside its sample, the sniffer gives no line.
        raise RegistryError(f"{label}: {_bad_row(path, delim) or _message(e)}") from e
    _check_entity(columns, entity_column, label)
    with _wrapped(label):
        types = _leading_zero_columns(con, columns, params)
    while True:
        typed = ", types = $types" if types else ""
        query = f"SELECT * FROM read_csv($src, {CSV_OPTIONS}{typed})"  # noqa: S608
        try:
            _copy(con, query, {**params, "types": types} if types else params, target)
            return
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
    numeric = [c.name for c in columns if c.type in NUMERIC_TYPES]
    if not numeric:
        return {}
    checks = ", ".join(
        "coalesce(bool_or(regexp_matches(" + _ident(c) + r", '^\s*[+-]?0[0-9]')), false)"
        for c in numeric
    )
    query = f"SELECT {checks} FROM read_csv($src, {CSV_OPTIONS}, all_varchar = true)"  # noqa: S608
    row = con.execute(query, params).fetchone()
    return {c: "VARCHAR" for c, zero in zip(numeric, row, strict=True) if zero}


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


def _columns(con: Any, query: str, params: dict[str, Any]) -> tuple[ColumnInfo, ...]:
    rows = con.execute(f"DESCRIBE {query}", params).fetchall()
    return tuple(ColumnInfo(str(r[0]), str(r[1])) for r in rows)


def _copy(con: Any, query: str, params: dict[str, Any], target: Path) -> None:
    sql = f"COPY ({query}) TO $dst (FORMAT parquet, COMPRESSION zstd)"
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


def _check_entity(columns: tuple[ColumnInfo, ...], entity_column: str, label: str) -> None:
    if entity_column not in {c.name for c in columns}:
        raise RegistryError(
            f"{label}: entity column {entity_column!r} is not among the file's "
            f"{len(columns)} columns"
        )


def _message(e: Exception) -> str:
    """DuckDB's diagnosis without the offending row or value, and without its advice."""
    kept: list[str] = []
    for line in str(e).splitlines():
        if line.startswith(("Possible fixes", "Possible solutions", "LINE ")):
            break
        if line.strip() and not line.startswith("Original Line"):
            kept.append(line.strip())
    return re.sub(r'string "[^"]*"', "a value", " ".join(kept))[:500]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
