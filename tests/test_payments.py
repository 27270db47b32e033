"""Top-ups through Stripe and Midtrans, end to end: the real SDKs talk HTTP to the gateway
simulator, whose pay pages send signed webhooks to the panel served over HTTP. Each credit
happens at most once and nothing is lost: forged, stale, tampered, replayed, out-of-order and
cross-tenant deliveries change nothing, and the ledger verifies clean afterwards."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal as D

import pytest
import requests
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.panels.models import Tenant
from tenants.context import across_tenants, tenant_scope
from tests.payments_support import (
    balance_of,
    connect_midtrans,
    connect_stripe,
    ledger_is_clean,
    midtrans_signature,
    pay_midtrans,
    pay_stripe,
    post_midtrans,
    post_stripe,
    stripe_signature,
    topup_state,
)


@pytest.fixture
def shop(app, make, live_server, gateway_simulator):
    """acme (USD, Stripe) with alice, toko (IDR, Midtrans) with budi, both connected to the
    simulator and served on `live_server`."""
    acme = make.tenant("acme", currency="USD")
    toko = make.tenant("toko", currency="IDR")
    ids = {
        "acme": acme,
        "toko": toko,
        "alice": make.customer(acme, "alice@example.com"),
        "budi": make.customer(toko, "budi@example.com"),
        "port": live_server,
        "sim": gateway_simulator,
    }
    ids["acme_secret"] = connect_stripe(
        app, gateway_simulator, acme, "sk_test_acme", f"acme.localhost:{live_server}"
    )
    connect_midtrans(app, gateway_simulator, toko, "SB-Mid-server-toko")
    return ids


def start(app, shop, customer: str, gateway: str, amount: str) -> tuple[int, str]:
    from app.payments import start_topup

    slug = "acme" if customer == "alice" else "toko"
    with app.app_context(), tenant_scope(shop[slug]):
        topup = start_topup(
            db.session.get(User, shop[customer]),
            gateway,
            D(amount),
            site_url=f"http://{slug}.localhost:{shop['port']}/",
        )
        return topup.id, topup.checkout_url


def last_delivery(sim, gateway: str, kind: str | None = None) -> dict:
    found = [
        d
        for d in sim.deliveries(gateway)
        if kind is None or json.loads(d["body"]).get("type", json.loads(d["body"]).get(
            "transaction_status")) == kind
    ]  # fmt: skip
    assert found, f"no {gateway} delivery of {kind}"
    return found[-1]


# --- Stripe --------------------------------------------------------------------------------


def test_a_stripe_checkout_credits_the_wallet_once(app, shop):
    topup_id, checkout = start(app, shop, "alice", "stripe", "12.50")
    assert checkout.startswith(shop["sim"].stripe_base.removesuffix("/stripe"))
    assert topup_state(app, topup_id)[0] == "pending"

    paid = pay_stripe(checkout)

    assert paid.status_code == 303
    assert paid.headers["Location"].endswith(f"/funds?topup={topup_id}")
    delivery = last_delivery(shop["sim"], "stripe", "checkout.session.completed")
    assert delivery["status"] == 200
    assert topup_state(app, topup_id)[0] == "paid"
    assert balance_of(app, shop["alice"]) == D("12.50")
    # Stripe resends (re-signed, same event id): stored once, credited once.
    again = shop["sim"].redeliver(delivery["n"])
    assert again["status"] == 200
    assert balance_of(app, shop["alice"]) == D("12.50")
    assert ledger_is_clean(app)


def test_stripe_takes_idr_in_hundredths(app, make, shop):
    from app.money.gateways import stripe_minor_units

    assert stripe_minor_units(D("15000"), "IDR") == 1_500_000
    sim = shop["sim"]
    connect_stripe(app, sim, shop["toko"], "sk_test_toko", f"toko.localhost:{shop['port']}")
    _, checkout = start(app, shop, "budi", "stripe", "15000")
    pay_stripe(checkout)
    session = json.loads(last_delivery(sim, "stripe", "checkout.session.completed")["body"])
    assert session["data"]["object"]["amount_total"] == 1_500_000
    assert session["data"]["object"]["currency"] == "idr"
    assert balance_of(app, shop["budi"]) == D("15000")


def test_forged_stale_and_tampered_stripe_events_change_nothing(app, shop, browser_for):
    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    host = f"acme.localhost:{shop['port']}"
    # Let the simulator record the event, then take the panel's answer away by replaying by
    # hand: first with signatures that must fail.
    pay_stripe(checkout, action="pay_async")  # complete but unpaid: nothing credited yet
    body = last_delivery(shop["sim"], "stripe", "checkout.session.completed")["body"]
    client = app.test_client()
    secret = shop["acme_secret"]

    forged = post_stripe(client, host, body, stripe_signature(body, "whsec_not_the_secret"))
    stale = post_stripe(client, host, body, stripe_signature(body, secret, at=1_600_000_000))
    tampered_body = body.replace('"unpaid"', '"paid"')
    tampered = post_stripe(client, host, tampered_body, stripe_signature(body, secret))
    unsigned = post_stripe(client, host, body, "")

    assert [r.status_code for r in (forged, stale, tampered, unsigned)] == [400, 400, 400, 400]
    assert topup_state(app, topup_id)[0] == "pending"
    assert balance_of(app, shop["alice"]) == D("0")
    # The real settlement still arrives and credits once.
    session_id = json.loads(body)["data"]["object"]["id"]
    shop["sim"].admin(f"stripe/sessions/{session_id}/settle", {"succeeded": True})
    assert topup_state(app, topup_id)[0] == "paid"
    assert balance_of(app, shop["alice"]) == D("10.00")
    assert ledger_is_clean(app)


def test_an_event_claiming_paid_is_checked_against_stripe(app, shop):
    """A correctly signed event whose session is not paid at Stripe credits nothing: the
    panel re-reads the session rather than trusting the event's body."""
    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    session_id = checkout.rsplit("/", 1)[-1]
    event = {
        "id": "evt_handmade_1",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {"id": session_id, "object": "checkout.session",
                            "payment_status": "paid", "status": "complete"}},
    }  # fmt: skip
    body = json.dumps(event)
    reply = post_stripe(
        app.test_client(),
        f"acme.localhost:{shop['port']}",
        body,
        stripe_signature(body, shop["acme_secret"]),
    )
    assert reply.status_code == 200 and reply.json["result"] == "waiting"
    assert topup_state(app, topup_id)[0] == "pending"
    assert balance_of(app, shop["alice"]) == D("0")


