"""The gateway simulator: Stripe and Midtrans stand-ins driven by the real SDKs over HTTP."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import midtransclient
import pytest
import requests
import stripe
from click.testing import CliRunner
from flask import Flask, request

from app.gatewaysim import create_simulator_app, stripe_webhook_secret
from app.gatewaysim.cli import gateway_simulator_command
from app.sandbox.clock import ManualClock
from tests.conftest import serve_in_thread

KEY = "sk_test_alpha"
OTHER_KEY = "sk_test_beta"
SERVER_KEY = "SB-Mid-server-alpha"
TIMEOUT = 10


def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on a free port until the generator is closed; yields its base URL."""
    for port in serve_in_thread(app, "simulated"):
        yield f"http://127.0.0.1:{port}"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver that records every POST; `statuses` picks a reply per path."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def at(self, path: str) -> list[Received]:
        return [hook for hook in self.received if hook.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    app = Flask("receiver")
    recorder = Receiver("")

    @app.post("/<path:path>")
    def record(path: str):
        recorder.received.append(
            Received("/" + path, dict(request.headers), request.get_data(as_text=True))
        )
        return "", recorder.statuses.get("/" + path, 200)

    for url in serve(app):
        recorder.url = url
        yield recorder


@dataclass
class Simulator:
    url: str
    clock: ManualClock

    def admin(self, path: str, **body: Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=TIMEOUT)

    def deliveries(self, gateway: str | None = None) -> list[dict]:
        params = {"gateway": gateway} if gateway else {}
        reply = requests.get(f"{self.url}/__sim/deliveries", params=params, timeout=TIMEOUT)
        return reply.json()["deliveries"]


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    clock = ManualClock(start=time.time())
    for url in serve(create_simulator_app(clock=clock)):
        yield Simulator(url, clock)


# -- Stripe ----------------------------------------------------------------------------------


@pytest.fixture
def stripe_for(simulator: Simulator):
    """A real StripeClient for a key, pointed at the simulator."""

    def client(key: str = KEY) -> stripe.StripeClient:
        return stripe.StripeClient(
            key,
            base_addresses={"api": f"{simulator.url}/stripe"},
            http_client=stripe.RequestsClient(timeout=TIMEOUT),
            max_network_retries=0,
        )

    return client


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "USD",
                    "unit_amount": 625,
                    "product_data": {"name": "Instagram followers top-up"},
                },
                "quantity": 2,
            }
        ],
        "success_url": "https://shop.example/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancelled",
        "client_reference_id": "payment-17",
        "metadata": {"tenant": "acme", "payment": "17"},
    }
    params.update(overrides)
    return params


def register_endpoint(client: stripe.StripeClient, url: str, events: list[str] | None = None):
    return client.v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": events or ["*"]}
    )


def pay(session, action: str = "pay") -> requests.Response:
    return requests.post(
        session.url, data={"action": action}, allow_redirects=False, timeout=TIMEOUT
    )


def stripe_events(receiver: Receiver, path: str, secret: str) -> list[stripe.Event]:
    """The events at `path`, each checked against its signature as a real receiver would."""
    return [
        stripe.Webhook.construct_event(hook.body, hook.headers["Stripe-Signature"], secret)
        for hook in receiver.at(path)
    ]


def paid_session(stripe_for, receiver: Receiver, path: str = "/stripe"):
    client = stripe_for()
    endpoint = register_endpoint(client, receiver.url + path)
    session = client.v1.checkout.sessions.create(params=session_params())
    assert pay(session).status_code == 303
    return client, endpoint, client.v1.checkout.sessions.retrieve(session.id)


def test_stripe_session_is_created_as_stripe_describes_it(stripe_for, simulator):
    session = stripe_for().v1.checkout.sessions.create(params=session_params())
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.amount_total == 1250
    assert session.currency == "usd"
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert session.url == f"{simulator.url}/stripe/pay/{session.id}"
    assert session.metadata.to_dict() == {"tenant": "acme", "payment": "17"}
    assert session.client_reference_id == "payment-17"
    assert session.expires_at - session.created == 24 * 3600
    assert session.livemode is False


