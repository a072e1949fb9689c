"""Hostile names through every path, generated: no 5xx, no file outside the data directory,
no SQL run.

Hypothesis (fixed seed: ``derandomize``; the ``names`` profile, 200 examples a
path, ``DSR_NAME_EXAMPLES`` to change it) makes names from quotes,
semicolons, comments, newlines, NUL, bidirectional and zero-width marks,
look-alike letters, 1,000-character runs, SQL that copies to a canary file,
and ordinary letters of any script, and sends them through:

1. **upload**: a provider's CSV or Parquet with those column names; the
   gateway stores it (every name fine) or refuses it with 422;
2. **govern and serve**: stored under safe names on request, then an exposure
   policy over them, a data request taken to a grant, the operator's
   catalogue, the dummy view, and the console's pages for the provider and
   the operator;
3. **jobs**: SQL products whose aliases and CTE names are hostile and Python
   jobs whose output files, manifest, column names and keys are, through
   submission, the worker, the pipeline (static checks, evidence rewrite,
   collection, rules, ledger), the operator's status and the reviewer's page.

Every answer is below 500 and carries no path of the data directory; the
canary directory stays empty (the payloads' ``COPY ... TO``/``ATTACH`` would
write there); nothing appears beside the data directory. Jobs run through
``tests/support/hostbackend.py`` (the in-container code on the host, the real
collector): what is examined is the trusted side, the container is the attack
suite's subject (``tests/sandbox/run/backends/test_attacks.py``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.jobs.worker import JobWorker, app_scope
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from sandbox.intake.names import check_columns, is_valid_name, safe_names
from tests.support.gateway import Gateway, make_gateway
from tests.support.hostbackend import HostBackend

EXAMPLES = int(os.environ.get("DSR_NAME_EXAMPLES", "200"))
settings.register_profile(
    "names",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # a fixed seed: CI runs the same examples every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = settings.get_profile("names")

CANARY = Path(tempfile.mkdtemp(prefix="dsr-canary-"))
FRAGMENTS = [
    '"',
    "'",
    ";",
    "--",
    "/*",
    "*/",
    "\n",
    "\r\n",
    "\x00",
    "\t",
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u200b",  # zero-width space
    "\ufeff",
    "`",
    "\\",
    "/",
    "*",
    " ",
    "(",
    ")",
    "$1",
    "?",
    "%s",
    "{0}",
    "а",  # Cyrillic a
    "ı",  # dotless i
    "ｉ",  # full-width i
    "e\u0301",  # decomposed é
    "DROP TABLE t",
    f"COPY (SELECT 1) TO '{CANARY}/copied.csv'",
    f"ATTACH '{CANARY}/attached.db' AS x",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "../../etc/passwd",
    "__dsr_row",
]
LETTERS = st.text(
    alphabet=st.one_of(
        st.characters(categories=["Lu", "Ll", "Lo", "Nd"], max_codepoint=0x9FFF),
        st.sampled_from("_"),
    ),
    min_size=1,
    max_size=12,
)
NAME = st.one_of(
    LETTERS,
    st.lists(st.one_of(LETTERS, st.sampled_from(FRAGMENTS)), min_size=1, max_size=6).map("".join),
    st.integers(65, 1000).map(lambda n: "x" * n),
)
HEADERS = st.lists(NAME, min_size=1, max_size=5)
_counter = itertools.count(1)
_lists = itertools.count(0)


# -- the world ------------------------------------------------------------------------


class World:
    def __init__(self, root: Path, gw: Gateway, worker: JobWorker) -> None:
        self.root, self.gw, self.worker = root, gw, worker
        self.data = root / "var"
        self.beside = self._beside()
        self._consoles: dict[str, TestClient] = {}

    def _beside(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def check(self, r: httpx.Response, what: str) -> httpx.Response:
        assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:500]}"
        assert str(self.data) not in r.text, f"{what}: the body shows the data directory"
        assert "Traceback" not in r.text, what
        if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/"):
            assert "reference" in r.json(), what
        return r

    def console(self, who: str) -> TestClient:
        """A console session of ``who`` (signed in once, kept for the module)."""
        if who not in self._consoles:
            client = TestClient(self.gw.app, raise_server_exceptions=False)
            form = client.get("/console/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            signed = client.post(
                "/console/login",
                data={"token": self.gw.tokens[who], "csrf": csrf.group(1), "next": "/console/"},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            self._consoles[who] = client
        return self._consoles[who]

    def nothing_ran(self) -> None:
        assert sorted(CANARY.iterdir()) == [], "an injected statement wrote the canary"
        assert self._beside() == self.beside, "a file appeared beside the data directory"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("names")
    data = root / "var"
    runtime = build_runtime(
        GatewaySettings(data_dir=data, database_url=""), backend=HostBackend(_python_outputs)
    )
    with make_gateway(data, runtime, worker=False) as gw:
        worker = JobWorker(
            gw.app.state.engine,
            runtime,
            gw.app.state.grant_resolver,
            scope=lambda: app_scope(gw.app),
        )
        yield World(root, gw, worker)


def _csv(header: list[str], columns: list[list[Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(zip(*columns, strict=True))
    return out.getvalue().encode()


def _parquet(header: list[str], columns: list[list[Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(dict(zip(header, columns, strict=True))), sink)
    return sink.getvalue()


def _columns(n: int, rows: int = 40) -> list[list[Any]]:
    """An entity column of ids, then plain categories and numbers in turn."""
    out: list[list[Any]] = [[f"e{i % 25:03d}" for i in range(rows)]]
    for j in range(1, n):
        out.append([i % 7 for i in range(rows)] if j % 2 else ["ab"[i % 2] for i in range(rows)])
    return out


def _upload_body(header: list[str], parquet: bool) -> tuple[str, bytes, dict[str, str]]:
    """The file, and the form fields it needs (CSV: the delimiter, so that a name full
    of semicolons does not make the sniffer guess another one)."""
    columns = _columns(len(header))
    if parquet and len(set(header)) == len(header):
        return "d.parquet", _parquet(header, columns), {}
    return "d.csv", _csv(header, columns), {"delimiter": ","}


# -- 1. upload -----------------------------------------------------------------------


@pytest.mark.timeout(900)
@NAMES
@given(header=HEADERS, parquet=st.booleans())
def test_any_names_at_upload(world: World, header: list[str], parquet: bool) -> None:
    name = f"up{next(_counter)}"
    filename, body, form = _upload_body(header, parquet)
    r = world.check(world.gw.upload("provider", name, filename, body, header[0], **form), "upload")
    world.nothing_ran()
    fine = not check_columns(header)
    if r.status_code == 201:
        assert fine, "a name that breaks the rules was stored"
        assert [c["name"] for c in r.json()["version"]["columns"]] == header
    else:
        assert r.status_code == 422, r.text
        listed = world.gw.get("provider", f"/v1/datasets/{name}")
        assert listed.status_code == 404, "a refused upload left a dataset"


# -- 2. govern and serve ----------------------------------------------------------------


def _policy(dataset: str, names: list[str]) -> str:
    def key(n: str) -> str:
        return json.dumps(n)

    lines = [f"dataset: {dataset}", f"entity_column: {key(names[0])}", "k: 2", "columns:"]
    lines.append(
        f"  {key(names[0])}: {{class: identifier, level: 4, visibility: join_key, "
        "domain: {format: uuid}}"
    )
    for j, n in enumerate(names[1:], start=1):
        if j % 2:
            lines.append(
                f"  {key(n)}: {{class: sensitive, level: 3, visibility: aggregate_only, "
                "domain: {min: 0, max: 6, integer: true}}"
            )
        else:
            lines.append(
                f"  {key(n)}: {{class: quasi_identifier, level: 2, visibility: group_key, "
                "domain: {categories: [a, b]}}"
            )
    return "\n".join(lines) + "\n"


def _console_pages(world: World, who: str, pages: list[str]) -> None:
    client = world.console(who)
    for page in pages:
        r = world.check(client.get(page), f"console {page} as {who}")
        assert r.status_code == 200, (page, r.status_code)
        assert "<script>alert(1)" not in r.text, f"{page} does not escape a name"


def _served(world: World, header: list[str], parquet: bool) -> tuple[str, list[str], str]:
    """A dataset with ``header`` stored under safe names, its policy, and a grant on it."""
    gw, n = world.gw, next(_counter)
    dataset = f"gov{n}"
    filename, body, form = _upload_body(header, parquet)
    entity = safe_names(header)[0]
    r = world.check(
        # The entity column by its safe name: a form field cannot carry every name.
        gw.upload("provider", dataset, filename, body, entity, rename_columns="true", **form),
        "upload renamed",
    )
    assert r.status_code == 201, r.text
    stored = [c["name"] for c in r.json()["version"]["columns"]]
    assert all(is_valid_name(s) for s in stored) and len(stored) == len(header)
    r = world.check(gw.put_policy("provider", dataset, _policy(dataset, stored)), "policy")
    assert r.status_code == 200, r.text
    grant = gw.grant_through_requests(
        "operator", "provider", f"scenario {n}", [{"dataset": dataset, "columns": stored}]
    )
    return dataset, stored, grant


@pytest.mark.timeout(900)
@NAMES
@given(header=HEADERS, parquet=st.booleans())
def test_names_through_policy_grant_catalogue_dummy_and_console(
    world: World, header: list[str], parquet: bool
) -> None:
    if any("\n" in h or "\r" in h or "\x00" in h for h in header) and not parquet:
        header = [h.replace("\n", " ").replace("\r", " ").replace("\x00", " ") for h in header]
    dataset, stored, _ = _served(world, header, parquet)
    gw = world.gw
    world.check(gw.get("operator", f"/v1/catalog/{dataset}"), "catalogue view")
    dummy = world.check(gw.get("operator", f"/v1/catalog/{dataset}/dummy"), "dummy")
    assert dummy.status_code == 200, dummy.text
    assert sorted(pq.read_table(io.BytesIO(dummy.content)).column_names) == sorted(stored)
    world.check(gw.get("provider", f"/v1/datasets/{dataset}"), "dataset")
    world.check(gw.get("provider", f"/v1/datasets/{dataset}/policy"), "policy")
    _console_pages(world, "provider", [f"/console/datasets/{dataset}"])
    if next(_lists) % 25 == 0:  # the pages that list everything: their cost grows with it
        listed = world.check(gw.get("operator", "/v1/catalog"), "catalogue")
        assert dataset in {v["name"] for v in listed.json()}
        _console_pages(world, "provider", ["/console/datasets", "/console/grants"])
        _console_pages(world, "operator", ["/console/requests", "/console/grants"])
    world.nothing_ran()


# -- 3. jobs ----------------------------------------------------------------------------

# What the Python job of the current example leaves in /output (set by the test).
_PYTHON_OUTPUTS: dict[str, bytes] = {}


def _python_outputs(job_dir: Path) -> dict[str, bytes]:
    return dict(_PYTHON_OUTPUTS)


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def job_world(world: World) -> tuple[str, list[str], str]:
    """One dataset whose stored names are as odd as the rules allow, and a grant on it."""
    header = ["身份证号（18位）", "收入 (元)", 'x"; DROP TABLE t; --', "Ｉｎｃｏｍｅ", "ı_а_é"]
    return _served(world, header, parquet=True)


def _run(world: World, grant: str, kind: str, code: str) -> dict[str, Any]:
    r = world.check(
        world.gw.post("operator", "/v1/jobs", json={"grant": grant, "kind": kind, "code": code}),
        "submit",
    )
    if r.status_code != 201:
        assert r.status_code == 422, r.text  # refused by the static checks, nothing queued
        return {}
    job = world.worker.run_one()
    assert job is not None
    status = world.check(world.gw.get("operator", f"/v1/jobs/{job.id}"), "status")
    body: dict[str, Any] = status.json()
    assert body["state"] in ("released", "held", "blocked", "failed", "rejected"), body
    if body["state"] in ("held", "blocked"):
        world.check(world.gw.get("reviewer", f"/v1/reviews/{job.id}"), "review")
    return body


@pytest.mark.timeout(900)
@NAMES
@given(alias=NAME, cte=NAME, measure=NAME)
def test_sql_products_with_hostile_aliases(
    world: World, job_world: tuple[str, list[str], str], alias: str, cte: str, measure: str
) -> None:
    dataset, stored, grant = job_world
    group, income = stored[2], stored[1]
    if "\x00" in alias + cte + measure:
        alias, cte, measure = (s.replace("\x00", "") or "x" for s in (alias, cte, measure))
    code = (
        f"WITH {_sql_ident(cte)} AS (SELECT {_sql_ident(group)}, {_sql_ident(income)} "
        f"FROM {dataset}) "
        f"SELECT {_sql_ident(group)} AS {_sql_ident(alias)}, count(*) AS n, "
        f"sum({_sql_ident(income)}) AS {_sql_ident(measure + '_')} "
        f"FROM {_sql_ident(cte)} GROUP BY 1"
    )
    _run(world, grant, "sql", code)
    world.nothing_ran()


FILE = st.one_of(NAME.map(lambda n: n + ".csv"), st.sampled_from(["result.csv", "a.json"]))


@pytest.mark.timeout(900)
@NAMES
@given(file=FILE, column=NAME, key=NAME)
def test_python_jobs_publishing_hostile_names(
    world: World, job_world: tuple[str, list[str], str], file: str, column: str, key: str
) -> None:
    _, _, grant = job_world
    file, column, key = (s.replace("\x00", "") or "x" for s in (file, column, key))
    table = _csv([column, "n"], [["a", "b"], [12, 15]])
    text = json.dumps({key: 1, "rows": [{key: column}]}).encode()
    manifest = {  # as the SDK writes it, with the job's own names
        "version": 1,
        "outputs": [
            {
                "file": file,
                "kind": "table",
                "format": "csv",
                "rows": 2,
                "columns": [column, "n"],
                "group_by": [column],
                "measures": [],
                "count": "n",
                "description": key,
                "sha256": hashlib.sha256(table).hexdigest(),
                "bytes": len(table),
            },
            {
                "file": key + ".txt",
                "kind": "text",
                "format": "txt",
                "description": column,
                "sha256": hashlib.sha256(text).hexdigest(),
                "bytes": len(text),
            },
        ],
    }
    _PYTHON_OUTPUTS.clear()
    _PYTHON_OUTPUTS.update(
        {file: table, key + ".txt": text, "manifest.json": json.dumps(manifest).encode()}
    )
    _run(world, grant, "python", "print('publishing')\n")
    world.nothing_ran()
