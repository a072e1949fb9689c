"""The SDK's publish functions, on the host with a temporary output directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sandbox.container.sdk.specs import ModelSpec, QuerySpec, parse_spec
from sandbox.sdk import (
    PublishError,
    publish_figure,
    publish_model,
    publish_model_from,
    publish_model_summary,
    publish_query,
    publish_table,
    publish_text,
)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def district_frame():  # type: ignore[no-untyped-def]
    return pd.DataFrame({"district": ["a", "b"], "mean_age": [41.5, 38.0], "n": [12, 15]})


def test_table_is_written_and_declared(tmp_path):
    entry = publish_table(
        "by_district.csv",
        district_frame(),
        group_by=["district"],
        measures=["mean_age"],
        count="n",
        description="mean age",
        output_dir=tmp_path,
    )
    path = tmp_path / "by_district.csv"
    assert path.read_text(encoding="utf-8") == "district,mean_age,n\na,41.5,12\nb,38.0,15\n"
    expected = {
        "file": "by_district.csv",
        "kind": "table",
        "format": "csv",
        "rows": 2,
        "columns": ["district", "mean_age", "n"],
        "group_by": ["district"],
        "measures": ["mean_age"],
        "count": "n",
        "description": "mean age",
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
    }
    assert entry == expected
    assert manifest(tmp_path) == {"version": 1, "outputs": [expected]}


def test_pyarrow_table_input(tmp_path):
    table = pa.table({"district": ["a"], "total": [3.5]})
    entry = publish_table(
        "t.csv", table, group_by=["district"], measures=["total"], output_dir=tmp_path
    )
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == "district,total\na,3.5\n"
    assert entry["count"] is None and entry["rows"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_by": ["district"], "measures": ["mean_age"]}, "undeclared columns \\['n'\\]"),
        ({"group_by": ["district"], "measures": ["mean_age", "x"], "count": "n"}, "not in"),
        ({"group_by": ["district"], "measures": ["district", "mean_age"], "count": "n"}, "more"),
        ({"group_by": "district", "measures": ["mean_age"], "count": "n"}, "list of column"),
        ({"group_by": ["district"], "measures": ["n"], "count": "mean_age"}, "whole numbers"),
    ],
)
def test_table_columns_must_each_be_declared_once(tmp_path, kwargs, message):
    with pytest.raises(PublishError, match=message):
        publish_table("t.csv", district_frame(), output_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_table_refuses_other_data_and_named_index(tmp_path):
    with pytest.raises(PublishError, match="DataFrame or a pyarrow Table"):
        publish_table("t.csv", [{"a": 1}], group_by=["a"], measures=[], output_dir=tmp_path)
    grouped = district_frame().set_index("district")
    with pytest.raises(PublishError, match="reset_index"):
        publish_table(
            "t.csv", grouped, group_by=[], measures=["mean_age"], count="n", output_dir=tmp_path
        )


BAD_NAMES = [
    "../x.csv",
    "/abs.csv",
    "",
    "a/b.csv",
    "a\\b.csv",
    ".hidden.csv",
    "x.txt",
    ".csv",
    "x.csv\n",
    "x" * 49 + ".csv",
    "x" * 101,
    "By_District.csv",
    "BY.CSV",
    "by district.csv",
    "by\tdistrict.csv",
    "résumé.csv",
    "by_district\u2024csv",
    "城市.csv",
    "a.b.csv",
    "-x.csv",
    "_x.csv",
    "x.csv/",
    None,
    3,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(PublishError):
        publish_table(
            name, district_frame(), group_by=["district", "mean_age", "n"], measures=[],
            output_dir=tmp_path,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n != "x.txt"])
def test_bad_names_are_refused_by_every_publish_function(tmp_path, name):
    from matplotlib.figure import Figure

    calls = [
        lambda n: publish_text(n, "x", output_dir=tmp_path),
        lambda n: publish_figure(n, Figure(figsize=(1, 1)), output_dir=tmp_path),
        lambda n: publish_model_summary(
            n, coefficients={"a": 1.0}, std_errors=None, n=20, df_resid=19, output_dir=tmp_path
        ),
        lambda n: publish_query(n, "SELECT 1", output_dir=tmp_path),
        lambda n: publish_model(n, "y ~ x", "SELECT y, x FROM t", output_dir=tmp_path),
    ]
    for call in calls:
        with pytest.raises(PublishError) as raised:
            call(name)
        if isinstance(name, str) and len(name) > 5:
            assert name not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["2024.csv", "0.csv", "x" * 48 + ".csv", "a-b_c.csv"])
def test_good_names_are_accepted(tmp_path, name):
    entry = publish_table(
        name, district_frame(), group_by=["district", "mean_age", "n"], measures=[],
        output_dir=tmp_path,
    )  # fmt: skip
    assert entry["file"] == name and (tmp_path / name).is_file()


def test_duplicates_and_the_manifest_name_are_refused(tmp_path):
    publish_text("notes.txt", "first", output_dir=tmp_path)
    with pytest.raises(PublishError, match="already published"):
        publish_text("notes.txt", "second", output_dir=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "first"
    (tmp_path / "stray.txt").write_text("not published")
    with pytest.raises(PublishError, match="already exists"):
        publish_text("stray.txt", "x", output_dir=tmp_path)
    with pytest.raises(PublishError, match="reserved"):
        publish_model_summary("manifest.json", coefficients={"a": 1.0}, std_errors=None, n=2,
                              df_resid=1, output_dir=tmp_path)  # fmt: skip
    with pytest.raises(PublishError, match="reserved"):
        publish_model("manifest.json", "y ~ x", "SELECT y, x FROM t", output_dir=tmp_path)
    assert [e["file"] for e in manifest(tmp_path)["outputs"]] == ["notes.txt"]


def test_missing_output_dir(tmp_path):
    with pytest.raises(PublishError, match="does not exist"):
        publish_text("a.txt", "x", output_dir=tmp_path / "nowhere")


def test_model_summary(tmp_path):
    entry = publish_model_summary(
        "fit.json",
        coefficients={"const": 1.0, "x": 2.5},
        std_errors={"const": 0.1, "x": 0.2},
        n=50,
        df_resid=48,
        output_dir=tmp_path,
    )
    document = json.loads((tmp_path / "fit.json").read_text())
    assert document == {
        "kind": "ols",
        "coefficients": {"const": 1.0, "x": 2.5},
        "std_errors": {"const": 0.1, "x": 0.2},
        "n": 50,
        "df_resid": 48,
        "description": "",
    }
    assert entry["kind"] == "model" and entry["model_kind"] == "ols"
    assert entry["terms"] == ["const", "x"]
    assert entry["sha256"] == sha256(tmp_path / "fit.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"std_errors": {"const": 0.1}}, "exactly the terms"),
        ({"coefficients": {"const": float("nan"), "x": 1.0}}, "not finite"),
        ({"n": 0}, "n must be"),
        ({"df_resid": 60}, "smaller than n"),
        ({"kind": "OLS; rm"}, "model kind"),
    ],
)
def test_model_summary_misuse(tmp_path, kwargs, message):
    args = {
        "coefficients": {"const": 1.0, "x": 2.5},
        "std_errors": None,
        "n": 50,
        "df_resid": 48,
        **kwargs,
    }
    with pytest.raises(PublishError, match=message):
        publish_model_summary("fit.json", output_dir=tmp_path, **args)


def test_model_from_statsmodels_ols(tmp_path):
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 1.0 + 2.0 * x + rng.normal(scale=0.1, size=40)
    results = sm.OLS(y, sm.add_constant(x)).fit()
    entry = publish_model_from("ols.json", results, "y on x", output_dir=tmp_path)
    document = json.loads((tmp_path / "ols.json").read_text())
    assert entry["model_kind"] == "ols" and entry["n"] == 40 and entry["df_resid"] == 38
    assert list(document["coefficients"]) == ["const", "x1"]
    assert document["coefficients"]["x1"] == pytest.approx(2.0, abs=0.1)
    assert document["std_errors"]["x1"] == pytest.approx(float(results.bse[1]))
    assert set(document) == {"kind", "coefficients", "std_errors", "n", "df_resid", "description"}

    frame = pd.DataFrame({"y": y, "age": x})
    named = sm.OLS(frame["y"], sm.add_constant(frame[["age"]])).fit()
    publish_model_from("named.json", named, output_dir=tmp_path)
    assert list(json.loads((tmp_path / "named.json").read_text())["coefficients"]) == [
        "const",
        "age",
    ]
    with pytest.raises(PublishError, match="statsmodels results"):
        publish_model_from("bad.json", {"params": [1]}, output_dir=tmp_path)


def test_figure(tmp_path):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3))
    figure.add_subplot().plot([1, 2, 3], [1, 4, 9])
    entry = publish_figure("plot.png", figure, description="squares", output_dir=tmp_path)
    content = (tmp_path / "plot.png").read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    assert (entry["width"], entry["height"]) == (400, 300)
    assert entry["sha256"] == hashlib.sha256(content).hexdigest()

    with pytest.raises(PublishError, match="at most 4000"):
        publish_figure("big.png", Figure(figsize=(41, 2)), output_dir=tmp_path)
    with pytest.raises(PublishError, match="matplotlib Figure"):
        publish_figure("x.png", "not a figure", output_dir=tmp_path)
    assert not (tmp_path / "big.png").exists()


def test_figure_defaults_to_the_current_one(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    with pytest.raises(PublishError, match="no current figure"):
        publish_figure("none.png", output_dir=tmp_path)
    plt.figure(figsize=(2, 2))
    plt.plot([0, 1])
    try:
        assert publish_figure("current.png", output_dir=tmp_path)["width"] == 200
    finally:
        plt.close("all")


def test_text(tmp_path):
    publish_text("notes.txt", "# Résumé\n", description="d", output_dir=tmp_path)
    publish_text("limit.txt", "x" * 64 * 1024, output_dir=tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "# Résumé\n"
    with pytest.raises(PublishError, match="at most 65536"):
        publish_text("over.txt", "é" * 32 * 1024 + "x", output_dir=tmp_path)
    for name in ("notes.rst", "notes.md"):
        with pytest.raises(PublishError, match="lower-case"):
            publish_text(name, "x", output_dir=tmp_path)
    with pytest.raises(PublishError, match=r"must end with \.txt"):
        publish_text("notes.csv", "x", output_dir=tmp_path)
    outputs = manifest(tmp_path)["outputs"]
    assert [(e["file"], e["format"]) for e in outputs] == [
        ("notes.txt", "txt"),
        ("limit.txt", "txt"),
    ]
    for e in outputs:
        assert e["sha256"] == sha256(tmp_path / e["file"])
        assert e["bytes"] == (tmp_path / e["file"]).stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["limit.txt", "manifest.json", "notes.txt"]


# -- specifications --------------------------------------------------------

SQL = "SELECT district, count(*) AS n FROM residents GROUP BY district"
MODEL_SQL = "SELECT income, age, district FROM residents"


def test_query_is_declared_and_writes_no_file(tmp_path):
    entry = publish_query("by_district.csv", SQL, description="people", output_dir=tmp_path)
    expected = {
        "file": "by_district.csv",
        "kind": "query",
        "sql": SQL,
        "description": "people",
    }
    assert entry == expected
    assert manifest(tmp_path) == {"version": 1, "outputs": [expected]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert parse_spec(manifest(tmp_path)["outputs"][0]) == QuerySpec(
        "by_district.csv", SQL, "people"
    )


def test_model_is_declared_with_its_canonical_formula(tmp_path):
    entry = publish_model(
        "income.json", "income~age+C(district)", MODEL_SQL, "poisson", output_dir=tmp_path
    )
    expected = {
        "file": "income.json",
        "kind": "glm",
        "sql": MODEL_SQL,
        "formula": "income ~ age + C(district)",
        "family": "poisson",
        "description": "",
    }
    assert entry == expected
    assert manifest(tmp_path)["outputs"] == [expected]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert parse_spec(expected) == ModelSpec(
        "income.json", MODEL_SQL, "income ~ age + C(district)", "poisson", ""
    )
    assert publish_model("default.json", "y ~ x", MODEL_SQL, output_dir=tmp_path)["family"] == (
        "gaussian"
    )


def test_specs_and_files_share_one_manifest_and_one_namespace(tmp_path):
    publish_query("a.csv", SQL, output_dir=tmp_path)
    publish_text("notes.txt", "x", output_dir=tmp_path)
    publish_model("m.json", "y ~ x", MODEL_SQL, output_dir=tmp_path)
    with pytest.raises(PublishError, match="already published"):
        publish_table(
            "a.csv", district_frame(), group_by=["district", "mean_age", "n"], measures=[],
            output_dir=tmp_path,
        )  # fmt: skip
    with pytest.raises(PublishError, match="already published"):
        publish_query("a.csv", SQL, output_dir=tmp_path)
    with pytest.raises(PublishError, match="already published"):
        publish_model_summary(
            "m.json", coefficients={"a": 1.0}, std_errors=None, n=20, df_resid=19,
            output_dir=tmp_path,
        )  # fmt: skip
    (tmp_path / "stray.csv").write_text("x\n1\n")
    with pytest.raises(PublishError, match="already exists"):
        publish_query("stray.csv", SQL, output_dir=tmp_path)
    assert [(e["file"], e["kind"]) for e in manifest(tmp_path)["outputs"]] == [
        ("a.csv", "query"),
        ("notes.txt", "text"),
        ("m.json", "glm"),
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: publish_query("q.json", SQL, output_dir=d), r"must end with \.csv"),
        (lambda d: publish_query("q.csv", "", output_dir=d), "SQL"),
        (lambda d: publish_query("q.csv", None, output_dir=d), "SQL"),
        (lambda d: publish_query("q.csv", "SELECT 1 --" + "x" * 65536, output_dir=d), "longer"),
        (lambda d: publish_query("q.csv", SQL, description="x" * 4001, output_dir=d), "longer"),
        (lambda d: publish_model("m.csv", "y ~ x", SQL, output_dir=d), r"must end with \.json"),
        (lambda d: publish_model("m.json", "y ~ x", SQL, "tweedie", output_dir=d), "family"),
        (lambda d: publish_model("m.json", "y ~ open(x)", SQL, output_dir=d), "may be called"),
        (lambda d: publish_model("m.json", "y ~ x.real", SQL, output_dir=d), "joined"),
        (lambda d: publish_model("m.json", "y ~ x", "", output_dir=d), "SQL"),
        (lambda d: publish_model("m.json", None, SQL, output_dir=d), "formula"),
    ],
)
def test_spec_misuse_is_refused_and_writes_nothing(tmp_path, call, message):
    with pytest.raises(PublishError, match=message):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []
