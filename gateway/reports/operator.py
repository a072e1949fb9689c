"""The operator's annual operating report (年度运营报告): 001 art. 35 (processing,
fusion, market operation and data security, yearly, to the implementing agency), art.
36 and 004 art. 29 (the yearly evaluation it feeds), 003 (六)6.

From the audit log (``gateway.reports.trail``), for one operator and period:

- jobs: its ``job.submitted`` events (dummy runs counted apart), by kind and CST month;
  how they ended: ``job.state`` moves of its jobs to an ended state;
- data used: per dataset named by its submissions, the jobs and the released ones
  (``job.state`` to ``released``);
- reviews: its jobs' moves to ``held``/``blocked``, ``review.state`` ends, ``review.vote``
  votes; review time from the move under review to the end, both in the period;
- security: ``access.denied`` refusals of the operator (each minute's count), its
  ``job.refused`` submissions, its jobs ``blocked`` by the output checks, ``grant.hold``
  stops placed and lifted on its grants;
- products: ``product.registration`` applications ending ``registered`` or ``refused``,
  ``product.status`` moves (expired, cancelled, revoked);
- incidents: ``incident.state`` moves.

From the store: which grants are the operator's (``grants.operator``), the applicant
and name of a registration, the operator and name of a product, the grants an
incident names. Nothing else, and never a data value.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.periods import Period
from gateway.reports.model import Chart, Report, Section
from gateway.reports.trail import ENDED, UNDER_REVIEW, Trail, month, months, read_trail
from gateway.store.tables import grants, incidents, product_registrations, products

BASIS = ("001 art. 35", "001 art. 36", "004 art. 29", "003 (六)6")
# A registration registered, by its type (gateway.products.model.Kind), as a change.
REGISTRATION_CHANGE = {
    "first": "first_registration",
    "change": "change_registration",
    "correction": "correction_registration",
    "cancellation": "cancellation_registration",
}


def operator_grants(conn: Connection, operator: str) -> set[str]:
    return set(conn.execute(sa.select(grants.c.id).where(grants.c.operator == operator)).scalars())


def build(conn: Connection, operator: str, period: Period, now: datetime) -> Report:
    """The report of ``operator`` for ``period`` (see the module docstring)."""
    trail = read_trail(conn, period)
    own_grants = operator_grants(conn, operator)
    jobs_month, jobs_total, dummy = _jobs(trail, operator)
    ended = _ended(trail, operator)
    datasets = _datasets(trail, operator)
    reviews = _reviews(trail, operator)
    security = _security(trail, operator, own_grants)
    product_rows = _products(conn, trail, operator)
    incident_rows = _incidents(conn, trail, own_grants)
    changes = Counter(r[3] for r in product_rows)
    summary = {
        "jobs": jobs_total,
        "dummy_runs": dummy,
        "released": sum(r[2] for r in ended if r[1] == "released"),
        "datasets": len(datasets),
        "reviews_held": dict(reviews)["held"],
        "products_registered": changes["first_registration"],
        "products_changed": changes["change_registration"] + changes["correction_registration"],
        "products_ended": changes["expired"] + changes["cancelled"] + changes["revoked"],
        "incidents": len({r[0] for r in incident_rows}),
        "refusals": dict(security)["access_denied"] + dict(security)["static_refusals"],
    }
    return Report(
        kind="operator",
        subject=operator,
        period=period,
        generated_at=now,
        basis=BASIS,
        summary=summary,
        sections=(
            Section("jobs_by_month", ("month", "kind", "jobs"), tuple(jobs_month),
                    Chart("stacked", category="month", value="jobs", series="kind",
                          categories=months(period))),
            Section("jobs_by_outcome", ("kind", "state", "jobs"), tuple(ended)),
            Section("datasets", ("dataset", "jobs", "released"), tuple(datasets),
                    Chart("bar", category="dataset", value="jobs")),
            Section("reviews", ("item", "value"), tuple(reviews)),
            Section("products", ("month", "product", "name", "change"), tuple(product_rows)),
            Section("incidents", ("month", "incident", "kind", "severity", "change"),
                    tuple(incident_rows)),
            Section("security", ("item", "value"), tuple(security)),
        ),
    )  # fmt: skip


def _jobs(trail: Trail, operator: str) -> tuple[list[tuple[str, str, int]], int, int]:
    counts: Counter[tuple[str, str]] = Counter()
    dummy = 0
    for e in trail.of_type("job.submitted"):
        if e.actor != operator:
            continue
        if e.detail.get("dummy"):
            dummy += 1
            continue
        counts[(month(e.at), str(e.detail.get("kind")))] += 1
    rows = [(m, k, n) for (m, k), n in sorted(counts.items())]
    return rows, sum(counts.values()), dummy


def _ended(trail: Trail, operator: str) -> list[tuple[str, str, int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for e in trail.of_type("job.state"):
        job = trail.job_of(e)
        if job and job.operator == operator and not job.dummy and e.detail.get("to") in ENDED:
            counts[(job.kind, str(e.detail["to"]))] += 1
    return [(k, s, n) for (k, s), n in sorted(counts.items())]


def _datasets(trail: Trail, operator: str) -> list[tuple[str, int, int]]:
    used: Counter[str] = Counter()
    released: Counter[str] = Counter()
    for e in trail.of_type("job.submitted"):
        job = trail.job_of(e)
        if job and job.operator == operator and not job.dummy:
            used.update(job.datasets)
    for e in trail.of_type("job.state"):
        job = trail.job_of(e)
        if job and job.operator == operator and e.detail.get("to") == "released":
            released.update(job.datasets)
    names = sorted(set(used) | set(released))
    return [(d, used[d], released[d]) for d in names]


def _reviews(trail: Trail, operator: str) -> list[tuple[str, int | float]]:
    held, ends, votes = 0, Counter[str](), 0
    opened: dict[str, datetime] = {}
    hours: list[float] = []
    for e in trail.events:
        job = trail.job_of(e)
        if job is None or job.operator != operator:
            continue
        if e.type == "job.state" and e.detail.get("to") in UNDER_REVIEW:
            held += 1
            opened[job.job] = e.at
        elif e.type == "review.state" and e.detail.get("to") != "open":
            ends[str(e.detail.get("to"))] += 1
            if job.job in opened:
                hours.append((e.at - opened.pop(job.job)).total_seconds() / 3600)
        elif e.type == "review.vote":
            votes += 1
    return [
        ("held", held),
        ("approved", ends["approved"]),
        ("denied", ends["denied"]),
        ("refused", ends["refused"]),
        ("votes", votes),
        ("review_hours_median", round(statistics.median(hours), 2) if hours else 0),
        ("review_hours_max", round(max(hours), 2) if hours else 0),
    ]


def _security(trail: Trail, operator: str, own_grants: set[str]) -> list[tuple[str, int]]:
    denied = refused = blocked = placed = lifted = 0
    for e in trail.events:
        if e.type == "access.denied" and e.actor == operator:
            # A minute's first refusal is an event; its summary counts the first one again.
            n = int(e.detail.get("count", 1))
            denied += n if e.detail.get("first") else n - 1
        elif e.type == "job.refused" and e.actor == operator:
            refused += 1
        elif e.type == "job.state" and e.detail.get("to") == "blocked":
            job = trail.job_of(e)
            blocked += bool(job and job.operator == operator)
        elif e.type == "grant.hold" and e.grant_id in own_grants:
            placed += e.detail.get("action") == "placed"
            lifted += e.detail.get("action") == "lifted"
    return [
        ("access_denied", denied),
        ("static_refusals", refused),
        ("blocked_outputs", blocked),
        ("stops_placed", placed),
        ("stops_lifted", lifted),
    ]


def _products(conn: Connection, trail: Trail, operator: str) -> list[tuple[str, str, str, str]]:
    regs = {
        r.id: r
        for r in conn.execute(
            sa.select(product_registrations.c.id, product_registrations.c.type,
                      product_registrations.c.name, product_registrations.c.product_id)
            .where(product_registrations.c.applicant == operator)
        )
    }  # fmt: skip
    own = {
        r.id: r.name
        for r in conn.execute(
            sa.select(products.c.id, products.c.name).where(products.c.operator == operator)
        )
    }
    rows = []
    for e in trail.of_type("product.registration", "product.status"):
        to = str(e.detail.get("to"))
        if e.type == "product.registration":
            reg = regs.get(str(e.detail.get("product_registration")))
            if reg is None or to not in ("registered", "refused"):
                continue
            change = REGISTRATION_CHANGE.get(reg.type, reg.type) if to == "registered" else to
            rows.append((month(e.at), reg.product_id or reg.id, reg.name, change))
        elif (product := str(e.detail.get("product"))) in own:
            rows.append((month(e.at), product, own[product], to))
    return rows


def _incidents(
    conn: Connection, trail: Trail, own_grants: set[str]
) -> list[tuple[str, str, str, str, str]]:
    touching = {
        r.id: r
        for r in conn.execute(sa.select(incidents.c.id, incidents.c.kind, incidents.c.severity,
                                        incidents.c.grants))
        if own_grants & set(r.grants or ())
    }  # fmt: skip
    rows = []
    for e in trail.of_type("incident.state"):
        found = touching.get(str(e.detail.get("incident")))
        if found is not None:
            change = str(e.detail.get("to"))
            rows.append((month(e.at), found.id, found.kind, found.severity, change))
    return rows
