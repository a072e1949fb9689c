"""``/v1/products``: registration applications, objections, and the registered products.

Who does what (registration measures 001 art. 13, 15, 16, 21):

- operators apply (first, change, correction, cancellation), read their own
  applications and renew their products in the window before expiry;
- administrators (the registration body) accept, formally review, publicise,
  register or refuse applications, resolve objections and revoke registrations;
- every signed-in account but a consumer reads the catalogue of products, the
  applications in publicity, and objects to one during publicity; auditors and
  administrators read every application.

Consumers call the privacy-computing products offered to them and nothing
else (``gateway.he``); the data products' lineage is not theirs to read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from gateway.auth import ANY_ROLE, read, requires
from gateway.identity import Account, Role
from gateway.products.desk import Desk, desk_of
from gateway.products.errors import UnknownRegistration
from gateway.products.model import (
    Registration,
    Status,
    Step,
    get_product,
    get_registration,
    list_products,
    list_registrations,
    objections_of,
)
from gateway.products.schemas import (
    ApplicationIn,
    ObjectionIn,
    ObjectionOut,
    ProductOut,
    RefusalIn,
    RegistrationOut,
    ResolutionIn,
)

router = APIRouter(prefix="/v1/products", tags=["products"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
Admin = Annotated[Account, Depends(requires(Role.ADMIN))]
Anyone = Annotated[Account, Depends(requires(*(r for r in ANY_ROLE if r != Role.CONSUMER)))]
Read = Annotated[Connection, Depends(read)]
Desked = Annotated[Desk, Depends(desk_of)]


def can_see(account: Account, registration: Registration) -> bool:
    """Rule: administrators and auditors see every application, an operator their own,
    everyone else (but consumers) those in publicity."""
    if account.has(Role.ADMIN, Role.AUDITOR) or registration.applicant == account.name:
        return True
    return registration.state == Step.PUBLICITY


def _out(conn: Connection, registration: Registration) -> RegistrationOut:
    return RegistrationOut.of(registration, objections_of(conn, registration.id))


def _shown(desk: Desk, registration: Registration) -> RegistrationOut:
    with desk.engine.connect() as conn:
        return _out(conn, registration)


# -- applications -------------------------------------------------------------------------


@router.post("/registrations", response_model=RegistrationOut, status_code=201)
def apply(body: ApplicationIn, operator: Operator, desk: Desked) -> RegistrationOut:
    """Apply for a registration (409 under a grant that cannot be used, or one under way)."""
    return _shown(desk, desk.apply(operator.name, body.application()))


@router.get("/registrations", response_model=list[RegistrationOut])
def applications(account: Anyone, conn: Read) -> list[RegistrationOut]:
    """The applications the caller may see, oldest first."""
    return [_out(conn, r) for r in list_registrations(conn) if can_see(account, r)]


@router.get("/registrations/{registration_id}", response_model=RegistrationOut)
def application(registration_id: str, account: Anyone, conn: Read) -> RegistrationOut:
    found = get_registration(conn, registration_id)
    if not can_see(account, found):
        raise UnknownRegistration(f"no registration application {registration_id!r}")
    return _out(conn, found)


@router.post("/registrations/{registration_id}/accept", response_model=RegistrationOut)
def accept(registration_id: str, admin: Admin, desk: Desked) -> RegistrationOut:
    """受理: the registration body accepts the application."""
    return _shown(desk, desk.advance(registration_id, Step.ACCEPTED, admin.name))


@router.post("/registrations/{registration_id}/review", response_model=RegistrationOut)
def review(registration_id: str, admin: Admin, desk: Desked) -> RegistrationOut:
    """形式审核: the accepted application enters formal review."""
    return _shown(desk, desk.advance(registration_id, Step.FORMAL_REVIEW, admin.name))


@router.post("/registrations/{registration_id}/publicise", response_model=RegistrationOut)
def publicise(registration_id: str, admin: Admin, desk: Desked) -> RegistrationOut:
    """公示: formal review passed; publicity for the configured working days."""
    return _shown(desk, desk.publicise(registration_id, admin.name))


@router.post("/registrations/{registration_id}/register", response_model=RegistrationOut)
def register(registration_id: str, admin: Admin, desk: Desked) -> RegistrationOut:
    """赋码: publicity ended with no objection pending (409 otherwise)."""
    return _shown(desk, desk.register(registration_id, admin.name))


@router.post("/registrations/{registration_id}/refuse", response_model=RegistrationOut)
def refuse(registration_id: str, body: RefusalIn, admin: Admin, desk: Desked) -> RegistrationOut:
    """Refuse an undecided application, with the reason and its legal basis."""
    done = desk.refuse(registration_id, admin.name, body.reason, body.legal_basis)
    return _shown(desk, done)


@router.post(
    "/registrations/{registration_id}/objections", response_model=ObjectionOut, status_code=201
)
def object_to(
    registration_id: str, body: ObjectionIn, account: Anyone, desk: Desked
) -> ObjectionOut:
    """异议: object to an application in publicity, with reasons."""
    return ObjectionOut.of(desk.object_to(registration_id, account.name, body.reasons))


@router.post("/objections/{objection_id}/resolve", response_model=ObjectionOut)
def resolve(objection_id: str, body: ResolutionIn, admin: Admin, desk: Desked) -> ObjectionOut:
    """Uphold (the registration is refused) or dismiss a pending objection, once."""
    done = desk.resolve(
        objection_id,
        admin.name,
        uphold=body.decision == "uphold",
        reason=body.reason,
        basis=body.legal_basis,
    )
    return ObjectionOut.of(done)


# -- registered products ------------------------------------------------------------------


@router.get("", response_model=list[ProductOut])
def catalogue(
    account: Anyone,
    conn: Read,
    status: Annotated[
        Literal["registered", "expired", "cancelled", "revoked", "all"], Query()
    ] = "registered",
) -> list[ProductOut]:
    """The registered products with their codes and validity (``status=all``: every one)."""
    wanted = None if status == "all" else Status(status)
    return [ProductOut.of(p) for p in list_products(conn, status=wanted)]


@router.get("/{product_id}", response_model=ProductOut)
def one_product(product_id: str, account: Anyone, conn: Read) -> ProductOut:
    return ProductOut.of(get_product(conn, product_id))


@router.post("/{product_id}/renew", response_model=ProductOut)
def renew(product_id: str, operator: Operator, desk: Desked) -> ProductOut:
    """续展: in the 60 days before expiry, from the old expiry, within the grant's term."""
    return ProductOut.of(desk.renew(product_id, operator.name))


@router.post("/{product_id}/revoke", response_model=ProductOut)
def revoke(product_id: str, body: RefusalIn, admin: Admin, desk: Desked) -> ProductOut:
    """撤销: revoke a registration obtained by fraud (reason and legal basis)."""
    return ProductOut.of(desk.revoke(product_id, admin.name, body.reason, body.legal_basis))
