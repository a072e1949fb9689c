"""The catalogue: which views an operator may browse, and dummy data for them.

Step 1 of the data flow applied to reading schemas. An operator sees the
views of the grants they hold that are active and within their term, and
only where the scope policy allows ``read`` of every column the grant
covers (a suspended grant's deny lines hide it). Naming someone else's grant
is a 403, an inactive one a 409.

A view's schema is read from its dummy twin (``sandbox.views.dummy``): the same
view query over synthetic rows made from the dataset's schema and the
policy's declared domains, so names, types, column classes and
generalisations are exactly those of the real view, and the catalogue never
reads, shows or counts a real row. A grant's dummy set is built once per
grant, dataset versions and policy versions, with a seed derived from the
grant id: every view of a grant downloaded on its own comes from the same
set, and the views' pseudonymised keys join.

Audit: each grant consulted is a ``scope.decision`` event (``purpose``
``catalog``, allowed or denied with the reason); each dummy download is a
``download`` event with ``dummy: true``, the format and the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from gateway.audit import append
from gateway.errors import ConfigurationError
from gateway.grants.errors import GrantInactive
from gateway.grants.model import State
from gateway.grants.service import GrantService
from gateway.jobs.errors import Conflict, Forbidden, GrantUnavailable, NotFound
from gateway.scope.errors import ScopeDenied
from gateway.scope.objects import Decision
from gateway.scope.policy import ScopePolicy
from gateway.store import read_transaction
from sandbox.errors import SandboxError
from sandbox.views.build import Grant, View, ViewBuilder
from sandbox.views.dummy import DummyBuilder

DUMMY_ROWS = 1000
FORMATS = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}
PURPOSE = "catalog"


@dataclass(frozen=True)
class Entry:
    """One view of the catalogue: the grant it is under and its dummy twin."""

    grant_id: str
    view: View


@dataclass(frozen=True)
class DummyFile:
    filename: str
    media_type: str
    content: bytes


def dummy_seed(grant_id: str) -> int:
    """The dummy set's seed: fixed per grant, so its views come from one set."""
    return int.from_bytes(hashlib.sha256(f"dummy|{grant_id}".encode()).digest()[:4], "big")


class CatalogService:
    """The catalogue over the grants, scope policy and view cache of one gateway."""

    def __init__(
        self, engine: Engine, grants: GrantService, scope: ScopePolicy, cache: Path
    ) -> None:
        self._engine = engine
        self._grants = grants
        self._scope = scope
        self._dummy = DummyBuilder(ViewBuilder(grants.registry, grants.policies, cache), cache)

    # -- which views ---------------------------------------------------------------

    def entries(
        self, operator: str, grant_id: str | None = None, view: str | None = None
    ) -> list[Entry]:
        """The views ``operator`` may browse: of every usable grant they hold, or of one;
        with ``view``, only the grants covering that view (its dataset) are consulted."""
        with read_transaction(self._engine) as conn:
            if grant_id is None:
                records = self._grants.find(conn, operator=operator, states=[State.ACTIVE])
            else:
                record = self._grants.get(conn, grant_id)
                if record.operator != operator:
                    reason = f"grant {grant_id!r} is not held by {operator}"
                    self._audit(operator, grant_id, record.datasets, [], reason)
                    raise Forbidden(reason)
                records = [record]
        if view is not None and grant_id is None:
            records = [r for r in records if view in r.datasets]
        found: list[Entry] = []
        for record in records:
            try:
                grant = self._grants.use(record.id)
            except GrantInactive:
                if grant_id is not None:
                    raise
                continue
            if not self._allowed(operator, grant):
                if grant_id is not None:
                    raise Forbidden(f"scope denied: grant {grant_id} does not allow reading")
                continue
            found += [Entry(grant.grant_id, v) for v in self._dummy_views(grant)]
        return found

    def entry(self, operator: str, view: str, grant_id: str | None = None) -> Entry:
        """The one view named ``view`` (under ``grant_id`` when several grants have it)."""
        matching = [e for e in self.entries(operator, grant_id, view) if e.view.name == view]
        if not matching:
            where = f"grant {grant_id}" if grant_id else "your active grants"
            raise NotFound(f"no view {view!r} under {where}")
        if len(matching) > 1:
            grants = ", ".join(sorted(e.grant_id for e in matching))
            raise Conflict(f"view {view!r} is under several grants ({grants}): name one")
        return matching[0]

    def dummy_file(
        self, operator: str, view: str, grant_id: str | None, fmt: str = "parquet"
    ) -> DummyFile:
        """The dummy data of one view as Parquet or CSV bytes (the download is audited)."""
        if fmt not in FORMATS:
            raise NotFound(f"no format {fmt!r}: {' or '.join(FORMATS)}")
        entry = self.entry(operator, view, grant_id)
        content = _csv(entry.view.path) if fmt == "csv" else entry.view.path.read_bytes()
        detail = {
            "dummy": True,
            "view": view,
            "format": fmt,
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        with self._engine.begin() as conn:
            append(
                conn,
                "download",
                operator,
                grant_id=entry.grant_id,
                datasets=[entry.view.dataset],
                detail=detail,
            )
        return DummyFile(f"{view}.{fmt}", FORMATS[fmt], content)

    # -- the parts ------------------------------------------------------------------

    def _allowed(self, operator: str, grant: Grant) -> bool:
        """Rule: an operator browses a grant's views only where it may read every column."""
        wanted: list[tuple[str, str | None]] = [
            (s.dataset, c) for s in grant.scopes for c in s.columns
        ]
        datasets = [s.dataset for s in grant.scopes]
        try:
            decisions = self._scope.check_job_scope(operator, grant.grant_id, wanted, "read")
        except ScopeDenied as e:
            denied = [d for d in e.decisions if not d.allowed]
            reason = "; ".join(", ".join(d.reason) for d in denied[:3]) or "denied by default"
            self._audit(operator, grant.grant_id, datasets, list(e.decisions), reason)
            return False
        self._audit(operator, grant.grant_id, datasets, decisions, None)
        return True

    def _dummy_views(self, grant: Grant) -> tuple[View, ...]:
        try:
            built = self._dummy.build(grant, rows=DUMMY_ROWS, seed=dummy_seed(grant.grant_id))
        except SandboxError as e:
            why = f"the views of grant {grant.grant_id} cannot be made: {e}"
            raise GrantUnavailable(why) from e
        return built.views

    def _audit(
        self,
        operator: str,
        grant_id: str,
        names: Any,
        decisions: list[Decision],
        denied_reason: str | None,
    ) -> None:
        d: dict[str, Any] = {
            "purpose": PURPOSE,
            "action": "read",
            "allowed": denied_reason is None,
            "requested": len(decisions),
            "denied": [d.object for d in decisions if not d.allowed][:50],
            "reason": [denied_reason or "every object allowed by the grant's lines"],
        }
        with self._engine.begin() as conn:
            append(conn, "scope.decision", operator, grant_id=grant_id, datasets=names, detail=d)


def _csv(path: Path) -> bytes:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pacsv.write_csv(pq.read_table(path), out)
    return out.getvalue()


def catalog_service(app: Any) -> CatalogService:
    """The application's catalogue (``app.state.catalog``, built by ``create_app``)."""
    service: CatalogService | None = getattr(app.state, "catalog", None)
    if service is None:
        raise ConfigurationError("the application has no catalogue (see create_app)")
    return service
