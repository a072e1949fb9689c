"""ACRO's side of ``benchmarks/acro_compare.py``: time ACRO's table checks, print JSON.

Runs under the interpreter of ACRO's own virtual environment, never the
product's: ACRO pins ``pandas<=2.3.3``, so it must not become a dependency.
``acro_compare.py`` starts it in a scratch directory (ACRO writes files only
when a session is finalised, which this never does; the directory is thrown
away anyway). Imports nothing from ``sandbox``.

For ``crosstab(district, industry, values=amount, aggfunc="sum")`` and the
same ``pivot_table``, with suppression on and ACRO's default rules
(threshold 10, p-ratio 0.1, nk-rule n=2 k=0.9): one warm-up call, then
``--runs`` timed calls; the cells each check flagged, by their labels.

    <acro-venv>/bin/python benchmarks/acro_side.py DATA.parquet [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
import warnings
from typing import Any

CHECKS = ("MinimumThresholdCheck", "PPercentCheck", "NKCheck")
COLUMNS = ["district", "industry", "amount"]


def flagged(session: Any, table: Any) -> dict[str, Any]:
    """The latest output's per-check cell counts and flagged cells as [district, industry]."""
    record = session.results.get(session.results.get_keys()[-1])
    cells = {}
    for check in CHECKS:
        positions = record.sdc["cells"].get(check, [])
        labels = []
        for row, col in positions:
            column = table.columns[col]
            labels.append(
                [str(table.index[row]), str(column[-1] if isinstance(column, tuple) else column)]
            )
        cells[check] = sorted(labels)
    return {
        "status": record.status,
        "summary": {k: int(v) for k, v in record.sdc["summary"].items()},
        "cells": cells,
        "shape": list(table.shape),
    }


def measure(call: Any, runs: int) -> tuple[list[float], Any]:
    """One warm-up call, then ``runs`` timed calls; the times and the last table."""
    table = call()
    times = []
    for _ in range(runs):
        started = time.monotonic()
        table = call()
        times.append(time.monotonic() - started)
    return times, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the Parquet file (district, industry, amount, ...)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-pivot", action="store_true", help="time crosstab only")
    args = parser.parse_args()

    import acro
    import numpy as np
    import pandas as pd
    from acro.version import __version__ as acro_version

    # ACRO logs every table at INFO and trips a pandas copy warning; print JSON only.
    warnings.filterwarnings("ignore", category=pd.errors.SettingWithCopyWarning)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("acro").setLevel(logging.WARNING)

    started = time.monotonic()
    df = pd.read_parquet(args.data, columns=COLUMNS)
    load_s = time.monotonic() - started
    session = acro.ACRO(suppress=True)
    rules = {
        k: session.config[k] for k in ("safe_threshold", "safe_pratio_p", "safe_nk_n", "safe_nk_k")
    }

    results = {}
    times, table = measure(
        lambda: session.crosstab(df.district, df.industry, values=df.amount, aggfunc="sum"),
        args.runs,
    )
    results["crosstab"] = {"times_s": times, **flagged(session, table)}
    if not args.no_pivot:
        times, table = measure(
            lambda: session.pivot_table(
                df, values="amount", index="district", columns="industry", aggfunc="sum"
            ),
            args.runs,
        )
        results["pivot_table"] = {"times_s": times, **flagged(session, table)}
    json.dump(
        {
            "versions": {
                "python": platform.python_version(),
                "acro": acro_version,
                "pandas": pd.__version__,
                "numpy": np.__version__,
            },
            "rows": len(df),
            "load_s": load_s,
            "rules": rules,
            "results": results,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
