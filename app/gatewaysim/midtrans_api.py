"""The simulator's Midtrans: Snap create, Core API status/expire/cancel, the Snap pay pages,
and admin actions for what happens after payment (refunds, chargebacks, denials)."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from app.gatewaysim.delivery import DeliveryLog, Webhook

JAKARTA = timezone(timedelta(hours=7), "WIB")
STATUS_CODES = {
    "pending": "201",
    "settlement": "200",
    "capture": "200",
    "deny": "202",
    "cancel": "200",
    "expire": "407",
    "refund": "200",
    "partial_refund": "200",
    "chargeback": "200",
}
METHODS = {
    "qris": "QRIS",
    "gopay": "GoPay",
    "bank_transfer": "Bank transfer (virtual account)",
    "credit_card": "Credit / debit card",
}
# Snap's enabled_payments names, mapped to the simulator's four methods.
ENABLED_PAYMENT_METHODS = {
    "qris": "qris",
    "other_qris": "qris",
    "gopay": "gopay",
    "credit_card": "credit_card",
    "bank_transfer": "bank_transfer",
    "bca_va": "bank_transfer",
    "bni_va": "bank_transfer",
    "bri_va": "bank_transfer",
    "permata_va": "bank_transfer",
    "echannel": "bank_transfer",
    "other_va": "bank_transfer",
}
EXPIRY_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEFAULT_EXPIRY_SECONDS = 24 * 3600
NOT_FOUND = {"status_code": "404", "status_message": "Transaction doesn't exist."}


def signature_key(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """Midtrans's notification signature: sha512(order_id + status_code + gross_amount + key)."""
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


def jakarta_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(JAKARTA).strftime("%Y-%m-%d %H:%M:%S")


def merchant_id(server_key: str) -> str:
    return "G" + str(int(hashlib.sha256(server_key.encode()).hexdigest(), 16))[:9]


def rupiah(amount: int) -> str:
    return "Rp" + f"{amount:,}".replace(",", ".")


@dataclass
class MidtransTransaction:
    server_key: str
    order_id: str
    gross_amount: int
    token: str
    created: float
    expires_at: float
    notify_urls: list[str]
    finish_url: str | None
    methods: list[str]
    item_details: list[dict] = field(default_factory=list)
    transaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str | None = None  # None: Snap token made, no method chosen, unknown to Core API
    payment_type: str | None = None
    transaction_time: float | None = None
    settlement_time: float | None = None
    fraud_status: str = "accept"
    refunded: int = 0

    @property
    def amount_text(self) -> str:
        return f"{self.gross_amount}.00"

    @property
    def status_code(self) -> str:
        return STATUS_CODES[self.status or "pending"]

    @property
    def va_number(self) -> str:
        digits = int(hashlib.sha256(self.order_id.encode()).hexdigest(), 16)
        return f"8808{digits % 10**10:010d}"

    def status_body(self, message: str) -> dict[str, Any]:
        """The Core API status reply; notifications carry the same fields."""
        body: dict[str, Any] = {
            "status_code": self.status_code,
            "status_message": message,
            "transaction_id": self.transaction_id,
            "order_id": self.order_id,
            "merchant_id": merchant_id(self.server_key),
            "gross_amount": self.amount_text,
            "currency": "IDR",
            "payment_type": self.payment_type,
            "transaction_time": jakarta_time(self.transaction_time or self.created),
            "transaction_status": self.status,
            "fraud_status": self.fraud_status,
            "expiry_time": jakarta_time(self.expires_at),
            "signature_key": signature_key(
                self.order_id, self.status_code, self.amount_text, self.server_key
            ),
        }
        if self.settlement_time is not None:
            body["settlement_time"] = jakarta_time(self.settlement_time)
        if self.payment_type == "bank_transfer":
            body["va_numbers"] = [{"bank": "bca", "va_number": self.va_number}]
        if self.payment_type == "credit_card":
            body.update(masked_card="48111111-1114", bank="bca", card_type="credit")
        if self.refunded:
            body["refund_amount"] = f"{self.refunded}.00"
        return body


