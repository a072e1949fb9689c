"""Identity: accounts with roles, and bearer API tokens stored hashed.

Step 1 of the data flow (authenticate). A token reads ``dsr_<id>_<secret>``:
``id`` (12 hex characters) finds the row, ``secret`` (32 random bytes,
URL-safe base64) is compared, in constant time, against the SHA-256 stored
for it. A token is shown once, when issued; the store never holds it.

Invariants:
- Roles are exactly ``ROLES``; an account has at least one.
- A disabled account, a revoked or expired token, an unknown id and a
  wrong secret all fail the same way (``None`` from ``authenticate``), so a
  caller cannot tell which; the gateway audits every failure.
- Account and token changes write their audit event in the same
  transaction.
- An account belongs to at most one organisation (``organisation_of``);
  administrators assign it (``gateway.organisations``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.errors import GatewayError
from gateway.store.tables import accounts, api_tokens, organisation_members

TOKEN = re.compile(r"dsr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
NAME = re.compile(r"[a-z][a-z0-9._-]{1,99}")


class Role(StrEnum):
    OPERATOR = "operator"
    PROVIDER = "provider"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    AUDITOR = "auditor"
    CONSUMER = "consumer"  # calls privacy-computing products (a bank, another party)


ROLES = frozenset(Role)


class IdentityError(GatewayError):
    """An account or token request that cannot be honoured (bad name, unknown account)."""


class AccountExists(IdentityError):
    """An account of that name exists already."""


class UnknownAccount(IdentityError):
    """No account of that name."""


@dataclass(frozen=True)
class Account:
    name: str
    display_name: str
    roles: frozenset[Role]
    created_at: datetime
    disabled: bool = False

    def has(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        name=str(m["name"]),
        display_name=str(m["display_name"]),
        roles=frozenset(Role(r) for r in m["roles"]),
        created_at=m["created_at"],
        disabled=m["disabled_at"] is not None,
    )


def create_account(
    conn: Connection, name: str, roles: set[str], *, display_name: str = "", actor: str
) -> Account:
    """Create an account with ``roles``; audited as ``account.created``."""
    if not NAME.fullmatch(name):
        raise IdentityError(
            "account names are 2-100 characters: lower-case letters, digits, '.', '_', '-', "
            "starting with a letter"
        )
    unknown = sorted(set(roles) - {r.value for r in Role})
    if unknown or not roles:
        raise IdentityError(
            f"roles must be one or more of {', '.join(sorted(ROLES))}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    if conn.execute(sa.select(accounts.c.name).where(accounts.c.name == name)).first():
        raise AccountExists(f"account {name!r} exists already")
    now = datetime.now(UTC)
    conn.execute(
        accounts.insert().values(
            name=name,
            display_name=display_name or name,
            roles=sorted(roles),
            created_at=now,
            disabled_at=None,
        )
    )
    append(conn, "account.created", actor, detail={"account": name, "roles": sorted(roles)})
    return Account(name, display_name or name, frozenset(Role(r) for r in roles), now)


def get_account(conn: Connection, name: str) -> Account:
    row = conn.execute(sa.select(accounts).where(accounts.c.name == name)).first()
    if row is None:
        raise UnknownAccount(f"no account {name!r}")
    return _account(row)


def organisation_of(conn: Connection, name: str) -> str | None:
    """The id of the organisation account ``name`` belongs to now, or None (it belongs to
    none: accounts made before organisations existed keep working without one)."""
    return conn.execute(
        sa.select(organisation_members.c.organisation_id).where(
            organisation_members.c.account == name
        )
    ).scalar()


def list_accounts(conn: Connection) -> list[Account]:
    return [_account(r) for r in conn.execute(sa.select(accounts).order_by(accounts.c.name))]


def issue_token(
    conn: Connection,
    account: str,
    *,
    actor: str,
    label: str = "",
    expires_at: datetime | None = None,
) -> str:
    """A new token for ``account``, returned once; only its hash is stored.

    ``expires_at``, when given, is timezone-aware and in the future."""
    now = datetime.now(UTC)
    if expires_at is not None and (expires_at.tzinfo is None or expires_at.utcoffset() is None):
        raise IdentityError("expires_at must be timezone-aware (e.g. 2027-01-01T00:00:00Z)")
    if expires_at is not None and expires_at <= now:
        raise IdentityError("expires_at is in the past: the token would never work")
    get_account(conn, account)
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            id=token_id,
            account=account,
            secret_sha256=_secret_hash(secret),
            label=label,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
    )
    append(conn, "token.issued", actor, detail={"account": account, "token": token_id})
    return f"dsr_{token_id}_{secret}"


def revoke_token(conn: Connection, token_id: str, *, actor: str) -> None:
    done = conn.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if done.rowcount != 1:
        raise IdentityError(f"no active token {token_id!r}")
    append(conn, "token.revoked", actor, detail={"token": token_id})


def token_id_of(token: str) -> str | None:
    """The public id of a well-formed token (for the audit log), else None."""
    match = TOKEN.fullmatch(token)
    return match.group(1) if match else None


def authenticate(conn: Connection, token: str) -> Account | None:
    """The account a bearer token belongs to, or None (one answer for every failure)."""
    match = TOKEN.fullmatch(token)
    if match is None:
        return None
    token_id, secret = match.groups()
    row = conn.execute(
        sa.select(api_tokens, accounts)
        .join(accounts, accounts.c.name == api_tokens.c.account)
        .where(api_tokens.c.id == token_id)
    ).first()
    if row is None:
        return None
    m = row._mapping
    good = hmac.compare_digest(str(m["secret_sha256"]), _secret_hash(secret))
    now = datetime.now(UTC)
    expired = m["expires_at"] is not None and m["expires_at"] <= now
    if not good or expired or m["revoked_at"] is not None or m["disabled_at"] is not None:
        return None
    return Account(
        name=str(m["name"]),
        display_name=str(m["display_name"]),
        roles=frozenset(Role(r) for r in m["roles"]),
        created_at=m["created_at"],
    )
