"""Reports: ``dsr reports operator NAME | disclosure | provider NAME --period P
[--format json|csv|html|pdf] [--lang zh-CN|en] [--out FILE]``.

The operator's annual operating report, the implementing agency's disclosure and a
provider's usage report (``gateway.reports``), fetched from the gateway as they are
served (every one audited there as ``report.generated``). ``--out`` writes the bytes to
a file; without it JSON, CSV and HTML go to stdout and a PDF is refused (binary on a
terminal). The period is ``2025``, ``2025-Q2``, ``2025-03`` or ``2025-01-01..2025-06-30``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gateway.client.errors import UsageError
from gateway.client.http import q, save
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import session

reports_app = client_group("Reports: the operator's annual report, the disclosure, usage.")


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"
    PDF = "pdf"


class Lang(StrEnum):
    ZH = "zh-CN"
    EN = "en"


PeriodOpt = Annotated[str, typer.Option(help="2025, 2025-Q2, 2025-03 or 2025-01-01..2025-06-30")]
FormatOpt = Annotated[ReportFormat, typer.Option("--format", help="json, csv, html or pdf")]
LangOpt = Annotated[Lang, typer.Option(help="zh-CN (default) or en, for html and pdf")]
OutOpt = Annotated[Path | None, typer.Option(help="write it here (default: stdout)")]


def _fetch(
    ctx: typer.Context, path: str, period: str, format: ReportFormat, lang: Lang, out: Path | None
) -> None:
    gw = client_context(ctx)
    with session(gw) as api:
        if out is None and format is ReportFormat.PDF:
            raise UsageError("a PDF needs --out FILE")
        content = api.download(path, period=period, format=format.value, lang=lang.value)
        if out is not None:
            save(out, content)
            typer.echo(f"wrote {out} ({len(content):,} bytes)", err=True)
            return
    sys.stdout.write(content.decode("utf-8-sig"))


@reports_app.command("operator")
@gateway_options(json=False)
def operator(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the operator's account name")],
    period: PeriodOpt,
    format: FormatOpt = ReportFormat.JSON,
    lang: LangOpt = Lang.ZH,
    out: OutOpt = None,
) -> None:
    """The operator's annual operating report (the operator itself, administrators,
    auditors)."""
    _fetch(ctx, f"/v1/reports/operator/{q(name)}", period, format, lang, out)


@reports_app.command("provider")
@gateway_options(json=False)
def provider(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the provider's account name")],
    period: PeriodOpt,
    format: FormatOpt = ReportFormat.JSON,
    lang: LangOpt = Lang.ZH,
    out: OutOpt = None,
) -> None:
    """A provider's usage report (the provider itself, administrators, auditors)."""
    _fetch(ctx, f"/v1/reports/provider/{q(name)}", period, format, lang, out)


@reports_app.command("disclosure")
@gateway_options(json=False)
def disclosure(
    ctx: typer.Context,
    period: PeriodOpt,
    format: FormatOpt = ReportFormat.JSON,
    lang: LangOpt = Lang.ZH,
    out: OutOpt = None,
) -> None:
    """The implementing agency's disclosure (administrators, auditors)."""
    _fetch(ctx, "/v1/reports/disclosure", period, format, lang, out)