class MidtransState:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.accounts: dict[str, dict[str, MidtransTransaction]] = {}
        self.tokens: dict[str, MidtransTransaction] = {}

    def now(self) -> float:
        return self.clock.now()

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.tokens.clear()

    def notification(self, transaction: MidtransTransaction) -> list[Webhook]:
        body = json.dumps(transaction.status_body("midtrans payment notification"))
        return [Webhook("midtrans", url, body) for url in transaction.notify_urls]

    def move(self, transaction: MidtransTransaction, status: str) -> list[Webhook]:
        transaction.status = status
        return self.notification(transaction)

    def refresh(self, transaction: MidtransTransaction) -> list[Webhook]:
        """A pending payment lapses at its expiry; here it does when next looked at."""
        if transaction.status == "pending" and self.now() >= transaction.expires_at:
            return self.move(transaction, "expire")
        return []

    def choose_method(self, transaction: MidtransTransaction, method: str) -> list[Webhook]:
        transaction.payment_type = method
        transaction.transaction_time = self.now()
        return self.move(transaction, "pending")

    def pay(self, transaction: MidtransTransaction) -> list[Webhook]:
        transaction.settlement_time = self.now()
        if transaction.payment_type == "credit_card":
            return self.move(transaction, "capture")
        return self.move(transaction, "settlement")

    def refund(self, transaction: MidtransTransaction, amount: int | None) -> list[Webhook]:
        if transaction.status not in ("settlement", "capture", "partial_refund"):
            raise ValueError(f"cannot refund a transaction in {transaction.status}")
        remaining = transaction.gross_amount - transaction.refunded
        amount = remaining if amount is None else amount
        if not 0 < amount <= remaining:
            raise ValueError(f"refund amount must be between 1 and {remaining}")
        transaction.refunded += amount
        full = transaction.refunded == transaction.gross_amount
        return self.move(transaction, "refund" if full else "partial_refund")

    def chargeback(self, transaction: MidtransTransaction) -> list[Webhook]:
        if transaction.status not in ("settlement", "capture", "refund", "partial_refund"):
            raise ValueError(f"cannot charge back a transaction in {transaction.status}")
        return self.move(transaction, "chargeback")

    def deny(self, transaction: MidtransTransaction) -> list[Webhook]:
        if transaction.status != "pending":
            raise ValueError(f"only a pending transaction can be denied, not {transaction.status}")
        transaction.fraud_status = "deny"
        return self.move(transaction, "deny")


def midtrans_state() -> MidtransState:
    return current_app.extensions["gatewaysim.midtrans"]


def delivery_log() -> DeliveryLog:
    return current_app.extensions["gatewaysim.deliveries"]


# -- Snap and Core API -----------------------------------------------------------------------

api = Blueprint("gatewaysim_midtrans_api", __name__, url_prefix="/midtrans")


class SnapError(ValueError):
    """A Snap request error: HTTP 400 `{"error_messages": [...]}`."""


def server_key() -> str | None:
    auth = request.authorization
    return auth.username if auth is not None and auth.username else None


def unauthorized():
    message = "Access denied due to unauthorized transaction, please check client or server key"
    return jsonify(status_code="401", status_message=message, error_messages=[message]), 401


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_snap_request(body: Any) -> tuple[str, int, list[dict]]:
    """The order id, gross amount and item details of a valid Snap request."""
    if not isinstance(body, dict):
        raise SnapError("request body must be a JSON object")
    details = body.get("transaction_details")
    if not isinstance(details, dict):
        raise SnapError("transaction_details is required")
    order_id = details.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise SnapError("transaction_details.order_id is required")
    if len(order_id) > 50:
        raise SnapError("transaction_details.order_id too long")
    gross_amount = details.get("gross_amount")
    if gross_amount is None:
        raise SnapError("transaction_details.gross_amount is required")
    if not integer(gross_amount):
        raise SnapError("transaction_details.gross_amount must be an integer for IDR")
    if gross_amount <= 0:
        raise SnapError("transaction_details.gross_amount must be greater than or equal to 0.01")
    items = body.get("item_details")
    if items is None:
        return order_id, gross_amount, []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise SnapError("item_details must be a list of items")
    for item in items:
        if not integer(item.get("price")) or not integer(item.get("quantity")):
            raise SnapError("item_details.price and item_details.quantity must be integers")
        if item["quantity"] < 1:
            raise SnapError("item_details.quantity must be greater than or equal to 1")
    if sum(item["price"] * item["quantity"] for item in items) != gross_amount:
        raise SnapError("transaction_details.gross_amount is not equal to the sum of item_details")
    return order_id, gross_amount, items


def expiry_seconds(body: dict) -> int:
    expiry = body.get("expiry")
    if expiry is None:
        return DEFAULT_EXPIRY_SECONDS
    unit = str(expiry.get("unit", "")).lower().removesuffix("s") if isinstance(expiry, dict) else ""
    duration = expiry.get("duration") if isinstance(expiry, dict) else None
    if unit not in EXPIRY_UNITS:
        raise SnapError("expiry.unit must be second, minute, hour or day")
    if not integer(duration) or duration < 1:
        raise SnapError("expiry.duration must be a positive integer")
    return EXPIRY_UNITS[unit] * duration


def chosen_methods(body: dict) -> list[str]:
    enabled = body.get("enabled_payments")
    if not isinstance(enabled, list):
        return list(METHODS)
    wanted = {ENABLED_PAYMENT_METHODS.get(str(name)) for name in enabled}
    return [method for method in METHODS if method in wanted] or list(METHODS)


