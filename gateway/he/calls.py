"""Privacy-computing products, the consumer's side: contexts and calls (gateway side).

Stage: using a released product (after data flow step 6). :class:`Calls` is
mixed into :class:`gateway.he.service.HEService`; its methods use the
service's store, grants, limits, contexts, tables and evaluator.

Invariants:

- A consumer's public context is checked before it is stored; a refused one
  is audited (``he.context``) and never kept.
- A call answers only for a consumer the product lists, under an active
  grant, for an approved product (which follows its grant first), with the
  consumer's own context of the product's kind, within the rate limits.
- Every call is audited (``he.call``: consumer, product, context id, bucket,
  outcome; never a ciphertext, and no plaintext exists here) and counted by
  the rate limits, refusals included.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.errors import GatewayError
from gateway.grants.errors import GrantInactive
from gateway.grants.service import GrantService
from gateway.he.build import TableCache, verification_table
from gateway.he.contexts import ContextStore, input_error
from gateway.he.errors import HEConflict, HEForbidden, HEProductError
from gateway.he.limits import Limits, settle, take
from gateway.he.model import HEProduct, Kind, State, follow_grant, get_product
from gateway.he.sandboxed import Evaluator
from gateway.organisations.consumption import check_may_consume
from gateway.pricing.service import charge_he_call
from gateway.products.service import check_offered
from gateway.store.lifecycle import Clock
from sandbox.container.he import score
from sandbox.container.he.errors import HEInputError
from sandbox.container.he.protocol import VerificationQuery
from sandbox.errors import SandboxError
from sandbox.views.build import Grant, ViewBuilder


class _Service(Protocol):
    """What :class:`Calls` uses of the privacy-computing service."""

    engine: Engine
    grants: GrantService
    views: ViewBuilder
    limits: Limits
    contexts: ContextStore
    tables: TableCache

    @property
    def clock(self) -> Clock: ...

    @property
    def _evaluator(self) -> Evaluator: ...

    def _usable_grant(self, conn: Connection, consumer: str, product: HEProduct) -> Grant: ...

    def _evaluate(
        self, product: HEProduct, grant: Grant, context_id: str, query: bytes, bucket: int | None
    ) -> bytes: ...

    def _view_key(self, grant: Grant, spec: dict[str, Any]) -> tuple[str, str]: ...


class Calls:
    """Contexts and calls (see the module docstring)."""

    # -- contexts ---------------------------------------------------------------------

    def register_context(self: _Service, consumer: str, kind: Kind, data: bytes) -> dict[str, Any]:
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

    def refuse_call(self: _Service, consumer: str, product_id: str, error: GatewayError) -> None:
        """Audit a call refused before it reached :meth:`call` (a body over its cap)."""
        with self.engine.begin() as conn:
            detail = {"product": product_id, "outcome": type(error).__name__}
            append(conn, "he.call", consumer, detail=detail)

    # -- calls ------------------------------------------------------------------------

    def call(
        self: _Service,
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
                check_may_consume(conn, product.operator, consumer)  # 001 art. 20
                if product.kind != kind:
                    raise HEProductError(f"product {product_id} is a {product.kind} product")
                product = follow_grant(conn, product, self.clock)
                grant = self._usable_grant(conn, consumer, product)
                if product.state != State.APPROVED:
                    raise HEConflict(f"product {product_id} is {product.state}: it cannot answer")
                check_offered(conn, product_id, self.clock())  # registered first (001, art. 9)
                self.contexts.owned(conn, context_id, consumer, product.kind)
                call_id = take(conn, self.limits, product_id, consumer, self.clock())
                refusal: GatewayError | None = None
            except (GatewayError, SandboxError) as e:
                refusal = e if isinstance(e, GatewayError) else HEProductError(str(e))
                outcome = type(refusal).__name__
                append(conn, "he.call", consumer, detail=base | {"outcome": outcome})
        if refusal is not None:
            raise refusal
        answer = b""
        failure: Exception | None = None
        evaluating = time.perf_counter()  # metering: he_calls.eval_ms (gateway.metering)
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
            settle(conn, call_id, outcome[:24], (time.perf_counter() - evaluating) * 1000)
            if failure is None:  # an answer of a chargeable product is charged (gateway.pricing)
                charge_he_call(conn, product_id, consumer, call_id, self.clock())
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

    def _usable_grant(self: _Service, conn: Connection, consumer: str, product: HEProduct) -> Grant:
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
        self: _Service,
        product: HEProduct,
        grant: Grant,
        context_id: str,
        query: bytes,
        bucket: int | None,
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
