"""The registration procedure (registration measures 001 art. 13), one application at a time.

Stage: after release (data flow step 6), before a product is offered to anyone
but its operator (authorized-operation measures, 001 art. 9).

An operator (the 登记主体) applies (申请) for a registration of one of four types
(art. 13: 首次、变更、更正、注销): a *first* registration names a released job
of theirs (a data product) or an approved privacy-computing product of theirs
(``gateway.he``); a *change*, *correction* or *cancellation* names their
registered product. Administrators, the registration body (登记机构), accept the
application (受理), take it through formal review (形式审核) and publicise it
(公示) for ``product_publicity_working_days`` working days on the statutory
calendar. During publicity any signed-in account but a consumer (and the
applicant) may object with reasons (异议); an administrator resolves each
objection once: upheld refuses the registration, dismissed lets it continue.
An administrator registers (赋码) only once publicity has ended and no
objection is pending; a refusal at any step before names its reason and legal
basis.

At registration: a first registration creates the product with a new code and
its validity (:mod:`gateway.products.codes`, art. 15); a change or correction
rewrites the product's name, description and class (its code and validity
stay); a cancellation cancels the product (注销).

Invariants:

- Every state change is a ``transition()`` of :data:`~gateway.products.model.REGISTRATION`
  or :data:`~gateway.products.model.OBJECTION`, audited in the same transaction.
- One undecided application per job, HE product or product at a time, and one
  product per job or HE product (the table's unique constraints are the backstop).
- The functions here take the caller's connection and time; grants are checked by
  :mod:`gateway.products.desk`, which opens the transactions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.audit.fields import canonical_json
from gateway.he.model import State as HEState
from gateway.he.model import get_product as get_he_product
from gateway.jobs.model import State as JobState
from gateway.jobs.service import get_outcome, manifest, manifest_sha256, own_job
from gateway.pricing.model import PriceClass
from gateway.products.codes import grant_term_end, issue_code, validity_end
from gateway.products.errors import NotYours, ProcedureConflict
from gateway.products.model import (
    PRODUCT,
    REGISTRATION,
    Category,
    Kind,
    Objection,
    Registration,
    Status,
    Step,
    find_product,
    get_product,
    get_registration,
    move,
    objections_of,
    open_registrations,
)
from gateway.store.lifecycle import Audit
from gateway.store.tables import product_registrations, products
from gateway.workdays import Calendar, Due


@dataclass(frozen=True)
class Application:
    """What an operator applies for (see the module docstring for which fields a type needs)."""

    kind: Kind
    name: str | None = None
    description: str | None = None
    category: Category | None = None
    statement: str = ""
    job_id: str | None = None
    he_product_id: str | None = None
    product_id: str | None = None
    # The price asked for (gateway.pricing.service.priced_application checks it).
    price_class: PriceClass | None = None
    price_basis: dict[str, Any] | None = None

    def names(self) -> dict[str, str]:
        """What the application names, for audit details (``job``, ``he_product``, ``product``)."""
        named = {"job": self.job_id, "he_product": self.he_product_id, "product": self.product_id}
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class Subject:
    """The grant and datasets an application is under (for grant checks and audit)."""

    grant_id: str
    datasets: tuple[str, ...]


def subject_of(conn: Connection, applicant: str, app: Application) -> Subject:
    """The grant and datasets of what ``app`` names, once checked to be ``applicant``'s."""
    if app.product_id is not None:
        product = get_product(conn, app.product_id)
        if product.operator != applicant:
            raise NotYours(f"product {app.product_id} was registered by another operator")
        return Subject(product.grant_id, product.datasets)
    if app.job_id is not None:
        job = own_job(conn, app.job_id, applicant)
        return Subject(job.grant_id, tuple(job.datasets))
    he = get_he_product(conn, str(app.he_product_id))
    if he.operator != applicant:
        raise NotYours(f"privacy-computing product {he.id} was defined by another operator")
    return Subject(he.grant_id, he.datasets)


