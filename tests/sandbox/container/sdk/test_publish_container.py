"""The SDK's publish functions inside the runner image, on both runtimes."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.support.jobs import run_code

pytestmark = [pytest.mark.docker]

JOB = """
import numpy as np
import pandas as pd
import statsmodels.api as sm
from matplotlib.figure import Figure

from sandbox.sdk import (
    publish_figure, publish_model, publish_model_from, publish_query, publish_table, publish_text,
)

rng = np.random.default_rng(1)
x = rng.normal(size=30)
y = 2.0 * x + rng.normal(scale=0.5, size=30)
frame = pd.DataFrame({"district": ["a", "b", "c"], "mean_y": [1.0, 2.0, 3.0], "n": [10, 10, 10]})
publish_table("by_district.csv", frame, group_by=["district"], measures=["mean_y"], count="n")
publish_model_from("fit.json", sm.OLS(y, sm.add_constant(x)).fit(), "y on x")
figure = Figure(figsize=(3, 2))
figure.add_subplot().scatter(x, y)
publish_figure("scatter.png", figure)
publish_text("notes.txt", "# Notes\\n")
publish_query("by_age.csv", "SELECT age, count(*) AS n FROM people GROUP BY age")
publish_model("income.json", "income ~ age + C(district)", "SELECT income, age, district FROM t")
"""


def test_published_files_are_collected_with_their_manifest(backend, tmp_path):
    result = run_code(backend, tmp_path, JOB)
    stderr = result.execution.stderr.data.decode()[-2000:]
    assert result.execution.exit_code == 0, stderr
    files = {f.name: f for f in result.collection.files}
    assert sorted(files) == [
        "by_district.csv",
        "fit.json",
        "manifest.json",
        "notes.txt",
        "scatter.png",
    ]
    manifest = json.loads(files["manifest.json"].path.read_text(encoding="utf-8"))
    assert manifest["version"] == 1
    outputs = {e["file"]: e for e in manifest["outputs"]}
    assert sorted(outputs) == [
        "by_age.csv",
        "by_district.csv",
        "fit.json",
        "income.json",
        "notes.txt",
        "scatter.png",
    ]
    # Specifications are entries only: the trusted side computes them.
    assert outputs.pop("by_age.csv") == {
        "file": "by_age.csv",
        "kind": "query",
        "sql": "SELECT age, count(*) AS n FROM people GROUP BY age",
        "description": "",
    }
    assert outputs.pop("income.json")["formula"] == "income ~ age + C(district)"
    for name, entry in outputs.items():
        content = files[name].path.read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest() == files[name].sha256
        assert entry["bytes"] == len(content)
    assert outputs["fit.json"]["n"] == 30
    assert (outputs["scatter.png"]["width"], outputs["scatter.png"]["height"]) == (300, 200)
