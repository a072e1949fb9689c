"""Container side of an SQL product: run the rewritten query, write the result.

Stage 4 of the data flow for SQL jobs. The runner calls ``run_sql`` when
``/job/job.json`` says ``"kind": "sql"``. The query is ours (the checked,
evidence-carrying rewrite made on the trusted side), never the analyst's
text; it runs in DuckDB with every view of ``/data`` registered, external
access disabled, the configuration locked and explicit memory and thread
limits (``sandbox.sdk.connect``). The result, released columns and evidence
columns together, is streamed to ``/output/result.parquet``; the host splits
them.

Invariants:
- Exit 0 with the result file, 1 when DuckDB refuses or fails the query
  (message on stderr, which is withheld from the operator for real data),
  65 for a job description that is not an SQL job.
- Nothing else is written to ``/output``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

RESULT = "result.parquet"
EXIT_BAD_JOB = 65
BATCH_ROWS = 65_536


def run_sql(
    job_dir: Path,
    job: dict[str, Any],
    data_dir: Path = Path("/data"),
    output_dir: Path = Path("/output"),
) -> int:
    query = job.get("query")
    memory = job.get("memory_limit", "512MB")
    threads = job.get("threads", 1)
    if not isinstance(query, str) or not isinstance(memory, str) or not isinstance(threads, int):
        print("runner: an SQL job needs a query, a memory_limit and threads", file=sys.stderr)
        return EXIT_BAD_JOB

    import duckdb
    import pyarrow.parquet as pq

    from sandbox.sdk import connect

    con = connect(data_dir, memory_limit=memory, threads=threads)
    try:
        reader = con.sql(query).to_arrow_reader(BATCH_ROWS)
        with pq.ParquetWriter(output_dir / RESULT, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    except duckdb.Error as e:
        print(f"runner: the query failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0