def notification_urls() -> list[str]:
    urls = []
    for header in ("X-Override-Notification", "X-Append-Notification"):
        urls += [url.strip() for url in request.headers.get(header, "").split(",")]
    return [url for url in urls if url]


@api.post("/snap/v1/transactions")
def create_transaction():
    """Create a Snap transaction: a token and the redirect URL of its pay page."""
    key = server_key()
    if key is None:
        return unauthorized()
    body = request.get_json(silent=True)
    state = midtrans_state()
    try:
        order_id, gross_amount, items = check_snap_request(body)
        lifetime = expiry_seconds(body)
        with state.lock:
            orders = state.accounts.setdefault(key, {})
            if order_id in orders:
                raise SnapError("transaction_details.order_id sudah digunakan")
            callbacks = body.get("callbacks")
            finish = callbacks.get("finish") if isinstance(callbacks, dict) else None
            now = state.now()
            transaction = MidtransTransaction(
                server_key=key,
                order_id=order_id,
                gross_amount=gross_amount,
                token=str(uuid.uuid4()),
                created=now,
                expires_at=now + lifetime,
                notify_urls=notification_urls(),
                finish_url=finish if isinstance(finish, str) and finish else None,
                methods=chosen_methods(body),
                item_details=items,
            )
            orders[order_id] = transaction
            state.tokens[transaction.token] = transaction
    except SnapError as error:
        return jsonify(error_messages=[str(error)]), 400
    redirect_url = f"{request.host_url}midtrans/snap/v4/redirection/{transaction.token}"
    return jsonify(token=transaction.token, redirect_url=redirect_url), 201


def core_action(view: Callable[[MidtransState, MidtransTransaction], tuple[list, str]]):
    """Find the account's transaction (404 before a method is chosen, as Midtrans does), run
    the view under the lock, send its notifications unlocked, reply with the status body."""

    @wraps(view)
    def wrapper(order_id: str):
        key = server_key()
        if key is None:
            return unauthorized()
        state = midtrans_state()
        with state.lock:
            transaction = state.accounts.get(key, {}).get(order_id)
            if transaction is None or transaction.status is None:
                return jsonify(NOT_FOUND), 404
            outbox = state.refresh(transaction)
            result = view(state, transaction)
            if isinstance(result, tuple):
                webhooks, message = result
                outbox += webhooks
                reply, status = transaction.status_body(message), 200
            else:
                reply, status = result, 412
        delivery_log().send_all(outbox)
        return jsonify(reply), status

    return wrapper


@api.get("/v2/<order_id>/status")
@core_action
def transaction_status(state, transaction):
    """The transaction's status, as the Core API reports it."""
    return [], "Success, transaction is found"


@api.post("/v2/<order_id>/expire")
@core_action
def expire_transaction(state, transaction):
    """Expire a pending transaction."""
    if transaction.status != "pending":
        return cannot_modify(transaction)
    return state.move(transaction, "expire"), "Success, transaction has expired"


@api.post("/v2/<order_id>/cancel")
@core_action
def cancel_transaction(state, transaction):
    """Cancel a pending (or captured card) transaction."""
    if transaction.status not in ("pending", "capture"):
        return cannot_modify(transaction)
    return state.move(transaction, "cancel"), "Success, transaction is canceled"


def cannot_modify(transaction: MidtransTransaction) -> dict:
    return {
        "status_code": "412",
        "status_message": "Merchant cannot modify the status of the transaction",
        "id": transaction.transaction_id,
    }


# -- the Snap pay pages ----------------------------------------------------------------------

snap = Blueprint("gatewaysim_midtrans_snap", __name__, url_prefix="/midtrans/snap/v4/redirection")


def qr_cells(seed: str, size: int = 25) -> list[tuple[int, int]]:
    """A QR-looking pattern (finder squares and noise) drawn from the order id."""
    bits = bin(int(hashlib.sha512(seed.encode()).hexdigest(), 16))[2:].zfill(512) * 2
    cells = []
    for y in range(size):
        for x in range(size):
            corner = next(
                (
                    (cx, cy)
                    for cx, cy in ((0, 0), (size - 7, 0), (0, size - 7))
                    if cx <= x < cx + 7 and cy <= y < cy + 7
                ),
                None,
            )
            if corner is not None:
                dx, dy = x - corner[0], y - corner[1]
                ring = min(dx, dy, 6 - dx, 6 - dy)
                dark = ring != 1
            else:
                dark = bits[(y * size + x) % len(bits)] == "1"
            if dark:
                cells.append((x, y))
    return cells


