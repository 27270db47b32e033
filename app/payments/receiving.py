"""Receiving a gateway's webhook on a host: verify, store once, re-read, apply, in one
transaction.

The receiver is the host's owner: a panel's host settles its customers' top-ups with the
panel's gateway settings; the platform's root domain settles panels' wholesale top-ups with the
platform's. An event naming a top-up the receiver does not own changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import stripe

from app.extensions import db
from app.payments import midtrans_gateway, stripe_gateway
from app.payments.events import note_outcome, record_event
from app.payments.models import MIDTRANS, STRIPE, Topup
from app.payments.services import GatewayUnavailable
from app.payments.settings import gateway_account
from tenants.context import across_tenants

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    """What the webhook answers: an HTTP status and a short word for the gateway's log."""

    status: int
    message: str


def _receiver_topups(receiver: int | None):
    """A finder of the top-ups this receiver may settle, each locked when found."""

    def find(statement):
        if receiver is None:
            owned = (Topup.customer_id.is_(None),)
        else:
            owned = (Topup.tenant_id == receiver, Topup.customer_id.is_not(None))
        return db.session.scalar(
            statement.where(*owned).with_for_update().execution_options(populate_existing=True)
        )

    return find


def receive_stripe(receiver: int | None, payload: bytes, signature: str | None) -> Receipt:
    account = gateway_account(receiver, STRIPE)
    if account is None or not account.webhook_secret:
        return Receipt(404, "no Stripe account here")
    try:
        event = stripe_gateway.verify_event(account, payload, signature)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        log.warning("Stripe webhook refused on %s: %s", receiver or "platform", exc)
        return Receipt(400, "bad signature")
    find = _receiver_topups(receiver)

    def topups(*, session_id=None, payment_ref=None):
        if session_id is not None:
            return find(stripe_gateway.session_topup(session_id))
        return find(stripe_gateway.payment_topup(payment_ref))

    return _apply_once(
        receiver, STRIPE, event["id"], event["type"],
        lambda: stripe_gateway.apply_event(account, event, topups),
    )  # fmt: skip


def receive_midtrans(receiver: int | None, payload: bytes) -> Receipt:
    account = gateway_account(receiver, MIDTRANS)
    if account is None or not account.secret_key:
        return Receipt(404, "no Midtrans account here")
    try:
        body = midtrans_gateway.verify_notification(account, payload)
    except midtrans_gateway.ForgedNotification as exc:
        log.warning("Midtrans notification refused on %s: %s", receiver or "platform", exc)
        return Receipt(400, "bad signature")
    find = _receiver_topups(receiver)
    order_id = str(body["order_id"])

    def apply():
        topup = find(midtrans_gateway.order_topup(order_id))
        if topup is None:
            return "unknown order", None
        status = midtrans_gateway.read_status(account, order_id)
        if status is None:
            return "no transaction", topup
        return midtrans_gateway.apply_status(status, topup), topup

    kind = str(body.get("transaction_status", ""))
    return _apply_once(receiver, MIDTRANS, midtrans_gateway.notification_id(payload), kind, apply)


def _apply_once(receiver: int | None, gateway: str, event_id: str, kind: str, apply) -> Receipt:
    """Store the event and apply it in one transaction; a failure stores nothing, so the
    gateway's next delivery is applied."""
    try:
        with across_tenants():
            row = record_event(receiver, gateway, event_id, kind)
            if row is None:
                db.session.rollback()
                return Receipt(200, "already received")
            outcome, topup = apply()
            note_outcome(row, outcome, topup.id if topup else None)
            db.session.commit()
    except GatewayUnavailable as exc:
        db.session.rollback()
        log.warning("%s event %s not applied: %s", gateway, event_id, exc)
        return Receipt(503, "gateway not reachable; retry")
    except Exception:
        db.session.rollback()
        raise
    return Receipt(200, outcome)
