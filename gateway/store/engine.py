"""The metadata store's engine: SQLite (the embedded default) or PostgreSQL.

Invariants:

- Only two backends: SQLite through the standard ``sqlite3`` module, and
  PostgreSQL through psycopg 3 (``postgresql+psycopg://``; a bare
  ``postgresql://`` is taken to mean psycopg). Anything else is refused with
  :class:`~gateway.errors.ConfigurationError` before a connection is tried.
- SQLite files run in WAL mode (readers never block the writer), with foreign
  keys enforced and a busy timeout, so concurrent gateway processes wait for
  the write lock instead of failing at once.
- On SQLite every transaction begins ``BEGIN IMMEDIATE``: it holds the single
  write lock from its first statement, so a read-then-write (a state change,
  the audit chain's head) can never be overtaken by another writer. Read-only
  work opts out with :func:`read_transaction`, which begins ``DEFERRED`` (a
  consistent WAL snapshot, no lock). SQLAlchemy emits the BEGIN itself (the
  ``sqlite3`` module's own transaction handling is switched off), which also
  makes DDL transactional, so a failed migration leaves nothing behind.
- PostgreSQL transactions are the server's default (READ COMMITTED); writers
  of an append-only chain serialise on a transaction-scoped advisory lock
  (:func:`serialise_writers`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from gateway.errors import ConfigurationError, StoreError

SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
POSTGRES_DRIVERS = ("postgresql", "postgresql+psycopg")
DEFAULT_BUSY_TIMEOUT_SECONDS = 30.0

# Set on a connection (``conn.execution_options(**{READ_ONLY: True})``) before
# its transaction begins: SQLite then begins DEFERRED instead of IMMEDIATE.
READ_ONLY = "dsr_read_only"
_BEGUN = "dsr_sqlite_begin"  # conn.info key: how the current SQLite transaction began


def normalise_url(url: str | URL) -> URL:
    """The URL as the store will use it, or :class:`ConfigurationError` saying
    why it cannot be used. ``postgresql://`` becomes ``postgresql+psycopg://``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as e:
        raise ConfigurationError(f"not a database URL: {e}") from e
    name = parsed.drivername
    if name in SQLITE_DRIVERS:
        return parsed
    if name in POSTGRES_DRIVERS:
        if not parsed.database:
            raise ConfigurationError("a PostgreSQL URL must name the database")
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigurationError(
        f"unsupported database {name!r}: use sqlite:///<absolute path> "
        "or postgresql+psycopg://user@host/dbname"
    )


def is_sqlite(bind: Connection | Engine) -> bool:
    return bind.dialect.name == "sqlite"


def sqlite_in_memory(url: URL) -> bool:
    """True for URLs whose SQLite database lives only as long as a connection."""
    db = url.database or ""
    return db in ("", ":memory:") or db.startswith("file::memory:") or "mode=memory" in db


def make_engine(
    url: str | URL, *, busy_timeout_seconds: float = DEFAULT_BUSY_TIMEOUT_SECONDS
) -> Engine:
    """An engine for the metadata store at ``url`` (see the module docstring).

    For a SQLite file the parent directory is created (mode 0700) if missing.
    The schema is not touched: call :func:`gateway.store.migrate` for that.
    """
    parsed = normalise_url(url)
    if parsed.drivername in SQLITE_DRIVERS:
        return _sqlite_engine(parsed, busy_timeout_seconds)
    return create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(1, round(busy_timeout_seconds)),
            "application_name": "dsr-gateway",
        },
    )


def _sqlite_engine(url: URL, busy_timeout_seconds: float) -> Engine:
    in_memory = sqlite_in_memory(url)
    if not in_memory and url.database and "uri" not in url.query:
        try:
            Path(url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory of {url.database}: {e}") from e
    engine = create_engine(url, connect_args={"timeout": busy_timeout_seconds})
    timeout_ms = max(0, round(busy_timeout_seconds * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below); sqlite3 must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        finally:
            cursor.close()
        if not in_memory and str(mode).lower() != "wal":
            raise StoreError(f"SQLite refused WAL mode (journal_mode is {mode})")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")
        conn.info[_BEGUN] = mode

    return engine


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction over one consistent snapshot, holding no write
    lock: SQLite ``BEGIN DEFERRED`` under WAL, PostgreSQL ``REPEATABLE READ
    READ ONLY``. For verification and exports, which may take a while."""
    options: dict[str, Any] = {READ_ONLY: True}
    if not is_sqlite(engine):
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with engine.connect() as conn, conn.execution_options(**options).begin():
        yield conn


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL advisory locks)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def serialise_writers(conn: Connection, name: str) -> None:
    """Hold, until the caller's transaction ends, the lock that serialises
    every writer of the append-only chain ``name``, beginning a transaction
    on ``conn`` if none is open.

    PostgreSQL: a transaction-scoped advisory lock (waits for the holder).
    SQLite: the database's write lock, which a transaction of an engine from
    :func:`make_engine` holds from its start; a read-only transaction, or a
    connection from another engine, cannot append and gets :class:`StoreError`.
    """
    if not conn.in_transaction():
        conn.begin()
    if is_sqlite(conn):
        if conn.info.get(_BEGUN) != "IMMEDIATE":
            raise StoreError(
                "appending needs a write transaction on an engine from make_engine() "
                "(SQLite BEGIN IMMEDIATE); this one is read-only or unmanaged"
            )
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