def apply(conn: Connection, applicant: str, app: Application, now: datetime) -> Registration:
    """Rule: an operator applies for a registration of what is theirs, one at a time."""
    subject = subject_of(conn, applicant, app)
    if app.kind == Kind.FIRST:
        name, description, category = app.name, app.description, app.category
        if app.job_id is not None:
            job = own_job(conn, app.job_id, applicant)
            if job.state != JobState.RELEASED:
                raise ProcedureConflict(f"job {job.id} is {job.state}: only a released job")
            column, value = "job_id", app.job_id
        else:
            he = get_he_product(conn, str(app.he_product_id))
            if he.state != HEState.APPROVED:
                raise ProcedureConflict(
                    f"privacy-computing product {he.id} is {he.state}: "
                    "only an approved one is registered"
                )
            column, value = "he_product_id", he.id
        if find_product(conn, column, value) is not None:
            raise ProcedureConflict(f"{value} is registered already: apply for a change")
    else:
        product = get_product(conn, str(app.product_id))
        if product.status != Status.REGISTERED:
            raise ProcedureConflict(f"product {product.id} is {product.status}")
        column, value = "product_id", product.id
        name = app.name or product.name
        description = app.description or product.description
        category = app.category or Category(product.category)
    if open_registrations(conn, column, value):
        raise ProcedureConflict(f"{value} has an application under way already")
    if name is None or description is None or category is None:  # the schema requires them
        raise ProcedureConflict("a first registration gives name, description and category")
    registration_id = "reg-" + secrets.token_hex(8)
    values: dict[str, Any] = {
        "id": registration_id,
        "type": app.kind.value,
        "state": Step.APPLIED.value,
        "job_id": app.job_id,
        "he_product_id": app.he_product_id,
        "product_id": app.product_id,
        "applicant": applicant,
        "grant_id": subject.grant_id,
        "name": name,
        "description": description,
        "category": category.value,
        "statement": app.statement,
        "price_class": app.price_class.value if app.price_class else None,
        "price_basis": app.price_basis,
        "applied_at": now,
        "state_changed_at": now,
    }
    conn.execute(sa.insert(product_registrations).values(values))
    append(
        conn,
        REGISTRATION.event,
        applicant,
        grant_id=subject.grant_id,
        datasets=subject.datasets,
        detail={
            "product_registration": registration_id,
            "from": None,
            "to": "applied",
            "type": app.kind.value,
            "subject": f"{column}:{value}",
        },
    )
    return get_registration(conn, registration_id)


