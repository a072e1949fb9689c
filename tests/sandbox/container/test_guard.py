"""The optional second layer: a Python job run under RestrictedPython's guards.

``sandbox/container/guard.py`` is a lint that runs, not the boundary. These tests show
three things:

- real analysis code (DuckDB through the SDK, pandas, statsmodels, matplotlib,
  the ``publish_*`` functions) works under the guard, on runc and on runsc;
- the classic escapes (object-graph walking, ``import os``, ``getattr`` of a
  dunder, ``import ctypes``) are stopped with exit status 1 and a plain line
  naming the line of the job;
- an escape the guard does *not* stop (``pandas.read_pickle`` unpickles the
  real ``__import__``) still cannot reach the network or write outside
  /output and /tmp: the container contains it.

The host-side tests import ``sandbox.container.guard`` directly for the fast cases.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sandbox.container import runner
from sandbox.container.guard import ALLOWED_MODULES, compile_job, module_allowed, run_restricted
from sandbox.precheck.screen import screen_python
from sandbox.run.backends.base import ExitClass, Limits, RunResult, RunSpec, execute
from tests.support.jobs import make_job_dir, open_up, stdout_json
from tests.support.views_fixtures import grant, make_world

SECRET = "dsr-guard-secret-93c7e1"


def guarded_job(
    backend,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    code: str,
    *,
    data_dir: Path | None = None,
) -> RunResult:
    """Run ``code`` as a Python job with ``"guard": "restricted"`` in its job.json."""
    job_dir = make_job_dir(tmp_path, code)
    description = {"kind": "python", "entry": "main.py", "guard": "restricted"}
    (job_dir / "job.json").write_text(json.dumps(description))
    open_up(tmp_path)
    if data_dir is not None:
        open_up(data_dir)
    spec = RunSpec(
        job_id=f"t-{tmp_path.name[-40:]}".replace("_", "-"),
        job_dir=job_dir,
        data_dir=data_dir,
        limits=Limits(wall_seconds=120, memory_bytes=768 * 1024 * 1024),
    )
    return execute(backend, spec, tmp_path / "out")


def run_on_host(tmp_path: Path, code: str) -> int:
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(code))
    return run_restricted(script)


def stderr_of(result: RunResult) -> str:
    return result.execution.stderr.data.decode(errors="replace")


# -- (a) real analysis code works under the guard ---------------------------------

ANALYSIS = """
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.figure import Figure

from sandbox.sdk import connect, publish_figure, publish_model_from, publish_table


@dataclass
class Band:
    label: str
    people: int


con = connect()
frame = con.sql(
    '''
    SELECT p.person_id, p.age, p.income, sum(pay.amount) AS paid
    FROM people p JOIN payments pay USING (person_id)
    GROUP BY ALL
    '''
).df()
print(f"rows: {len(frame)}")

frame["income_k"] = frame["income"] / 1000
by_age = (
    frame.groupby("age")
    .agg(mean_income=("income_k", "mean"), mean_paid=("paid", "mean"), n=("person_id", "nunique"))
    .reset_index()
)
bands = [Band(str(row.age), int(row.n)) for row in by_age.itertuples()]
counts = {}
for band in bands:
    counts[band.label] = counts.get(band.label, 0)
    counts[band.label] += band.people
print("bands:", sorted(counts.items()))

fit = sm.OLS(frame["paid"], sm.add_constant(frame[["income_k"]])).fit()
print(f"slope: {fit.params['income_k']:.4f}")

publish_table(
    "by_age.csv", by_age, group_by=["age"], measures=["mean_income", "mean_paid"], count="n"
)
publish_model_from("paid_on_income.json", fit, "paid on income (thousands)")
figure = Figure(figsize=(4, 3))
axes = figure.add_subplot()
axes.bar(by_age["age"], by_age["mean_paid"], color="steelblue")
axes.set_title("mean paid by age band")
publish_figure("by_age.png", figure)

