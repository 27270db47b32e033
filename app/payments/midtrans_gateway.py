"""Midtrans: Snap top-ups (QRIS, GoPay, virtual accounts), and the notification that settles
them.

midtransclient 1.4.2 keeps its base URLs as class constants, shares one mutable default
`custom_headers` dict between instances, and sets no HTTP timeout. So a client is built per
use, with its own headers dict, base URLs set on its own config instance, and an HTTP session
that bounds every call.

A notification proves itself with `signature_key = SHA512(order_id + status_code +
gross_amount + server_key)`, checked here before anything else; the status is then re-read
from the Core API, and only that re-read state is applied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import midtransclient
from midtransclient.error_midtrans import JSONDecodeError, MidtransAPIError
from requests import RequestException
from sqlalchemy import select

from app.money.gateways import midtrans_amount
from app.payments.http import GatewaySession
from app.payments.models import EXPIRED, FAILED, MIDTRANS, GatewayAccount, Topup
from app.payments.services import (
    GatewayUnavailable,
    settle_paid,
    settle_refund,
    settle_unpaid,
)
from app.types import utcnow

log = logging.getLogger(__name__)

SNAP_LIFETIME_MINUTES = 60
PAID = {"settlement"}
FAILED_STATES = {"deny", "cancel", "failure"}


class ForgedNotification(ValueError):
    """A notification whose signature is not this merchant's, or that is not one at all."""


def _configured(client, account: GatewayAccount):
    client.http_client.http_client = GatewaySession()
    if account.api_base:
        config = client.api_config
        # Instance attributes shadow the class constants for this client only.
        config.CORE_SANDBOX_BASE_URL = config.CORE_PRODUCTION_BASE_URL = account.api_base
        config.SNAP_SANDBOX_BASE_URL = config.SNAP_PRODUCTION_BASE_URL = (
            account.api_base + "/snap/v1"
        )
    return client


def snap_client(account: GatewayAccount, notification_url: str) -> midtransclient.Snap:
    return _configured(
        midtransclient.Snap(
            is_production=account.production,
            server_key=account.secret_key,
            client_key=account.client_key,
            custom_headers={"X-Override-Notification": notification_url},
        ),
        account,
    )


def core_client(account: GatewayAccount) -> midtransclient.CoreApi:
    return _configured(
        midtransclient.CoreApi(
            is_production=account.production,
            server_key=account.secret_key,
            client_key=account.client_key,
            custom_headers={},
        ),
        account,
    )


def create_snap(
    account: GatewayAccount, topup: Topup, back_url: str, notify_url: str, description: str
) -> str:
    """A Snap transaction for the top-up, its notifications sent to `notify_url`; the URL of
    its payment page."""
    gross = midtrans_amount(topup.amount, topup.currency)
    parameters = {
        "transaction_details": {"order_id": topup.external_id, "gross_amount": gross},
        "item_details": [
            {"id": f"topup-{topup.id}", "price": gross, "quantity": 1, "name": description[:50]}
        ],
        "enabled_payments": [
            "other_qris",
            "gopay",
            "bca_va",
            "bni_va",
            "bri_va",
            "permata_va",
            "credit_card",
        ],
        "callbacks": {"finish": back_url},
        "expiry": {"unit": "minutes", "duration": SNAP_LIFETIME_MINUTES},
    }
    try:
        reply = snap_client(account, notify_url).create_transaction(parameters)
    except (MidtransAPIError, JSONDecodeError, RequestException) as exc:
        log.warning("Midtrans Snap for top-up %s failed: %s", topup.id, exc)
        raise GatewayUnavailable(f"Midtrans refused or did not answer: {exc}") from None
    return reply["redirect_url"]


def signature_for(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    text = f"{order_id}{status_code}{gross_amount}{server_key}"
    return hashlib.sha512(text.encode()).hexdigest()


def verify_notification(account: GatewayAccount, payload: bytes) -> dict:
    """The notification, if it is JSON carrying this merchant's signature."""
    try:
        body = json.loads(payload)
        fields = [str(body[k]) for k in ("order_id", "status_code", "gross_amount")]
        given = str(body["signature_key"])
    except (ValueError, KeyError, TypeError):
        raise ForgedNotification("not a Midtrans notification") from None
    expected = signature_for(*fields, account.secret_key)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ForgedNotification("signature_key does not match")
    return body


def notification_id(payload: bytes) -> str:
    """Midtrans notifications carry no event id; the exact body is one delivery's identity."""
    return hashlib.sha256(payload).hexdigest()


def read_status(account: GatewayAccount, order_id: str) -> dict | None:
    """The transaction's status from the Core API; None when Midtrans has none (no payment
    method chosen yet)."""
    try:
        return core_client(account).transactions.status(order_id)
    except MidtransAPIError as exc:
        if str(getattr(exc, "api_response_dict", {}).get("status_code")) == "404":
            return None
        raise GatewayUnavailable(f"Midtrans did not answer: {exc}") from None
    except (JSONDecodeError, RequestException) as exc:
        raise GatewayUnavailable(f"Midtrans did not answer: {exc}") from None


def apply_status(status: dict, topup: Topup) -> str:
    """The transaction's state, as read from Midtrans, applied to its top-up; never back."""
    state = status.get("transaction_status")
    try:
        gross = Decimal(str(status.get("gross_amount")))
    except InvalidOperation:
        return "unreadable amount"
    if state in PAID or (state == "capture" and status.get("fraud_status") == "accept"):
        return settle_paid(
            topup,
            gross,
            status.get("currency") or "IDR",
            payment_ref=status.get("transaction_id"),
            method=status.get("payment_type"),
        )
    if state == "expire":
        return settle_unpaid(topup, EXPIRED, "payment expired")
    if state in FAILED_STATES:
        return settle_unpaid(topup, FAILED, f"payment {state}")
    if state in ("refund", "partial_refund", "chargeback", "partial_chargeback"):
        refunded = _refunded_total(status, topup, gross)
        return settle_refund(topup, refunded, cause=f"{state}-{refunded}")
    return "waiting"


def _refunded_total(status: dict, topup: Topup, gross: Decimal) -> Decimal:
    if status.get("transaction_status") in ("refund", "chargeback"):
        return topup.amount
    try:
        return Decimal(str(status.get("refund_amount")))
    except InvalidOperation:
        return gross


def reread(account: GatewayAccount, topup: Topup) -> str:
    """The reconciliation's look at a pending top-up. With no transaction at Midtrans (no
    method was ever chosen) it expires with its Snap page."""
    status = read_status(account, topup.external_id)
    if status is None:
        if utcnow() > topup.created_at + timedelta(minutes=SNAP_LIFETIME_MINUTES):
            return settle_unpaid(topup, EXPIRED, "payment page expired")
        return "waiting"
    return apply_status(status, topup)


def order_topup(order_id: str):
    return select(Topup).where(Topup.gateway == MIDTRANS, Topup.external_id == order_id)
