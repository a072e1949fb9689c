"""Shared set-up of the leak and utility corpora: one synthetic city, real containers.

The corpora run on gVisor (runsc), the runtime jobs use wherever the engine
has it; the attack suites cover runc as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox.pipeline import JobOutcome, Kind
from sandbox.settings import SandboxSettings
from sandbox.views.build import DatasetScope, Grant
from tests.support.city import (
    ENTERPRISE_COLUMNS,
    INSURANCE_COLUMNS,
    RESIDENT_COLUMNS,
    TAX_COLUMNS,
    City,
    city_grant,
    make_city,
)
from tests.support.engine import require_engine

CORPUS_RUNTIME = "runsc"
CORPUS_WORKERS = 4  # jobs at once: a job mostly waits for its container
COLUMNS = {
    "residents": RESIDENT_COLUMNS,
    "enterprises": ENTERPRISE_COLUMNS,
    "social_insurance": INSURANCE_COLUMNS,
    "tax_payments": TAX_COLUMNS,
}

Job = tuple[Grant, Kind, str, str]  # grant, kind, code, job id


def corpus_city(tmp: Path, policy_overrides: Mapping[str, str] | None = None) -> Iterator[City]:
    """The city on gVisor (runc where the engine has no runsc, outside CI)."""
    require_engine()
    import docker

    from sandbox.run.backends.docker import DockerBackend

    client = docker.from_env(timeout=60)
    try:
        runtimes = client.info().get("Runtimes", {})
    finally:
        client.close()
    runtime = CORPUS_RUNTIME if CORPUS_RUNTIME in runtimes else "runc"
    if runtime != CORPUS_RUNTIME and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("CI needs the runsc runtime for the corpora", pytrace=False)
    backend = DockerBackend(SandboxSettings(runtime=runtime))  # type: ignore[arg-type]
    city = make_city(
        tmp,
        backend,
        residents=20_000,
        enterprises=3_000,
        policy_overrides=dict(policy_overrides or {}),
    )
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


def dataset_grant(datasets: tuple[str, ...], operator: str = "op-1") -> Grant:
    """A grant over ``datasets`` with every column their policies expose; one id per set."""
    grant_id = "g-" + "-".join(d[:3] for d in datasets)
    return Grant(
        grant_id=grant_id,
        operator=operator,
        scenario="city-analysis",
        scopes=tuple(DatasetScope(d, COLUMNS[d]) for d in datasets),
        key=(grant_id.encode() * 8)[:32].ljust(32, b"k"),
        key_id=f"{grant_id}-k1",
    )


def run_concurrently(
    city: City, jobs: Mapping[str, Job], *, cities: Mapping[str, City] | None = None
) -> dict[str, JobOutcome | Exception]:
    """Run independent jobs a few at a time; their outcomes (or errors) by case name.

    A case runs in ``cities[case]`` when given, else in ``city``. Each grant's
    views (real and dummy) are built first, one at a time, so the jobs only
    read the caches. An error raised by one job is kept for its case
    (``outcome_of`` raises it) and does not stop the others.
    """
    where = {case: (cities or {}).get(case, city) for case in jobs}
    built = set()
    for case, (grant, _, _, _) in jobs.items():
        if (id(where[case]), grant.grant_id) not in built:
            built.add((id(where[case]), grant.grant_id))
            where[case].views.build(grant)
            where[case].dummy.build(grant)

    def one(case: str) -> JobOutcome | Exception:
        grant, kind, code, job_id = jobs[case]
        try:
            return where[case].pipeline.run(grant, kind, code, job_id)
        except Exception as e:  # reported by the case's own test
            return e

    with ThreadPoolExecutor(max_workers=CORPUS_WORKERS) as pool:
        futures = {case: pool.submit(one, case) for case in jobs}
        return {case: future.result() for case, future in futures.items()}


def outcome_of(results: Mapping[str, JobOutcome | Exception], case: str) -> JobOutcome:
    """The outcome of one case run by ``run_concurrently``; its error raised again."""
    result = results[case]
    if isinstance(result, Exception):
        raise result
    return result


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


__all__ = [
    "City",
    "Job",
    "city_grant",
    "corpus_city",
    "dataset_grant",
    "describe",
    "enterprise_grant",
    "outcome_of",
    "rules",
    "run_concurrently",
]
