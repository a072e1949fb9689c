"""A second tenant of the engine: other gateways, test runs and tools share it.

Labelled containers and volumes appear and vanish at any moment, removed by
someone else, sometimes while we remove them too. The backend's listing
(``sandboxes``) must never fail because an object vanished between the
engine's list answer and a closer look, and must always include the sandboxes
that stay; removing (``reconcile``, ``cleanup``) must treat an object another
party removed first, or is removing right now, as removed.

Real Docker: churn threads create and remove labelled containers (created,
never started, no network) and volumes while other threads list.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker.types import Mount

from sandbox.run.backends.base import RunHandle, RunSpec
from sandbox.run.backends.docker import DockerBackend
from sandbox.run.backends.hardening import LABEL_JOB, LABEL_MANAGED, job_name, volume_name
from sandbox.settings import SandboxSettings
from tests.support.jobs import make_job_dir

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUN = f"shared-{os.getpid()}-{secrets.token_hex(3)}"
CHURNERS = 3
ROUNDS = 25  # sandboxes each churner makes and removes
ALIVE = 4  # sandboxes each churner keeps at once, so listings have something to lose
LISTERS = 2


@pytest.fixture(scope="module")
def backend(docker_client: docker.DockerClient) -> DockerBackend:
    return DockerBackend(SandboxSettings(runtime="runc"))


def make_sandbox(client: docker.DockerClient, job_id: str) -> None:
    """What another gateway's sandbox looks like to a listing: a labelled volume and a
    labelled container holding it (created, never started)."""
    labels = {LABEL_MANAGED: "true", LABEL_JOB: job_id}
    client.api.create_volume(volume_name(job_id), labels=labels)
    client.api.create_container(
        SandboxSettings().image,
        command=["true"],
        name=job_name(job_id),
        labels=labels,
        network_disabled=True,
        host_config=client.api.create_host_config(
            network_mode="none",
            mounts=[Mount(target="/output", source=volume_name(job_id), type="volume")],
        ),
    )


def remove_raw(client: docker.DockerClient, job_id: str) -> None:
    """Another party's removal: whatever is gone already, or going, is fine."""
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_container(job_name(job_id), force=True, v=True)
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_volume(volume_name(job_id), force=True)


@pytest.fixture
def stable(backend: DockerBackend, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A prepared sandbox, and a lone labelled volume: both stay while the others churn."""
    prepared = backend.prepare(
        RunSpec(job_id=f"{RUN}-stable", job_dir=make_job_dir(tmp_path, "print(1)\n"))
    )
    lone = f"{RUN}-lone"
    backend.client.api.create_volume(
        volume_name(lone), labels={LABEL_MANAGED: "true", LABEL_JOB: lone}
    )
    try:
        yield prepared.job_id, lone
    finally:
        backend.cleanup(prepared)
        backend.cleanup(RunHandle(lone, "", backend.runtime))


def test_listing_and_removing_while_others_create_and_remove(
    backend: DockerBackend, docker_client: docker.DockerClient, stable: tuple[str, str]
) -> None:
    errors: list[BaseException] = []
    listings: list[int] = []
    churned: set[str] = set()
    done = threading.Event()

    def guarded(body):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                body()
            except BaseException as e:
                errors.append(e)
                done.set()

        return run

    def churn(n: int) -> None:
        alive: deque[str] = deque()
        try:
            for i in range(ROUNDS):
                if done.is_set():
                    return
                job_id = f"{RUN}-c{n}-{i}"
                churned.add(job_id)
                make_sandbox(docker_client, job_id)
                alive.append(job_id)
                if len(alive) > ALIVE:
                    oldest = alive.popleft()
                    # Two parties remove the same sandbox at once: another process
                    # (raw API) and this backend (as a second gateway's reconcile would).
                    other = threading.Thread(target=remove_raw, args=(docker_client, oldest))
                    other.start()
                    try:
                        assert backend.reconcile(only={oldest}) in ([oldest], [])
                    finally:
                        other.join(60)
        finally:
            for job_id in alive:
                backend.cleanup(RunHandle(job_id, "", backend.runtime))

    def list_forever() -> None:
        while not done.is_set():
            present = backend.sandboxes()
            assert set(stable) <= set(present), "a sandbox that stayed was not listed"
            assert present == sorted(present)
            listings.append(len(present))

    churners = [threading.Thread(target=guarded(lambda n=n: churn(n))) for n in range(CHURNERS)]
    listers = [threading.Thread(target=guarded(list_forever)) for _ in range(LISTERS)]
    for t in (*listers, *churners):
        t.start()
    for t in churners:
        t.join(600)
    done.set()
    for t in listers:
        t.join(120)
    assert not errors, errors
    assert len(listings) >= 10, "the listers hardly ran"
    assert max(listings) >= len(stable) + ALIVE  # they saw others' sandboxes come and go
    left = set(backend.sandboxes())
    assert set(stable) <= left
    assert not (left & churned), "a churned sandbox was left behind"
