"""The Python screen (stage 2): every rule fires where it should, on the line it
should, and ordinary analysis code passes untouched. Fast: no Docker."""

from __future__ import annotations

import textwrap

import pytest

from sandbox.errors import SandboxError, ScreenRejected
from sandbox.precheck import screen
from sandbox.precheck.screen import (
    RULES,
    ScreenFinding,
    can_run_python,
    check_python,
    screen_python,
)
from tests.support.screen_escape import ESCAPE


def findings(code: str) -> tuple[ScreenFinding, ...]:
    return screen_python(textwrap.dedent(code)).findings


def where(code: str) -> set[tuple[str, int | None]]:
    return {(f.rule, f.line) for f in findings(code)}


# (rule, expected line, realistic snippet)
FLAGGED = [
    (
        "underscore_name",
        2,
        """
        df = load()
        kind = df.__class__.__name__
        """,
    ),
    (
        "underscore_name",
        3,
        """
        class Model:
            def fit(self, rows):
                self._cache = rows
        """,
    ),
    (
        "exec_eval",
        3,
        """
        import pandas as pd
        expr = "income / household_size"
        ratio = eval(expr)
        """,
    ),
    (
        "exec_eval",
        2,
        """
        snippet = open("/job/extra.py").read()
        exec(snippet)
        """,
    ),
    (
        "exec_eval",
        1,
        """
        code = compile("1 + 1", "x", "eval")
        """,
    ),
    (
        "exec_eval",
        2,
        """
        name = "o" + "s"
        mod = __import__(name)
        """,
    ),
    (
        "open_path",
        3,
        """
        import json

        with open("/etc/passwd") as f:
            users = f.read()
        """,
    ),
    (
        "open_path",
        1,
        """
        secrets = open("../../proc/1/environ", "rb").read()
        """,
    ),
    (
        "open_path",
        2,
        """
        import io
        io.open(file="/data/../home/analyst/.netrc").read()
        """,
    ),
    (
        "process_spawn",
        4,
        """
        import os

        os.makedirs("/output/plots", exist_ok=True)
        os.system("pip install seaborn")
        """,
    ),
    (
        "process_spawn",
        1,
        """
        import subprocess
        subprocess.run(["ls", "/data"])
        """,
    ),
    (
        "process_spawn",
        2,
        """
        import os
        listing = os.popen("ls /").read()
        """,
    ),
    (
        "process_spawn",
        2,
        """
        import os as operating_system
        operating_system.execv("/bin/sh", ["sh"])
        """,
    ),
    (
        "process_spawn",
        3,
        """
        import os
        import time
        pid = os.fork()
        """,
    ),
    (
        "process_spawn",
        1,
        """
        import pty
        pty.spawn("/bin/sh")
        """,
    ),
    (
        "process_spawn",
        1,
        """
        from os import system as run
        run("id")
        """,
    ),
    (
        "network",
        2,
        """
        import json
        import socket
        s = socket.create_connection(("192.0.2.1", 80))
        """,
    ),
    (
        "native_code",
        1,
        """
        from ctypes import CDLL
        libc = CDLL(None)
        """,
    ),
    (
        "module_registry",
        2,
        """
        import sys
        os_module = sys.modules["os"]
        """,
    ),
    (
        "frame_walk",
        2,
        """
        import sys
        caller = sys._getframe(1)
        """,
    ),
    (
        "frame_walk",
        3,
        """
        import inspect
        def who_called():
            return inspect.currentframe().f_back.f_globals
        """,
    ),
    (
        "frame_walk",
        2,
        """
        import gc
        holders = gc.get_referrers(object)
        """,
    ),
    (
        "dynamic_import",
        1,
        """
        import importlib
        mod = importlib.import_module("o" + "s")
        """,
    ),
    (
        "dynamic_import",
        2,
        """
        import json
        from importlib import import_module
        """,
    ),
    (
        "restricted_construct",
        2,
        """
        import asyncio
        async def fetch():
            return 1
        """,
    ),
    (
        "restricted_construct",
        1,
        """
        from os import *
        """,
    ),
    (
        "syntax_error",
        3,
        """
        import pandas as pd
        df = pd.read_parquet("/data/people.parquet")
        means = df.groupby("region"]["income"].mean()
        """,
    ),
    (
        "syntax_error",
        2,
        """
        total = 0
        return total
        """,
    ),
]


@pytest.mark.parametrize(
    ("rule", "line", "code"), FLAGGED, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(FLAGGED)]
)
def test_each_rule_fires_on_its_line(rule, line, code):
    report = screen_python(textwrap.dedent(code).lstrip("\n"))
    assert not report.ok
    assert (rule, line) in {(f.rule, f.line) for f in report.findings}, report.findings


