"""Read-only questions about a customer's orders, for the storefront: their list (newest first,
by the status the customer sees, searched by id or link), one order, and how many there are.

Every query names the tenant and the customer explicitly, on top of the central scoping, so
another customer's or another tenant's order id finds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select

from app.extensions import db
from app.orders.models import API_STATUS, Order

MAX_SEARCH = 200
MAX_ORDER_ID = 2**31 - 1  # the id column is a 32-bit integer
ORDER_NUMBER = re.compile(r"#?([0-9]{1,10})")


def customer_statuses() -> dict[str, tuple[str, ...]]:
    """The statuses a customer sees (API v2's), in pipeline order, each with the internal
    states shown as it: "Pending" covers `pending` and `on_hold`, and so on."""
    shown: dict[str, tuple[str, ...]] = {}
    for state, visible in API_STATUS.items():
        shown[visible] = (*shown.get(visible, ()), state)
    return shown


@dataclass(frozen=True)
class OrderFilter:
    """What a customer asked the order list for: a visible status ("Completed"), and a search
    that is an order id or a part of a link."""

    status: str | None = None
    search: str = ""


def _customer_orders(tenant_id: int, customer_id: int, where: OrderFilter) -> Select:
    query = select(Order).where(Order.tenant_id == tenant_id, Order.customer_id == customer_id)
    states = customer_statuses().get(where.status) if where.status else None
    if states:
        query = query.where(Order.status.in_(states))
    search = where.search.strip()[:MAX_SEARCH]
    if search:
        by_link = Order.link.icontains(search, autoescape=True)
        number = ORDER_NUMBER.fullmatch(search)
        if number and int(number[1]) <= MAX_ORDER_ID:
            query = query.where(or_(Order.id == int(number[1]), by_link))
        else:
            query = query.where(by_link)
    return query


def customer_orders(
    tenant_id: int,
    customer_id: int,
    where: OrderFilter | None = None,
    *,
    offset: int = 0,
    limit: int = 20,
) -> list[Order]:
    """One page of the customer's orders, newest first."""
    query = _customer_orders(tenant_id, customer_id, where or OrderFilter())
    return list(db.session.scalars(query.order_by(Order.id.desc()).offset(offset).limit(limit)))


def count_customer_orders(
    tenant_id: int, customer_id: int, where: OrderFilter | None = None
) -> int:
    """How many orders the list would show, over all its pages."""
    query = _customer_orders(tenant_id, customer_id, where or OrderFilter())
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def customer_order(tenant_id: int, customer_id: int, order_id: int) -> Order | None:
    """The customer's order `order_id`, or None when it is not theirs (or not this tenant's)."""
    if not 0 < order_id <= MAX_ORDER_ID:
        return None
    return db.session.scalar(
        select(Order).where(
            Order.id == order_id,
            Order.tenant_id == tenant_id,
            Order.customer_id == customer_id,
        )
    )
