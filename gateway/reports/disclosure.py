"""The implementing agency's yearly disclosure (授权运营情况): the grantees with content,
scope and term (001 art. 24; 004 art. 30 para. 1), the operators' product lists in their
two classes with the price basis, and the use of public data (001 art. 25; 004 art. 30
para. 2; 003 (二)).

Everything comes from ``gateway.disclosure.facts`` (the store only: the same facts the
public portal shows, so the two cannot differ); nothing from the audit log, nothing
that is not public. The numbers are recomputable from the portal's JSON.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import Connection

from gateway.disclosure import facts
from gateway.periods import Period
from gateway.reports.model import Chart, Report, Section

BASIS = ("001 art. 24", "001 art. 25", "001 art. 26", "004 art. 30", "003 (二)")


def _day(at: datetime | None) -> str | None:
    return at.date().isoformat() if at else None


def _yuan(fen: object) -> str:
    return f"¥{int(str(fen)) / 100:.2f}"


def price_text(p: facts.PublicProduct) -> str:
    """The price basis in figures, in any language: the condition of a conditionally free
    product; a guided price's tariff item and unit price; a cost-plus price's unit cost,
    margin and unit price. Nothing for a free product."""
    basis = p.price_basis
    fen, unit = p.unit_price_fen, p.unit or "unit"
    if p.price_class == "conditionally_free":
        return str(basis.get("condition", ""))
    if p.price_class == "guided" and fen is not None:
        return f"{basis.get('tariff_item', '')}: {_yuan(fen)}/{unit}"
    if p.price_class == "cost_plus" and fen is not None and "unit_cost_fen" in basis:
        margin = float(str(basis.get("margin", 0)))
        return f"{_yuan(basis['unit_cost_fen'])} * (1 + {margin:.0%}) = {_yuan(fen)}/{unit}"
    return ""


def build(conn: Connection, period: Period, now: datetime) -> Report:
    """The disclosure of ``period`` (see the module docstring)."""
    found = facts.products(conn, period)
    grants = facts.grantees(conn, period)
    usage = facts.usage(conn, period)
    product_rows = tuple(
        (p.registration_code, p.name, p.category, p.price_class, price_text(p), p.operator,
         ", ".join(p.datasets), p.kind, p.status, _day(p.registered_at), _day(p.valid_until))
        for p in found
    )  # fmt: skip
    grant_rows = tuple(
        (g.grantee, g.id, g.scenario, g.purpose,
         "; ".join(f"{d}: {', '.join(cols)}" for d, cols in g.scopes),
         _day(g.valid_from), _day(g.valid_until), g.state, _day(g.ended_at))
        for g in grants
    )  # fmt: skip
    usage_rows = tuple(
        (u.grantee, u.dataset, u.provider, u.grants, u.jobs, u.released, u.products) for u in usage
    )
    classes = Counter(p.category for p in found)
    summary = {
        "products": len(found),
        "products_public_governance": classes["public_governance"],
        "products_industry_development": classes["industry_development"],
        "grants": len(grants),
        "grantees": len({g.grantee for g in grants}),
        "jobs": sum(u.jobs for u in usage),
        "released": sum(u.released for u in usage),
    }
    return Report(
        kind="disclosure",
        subject=None,
        period=period,
        generated_at=now,
        basis=BASIS,
        summary=summary,
        sections=(
            Section("grantees", ("grantee", "grant", "scenario", "purpose", "scope",
                                 "valid_from", "valid_until", "state", "ended"), grant_rows),
            Section("product_list", ("registration_code", "name", "category", "price_class",
                                     "price_basis", "operator", "datasets", "product_kind",
                                     "status", "registered", "valid_until"), product_rows),
            Section("usage", ("grantee", "dataset", "provider", "grants", "jobs", "released",
                              "products"), usage_rows,
                    Chart("bar", category="dataset", value="jobs", series="grantee")),
        ),
    )  # fmt: skip
