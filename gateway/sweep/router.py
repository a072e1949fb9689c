"""The sweep in the gateway: its scheduler's lifespan, and ``POST /v1/admin/sweep``.

``create_app`` includes :data:`router`; FastAPI runs the router's lifespan
inside the app's, so the scheduler (:mod:`gateway.sweep.scheduler`) starts
after the job worker and the audit checkpointer and stops before them.

Rule: only administrators run a sweep on demand; it returns what each task did
(the lines) and what failed, and is audited ``sweep.run`` with the
administrator as the actor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from gateway.audit.chain import SYSTEM
from gateway.auth import requires
from gateway.grants.service import grant_service
from gateway.identity import Account, Role
from gateway.sweep.run import SweepResult, run_sweep
from gateway.sweep.scheduler import start_sweeps, stop_sweeps
from gateway.sweep.tasks import SweepContext, tasks


def context_of(app: Any) -> SweepContext:
    """What the app's tasks may use, at the app's clock's time now."""
    state = app.state
    return SweepContext(
        engine=state.engine,
        settings=state.settings,
        grants=grant_service(app),
        calendar=state.calendar,
        now=state.clock(),
    )


def sweep_app(app: Any, *, actor: str = SYSTEM, audit_idle: bool = True) -> SweepResult:
    """Run every task of ``gateway.sweep.tasks.tasks()`` once, now, in the app."""
    return run_sweep(context_of(app), tasks(), actor=actor, audit_idle=audit_idle)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    start_sweeps(app, lambda: sweep_app(app, audit_idle=False))
    try:
        yield
    finally:
        stop_sweeps(app)


router = APIRouter(prefix="/v1/admin", tags=["admin"], lifespan=lifespan)
Admin = Annotated[Account, Depends(requires(Role.ADMIN))]


class TaskOut(BaseModel):
    name: str
    lines: list[str]
    failure: str | None


class SweepOut(BaseModel):
    at: str
    lines: list[str]
    tasks: list[TaskOut]
    failures: dict[str, str]


@router.post("/sweep", response_model=SweepOut)
def sweep_now(admin: Admin, request: Request) -> dict[str, Any]:
    """Run the sweep now: expire grants past their term (destroying their copies), send
    the notices due, and every other task; what each did and what failed."""
    return sweep_app(request.app, actor=admin.name).as_dict()
