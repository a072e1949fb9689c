"""The sandbox's running containers, as the Docker engine lists them.

``dsr_containers_running{role}``: containers the Docker backend made (label
``dsr.managed=true``, ``sandbox.run.backends.hardening``) that are running now,
by their ``dsr.role`` label (``job``, ``collector``; any other value counts as
``other``). One list call per scrape, answered from the engine's list (no
per-container inspect).

Absent when there is no engine: the app has no runtime, its backend is not the
Docker one (the fake backend of tests, a host backend), or the engine does not
answer (logged; the rest of the scrape stands).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import docker
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sandbox.run.backends.base import Backend
from sandbox.run.backends.hardening import LABEL_MANAGED, LABEL_ROLE
from sandbox.run.backends.streams import DOCKER_ERRORS

log = logging.getLogger("dsr.gateway.metrics")

DOCKER = "docker"  # sandbox.run.backends.docker.DockerBackend.name
ROLES = frozenset({"job", "collector"})
ENGINE_TIMEOUT_SECONDS = 5  # a scrape does not wait longer for the engine


class ContainerLister(Protocol):
    """The part of docker's low-level API this reads."""

    def containers(self, *, filters: Mapping[str, Any]) -> list[dict[str, Any]]: ...


def connect() -> ContainerLister:
    """The Docker engine of the environment (``DOCKER_HOST``), as the backend finds it."""
    api: ContainerLister = docker.from_env(timeout=ENGINE_TIMEOUT_SECONDS).api
    return api


def running_by_role(listed: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Containers of an engine's list answer counted by their role label."""
    roles: Counter[str] = Counter()
    for container in listed:
        labels = container.get("Labels")
        role = labels.get(LABEL_ROLE) if isinstance(labels, Mapping) else None
        roles[role if role in ROLES else "other"] += 1
    return {role: roles.get(role, 0) for role in sorted(ROLES | set(roles))}


class EngineContainers(Collector):
    """``dsr_containers_running`` when the app's backend is the Docker engine's."""

    def __init__(
        self,
        backend: Callable[[], Backend | None],
        engine: Callable[[], ContainerLister] = connect,
    ) -> None:
        self._backend = backend
        self._connect = engine
        self._api: ContainerLister | None = None

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        backend = self._backend()
        if backend is None or backend.name != DOCKER:
            return
        filters = {"label": f"{LABEL_MANAGED}=true", "status": "running"}
        try:
            self._api = self._api or self._connect()
            listed = self._api.containers(filters=filters)
        except DOCKER_ERRORS as e:
            log.warning("the Docker engine did not list the sandbox's containers: %s", e)
            return
        family = self._family()
        for role, n in running_by_role(listed).items():
            family.add_metric([role], n)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "dsr_containers_running",
            "The sandbox's containers running on the Docker engine, by role.",
            labels=["role"],
        )
