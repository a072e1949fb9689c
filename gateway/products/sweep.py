"""The sweep's product tasks (registration measures 001 art. 16).

- :func:`notify_renewal_window`: when a registration enters the 60 days before
  it expires (the renewal window), its operator and the administrators are
  told once (the notice's key names the product and the expiry, so a renewed
  registration is told again about its next window).
- :func:`cancel_unrenewed`: a registration past its validity, not renewed, is
  expired and then cancelled (期满未按规定续展的, 由登记机构予以注销): two
  audited moves in one transaction per product; a second sweep at the same
  time loses the compare-and-set and does nothing.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.audit.chain import SYSTEM
from gateway.notices.service import ADMINISTRATORS, notify, to_account
from gateway.products.codes import RENEWAL_WINDOW
from gateway.products.model import PRODUCT, Status, list_products
from gateway.store.lifecycle import Audit, MovedMeanwhile, transition
from gateway.store.tables import products
from gateway.sweep.tasks import SweepContext, Task

ART_16 = "registration measures (001) art. 16"


def notify_renewal_window(ctx: SweepContext) -> list[str]:
    done = []
    with ctx.engine.connect() as conn:
        due = [
            p
            for p in list_products(conn, status=Status.REGISTERED)
            if p.valid_until - RENEWAL_WINDOW <= ctx.now < p.valid_until
        ]
    for product in due:
        with ctx.engine.begin() as conn:
            written = notify(
                conn,
                key=f"product:{product.id}:renewal:{product.valid_until.isoformat()}",
                kind="product.renewal_window",
                subject=f"registration {product.registration_code} expires "
                f"{product.valid_until.date().isoformat()}: renew within the window ({ART_16})",
                audiences=[to_account(product.operator), ADMINISTRATORS],
                at=ctx.now,
                detail={"product": product.id, "valid_until": product.valid_until.isoformat()},
                grant_id=product.grant_id,
            )
        if written:
            done.append(f"product {product.id}: renewal window notice")
    return done


def cancel_unrenewed(ctx: SweepContext) -> list[str]:
    done = []
    with ctx.engine.connect() as conn:
        query = sa.select(products.c.id).where(
            products.c.status == Status.REGISTERED.value, products.c.valid_until <= ctx.now
        )
        ended = [str(r[0]) for r in conn.execute(query)]
    for product_id in ended:
        try:
            with ctx.engine.begin() as conn:
                values = {"status_changed_at": ctx.now}
                expired = Audit(SYSTEM, detail={"reason": "validity ended without renewal"})
                transition(
                    conn,
                    PRODUCT,
                    product_id,
                    Status.REGISTERED,
                    Status.EXPIRED,
                    expired,
                    values=values | {"status_reason": "validity ended"},
                )
                cancelled = Audit(SYSTEM, detail={"reason": "not renewed", "legal_basis": ART_16})
                transition(
                    conn,
                    PRODUCT,
                    product_id,
                    Status.EXPIRED,
                    Status.CANCELLED,
                    cancelled,
                    values=values | {"status_reason": f"not renewed ({ART_16})"},
                )
        except MovedMeanwhile:
            continue  # another sweep, a revocation or a renewal got there first
        done.append(f"product {product_id}: expired unrenewed, cancelled")
    return done


TASKS = (
    Task("products.renewal_window", notify_renewal_window),
    Task("products.cancel_unrenewed", cancel_unrenewed),
)
