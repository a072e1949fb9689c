"""``GET /metrics``: the Prometheus text format, for the operations team; never public.

Who may scrape: the bearer of ``DSR_GATEWAY_METRICS_TOKEN`` (a Prometheus
server without an account; compared in constant time, ``hmac.compare_digest``;
empty, the default, admits no such bearer), or an account holding the admin or
auditor role. Anything else is refused as every route refuses: no or a bad
token 401 (audited ``auth.failed``; a wrong metrics token is a bad token),
another role 403. Scrapes are not audited: a scraper calls every few seconds.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.auth import current_account
from gateway.identity import Role
from gateway.metrics.registry import metrics_of

router = APIRouter(tags=["meta"])

SCRAPERS = (Role.ADMIN, Role.AUDITOR)
SCRAPER = "metrics-scraper"  # who scraped, when it was the bearer of the metrics token


def is_metrics_token(request: Request, authorization: str | None) -> bool:
    """Whether ``authorization`` is ``Bearer <the metrics token>`` (none set: never)."""
    expected = request.app.state.settings.metrics_token.get_secret_value()
    scheme, _, given = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def scraper(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """Who is scraping: the metrics token's bearer, or an admin or auditor (else 401/403)."""
    if is_metrics_token(request, authorization):
        return SCRAPER
    account = current_account(request, authorization)
    if not account.has(*SCRAPERS):
        raise HTTPException(
            status_code=403,
            detail=f"this needs the role {' or '.join(sorted(r.value for r in SCRAPERS))}",
        )
    return account.name


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request, _: Annotated[str, Depends(scraper)]) -> Response:
    """The gateway's metrics in the Prometheus text format (read from the store now)."""
    return Response(metrics_of(request.app).scrape(), media_type=CONTENT_TYPE_LATEST)
