"""Helpers for payment tests: the gateway simulator's admin side, connecting a panel (or the
platform) to it through the real SDKs, paying on its pay pages, and signing events by hand
(for forged, stale and tampered deliveries)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from decimal import Decimal

import requests
import stripe

from app.extensions import db
from tenants.context import platform_scope, tenant_scope

STRIPE_EVENTS = ["*"]


@dataclass
class Simulator:
    url: str

    @property
    def stripe_base(self) -> str:
        return f"{self.url}/stripe"

    @property
    def midtrans_base(self) -> str:
        return f"{self.url}/midtrans"

    def admin(self, path: str, payload: dict | None = None) -> dict:
        reply = requests.post(f"{self.url}/__sim/{path}", json=payload or {}, timeout=15)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def deliveries(self, gateway: str | None = None) -> list[dict]:
        params = {"gateway": gateway} if gateway else {}
        reply = requests.get(f"{self.url}/__sim/deliveries", params=params, timeout=5)
        return reply.json()["deliveries"]

    def redeliver(self, n: int) -> dict:
        return requests.post(f"{self.url}/__sim/deliveries/{n}/redeliver", timeout=15).json()


def scope_of(tenant_id: int | None):
    return platform_scope() if tenant_id is None else tenant_scope(tenant_id)


def connect_stripe(app, sim: Simulator, tenant_id: int | None, key: str, host: str) -> str:
    """Register `host`'s webhook endpoint with the simulator (as a reseller does in Stripe's
    dashboard) and store the keys; returns the signing secret."""
    from app.payments import set_stripe

    client = stripe.StripeClient(key, base_addresses={"api": sim.stripe_base})
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": f"http://{host}/webhooks/stripe", "enabled_events": STRIPE_EVENTS}
    )
    with app.app_context(), scope_of(tenant_id):
        set_stripe(
            tenant_id,
            secret_key=key,
            webhook_secret=endpoint.secret,
            api_base=sim.stripe_base,
            actor="test",
        )
        db.session.commit()
    return endpoint.secret


def connect_midtrans(app, sim: Simulator, tenant_id: int | None, server_key: str) -> None:
    from app.payments import set_midtrans

    with app.app_context(), scope_of(tenant_id):
        set_midtrans(
            tenant_id,
            server_key=server_key,
            client_key=server_key.replace("server", "client"),
            api_base=sim.midtrans_base,
            actor="test",
        )
        db.session.commit()


def pay_stripe(checkout_url: str, action: str = "pay") -> requests.Response:
    return requests.post(checkout_url, data={"action": action}, allow_redirects=False, timeout=30)


def pay_midtrans(redirect_url: str, method: str = "qris", then: str = "pay") -> requests.Response:
    chosen = requests.post(
        f"{redirect_url}/method", data={"method": method}, allow_redirects=False, timeout=30
    )
    assert chosen.status_code == 303, chosen.text
    return requests.post(f"{redirect_url}/{then}", allow_redirects=False, timeout=30)


def stripe_signature(body: str, secret: str, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def midtrans_signature(body: dict, server_key: str) -> str:
    text = f"{body['order_id']}{body['status_code']}{body['gross_amount']}{server_key}"
    return hashlib.sha512(text.encode()).hexdigest()


def post_stripe(client, host: str, body: str, signature: str):
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        base_url=f"http://{host}",
    )


def post_midtrans(client, host: str, body: dict | str):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        "/webhooks/midtrans",
        data=text,
        headers={"Content-Type": "application/json"},
        base_url=f"http://{host}",
    )


def balance_of(app, customer_id: int) -> Decimal:
    from app.accounts.models import User
    from app.ledger import balance, wallet_of
    from tenants.context import across_tenants

    with app.app_context(), across_tenants():
        return balance(wallet_of(db.session.get(User, customer_id)))


def topup_state(app, topup_id: int):
    from app.payments import Topup
    from tenants.context import across_tenants

    with app.app_context(), across_tenants():
        topup = db.session.get(Topup, topup_id)
        return topup.state, topup.refunded_amount, topup.disputed_amount


def ledger_is_clean(app) -> bool:
    from app.ledger import verify_ledger
    from tenants.context import across_tenants

    with app.app_context(), across_tenants():
        return verify_ledger().ok
