"""Objections during a registration's publicity (异议, registration measures 001 art. 13).

Rules: during publicity (until it ends), any signed-in account but a consumer
(the router's roles) and the applicant objects with reasons; an administrator
resolves each objection once, upheld (the application is refused, with the
reason and legal basis given) or dismissed (the procedure continues). An
application is registered only with no objection pending
(:func:`gateway.products.procedure.register`). Every state change is a
``transition()`` of :data:`~gateway.products.model.OBJECTION`.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.products.errors import NotYours, ProcedureConflict, UnknownRegistration
from gateway.products.model import (
    OBJECTION,
    Objection,
    ObjectionRecord,
    Step,
    get_registration,
    move,
    objections_of,
)
from gateway.products.procedure import refuse
from gateway.store.lifecycle import Audit
from gateway.store.tables import product_objections


def object_to(
    conn: Connection, registration_id: str, *, objector: str, reasons: str, now: datetime
) -> ObjectionRecord:
    """Rule: anyone but the applicant objects to an application in publicity, until it ends."""
    found = get_registration(conn, registration_id)
    if found.applicant == objector:
        raise NotYours("an applicant does not object to their own application")
    ends = found.publicity_ends_at
    if found.state != Step.PUBLICITY or ends is None or now >= ends:
        raise ProcedureConflict(
            f"registration {registration_id} is not in publicity "
            f"(it is {found.state}): objections are closed"
        )
    objection_id = "obj-" + secrets.token_hex(8)
    conn.execute(
        sa.insert(product_objections).values(
            id=objection_id,
            registration_id=registration_id,
            objector=objector,
            reasons=reasons,
            state=Objection.PENDING.value,
            filed_at=now,
        )
    )
    append(
        conn,
        OBJECTION.event,
        objector,
        grant_id=found.grant_id,
        detail={
            "product_objection": objection_id,
            "from": None,
            "to": "pending",
            "registration": registration_id,
        },
    )
    return next(o for o in objections_of(conn, registration_id) if o.id == objection_id)


def resolve(
    conn: Connection,
    objection_id: str,
    *,
    admin: str,
    uphold: bool,
    reason: str,
    basis: str,
    now: datetime,
) -> ObjectionRecord:
    """An administrator resolves a pending objection once; upheld refuses the application."""
    row = conn.execute(
        sa.select(product_objections.c.registration_id).where(
            product_objections.c.id == objection_id
        )
    ).first()
    if row is None:
        raise UnknownRegistration(f"no objection {objection_id!r}")
    registration = get_registration(conn, row[0])
    to = Objection.UPHELD if uphold else Objection.DISMISSED
    audit = Audit(
        admin,
        grant_id=registration.grant_id,
        detail={"registration": registration.id, "reason": reason},
    )
    values = {"resolved_by": admin, "resolution": reason, "resolved_at": now}
    move(conn, OBJECTION, objection_id, Objection.PENDING, to, audit, values)
    if uphold:
        refuse(conn, registration.id, admin=admin, now=now, reason=reason, basis=basis)
    return next(o for o in objections_of(conn, registration.id) if o.id == objection_id)
