"""Webhook delivery for the gateway simulator: sent synchronously, logged in memory."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field

import requests
from flask import Blueprint, current_app, jsonify, request

from app.providers.client import loopback_for_localhost

TIMEOUT_SECONDS = 10
GATEWAYS = ("stripe", "midtrans")


@dataclass
class Webhook:
    """One webhook to send: for Stripe, `stripe_secret` signs it at the moment it is sent."""

    gateway: str
    url: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    stripe_secret: str | None = None


@dataclass
class Delivery:
    n: int
    webhook: Webhook
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None

    def as_json(self) -> dict:
        return {
            "n": self.n,
            "gateway": self.webhook.gateway,
            "url": self.webhook.url,
            "headers": self.headers,
            "body": self.webhook.body,
            "status": self.status,
            "error": self.error,
        }


def stripe_signature(secret: str, timestamp: int, body: str) -> str:
    """The `Stripe-Signature` header value over the exact body bytes."""
    signed = f"{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def headers_for(webhook: Webhook) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **webhook.headers}
    if webhook.stripe_secret is not None:
        # Real time, not the simulator's clock: receivers check the timestamp against theirs.
        headers["Stripe-Signature"] = stripe_signature(
            webhook.stripe_secret, int(time.time()), webhook.body
        )
    return headers


def post_webhook(url: str, body: str, headers: dict[str, str]) -> requests.Response:
    """POST once, and once more only if the connection could not be made at all (nothing was
    received, so a second try cannot deliver twice)."""
    target, extra = loopback_for_localhost(url)
    data = body.encode()
    try:
        return requests.post(
            target, data=data, headers={**headers, **extra}, timeout=TIMEOUT_SECONDS
        )
    except requests.ConnectionError:
        return requests.post(
            target, data=data, headers={**headers, **extra}, timeout=TIMEOUT_SECONDS
        )


class DeliveryLog:
    """Every webhook sent, in order; `send` never raises, whatever the receiver does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []

    def send(self, webhook: Webhook) -> Delivery:
        headers = headers_for(webhook)
        with self._lock:
            delivery = Delivery(len(self._deliveries) + 1, webhook, headers)
            self._deliveries.append(delivery)
        try:
            response = post_webhook(webhook.url, webhook.body, headers)
        except requests.RequestException as error:
            error_text = f"{type(error).__name__}: {error}"
            status = None
        else:
            status = response.status_code
            error_text = None if 200 <= status < 300 else f"HTTP {status}"
        with self._lock:
            delivery.status = status
            delivery.error = error_text
        return delivery

    def send_all(self, webhooks: list[Webhook]) -> None:
        for webhook in webhooks:
            self.send(webhook)

    def redeliver(self, n: int) -> Delivery | None:
        with self._lock:
            if not 1 <= n <= len(self._deliveries):
                return None
            webhook = self._deliveries[n - 1].webhook
        return self.send(webhook)

    def listing(self, gateway: str | None = None) -> list[dict]:
        with self._lock:
            return [
                delivery.as_json()
                for delivery in self._deliveries
                if gateway is None or delivery.webhook.gateway == gateway
            ]

    def reset(self) -> None:
        with self._lock:
            self._deliveries.clear()


def delivery_log() -> DeliveryLog:
    return current_app.extensions["gatewaysim.deliveries"]


deliveries = Blueprint("gatewaysim_deliveries", __name__)


@deliveries.get("/__sim/deliveries")
def list_deliveries():
    """Every webhook sent so far, optionally for one gateway."""
    gateway = request.args.get("gateway") or None
    if gateway is not None and gateway not in GATEWAYS:
        return jsonify(error="gateway must be stripe or midtrans"), 400
    return jsonify(deliveries=delivery_log().listing(gateway))


@deliveries.post("/__sim/deliveries/<int:n>/redeliver")
def redeliver(n: int):
    """Send a logged webhook again (Stripe's re-signed with a fresh timestamp)."""
    delivery = delivery_log().redeliver(n)
    if delivery is None:
        return jsonify(error=f"no delivery {n}"), 404
    return jsonify(delivery.as_json())
