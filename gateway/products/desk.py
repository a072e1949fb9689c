"""The registration desk: every registration action in a transaction of its own.

Built once per app (``desk_of``) from what ``create_app`` made: the store, the
grant resolver, the statutory calendar, the settings (publicity length, code
scheme) and the clock. Each method opens one transaction, takes its time from
the clock and calls :mod:`gateway.products.procedure` or
:mod:`gateway.products.service`. An application's price is checked when it is made
and set on the product when it is registered, in that transaction
(:mod:`gateway.pricing.service`).

Rule (a stop stops products too, README rule 2): applying, registering a first
registration and renewing happen only while the grant may be used; under a
suspended, revoked or expired grant they are refused (409) and audited as a
denied ``scope.decision`` (``gateway.jobs.service.grant_refusal``), committed
before the refusal is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from sqlalchemy import Connection, Engine

from gateway.costs.ledger import Rates
from gateway.jobs.service import GrantResolver, grant_refusal
from gateway.pricing import service as pricing
from gateway.pricing.basis import PricingRules
from gateway.products import objections, procedure, service
from gateway.products.model import (
    Kind,
    ObjectionRecord,
    Product,
    Registration,
    Step,
    get_registration,
)
from gateway.products.procedure import Application
from gateway.store.lifecycle import Clock
from gateway.workdays import Calendar

T = TypeVar("T")


@dataclass(frozen=True)
class Desk:
    engine: Engine
    resolver: GrantResolver | None
    calendar: Calendar
    clock: Clock
    publicity_days: int
    code_format: str
    # An application's price is checked, and set at registration (gateway.pricing).
    pricing: PricingRules
    rates: Rates

    def _while_usable(
        self,
        actor: str,
        grant_id: str,
        datasets: tuple[str, ...],
        detail: dict[str, str],
        then: Callable[[Connection], T],
    ) -> T:
        with self.engine.begin() as conn:
            refusal = grant_refusal(
                conn, self.resolver, grant_id, actor=actor, datasets=datasets, detail=detail
            )
            if refusal is None:
                return then(conn)
        raise refusal

    def apply(self, applicant: str, app: Application) -> Registration:
        with self.engine.begin() as conn:
            subject = procedure.subject_of(conn, applicant, app)
        return self._while_usable(
            applicant,
            subject.grant_id,
            subject.datasets,
            {"action": "product.apply"} | app.names(),
            lambda conn: procedure.apply(
                conn, applicant, pricing.priced_application(conn, app, self.pricing), self.clock()
            ),
        )

    def advance(self, registration_id: str, to: Step, admin: str) -> Registration:
        """Accept (to ``accepted``) or take into formal review (to ``formal_review``)."""
        with self.engine.begin() as conn:
            return procedure.step(conn, registration_id, to, admin=admin, now=self.clock())

    def publicise(self, registration_id: str, admin: str) -> Registration:
        with self.engine.begin() as conn:
            return procedure.publicise(
                conn,
                registration_id,
                admin=admin,
                now=self.clock(),
                calendar=self.calendar,
                days=self.publicity_days,
            )

    def refuse(self, registration_id: str, admin: str, reason: str, basis: str) -> Registration:
        with self.engine.begin() as conn:
            return procedure.refuse(
                conn, registration_id, admin=admin, now=self.clock(), reason=reason, basis=basis
            )

    def object_to(self, registration_id: str, objector: str, reasons: str) -> ObjectionRecord:
        with self.engine.begin() as conn:
            return objections.object_to(
                conn, registration_id, objector=objector, reasons=reasons, now=self.clock()
            )

    def resolve(
        self, objection_id: str, admin: str, *, uphold: bool, reason: str, basis: str
    ) -> ObjectionRecord:
        with self.engine.begin() as conn:
            return objections.resolve(
                conn,
                objection_id,
                admin=admin,
                uphold=uphold,
                reason=reason,
                basis=basis,
                now=self.clock(),
            )

    def register(self, registration_id: str, admin: str) -> Registration:
        with self.engine.begin() as conn:
            found = get_registration(conn, registration_id)

        def then(conn: Connection) -> Registration:
            now = self.clock()
            done = procedure.register(
                conn, registration_id, admin=admin, now=now, code_format=self.code_format
            )
            pricing.price_registered(
                conn, done, admin=admin, now=now, rules=self.pricing, rates=self.rates
            )
            return done

        if found.type != Kind.FIRST:  # a change or cancellation needs no usable grant
            with self.engine.begin() as conn:
                return then(conn)
        detail = {"action": "product.register", "registration": registration_id}
        return self._while_usable(admin, found.grant_id, (), detail, then)

    def renew(self, product_id: str, operator: str) -> Product:
        with self.engine.begin() as conn:
            product = service.own_product(conn, product_id, operator)
        return self._while_usable(
            operator,
            product.grant_id,
            product.datasets,
            {"action": "product.renew", "product": product_id},
            lambda conn: service.renew(conn, product_id, operator=operator, now=self.clock()),
        )

    def revoke(self, product_id: str, admin: str, reason: str, basis: str) -> Product:
        with self.engine.begin() as conn:
            return service.revoke(
                conn, product_id, admin=admin, reason=reason, basis=basis, now=self.clock()
            )


def desk_of(request: Request) -> Desk:
    """The app's desk (everything it needs is on ``app.state``, made by ``create_app``)."""
    state = request.app.state
    settings = state.settings
    return Desk(
        engine=state.engine,
        resolver=getattr(state, "grant_resolver", None),
        calendar=state.calendar,
        clock=state.clock,
        publicity_days=settings.product_publicity_working_days,
        code_format=settings.product_code_format,
        pricing=PricingRules.of(settings),
        rates=Rates.of(settings),
    )