def test_every_rule_is_exercised_and_documented():
    assert {rule for rule, _, _ in FLAGGED} == set(RULES)
    for _, _, code in FLAGGED:
        for finding in screen_python(textwrap.dedent(code).lstrip("\n")).findings:
            assert finding.rule in RULES


def test_the_message_says_what_to_do():
    (finding,) = findings('import os\n\n\nos.system("ls /data")\n')
    assert str(finding) == (
        "line 4: `os.system` starts a process; jobs cannot start programs -- use the SDK"
        " [process_spawn]"
    )
    assert finding.column == 1


def test_restrictedpython_and_ast_findings_are_not_doubled():
    found = findings("import sys\nframe = sys._getframe(0)\nmod = __import__('os')\n")
    assert [(f.rule, f.line) for f in found] == [("frame_walk", 2), ("exec_eval", 3)]
    assert [(f.rule, f.line) for f in findings("x = eval('1')\n")] == [("exec_eval", 1)]


def test_a_syntax_error_is_a_finding_with_its_line_not_an_exception():
    report = screen_python("x = 1\ny = (\n")
    assert not report.ok
    (finding,) = report.findings
    assert finding.rule == "syntax_error"
    assert finding.line == 2
    assert screen_python("x = 1\n\0\n").findings[0].line == 2


@pytest.mark.parametrize(
    "path",
    ["/data/people.parquet", "/output/summary.csv", "/tmp/scratch.bin", "/job/helpers.py", "r.csv"],
)
def test_open_inside_the_job_folders_passes(path):
    assert screen_python(f"f = open({path!r}, 'rb')\n").ok


@pytest.mark.parametrize("path", ["/database/x", "/data/../etc/shadow", "/", "/proc/self/environ"])
def test_open_outside_the_job_folders_is_flagged(path):
    assert [f.rule for f in findings(f"open({path!r})\n")] == ["open_path"]


def test_computed_paths_are_left_to_the_container():
    assert screen_python("name = input()\nopen('/' + name).read()\n").ok


def test_the_screen_never_claims_security():
    doc = screen.__doc__ or ""
    assert "not a security boundary" in doc
    assert "The container" in doc and "lint" in doc
    for _, _, code in FLAGGED:
        for finding in findings(code):
            assert "safe" not in finding.message.lower()
            assert "secure" not in finding.message.lower()


def test_check_and_can_are_a_pair():
    bad = "import subprocess\n"
    assert not can_run_python(bad)
    with pytest.raises(ScreenRejected) as caught:
        check_python(bad)
    assert isinstance(caught.value, SandboxError)
    assert [f.rule for f in caught.value.findings] == ["process_spawn"]
    assert "line 1: `subprocess`" in str(caught.value)
    assert can_run_python("x = 1\n")
    check_python("x = 1\n")


def test_the_lint_misses_a_computed_escape():
    """The premise of test_screen_containment: the lint can be walked around."""
    assert screen_python(ESCAPE).ok


# -- legitimate analysis code passes untouched --------------------------------------