def test_an_expiry_arriving_after_the_payment_does_not_undo_it(app, shop):
    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    session_id = checkout.rsplit("/", 1)[-1]
    pay_stripe(checkout)
    late = {
        "id": "evt_late_expiry",
        "object": "event",
        "type": "checkout.session.expired",
        "data": {"object": {"id": session_id, "object": "checkout.session", "status": "expired"}},
    }
    body = json.dumps(late)
    reply = post_stripe(
        app.test_client(),
        f"acme.localhost:{shop['port']}",
        body,
        stripe_signature(body, shop["acme_secret"]),
    )
    assert reply.status_code == 200
    assert topup_state(app, topup_id)[0] == "paid"
    assert balance_of(app, shop["alice"]) == D("10.00")


def test_another_panels_stripe_event_credits_nothing(app, shop):
    """toko's own Stripe account signs an event naming acme's session and sends it to toko's
    host: toko finds no such top-up of its own; acme's is untouched."""
    sim = shop["sim"]
    toko_secret = connect_stripe(
        app, sim, shop["toko"], "sk_test_toko", f"toko.localhost:{shop['port']}"
    )
    _, checkout = start(app, shop, "alice", "stripe", "10.00")
    pay_stripe(checkout)
    body = last_delivery(sim, "stripe", "checkout.session.completed")["body"]
    client = app.test_client()

    on_toko = post_stripe(
        client, f"toko.localhost:{shop['port']}", body, stripe_signature(body, toko_secret)
    )
    acme_signed_on_toko = post_stripe(
        client,
        f"toko.localhost:{shop['port']}",
        body,
        stripe_signature(body, shop["acme_secret"]),
    )

    assert on_toko.status_code == 200 and on_toko.json["result"] == "unknown session"
    assert acme_signed_on_toko.status_code == 400
    assert balance_of(app, shop["alice"]) == D("10.00")
    assert balance_of(app, shop["budi"]) == D("0")


