"""Stripe: Checkout Sessions for top-ups, and the webhook that settles them.

The webhook trusts nothing in the event but its id and type: the signature proves Stripe sent
it, and the state is then re-read from Stripe's API (the session, the charge, the dispute), so
a replayed, late or out-of-order event applies the current state, which is idempotent.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import stripe
from sqlalchemy import select

from app.money.currency import currency as lookup_currency
from app.money.gateways import stripe_minor_units
from app.payments.http import GATEWAY_TIMEOUT, GatewaySession
from app.payments.models import EXPIRED, FAILED, STRIPE, GatewayAccount, Topup
from app.payments.services import (
    GatewayUnavailable,
    settle_dispute,
    settle_paid,
    settle_refund,
    settle_unpaid,
)
from app.types import utcnow

log = logging.getLogger(__name__)

CHECKOUT_LIFETIME = timedelta(hours=1)
# Disputes in these states have not taken the money (inquiries) or have given it back.
DISPUTE_FUNDS_KEPT = {"won", "warning_closed", "warning_needs_response", "warning_under_review"}
EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
)


def stripe_client(account: GatewayAccount) -> stripe.StripeClient:
    """A client per use, with its own key, base URL and a bounded HTTP session."""
    options = {}
    if account.api_base:
        options["base_addresses"] = {"api": account.api_base}
    return stripe.StripeClient(
        account.secret_key,
        http_client=stripe.RequestsClient(timeout=GATEWAY_TIMEOUT, session=GatewaySession()),
        max_network_retries=1,
        **options,
    )


def from_minor(amount: int, currency: str) -> Decimal:
    return Decimal(int(amount)).scaleb(-lookup_currency(currency).stripe_places)


def create_checkout(
    account: GatewayAccount, topup: Topup, back_url: str, description: str
) -> tuple[str, str]:
    """A Checkout Session for the top-up: (session id, its URL). The idempotency key is the
    top-up's, so a retried call (or the reconciliation) gets the same session back."""
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": topup.currency.lower(),
                    "unit_amount": stripe_minor_units(topup.amount, topup.currency),
                    "product_data": {"name": description},
                },
                "quantity": 1,
            }
        ],
        "success_url": back_url,
        "cancel_url": back_url,
        "client_reference_id": str(topup.id),
        "metadata": {"topup_id": str(topup.id), "tenant_id": str(topup.tenant_id)},
        "expires_at": int((topup.created_at + CHECKOUT_LIFETIME).timestamp()),
    }
    try:
        session = stripe_client(account).v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"pasok-topup-{topup.id}"}
        )
    except stripe.StripeError as exc:
        log.warning("Stripe checkout for top-up %s failed: %s", topup.id, exc)
        raise GatewayUnavailable(f"Stripe refused or did not answer: {exc}") from None
    return session.id, session.url


def verify_event(account: GatewayAccount, payload: bytes, signature: str | None):
    """The event, if its signature is Stripe's for this account and recent (5 minutes);
    raises stripe.SignatureVerificationError or ValueError otherwise."""
    return stripe.Webhook.construct_event(payload, signature, account.webhook_secret)


def apply_event(account: GatewayAccount, event, topups) -> tuple[str, Topup | None]:
    """Apply a verified event: (what happened, the top-up). `topups(session_id=…)` or
    `topups(payment_ref=…)` finds a top-up this receiver may touch, locked."""
    kind = event["type"]
    obj = event["data"]["object"]
    client = stripe_client(account)
    try:
        if kind.startswith("checkout.session."):
            topup = topups(session_id=obj["id"])
            if topup is None:
                return "unknown session", None
            session = client.v1.checkout.sessions.retrieve(obj["id"])
            failed = kind == "checkout.session.async_payment_failed"
            return apply_session(session, topup, async_failed=failed), topup
        if kind == "charge.refunded":
            charge = client.v1.charges.retrieve(obj["id"])
            topup = topups(payment_ref=charge.payment_intent)
            if topup is None:
                return "unknown payment", None
            refunded = from_minor(charge.amount_refunded, charge.currency)
            cause = f"refund-{charge.amount_refunded}"
            return settle_refund(topup, refunded, cause=cause), topup
        if kind.startswith("charge.dispute."):
            dispute = client.v1.disputes.retrieve(obj["id"])
            topup = topups(payment_ref=dispute.payment_intent)
            if topup is None:
                return "unknown payment", None
            lost = dispute.status not in DISPUTE_FUNDS_KEPT
            amount = from_minor(dispute.amount, dispute.currency)
            return settle_dispute(topup, dispute.id, amount, funds_lost=lost), topup
    except stripe.StripeError as exc:
        raise GatewayUnavailable(f"Stripe did not answer: {exc}") from None
    return "ignored", None


def apply_session(session, topup: Topup, *, async_failed: bool = False) -> str:
    """A Checkout Session's state, as read from Stripe, applied to its top-up. A delayed
    method (a bank debit) that failed leaves the session complete and unpaid, as it is while
    the payment is in flight: only the failure event tells them apart."""
    if session.status == "complete" and session.payment_status in ("paid", "no_payment_required"):
        return settle_paid(
            topup,
            from_minor(session.amount_total, session.currency),
            session.currency,
            payment_ref=session.payment_intent,
            method="card",
        )
    if session.status == "expired":
        return settle_unpaid(topup, EXPIRED, "checkout expired")
    if session.status == "complete" and async_failed:
        return settle_unpaid(topup, FAILED, "payment failed")
    return "waiting"


def reread(account: GatewayAccount, topup: Topup) -> str:
    """The reconciliation's look at a pending top-up: its session's state now. One whose session
    was never made (the process died during the call) expires with its checkout's lifetime."""
    if topup.external_id is None:
        if utcnow() > topup.created_at + CHECKOUT_LIFETIME:
            return settle_unpaid(topup, EXPIRED, "checkout never started")
        return "no session yet"
    client = stripe_client(account)
    try:
        session = client.v1.checkout.sessions.retrieve(topup.external_id)
        if session.status == "open" and utcnow() > topup.created_at + CHECKOUT_LIFETIME:
            session = client.v1.checkout.sessions.expire(topup.external_id)
    except stripe.StripeError as exc:
        raise GatewayUnavailable(f"Stripe did not answer: {exc}") from None
    return apply_session(session, topup)


def session_topup(session_id: str):
    return select(Topup).where(Topup.gateway == STRIPE, Topup.external_id == session_id)


def payment_topup(payment_ref: str):
    return select(Topup).where(Topup.gateway == STRIPE, Topup.payment_ref == payment_ref)