summary = {"rows": len(frame), "bands": len(bands), "total": int(np.sum(by_age["n"]))}
print("done", summary)
"""


def test_allowed_modules_are_the_documented_ones():
    assert module_allowed("sandbox.sdk") and module_allowed("sandbox.container.sdk.publish")
    assert module_allowed("statsmodels.formula.api")
    for name in (
        "sandbox",
        "sandbox.container.runner",
        "sandbox.container.guard",
        "os",
        "sys",
        "io",
        "ctypes",
    ):
        assert not module_allowed(name), name
    assert {"duckdb", "pandas", "numpy", "statsmodels", "matplotlib", "typing"} <= ALLOWED_MODULES


def test_ordinary_python_runs_under_the_guard(tmp_path, capsys):
    code = """
    import io
    import json
    import math
    from collections import Counter, defaultdict
    from dataclasses import dataclass, field

    import duckdb
    import pandas as pd
    import statsmodels.formula.api as smf

    from sandbox.sdk import publish_table


    @dataclass
    class Tally:
        name: str
        total: float = 0.0
        tags: list = field(default_factory=list)


    class Accumulator:
        def __init__(self, start):
            self.value = start

        def add(self, x):
            self.value += x
            return self


    counts = {}
    for key, value in [("a", 1), ("b", 2), ("a", 3)]:
        counts[key] = counts.get(key, 0)
        counts[key] += value
    groups = defaultdict(list)
    groups["x"].append(1)
    squares = [n * n for n in range(5000)]
    tally = Tally("t", 1.5)
    tally.total += 2
    size: int = len(squares)
    size -= 1
    buffer = io.StringIO()
    print("in a buffer", file=buffer)
    frame = pd.DataFrame({"g": ["a", "b", "a", "b"], "y": [1.0, 2.0, 3.0, 5.0], "x": [0, 1, 2, 3]})
    frame["y2"] = frame["y"] * 2
    frame.loc[frame["g"] == "a", "y2"] = 0
    agg = frame.groupby("g").agg(mean_y=("y", "mean"), n=("y", "size")).reset_index()
    fit = smf.ols("y ~ x", data=frame).fit()
    total = duckdb.sql("SELECT sum(y) AS s FROM frame").fetchall()[0][0]
    publish_table("agg.csv", agg, group_by=["g"], measures=["mean_y"], count="n",
                  output_dir=OUT)
    try:
        import os
    except ImportError:
        fallback = "no os"
    if __name__ == "__main__":
        print(json.dumps({
            "counts": counts, "groups": dict(groups), "tally": [tally.name, tally.total],
            "acc": Accumulator(1).add(2).value, "size": size, "buffer": buffer.getvalue(),
            "slope": round(fit.params["x"], 3), "total": total, "pi": round(math.pi, 2),
            "common": Counter("abca").most_common(1), "fallback": fallback,
            "missing": getattr(frame, "nope", "default"), "has": hasattr(frame, "groupby"),
        }))
    """
    out = tmp_path / "out"
    out.mkdir()
    assert run_on_host(tmp_path, code.replace("OUT", repr(str(out)))) == 0, capsys.readouterr()
    seen = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert seen == {
        "counts": {"a": 4, "b": 2},
        "groups": {"x": [1]},
        "tally": ["t", 3.5],
        "acc": 3,
        "size": 4999,
        "buffer": "in a buffer\n",
        "slope": 1.3,
        "total": 11.0,
        "pi": 3.14,
        "common": [["a", 2]],
        "fallback": "no os",
        "missing": "default",
        "has": True,
    }
    assert (out / "agg.csv").read_text() == "g,mean_y,n\na,2.0,2\nb,3.5,2\n"


@pytest.mark.docker
def test_an_analysis_job_succeeds_under_the_guard(backend, tmp_path):
    world = make_world(tmp_path / "world")
    views = world.builder.build(grant(people_columns=("person_id", "age", "income")))
    result = guarded_job(backend, tmp_path / "run", ANALYSIS, data_dir=views.directory)
    stderr = stderr_of(result)[-3000:]
    assert result.execution.exit_class == ExitClass.SUCCEEDED, stderr
    stdout = result.execution.stdout.data.decode()
    active = sum(1 for p in world.people if p["status"] == "active")
    assert f"rows: {active}" in stdout  # print reaches stdout: dummy runs show their logs
    assert "slope: " in stdout and "done" in stdout
    files = {f.name: f for f in result.collection.files}
    assert sorted(files) == ["by_age.csv", "by_age.png", "manifest.json", "paid_on_income.json"]
    manifest = json.loads(files["manifest.json"].path.read_text(encoding="utf-8"))
    outputs = {e["file"]: e for e in manifest["outputs"]}
    assert outputs["paid_on_income.json"]["n"] == active
    assert outputs["paid_on_income.json"]["terms"] == ["const", "income_k"]
    assert outputs["by_age.csv"]["rows"] == 3
    assert (outputs["by_age.png"]["width"], outputs["by_age.png"]["height"]) == (400, 300)


# -- (b) the classic escapes are stopped, with the line -------------------------------

STOPPED = {
    "object_graph": (
        "x = 1\nclasses = ().__class__.__bases__[0].__subclasses__()\n",
        2,
        '"__class__" is an invalid attribute name',
    ),
    "os_system": ("import json\nimport os\nos.system('id')\n", 2, "import of `os` is not allowed"),
    "getattr_dunder": (
        "def f():\n    return 1\n\n\nscope = getattr(f, '__glo' + 'bals__')\n",
        5,
        "`__globals__` starts with `_`",
    ),
    "ctypes": ("import math\n\nimport ctypes\n", 3, "import of `ctypes` is not allowed"),
}
STOPPED_ON_HOST = {
    **STOPPED,
    "module_attribute": ("import dataclasses\ns = dataclasses.sys\n", 2, "the module `sys`"),
    "from_import": ("from dataclasses import sys\n", 1, "the module `sys`"),
    "sdk_neighbour": (
        "import sandbox.sdk\ng = sandbox.container.guard\n",
        2,
        "the module `sandbox.container`",
    ),
    "sdk_internal": ("from sandbox.container.sdk.publish import os\n", 1, "the module `os`"),
    "attrgetter": (
        "import operator\nf = operator.attrgetter('__class__')\n",
        2,
        "`operator.attrgetter` reaches",
    ),
    "type_hints": (
        "import typing\n\n\ndef f(x: 'int'):\n    pass\n\n\ntyping.get_type_hints(f)\n",
        8,
        "`typing.get_type_hints` reaches",
    ),
    "str_format": ("s = '{0.real}'.format(1)\n", 1, "use an f-string"),
    "open": ("x = 1\nopen('/etc/passwd')\n", 2, "`open` is not available"),
    "vars": ("x = vars()\n", 1, "`vars` is not available"),
    "io_open": ("import io\nf = io.open('/etc/passwd')\n", 2, "`io.open` is not available"),
    "module_write": ("import math\nmath.pi = 3\n", 2, "modules cannot be changed"),
    "setattr_dunder": (
        "class A:\n    pass\n\n\nsetattr(A(), '__class__', int)\n",
        5,
        "`__class__` starts with `_`",
    ),
    "relative_import": ("from . import helpers\n", 1, "a guarded job is one file"),
    "underscore_name": ("_hidden = 1\n", 1, '"_hidden" is an invalid variable name'),
    "exec": ("exec('1')\n", 1, "Exec calls are not allowed"),
    "format_string_dunder": ("x = f'{(1).__class__}'\n", 1, '"__class__" is an invalid'),
}


@pytest.mark.parametrize("case", sorted(STOPPED_ON_HOST))
def test_the_guard_stops_it_on_the_host(tmp_path, capsys, case):
    code, line, message = STOPPED_ON_HOST[case]
    assert run_on_host(tmp_path, code) == 1
    captured = capsys.readouterr()
    assert f"guard: main.py, line {line}: " in captured.err, captured.err
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err  # one plain line, not a stack


@pytest.mark.docker
@pytest.mark.parametrize("case", sorted(STOPPED))
def test_the_guard_stops_it_in_the_container(backend, tmp_path, case):
    code, line, message = STOPPED[case]
    result = guarded_job(backend, tmp_path, code)
    stderr = stderr_of(result)
    assert result.execution.exit_class == ExitClass.FAILED, stderr
    assert result.execution.exit_code == 1, stderr
    assert f"guard: main.py, line {line}: " in stderr and message in stderr, stderr
    assert not result.collection.files


def test_a_guard_refusal_is_an_ordinary_exception_kind(tmp_path, capsys):
    code = """
    try:
        import os
    except ImportError:
        print("fell back")
    try:
        x = (1).real
        y = getattr(x, "_" + "_class__")
    except AttributeError:
        print("refused")
    """
    assert run_on_host(tmp_path, code) == 0
    assert capsys.readouterr().out == "fell back\nrefused\n"


def test_every_compile_finding_is_reported_at_once(tmp_path, capsys):
    assert run_on_host(tmp_path, "a = 1\nb = a.__class__\nc = 2\nd = c._x\n") == 1
    err = capsys.readouterr().err
    assert "line 2: " in err and "line 4: " in err


def test_errors_keep_a_traceback_from_the_job(tmp_path, capsys):
    assert run_on_host(tmp_path, "def f():\n    return 1 / 0\n\n\nf()\n") == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback"), err
    assert 'main.py", line 5' in err and 'main.py", line 2' in err
    assert "ZeroDivisionError" in err and "guard.py" not in err


def test_exit_status_and_print_pass_through(tmp_path, capsys):
    assert run_on_host(tmp_path, "def f():\n    print('in f')\n\n\nf()\nraise SystemExit(7)\n") == 7
    assert capsys.readouterr().out == "in f\n"
    assert run_on_host(tmp_path, "raise SystemExit('bad input')\n") == 1
    assert "bad input" in capsys.readouterr().err


def test_the_runner_runs_the_guard_when_job_json_asks(tmp_path, capsys):
    (tmp_path / "main.py").write_text("import os\nprint('ran', os.sep)\n")
    assert runner.main(tmp_path) == 0  # no guard: an ordinary job may import os
    assert capsys.readouterr().out == "ran /\n"
    (tmp_path / "job.json").write_text(json.dumps({"kind": "python", "guard": "restricted"}))
    assert runner.main(tmp_path) == 1
    assert "guard: main.py, line 1: import of `os` is not allowed" in capsys.readouterr().err
    (tmp_path / "job.json").write_text(json.dumps({"kind": "python", "guard": None}))
    assert runner.main(tmp_path) == 0
    capsys.readouterr()
    for unknown in ("strict", "", True, ["restricted"]):
        (tmp_path / "job.json").write_text(json.dumps({"kind": "python", "guard": unknown}))
        assert runner.main(tmp_path) == runner.EXIT_BAD_JOB
        assert "unknown guard" in capsys.readouterr().err


def test_a_guarded_job_cannot_import_its_own_modules(tmp_path, capsys):
    # Job-local modules would run through the ordinary, unguarded import system.
    (tmp_path / "helpers.py").write_text("import os\nVALUE = os.sep\n")
    (tmp_path / "main.py").write_text("import helpers\nprint(helpers.VALUE)\n")
    (tmp_path / "job.json").write_text(json.dumps({"guard": "restricted"}))
    assert runner.main(tmp_path) == 1
    assert "import of `helpers` is not allowed" in capsys.readouterr().err


# -- (c) an escape the guard misses is still contained ----------------------------------

# No underscore name or attribute, no forbidden import, no exec: RestrictedPython
# and the guard pass it. pandas.read_pickle unpickles ``builtins.__import__`` -- the
# real one -- and from there everything is plain Python.
ESCAPE = """
import io
import json

