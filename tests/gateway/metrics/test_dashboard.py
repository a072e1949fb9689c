"""The sample Grafana dashboard and scrape configuration in ``deploy/`` fit the gateway.

Every metric name in the dashboard's PromQL (its panels and its variables) is one
the gateway exposes: names are what remains of an expression once strings, label
matchers, ranges, groupings, functions and operators are taken out. Every area the
issue names has a panel, and the scrape configuration presents a bearer token file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.support.engine import ROOT
from tests.support.metrics import exposed_names

DASHBOARD = ROOT / "deploy" / "grafana" / "dsr-gateway.json"
SCRAPE = ROOT / "deploy" / "prometheus" / "scrape.yml"
KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in NAME.finditer(expr):
        if match.start() > 0 and (
            expr[match.start() - 1].isdigit() or expr[match.start() - 1] == "."
        ):
            continue  # an exponent or a unit of a number (1e6)
        if expr[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue  # a function or an aggregation; an operator
        names.add(match.group())
    return names


def expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            inner = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query["query"])
            assert inner is not None, query
            yield inner.group(1)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    made = create_app(GatewaySettings(data_dir=tmp_path_factory.mktemp("dash") / "var"))
    yield made
    made.state.engine.dispose()


def test_the_extractor_finds_names_and_nothing_else() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, kind) (rate(dsr_job_run_seconds_bucket"
        '{instance=~"$instance", kind="sql"}[$__rate_interval]))) / 1e6 and on (x) up_total'
    )
    assert metric_names(expr) == {"dsr_job_run_seconds_bucket", "up_total"}


def test_every_metric_the_dashboard_reads_is_exposed(app: FastAPI) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    read = set().union(*(metric_names(e) for e in expressions(dashboard)))
    exposed = exposed_names(app)
    assert read and read <= exposed, read - exposed
    # Every area of the issue is on the dashboard.
    for needed in (
        "dsr_jobs",
        "dsr_jobs_queued",
        "dsr_job_release_seconds_count",
        "dsr_job_run_seconds_bucket",
        "dsr_job_check_seconds_bucket",
        "dsr_job_release_seconds_bucket",
        "dsr_containers_running",
        "dsr_audit_chain_length",
        "dsr_audit_checkpoint_age_seconds",
        "dsr_he_calls_total",
        "dsr_refusals_total",
    ):
        assert needed in read, needed
    heatmaps = [p for p in dashboard["panels"] if p["type"] == "heatmap"]
    assert len(heatmaps) == 3  # run, check, release


def test_the_scrape_config_presents_a_bearer_token_file() -> None:
    (job,) = yaml.safe_load(SCRAPE.read_text(encoding="utf-8"))["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert Path(job["authorization"]["credentials_file"]).is_absolute()
