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
(``gateway.he.model``). Calls: see :meth:`HEService.call`. Every call is
audited (``he.call``: consumer, product, context id, bucket, outcome; never
a ciphertext, and no plaintext exists here) and counted by the rate limits.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.errors import GatewayError
from gateway.grants.errors import GrantError, GrantInactive
from gateway.grants.service import GrantService
from gateway.he.build import TableCache, verification_table
from gateway.he.contexts import ContextStore, input_error
from gateway.he.errors import HEConflict, HEForbidden, HEProductError
from gateway.he.limits import Limits, settle, take
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
from gateway.scope import column_object, dataset_object
from gateway.store.tables import grants
from sandbox.errors import SandboxError
from sandbox.he import score
from sandbox.he.errors import HEInputError
from sandbox.he.protocol import VerificationQuery
from sandbox.policy import Visibility
from sandbox.views import Grant, ViewBuilder

REFUSED_COLUMN = (Visibility.HIDDEN, Visibility.JOIN_KEY)
INTERCEPT_TERMS = ("const", "Intercept", "intercept")


@dataclass
class HEService:
    engine: Engine
    grants: GrantService
    views: ViewBuilder
    files: Files
    limits: Limits
    contexts: ContextStore
    tables: TableCache = field(default_factory=TableCache)
    evaluator: Evaluator | None = None

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
        now = datetime.now(UTC)
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
            product = follow_grant(conn, get_product(conn, product_id))
            if product.operator == reviewer:
                raise HEForbidden("the definer of a product cannot decide on it")
            if product.state != State.PENDING:
                raise HEConflict(f"product {product_id} is {product.state}, not pending approval")
            to = State.APPROVED if approve else State.DENIED
            return transition(conn, product_id, to, actor=reviewer, reason=reason)

    def withdraw(self, operator: str, product_id: str, reason: str) -> HEProduct:
        """Rule: only a product's operator withdraws it; withdrawn is final."""
        with self.engine.begin() as conn:
            product = get_product(conn, product_id)
            if product.operator != operator:
                raise HEForbidden(f"product {product_id} is another operator's")
            done = transition(conn, product_id, State.WITHDRAWN, actor=operator, reason=reason)
        self.tables.drop(product_id)
        self._evaluator.forget(product_id)
        return done

    # -- contexts ---------------------------------------------------------------------

    def register_context(self, consumer: str, kind: Kind, data: bytes) -> dict[str, Any]:
        """Check and store a consumer's public context; refused ones are audited, never kept."""
        try:
            checked = self._evaluator.check_context(kind, data)
        except HEProductError as e:
            with self.engine.begin() as conn:
                append(
                    conn,
                    "he.context",
                    consumer,
                    detail={
                        "kind": kind.value,
                        "bytes": len(data),
                        "outcome": "refused",
                        "reason": type(e.__cause__ or e).__name__,
                    },
                )
            raise
        with self.engine.begin() as conn:
            row = self.contexts.save(conn, consumer, kind, data, checked)
            event = {k: row[k] for k in ("kind", "sha256", "bytes")}
            append(
                conn,
                "he.context",
                consumer,
                detail={"context": row["id"], "outcome": "registered"} | event,
            )
        return row

    def refuse_call(self, consumer: str, product_id: str, error: GatewayError) -> None:
        """Audit a call refused before it reached :meth:`call` (a body over its cap)."""
        with self.engine.begin() as conn:
            detail = {"product": product_id, "outcome": type(error).__name__}
            append(conn, "he.call", consumer, detail=detail)

    # -- calls ------------------------------------------------------------------------

    def call(
        self,
        consumer: str,
        product_id: str,
        context_id: str,
        query: bytes,
        bucket: int | None,
        kind: Kind,
    ) -> bytes:
        """One call: checked, counted, evaluated, audited.

        Before evaluating: the product lists the consumer (403), its grant is
        active (409; also a denied ``scope.decision``), it follows its grant and
        is approved (409), the context is the consumer's and of the product's kind
        (404/422), and the rate limits have room (429). Every refusal and every
        answer is one ``he.call`` event.
        """
        base = {"product": product_id, "context": context_id, "bytes_in": len(query)}
        if bucket is not None:
            base["bucket"] = bucket
        with self.engine.begin() as conn:
            try:
                product = get_product(conn, product_id)
                if consumer not in product.consumers:
                    raise HEForbidden(f"product {product_id} is not offered to {consumer}")
                if product.kind != kind:
                    raise HEProductError(f"product {product_id} is a {product.kind} product")
                product = follow_grant(conn, product)
                grant = self._usable_grant(conn, consumer, product)
                if product.state != State.APPROVED:
                    raise HEConflict(f"product {product_id} is {product.state}: it cannot answer")
                self.contexts.owned(conn, context_id, consumer, product.kind)
                call_id = take(conn, self.limits, product_id, consumer)
                refusal: GatewayError | None = None
            except (GatewayError, SandboxError) as e:
                refusal = e if isinstance(e, GatewayError) else HEProductError(str(e))
                outcome = type(refusal).__name__
                append(conn, "he.call", consumer, detail=base | {"outcome": outcome})
        if refusal is not None:
            raise refusal
        answer = b""
        failure: Exception | None = None
        try:
            answer = self._evaluate(product, grant, context_id, query, bucket)
            outcome = "answered"
        except HEInputError as e:
            failure, outcome = input_error(e), type(e).__name__
        except GatewayError as e:
            failure, outcome = e, type(e).__name__
        except SandboxError as e:
            failure, outcome = HEConflict(f"the product cannot answer now: {e}"), type(e).__name__
        except Exception as e:  # recorded and audited, then the gateway's 500
            failure, outcome = e, "internal_error"
        with self.engine.begin() as conn:
            settle(conn, call_id, outcome[:24])
            detail = base | {"kind": product.kind.value, "call": call_id, "outcome": outcome}
            if product.kind == Kind.VERIFY:
                detail["bucket_bits"] = int(product.spec["bucket_bits"])
            append(
                conn,
                "he.call",
                consumer,
                grant_id=product.grant_id,
                datasets=product.datasets,
                detail=detail | {"bytes_out": len(answer)},
            )
        if failure is not None:
            raise failure
        return answer

    def _usable_grant(self, conn: Connection, consumer: str, product: HEProduct) -> Grant:
        """The product's grant, if it may be used now. Rule: a stop stops calls too; the
        refusal is a denied ``scope.decision`` in ``conn`` (committed with the call's
        ``he.call`` event) and an HEConflict that names no grant (a consumer's message)."""
        try:
            return self.grants.active_grant(conn, product.grant_id)
        except GrantInactive as e:
            detail = {"he_product": product.id, "action": f"he.{product.kind.value}"}
            append(conn, "scope.decision", consumer, grant_id=product.grant_id,
                   datasets=product.datasets,
                   detail=detail | {"allowed": False, "reason": [str(e)]})  # fmt: skip
            raise HEConflict(f"product {product.id} cannot answer: its grant is not active") from e

    def _evaluate(
        self, product: HEProduct, grant: Grant, context_id: str, query: bytes, bucket: int | None
    ) -> bytes:
        spec = product.spec
        if product.kind == Kind.SCORE:
            model = score.LinearModel(
                tuple(spec["coefficients"]), float(spec["intercept"]), float(spec["resolution"])
            )
            return self._evaluator.evaluate_score(product.id, model, context_id, query)
        if bucket is None:
            raise HEProductError("a verification call names its bucket")
        _, key = self._view_key(grant, spec)
        table = self.tables.get(
            product.id, key, lambda: verification_table(self.views, grant, product.id, spec)[0]
        )
        request = VerificationQuery(product.id, int(spec["bucket_bits"]), bucket, query)
        return self._evaluator.evaluate_verify(table, key, context_id, request)

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