def test_stripe_repeated_idempotency_key_returns_the_same_session(stripe_for):
    client = stripe_for()
    options = {"idempotency_key": "payment-17-attempt-1"}
    first = client.v1.checkout.sessions.create(params=session_params(), options=options)
    second = client.v1.checkout.sessions.create(params=session_params(), options=options)
    third = client.v1.checkout.sessions.create(params=session_params())
    assert second.id == first.id
    assert third.id != first.id


def test_stripe_idempotency_keys_are_per_account(stripe_for):
    options = {"idempotency_key": "shared-key"}
    mine = stripe_for(KEY).v1.checkout.sessions.create(params=session_params(), options=options)
    theirs = stripe_for(OTHER_KEY).v1.checkout.sessions.create(
        params=session_params(), options=options
    )
    assert mine.id != theirs.id


def test_stripe_session_retrieves_for_its_account_only(stripe_for):
    session = stripe_for().v1.checkout.sessions.create(params=session_params())
    assert stripe_for().v1.checkout.sessions.retrieve(session.id).id == session.id
    with pytest.raises(stripe.InvalidRequestError) as error:
        stripe_for(OTHER_KEY).v1.checkout.sessions.retrieve(session.id)
    assert error.value.http_status == 404
    assert error.value.code == "resource_missing"


def test_stripe_rejects_a_key_that_is_not_a_secret_key(stripe_for, simulator):
    with pytest.raises(stripe.AuthenticationError):
        stripe_for("pk_test_public").v1.checkout.sessions.create(params=session_params())
    reply = requests.get(f"{simulator.url}/stripe/v1/checkout/sessions", timeout=TIMEOUT)
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"success_url": None}, "success_url"),
        (
            {
                "line_items": [
                    {
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 0,
                            "product_data": {"name": "Nothing"},
                        },
                        "quantity": 1,
                    }
                ]
            },
            "line_items[0][price_data][unit_amount]",
        ),
        ({"expires_at": int(time.time()) + 60}, "expires_at"),
    ],
)
def test_stripe_bad_session_names_the_param(stripe_for, overrides, param):
    with pytest.raises(stripe.InvalidRequestError) as error:
        stripe_for().v1.checkout.sessions.create(params=session_params(**overrides))
    assert error.value.http_status == 400
    assert error.value.param == param


def test_stripe_webhook_secret_is_derived_and_one_endpoint_per_url(stripe_for, receiver):
    client = stripe_for()
    url = receiver.url + "/stripe"
    first = register_endpoint(client, url, ["checkout.session.completed"])
    again = register_endpoint(client, url, ["checkout.session.completed"])
    assert first.secret == again.secret == stripe_webhook_secret(KEY, url)
    assert first.secret.startswith("whsec_") and len(first.secret) == 6 + 32
    assert stripe_webhook_secret(OTHER_KEY, url) != first.secret
    listed = client.v1.webhook_endpoints.list()
    assert [endpoint.id for endpoint in listed.data] == [first.id]
    assert listed.data[0].url == url


def test_stripe_pay_page_shows_the_item_amount_and_card_form(stripe_for):
    session = stripe_for().v1.checkout.sessions.create(params=session_params())
    page = requests.get(session.url, timeout=TIMEOUT).text
    assert "Instagram followers top-up" in page
    assert "$12.50" in page
    assert "4242 4242 4242 4242" in page
    assert '<button id="pay"' in page
    assert '<button id="decline"' in page
    assert 'id="cancel" class="button secondary" href="https://shop.example/cancelled"' in page


def test_stripe_payment_completes_the_session_and_sends_a_signed_event(stripe_for, receiver):
    client = stripe_for()
    endpoint = register_endpoint(client, receiver.url + "/stripe")
    session = client.v1.checkout.sessions.create(params=session_params())

    reply = pay(session)

    assert reply.status_code == 303
    assert reply.headers["Location"] == f"https://shop.example/paid?session={session.id}"
    [event] = stripe_events(receiver, "/stripe", endpoint.secret)
    assert event.type == "checkout.session.completed"
    assert event.data.object.id == session.id
    assert event.data.object.payment_status == "paid"
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert event.data.object.payment_intent == paid.payment_intent
    intent = client.v1.payment_intents.retrieve(paid.payment_intent)
    assert intent.status == "succeeded"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount, charge.currency, charge.amount_refunded) == (1250, "usd", 0)
    assert charge.payment_intent == intent.id
    assert charge.disputed is False


