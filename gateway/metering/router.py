"""``GET /v1/metering``: usage totals for a period, per job, grant, product or operator.

Who reads what (deny by default): an administrator or an auditor reads every
operator's usage; an operator reads its own only (its other filters narrow
within it; naming another operator is a 403); every other role is refused.
A bad period is a 422 with the period's own message. Read-only: nothing is
audited (the figures are the store's own, each written with its audit event).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from gateway.auth import read, requires
from gateway.identity import Account, Role
from gateway.metering.errors import MeteringError, MeteringForbidden
from gateway.metering.usage import By, overall, totals
from gateway.periods import Period, PeriodError

router = APIRouter(prefix="/v1/metering", tags=["metering"])
Reader = Annotated[Account, Depends(requires(Role.OPERATOR, Role.ADMIN, Role.AUDITOR))]
Name = Annotated[str | None, Query(max_length=200)]


def can_read_usage(account: Account, operator: str) -> bool:
    """Rule: administrators and auditors read every operator's usage; an operator its own."""
    return account.has(Role.ADMIN, Role.AUDITOR) or account.name == operator


def check_read_usage(account: Account, operator: str) -> None:
    """Raise :class:`MeteringForbidden` unless :func:`can_read_usage`."""
    if not can_read_usage(account, operator):
        raise MeteringForbidden("an operator reads its own usage only")


def usage_operator(account: Account, operator: str | None) -> str | None:
    """The operator whose usage the caller reads: the one named, or (an operator's
    only choice) the caller itself; None for all of them."""
    if account.has(Role.ADMIN, Role.AUDITOR):
        return operator
    check_read_usage(account, operator or account.name)
    return account.name


@router.get("")
def metering(
    account: Reader,
    conn: Annotated[Connection, Depends(read)],
    period: Annotated[str, Query(max_length=40, description="2025, 2025-Q2, 2025-03 or a..b")],
    by: By = By.OPERATOR,
    operator: Name = None,
    grant: Name = None,
    product: Name = None,
) -> dict[str, Any]:
    """What jobs and encrypted calls used in ``period`` per ``by`` key (``gateway.metering.usage``
    says how each figure is measured), with the totals of the rows."""
    try:
        span = Period.parse(period)
    except PeriodError as e:
        raise MeteringError(str(e)) from e
    whose = usage_operator(account, operator)
    rows = totals(conn, span, by, operator=whose, grant=grant, product=product)
    return {
        "period": span.label,
        "by": by.value,
        "rows": [{"key": r.key, **r.figures()} for r in rows],
        "totals": overall(rows).figures(),
    }
