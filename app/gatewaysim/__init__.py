"""The gateway simulator: local stand-ins for the Stripe API subset and Midtrans Snap/Core that
Pasok uses, driven by the real `stripe` and `midtransclient` SDKs over HTTP.

A small Flask app of its own (not Pasok's: no database, no tenants), holding its state in
memory behind locks. Run it with `pasok gateway-simulator --port P` (see `app.gatewaysim.cli`).
Webhooks are sent synchronously during the action that causes them (so when a pay POST
returns, its webhook has been answered), timeout 10 s, one retry after a connection error
only; `*.localhost` URLs reach 127.0.0.1 with their Host header kept. A failed delivery never
breaks the page that caused it: it shows in the delivery log.

Stripe — base `http://HOST:P/stripe` (`StripeClient(key, base_addresses={"api": base})`)
- Auth `Authorization: Bearer sk_…`: every `sk_` key is its own isolated account; another or
  no key → 401 `{"error": {"type": "invalid_request_error", "message"}}`. Requests are
  form-encoded with Stripe's `a[b][0]=` nesting. A POST with an `Idempotency-Key` already
  used by the account replays the stored reply (header `Idempotent-Replayed: true`).
- `POST /stripe/v1/checkout/sessions` mode=payment, line_items[i][price_data][currency|
  unit_amount|product_data][name]], line_items[i][quantity], success_url, cancel_url,
  client_reference_id, metadata[…], expires_at (30 min to 24 h ahead; default 24 h),
  payment_method_types[] → a `checkout.session` (`cs_test_…`, status open, payment_status
  unpaid, url `http://<request host>/stripe/pay/<id>`). Bad input → 400 with `param`.
- `GET /stripe/v1/checkout/sessions[?payment_intent=&limit=]` → a list object, newest first.
- `GET /stripe/v1/checkout/sessions/<id>`; another account's id → 404 resource_missing.
  An open session past expires_at reads as expired and sends `checkout.session.expired` once.
- `POST /stripe/v1/checkout/sessions/<id>/expire` open → expired, `checkout.session.expired`.
- `GET /stripe/v1/payment_intents/<pi>` (latest_charge), `GET /stripe/v1/charges/<ch>` (amount,
  amount_refunded, refunded, payment_intent, currency, disputed, status),
  `GET /stripe/v1/disputes/<dp>` (charge, payment_intent, amount, currency, status).
- `POST /stripe/v1/refunds` payment_intent (or charge), amount (optional: the rest) → a
  `refund`; more than the unrefunded rest → 400 param amount. Sends `charge.refunded`
  (data.object = the charge).
- `POST /stripe/v1/webhook_endpoints` url, enabled_events[] → a `webhook_endpoint` with
  `secret` = `stripe_webhook_secret(key, url)` (deterministic); the same url again is the same
  endpoint. `GET /stripe/v1/webhook_endpoints` lists them (without secrets);
  `DELETE /stripe/v1/webhook_endpoints/<we>` deletes one.
- Events go to every endpoint of the account whose enabled_events hold the type or "*":
  `{"id": "evt_…", "object": "event", "api_version", "created", "type", "data": {"object"},
  "livemode": false, "pending_webhooks", "request": {"id": null, "idempotency_key": null}}`,
  signed `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`.
- Pay page `GET /stripe/pay/<id>`: line items, total, card form (4242 4242 4242 4242),
  `#pay`, `#decline`, `#cancel` (link to cancel_url). `POST /stripe/pay/<id>` action=
  `pay` → session complete/paid, payment intent `pi_…` succeeded with charge `ch_…`,
  `checkout.session.completed`, 303 to success_url ({CHECKOUT_SESSION_ID} filled in);
  `pay_async` → complete/unpaid (a bank transfer to settle later), same event and redirect;
  `decline` → 402, the page again with `#card-error`, session still open. A session not
  open → an error page (410), nothing sent.
- Admin (JSON, no key; bad input → 400/404 `{"error"}`), replying with the object:
  `POST /__sim/stripe/sessions/<cs>/settle` {"succeeded": true|false} →
  `checkout.session.async_payment_succeeded|failed`; `POST /__sim/stripe/sessions/<cs>/expire`;
  `POST /__sim/stripe/payment_intents/<pi>/dispute` {"reason"?} → a dispute (needs_response),
  `charge.dispute.created`; `POST /__sim/stripe/disputes/<dp>/close` {"status": "won"|"lost"}
  → `charge.dispute.closed`.

Midtrans — base `http://HOST:P/midtrans` (Snap base URL `…/midtrans/snap/v1`, Core `…/midtrans`)
- Auth HTTP Basic, server key as user: every key is its own account; none → 401
  `{"status_code": "401", "status_message"}`.
- `POST /midtrans/snap/v1/transactions` {transaction_details {order_id, gross_amount (whole
  rupiah)}, item_details? (price * quantity must sum to gross_amount), customer_details,
  enabled_payments, callbacks {finish}, expiry {unit, duration}} → 201 {token, redirect_url
  `http://<request host>/midtrans/snap/v4/redirection/<token>`}. Notifications go to the URLs
  in `X-Override-Notification` (and `X-Append-Notification`), comma-separated. A repeated
  order_id → 400 `{"error_messages": ["transaction_details.order_id sudah digunakan"]}`; a bad
  amount → 400 error_messages.
- `GET /midtrans/v2/<order_id>/status` → the Core status body (status_code, status_message,
  transaction_id, order_id, merchant_id, gross_amount "150000.00", currency IDR, payment_type,
  transaction_time / settlement_time in Asia/Jakarta, transaction_status, fraud_status,
  signature_key, va_numbers / refund_amount when they apply). Before a method is chosen the
  transaction does not exist: 404 `{"status_code": "404", "status_message": "Transaction
  doesn't exist."}`. A pending payment past its expiry reads as expire (notification sent).
- `POST /midtrans/v2/<order_id>/expire` (pending → expire) and `…/cancel` (pending or
  capture → cancel) send a notification and reply with the status body; otherwise 412.
- Pay page `GET /midtrans/snap/v4/redirection/<token>`: method buttons `#method-qris`,
  `#method-gopay`, `#method-bank_transfer`, `#method-credit_card`, which
  `POST …/<token>/method` method=… → pending (status_code 201) + notification, 303 back to the
  page, now showing the method (QR, `#va-number`, or a card form) with `#pay` and `#expire`.
  `POST …/<token>/pay` → settlement (capture for credit_card) + notification;
  `POST …/<token>/expire` → expire + notification; both 303 to callbacks.finish with
  `?order_id=&status_code=&transaction_status=` (or show the outcome without one).
- Notifications: JSON POST of the status body with status_message "midtrans payment
  notification"; signature_key = sha512(order_id + status_code + gross_amount + server_key).
- Admin (JSON, no key; {"server_key"} picks the account when order ids repeat):
  `POST /__sim/midtrans/<order_id>/refund` {"amount"?} → refund / partial_refund;
  `POST /__sim/midtrans/<order_id>/chargeback` → chargeback;
  `POST /__sim/midtrans/<order_id>/deny` → deny (pending only); each with a notification.

Deliveries and reset (JSON, no key)
- `GET /__sim/deliveries[?gateway=stripe|midtrans]` → `{"deliveries": [{"n", "gateway", "url",
  "headers" (Content-Type, Stripe-Signature), "body" (the exact text), "status" (HTTP status or
  null), "error"}]}`
- `POST /__sim/deliveries/<n>/redeliver` → sends the same body again (Stripe's re-signed with a
  fresh timestamp) and replies with the new delivery.
- `POST /__sim/reset` → every account, object and delivery forgotten.
"""

