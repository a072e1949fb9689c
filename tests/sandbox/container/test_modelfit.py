"""The trusted model fitter: GLMs from a query's rows, summaries only.

In-process against a temporary view directory (real DuckDB, real
statsmodels), then once through the runner image in a container.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sandbox.container import modelfit, runner
from sandbox.container.sdk.specs import model_spec
from sandbox.judge.outputs.fitted import read_fitted
from tests.support.jobs import open_up

KEYS = {
    "family",
    "formula",
    "n",
    "df_model",
    "df_resid",
    "params",
    "bse",
    "converged",
    "min_level_rows",
    "entities",
    "min_level_entities",
    "max_leverage",
}


def people(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 70, size=n).round(1)
    district = rng.choice(["north", "south", "east"], size=n)
    shift = pd.Series(district).map({"north": 0.0, "south": 5.0, "east": -3.0}).to_numpy()
    income = 10.0 + 0.5 * age + shift + rng.normal(scale=1.0, size=n)
    logit = -4.0 + 0.08 * age
    employed = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age": age, "district": district, "income": income, "employed": employed})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    frame = people()
    frame.loc[[0, 1], "income"] = None
    frame.to_parquet(directory / "people.parquet")
    return directory


def run(tmp_path: Path, data: Path, **job: object) -> tuple[int, dict | None]:  # type: ignore[type-arg]
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    body = {
        "kind": "model",
        "query": "SELECT income, age, district, employed FROM people",
        "formula": "income ~ age + C(district)",
        "family": "gaussian",
        "memory_limit": "256MB",
        "threads": 1,
        **job,
    }
    code = modelfit.run_model(tmp_path, body, data_dir=data, output_dir=out)
    written = sorted(p.name for p in out.iterdir())
    if code != 0:
        assert written == []
        return code, None
    assert written == ["model.json"]
    return code, json.loads((out / "model.json").read_text(encoding="utf-8"))


def test_gaussian_fit(tmp_path, data):
    code, doc = run(tmp_path, data)
    assert code == 0 and doc is not None
    assert set(doc) == KEYS
    assert doc["family"] == "gaussian" and doc["formula"] == "income ~ age + C(district)"
    assert doc["n"] == 298  # the two rows without an income are dropped
    assert (doc["df_model"], doc["df_resid"]) == (3, 294)
    assert list(doc["params"]) == [
        "Intercept",
        "C(district)[T.north]",
        "C(district)[T.south]",
        "age",
    ]
    assert list(doc["bse"]) == list(doc["params"])
    assert doc["params"]["age"] == pytest.approx(0.5, abs=0.02)
    assert doc["params"]["C(district)[T.south]"] == pytest.approx(8.0, abs=0.5)
    assert doc["converged"] is True
    rows = pd.read_parquet(data / "people.parquet").dropna()
    assert doc["min_level_rows"] == rows["district"].value_counts().min()


def test_entities_behind_each_level_are_counted(tmp_path, data):
    # Each person has two rows: a level's rows overstate its people by half.
    frame = pd.read_parquet(data / "people.parquet")
    frame["pid"] = [f"p{i // 2}" for i in range(len(frame))]
    frame.to_parquet(data / "people.parquet")
    code, doc = run(
        tmp_path,
        data,
        query="SELECT income, age, district, pid FROM people",
        entities={"people": ["pid"]},
    )
    assert code == 0 and doc is not None
    rows = frame.dropna(subset=["income", "age", "district"])
    assert doc["entities"] == rows["pid"].nunique()
    assert doc["min_level_entities"] == rows.groupby("district")["pid"].nunique().min()
    assert doc["min_level_entities"] < doc["min_level_rows"]
    assert "pid" not in json.dumps(doc["params"])


def test_an_indicator_of_one_row_has_full_leverage():
    # CASE WHEN <one firm> THEN 1 ELSE 0 END as the only regressor: intercept plus
    # coefficient is that firm's value. Its hat value is 1; the rules refuse it.
    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"capital": rng.lognormal(5, 1, 500), "target": 0})
    rows.loc[17, "target"] = 1
    doc = modelfit.fit(rows, "capital ~ target", "gaussian")
    assert doc["max_leverage"] == pytest.approx(1.0)
    assert doc["params"]["Intercept"] + doc["params"]["target"] == pytest.approx(
        rows.loc[17, "capital"]
    )
    assert doc["min_level_rows"] == 1  # a numeric variable of two values is levels too
    ordinary = modelfit.fit(rows.assign(x=rng.normal(size=500)), "capital ~ x", "gaussian")
    assert ordinary["max_leverage"] < 0.1


def test_entities_must_be_columns_not_variables(tmp_path, data):
    code, _ = run(tmp_path, data, entities={"people": ["income"]})
    assert code == 1


def test_binomial_fit(tmp_path, data):
    code, doc = run(tmp_path, data, formula="employed ~ age", family="binomial")
    assert code == 0 and doc is not None
    assert doc["n"] == 300 and doc["min_level_rows"] is None
    assert list(doc["params"]) == ["Intercept", "age"]
    assert doc["params"]["age"] == pytest.approx(0.08, abs=0.04)


def test_transforms_and_interactions(tmp_path, data):
    code, doc = run(tmp_path, data, formula="np.log(income) ~ np.sqrt(age) + age:C(district) - 1")
    assert code == 0 and doc is not None
    assert doc["formula"] == "np.log(income) ~ np.sqrt(age) + age:C(district) - 1"
    assert set(doc["params"]) == {
        "np.sqrt(age)",
        "age:C(district)[east]",
        "age:C(district)[north]",
        "age:C(district)[south]",
    }


def test_the_summary_never_grows_with_the_rows(tmp_path):
    directory = tmp_path / "big"
    directory.mkdir()
    people(5000, seed=3).to_parquet(directory / "people.parquet")
    code, doc = run(tmp_path, directory)
    assert code == 0 and doc is not None
    assert doc["n"] == 5000
    assert len(json.dumps(doc)) < 2000


@pytest.mark.parametrize(
    "formula",
    [
        "income ~ __import__('os').system('touch /tmp/pwned')",
        "income ~ open(age)",
        "income ~ age.__class__",
        "income ~ Q('age')",
        "income ~ np.exp(age)",
        "income ~ I(age * 1000 + 7)",
        "income ~ [age]",
    ],
)
def test_a_formula_outside_the_grammar_is_a_bad_job(tmp_path, data, formula, capsys):
    code, _ = run(tmp_path, data, formula=formula)
    assert code == modelfit.EXIT_BAD_JOB
    assert formula not in capsys.readouterr().err
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize(
    "job",
    [
        {"query": None},
        {"formula": None},
        {"family": "tweedie"},
        {"memory_limit": 512},
        {"threads": "1"},
        {"threads": True},
    ],
)
def test_bad_descriptions_are_65(tmp_path, data, job):
    assert run(tmp_path, data, **job)[0] == modelfit.EXIT_BAD_JOB


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"formula": "income ~ height"}, "exactly one column"),
        ({"query": "SELECT * FROM read_csv('/etc/passwd')"}, "the query failed"),
        ({"query": "SELECT * FROM nowhere"}, "the query failed"),
        ({"query": "SELECT income, age, district FROM people WHERE false"}, "cannot be fitted"),
        (
            {
                "query": "SELECT income - 1000 AS income, age FROM people",
                "formula": "income ~ age",
                "family": "poisson",
            },
            "cannot be fitted",
        ),
        (
            {"query": "SELECT income, 0.0 AS age FROM people", "formula": "income ~ np.log(age)"},
            "cannot be fitted",
        ),
    ],
)
def test_failures_exit_one_and_write_nothing(tmp_path, data, job, message, capsys):
    code, _ = run(tmp_path, data, **job)
    assert code == modelfit.EXIT_FAILED
    err = capsys.readouterr().err
    assert message in err
    assert "north" not in err and "passwd" not in err


def test_the_runner_dispatches_model_jobs(tmp_path):
    (tmp_path / "job.json").write_text(json.dumps({"kind": "model", "formula": "y ~ x"}))
    assert runner.main(tmp_path) == runner.EXIT_BAD_JOB


def test_the_fit_reads_back_on_the_trusted_side(tmp_path, data):
    spec = model_spec("income.json", "income ~ age + C(district)", "SELECT 1", "gaussian")
    code, _ = run(tmp_path, data)
    assert code == 0
    output = read_fitted((tmp_path / "out" / "model.json").read_bytes(), spec)
    assert output.source == "recomputed" and output.kind == "model"
    assert output.model is not None and output.model["categorical"] == ["district"]


# -- in the runner image -------------------------------------------------------


@pytest.fixture
def runsc_backend(docker_client):  # type: ignore[no-untyped-def]
    from sandbox.run.backends.docker import DockerBackend
    from sandbox.settings import SandboxSettings

    if "runsc" not in docker_client.info().get("Runtimes", {}):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI needs the runsc runtime registered with the engine", pytrace=False)
        pytest.skip("runtime runsc is not registered with the engine")
    return DockerBackend(SandboxSettings(runtime="runsc"))


@pytest.mark.docker
def test_a_model_job_in_the_runner_image(runsc_backend, tmp_path, data):
    from sandbox.run.backends.base import ExitClass, Limits, RunSpec, execute

    job = tmp_path / "job"
    job.mkdir()
    spec = model_spec(
        "income.json",
        "income ~ age + C(district) + np.log(age)",
        "SELECT income, age, district FROM people",
    )
    description = {
        "kind": "model",
        "query": spec.sql,
        "formula": spec.formula,
        "family": spec.family,
        "memory_limit": "256MB",
        "threads": 1,
    }
    (job / "job.json").write_text(json.dumps(description))
    open_up(tmp_path)
    result = execute(
        runsc_backend,
        RunSpec(
            job_id=f"model-{tmp_path.name[-40:]}".replace("_", "-"),
            job_dir=job,
            data_dir=data,
            limits=Limits(wall_seconds=120, memory_bytes=1024 * 1024 * 1024),
        ),
        tmp_path / "out",
    )
    stderr = result.execution.stderr.data.decode()[-2000:]
    assert result.execution.exit_class == ExitClass.SUCCEEDED, stderr
    (file,) = result.collection.files
    assert file.name == "model.json"
    output = read_fitted(file.path.read_bytes(), spec)
    assert output.model is not None
    assert output.model["n"] == 298
    assert output.model["coefficients"]["age"] == pytest.approx(0.5, abs=0.3)
    assert set(output.entry["terms"]) == {
        "Intercept",
        "C(district)[T.north]",
        "C(district)[T.south]",
        "age",
        "np.log(age)",
    }

    bad = {**description, "formula": "income ~ __import__('os').system('id')"}
    (job / "job.json").write_text(json.dumps(bad))
    refused = execute(
        runsc_backend,
        RunSpec(
            job_id=f"model-bad-{tmp_path.name[-36:]}".replace("_", "-"),
            job_dir=job,
            data_dir=data,
            limits=Limits(wall_seconds=60, memory_bytes=512 * 1024 * 1024),
        ),
        tmp_path / "out-bad",
    )
    assert refused.execution.exit_code == modelfit.EXIT_BAD_JOB
    assert [f.name for f in refused.collection.files] == []


def test_a_level_with_few_rows_is_reported_for_the_rules(tmp_path):
    directory = tmp_path / "one"
    directory.mkdir()
    frame = people()
    frame.loc[7, "district"] = "west"  # one person alone in a level
    frame.to_parquet(directory / "people.parquet")
    code, doc = run(tmp_path, directory, formula="income ~ age + district")
    assert code == 0 and doc is not None
    assert "district[T.west]" in doc["params"]
    assert doc["min_level_rows"] == 1
    code, doc = run(tmp_path, directory, formula="income ~ age:C(district)")
    assert code == 0 and doc is not None and doc["min_level_rows"] == 1
