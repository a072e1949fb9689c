"""A data provider's usage report: who used its datasets, under which grant, how often
and for which products (001 art. 25 and 004 art. 30: the use of public data is
disclosed; the providers supervise the use of their data, DESIGN "traceable").

From the audit log (``gateway.reports.trail``), for the provider's datasets and the
period: the ``job.submitted`` events naming one of them (dummy runs left out), per
dataset, operator (the event's actor) and grant (its ``grant_id``), by CST month;
the ``job.state`` moves of those jobs to ``released``; the ``product.registration``
applications that ended ``registered``.

From the store and the registry: which datasets are the provider's (the registry
records the provider of every version), and for a registered application its
product's name and datasets (``product_registrations`` -> ``products``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.periods import Period
from gateway.reports.model import Chart, Report, Section
from gateway.reports.trail import Trail, month, months, read_trail
from gateway.store.tables import product_registrations, products

BASIS = ("001 art. 25", "004 art. 30", "003 (六)6")

Key = tuple[str, str, str]  # dataset, operator, grant


def build(
    conn: Connection, provider: str, datasets: Iterable[str], period: Period, now: datetime
) -> Report:
    """The usage report of ``provider``'s ``datasets`` for ``period``."""
    own = set(datasets)
    trail = read_trail(conn, period)
    jobs, by_month = Counter[Key](), Counter[tuple[str, str]]()
    for e in trail.of_type("job.submitted"):
        job = trail.job_of(e)
        if job is None or job.dummy:
            continue
        for d in own.intersection(job.datasets):
            jobs[(d, job.operator, job.grant or "")] += 1
            by_month[(month(e.at), d)] += 1
    released = Counter[Key]()
    for e in trail.of_type("job.state"):
        job = trail.job_of(e)
        if job and not job.dummy and e.detail.get("to") == "released":
            for d in own.intersection(job.datasets):
                released[(d, job.operator, job.grant or "")] += 1
    made = _products(conn, trail, own)
    keys = sorted(set(jobs) | set(released) | set(made))
    usage = tuple(
        (d, op, g, jobs[(d, op, g)], released[(d, op, g)], "; ".join(sorted(made[(d, op, g)])))
        for d, op, g in keys
    )
    summary = {
        "datasets": len(own),
        "datasets_used": len({k[0] for k in keys}),
        "operators": len({k[1] for k in keys}),
        "grants": len({k[2] for k in keys if k[2]}),
        "jobs": sum(jobs.values()),
        "released": sum(released.values()),
        "products": len({p for names in made.values() for p in names}),
    }
    monthly = tuple((m, d, n) for (m, d), n in sorted(by_month.items()))
    return Report(
        kind="provider",
        subject=provider,
        period=period,
        generated_at=now,
        basis=BASIS,
        summary=summary,
        sections=(
            Section("usage", ("dataset", "operator", "grant", "jobs", "released", "products"),
                    usage),
            Section("usage_by_month", ("month", "dataset", "jobs"), monthly,
                    Chart("stacked", category="month", value="jobs", series="dataset",
                          categories=months(period))),
            Section("provider_datasets", ("dataset",), tuple((d,) for d in sorted(own))),
        ),
    )  # fmt: skip


def _products(conn: Connection, trail: Trail, own: set[str]) -> dict[Key, set[str]]:
    """Products registered in the period from the provider's datasets, by usage key."""
    r, p = product_registrations.c, products.c
    found = {
        row.id: row
        for row in conn.execute(
            sa.select(r.id, r.applicant, r.grant_id, p.name, p.datasets).join(
                products, products.c.id == r.product_id
            )
        )
    }
    made: dict[Key, set[str]] = defaultdict(set)
    for e in trail.of_type("product.registration"):
        row = found.get(str(e.detail.get("product_registration")))
        if row is None or e.detail.get("to") != "registered":
            continue
        for d in own.intersection(row.datasets or ()):
            made[(d, row.applicant, row.grant_id)].add(row.name)
    return made
