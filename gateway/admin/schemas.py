"""Request and response bodies of the administrators' routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.identity import Account, Role


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=100)
    roles: list[Role] = Field(min_length=1)
    display_name: str = Field(default="", max_length=200)


class AccountOut(BaseModel):
    name: str
    display_name: str
    roles: list[str]
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            name=account.name,
            display_name=account.display_name,
            roles=sorted(account.roles),
            created_at=account.created_at,
            disabled=account.disabled,
        )


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=200)
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    account: str
    token: str  # shown once
