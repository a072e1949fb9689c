"""Notices: every signed-in account reads those addressed to it or to its roles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Connection

from gateway.auth import ANY_ROLE, read, requires
from gateway.identity import Account
from gateway.notices.service import notices_for

router = APIRouter(prefix="/v1/notices", tags=["notices"])
Anyone = Annotated[Account, Depends(requires(*ANY_ROLE))]


class NoticeOut(BaseModel):
    key: str
    kind: str
    subject: str
    detail: dict[str, Any]
    at: datetime


@router.get("", response_model=list[NoticeOut])
def mine(
    account: Anyone,
    conn: Annotated[Connection, Depends(read)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[NoticeOut]:
    """The newest notices for the caller (to its account or to one of its roles)."""
    return [
        NoticeOut(key=n.key, kind=n.kind, subject=n.subject, detail=n.detail, at=n.at)
        for n in notices_for(conn, account, limit=limit)
    ]