LEGITIMATE = [
    # 1 the SDK and DuckDB
    """
    import json
    from sandbox.sdk import catalog, connect

    con = connect()
    views = [v["name"] for v in catalog()["views"]]
    rows = con.sql(
        "SELECT region, count(*) AS n, avg(income) AS mean_income FROM people GROUP BY region"
    ).fetchall()
    with open("/output/summary.json", "w") as f:
        json.dump({"views": views, "rows": rows}, f)
    """,
    # 2 pandas group-by and a CSV out
    """
    import pandas as pd

    df = pd.read_parquet("/data/people.parquet")
    summary = (
        df[df["age"] >= 18]
        .groupby(["region", "sex"], as_index=False)
        .agg(n=("person_id", "count"), income=("income", "median"))
    )
    summary = summary[summary["n"] >= 10]
    summary.to_csv("/output/summary.csv", index=False)
    """,
    # 3 statsmodels regression
    """
    import numpy as np
    import pandas as pd
    import statsmodels.formula.api as smf

    df = pd.read_parquet("/data/people.parquet")
    df["log_income"] = np.log1p(df["income"])
    model = smf.ols("log_income ~ age + C(region)", data=df).fit()
    with open("/output/model.txt", "w") as out:
        out.write(model.summary().as_text())
    """,
    # 4 functions with defaults, keyword-only args, annotations, docstrings
    """
    def weighted_mean(values: list[float], weights: list[float], *, default: float = 0.0) -> float:
        '''The weighted mean, or ``default`` for no weight.'''
        total = sum(weights)
        if total == 0:
            return default
        return sum(v * w for v, w in zip(values, weights)) / total

    print(weighted_mean([1.0, 2.0], [3.0, 1.0]))
    """,
    # 5 classes, dataclasses, properties, __init__
    """
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Band:
        low: int
        high: int
        label: str = ""
        tags: list[str] = field(default_factory=list)

        @property
        def width(self) -> int:
            return self.high - self.low

    class Bands:
        def __init__(self, edges):
            self.bands = [Band(a, b) for a, b in zip(edges, edges[1:])]

        def find(self, value):
            return next((b for b in self.bands if b.low <= value < b.high), None)

    total: int = 0
    print(Bands([0, 18, 65, 120]).find(40))
    """,
    # 6 comprehensions, generators, walrus, unpacking
    """
    rows = [{"region": r, "n": n} for r, n in [("north", 12), ("south", 30)]]
    by_region = {row["region"]: row["n"] for row in rows if row["n"] > 10}
    regions = sorted({row["region"] for row in rows})
    first, *rest = regions
    big = [n for row in rows if (n := row["n"]) > 20]
    squares = (i * i for i in range(10))
    total = sum(squares)
    """,
    # 7 f-strings, formatting, string methods
    """
    n, mean, share = 1200, 31250.456, 0.4567
    line = f"{n:,} people, mean income {mean:.2f}, share {share:.1%}"
    header = "region,n\\n"
    report = header + "\\n".join(f"{name.title()},{count}" for name, count in [("a", 1)])
    print(line.upper(), "%s rows" % n, "{} done".format(n))
    """,
    # 8 error handling, context managers, raise from
    """
    import json

    class AnalysisError(Exception):
        pass

    def load_config(path="/job/config.json"):
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError as e:
            raise AnalysisError("no config") from e
        finally:
            print("config read")
    """,
    # 9 pathlib, os.path, os.listdir and the environment, regular expressions
    """
    import os
    import re
    from pathlib import Path

    out = Path("/output") / "tables"
    out.mkdir(parents=True, exist_ok=True)
    files = [f for f in os.listdir("/data") if f.endswith(".parquet")]
    pattern = re.compile(r"^(?P<name>[a-z_]+)\\.parquet$")
    names = [m.group("name") for f in files if (m := pattern.match(f))]
    threads = int(os.environ.get("THREADS", "1"))
    (out / "names.txt").write_text(os.path.join("/output", "x") + "\\n".join(names))
    """,
    # 10 lambdas, sorting, functools, itertools, collections, decorators
    """
    import functools
    import itertools
    from collections import Counter, defaultdict

    @functools.lru_cache(maxsize=128)
    def bucket(age):
        return min(age // 10 * 10, 80)

    ages = [23, 35, 35, 41, 67, 88]
    counts = Counter(bucket(a) for a in ages)
    groups = defaultdict(list)
    for key, items in itertools.groupby(sorted(ages, key=lambda a: -a), key=bucket):
        groups[key].extend(items)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    """,
    # 11 matplotlib to /output
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_parquet("/data/payments.parquet")
    fig, ax = plt.subplots(figsize=(6, 4))
    df.groupby("month")["amount"].sum().plot(ax=ax, kind="bar")
    ax.set_title("Payments per month")
    fig.savefig("/output/payments.png", dpi=120)
    """,
    # 12 generators, while loops, assertions, global constants, scipy
    """
    from scipy import stats

    THRESHOLD = 10

    def batches(seq, size):
        for start in range(0, len(seq), size):
            yield seq[start : start + size]

    values = list(range(100))
    assert values, "no values"
    means = [sum(b) / len(b) for b in batches(values, THRESHOLD)]
    t, p = stats.ttest_1samp(means, 50.0)
    i = 0
    while i < 3:
        i += 1
    """,
    # 13 duckdb directly, over the parquet views, with parameters
    """
    import duckdb

    con = duckdb.connect()
    result = con.execute(
        "SELECT region, count(*) FROM read_parquet('/data/people.parquet') "
        "WHERE age >= ? GROUP BY region",
        [18],
    ).df()
    result.to_parquet("/output/by_region.parquet")
    re_compiled = result.pipe(lambda d: d.rename(columns=str.lower))
    """,
]


@pytest.mark.parametrize("code", LEGITIMATE, ids=[f"legit-{i + 1}" for i in range(len(LEGITIMATE))])
def test_legitimate_analysis_code_passes(code):
    report = screen_python(textwrap.dedent(code))
    assert report.ok, [str(f) for f in report.findings]
    assert report.findings == ()
