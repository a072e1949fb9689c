"""Schema migrations of the metadata store (Alembic), run from code.

``migrate(engine)`` upgrades the store to the newest revision in
``versions/``; it is idempotent and safe to run from several processes at
once (SQLite: the write lock of ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
lock), and all of it happens in one transaction, so a failed migration leaves
the store as it was. No ``alembic.ini`` is needed: the configuration is built
here, with the scripts found next to this file, so an installed package
migrates too.

A new table (accounts, grants, jobs, reviews ...) is a new file in
``versions/`` named ``NNNN_what.py`` with ``revision = "NNNN"`` and
``down_revision`` the previous one, written out in full (never importing
``gateway.store.tables``, which only describes the newest schema). Start one
with ``alembic.command.revision(alembic_config(url), message=..., rev_id="NNNN",
autogenerate=True)`` and read it before keeping it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import StoreError
from gateway.store.engine import is_sqlite, serialise_writers

SCRIPT_LOCATION = Path(__file__).resolve().parent
CONNECTION = "connection"  # Config.attributes key read by env.py


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for this package's migrations; ``url`` only
    for commands that open their own connection (e.g. ``revision``)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision in ``versions/``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError("no migrations found in " + str(SCRIPT_LOCATION / "versions"))
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the store at ``conn`` is at (None before the first migration)."""
    return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> str:
    """Upgrade the store to the newest revision and return it (see the module docstring)."""
    config = alembic_config()
    try:
        with engine.begin() as conn:
            if not is_sqlite(conn):
                # SQLite's BEGIN IMMEDIATE already excludes other migrators.
                serialise_writers(conn, "dsr.migrations")
            config.attributes[CONNECTION] = conn
            command.upgrade(config, "head")
            revision = current_revision(conn)
    except (SQLAlchemyError, CommandError) as e:
        raise StoreError(f"migrating the metadata store failed: {e}") from e
    if revision is None:
        raise StoreError("migrating the metadata store left no revision recorded")
    return revision