from __future__ import annotations

import time

from flask import Flask, jsonify

from app.gatewaysim import midtrans_api, stripe_api
from app.gatewaysim.delivery import DeliveryLog, deliveries
from app.gatewaysim.stripe_api import stripe_webhook_secret

__all__ = ["WallClock", "create_simulator_app", "stripe_webhook_secret"]


class WallClock:
    """Unix time, moved forward by `advance` so a demo or test can reach an expiry."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


def create_simulator_app(clock=None) -> Flask:
    """A gateway simulator app; `clock` (anything with `now()` in unix seconds) replaces real
    time for object timestamps and expiries. Webhook signatures always use real time."""
    app = Flask(__name__)
    app.json.sort_keys = False
    clock = clock or WallClock()
    app.extensions["gatewaysim.stripe"] = stripe_api.StripeState(clock)
    app.extensions["gatewaysim.midtrans"] = midtrans_api.MidtransState(clock)
    app.extensions["gatewaysim.deliveries"] = DeliveryLog()
    for blueprint in (
        stripe_api.api,
        stripe_api.pay,
        stripe_api.admin,
        midtrans_api.api,
        midtrans_api.snap,
        midtrans_api.admin,
        deliveries,
    ):
        app.register_blueprint(blueprint)

    @app.post("/__sim/reset")
    def reset():
        """Forget every account, object and delivery."""
        for name in ("gatewaysim.stripe", "gatewaysim.midtrans", "gatewaysim.deliveries"):
            app.extensions[name].reset()
        return jsonify(reset=True)

    return app