def test_stripe_event_signature_fails_with_another_secret(stripe_for, receiver):
    paid_session(stripe_for, receiver)
    [hook] = receiver.at("/stripe")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            hook.body, hook.headers["Stripe-Signature"], stripe_webhook_secret(OTHER_KEY, "x")
        )


def test_stripe_declined_card_keeps_the_session_open(stripe_for, receiver, simulator):
    client = stripe_for()
    register_endpoint(client, receiver.url + "/stripe")
    session = client.v1.checkout.sessions.create(params=session_params())
    reply = pay(session, "decline")
    assert reply.status_code == 402
    assert 'id="card-error"' in reply.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert receiver.received == []


def test_stripe_paying_a_closed_session_shows_an_error_and_sends_nothing(stripe_for, receiver):
    client = stripe_for()
    register_endpoint(client, receiver.url + "/stripe")
    session = client.v1.checkout.sessions.create(params=session_params())
    pay(session)
    reply = pay(session)
    assert reply.status_code == 410
    assert "complete" in reply.text
    assert len(receiver.at("/stripe")) == 1


def test_stripe_events_go_only_to_endpoints_listening_for_them(stripe_for, receiver):
    client = stripe_for()
    register_endpoint(client, receiver.url + "/expiries", ["checkout.session.expired"])
    register_endpoint(client, receiver.url + "/payments", ["checkout.session.completed"])
    register_endpoint(stripe_for(OTHER_KEY), receiver.url + "/other", ["*"])
    session = client.v1.checkout.sessions.create(params=session_params())
    pay(session)
    assert len(receiver.at("/payments")) == 1
    assert receiver.at("/expiries") == []
    assert receiver.at("/other") == []


def test_stripe_partial_refund_updates_the_charge_and_over_refund_fails(stripe_for, receiver):
    client, endpoint, session = paid_session(stripe_for, receiver)

    refund = client.v1.refunds.create(
        params={"payment_intent": session.payment_intent, "amount": 500}
    )

    assert (refund.amount, refund.status) == (500, "succeeded")
    event = stripe_events(receiver, "/stripe", endpoint.secret)[-1]
    assert event.type == "charge.refunded"
    assert (event.data.object.amount_refunded, event.data.object.refunded) == (500, False)
    charge = client.v1.charges.retrieve(refund.charge)
    assert charge.amount_refunded == 500
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.refunds.create(params={"payment_intent": session.payment_intent, "amount": 751})
    assert error.value.param == "amount"
    client.v1.refunds.create(params={"payment_intent": session.payment_intent})
    assert client.v1.charges.retrieve(refund.charge).refunded is True


def test_stripe_dispute_is_created_then_closed(stripe_for, receiver, simulator):
    client, endpoint, session = paid_session(stripe_for, receiver)

    created = simulator.admin(f"/__sim/stripe/payment_intents/{session.payment_intent}/dispute")
    dispute = client.v1.disputes.retrieve(created.json()["id"])
    assert (dispute.status, dispute.amount, dispute.currency) == ("needs_response", 1250, "usd")
    assert dispute.payment_intent == session.payment_intent
    closed = simulator.admin(f"/__sim/stripe/disputes/{dispute.id}/close", status="lost")

    assert closed.json()["status"] == "lost"
    events = stripe_events(receiver, "/stripe", endpoint.secret)
    assert [event.type for event in events[1:]] == [
        "charge.dispute.created",
        "charge.dispute.closed",
    ]
    assert events[-1].data.object.status == "lost"
    assert client.v1.charges.retrieve(dispute.charge).disputed is True


def test_stripe_expire_sends_the_expired_event(stripe_for, receiver):
    client = stripe_for()
    endpoint = register_endpoint(client, receiver.url + "/stripe")
    session = client.v1.checkout.sessions.create(params=session_params())

    expired = client.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired"
    [event] = stripe_events(receiver, "/stripe", endpoint.secret)
    assert (event.type, event.data.object.id) == ("checkout.session.expired", session.id)
    assert pay(session).status_code == 410


