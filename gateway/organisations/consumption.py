"""No self-consumption: an operator does not consume the encrypted products it delivered.

The rules: 重庆市公共数据资源授权运营管理实施办法(试行) art. 20 and 成都市公共数据资源
授权运营实施细则 art. 21 (“运营机构……不得直接或间接参与授权范围内已交付的公共数据产品和
服务再开发”): the operator may not, directly or indirectly, take part in re-developing
the products it delivered. Calling one of its own privacy-computing products as a
consumer is such a use; through a colleague's account it is the indirect one.

Invariants:

- A product (``gateway.he``) cannot list as consumer its operator or any account of
  the operator's organisation (:func:`refuse_self_consumers`, at definition): the
  refusal is a denied ``scope.decision`` (committed on its own) and a 403 citing the
  articles.
- A call is refused the same way when, *now*, the consumer is the operator or a
  member of the operator's organisation (:func:`check_may_consume`), whatever the
  organisations were when the product was defined; the call's caller audits it
  (``he.call`` with outcome ``SelfConsumption``).
- Accounts without an organisation are nobody's colleagues.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.he.errors import HEForbidden
from gateway.organisations.service import colleagues

ARTICLES = (
    "重庆市公共数据资源授权运营管理实施办法(试行)第二十条; "
    "成都市公共数据资源授权运营实施细则第二十一条"
)


class SelfConsumption(HEForbidden):
    """The consumer is the product's operator, or of the operator's organisation."""


def can_consume(conn: Connection, operator: str, consumer: str) -> bool:
    """Rule: an account may consume a product unless it is the product's operator or
    belongs, now, to the operator's organisation."""
    return not colleagues(conn, operator, consumer)


def check_may_consume(conn: Connection, operator: str, consumer: str) -> None:
    """Raise :class:`SelfConsumption` unless :func:`can_consume`."""
    if not can_consume(conn, operator, consumer):
        raise SelfConsumption(
            f"{consumer} is the product's operator or of its organisation: an operator may "
            f"not take part in re-developing or consuming the products it delivered ({ARTICLES})"
        )


def refuse_self_consumers(
    engine: Engine,
    operator: str,
    consumers: Sequence[str],
    *,
    product_id: str,
    grant_id: str,
    datasets: Sequence[str],
) -> None:
    """Refuse a definition listing a consumer :func:`can_consume` refuses: a denied
    ``scope.decision`` naming them (committed), then :class:`SelfConsumption`."""
    with engine.begin() as conn:
        refused = sorted({c for c in consumers if not can_consume(conn, operator, c)})
        if not refused:
            return
        reason = f"consumers of the operator itself or its organisation ({ARTICLES})"
        detail = {
            "he_product": product_id,
            "action": "offer",
            "allowed": False,
            "consumers": refused,
            "reason": [reason],
        }
        append(conn, "scope.decision", operator, grant_id=grant_id, datasets=datasets,
               detail=detail)  # fmt: skip
    raise SelfConsumption(
        f"a product cannot be offered to {', '.join(refused)}: the operator or an account of "
        f"its organisation; an operator may not take part in re-developing or consuming the "
        f"products it delivered ({ARTICLES})"
    )
