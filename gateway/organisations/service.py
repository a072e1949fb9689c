"""Organisations: created by administrators; every account belongs to at most one.

An organisation is an operator company, a provider department, a bank or other
financial institution, or another body (:class:`Kind`). What it serves: the
rule that an operator takes no part in re-developing or consuming the products
it delivered (``gateway.organisations.consumption``) reaches the operator's
colleagues, not only its own account.

Invariants:

- Only administrators create organisations and assign accounts (the routes
  check the role); each change is audited in the same transaction
  (``organisation.created``; ``organisation.member``: account, from, to).
- An account belongs to at most one organisation: the membership table is
  keyed by the account, and assigning moves it (the event names both).
- An account with no organisation works as before; it has no colleagues.
- Every signed-in account reads its own organisation; administrators read all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.identity import Account, Role, get_account, organisation_of
from gateway.organisations.errors import OrganisationError, OrganisationExists, UnknownOrganisation
from gateway.store.tables import organisation_members, organisations

ORGANISATION_ID = re.compile(r"[a-z][a-z0-9._-]{1,63}")


class Kind(StrEnum):
    """What an organisation is. Values are stored: never change them."""

    OPERATOR = "operator"  # an operating company (运营机构)
    PROVIDER = "provider"  # a data-providing department (数据提供单位)
    FINANCIAL = "financial"  # a bank or other financial institution
    OTHER = "other"


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    kind: Kind
    created_by: str
    created_at: datetime
    members: tuple[str, ...] = ()


def _members(conn: Connection, organisation_id: str) -> tuple[str, ...]:
    rows = conn.execute(
        sa.select(organisation_members.c.account)
        .where(organisation_members.c.organisation_id == organisation_id)
        .order_by(organisation_members.c.account)
    )
    return tuple(r.account for r in rows)


def _organisation(conn: Connection, row: sa.Row[tuple[object, ...]]) -> Organisation:
    m = row._mapping
    return Organisation(
        id=str(m["id"]),
        name=str(m["name"]),
        kind=Kind(m["kind"]),
        created_by=str(m["created_by"]),
        created_at=m["created_at"],
        members=_members(conn, str(m["id"])),
    )


def create_organisation(
    conn: Connection, organisation_id: str, name: str, kind: Kind, *, actor: str, now: datetime
) -> Organisation:
    """Create an organisation; audited as ``organisation.created``."""
    if not ORGANISATION_ID.fullmatch(organisation_id):
        raise OrganisationError(
            "organisation ids are 2-64 characters: lower-case letters, digits, '.', '_', '-', "
            "starting with a letter"
        )
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise OrganisationError("an organisation's name is 1-200 characters on one line")
    taken = conn.execute(
        sa.select(organisations.c.id).where(
            sa.or_(organisations.c.id == organisation_id, organisations.c.name == name)
        )
    ).first()
    if taken is not None:
        raise OrganisationExists(f"an organisation with id {organisation_id!r} or that name exists")
    conn.execute(
        organisations.insert().values(
            id=organisation_id, name=name, kind=kind.value, created_by=actor, created_at=now
        )
    )
    detail = {"organisation": organisation_id, "kind": kind.value}
    append(conn, "organisation.created", actor, detail=detail)
    return get_organisation(conn, organisation_id)


def get_organisation(conn: Connection, organisation_id: str) -> Organisation:
    row = conn.execute(
        sa.select(organisations).where(organisations.c.id == organisation_id)
    ).first()
    if row is None:
        raise UnknownOrganisation(f"no organisation {organisation_id!r}")
    return _organisation(conn, row)


def can_read(conn: Connection, account: Account, organisation_id: str) -> bool:
    """Rule: administrators read every organisation, any other account its own."""
    return account.has(Role.ADMIN) or organisation_of(conn, account.name) == organisation_id


def readable(conn: Connection, account: Account, organisation_id: str) -> Organisation:
    """The organisation, if ``account`` may read it (else the same 404 as a missing one)."""
    if not can_read(conn, account, organisation_id):
        raise UnknownOrganisation(f"no organisation {organisation_id!r}")
    return get_organisation(conn, organisation_id)


def visible(conn: Connection, account: Account) -> list[Organisation]:
    """Every organisation for an administrator; the caller's own (if any) for others."""
    query = sa.select(organisations).order_by(organisations.c.id)
    if not account.has(Role.ADMIN):
        mine = organisation_of(conn, account.name)
        if mine is None:
            return []
        query = query.where(organisations.c.id == mine)
    return [_organisation(conn, r) for r in conn.execute(query)]


def assign(
    conn: Connection, account: str, organisation_id: str | None, *, actor: str, now: datetime
) -> str | None:
    """Make ``account`` a member of ``organisation_id`` (None: of none), moving it from
    any other; audited as ``organisation.member`` when anything changed. The previous one."""
    get_account(conn, account)  # UnknownAccount: 404
    if organisation_id is not None:
        get_organisation(conn, organisation_id)
    before = organisation_of(conn, account)
    if before == organisation_id:
        return before
    conn.execute(organisation_members.delete().where(organisation_members.c.account == account))
    if organisation_id is not None:
        conn.execute(
            organisation_members.insert().values(
                account=account, organisation_id=organisation_id, assigned_by=actor, assigned_at=now
            )
        )
    detail = {"account": account, "from": before, "to": organisation_id}
    append(conn, "organisation.member", actor, detail=detail)
    return before


def colleagues(conn: Connection, one: str, other: str) -> bool:
    """Whether two accounts are one, or belong to the same organisation now."""
    if one == other:
        return True
    mine = organisation_of(conn, one)
    return mine is not None and mine == organisation_of(conn, other)
