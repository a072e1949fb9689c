"""Reading a gateway's ``/metrics`` in tests: scrape, parse, look a sample up.

``scrape`` parses the text format with ``prometheus_client.parser`` (what a
Prometheus server would read); ``value`` finds one sample by its name and
labels; ``exposed_names`` is every sample name an app's registry can expose
(histogram and counter suffixes included), for the dashboard's expressions.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics.collector import families
from gateway.metrics.containers import EngineContainers

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def scrape(client: TestClient, headers: dict[str, str]) -> dict[str, Metric]:
    """The families ``GET /metrics`` answers, by name (a 200 with the text format, or fail)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def value(families: dict[str, Metric], sample: str, **labels: str) -> float | None:
    """The value of the one sample named ``sample`` whose labels include ``labels``
    (None when there is none)."""
    found = [
        s.value
        for f in families.values()
        for s in f.samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    assert len(found) <= 1, (sample, labels, found)
    return found[0] if found else None


def exposed_names(app: FastAPI) -> set[str]:
    """Every sample name the app's registry exposes, with the families that may be absent
    from one scrape (the checkpoint age before the first checkpoint, the container gauge
    where no Docker engine runs the sandbox) as their collectors describe them."""
    registry = app.state.metrics.registry
    sometimes = [*families(None), *EngineContainers(lambda: None).describe()]
    every = [*registry.collect(), *sometimes]
    return {f.name + suffix for f in every for suffix in SUFFIXES[f.type]}
