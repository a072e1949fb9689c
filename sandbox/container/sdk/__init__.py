"""What analyst code imports inside the sandbox container.

    from sandbox.sdk import connect, catalog
    con = connect()                      # DuckDB, one view per /data/<view>.parquet
    con.sql("SELECT district, count(*) FROM residents GROUP BY district")

    from sandbox.sdk import publish_model, publish_query
    publish_query("by_district.csv", "SELECT district, count(*) AS n FROM residents GROUP BY 1")
    publish_model("age.json", "income ~ age", "SELECT income, age FROM residents")

The ``publish_*`` functions (``sandbox/container/sdk/publish.py``) declare each output
in ``/output/manifest.json``; nothing else is released. ``publish_query`` and
``publish_model`` are specifications: the trusted side computes them itself
on the real data, and only they can be released without a reviewer. Files
the job writes itself (``publish_table``, ``publish_figure``,
``publish_text``, ``publish_model_summary``, ``publish_model_from``) are held
for a reviewer.

The connection reads only ``/data``: external access is disabled and the
configuration locked once the views are registered. (The container has no
network and a read-only root anyway; this keeps DuckDB's own file functions
from reaching anything else.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox.container.sdk.publish import (
    PublishError,
    publish_figure,
    publish_model,
    publish_model_from,
    publish_model_summary,
    publish_query,
    publish_table,
    publish_text,
)

DATA_DIR = Path("/data")

__all__ = [
    "PublishError",
    "catalog",
    "connect",
    "publish_figure",
    "publish_model",
    "publish_model_from",
    "publish_model_summary",
    "publish_query",
    "publish_table",
    "publish_text",
]


def catalog(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """The views this job may read: ``/data/catalog.json`` (empty when absent)."""
    path = data_dir / "catalog.json"
    if not path.exists():
        return {"views": []}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def connect(data_dir: Path = DATA_DIR, memory_limit: str = "512MB", threads: int = 1) -> Any:
    """A DuckDB connection with every ``<view>.parquet`` in ``data_dir`` as a view."""
    import duckdb

    views = sorted(data_dir.glob("*.parquet"))
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads})
    # Exactly the view files may be read: not their directory (COPY or ATTACH
    # could write there), nothing else.
    con.execute("SET allowed_paths = $paths", {"paths": [str(p) for p in views]})
    for path in views:
        literal = "'" + str(path).replace("'", "''") + "'"
        # Both the name and the path are quoted; the names come from our own files.
        con.execute(f"CREATE VIEW {_quote(path.stem)} AS SELECT * FROM read_parquet({literal})")  # noqa: S608
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con
