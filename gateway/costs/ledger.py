"""The cost ledger: what each product cost and earned in a period (001 authorized-operation
art. 34; 004 art. 28; 003: costs and revenue accounted per product, separately).

Costs are the period's metered usage (``gateway.metering.usage.totals``) priced at the
settings' unit rates, one line per item:

- ``cpu``: CPU seconds of the product's jobs (cgroup accounting), at the CPU-second rate;
- ``scan``: GB (10^9 bytes) the trusted evidence query scanned, at the GB-scanned rate;
- ``storage``: GB-days of the product's released outputs (its pinned manifest's bytes)
  for the days of the period it was registered and not cancelled or revoked, up to now;
- ``review``: reviewer hours on its jobs, at the review-hour rate;
- ``he_eval``: evaluation seconds of its encrypted calls, at the CPU-second rate (an
  evaluation is the evaluator's CPU).

A line's amount is its quantity (rounded to 6 decimals) times its rate, rounded half up to
a fen; a product's cost is the sum of its lines. Revenue is the sum of the period's
charges of the product (``charges``, gateway.pricing). Usage of a grant that made no
product (a job never registered, an HE product never registered) is never lost: it is
listed per grant as ``unattributed`` (the grant's usage less its products').
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.metering.usage import UsageRow, totals
from gateway.periods import Period
from gateway.store.tables import charges, products
from gateway.workdays import CST

GB = 10**9
ENDED = ("cancelled", "revoked")  # gateway.products.model.Status: no longer stored
ITEMS = ("cpu", "scan", "storage", "review", "he_eval")  # the lines of a product, in order
NUMBERS = ("jobs", "cpu_seconds", "bytes_scanned", "review_minutes", "he_calls", "he_eval_ms")


@dataclass(frozen=True)
class Rates:
    """The unit rates of the cost accounting, in fen (settings ``cost_rate_*_fen``)."""

    cpu_second_fen: int
    gb_scanned_fen: int
    storage_gb_day_fen: int
    review_hour_fen: int

    @classmethod
    def of(cls, settings: Any) -> Rates:
        return cls(
            cpu_second_fen=settings.cost_rate_cpu_second_fen,
            gb_scanned_fen=settings.cost_rate_gb_scanned_fen,
            storage_gb_day_fen=settings.cost_rate_storage_gb_day_fen,
            review_hour_fen=settings.cost_rate_review_hour_fen,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "cpu_second_fen": self.cpu_second_fen,
            "gb_scanned_fen": self.gb_scanned_fen,
            "storage_gb_day_fen": self.storage_gb_day_fen,
            "review_hour_fen": self.review_hour_fen,
        }


@dataclass(frozen=True)
class Line:
    item: str  # cpu | scan | storage | review | he_eval
    quantity: float
    unit: str
    rate_fen: int
    amount_fen: int


@dataclass(frozen=True)
class ProductCost:
    product_id: str
    name: str
    operator: str
    category: str
    price_class: str
    lines: tuple[Line, ...]
    cost_fen: int
    revenue_fen: int


@dataclass(frozen=True)
class GrantCost:
    """Usage of a grant that no product carries (jobs never registered as products)."""

    grant_id: str
    lines: tuple[Line, ...]
    cost_fen: int


@dataclass(frozen=True)
class Ledger:
    period: Period
    rates: Rates
    products: tuple[ProductCost, ...]
    unattributed: tuple[GrantCost, ...]
    cost_fen: int
    revenue_fen: int


def amount(quantity: float, rate_fen: int) -> int:
    """``quantity`` x ``rate_fen``, rounded half up to a fen."""
    exact = Decimal(repr(quantity)) * rate_fen
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line(item: str, quantity: float, unit: str, rate_fen: int) -> Line:
    q = round(max(quantity, 0.0), 6)
    return Line(item, q, unit, rate_fen, amount(q, rate_fen))


class Usage(Protocol):
    """What the lines read of a usage row (``gateway.metering.usage.UsageRow``)."""

    @property
    def cpu_seconds(self) -> float: ...
    @property
    def bytes_scanned(self) -> float: ...
    @property
    def review_minutes(self) -> float: ...
    @property
    def he_eval_ms(self) -> float: ...


def usage_lines(usage: Usage | None, rates: Rates) -> list[Line]:
    """The metered lines (everything but storage) of one usage row (None: nothing used)."""
    cpu = float(usage.cpu_seconds or 0) if usage else 0.0
    scanned = float(usage.bytes_scanned or 0) / GB if usage else 0.0
    review = float(usage.review_minutes or 0) / 60 if usage else 0.0
    evaluation = float(usage.he_eval_ms or 0) / 1000 if usage else 0.0
    return [
        line("cpu", cpu, "cpu-second", rates.cpu_second_fen),
        line("scan", scanned, "GB", rates.gb_scanned_fen),
        line("review", review, "hour", rates.review_hour_fen),
        line("he_eval", evaluation, "cpu-second", rates.cpu_second_fen),
    ]


def storage_gb_days(row: Any, period: Period, now: datetime) -> float:
    """GB-days the product's released outputs were kept in ``period`` up to ``now``."""
    kept_bytes = sum(int(entry.get("bytes", 0)) for entry in row.manifest or [])
    start: datetime = max(row.registered_at, period.start)
    ended = row.status_changed_at if row.status in ENDED else None
    end: datetime = min(x for x in (period.end, now, ended) if x is not None)
    if not kept_bytes or end <= start:
        return 0.0
    return kept_bytes / GB * (end - start).total_seconds() / 86_400


