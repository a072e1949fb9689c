"""What a job uses and whether its grant allows it: at submission, at release, at download.

Stage 1 of the data flow on the gateway's side, and its repetition before
anything leaves. :func:`lineage` computes what a job will use (a Python job:
every column of the grant, action ``read``; SQL: the checked query's views
and columns, action ``aggregate``) and what the static SQL check refused;
:func:`scope_detail` is the audited ``scope.decision`` of the scope policy's
answer. At release (:func:`release_scope`) the lineage is taken again and
decided against the grant's lines then; at a download or a product's use
(:func:`grant_refusal`) the grant must still resolve.

Invariants:
- A grant that cannot be used and a scope denial are audited as a denied
  ``scope.decision`` with the reason, in the caller's transaction (or, for
  :func:`usable_grant`, one of its own that commits before the refusal is
  raised).
- The audit detail lists at most ``MAX_OBJECTS_AUDITED`` objects and findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit import append
from gateway.errors import GatewayError
from gateway.grants.errors import GrantError
from gateway.jobs.errors import Forbidden, GrantUnavailable, NotConfigured
from gateway.jobs.model import Job
from gateway.scope.errors import ScopeDenied
from gateway.scope.objects import Decision
from gateway.scope.policy import ScopePolicy
from gateway.store.tables import grants
from sandbox.errors import SandboxError, ScreenRejected, SqlRejected
from sandbox.precheck.sql import check_sql
from sandbox.views.build import Grant, ViewBuilder

GrantResolver = Callable[[Connection, str], Grant]
MAX_OBJECTS_AUDITED = 200


def resolve_grant(resolver: GrantResolver | None, conn: Connection, grant_id: str) -> Grant:
    """The grant as the sandbox needs it. The grant service's refusals pass as they are
    (``UnknownGrant``, ``GrantInactive``); another resolver's become ``GrantUnavailable``."""
    if resolver is None:
        raise NotConfigured("the gateway has no grant resolver")
    try:
        return resolver(conn, grant_id)
    except (GatewayError, SQLAlchemyError):
        raise  # a store failure is the gateway's, not the grant's: never in a message
    except Exception as e:  # another resolver's refusal: unknown, suspended, revoked, expired
        raise GrantUnavailable(f"grant {grant_id!r} cannot be used: {e}") from e


@dataclass(frozen=True)
class RefusedRule:
    """One finding of the static checks, as the audit log keeps it: the rule id and
    where it applies (an SQL clause, or a line of Python)."""

    rule: str
    clause: str | None = None
    line: int | None = None
    python: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.python:
            return {"rule": self.rule, "line": self.line}
        return {"rule": self.rule, "clause": self.clause}


@dataclass(frozen=True)
class Findings:
    """What the static checks refused: a message per finding for the operator, and
    the rules with where they apply for the audit log."""

    messages: tuple[str, ...]
    rules: tuple[RefusedRule, ...]

    @classmethod
    def of_sql(cls, e: SqlRejected) -> Findings:
        return cls(
            tuple(f"{r.message} [{r.rule}]" for r in e.rejections),
            tuple(RefusedRule(r.rule, clause=r.clause) for r in e.rejections),
        )

    @classmethod
    def of_python(cls, e: ScreenRejected) -> Findings:
        return cls(
            tuple(str(f) for f in e.findings),
            tuple(RefusedRule(f.rule, line=f.line, python=True) for f in e.findings),
        )

    def audited(self) -> list[dict[str, Any]]:
        """The rules as the ``job.refused`` event lists them (at most ``MAX_OBJECTS_AUDITED``)."""
        return [r.to_json() for r in self.rules[:MAX_OBJECTS_AUDITED]]


def lineage(
    grant: Grant, kind: str, code: str, views: ViewBuilder | None
) -> tuple[list[tuple[str, str | None]], str, Findings | None]:
    """What the job uses, the scope action, and what the SQL check refused (if anything)."""
    if kind == "python":
        columns: list[tuple[str, str | None]] = [
            (s.dataset, c) for s in grant.scopes for c in s.columns
        ]
        return columns, "read", None
    if views is None:
        raise NotConfigured("the gateway has no sandbox pipeline")
    try:
        policies = {s.dataset: p.policy for s, _, p in views.resolve(grant)}
    except SandboxError as e:
        raise GrantUnavailable(f"the grant's datasets cannot be resolved: {e}") from e
    try:
        checked = check_sql(code, policies)
    except SqlRejected as e:
        return [], "aggregate", Findings.of_sql(e)
    used: list[tuple[str, str | None]] = [(v, None) for v in checked.views]
    used += list(checked.columns)
    return used, "aggregate", None


