"""Alembic's environment for the metadata store (see ``gateway.store.migrations``).

Runs on the connection handed over by ``migrate()``, inside its transaction.
Used through the ``alembic`` command line instead, it opens its own engine
from ``sqlalchemy.url``; ``--sql`` (offline) renders the DDL instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.store.engine import make_engine
from gateway.store.migrations import CONNECTION
from gateway.store.tables import metadata


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=conn.dialect.name == "sqlite",  # SQLite ALTERs by table copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    given = context.config.attributes.get(CONNECTION)
    if isinstance(given, Connection):
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run migrations with gateway.store.migrate()")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
