"""Shared set-up of the leak and utility corpora: one synthetic city, real containers.

The corpora run on gVisor (runsc), the runtime jobs use wherever the engine
has it; the attack suites cover runc as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.pipeline import JobOutcome
from sandbox.settings import SandboxSettings
from sandbox.views import DatasetScope, Grant
from tests.conftest import require_engine
from tests.sandbox.city import ENTERPRISE_COLUMNS, City, city_grant, make_city

CORPUS_RUNTIME = "runsc"


def corpus_city(tmp: Path) -> Iterator[City]:
    require_engine()
    import docker

    from sandbox.backends.docker import DockerBackend

    client = docker.from_env(timeout=60)
    try:
        runtimes = client.info().get("Runtimes", {})
    finally:
        client.close()
    runtime = CORPUS_RUNTIME if CORPUS_RUNTIME in runtimes else "runc"
    if runtime != CORPUS_RUNTIME and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("CI needs the runsc runtime for the corpora", pytrace=False)
    backend = DockerBackend(SandboxSettings(runtime=runtime))  # type: ignore[arg-type]
    city = make_city(tmp, backend, residents=20_000, enterprises=3_000)
    yield city
    city.ledger.close()


def enterprise_grant(grant_id: str = "g-ent") -> Grant:
    """Enterprises only: its policy releases checked Python outputs automatically."""
    return Grant(
        grant_id=grant_id,
        operator="op-2",
        scenario="industry-structure",
        scopes=(DatasetScope("enterprises", ENTERPRISE_COLUMNS),),
        key=(grant_id.encode() * 8)[:32],
        key_id=f"{grant_id}-k1",
    )


def describe(outcome: JobOutcome) -> str:
    """A failure message for a test: status, rules and messages (never values)."""
    lines = [f"status={outcome.status}"]
    lines += [f"  rejected: {r}" for r in outcome.rejections]
    if outcome.run is not None and outcome.status == "failed":
        lines.append(f"  exit={outcome.run.execution.exit_class}")
        lines.append("  stderr=" + outcome.run.execution.stderr.data.decode()[-2000:])
    if outcome.report is not None:
        lines += [
            f"  {f.verdict} {f.rule} {f.location()}: {f.message}"
            for f in outcome.report.all_findings()
        ]
    return "\n".join(lines)


def rules(outcome: JobOutcome, verdict: str | None = None) -> set[str]:
    if outcome.report is None:
        return set()
    return {
        f.rule for f in outcome.report.all_findings() if verdict is None or f.verdict == verdict
    }


__all__ = ["City", "city_grant", "corpus_city", "describe", "enterprise_grant", "rules"]