def step(
    conn: Connection,
    registration_id: str,
    to: Step,
    *,
    admin: str,
    now: datetime,
    values: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> Registration:
    """Move an application one step, by an administrator (accept, review, publicise, refuse)."""
    found = get_registration(conn, registration_id)
    audit = Audit(
        admin, grant_id=found.grant_id, detail={"type": found.type.value} | (detail or {})
    )
    more = {"state_changed_at": now, "decided_by": admin} | (values or {})
    move(conn, REGISTRATION, registration_id, found.state, to, audit, more)
    return get_registration(conn, registration_id)


def publicise(
    conn: Connection,
    registration_id: str,
    *,
    admin: str,
    now: datetime,
    calendar: Calendar,
    days: int,
) -> Registration:
    """Formal review passed: publicity until the end of the ``days``-th working day (0,
    development only: none, it ends as it starts)."""
    due = calendar.deadline(now, days) if days else Due(now)
    detail = {"publicity_ends_at": due.at.isoformat(), "provisional": due.provisional}
    return step(
        conn,
        registration_id,
        Step.PUBLICITY,
        admin=admin,
        now=now,
        values={"publicity_ends_at": due.at},
        detail=detail,
    )


def refuse(
    conn: Connection, registration_id: str, *, admin: str, now: datetime, reason: str, basis: str
) -> Registration:
    """Refuse an undecided application, with its reason and legal basis."""
    return step(
        conn,
        registration_id,
        Step.REFUSED,
        admin=admin,
        now=now,
        values={"refusal_reason": reason, "refusal_basis": basis},
        detail={"reason": reason, "legal_basis": basis},
    )


def register(
    conn: Connection, registration_id: str, *, admin: str, now: datetime, code_format: str
) -> Registration:
    """Rule: registered only after publicity ended with no objection pending (art. 13)."""
    found = get_registration(conn, registration_id)
    ends = found.publicity_ends_at
    if found.state != Step.PUBLICITY or ends is None:
        raise ProcedureConflict(
            f"registration {registration_id} is {found.state}: "
            "only an application in publicity is registered"
        )
    if now < ends:
        raise ProcedureConflict(f"publicity of {registration_id} ends {ends.isoformat()}")
    pending = [o.id for o in objections_of(conn, registration_id) if o.state == Objection.PENDING]
    if pending:
        raise ProcedureConflict(f"objections pending: {', '.join(pending)}; resolve them first")
    product_id = found.product_id
    if found.type == Kind.FIRST:
        product_id = _create_product(conn, found, admin=admin, now=now, code_format=code_format)
    elif found.type == Kind.CANCELLATION:
        product = get_product(conn, str(product_id))
        audit = Audit(
            admin,
            grant_id=product.grant_id,
            datasets=product.datasets,
            detail={"registration": registration_id, "reason": found.statement},
        )
        values = {"status_changed_at": now, "status_reason": found.statement}
        move(conn, PRODUCT, product.id, Status.REGISTERED, Status.CANCELLED, audit, values)
    else:
        _rewrite_product(conn, found, admin=admin)
    return step(
        conn,
        registration_id,
        Step.REGISTERED,
        admin=admin,
        now=now,
        values={"product_id": product_id},
    )


def _create_product(
    conn: Connection, found: Registration, *, admin: str, now: datetime, code_format: str
) -> str:
    grant_until = grant_term_end(conn, found.grant_id)
    lineage = _lineage(conn, found)
    product_id = "prd-" + secrets.token_hex(8)
    valid_until = validity_end(now, grant_until)
    values: dict[str, Any] = {
        "id": product_id,
        "registration_code": issue_code(conn, code_format, now),
        "name": found.name,
        "description": found.description,
        "category": found.category.value,
        "operator": found.applicant,
        "job_id": found.job_id,
        "he_product_id": found.he_product_id,
        "grant_id": found.grant_id,
        "registered_at": now,
        "valid_until": valid_until,
        "renewed_at": None,
        "status": Status.REGISTERED.value,
        "status_changed_at": now,
        "status_reason": f"registered by {found.id}",
    } | lineage
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(products).values(values))
    except sa.exc.IntegrityError as e:
        raise ProcedureConflict(f"{found.subject} was registered meanwhile") from e
    append(
        conn,
        "product.registered",
        admin,
        grant_id=found.grant_id,
        datasets=lineage["datasets"],
        detail={
            "action": "registered",
            "product": product_id,
            "registration": found.id,
            "registration_code": values["registration_code"],
            "category": found.category.value,
            "subject": found.subject,
            "code_sha256": lineage["code_sha256"],
            "manifest_sha256": lineage["manifest_sha256"],
            "valid_until": valid_until.isoformat(),
        },
    )
    return product_id


def _lineage(conn: Connection, found: Registration) -> dict[str, Any]:
    """What a product pins: a job's code hash, data and policy versions and manifest; an
    HE product's definition hash and datasets (its answers are its outputs)."""
    if found.job_id is not None:
        job = own_job(conn, found.job_id, found.applicant)
        outcome = get_outcome(conn, job.id)
        files = manifest(conn, job)
        return {
            "code_sha256": job.code_sha256,
            "datasets": list(job.datasets),
            "dataset_versions": dict(outcome.dataset_versions) if outcome else {},
            "policy_versions": dict(outcome.policy_versions) if outcome else {},
            "manifest": files,
            "manifest_sha256": manifest_sha256(files),
        }
    he = get_he_product(conn, str(found.he_product_id))
    if he.state != HEState.APPROVED:
        raise ProcedureConflict(
            f"privacy-computing product {he.id} is {he.state}: only an approved one is registered"
        )
    return {
        "code_sha256": hashlib.sha256(canonical_json(he.spec)).hexdigest(),
        "datasets": list(he.datasets),
        "dataset_versions": {},
        "policy_versions": {},
        "manifest": [],
        "manifest_sha256": manifest_sha256([]),
    }


def _rewrite_product(conn: Connection, found: Registration, *, admin: str) -> None:
    """A change or correction: the product's registered particulars become the application's."""
    product = get_product(conn, str(found.product_id))
    if product.status != Status.REGISTERED:
        raise ProcedureConflict(f"product {product.id} is {product.status}")
    conn.execute(
        sa.update(products)
        .where(products.c.id == product.id)
        .values(name=found.name, description=found.description, category=found.category.value)
    )
    action = "changed" if found.type == Kind.CHANGE else "corrected"
    append(
        conn,
        "product.registered",
        admin,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail={
            "action": action,
            "product": product.id,
            "registration": found.id,
            "registration_code": product.registration_code,
            "name": found.name,
            "category": found.category.value,
        },
    )
