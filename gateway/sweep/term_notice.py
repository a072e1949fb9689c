"""The sweep task ``grants.term_notice``: three months before a grant's term ends, say so.

Stage: a grant's last months. Serves the Tiemenguan plan 003 二(二)4
(授权运营期限: 授权运营期满前3个月, 由实施机构按程序重新遴选运营机构): the
selection of the next operator starts three months before the term ends, so
the parties must know then. The operator, the providers of the grant's
datasets and the administrators are told once.

Invariants:

- A live grant's notice is due at :func:`months_before` (``valid_until``,
  :data:`NOTICE_MONTHS`): the same date and time three calendar months earlier
  (the month's last day where that date does not exist: 31 May -> 28/29
  February). From then until the term ends the sweep sends it; a grant shorter
  than three months is told at the first sweep.
- Once: the notice's key is ``grant:<id>:term-ends`` (``gateway.notices.service.notify``
  writes (key, audience) once and audits ``notice.sent`` when it wrote), so a
  second sweep, or two at once, add nothing.
- Each grant in a transaction of its own, re-read there: a grant that ended
  meanwhile is not told.
- The notice carries identifiers and dates only.
"""

from __future__ import annotations

import calendar
from datetime import datetime

from gateway.grants.model import LIVE, GrantRecord
from gateway.notices.service import ADMINISTRATORS, notify, sent, to_account
from gateway.store import read_transaction
from gateway.sweep.tasks import SweepContext, Task

NOTICE_MONTHS = 3  # 003 二(二)4
KIND = "grant.term_ends"


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months before ``moment`` (the month's last
    day where that day does not exist in it)."""
    if months < 0:
        raise ValueError("months_before counts back: months >= 0")
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def notice_key(grant_id: str) -> str:
    return f"grant:{grant_id}:term-ends"


def notice_due(grant: GrantRecord) -> datetime:
    return months_before(grant.valid_until, NOTICE_MONTHS)


def _due(grant: GrantRecord, now: datetime) -> bool:
    return grant.state in LIVE and notice_due(grant) <= now < grant.valid_until


def _tell(ctx: SweepContext, grant_id: str) -> str | None:
    with ctx.engine.begin() as conn:
        grant = ctx.grants.get(conn, grant_id)
        if not _due(grant, ctx.now):
            return None
        providers = sorted({p for d in grant.datasets if (p := ctx.grants.provider_of(d))})
        ends = grant.valid_until.isoformat(timespec="seconds")
        written = notify(
            conn,
            key=notice_key(grant.id),
            kind=KIND,
            subject=f"grant {grant.id}: its term ends {ends}",
            audiences=[to_account(grant.operator), *map(to_account, providers), ADMINISTRATORS],
            at=ctx.now,
            detail={"grant": grant.id, "operator": grant.operator, "valid_until": ends,
                    "due": notice_due(grant).isoformat(timespec="seconds")},
            grant_id=grant.id,
            datasets=grant.datasets,
        )  # fmt: skip
    return f"grant {grant.id}: its term ends {ends}; told" if written else None


def tell_terms_ending(ctx: SweepContext) -> list[str]:
    """Tell of every live grant whose term ends within three months, once; a line each."""
    with read_transaction(ctx.engine) as conn:
        due = [
            g.id
            for g in ctx.grants.find(conn, states=LIVE)
            if _due(g, ctx.now) and not sent(conn, notice_key(g.id))
        ]
    return [line for grant_id in due if (line := _tell(ctx, grant_id))]


TERM_NOTICE_TASK = Task("grants.term_notice", tell_terms_ending)