def page_for(transaction: MidtransTransaction, error: str | None = None, status: int = 200):
    return (
        render_template(
            "gatewaysim/midtrans_pay.html",
            transaction=transaction,
            amount=rupiah(transaction.gross_amount),
            methods=[(method, METHODS[method]) for method in transaction.methods],
            method_name=METHODS.get(transaction.payment_type or "", ""),
            qr=qr_cells(transaction.order_id) if transaction.payment_type == "qris" else [],
            expired=transaction.status is None and transaction.expires_at <= midtrans_state().now(),
            error=error,
        ),
        status,
    )


def not_found_page():
    return render_template(
        "gatewaysim/closed.html", title="Payment not found", message="This link is not valid."
    ), 404


def snap_page(view: Callable[[MidtransState, MidtransTransaction], Any]):
    """Find the token's transaction, run the view under the lock, send its notifications."""

    @wraps(view)
    def wrapper(token: str):
        state = midtrans_state()
        with state.lock:
            transaction = state.tokens.get(token)
            if transaction is None:
                return not_found_page()
            outbox = state.refresh(transaction)
            webhooks, reply = view(state, transaction)
            outbox += webhooks
        delivery_log().send_all(outbox)
        return reply

    return wrapper


@snap.get("/<token>")
@snap_page
def pay_page(state, transaction):
    """The method list, or the chosen method's page, or the outcome."""
    return [], page_for(transaction)


@snap.post("/<token>/method")
@snap_page
def choose_method(state, transaction):
    """Choose a payment method: the transaction now exists, pending."""
    method = request.form.get("method", "")
    if transaction.status is not None:
        return [], redirect(url_for(".pay_page", token=transaction.token), 303)
    if transaction.expires_at <= state.now():
        return [], page_for(transaction, "This payment link has expired.", 410)
    if method not in transaction.methods:
        return [], page_for(transaction, "Choose one of the payment methods shown.", 400)
    webhooks = state.choose_method(transaction, method)
    return webhooks, redirect(url_for(".pay_page", token=transaction.token), 303)


@snap.post("/<token>/pay")
@snap_page
def simulate_payment(state, transaction):
    """The buyer pays: settlement (or capture for cards), then back to the merchant."""
    if transaction.status != "pending":
        return [], page_for(transaction, "This payment can no longer be paid.", 409)
    webhooks = state.pay(transaction)
    return webhooks, finish(transaction)


@snap.post("/<token>/expire")
@snap_page
def simulate_expiry(state, transaction):
    """Let the pending payment lapse now."""
    if transaction.status != "pending":
        return [], page_for(transaction, "Only a pending payment can expire.", 409)
    webhooks = state.move(transaction, "expire")
    return webhooks, finish(transaction)


def finish(transaction: MidtransTransaction):
    if transaction.finish_url is None:
        return page_for(transaction)
    separator = "&" if "?" in transaction.finish_url else "?"
    query = (
        f"order_id={transaction.order_id}&status_code={transaction.status_code}"
        f"&transaction_status={transaction.status}"
    )
    return redirect(f"{transaction.finish_url}{separator}{query}", 303)


# -- admin -----------------------------------------------------------------------------------

admin = Blueprint("gatewaysim_midtrans_admin", __name__, url_prefix="/__sim/midtrans")


def admin_action(action: Callable[[MidtransState, MidtransTransaction, dict], list[Webhook]]):
    """Find the order (by `server_key` in the body when order ids repeat across accounts),
    apply the action, send its notification; reply with the status body."""

    @wraps(action)
    def wrapper(order_id: str):
        body = request.get_json(silent=True) or {}
        state = midtrans_state()
        with state.lock:
            found = [
                orders[order_id]
                for key, orders in state.accounts.items()
                if order_id in orders and body.get("server_key") in (None, key)
            ]
            if not found:
                return jsonify(error=f"no transaction {order_id}"), 404
            if len(found) > 1:
                return jsonify(error=f"{order_id} is in several accounts: give server_key"), 400
            transaction = found[0]
            outbox = state.refresh(transaction)
            try:
                outbox += action(state, transaction, body)
            except ValueError as error:
                reply, status = {"error": str(error)}, 400
            else:
                reply, status = transaction.status_body("Success, transaction is found"), 200
        delivery_log().send_all(outbox)
        return jsonify(reply), status

    return wrapper


@admin.post("/<order_id>/refund")
@admin_action
def refund(state, transaction, body):
    """Refund all, or {"amount": n} rupiah, of a settled payment."""
    amount = body.get("amount")
    if amount is not None and not integer(amount):
        raise ValueError("amount must be a whole number of rupiah")
    return state.refund(transaction, amount)


@admin.post("/<order_id>/chargeback")
@admin_action
def chargeback(state, transaction, body):
    """The buyer's bank takes the payment back."""
    return state.chargeback(transaction)


@admin.post("/<order_id>/deny")
@admin_action
def deny(state, transaction, body):
    """The fraud check denies a pending payment."""
    return state.deny(transaction)
