"""Report routes: the operator's annual report, the agency's disclosure, a provider's
usage report, each for any period, as JSON, CSV, HTML or PDF (``gateway.reports``).

Who (deny by default): the operator reads its own report, the provider its own;
administrators and auditors read every report, and only they the disclosure (its
facts are public anyway, on the portal). Another subject's report is a 403 before
the subject is looked up, so a refusal says nothing of who exists; an unknown subject
is a 404 for those who may read every report. A bad period, format or language is a
422. Every report made is audited (``report.generated``: kind, period, format,
language, subject, the SHA-256 of the bytes served), after it is built and before it
is sent.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from gateway.audit import append
from gateway.auth import engine_of, requires
from gateway.identity import Account, Role
from gateway.periods import Period, PeriodError
from gateway.reports import disclosure as disclosure_model
from gateway.reports import operator as operator_model
from gateway.reports import provider as provider_model
from gateway.reports.errors import ReportError, ReportForbidden, UnknownSubject
from gateway.reports.formats import MEDIA_TYPES, Format, rendered
from gateway.reports.model import Report
from gateway.store import read_transaction
from gateway.store.tables import accounts

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Lang = Literal["zh-CN", "en"]
PeriodQuery = Annotated[str, Query(max_length=40, description="2025, 2025-Q2, 2025-03 or a..b")]
OperatorReader = Annotated[Account, Depends(requires(Role.OPERATOR, Role.ADMIN, Role.AUDITOR))]
ProviderReader = Annotated[Account, Depends(requires(Role.PROVIDER, Role.ADMIN, Role.AUDITOR))]
AgencyReader = Annotated[Account, Depends(requires(Role.ADMIN, Role.AUDITOR))]


def parse_period(text: str) -> Period:
    try:
        return Period.parse(text)
    except PeriodError as e:
        raise ReportError(str(e)) from e


def can_read(account: Account, subject: str) -> bool:
    """Rule: a subject reads its own report; administrators and auditors every report."""
    return account.has(Role.ADMIN, Role.AUDITOR) or account.name == subject


def check_read(account: Account, subject: str, kind: str) -> None:
    """Raise :class:`ReportForbidden` unless :func:`can_read`."""
    if not can_read(account, subject):
        raise ReportForbidden(f"only {subject} itself, an administrator or an auditor reads "
                              f"this {kind} report")  # fmt: skip


def check_subject(conn: Connection, name: str, role: Role) -> None:
    """Raise :class:`UnknownSubject` unless an account ``name`` holds ``role``."""
    roles = conn.execute(sa.select(accounts.c.roles).where(accounts.c.name == name)).scalar()
    if roles is None or role.value not in roles:
        raise UnknownSubject(f"no {role.value} named {name!r}")


def provider_datasets(request: Request, name: str) -> list[str]:
    """The datasets ``name`` registered (the registry records every version's provider)."""
    registry = request.app.state.registry
    return [d for d in registry.names() if any(v.provider == name for v in registry.versions(d))]


def serve(
    request: Request, account: Account, report: Report, format: Format, lang: str
) -> Response:
    """The report's bytes, audited (``report.generated``) before they are sent."""
    body = rendered(report, format, lang)
    detail = {"kind": report.kind, "period": report.period.label, "format": format,
              "lang": lang, "subject": report.subject,
              "sha256": hashlib.sha256(body).hexdigest()}  # fmt: skip
    with engine_of(request).begin() as conn:
        append(conn, "report.generated", account.name, detail=detail)
    name = f"{report.kind}-{report.subject or 'agency'}-{report.period.label}.{format}"
    headers = {"Content-Disposition": f'inline; filename="{name}"'}
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)


@router.get("/operator/{operator}")
def operator_report(
    operator: str,
    account: OperatorReader,
    request: Request,
    period: PeriodQuery,
    format: Format = "json",
    lang: Lang = "zh-CN",
) -> Response:
    """The operator's annual operating report (001 art. 35): products, jobs, data used,
    reviews, incidents and security events of the period, from the audit log."""
    check_read(account, operator, "operator")
    span = parse_period(period)
    with read_transaction(engine_of(request)) as conn:
        check_subject(conn, operator, Role.OPERATOR)
        report = operator_model.build(conn, operator, span, request.app.state.clock())
    return serve(request, account, report, format, lang)


@router.get("/provider/{provider}")
def provider_report(
    provider: str,
    account: ProviderReader,
    request: Request,
    period: PeriodQuery,
    format: Format = "json",
    lang: Lang = "zh-CN",
) -> Response:
    """A provider's usage report: per dataset of the provider, which operators used it,
    under which grant, how often (per month) and for which products."""
    check_read(account, provider, "provider")
    span = parse_period(period)
    with read_transaction(engine_of(request)) as conn:
        check_subject(conn, provider, Role.PROVIDER)
        datasets = provider_datasets(request, provider)
        report = provider_model.build(conn, provider, datasets, span, request.app.state.clock())
    return serve(request, account, report, format, lang)


@router.get("/disclosure")
def disclosure_report(
    account: AgencyReader,
    request: Request,
    period: PeriodQuery,
    format: Format = "json",
    lang: Lang = "zh-CN",
) -> Response:
    """The implementing agency's disclosure (001 art. 24, 25; 004 art. 30): grantees with
    content, scope and term; the product list in its two classes; the use of the data."""
    span = parse_period(period)
    with read_transaction(engine_of(request)) as conn:
        report = disclosure_model.build(conn, span, request.app.state.clock())
    return serve(request, account, report, format, lang)