def test_refunds_and_disputes_claw_back_and_a_won_dispute_gives_back(app, shop):
    import stripe

    sim = shop["sim"]
    topup_id, checkout = start(app, shop, "alice", "stripe", "20.00")
    pay_stripe(checkout)
    session = json.loads(last_delivery(sim, "stripe", "checkout.session.completed")["body"])
    intent = session["data"]["object"]["payment_intent"]
    client = stripe.StripeClient("sk_test_acme", base_addresses={"api": sim.stripe_base})

    client.v1.refunds.create(params={"payment_intent": intent, "amount": 500})
    assert balance_of(app, shop["alice"]) == D("15.00")
    assert topup_state(app, topup_id) == ("paid", D("5.00"), D("0"))
    dispute = sim.admin(f"stripe/payment_intents/{intent}/dispute")
    assert balance_of(app, shop["alice"]) == D("0.00")
    assert topup_state(app, topup_id) == ("disputed", D("5.00"), D("15.00"))
    # The created event delivered again (a replay) takes nothing more.
    sim.redeliver(last_delivery(sim, "stripe", "charge.dispute.created")["n"])
    assert balance_of(app, shop["alice"]) == D("0.00")

    sim.admin(f"stripe/disputes/{dispute['id']}/close", {"status": "won"})

    assert balance_of(app, shop["alice"]) == D("15.00")
    assert topup_state(app, topup_id) == ("paid", D("5.00"), D("0"))
    client.v1.refunds.create(params={"payment_intent": intent})
    assert balance_of(app, shop["alice"]) == D("0.00")
    assert topup_state(app, topup_id)[0] == "refunded"
    assert ledger_is_clean(app)


def test_a_lost_dispute_may_leave_a_negative_wallet_that_cannot_order(app, shop):
    from app.ledger import InsufficientFunds, charge_order

    sim = shop["sim"]
    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    pay_stripe(checkout)
    intent = json.loads(last_delivery(sim, "stripe", "checkout.session.completed")["body"])["data"][
        "object"
    ]["payment_intent"]
    with app.app_context(), across_tenants():
        alice = db.session.get(User, shop["alice"])
        charge_order(alice, db.session.get(Tenant, shop["acme"]), 1, D("8.00"), D("0"))
        db.session.commit()

    dispute = sim.admin(f"stripe/payment_intents/{intent}/dispute")
    sim.admin(f"stripe/disputes/{dispute['id']}/close", {"status": "lost"})

    assert balance_of(app, shop["alice"]) == D("-8.00")
    assert topup_state(app, topup_id)[0] == "disputed"
    with app.app_context(), across_tenants(), pytest.raises(InsufficientFunds):
        alice = db.session.get(User, shop["alice"])
        charge_order(alice, db.session.get(Tenant, shop["acme"]), 2, D("0.01"), D("0"))
    assert ledger_is_clean(app)


def test_a_lost_webhook_is_settled_by_the_reconciliation(app, shop):
    from app.payments.reconcile import reconcile_topups

    sim = shop["sim"]
    # The endpoint goes away (a misconfigured dashboard): the payment's event is lost.
    import stripe

    client = stripe.StripeClient("sk_test_acme", base_addresses={"api": sim.stripe_base})
    for endpoint in client.v1.webhook_endpoints.list().data:
        client.v1.webhook_endpoints.delete(endpoint.id)
    paid_id, paid_checkout = start(app, shop, "alice", "stripe", "7.00")
    open_id, _ = start(app, shop, "alice", "stripe", "3.00")
    pay_stripe(paid_checkout)
    assert topup_state(app, paid_id)[0] == "pending"

    with app.app_context():
        young = reconcile_topups(older_than=timedelta(minutes=15))
        due = reconcile_topups(older_than=timedelta(0))

    assert sum(young.values()) == 0
    assert due["credited"] == 1 and due["waiting"] == 1
    assert topup_state(app, paid_id)[0] == "paid"
    assert topup_state(app, open_id)[0] == "pending"
    assert balance_of(app, shop["alice"]) == D("7.00")


def test_stripe_down_fails_the_topup_with_a_clear_error(app, shop):
    from app.payments import GatewayUnavailable, set_stripe

    with app.app_context(), tenant_scope(shop["acme"]):
        set_stripe(
            shop["acme"],
            secret_key="",
            webhook_secret="",
            api_base="http://127.0.0.1:9",
            actor="test",
        )
        db.session.commit()
    with pytest.raises(GatewayUnavailable):
        start(app, shop, "alice", "stripe", "10.00")
    with app.app_context(), across_tenants():
        from app.payments import Topup

        (topup,) = db.session.query(Topup).all()
        assert topup.state == "failed" and "Stripe" in topup.note


# --- Midtrans --------------------------------------------------------------------------------


