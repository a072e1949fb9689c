"""What jobs and encrypted calls used, totalled per job, grant, product or operator.

Costs are accounted per product, separately (001 art. 34, 004 art. 28, 003);
the cost ledger (``gateway.pricing``) and the reports read these totals. Each
figure comes from the trusted side only:

- ``jobs``: jobs that ended in the period (by ``jobs.finished_at``) with an
  outcome row; **dummy runs are excluded** (they touch no public data: the
  development loop is the operator's own cost, not a product's);
- ``cpu_seconds``: the kernel's accounting of every sandbox the job took (a
  Python job's run on the dummy views and the trusted side's recomputations of
  its specifications included);
- ``memory_peak_bytes`` (the largest, not a sum): of the job's recorded run
  (for a Python job, its run on the real views, else its run on the dummy
  views that published the specifications);
- ``rows_scanned``, ``bytes_scanned``: SQL products only, what their evidence
  query reads (``sandbox.run.metering``); a Python job adds nothing;
- ``output_bytes``: the bytes collected from the run's ``/output``;
- ``sandbox_seconds``: create to removed, per recorded run;
- ``review_minutes``: per vote on the job, the minutes from the review's
  opening (when a reviewer first looked at it) to that vote, each capped at
  ``REVIEW_CAP`` (a review left open over a weekend is not four days' work);
- ``he_calls``, ``he_eval_ms``: encrypted calls that reached evaluation in the
  period (by ``he_calls.at``), and their evaluation time. They belong to the
  HE product's operator and grant, and to the registered product that offers
  it; they have no job, so ``by=job`` leaves them out.

Invariants:
- Read-only; one snapshot (the caller's connection).
- A figure the store does not hold (``None``) adds nothing; a row's
  ``memory_peak_bytes`` is None when no job of it has one.
- Rows are sorted by key; :func:`overall` is the sum of the rows it is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.periods import Period
from gateway.store.tables import (
    he_calls,
    he_products,
    job_outcomes,
    jobs,
    products,
    review_votes,
    reviews,
)

REVIEW_CAP = timedelta(hours=4)


class By(StrEnum):
    """What usage is totalled per."""

    JOB = "job"
    GRANT = "grant"
    PRODUCT = "product"
    OPERATOR = "operator"


@dataclass(frozen=True)
class UsageRow:
    """What one key (a job id, grant id, product id or operator name) used in a period."""

    key: str
    jobs: int = 0
    cpu_seconds: float = 0.0
    memory_peak_bytes: int | None = None
    rows_scanned: int = 0
    bytes_scanned: int = 0
    output_bytes: int = 0
    sandbox_seconds: float = 0.0
    review_minutes: float = 0.0
    he_calls: int = 0
    he_eval_ms: float = 0.0

    def __add__(self, other: UsageRow) -> UsageRow:
        summed: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "key":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "memory_peak_bytes":
                summed[f.name] = max(a, b) if a is not None and b is not None else a or b
            else:
                summed[f.name] = a + b
        return replace(self, **summed)

    def figures(self) -> dict[str, Any]:
        """The figures without the key, as the API shows them (unrounded: the totals are
        the sums of the rows)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "key"}