def test_stripe_session_past_expires_at_expires_once_when_read(stripe_for, receiver, simulator):
    client = stripe_for()
    endpoint = register_endpoint(client, receiver.url + "/stripe")
    expires_at = int(simulator.clock.now()) + 3600
    session = client.v1.checkout.sessions.create(params=session_params(expires_at=expires_at))
    simulator.clock.advance(3601)

    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert [event.type for event in stripe_events(receiver, "/stripe", endpoint.secret)] == [
        "checkout.session.expired"
    ]


def test_stripe_bank_transfer_completes_unpaid_then_settles(stripe_for, receiver, simulator):
    client = stripe_for()
    endpoint = register_endpoint(client, receiver.url + "/stripe")
    session = client.v1.checkout.sessions.create(params=session_params())

    assert pay(session, "pay_async").status_code == 303
    pending = client.v1.checkout.sessions.retrieve(session.id)
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    assert client.v1.payment_intents.retrieve(pending.payment_intent).status == "processing"
    simulator.admin(f"/__sim/stripe/sessions/{session.id}/settle", succeeded=True)

    events = stripe_events(receiver, "/stripe", endpoint.secret)
    assert [event.type for event in events] == [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ]
    assert events[0].data.object.payment_status == "unpaid"
    assert events[1].data.object.payment_status == "paid"
    assert client.v1.payment_intents.retrieve(pending.payment_intent).status == "succeeded"


def test_stripe_failed_bank_transfer_sends_async_payment_failed(stripe_for, receiver, simulator):
    client = stripe_for()
    endpoint = register_endpoint(client, receiver.url + "/stripe")
    session = client.v1.checkout.sessions.create(params=session_params())
    pay(session, "pay_async")
    simulator.admin(f"/__sim/stripe/sessions/{session.id}/settle", succeeded=False)
    event = stripe_events(receiver, "/stripe", endpoint.secret)[-1]
    assert event.type == "checkout.session.async_payment_failed"
    assert event.data.object.payment_status == "unpaid"


def test_stripe_sessions_list_filters_by_payment_intent(stripe_for, receiver):
    client, _, session = paid_session(stripe_for, receiver)
    client.v1.checkout.sessions.create(params=session_params())
    found = client.v1.checkout.sessions.list(params={"payment_intent": session.payment_intent})
    assert [item.id for item in found.data] == [session.id]
    assert len(client.v1.checkout.sessions.list().data) == 2


def test_stripe_bad_integer_param_is_a_400(stripe_for):
    with pytest.raises(stripe.InvalidRequestError) as error:
        stripe_for().v1.checkout.sessions.list(params={"limit": "many"})
    assert (error.value.http_status, error.value.param) == (400, "limit")


def test_webhook_to_a_localhost_name_reaches_loopback_with_its_host(stripe_for, receiver):
    port = urlsplit(receiver.url).port
    client = stripe_for()
    endpoint = register_endpoint(client, f"http://hooks.localhost:{port}/stripe")
    pay(client.v1.checkout.sessions.create(params=session_params()))
    [hook] = receiver.at("/stripe")
    assert hook.headers["Host"] == f"hooks.localhost:{port}"
    assert stripe_events(receiver, "/stripe", endpoint.secret)[0].type == (
        "checkout.session.completed"
    )


def test_stripe_redelivery_is_resigned_and_verifies(stripe_for, receiver, simulator):
    _, endpoint, _ = paid_session(stripe_for, receiver)
    reply = requests.post(f"{simulator.url}/__sim/deliveries/1/redeliver", timeout=TIMEOUT)
    assert reply.json()["n"] == 2
    first, second = stripe_events(receiver, "/stripe", endpoint.secret)
    assert first.id == second.id
    assert receiver.received[0].body == receiver.received[1].body


