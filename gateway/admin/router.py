"""Administrators: create accounts with roles, issue and revoke API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import Connection

from gateway.admin.schemas import AccountIn, AccountOut, TokenIn, TokenOut
from gateway.auth import read, requires, write
from gateway.identity import (
    Account,
    Role,
    create_account,
    issue_token,
    list_accounts,
    revoke_token,
)

router = APIRouter(prefix="/v1", tags=["admin"])
Admin = Annotated[Account, Depends(requires(Role.ADMIN))]


@router.get("/accounts", response_model=list[AccountOut])
def accounts(admin: Admin, conn: Annotated[Connection, Depends(read)]) -> list[AccountOut]:
    return [AccountOut.of(a) for a in list_accounts(conn)]


@router.post("/accounts", response_model=AccountOut, status_code=201)
def new_account(
    body: AccountIn, admin: Admin, conn: Annotated[Connection, Depends(write)]
) -> AccountOut:
    account = create_account(
        conn,
        body.name,
        {r.value for r in body.roles},
        display_name=body.display_name,
        actor=admin.name,
    )
    return AccountOut.of(account)


@router.post("/accounts/{name}/tokens", response_model=TokenOut, status_code=201)
def new_token(
    name: str, body: TokenIn, admin: Admin, conn: Annotated[Connection, Depends(write)]
) -> TokenOut:
    token = issue_token(conn, name, actor=admin.name, label=body.label, expires_at=body.expires_at)
    return TokenOut(account=name, token=token)


@router.delete("/tokens/{token_id}", status_code=204)
def drop_token(token_id: str, admin: Admin, conn: Annotated[Connection, Depends(write)]) -> None:
    revoke_token(conn, token_id, actor=admin.name)