def test_a_midtrans_qris_payment_credits_once(app, shop):
    sim = shop["sim"]
    topup_id, redirect = start(app, shop, "budi", "midtrans", "50000")

    finished = pay_midtrans(redirect, "qris")

    assert finished.status_code == 303
    assert f"/funds?topup={topup_id}" in finished.headers["Location"]
    kinds = [json.loads(d["body"])["transaction_status"] for d in sim.deliveries("midtrans")]
    assert kinds == ["pending", "settlement"]
    assert all(d["status"] == 200 for d in sim.deliveries("midtrans"))
    assert topup_state(app, topup_id)[0] == "paid"
    assert balance_of(app, shop["budi"]) == D("50000")
    for delivery in sim.deliveries("midtrans"):
        sim.redeliver(delivery["n"])  # replays and a late "pending": nothing moves back
    assert topup_state(app, topup_id)[0] == "paid"
    assert balance_of(app, shop["budi"]) == D("50000")
    assert ledger_is_clean(app)


def test_forged_and_tampered_midtrans_notifications_change_nothing(app, shop):
    sim = shop["sim"]
    topup_id, redirect = start(app, shop, "budi", "midtrans", "50000")
    pay_midtrans(redirect, "gopay", then="expire")  # pending, then expired: nothing credited
    assert topup_state(app, topup_id)[0] == "expired"
    body = json.loads(last_delivery(sim, "midtrans", "expire")["body"])
    host = f"toko.localhost:{shop['port']}"
    client = app.test_client()
    paid = {**body, "transaction_status": "settlement", "status_code": "200"}

    forged = post_midtrans(client, host, {**paid, "signature_key": "0" * 128})
    wrong_key = post_midtrans(
        client, host, {**paid, "signature_key": midtrans_signature(paid, "SB-Mid-server-x")}
    )
    tampered = {**body, "gross_amount": "5000000.00"}
    tampered_amount = post_midtrans(client, host, tampered)
    not_json = post_midtrans(client, host, "order_id=1&status_code=200")

    codes = [r.status_code for r in (forged, wrong_key, tampered_amount, not_json)]
    assert codes == [400, 400, 400, 400]
    # A correctly signed "settlement" still goes by what Midtrans says: expired.
    signed = {**paid, "signature_key": midtrans_signature(paid, "SB-Mid-server-toko")}
    assert post_midtrans(client, host, signed).status_code == 200
    assert topup_state(app, topup_id)[0] == "expired"
    assert balance_of(app, shop["budi"]) == D("0")


def test_another_panels_midtrans_notification_credits_nothing(app, shop):
    sim = shop["sim"]
    _, redirect = start(app, shop, "budi", "midtrans", "50000")
    pay_midtrans(redirect, "qris")
    body = last_delivery(sim, "midtrans", "settlement")["body"]
    reply = post_midtrans(app.test_client(), f"acme.localhost:{shop['port']}", body)
    assert reply.status_code == 404  # acme has no Midtrans: nothing to verify it with
    assert balance_of(app, shop["budi"]) == D("50000")
    assert balance_of(app, shop["alice"]) == D("0")


def test_a_midtrans_refund_and_chargeback_claw_back(app, shop):
    sim = shop["sim"]
    topup_id, redirect = start(app, shop, "budi", "midtrans", "50000")
    pay_midtrans(redirect, "bank_transfer")
    order_id = json.loads(last_delivery(sim, "midtrans", "settlement")["body"])["order_id"]

    sim.admin(f"midtrans/{order_id}/refund", {"amount": 20000})
    assert balance_of(app, shop["budi"]) == D("30000")
    assert topup_state(app, topup_id)[:2] == ("paid", D("20000"))
    sim.admin(f"midtrans/{order_id}/chargeback")
    assert balance_of(app, shop["budi"]) == D("0")
    assert topup_state(app, topup_id)[0] == "refunded"
    assert ledger_is_clean(app)


def test_the_reconciliation_expires_an_abandoned_snap_page(app, shop):
    from app.payments import Topup
    from app.payments.reconcile import reconcile_topups
    from app.types import utcnow

    topup_id, _ = start(app, shop, "budi", "midtrans", "50000")
    with app.app_context(), across_tenants():
        db.session.get(Topup, topup_id).created_at = utcnow() - timedelta(hours=2)
        db.session.commit()
        outcomes = reconcile_topups()
    assert outcomes == {"expired": 1}
    assert topup_state(app, topup_id)[0] == "expired"


