"""``dsr_containers_running``: the Docker engine's list answer counted by role, and absent
where there is no engine to ask (no runtime, another backend, an engine that fails).

The engine here is a stand-in for the Docker daemon's list call (outside the gateway's
process); it answers as ``docker.APIClient.containers`` does, a list of dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics.containers import ContainerLister, EngineContainers, running_by_role


@dataclass
class NamedBackend:
    name: str


@dataclass
class Engine:
    listed: list[dict[str, Any]]
    asked: list[Mapping[str, Any]] = field(default_factory=list)
    fails: bool = False

    def containers(self, *, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.asked.append(filters)
        if self.fails:
            raise docker.errors.APIError("the engine is away")
        return self.listed


def listed(role: str | None) -> dict[str, Any]:
    labels = {"dsr.managed": "true", "dsr.job": "job-1"} | ({"dsr.role": role} if role else {})
    return {"Id": "c0ffee", "Labels": labels, "State": "running"}


def gauge(backend: Any, engine: Engine) -> dict[str, float] | None:
    registry = CollectorRegistry()

    def connect() -> ContainerLister:
        return engine

    registry.register(EngineContainers(lambda: backend, connect))
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        if family.name == "dsr_containers_running":
            return {s.labels["role"]: s.value for s in family.samples}
    return None


def test_running_containers_are_counted_by_their_role_label() -> None:
    engine = Engine([listed("job"), listed("job"), listed("collector"), listed("x"), listed(None)])
    assert gauge(NamedBackend("docker"), engine) == {"collector": 1, "job": 2, "other": 2}
    # Only the backend's own containers, only running ones: the engine filters.
    assert engine.asked == [{"label": "dsr.managed=true", "status": "running"}]


def test_none_running_is_a_zero_per_role() -> None:
    assert gauge(NamedBackend("docker"), Engine([])) == {"collector": 0, "job": 0}
    assert running_by_role([{"Labels": None}]) == {"collector": 0, "job": 0, "other": 1}


def test_absent_without_a_docker_engine() -> None:
    engine = Engine([listed("job")])
    assert gauge(None, engine) is None  # no runtime
    assert gauge(NamedBackend("fake"), engine) is None  # another backend
    assert engine.asked == []  # and the engine was not asked
    away = Engine([listed("job")], fails=True)
    assert gauge(NamedBackend("docker"), away) is None  # the scrape stands without it