def test_failed_delivery_is_logged_and_the_payment_still_completes(stripe_for, receiver, simulator):
    receiver.statuses["/stripe"] = 500
    _, _, session = paid_session(stripe_for, receiver)
    assert session.status == "complete"
    [delivery] = simulator.deliveries("stripe")
    assert (delivery["status"], delivery["error"]) == (500, "HTTP 500")
    assert delivery["body"] == receiver.received[0].body
    assert (
        delivery["headers"]["Stripe-Signature"] == receiver.received[0].headers["Stripe-Signature"]
    )


def test_unreachable_webhook_is_logged_with_its_error(stripe_for, simulator):
    client = stripe_for()
    register_endpoint(client, "http://127.0.0.1:9/nothing-listens")
    session = client.v1.checkout.sessions.create(params=session_params())
    assert pay(session).status_code == 303
    [delivery] = simulator.deliveries()
    assert delivery["status"] is None
    assert "ConnectionError" in delivery["error"]


# -- Midtrans --------------------------------------------------------------------------------


class BoundedRequests(requests.Session):
    """What midtransclient calls `http_client`, with a timeout it does not set itself."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


@pytest.fixture
def midtrans_for(simulator: Simulator, receiver: Receiver):
    """A real midtransclient Snap or CoreApi pointed at the simulator, notifying the receiver."""
    sessions: list[requests.Session] = []

    def client(kind=midtransclient.Snap, server_key: str = SERVER_KEY):
        sdk = kind(
            is_production=False,
            server_key=server_key,
            custom_headers={"X-Override-Notification": receiver.url + "/midtrans"},
        )
        base = f"{simulator.url}/midtrans"
        sdk.api_config.SNAP_SANDBOX_BASE_URL = sdk.api_config.SNAP_PRODUCTION_BASE_URL = (
            base + "/snap/v1"
        )
        sdk.api_config.CORE_SANDBOX_BASE_URL = sdk.api_config.CORE_PRODUCTION_BASE_URL = base
        sdk.http_client.http_client = BoundedRequests()
        sessions.append(sdk.http_client.http_client)
        return sdk

    yield client
    for session in sessions:
        session.close()


def snap_params(order_id: str = "ORDER-1", amount: int = 150000, **overrides: Any) -> dict:
    params: dict[str, Any] = {
        "transaction_details": {"order_id": order_id, "gross_amount": amount},
        "item_details": [
            {"id": "topup", "name": "Balance top-up", "price": amount // 2, "quantity": 2}
        ],
        "customer_details": {"first_name": "Budi", "email": "budi@example.com"},
        "callbacks": {"finish": "https://shop.example/finish"},
    }
    params.update(overrides)
    return params


def choose(redirect_url: str, method: str) -> requests.Response:
    return requests.post(
        redirect_url + "/method", data={"method": method}, allow_redirects=False, timeout=TIMEOUT
    )


def press(redirect_url: str, button: str) -> requests.Response:
    return requests.post(f"{redirect_url}/{button}", allow_redirects=False, timeout=TIMEOUT)


def valid_signature(notification: dict, server_key: str = SERVER_KEY) -> bool:
    signed = (
        notification["order_id"]
        + notification["status_code"]
        + notification["gross_amount"]
        + server_key
    )
    return notification["signature_key"] == hashlib.sha512(signed.encode()).hexdigest()


def test_snap_transaction_gives_a_token_and_redirect_url(midtrans_for, simulator):
    reply = midtrans_for().create_transaction(snap_params())
    assert reply["redirect_url"] == (
        f"{simulator.url}/midtrans/snap/v4/redirection/{reply['token']}"
    )


def test_snap_repeated_order_id_is_rejected(midtrans_for):
    snap = midtrans_for()
    snap.create_transaction(snap_params())
    with pytest.raises(midtransclient.error_midtrans.MidtransAPIError) as error:
        snap.create_transaction(snap_params())
    assert error.value.http_status_code == 400
    assert error.value.api_response_dict == {
        "error_messages": ["transaction_details.order_id sudah digunakan"]
    }


@pytest.mark.parametrize("amount", [0, -5, "150000", 1500.5, None])
def test_snap_rejects_a_bad_gross_amount(midtrans_for, amount):
    params = snap_params(item_details=None)
    params["transaction_details"]["gross_amount"] = amount
    with pytest.raises(midtransclient.error_midtrans.MidtransAPIError) as error:
        midtrans_for().create_transaction(params)
    assert error.value.http_status_code == 400
    assert "gross_amount" in error.value.api_response_dict["error_messages"][0]


def test_snap_rejects_items_that_do_not_sum_to_gross_amount(midtrans_for):
    params = snap_params(item_details=[{"id": "a", "price": 1000, "quantity": 3}])
    with pytest.raises(midtransclient.error_midtrans.MidtransAPIError) as error:
        midtrans_for().create_transaction(params)
    assert "sum of item_details" in error.value.api_response_dict["error_messages"][0]


def test_midtrans_rejects_a_missing_server_key(midtrans_for, simulator):
    with pytest.raises(midtransclient.error_midtrans.MidtransAPIError) as error:
        midtrans_for(server_key="").create_transaction(snap_params())
    assert error.value.http_status_code == 401
    reply = requests.get(f"{simulator.url}/midtrans/v2/ORDER-1/status", timeout=TIMEOUT)
    assert (reply.status_code, reply.json()["status_code"]) == (401, "401")


def test_status_before_a_method_is_chosen_is_404(midtrans_for):
    midtrans_for().create_transaction(snap_params())
    with pytest.raises(midtransclient.error_midtrans.MidtransAPIError) as error:
        midtrans_for(midtransclient.CoreApi).transactions.status("ORDER-1")
    assert error.value.api_response_dict == {
        "status_code": "404",
        "status_message": "Transaction doesn't exist.",
    }


def test_snap_page_lists_the_payment_methods(midtrans_for):
    reply = midtrans_for().create_transaction(snap_params())
    page = requests.get(reply["redirect_url"], timeout=TIMEOUT).text
    for method in ("qris", "gopay", "bank_transfer", "credit_card"):
        assert f'id="method-{method}"' in page
    assert "Rp150.000" in page


def test_qris_payment_notifies_pending_then_settlement(midtrans_for, receiver):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]

    assert choose(url, "qris").status_code == 303
    page = requests.get(url, timeout=TIMEOUT).text
    assert '<svg id="qr"' in page and 'id="pay"' in page
    finished = press(url, "pay")

    assert finished.status_code == 303
    query = parse_qs(urlsplit(finished.headers["Location"]).query)
    assert query == {
        "order_id": ["ORDER-1"],
        "status_code": ["200"],
        "transaction_status": ["settlement"],
    }
    pending, settled = (hook.json() for hook in receiver.at("/midtrans"))
    assert (pending["transaction_status"], pending["status_code"]) == ("pending", "201")
    assert (settled["transaction_status"], settled["status_code"]) == ("settlement", "200")
    assert settled["gross_amount"] == "150000.00"
    assert settled["payment_type"] == "qris"
    assert settled["transaction_id"] == pending["transaction_id"]
    assert "settlement_time" in settled
    assert all(valid_signature(hook.json()) for hook in receiver.at("/midtrans"))


def test_core_status_reads_the_settlement(midtrans_for):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "gopay")
    press(url, "pay")
    status = midtrans_for(midtransclient.CoreApi).transactions.status("ORDER-1")
    assert (status["transaction_status"], status["status_code"]) == ("settlement", "200")
    assert (status["gross_amount"], status["currency"], status["fraud_status"]) == (
        "150000.00",
        "IDR",
        "accept",
    )
    assert valid_signature(status)
    time.strptime(status["settlement_time"], "%Y-%m-%d %H:%M:%S")


def test_status_of_another_accounts_order_is_404(midtrans_for):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "qris")
    core = midtrans_for(midtransclient.CoreApi, server_key="SB-Mid-server-other")
    with pytest.raises(midtransclient.error_midtrans.MidtransAPIError) as error:
        core.transactions.status("ORDER-1")
    assert error.value.api_response_dict["status_code"] == "404"


def test_core_expire_moves_a_pending_transfer_to_expire(midtrans_for, receiver):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "bank_transfer")
    assert 'id="va-number"' in requests.get(url, timeout=TIMEOUT).text

    reply = midtrans_for(midtransclient.CoreApi).transactions.expire("ORDER-1")

    assert (reply["transaction_status"], reply["status_code"]) == ("expire", "407")
    last = receiver.at("/midtrans")[-1].json()
    assert (last["transaction_status"], last["status_code"]) == ("expire", "407")
    assert valid_signature(last)
    assert press(url, "pay").status_code == 409


def test_expire_button_ends_the_payment(midtrans_for, receiver):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "qris")
    reply = press(url, "expire")
    assert "transaction_status=expire" in reply.headers["Location"]
    assert receiver.at("/midtrans")[-1].json()["transaction_status"] == "expire"


def test_pending_payment_past_its_expiry_reads_as_expired(midtrans_for, simulator):
    params = snap_params(expiry={"unit": "minutes", "duration": 15})
    url = midtrans_for().create_transaction(params)["redirect_url"]
    choose(url, "qris")
    simulator.clock.advance(15 * 60)
    status = midtrans_for(midtransclient.CoreApi).transactions.status("ORDER-1")
    assert status["transaction_status"] == "expire"
    expiries = [hook for hook in simulator.deliveries("midtrans") if '"expire"' in hook["body"]]
    assert len(expiries) == 1


def test_card_payment_is_captured(midtrans_for, receiver):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "credit_card")
    press(url, "pay")
    captured = receiver.at("/midtrans")[-1].json()
    assert (captured["transaction_status"], captured["fraud_status"]) == ("capture", "accept")
    assert captured["status_code"] == "200"


def test_partial_then_full_refund(midtrans_for, receiver, simulator):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "qris")
    press(url, "pay")

    partial = simulator.admin("/__sim/midtrans/ORDER-1/refund", amount=50000)
    assert partial.json()["transaction_status"] == "partial_refund"
    assert simulator.admin("/__sim/midtrans/ORDER-1/refund", amount=100001).status_code == 400
    full = simulator.admin("/__sim/midtrans/ORDER-1/refund")

    assert full.json()["transaction_status"] == "refund"
    statuses = [hook.json()["transaction_status"] for hook in receiver.at("/midtrans")]
    assert statuses == ["pending", "settlement", "partial_refund", "refund"]
    assert receiver.at("/midtrans")[-1].json()["refund_amount"] == "150000.00"


def test_chargeback_after_settlement(midtrans_for, receiver, simulator):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "gopay")
    press(url, "pay")
    assert simulator.admin("/__sim/midtrans/ORDER-1/chargeback").status_code == 200
    assert receiver.at("/midtrans")[-1].json()["transaction_status"] == "chargeback"


def test_deny_only_while_pending(midtrans_for, receiver, simulator):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "credit_card")
    denied = simulator.admin("/__sim/midtrans/ORDER-1/deny")
    assert (denied.json()["transaction_status"], denied.json()["status_code"]) == ("deny", "202")
    assert simulator.admin("/__sim/midtrans/ORDER-1/deny").status_code == 400
    assert [hook.json()["transaction_status"] for hook in receiver.at("/midtrans")] == [
        "pending",
        "deny",
    ]


# -- the delivery log, reset, the command ----------------------------------------------------


def test_delivery_log_filters_by_gateway_and_reset_clears_it(
    stripe_for, midtrans_for, receiver, simulator
):
    paid_session(stripe_for, receiver)
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "qris")
    assert [d["gateway"] for d in simulator.deliveries()] == ["stripe", "midtrans"]
    assert [d["n"] for d in simulator.deliveries("midtrans")] == [2]
    assert simulator.admin("/__sim/reset").status_code == 200
    assert simulator.deliveries() == []
    assert stripe_for().v1.checkout.sessions.list().data == []


def test_midtrans_redelivery_sends_the_same_body(midtrans_for, receiver, simulator):
    url = midtrans_for().create_transaction(snap_params())["redirect_url"]
    choose(url, "qris")
    requests.post(f"{simulator.url}/__sim/deliveries/1/redeliver", timeout=TIMEOUT)
    first, second = receiver.at("/midtrans")
    assert first.body == second.body


def test_command_rejects_a_bad_port_in_one_line():
    result = CliRunner().invoke(gateway_simulator_command, ["--port", "0"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: ")