# --- the platform's gateways: panels' wholesale top-ups ---------------------------------------


def test_a_panel_tops_up_its_wholesale_wallet_through_the_platform(app, shop):
    from app.orders.alerts import wholesale_balance
    from app.payments import start_topup

    sim = shop["sim"]
    connect_stripe(app, sim, None, "sk_test_platform", f"localhost:{shop['port']}")
    with app.app_context(), tenant_scope(shop["acme"]):
        topup = start_topup(
            db.session.get(Tenant, shop["acme"]),
            "stripe",
            D("40.00"),
            site_url=f"http://acme.localhost:{shop['port']}/",
        )
        topup_id, checkout = topup.id, topup.checkout_url

    paid = pay_stripe(checkout)

    assert paid.headers["Location"].endswith(f"/admin/wallet?topup={topup_id}")
    delivery = last_delivery(sim, "stripe", "checkout.session.completed")
    assert delivery["url"] == f"http://localhost:{shop['port']}/webhooks/stripe"
    assert delivery["status"] == 200
    with app.app_context(), across_tenants():
        assert wholesale_balance(shop["acme"]) == D("40.00")
    # The same event signed for acme's own account and sent to acme's host finds nothing.
    body = delivery["body"]
    reply = post_stripe(
        app.test_client(),
        f"acme.localhost:{shop['port']}",
        body,
        stripe_signature(body, shop["acme_secret"]),
    )
    assert reply.json["result"] == "unknown session"
    assert ledger_is_clean(app)


def test_webhooks_still_settle_for_a_suspended_panel(app, shop):
    from tenants.provisioning import suspend_tenant

    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    with app.app_context(), across_tenants():
        suspend_tenant(db.session.get(Tenant, shop["acme"]), reason="unpaid", actor="test")
        db.session.commit()
    app.extensions["pasok_resolver"].invalidate()
    pay_stripe(checkout)
    assert topup_state(app, topup_id)[0] == "paid"
    storefront = app.test_client().get("/", base_url=f"http://acme.localhost:{shop['port']}")
    assert storefront.status_code == 403  # the panel itself is closed


# --- concurrency, on PostgreSQL ------------------------------------------------------------------


@pytest.fixture
def postgres_shop(shop):
    from tests.conftest import TEST_DATABASE_URL, service_missing

    if not TEST_DATABASE_URL:
        service_missing("PASOK_TEST_DATABASE_URL is not set")
    return shop


def test_concurrent_duplicate_webhooks_credit_once(app, postgres_shop):
    """The same event 8 times at once, and 8 distinct events for the same payment at once:
    one credit, one stored row per event id, every delivery answered 200."""
    import stripe

    from app.payments import GatewayEvent
    from app.providers.client import loopback_for_localhost

    shop, sim = postgres_shop, postgres_shop["sim"]
    client = stripe.StripeClient("sk_test_acme", base_addresses={"api": sim.stripe_base})
    for endpoint in client.v1.webhook_endpoints.list().data:
        client.v1.webhook_endpoints.delete(endpoint.id)  # so only this test delivers
    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    pay_stripe(checkout)
    session_id = checkout.rsplit("/", 1)[-1]

    def event(event_id: str) -> str:
        return json.dumps(
            {
                "id": event_id,
                "object": "event",
                "type": "checkout.session.completed",
                "data": {"object": {"id": session_id, "object": "checkout.session"}},
            }
        )

    bodies = [event("evt_same")] * 8 + [event(f"evt_other_{n}") for n in range(8)]
    url, host = loopback_for_localhost(f"http://acme.localhost:{shop['port']}/webhooks/stripe")
    barrier = threading.Barrier(len(bodies))

    def deliver(body: str) -> int:
        barrier.wait(timeout=10)
        headers = {**host, "Stripe-Signature": stripe_signature(body, shop["acme_secret"])}
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        codes = list(pool.map(deliver, bodies))

    assert codes == [200] * len(bodies)
    assert balance_of(app, shop["alice"]) == D("10.00")
    assert topup_state(app, topup_id)[0] == "paid"
    with app.app_context(), across_tenants():
        ids = db.session.scalars(select(GatewayEvent.event_id)).all()
    assert sorted(ids) == sorted({*(f"evt_other_{n}" for n in range(8)), "evt_same"})
    assert ledger_is_clean(app)