def scope_detail(job_id: str, action: str, decisions: Sequence[Decision]) -> dict[str, Any]:
    denied = [d for d in decisions if not d.allowed]
    reason = list(denied[0].reason) if denied else ["every object allowed by the grant's lines"]
    if not decisions:
        reason = ["nothing to check: denied by default"]
    return {
        "job": job_id,
        "action": action,
        "allowed": bool(decisions) and not denied,
        "requested": len(decisions),
        "objects": [d.object for d in decisions[:MAX_OBJECTS_AUDITED]],
        "denied": [
            {"object": d.object, "reason": list(d.reason)} for d in denied[:MAX_OBJECTS_AUDITED]
        ],
        "reason": reason,
    }


def usable_grant(
    engine: Engine,
    resolver: GrantResolver | None,
    operator: str,
    grant_id: str,
    detail: dict[str, Any],
) -> Grant:
    """The grant, if ``operator`` may use it now; else the refusal, audited and raised."""
    with engine.begin() as conn:
        try:
            grant = resolve_grant(resolver, conn, grant_id)
            if grant.operator != operator or grant.grant_id != grant_id:
                raise Forbidden(f"grant {grant_id!r} is not held by {operator}")
            return grant
        except (GrantError, GrantUnavailable, Forbidden) as e:
            refusal = e
            scopes = conn.execute(sa.select(grants.c.scopes).where(grants.c.id == grant_id))
            datasets = {s["dataset"] for s in scopes.scalar() or []}
            append(
                conn,
                "scope.decision",
                operator,
                grant_id=grant_id,
                datasets=datasets,
                detail=detail | {"reason": [str(e)]},
            )
    raise refusal  # its event is committed, with whatever the resolver recorded


def release_scope(
    conn: Connection,
    scope: ScopePolicy,
    views: ViewBuilder | None,
    job: Job,
    grant: Grant,
    actor: str,
) -> bool:
    """Rule: at release, everything the job's outputs derive from is still within its grant.

    The lineage is taken again as at submission (SQL: the checked query's views and
    columns under the policies now; Python: every column of the grant now) and
    decided against the grant's lines now, so a grant narrowed, suspended or
    revoked while the job ran releases nothing. The decision is audited in
    ``conn`` (``scope.decision``, stage ``release``); a query that no longer
    passes the static checks is a denial.
    """
    used, action, findings = lineage(grant, job.kind, job.code, views)
    decisions: list[Decision] = []
    allowed = findings is None
    if allowed:
        try:
            decisions = scope.check_job_scope(job.operator, job.grant_id, used, action)
        except ScopeDenied as e:
            decisions, allowed = list(e.decisions), False
    detail = scope_detail(job.id, action, decisions) | {"stage": "release"}
    if findings is not None:
        detail["reason"] = ["the code no longer passes the static checks"]
    append(
        conn, "scope.decision", actor, grant_id=job.grant_id, datasets=job.datasets, detail=detail
    )
    return allowed


def grant_refusal(
    conn: Connection,
    resolver: GrantResolver | None,
    grant_id: str,
    *,
    actor: str,
    datasets: Sequence[str],
    detail: dict[str, Any],
) -> GatewayError | None:
    """None while the grant may be used; else the resolver's refusal (suspended, revoked,
    expired: 409), appended to ``conn`` as a denied ``scope.decision`` (``detail`` names
    the action), for the caller to raise once ``conn``'s transaction is committed."""
    try:
        resolve_grant(resolver, conn, grant_id)
    except (GrantError, GrantUnavailable) as e:
        decision = detail | {"allowed": False, "reason": [str(e)]}
        append(conn, "scope.decision", actor, grant_id=grant_id, datasets=datasets,
               detail=decision)  # fmt: skip
        return e
    return None