def ledger(
    conn: Connection,
    period: Period,
    rates: Rates,
    now: datetime,
    *,
    operator: str | None = None,
    product: str | None = None,
) -> Ledger:
    """The ledger of ``period`` (see the module docstring), for one operator's products
    and grants, or one product, or everything."""
    usage = {u.key: u for u in totals(conn, period, "product", operator=operator, product=product)}
    p = products.c
    # Registered by the period's end, or carrying its usage (a job that ended in the period
    # and was registered after it: its cost is the period's).
    shown = sa.or_(p.registered_at < period.end, p.id.in_(list(usage)))
    query = sa.select(products).where(shown).order_by(p.registered_at, p.id)
    if operator is not None:
        query = query.where(p.operator == operator)
    if product is not None:
        query = query.where(p.id == product)
    rows = list(conn.execute(query))
    revenue = _revenue(conn, period, [r.id for r in rows])
    costs: list[ProductCost] = []
    for row in rows:
        stored = storage_gb_days(row, period, now)
        idle = row.id not in usage and not stored and not revenue.get(row.id)
        if idle and row.status in ENDED and row.status_changed_at < period.start:
            continue  # gone before the period: nothing to account
        lines = usage_lines(usage.get(row.id), rates)
        lines.insert(2, line("storage", stored, "GB-day", rates.storage_gb_day_fen))
        costs.append(
            ProductCost(
                product_id=row.id,
                name=row.name,
                operator=row.operator,
                category=row.category,
                price_class=row.price_class,
                lines=tuple(lines),
                cost_fen=sum(x.amount_fen for x in lines),
                revenue_fen=revenue.get(row.id, 0),
            )
        )
    unattributed = () if product else _unattributed(conn, period, rates, operator, usage)
    return Ledger(
        period=period,
        rates=rates,
        products=tuple(costs),
        unattributed=unattributed,
        cost_fen=sum(c.cost_fen for c in costs) + sum(g.cost_fen for g in unattributed),
        revenue_fen=sum(c.revenue_fen for c in costs),
    )


def _revenue(conn: Connection, period: Period, product_ids: Iterable[str]) -> dict[str, int]:
    ids = list(product_ids)
    if not ids:
        return {}
    c = charges.c
    query = (
        sa.select(c.product_id, sa.func.sum(c.amount_fen))
        .where(c.product_id.in_(ids), c.at >= period.start, c.at < period.end)
        .group_by(c.product_id)
    )
    return {str(pid): int(total or 0) for pid, total in conn.execute(query)}


def _unattributed(
    conn: Connection,
    period: Period,
    rates: Rates,
    operator: str | None,
    by_product: dict[str, UsageRow],
) -> tuple[GrantCost, ...]:
    """Per grant: the grant's usage less the usage its products carry (never below zero)."""
    grant_of = {
        str(k): str(v) for k, v in conn.execute(sa.select(products.c.id, products.c.grant_id))
    }
    carried: dict[str, dict[str, float]] = {}
    for key, use in by_product.items():
        sums = carried.setdefault(str(grant_of.get(key, "")), dict.fromkeys(NUMBERS, 0.0))
        for name in NUMBERS:
            sums[name] += float(getattr(use, name) or 0)
    found: list[GrantCost] = []
    for use in totals(conn, period, "grant", operator=operator):
        less = carried.get(use.key, dict.fromkeys(NUMBERS, 0.0))
        left = {n: float(getattr(use, n) or 0) - less[n] for n in NUMBERS}
        if left["jobs"] < 0.5 and left["he_calls"] < 0.5:
            continue  # every job and call of the grant is a product's
        rest = _Left(**{n: max(v, 0.0) for n, v in left.items()})
        lines = usage_lines(rest, rates)
        found.append(GrantCost(use.key, tuple(lines), sum(x.amount_fen for x in lines)))
    return tuple(found)


@dataclass(frozen=True)
class _Left:
    """What is left of a grant's usage once its products' is taken out."""

    jobs: float
    cpu_seconds: float
    bytes_scanned: float
    review_minutes: float
    he_calls: float
    he_eval_ms: float


def cost_to_date(conn: Connection, product_id: str, rates: Rates, now: datetime) -> int:
    """A product's accounted cost from the earliest a period reaches (ten years) to now."""
    today = now.astimezone(CST).date()
    first = max(date(2000, 1, 1), today - timedelta(days=3650))
    period = Period.parse(f"{first.isoformat()}..{today.isoformat()}")
    found = ledger(conn, period, rates, now, product=product_id)
    return sum(c.cost_fen for c in found.products)
