"""Operator review: `unknown` orders that no code path may resend.

An order goes to review when a submission may have reached an upstream that does not honour
`ref` (or no longer does) and no upstream id is known to check it by: resending could place it
twice. It stays `unknown` (the customer sees *In progress*) with `review_at` set and its
evidence in `review`: when, the link and quantity, the provider and service, the attempt, and
what was seen. Only an operator moves it on, with one of the actions below, each written to the
audit log: the upstream has it (`mark_delivered`), it is given up (`refund_reviewed`), or the
operator has confirmed that the upstream never received it (`resend_reviewed`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select, update

from app.accounts.models import User
from app.audit.services import record_audit
from app.errors import NotFound, PasokError
from app.extensions import db
from app.orders.models import CANCELED, IN_PROGRESS, PENDING, UNKNOWN, Order
from app.providers.models import Provider, ProviderService
from app.types import utcnow
from tenants.context import tenant_scope


class NotInReview(PasokError):
    def __init__(self, order_id: int):
        super().__init__(_l("Order %(id)s is not waiting for review", id=order_id))


def review_evidence(
    order: Order, *, reason: str, seen: str, http_status: int | None = None
) -> dict[str, Any]:
    """What an operator needs to find the order upstream (or be sure it is not there)."""
    provider = db.session.get(Provider, order.provider_id) if order.provider_id else None
    upstream = (
        db.session.get(ProviderService, order.provider_service_id)
        if order.provider_service_id
        else None
    )
    return {
        "at": _iso(utcnow()),
        "reason": reason,
        "seen": seen,
        "http_status": http_status,
        "link": order.link,
        "quantity": order.quantity,
        "params": dict(order.params or {}),
        "service_id": order.service_id,
        "provider_id": order.provider_id,
        "provider": provider.name if provider else None,
        "provider_url": provider.api_url if provider else None,
        "upstream_service": upstream.external_id if upstream else None,
        "attempt": order.attempts,
        "submitted_at": _iso(order.submitted_at),
        "ref_sent": order.ref_sent,
        "external_id": order.external_id,
    }


def orders_in_review() -> Select:
    """The orders waiting for an operator, oldest first (run across tenants)."""
    return (
        select(Order)
        .where(Order.status == UNKNOWN, Order.review_at.is_not(None))
        .order_by(Order.review_at, Order.id)
    )


def mark_delivered(order_id: int, external_id: str, *, actor: User | str) -> Order:
    """The operator found the order upstream: it goes on as `in_progress` under that id."""
    external_id = (external_id or "").strip()
    if not external_id:
        raise PasokError(_l("Enter the upstream order id"))
    return _resolve(
        order_id,
        {"status": IN_PROGRESS, "external_id": external_id},
        "order.review.delivered",
        {"external_id": external_id},
        actor,
    )


def refund_reviewed(order_id: int, *, actor: User | str) -> Order:
    """The operator gives the order up: canceled, both wallets refunded in full."""
    from app.ledger import refund_order

    order = _resolve(
        order_id,
        {"status": CANCELED, "remains": Order.quantity},
        "order.review.refunded",
        {"refund": "full"},
        actor,
    )
    with tenant_scope(order.tenant_id):
        refund_order(order.id, actor=actor)
    return order


def resend_reviewed(order_id: int, *, actor: User | str) -> Order:
    """The operator has confirmed the upstream never received the order: it is `pending`
    again and will be forwarded (after the caller's commit) like a new one."""
    from app.orders.services import _forward_after_commit

    order = _resolve(
        order_id,
        {"status": PENDING, "next_attempt_at": None, "route_tries": 0},
        "order.review.resent",
        {"confirmed": "the upstream never received it"},
        actor,
    )
    _forward_after_commit([order.id])
    return order


def _resolve(
    order_id: int, values: dict[str, Any], action: str, details: dict[str, Any], actor
) -> Order:
    """Move an order out of review with a conditional UPDATE (so two operators acting at once
    resolve it once) and audit it; the caller commits."""
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFound(_l("Incorrect order ID"))
    with tenant_scope(order.tenant_id):
        done = db.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == UNKNOWN, Order.review_at.is_not(None))
            .values(**values, review_at=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if done != 1:
            raise NotInReview(order_id)
        record_audit(
            action,
            actor=actor,
            tenant_id=order.tenant_id,
            target=f"order:{order_id}",
            details={**details, "evidence": order.review},
        )
        db.session.refresh(order)
    return order


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
