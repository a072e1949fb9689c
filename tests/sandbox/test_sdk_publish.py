"""The SDK's publish functions, on the host with a temporary output directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sandbox.sdk import (
    PublishError,
    publish_figure,
    publish_model,
    publish_model_from,
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


@pytest.mark.parametrize(
    "name",
    ["../x.csv", "/abs.csv", "", "a/b.csv", ".hidden.csv", "x.txt", ".csv", "x.csv\n", "x" * 101],
)
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(PublishError):
        publish_table(
            name, district_frame(), group_by=["district", "mean_age", "n"], measures=[],
            output_dir=tmp_path,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_duplicates_and_the_manifest_name_are_refused(tmp_path):
    publish_text("notes.txt", "first", output_dir=tmp_path)
    with pytest.raises(PublishError, match="already published"):
        publish_text("notes.txt", "second", output_dir=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "first"
    (tmp_path / "stray.md").write_text("not published")
    with pytest.raises(PublishError, match="already exists"):
        publish_text("stray.md", "x", output_dir=tmp_path)
    with pytest.raises(PublishError, match="reserved"):
        publish_model("manifest.json", coefficients={"a": 1.0}, std_errors=None, n=2, df_resid=1,
                      output_dir=tmp_path)  # fmt: skip
    assert [e["file"] for e in manifest(tmp_path)["outputs"]] == ["notes.txt"]


def test_missing_output_dir(tmp_path):
    with pytest.raises(PublishError, match="does not exist"):
        publish_text("a.txt", "x", output_dir=tmp_path / "nowhere")


def test_model(tmp_path):
    entry = publish_model(
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
def test_model_misuse(tmp_path, kwargs, message):
    args = {
        "coefficients": {"const": 1.0, "x": 2.5},
        "std_errors": None,
        "n": 50,
        "df_resid": 48,
        **kwargs,
    }
    with pytest.raises(PublishError, match=message):
        publish_model("fit.json", output_dir=tmp_path, **args)


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
    publish_text("notes.md", "# Résumé\n", description="d", output_dir=tmp_path)
    publish_text("limit.txt", "x" * 64 * 1024, output_dir=tmp_path)
    assert (tmp_path / "notes.md").read_text(encoding="utf-8") == "# Résumé\n"
    with pytest.raises(PublishError, match="at most 65536"):
        publish_text("over.txt", "é" * 32 * 1024 + "x", output_dir=tmp_path)
    with pytest.raises(PublishError, match="must end with"):
        publish_text("notes.rst", "x", output_dir=tmp_path)
    outputs = manifest(tmp_path)["outputs"]
    assert [(e["file"], e["format"]) for e in outputs] == [("notes.md", "md"), ("limit.txt", "txt")]
    for e in outputs:
        assert e["sha256"] == sha256(tmp_path / e["file"])
        assert e["bytes"] == (tmp_path / e["file"]).stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["limit.txt", "manifest.json", "notes.md"]
