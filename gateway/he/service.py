"""Privacy-computing products: definition, approval, and calls (gateway side).

Definition (an operator, under an active grant it holds):

- ``verify``: a band (or a yes/no threshold) over one column of the grant's
  view of a dataset, keyed by the dataset's subject (its entity column). The
  value column is decided by the scope policy exactly as a job's columns
  are (``ScopePolicy.decide_many``, action ``read``) and must not be a
  ``hidden`` or ``join_key`` column: a refusal is a denied ``scope.decision``
  (audited) and 403. The table is built once at definition (so a definition
  that cannot be answered is refused at once) and again lazily after a
  restart (``gateway.he.build``).
- ``score``: a linear model from a *released* job of the operator, under the
  same grant: a model the job published (``publish_model``, fitted by the
  trusted side, or ``publish_model_summary`` approved by a reviewer; so the
  coefficients passed the output checks, degrees of freedom included), read
  through the audited download path, with the operator's feature order.

A reviewer who is not the definer approves or denies once
(``gateway.he.model``). Contexts and calls are ``gateway.he.calls`` (mixed
in here). Time comes from the service's clock (``clock``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.errors import GatewayError
from gateway.grants.errors import GrantError
from gateway.grants.service import GrantService
from gateway.he.build import TableCache, verification_table
from gateway.he.calls import Calls
from gateway.he.contexts import ContextStore
from gateway.he.errors import HEConflict, HEForbidden, HEProductError
from gateway.he.limits import Limits
from gateway.he.model import (
    HEProduct,
    Kind,
    State,
    create_product,
    follow_grant,
    get_product,
    transition,
)
from gateway.he.sandboxed import Evaluator, InProcess
from gateway.identity import Role, UnknownAccount, get_account
from gateway.jobs.model import State as JobState
from gateway.jobs.model import get_job
from gateway.jobs.service import Files, download
from gateway.organisations.consumption import refuse_self_consumers
from gateway.scope.objects import column_object, dataset_object
from gateway.store.lifecycle import Clock, system_clock
from gateway.store.tables import grants
from sandbox.container.he import score
from sandbox.errors import SandboxError
from sandbox.intake.policy import Visibility
from sandbox.views.build import Grant, ViewBuilder

REFUSED_COLUMN = (Visibility.HIDDEN, Visibility.JOIN_KEY)
INTERCEPT_TERMS = ("const", "Intercept", "intercept")


@dataclass
class HEService(Calls):
    engine: Engine
    grants: GrantService
    views: ViewBuilder
    files: Files
    limits: Limits
    contexts: ContextStore
    tables: TableCache = field(default_factory=TableCache)
    evaluator: Evaluator | None = None
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if self.evaluator is None:
            self.evaluator = InProcess(self.contexts)

    # -- definition -------------------------------------------------------------

    def _grant(self, conn: Connection, operator: str, grant_id: str) -> Grant:
        """The grant, if ``operator`` holds it and it is active (the caller audits refusals)."""
        record = self.grants.get(conn, grant_id)
        if record.operator != operator:
            raise HEForbidden(f"grant {grant_id} is not held by {operator}")
        return self.grants.active_grant(conn, grant_id)

    def _refuse(self, operator: str, grant_id: str, datasets: Sequence[str], detail: Any) -> None:
        with self.engine.begin() as conn:
            append(
                conn,
                "scope.decision",
                operator,
                grant_id=grant_id,
                datasets=datasets,
                detail=detail,
            )

    def define_verify(
        self,
        operator: str,
        *,
        name: str,
        grant_id: str,
        dataset: str,
        subject_column: str | None,
        value_column: str,
        boundaries: Sequence[float],
        consumers: Sequence[str],
    ) -> HEProduct:
        product_id = "hp-" + secrets.token_hex(8)
        grant = self._usable(operator, grant_id, product_id, [dataset])
        scope = next((s for s in grant.scopes if s.dataset == dataset), None)
        policy = self.grants.policies.get(dataset).policy if scope is not None else None
        objects = [dataset_object(dataset), column_object(dataset, value_column)]
        decisions = self.grants.scope.decide_many(operator, grant_id, objects, "read")
        denied = [d for d in decisions if not d.allowed]
        reason = [list(d.reason) for d in denied] or [["every object allowed by the grant's lines"]]
        column = policy.columns.get(value_column) if policy is not None else None
        if not denied and column is not None and column.visibility in REFUSED_COLUMN:
            reason = [[f"{value_column} is {column.visibility.value} in the exposure policy"]]
            denied = decisions[1:]
        detail = {
            "he_product": product_id,
            "action": "read",
            "allowed": not denied,
            "objects": objects,
            "denied": [d.object for d in denied],
            "reason": reason,
        }
        if denied:
            self._refuse(operator, grant_id, [dataset], detail)
            raise HEForbidden(
                f"column {dataset}.{value_column} cannot be used by a product under grant "
                f"{grant_id}: {'; '.join(', '.join(r) for r in reason)}"
            )
        assert policy is not None
        if subject_column not in (None, policy.entity_column):
            raise HEProductError(
                f"the subject of {dataset!r} is its entity column {policy.entity_column!r}"
            )
        spec: dict[str, Any] = {
            "dataset": dataset,
            "subject_column": policy.entity_column,
            "value_column": value_column,
            "boundaries": [float(b) for b in boundaries],
        }
        table, key = verification_table(self.views, grant, product_id, spec)
        spec |= {"bucket_bits": table.bucket_bits, "subjects": table.subjects}
        self.tables.get(product_id, key, lambda: table)
        return self._create(
            Kind.VERIFY, product_id, name, operator, grant_id, (dataset,), spec, consumers, detail
        )

    def define_score(
        self,
        operator: str,
        *,
        name: str,
        grant_id: str,
        job_id: str,
        file: str,
        features: Sequence[str],
        intercept_term: str | None,
        resolution: float | None,
        consumers: Sequence[str],
    ) -> HEProduct:
        product_id = "hp-" + secrets.token_hex(8)
        self._usable(operator, grant_id, product_id, [])
        with self.engine.begin() as conn:
            job = get_job(conn, job_id)
            if job.operator != operator:
                raise HEForbidden(f"job {job_id} was submitted by another operator")
            if job.state != JobState.RELEASED:
                raise HEConflict(f"job {job_id} is {job.state}: only a released model can serve")
            if job.grant_id != grant_id:
                raise HEProductError(f"job {job_id} ran under another grant than {grant_id}")
            content = download(conn, self.files, job, file, actor=operator)
        try:
            document = json.loads(content)
            terms: dict[str, float] = dict(document["coefficients"])
        except (ValueError, TypeError, KeyError) as e:
            raise HEProductError(f"{file} is not a published model (publish_model)") from e
        if intercept_term is None:
            intercept_term = next((t for t in INTERCEPT_TERMS if t in terms), None)
        expected = set(terms) - {intercept_term}
        if len(set(features)) != len(features) or set(features) != expected:
            raise HEProductError(
                "features must list every term of the model except the intercept, once each: "
                + ", ".join(sorted(expected))
            )
        try:
            model = score.LinearModel.of(
                [terms[f] for f in features],
                terms[intercept_term] if intercept_term else 0.0,
                **({} if resolution is None else {"resolution": resolution}),
            )
        except SandboxError as e:
            raise HEProductError(f"the model cannot serve: {e}") from e
        spec = {
            "job": job_id,
            "file": file,
            "model_kind": str(document.get("kind", "")),
            "features": list(features),
            "intercept_term": intercept_term,
            "coefficients": list(model.coefficients),
            "intercept": model.intercept,
            "resolution": model.resolution,
        }
        detail = {"job": job_id, "file": file, "features": len(features)}
        return self._create(
            Kind.SCORE, product_id, name, operator, grant_id, job.datasets, spec, consumers, detail
        )

    def _usable(
        self, operator: str, grant_id: str, product_id: str, datasets: Sequence[str]
    ) -> Grant:
        """The grant for a definition; a refusal is a denied ``scope.decision``."""
        with self.engine.begin() as conn:
            try:
                return self._grant(conn, operator, grant_id)
            except (GrantError, HEForbidden) as e:
                refusal: GatewayError = e
                known = conn.execute(sa.select(grants.c.id).where(grants.c.id == grant_id))
                if known.first() is not None:
                    append(
                        conn,
                        "scope.decision",
                        operator,
                        grant_id=grant_id,
                        datasets=datasets,
                        detail={"he_product": product_id, "allowed": False, "reason": [str(e)]},
                    )
        raise refusal

    def _create(
        self,
        kind: Kind,
        product_id: str,
        name: str,
        operator: str,
        grant_id: str,
        datasets: Sequence[str],
        spec: dict[str, Any],
        consumers: Sequence[str],
        detail: dict[str, Any],
    ) -> HEProduct:
        refuse_self_consumers(self.engine, operator, consumers, product_id=product_id,
                              grant_id=grant_id, datasets=datasets)  # fmt: skip
        now = self.clock()
        with self.engine.begin() as conn:
            for consumer in consumers:
                try:
                    account = get_account(conn, consumer)
                except UnknownAccount as e:
                    raise HEProductError(str(e)) from e
                if Role.CONSUMER not in account.roles:
                    raise HEProductError(f"{consumer!r} is not a consumer account")
            if kind == Kind.VERIFY:
                append(
                    conn,
                    "scope.decision",
                    operator,
                    grant_id=grant_id,
                    datasets=datasets,
                    detail=detail,
                )
            product = HEProduct(
                product_id,
                kind,
                name,
                operator,
                grant_id,
                tuple(sorted(datasets)),
                spec,
                tuple(sorted(set(consumers))),
                State.PENDING,
                now,
                now,
                "defined",
            )
            public = {k: v for k, v in spec.items() if k not in ("coefficients", "intercept")}
            create_product(conn, product, detail={"spec": public})
            return get_product(conn, product_id)

    # -- approval and withdrawal -------------------------------------------------------

    def decide(self, reviewer: str, product_id: str, approve: bool, reason: str) -> HEProduct:
        """Rule: a reviewer other than the definer approves or denies a pending product once."""
        with self.engine.begin() as conn:
            product = follow_grant(conn, get_product(conn, product_id), self.clock)
            if product.operator == reviewer:
                raise HEForbidden("the definer of a product cannot decide on it")
            if product.state != State.PENDING:
                raise HEConflict(f"product {product_id} is {product.state}, not pending approval")
            to = State.APPROVED if approve else State.DENIED
            return transition(conn, product_id, to, actor=reviewer, reason=reason, clock=self.clock)

    def withdraw(self, operator: str, product_id: str, reason: str) -> HEProduct:
        """Rule: only a product's operator withdraws it; withdrawn is final."""
        with self.engine.begin() as conn:
            product = get_product(conn, product_id)
            if product.operator != operator:
                raise HEForbidden(f"product {product_id} is another operator's")
            done = transition(
                conn, product_id, State.WITHDRAWN, actor=operator, reason=reason, clock=self.clock
            )
        self.tables.drop(product_id)
        self._evaluator.forget(product_id)
        return done

    @property
    def _evaluator(self) -> Evaluator:
        assert self.evaluator is not None  # set in __post_init__
        return self.evaluator

    def _view_key(self, grant: Grant, spec: dict[str, Any]) -> tuple[str, str]:
        try:
            return spec["dataset"], self.views.cache_key(grant)
        except SandboxError as e:
            raise HEConflict(f"the grant's view cannot be built: {e}") from e


def work_dir(app_state: Any) -> Path:
    runtime = getattr(app_state, "runtime", None)
    return Path(runtime.work_dir) if runtime is not None else app_state.settings.data_dir / "work"
