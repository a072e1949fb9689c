"""Stored usage for metering tests: jobs with their outcome rows, products, reviews and
encrypted calls, at chosen times, over the grants world (``tests.support.grants_world``:
an account per role, ``operator-1`` and ``operator-2``, grants from the grant service).

Plain functions writing what the worker, the review service and the HE service write:
``add_job`` a finished job and its outcome (through ``gateway.jobs.outcomes.record_outcome``
with the job's own finishing time as the clock), ``add_product`` a registered product of a
job or of an HE product, ``add_he_product`` and ``add_he_call`` an encrypted product and a
call that reached evaluation, ``add_review`` a review and its votes. Times are UTC;
``cst`` makes one from a CST wall-clock time (the periods' calendar).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.jobs.outcomes import record_outcome
from gateway.store.tables import he_calls, he_products, jobs, products, review_votes, reviews
from gateway.workdays import CST

SHA = hashlib.sha256(b"metering").hexdigest()


def cst(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A CST wall-clock time, as the UTC datetime the store keeps."""
    return datetime(year, month, day, hour, minute, tzinfo=CST).astimezone(UTC)


def add_job(
    engine: sa.Engine,
    job_id: str,
    operator: str,
    grant_id: str,
    finished_at: datetime,
    *,
    kind: str = "sql",
    dummy: bool = False,
    **figures: Any,
) -> None:
    """A released job that finished at ``finished_at`` with the outcome ``figures``
    (``cpu_seconds``, ``memory_peak_bytes``, ``rows_scanned``, ...)."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(jobs).values(
                id=job_id, operator=operator, grant_id=grant_id, kind=kind, dummy=dummy,
                code="SELECT 1", code_sha256=SHA, state="released", outcome="checks_passed",
                attempts=1, datasets=["people"], submitted_at=finished_at - timedelta(minutes=5),
                started_at=finished_at - timedelta(minutes=4), finished_at=finished_at,
                updated_at=finished_at,
            )
        )  # fmt: skip
        record_outcome(conn, job_id, {"exit_class": "succeeded", **figures}, lambda: finished_at)


def add_product(
    engine: sa.Engine,
    product_id: str,
    operator: str,
    grant_id: str,
    *,
    job_id: str | None = None,
    he_product_id: str | None = None,
) -> None:
    """A registered product made from a job, or offering an encrypted product."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(products).values(
                id=product_id, registration_code=f"REG-{product_id}", name=product_id,
                description="metered", category="industry", operator=operator, job_id=job_id,
                grant_id=grant_id, code_sha256=SHA, datasets=["people"], dataset_versions={},
                policy_versions={}, manifest=[], manifest_sha256=SHA, registered_at=now,
                valid_until=now + timedelta(days=3 * 365), he_product_id=he_product_id,
            )
        )  # fmt: skip


def add_he_product(engine: sa.Engine, he_id: str, operator: str, grant_id: str) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(he_products).values(
                id=he_id, kind="score", name=he_id, operator=operator, grant_id=grant_id,
                datasets=["people"], spec={}, consumers=["consumer-1"], state="approved",
                created_at=now, state_changed_at=now, state_reason="",
            )
        )  # fmt: skip


def add_he_call(engine: sa.Engine, he_id: str, at: datetime, eval_ms: float | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(he_calls).values(
                product_id=he_id, consumer="consumer-1", at=at, outcome="answered",
                eval_ms=eval_ms,
            )
        )  # fmt: skip


def add_review(
    engine: sa.Engine, job_id: str, opened_at: datetime, votes: Sequence[tuple[str, datetime]]
) -> None:
    """A review of ``job_id`` opened at ``opened_at``, with (reviewer, time) approvals."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(reviews).values(
                job_id=job_id, state="approved", required=len(votes), opened_at=opened_at,
                closed_at=max(at for _, at in votes),
            )
        )  # fmt: skip
        for reviewer, at in votes:
            conn.execute(
                sa.insert(review_votes).values(
                    job_id=job_id, reviewer=reviewer, decision="approve", reason="ok", at=at
                )
            )
