"""The privacy-computing product's states: one table of moves, one ``transition()``.

::

    pending_approval -> approved | denied | withdrawn
    approved -> suspended | withdrawn        (grant suspended; grant ended or operator)
    suspended -> approved | withdrawn        (grant resumed; grant ended or operator)

A product is defined ``pending_approval``; a reviewer who is not its definer
approves or denies it once. Only an ``approved`` product answers calls. It
follows its grant: suspended with it (the grant service's suspension hook,
and on every use), approved again when the grant is resumed, withdrawn when
the grant is revoked or expires; its operator may withdraw it at any time.

Invariant: every state change goes through :func:`transition`, which moves
the product through ``gateway.store.lifecycle.transition`` (the
:data:`HE_PRODUCT` table): checked, persisted only if the product is still in
the state it was read in, and audited as ``he.product``, all in the caller's
transaction, at the time of the clock it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import SYSTEM, append
from gateway.grants.model import ENDED
from gateway.grants.model import State as GrantState
from gateway.he.errors import HEConflict, UnknownHEProduct
from gateway.store import lifecycle
from gateway.store.lifecycle import (
    Audit,
    Clock,
    IllegalMove,
    Lifecycle,
    MovedMeanwhile,
    system_clock,
)
from gateway.store.tables import grants, he_products


class State(StrEnum):
    """Values are stored: never change them."""

    PENDING = "pending_approval"
    APPROVED = "approved"
    DENIED = "denied"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


class Kind(StrEnum):
    VERIFY = "verify"
    SCORE = "score"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.APPROVED, State.DENIED, State.WITHDRAWN}),
    State.APPROVED: frozenset({State.SUSPENDED, State.WITHDRAWN}),
    State.SUSPENDED: frozenset({State.APPROVED, State.WITHDRAWN}),
    State.DENIED: frozenset(),
    State.WITHDRAWN: frozenset(),
}
HE_PRODUCT: Lifecycle[State] = Lifecycle(
    name="he_product",
    states=State,
    moves=TRANSITIONS,
    table=he_products,
    key="id",
    state="state",
    event="he.product",
    description=(
        "A privacy-computing product: defined pending approval, approved or denied once "
        "by a reviewer who is not its definer; it follows its grant (suspended with it, "
        "withdrawn when it ends) and its operator may withdraw it."
    ),
    notes={
        (State.APPROVED, State.SUSPENDED): "grant suspended",
        (State.SUSPENDED, State.APPROVED): "grant active again",
    },
)


@dataclass(frozen=True)
class HEProduct:
    id: str
    kind: Kind
    name: str
    operator: str
    grant_id: str
    datasets: tuple[str, ...]
    spec: dict[str, Any]
    consumers: tuple[str, ...]
    state: State
    created_at: datetime
    state_changed_at: datetime
    state_reason: str


def _product(row: sa.Row[Any]) -> HEProduct:
    m = row._mapping
    return HEProduct(
        id=m["id"],
        kind=Kind(m["kind"]),
        name=m["name"],
        operator=m["operator"],
        grant_id=m["grant_id"],
        datasets=tuple(m["datasets"]),
        spec=dict(m["spec"]),
        consumers=tuple(m["consumers"]),
        state=State(m["state"]),
        created_at=m["created_at"],
        state_changed_at=m["state_changed_at"],
        state_reason=m["state_reason"],
    )


def get_product(conn: Connection, product_id: str) -> HEProduct:
    row = conn.execute(sa.select(he_products).where(he_products.c.id == product_id)).first()
    if row is None:
        raise UnknownHEProduct(f"no privacy-computing product {product_id!r}")
    return _product(row)


def list_products(conn: Connection, *, grant_id: str | None = None) -> list[HEProduct]:
    query = sa.select(he_products).order_by(he_products.c.created_at, he_products.c.id)
    if grant_id is not None:
        query = query.where(he_products.c.grant_id == grant_id)
    return [_product(r) for r in conn.execute(query)]


def create_product(conn: Connection, product: HEProduct, *, detail: Mapping[str, Any]) -> None:
    """Insert a product (``pending_approval``) and audit its definition."""
    conn.execute(
        sa.insert(he_products).values(
            id=product.id,
            kind=product.kind.value,
            name=product.name,
            operator=product.operator,
            grant_id=product.grant_id,
            datasets=list(product.datasets),
            spec=product.spec,
            consumers=list(product.consumers),
            state=product.state.value,
            created_at=product.created_at,
            state_changed_at=product.state_changed_at,
            state_reason=product.state_reason,
        )
    )
    append(
        conn,
        "he.product",
        product.operator,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail={"product": product.id, "kind": product.kind.value, "from": None}
        | {"to": product.state.value, "consumers": list(product.consumers)}
        | dict(detail),
    )


def transition(
    conn: Connection,
    product_id: str,
    to: State,
    *,
    actor: str,
    reason: str,
    clock: Clock = system_clock,
) -> HEProduct:
    """Move the product to ``to``: checked, persisted and audited in the caller's
    transaction. ``HEConflict`` when the table refuses or the product moved meanwhile."""
    product = get_product(conn, product_id)
    audit = Audit(
        actor,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail={"kind": product.kind.value, "reason": reason},
    )
    values = {"state_changed_at": clock(), "state_reason": reason}
    try:
        lifecycle.transition(
            conn,
            HE_PRODUCT,
            product_id,
            product.state,
            to,
            audit,
            values=values,
            key_name="product",
        )
    except IllegalMove as e:
        raise HEConflict(f"product {product_id} is {product.state}; it cannot become {to}") from e
    except MovedMeanwhile as e:
        raise HEConflict(f"product {product_id} changed state meanwhile") from e
    return get_product(conn, product_id)


def follow_grant(conn: Connection, product: HEProduct, clock: Clock = system_clock) -> HEProduct:
    """Bring the product's state in line with its grant's (see the module docstring)."""
    row = conn.execute(sa.select(grants.c.state).where(grants.c.id == product.grant_id)).first()
    grant = GrantState(row[0]) if row is not None else GrantState.REVOKED
    moves = {
        (State.APPROVED, GrantState.SUSPENDED): (State.SUSPENDED, "the grant is suspended"),
        (State.SUSPENDED, GrantState.ACTIVE): (State.APPROVED, "the grant is active again"),
    }
    move = moves.get((product.state, grant))
    if grant in ENDED and TRANSITIONS[product.state] and product.state != State.DENIED:
        move = (State.WITHDRAWN, f"the grant is {grant.value}")
    if move is None:
        return product
    return transition(conn, product.id, move[0], actor=SYSTEM, reason=move[1], clock=clock)


def suspend_grant_products(conn: Connection, grant_id: str) -> list[str]:
    """The grant-suspension hook: suspend the grant's approved products, in the
    suspension's transaction."""
    moved = []
    for product in list_products(conn, grant_id=grant_id):
        if product.state == State.APPROVED:
            transition(conn, product.id, State.SUSPENDED, actor=SYSTEM, reason="grant suspended")
            moved.append(product.id)
    return moved


def withdraw_grant_products(conn: Connection, grant_id: str) -> list[str]:
    """The grant-end hook: withdraw the ended grant's products that are not final, in
    the ending's transaction (so none answers a call once its tables are destroyed)."""
    moved = []
    for product in list_products(conn, grant_id=grant_id):
        if follow_grant(conn, product).state != product.state:
            moved.append(product.id)
    return moved