import duckdb
import pandas as pd

results = {}


def attempt(name, fn):
    try:
        results[name] = {"ok": True, "value": repr(fn())[:300]}
    except Exception as e:
        results[name] = {"ok": False, "error": repr(e)[:160], "errno": getattr(e, "errno", None)}


real_import = pd.read_pickle(io.BytesIO(b"cbuiltins\\n__import__\\n."))
net = real_import("socket")
system = real_import("os")
opener = real_import("builtins").open
results["escaped"] = repr(real_import)


def tcp():
    conn = net.create_connection(("1.1.1.1", 53), timeout=5)
    conn.close()
    return "connected"


def udp():
    conn = net.socket(net.AF_INET, net.SOCK_DGRAM)
    conn.settimeout(5)
    conn.sendto(b"dsr", ("1.1.1.1", 53))
    return conn.recvfrom(512)


def write(path):
    with opener(path, "w") as f:
        f.write("escaped")
    return path


attempt("tcp_1.1.1.1:53", tcp)
attempt("udp_1.1.1.1:53", udp)
attempt("uid", system.getuid)
for where in ("etc", "job", "usr", "root", "home", "var", "data"):
    attempt("write_" + where, lambda where=where: write("/" + where + "/dsr-escape"))
attempt("write_rootdir", lambda: write("/dsr-escape"))
attempt("write_output", lambda: write("/output/allowed.txt"))
attempt("write_tmp", lambda: write("/tmp/allowed.txt"))
# Plain library calls reach files too, with no gadget at all.
frame = pd.DataFrame({"x": [1]})
attempt("pandas_write_etc", lambda: frame.to_csv("/etc/dsr-escape.csv"))
attempt("duckdb_copy_usr", lambda: duckdb.sql("COPY (SELECT 1) TO '/usr/dsr-escape.csv'"))
attempt("environ", lambda: dict(system.environ))
attempt("environ1", lambda: opener("/proc/1/environ", "rb").read().decode(errors="replace"))
print(json.dumps(results))
"""

OUTSIDE = (
    "write_etc",
    "write_job",
    "write_usr",
    "write_root",
    "write_home",
    "write_var",
    "write_data",
    "write_rootdir",
    "pandas_write_etc",
    "duckdb_copy_usr",
)


def test_the_guard_misses_the_escape():
    # Neither the screen nor RestrictedPython's compiler finds anything.
    assert screen_python(ESCAPE).ok, screen_python(ESCAPE).findings
    code, findings = compile_job(ESCAPE, "main.py")
    assert code is not None and findings == []


def test_the_guard_misses_the_escape_on_the_host(tmp_path, capsys):
    # The harmless half, on the host: the job gets the real __import__.
    code = """
    import io
    import pandas as pd
    real_import = pd.read_pickle(io.BytesIO(b"cbuiltins\\n__import__\\n."))
    print(repr(real_import), real_import("os").sep)
    """
    assert run_on_host(tmp_path, code) == 0
    assert capsys.readouterr().out == "<built-in function __import__> /\n"


@pytest.mark.docker
def test_an_escape_the_guard_misses_is_still_contained(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("DSR_GATEWAY_SECRET", SECRET)  # planted on the host side
    data = tmp_path / "data"
    data.mkdir()
    result = guarded_job(backend, tmp_path / "run", ESCAPE, data_dir=data)
    assert result.execution.exit_class == ExitClass.SUCCEEDED, stderr_of(result)[-3000:]
    r = stdout_json(result)

    # The guard was bypassed: the job holds the real __import__, and where writing
    # is allowed, it wrote through the real open.
    assert r["escaped"] == "<built-in function __import__>"
    assert r["write_output"]["ok"] and r["write_tmp"]["ok"], r
    assert r["uid"]["ok"] and r["uid"]["value"] != "0", r["uid"]
    # ... and the container held: no network, no write outside /output and /tmp.
    for name in ("tcp_1.1.1.1:53", "udp_1.1.1.1:53"):
        assert not r[name]["ok"], f"{name}: the job reached the network: {r[name]}"
    for name in OUTSIDE:
        assert not r[name]["ok"], f"{name}: the job wrote outside /output and /tmp: {r[name]}"
    stdout = result.execution.stdout.data.decode()
    assert SECRET not in stdout
    assert "DSR_" not in r["environ"]["value"]
    assert {f.name for f in result.collection.files} == {"allowed.txt"}
