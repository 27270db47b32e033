"""The API v2 over real HTTP, called by a plain `requests` client as scripts and other panels
call it: every action, every transport, and every error, each as HTTP 200 JSON."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from app.orders.models import COMPLETED, IN_PROGRESS
from tests.api_support import api_shop, new_key, upstream
from tests.ordering import LINK


@pytest.fixture
def served(app, make):
    """The app on a free port of 127.0.0.1, the shop, and a key of alice's."""
    shop = api_shop(app, make)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield (
        f"http://127.0.0.1:{server.server_port}/api/v2",
        shop,
        new_key(app, shop["acme"], shop["alice"]),
    )
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class Client:
    """What a plain client does: one URL, the panel's name in the Host header."""

    def __init__(self, url: str, key: str | None, host: str = "acme.localhost"):
        self.url, self.key, self.host = url, key, host

    def __call__(self, action=None, *, how="form", headers=None, **params):
        if action is not None:
            params["action"] = action
        if self.key is not None and how != "header":
            params["key"] = self.key
        headers = {"Host": self.host, **(headers or {})}
        if how == "header":
            headers["X-Api-Key"] = self.key
        if how in ("form", "header"):
            response = requests.post(self.url, data=params, headers=headers, timeout=10)
        elif how == "json":
            response = requests.post(self.url, json=params, headers=headers, timeout=10)
        else:
            response = requests.get(self.url, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["Content-Type"].startswith("application/json")
        return response.json()


@pytest.fixture
def call(served):
    url, _, key = served
    return Client(url, key)


@pytest.mark.parametrize("how", ["form", "json", "get", "header"])
def test_every_transport_reaches_the_api(call, how):
    assert call("balance", how=how) == {"balance": "100.00000", "currency": "USD"}


def test_a_bearer_token_reaches_the_api(served):
    url, _, key = served
    reply = requests.get(
        url,
        params={"action": "balance"},
        headers={"Host": "acme.localhost", "Authorization": f"Bearer {key}"},
        timeout=10,
    ).json()
    assert reply["currency"] == "USD"


def test_every_action_end_to_end(app, served, call):
    _, shop, _ = served
    services = call("services", how="get")
    assert {s["service"] for s in services} >= {shop["likes"], shop["comments"]}
    first = call("add", how="json", service=shop["likes"], link=LINK, quantity=100, ref="r1")
    assert call("add", service=shop["likes"], link=LINK, quantity=100, ref="r1") == first
    second = call("add", service=shop["comments"], link=LINK, comments="a\nb")["order"]
    order = first["order"]
    assert call("status", order=order)["status"] == "Pending"
    multi = call("status", orders=f"{order},{second}")
    assert set(multi) == {str(order), str(second)}
    upstream(app, order, COMPLETED)
    refill = call("refill", order=order)["refill"]
    assert call("refill_status", refill=refill) == {"status": "Pending"}
    assert call("refill_status", refills=refill) == [{"refill": int(refill), "status": "Pending"}]
    assert call("refill", orders=str(order)) == [
        {"order": order, "refill": {"error": "A refill of this order is already under way."}}
    ]
    third = call("add", service=shop["likes"], link=LINK, quantity=100)["order"]
    upstream(app, third, IN_PROGRESS)
    assert call("cancel", orders=f"{second},{third}") == [
        {"order": second, "cancel": 1},
        {"order": third, "cancel": 1},
    ]
    # Charged 0.13 + 0.0026 + 0.13; the unsent comments order (0.0026) came back at once.
    assert call("balance")["balance"] == "99.74000"
    assert call(order=order)["status"] == "Completed"  # no action: read as status


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"action": "balance", "key": ""}, "Invalid API key"),
        ({"action": "balance", "key": "nope"}, "Invalid API key"),
        ({"action": "fly"}, "Unknown action"),
        ({}, "Incorrect request"),
        ({"action": "add", "service": "424242", "quantity": "100"}, "Incorrect service ID"),
        ({"action": "status", "order": "1x"}, "Incorrect order ID"),
        ({"action": "status", "orders": ",".join(map(str, range(1, 102)))}, None),
        ({"action": "refill_status", "refill": "-4"}, "Incorrect refill ID"),
    ],
)
def test_every_error_is_http_200_json(served, params, error):
    url, _, key = served
    params = {"key": key, **params}
    response = requests.post(url, data=params, headers={"Host": "acme.localhost"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"error": error or "Too many IDs: at most 100 per request"}


def test_order_errors_over_http(served, call):
    _, shop, _ = served
    assert call("add", service=shop["likes"], link="x", quantity=100) == {
        "error": "Enter a valid link starting with http:// or https://"
    }
    assert call("add", service=shop["likes"], link=LINK, quantity=1) == {
        "error": "Quantity must be at least 10"
    }
    assert call("add", service=shop["likes"], link=LINK, quantity=5000) == {
        "error": "Quantity must be at most 1000"
    }


def test_not_enough_funds_over_http(app, served):
    url, shop, _ = served
    bob = Client(url, new_key(app, shop["acme"], shop["bob"]))
    assert bob("add", service=shop["likes"], link=LINK, quantity=100) == {
        "error": "Not enough funds on balance"
    }


def test_a_key_on_another_panels_host_is_refused_over_http(served):
    url, _, key = served
    assert Client(url, key, host="nusa.localhost")("balance") == {"error": "Invalid API key"}


def test_a_suspended_panel_over_http(app, served, call):
    from app.extensions import db
    from app.panels.models import Tenant
    from tenants.context import across_tenants
    from tenants.provisioning import suspend_tenant

    _, shop, _ = served
    with app.app_context(), across_tenants():
        suspend_tenant(db.session.get(Tenant, shop["acme"]), actor="test")
        db.session.commit()
    assert call("balance") == {"error": "Panel suspended"}


def test_a_broken_json_body_over_http(served):
    url, _, _ = served
    response = requests.post(
        url,
        data=b'{"action": "balance",',
        headers={"Host": "acme.localhost", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"error": "Incorrect request: the body is not valid JSON"}


def test_the_openapi_description_over_http(served):
    url, _, _ = served
    spec = requests.get(f"{url}/openapi.json", headers={"Host": "acme.localhost"}, timeout=10)
    assert spec.json()["servers"][0]["url"].startswith("http://acme.localhost")


def test_pasoks_own_provider_client_can_use_a_panel_as_its_upstream(app, served):
    """A tenant's API is itself a valid upstream: Pasok's client reads every reply."""
    from decimal import Decimal

    from app.providers.client import ProviderClient

    url, shop, key = served
    port = url.split(":")[2].split("/")[0]
    client = ProviderClient(f"http://acme.localhost:{port}/api/v2", key, honours_ref=True)
    services = client.services()
    assert services.ok, services.error
    likes = next(s for s in services.data if s.external_id == str(shop["likes"]))
    assert (likes.rate, likes.min_quantity, likes.refill) == (Decimal("1.30"), 10, True)
    placed = client.add(shop["likes"], ref="pasok-77", link=LINK, quantity=100)
    assert placed.ok, placed.error
    assert client.add(shop["likes"], ref="pasok-77", link=LINK, quantity=100).data == placed.data
    status = client.status(placed.data)
    assert (status.data.status, status.data.charge) == ("Pending", Decimal("0.13"))
    assert client.statuses([placed.data, "999"]).ok
    balance = client.balance()
    assert (balance.data.amount, balance.data.currency) == (Decimal("99.87"), "USD")
    canceled = client.cancel([placed.data])
    assert canceled.ok, canceled.error
    refused = client.add(shop["likes"], link="nope", quantity=100)
    assert refused.error == "Enter a valid link starting with http:// or https://"