def test_ledger_verify_catches_a_topup_whose_state_and_credits_disagree(app, shop):
    from sqlalchemy import update

    from app.ledger import verify_ledger
    from app.payments import Topup

    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    pay_stripe(checkout)
    assert ledger_is_clean(app)
    with app.app_context(), across_tenants():
        db.session.execute(
            update(Topup).where(Topup.id == topup_id).values(state="pending"),
            execution_options={"across_tenants": True},
        )
        db.session.commit()
        report = verify_ledger()
    assert not report.ok
    assert [(t.topup_id, t.expected, t.credited) for t in report.topups] == [
        (topup_id, D("0"), D("10.00"))
    ]


def test_a_wholesale_topup_sends_the_orders_waiting_on_hold(
    app, make, live_server, gateway_simulator
):
    from app.orders.models import Order
    from app.orders.services import place_order
    from app.payments import start_topup
    from tests.ordering import LINK, build_shop, fund

    ids = build_shop(app, make)
    fund(app, ids["alice"], "10.00")
    connect_stripe(app, gateway_simulator, None, "sk_test_platform", f"localhost:{live_server}")
    with app.app_context(), tenant_scope(ids["acme"]):
        placed = place_order(
            tenant_id=ids["acme"],
            customer_id=ids["alice"],
            service_id=ids["likes"],
            fields={"link": LINK, "quantity": "100"},
            actor="test",
        )
        db.session.commit()
        assert placed.status == "on_hold"
        topup = start_topup(
            db.session.get(Tenant, ids["acme"]),
            "stripe",
            D("5.00"),
            site_url=f"http://acme.localhost:{live_server}/",
        )
        checkout = topup.checkout_url

    pay_stripe(checkout)

    with app.app_context(), across_tenants():
        assert db.session.get(Order, placed.order_id).status == "pending"
    assert ledger_is_clean(app)


def test_each_midtrans_transaction_notifies_its_own_panel(app, make, shop):
    """midtransclient shares a default headers dict between clients; each of ours has its own,
    so two panels' notification URLs never leak into each other's transactions."""
    from app.payments import start_topup

    sim = shop["sim"]
    nusa = make.tenant("nusa", currency="IDR")
    siti = make.customer(nusa, "siti@example.com")
    connect_midtrans(app, sim, nusa, "SB-Mid-server-nusa")
    toko_topup, toko_page = start(app, shop, "budi", "midtrans", "20000")
    with app.app_context(), tenant_scope(nusa):
        topup = start_topup(
            db.session.get(User, siti),
            "midtrans",
            D("30000"),
            site_url=f"http://nusa.localhost:{shop['port']}/",
        )
        nusa_topup, nusa_page = topup.id, topup.checkout_url

    pay_midtrans(nusa_page, "gopay")
    pay_midtrans(toko_page, "qris")

    hosts = {
        json.loads(d["body"])["order_id"].split("-")[1]: d["url"]
        for d in sim.deliveries("midtrans")
        if json.loads(d["body"])["transaction_status"] == "settlement"
    }
    assert hosts == {
        str(toko_topup): f"http://toko.localhost:{shop['port']}/webhooks/midtrans",
        str(nusa_topup): f"http://nusa.localhost:{shop['port']}/webhooks/midtrans",
    }
    assert balance_of(app, shop["budi"]) == D("20000")
    assert balance_of(app, siti) == D("30000")


def test_a_midtrans_card_capture_with_fraud_accept_credits(app, shop):
    sim = shop["sim"]
    topup_id, redirect = start(app, shop, "budi", "midtrans", "75000")
    pay_midtrans(redirect, "credit_card")
    capture = json.loads(last_delivery(sim, "midtrans", "capture")["body"])
    assert capture["fraud_status"] == "accept"
    assert topup_state(app, topup_id)[0] == "paid"
    assert balance_of(app, shop["budi"]) == D("75000")


def test_a_delayed_stripe_payment_that_fails_credits_nothing(app, shop):
    topup_id, checkout = start(app, shop, "alice", "stripe", "10.00")
    pay_stripe(checkout, action="pay_async")
    assert topup_state(app, topup_id)[0] == "pending"
    session_id = checkout.rsplit("/", 1)[-1]
    shop["sim"].admin(f"stripe/sessions/{session_id}/settle", {"succeeded": False})
    assert topup_state(app, topup_id)[0] == "failed"
    assert balance_of(app, shop["alice"]) == D("0")
    assert ledger_is_clean(app)