def _job_rows(
    conn: Connection,
    period: Period,
    by: By,
    operator: str | None,
    grant: str | None,
    product: str | None,
) -> dict[str, UsageRow]:
    key = {
        By.JOB: jobs.c.id,
        By.GRANT: jobs.c.grant_id,
        By.OPERATOR: jobs.c.operator,
        By.PRODUCT: products.c.id,
    }[by]
    source = jobs.join(job_outcomes, job_outcomes.c.job_id == jobs.c.id)
    if by == By.PRODUCT or product is not None:
        source = source.join(products, products.c.job_id == jobs.c.id)
    query = (
        sa.select(
            key.label("key"),
            jobs.c.id,
            job_outcomes.c.cpu_seconds,
            job_outcomes.c.memory_peak_bytes,
            job_outcomes.c.rows_scanned,
            job_outcomes.c.bytes_scanned,
            job_outcomes.c.output_bytes,
            job_outcomes.c.sandbox_seconds,
        )
        .select_from(source)
        .where(
            jobs.c.dummy.is_(False),
            jobs.c.finished_at >= period.start,
            jobs.c.finished_at < period.end,
        )
    )
    if operator is not None:
        query = query.where(jobs.c.operator == operator)
    if grant is not None:
        query = query.where(jobs.c.grant_id == grant)
    if product is not None:
        query = query.where(products.c.id == product)
    found = conn.execute(query).all()
    minutes = _review_minutes(conn, [r.id for r in found])
    rows: dict[str, UsageRow] = {}
    for r in found:
        one = UsageRow(
            key=r.key,
            jobs=1,
            cpu_seconds=r.cpu_seconds or 0.0,
            memory_peak_bytes=r.memory_peak_bytes,
            rows_scanned=r.rows_scanned or 0,
            bytes_scanned=r.bytes_scanned or 0,
            output_bytes=r.output_bytes or 0,
            sandbox_seconds=r.sandbox_seconds or 0.0,
            review_minutes=minutes.get(r.id, 0.0),
        )
        rows[r.key] = rows[r.key] + one if r.key in rows else one
    return rows


def review_minutes(opened_at: datetime, voted_at: datetime) -> float:
    """One vote's review time: opening to vote, in minutes, at most ``REVIEW_CAP``."""
    spent = min(max(voted_at - opened_at, timedelta(0)), REVIEW_CAP)
    return spent.total_seconds() / 60


def _review_minutes(conn: Connection, job_ids: list[str]) -> dict[str, float]:
    minutes: dict[str, float] = {}
    for start in range(0, len(job_ids), 500):  # bounded IN lists
        chunk = job_ids[start : start + 500]
        votes = conn.execute(
            sa.select(review_votes.c.job_id, reviews.c.opened_at, review_votes.c.at)
            .select_from(review_votes.join(reviews, reviews.c.job_id == review_votes.c.job_id))
            .where(review_votes.c.job_id.in_(chunk))
        ).all()
        for job_id, opened_at, voted_at in votes:
            minutes[job_id] = minutes.get(job_id, 0.0) + review_minutes(opened_at, voted_at)
    return minutes


def _he_rows(
    conn: Connection,
    period: Period,
    by: By,
    operator: str | None,
    grant: str | None,
    product: str | None,
) -> dict[str, UsageRow]:
    if by == By.JOB:
        return {}
    key = {
        By.GRANT: he_products.c.grant_id,
        By.OPERATOR: he_products.c.operator,
        By.PRODUCT: products.c.id,
    }[by]
    source = he_calls.join(he_products, he_products.c.id == he_calls.c.product_id)
    if by == By.PRODUCT or product is not None:
        source = source.join(products, products.c.he_product_id == he_products.c.id)
    query = (
        sa.select(
            key.label("key"),
            sa.func.count().label("calls"),
            sa.func.coalesce(sa.func.sum(he_calls.c.eval_ms), 0.0).label("eval_ms"),
        )
        .select_from(source)
        .where(he_calls.c.at >= period.start, he_calls.c.at < period.end)
        .group_by(key)
    )
    if operator is not None:
        query = query.where(he_products.c.operator == operator)
    if grant is not None:
        query = query.where(he_products.c.grant_id == grant)
    if product is not None:
        query = query.where(products.c.id == product)
    return {
        r.key: UsageRow(key=r.key, he_calls=int(r.calls), he_eval_ms=float(r.eval_ms))
        for r in conn.execute(query)
    }


def totals(
    conn: Connection,
    period: Period,
    by: By | str,
    *,
    operator: str | None = None,
    grant: str | None = None,
    product: str | None = None,
) -> list[UsageRow]:
    """Usage in ``period`` per ``by`` key, narrowed by the filters given, sorted by key."""
    by = By(by)
    rows = _job_rows(conn, period, by, operator, grant, product)
    for key, calls in _he_rows(conn, period, by, operator, grant, product).items():
        rows[key] = rows[key] + calls if key in rows else calls
    return [rows[k] for k in sorted(rows)]


def overall(rows: Iterable[UsageRow]) -> UsageRow:
    """The sum of ``rows`` (the largest memory peak), keyed ``""``."""
    total = UsageRow(key="")
    for row in rows:
        total = total + row
    return total
