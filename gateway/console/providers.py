"""Providers' pages (administrators and auditors read some of them too): datasets, their
policies with a diff between any two versions and a form to apply a new one, the
administrators' emergency stop of a dataset, and grants with who holds a stop on each
(why, since when), to stop, to lift one's own stop, or to revoke. (Data requests are
``data_requests``'.)

Every rule is the services' (``gateway.providers``, ``gateway.grants``); a page only
chooses what to show of what they allow.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from gateway.auth import engine_of
from gateway.console.pages import (
    PREFIX,
    ConsoleRoute,
    Viewer,
    check_form,
    check_text,
    needs,
    page,
    render,
)
from gateway.grants.model import LIVE
from gateway.grants.model import State as GrantState
from gateway.grants.service import grant_service
from gateway.identity import Role
from gateway.providers.service import InvalidPolicy, provider_service
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Datasets = Annotated[Viewer, Depends(page("datasets"))]
Admin = Annotated[Viewer, Depends(needs(Role.ADMIN))]
Grants = Annotated[Viewer, Depends(page("grants"))]
MAX_POLICY_CHARS = 512 * 1024
# A grant's form actions: place one's stop, lift one's own stop, revoke (expiry is the
# system's, not a person's).
GRANT_ACTIONS = ("suspend", "resume", "revoke")


# -- datasets and policies -------------------------------------------------------------


def _datasets_page(
    request: Request,
    viewer: Viewer,
    *,
    status: int = 200,
    problem: str | None = None,
    stopped: dict[str, Any] | None = None,
) -> Response:
    found = provider_service(request.app).visible(viewer.account.name, viewer.account.roles)
    return render(request, "datasets.html", viewer, status=status, datasets=found,
                  can_stop=viewer.has(Role.ADMIN), problem=problem, stopped=stopped)  # fmt: skip


@router.get("/datasets")
def datasets(request: Request, viewer: Datasets) -> Response:
    return _datasets_page(request, viewer)


@router.post("/datasets/{name}/emergency-stop")
def emergency_stop(
    request: Request,
    viewer: Admin,
    name: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Place the administrators' stop on every live grant on the dataset (the REST route's
    service call); the page is shown at once with the count, not redirected to, so no
    link can fake one."""
    check_form(request, viewer.session.csrf, csrf)
    check_text(reason, confirm)
    provider_service(request.app).check_read(viewer.account.name, viewer.account.roles, name)
    if not reason.strip() or confirm != "yes":
        return _datasets_page(request, viewer, status=422, problem="datasets.stop_incomplete")
    with engine_of(request).begin() as conn:
        stopped, _ = grant_service(request.app).emergency_stop(
            conn, name, viewer.account.name, reason.strip()
        )
    return _datasets_page(request, viewer, stopped={"dataset": name, "grants": stopped})


def _dataset_page(
    request: Request,
    viewer: Viewer,
    name: str,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    draft: str | None = None,
) -> Response:
    service = provider_service(request.app)
    newest = service.check_read(viewer.account.name, viewer.account.roles, name)
    policies = service.policy_versions(name)
    known = [p.version for p in policies]
    query = request.query_params
    old, new = query.get("from"), query.get("to")
    diff: list[str] | None = None
    if old and new:
        diff = service.diff(name, old, new).splitlines()
    elif len(known) >= 2:
        old, new = known[-2], known[-1]
    current = policies[-1] if policies else None
    applied = query.get("applied")
    context: dict[str, Any] = {
        "name": name,
        "newest": newest,
        "versions": list(reversed(service.versions(name))),
        "policies": list(reversed(policies)),
        "current": current,
        "old": old,
        "new": new,
        "diff": diff,
        "can_apply": viewer.has(Role.PROVIDER) and service.owner(name) == viewer.account.name,
        "applied": applied if applied in known else None,
        "unchanged": query.get("unchanged") == "1",
        "problems": problems,
        "draft": draft if draft is not None else (current.text if current else ""),
    }
    return render(request, "dataset.html", viewer, status=status, **context)


@router.get("/datasets/{name}")
def dataset(request: Request, viewer: Datasets, name: str) -> Response:
    return _dataset_page(request, viewer, name)


@router.post("/datasets/{name}/policy")
def apply_policy(
    request: Request,
    viewer: Datasets,
    name: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
    text: Annotated[str, Form(max_length=MAX_POLICY_CHARS)] = "",
) -> Response:
    check_form(request, viewer.session.csrf, csrf)
    check_text(text)
    service = provider_service(request.app)
    service.check_govern(viewer.account.name, name)
    before = [p.version for p in service.policy_versions(name)]
    try:
        applied = service.apply_policy(name, text.replace("\r\n", "\n"), viewer.account.name)
    except InvalidPolicy as e:
        return _dataset_page(request, viewer, name, status=422, problems=e.problems, draft=text)
    query = {"applied": applied.version}
    if applied.version in before:
        query["unchanged"] = "1"
    elif before:
        query |= {"from": before[-1], "to": applied.version}
    target = f"{PREFIX}/datasets/{quote(name, safe='')}?{urlencode(query)}#diff"
    return RedirectResponse(target, 303)


# -- grants ------------------------------------------------------------------------------


@router.get("/grants")
def grants(request: Request, viewer: Grants, changed: str | None = None) -> Response:
    service = grant_service(request.app)
    account = viewer.account
    with read_transaction(engine_of(request)) as conn:
        found = service.visible(conn, account)
    rows = []
    for grant in reversed(found):
        who = (account.name, account.roles, grant)
        allowed = {
            "suspend": service.can_stop(*who),
            "resume": service.can_lift(*who),  # only the party's own stop
            "revoke": grant.state in LIVE and service.can_govern(*who),
        }
        rows.append({"grant": grant, "actions": [a for a in GRANT_ACTIONS if allowed[a]]})
    notice = next(({"grant": g.id, "state": g.state.value} for g in found if g.id == changed), None)
    return render(request, "grants.html", viewer, rows=rows, notice=notice)


@router.post("/grants/{grant_id}/{action}")
def change_grant(
    request: Request,
    viewer: Grants,
    grant_id: str,
    action: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_form(request, viewer.session.csrf, csrf)
    check_text(reason)
    if action not in GRANT_ACTIONS:
        raise HTTPException(404)
    if not reason.strip():
        raise HTTPException(422, detail="grants.reason_missing")
    service = grant_service(request.app)
    account, why = viewer.account, reason.strip()
    with engine_of(request).begin() as conn:
        holder = service.check_govern(account.name, account.roles, service.get(conn, grant_id))
        if action == "suspend":
            service.suspend(conn, grant_id, holder, account.name, why)
        elif action == "resume":
            service.resume(conn, grant_id, holder, account.name, why)
        else:
            service.transition(conn, grant_id, GrantState.REVOKED, account.name, why)
    return RedirectResponse(f"{PREFIX}/grants?changed={quote(grant_id, safe='')}", 303)
