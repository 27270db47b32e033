"""The panel's SMM API v2 at `<panel host>/api/v2` (DESIGN.md, "SMM panel API v2"): every
action in its single and multi forms, every transport, the common types, every error as
HTTP 200 with `{"error": …}` in English, and tenancy (a key works on its own panel only)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.ledger.history import customer_balance
from app.orders.models import COMPLETED, IN_PROGRESS, Order, UpstreamRequest
from app.panels.models import Tenant
from tenants.context import across_tenants, tenant_scope
from tests.api_support import ACME, NUSA, Api, api_shop, new_key, upstream
from tests.ordering import LINK

D = Decimal


@pytest.fixture
def shop(app, make):
    return api_shop(app, make)


@pytest.fixture
def api(app, shop):
    return Api(app, ACME, new_key(app, shop["acme"], shop["alice"]))


def balance_of(app, tenant_id: int, customer_id: int) -> Decimal:
    with app.app_context(), tenant_scope(tenant_id):
        tenant, customer = db.session.get(Tenant, tenant_id), db.session.get(User, customer_id)
        return customer_balance(tenant, customer)


def order_row(app, order_id: int) -> Order:
    with app.app_context(), across_tenants():
        order = db.session.get(Order, order_id)
        db.session.expunge(order)
        return order


# --- keys and transports ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["form", "json", "get"])
def test_balance_answers_through_every_transport(api, how):
    assert api("balance", how=how) == {"balance": "100.00000", "currency": "USD"}


def test_the_key_may_come_in_an_x_api_key_header(app, api):
    response = app.test_client().post(
        "/api/v2",
        data={"action": "balance"},
        headers={"X-Api-Key": api.key},
        base_url=f"http://{ACME}",
    )
    assert response.get_json()["balance"] == "100.00000"


def test_the_key_may_come_as_a_bearer_token(app, api):
    response = app.test_client().get(
        "/api/v2?action=balance",
        headers={"Authorization": f"Bearer {api.key}"},
        base_url=f"http://{ACME}",
    )
    assert response.get_json()["currency"] == "USD"


def test_a_missing_key_is_refused(app, shop):
    assert Api(app)("balance") == {"error": "Invalid API key"}


def test_a_bad_key_is_refused(app, shop):
    assert Api(app, key="0" * 40)("balance") == {"error": "Invalid API key"}


def test_a_revoked_key_is_refused(app, shop, api):
    from app.api.keys import customer_keys, revoke_key

    with app.app_context(), tenant_scope(shop["acme"]):
        key = customer_keys(shop["acme"], shop["alice"])[0]
        revoke_key(shop["acme"], shop["alice"], key.id, actor="test")
        db.session.commit()
    assert api("balance") == {"error": "Invalid API key"}


def test_a_key_used_on_another_panels_host_is_refused(app, api):
    assert Api(app, NUSA, api.key)("balance") == {"error": "Invalid API key"}
    assert Api(app, NUSA, api.key)("services") == {"error": "Invalid API key"}


def test_a_suspended_panel_answers_panel_suspended(app, shop, api):
    from tenants.provisioning import suspend_tenant

    with app.app_context(), across_tenants():
        suspend_tenant(db.session.get(Tenant, shop["acme"]), actor="test")
        db.session.commit()
    assert api("balance") == {"error": "Panel suspended"}
    assert api("add", service=shop["likes"], link=LINK, quantity=100) == {
        "error": "Panel suspended"
    }


def test_a_host_that_is_no_panel_gets_a_json_error(app, shop, api):
    assert Api(app, "nowhere.localhost", api.key)("balance") == {
        "error": "No panel at this address"
    }
    assert Api(app, "localhost", api.key)("balance") == {"error": "No panel at this address"}


def test_an_unknown_action_is_refused(api):
    assert api("fly") == {"error": "Unknown action"}


def test_a_call_without_an_action_or_ids_is_refused(api):
    assert api() == {"error": "Incorrect request"}


def test_an_action_that_changes_anything_is_never_inferred(api, shop):
    assert api(service=shop["likes"], link=LINK, quantity=100) == {"error": "Incorrect request"}


def test_without_an_action_an_order_reads_as_status(api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    assert api(order=placed["order"])["status"] == "Pending"
    assert api(orders=str(placed["order"]))[str(placed["order"])]["status"] == "Pending"


def test_without_an_action_a_refill_reads_as_refill_status(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    upstream(app, placed["order"], COMPLETED)
    refill = api("refill", order=placed["order"])["refill"]
    assert api(refill=refill) == {"status": "Pending"}
    assert api(refills=refill) == [{"refill": int(refill), "status": "Pending"}]


def test_other_http_methods_get_a_json_error(app, api):
    response = app.test_client().put(
        "/api/v2", data={"key": api.key, "action": "balance"}, base_url=f"http://{ACME}"
    )
    assert response.status_code == 200
    assert response.get_json() == {"error": "Incorrect request"}


def test_a_body_that_says_json_and_is_not_gets_an_error(app, api):
    response = app.test_client().post(
        "/api/v2",
        data="{not json",
        content_type="application/json",
        base_url=f"http://{ACME}",
    )
    assert response.status_code == 200
    assert response.get_json() == {"error": "Incorrect request: the body is not valid JSON"}


def test_a_json_body_that_is_no_object_gets_an_error(app, api):
    response = app.test_client().post("/api/v2", json=[1, 2], base_url=f"http://{ACME}")
    assert response.get_json() == {"error": "Incorrect request"}


def test_nul_characters_are_refused(api, shop):
    reply = api("add", service=shop["likes"], link=LINK + "\x00", quantity=100)
    assert reply == {"error": "Incorrect request: parameters must be text without NUL characters"}


def test_errors_stay_english_in_an_indonesian_panel(app, shop):
    api = Api(app, NUSA, new_key(app, shop["nusa"], shop["budi"]))
    assert api("add", service=shop["likes"], link="nope", quantity=100) == {
        "error": "Enter a valid link starting with http:// or https://"
    }
    assert api("add", service=shop["likes"], link=LINK, quantity=1)["error"] == (
        "Quantity must be at least 10"
    )


# --- services and balance --------------------------------------------------------------------


def test_services_lists_what_the_panel_sells_in_the_common_types(api, shop):
    services = api("services")
    by_id = {s["service"]: s for s in services}
    assert shop["hidden"] not in by_id
    likes = by_id[shop["likes"]]
    assert likes == {
        "service": shop["likes"],
        "name": "Likes service",
        "type": "Default",
        "category": "Instagram",
        "rate": "1.30",
        "min": "10",
        "max": "1000",
        "refill": True,
        "cancel": True,
        "dripfeed": True,
    }
    assert {s["type"] for s in services} == {
        "Default",
        "Custom Comments",
        "Package",
        "Subscriptions",
    }


def test_services_show_the_customers_own_discounted_rate(app, api, shop):
    from app.pricing.retail import set_customer_discount

    with app.app_context(), tenant_scope(shop["acme"]):
        set_customer_discount(shop["acme"], shop["alice"], actor="test", discount_percent=D("10"))
        db.session.commit()
    likes = next(s for s in api("services") if s["service"] == shop["likes"])
    assert likes["rate"] == "1.17"


def test_balance_of_an_idr_panel_has_two_decimals(app, shop):
    api = Api(app, NUSA, new_key(app, shop["nusa"], shop["budi"]))
    assert api("balance") == {"balance": "1000000.00", "currency": "IDR"}


# --- add -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["form", "json", "get"])
def test_add_places_an_order_and_charges_exactly_its_charge(app, api, shop, how):
    placed = api("add", how=how, service=shop["likes"], link=LINK, quantity=100)
    assert isinstance(placed["order"], int)
    order = order_row(app, placed["order"])
    assert order.charge == D("0.13") and order.quantity == 100
    assert balance_of(app, shop["acme"], shop["alice"]) == D("99.87")
    assert api("status", order=placed["order"])["charge"] == "0.13000"


def test_add_takes_drip_feed_runs_and_interval(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100, runs=3, interval=5)
    order = order_row(app, placed["order"])
    assert order.quantity == 300 and order.params == {"runs": "3", "interval": "5"}


def test_add_custom_comments_one_per_line(app, api, shop):
    placed = api("add", service=shop["comments"], link=LINK, comments="nice\ngreat\nwow")
    assert order_row(app, placed["order"]).quantity == 3


def test_add_custom_comments_as_a_json_list(app, api, shop):
    placed = api("add", how="json", service=shop["comments"], link=LINK, comments=["a", "b"])
    assert order_row(app, placed["order"]).params["comments"] == "a\nb"


def test_add_a_package_with_a_link_only(app, api, shop):
    placed = api("add", service=shop["package"], link=LINK)
    assert order_row(app, placed["order"]).charge == D("1.30")


def test_add_a_subscription(app, api, shop):
    placed = api("add", service=shop["subs"], username="someone", min=10, max=20, delay=0)
    order = order_row(app, placed["order"])
    assert order.link == "someone" and order.params["max"] == "20"


def test_add_with_the_same_ref_gets_the_same_order_charged_once(app, api, shop):
    first = api("add", service=shop["likes"], link=LINK, quantity=100, ref="client-1")
    again = api("add", service=shop["likes"], link=LINK, quantity=100, ref="client-1")
    assert first == again
    assert balance_of(app, shop["acme"], shop["alice"]) == D("99.87")


def test_add_an_unknown_service_is_refused(api, shop):
    assert api("add", service=999999, link=LINK, quantity=100) == {"error": "Incorrect service ID"}
    assert api("add", service="abc", link=LINK, quantity=100) == {"error": "Incorrect service ID"}
    assert api("add", link=LINK, quantity=100) == {"error": "Incorrect service ID"}


def test_add_a_service_the_panel_does_not_sell_is_refused(api, shop):
    assert api("add", service=shop["hidden"], link=LINK, quantity=100) == {
        "error": "Incorrect service ID"
    }


def test_add_a_bad_link_is_refused(api, shop):
    assert api("add", service=shop["likes"], link="instagram", quantity=100) == {
        "error": "Enter a valid link starting with http:// or https://"
    }


@pytest.mark.parametrize(
    ("quantity", "error"),
    [
        (5, "Quantity must be at least 10"),
        (5000, "Quantity must be at most 1000"),
        ("ten", "Quantity must be a whole number"),
        ("", "Quantity is required"),
    ],
)
def test_add_a_quantity_out_of_range_is_refused(api, shop, quantity, error):
    assert api("add", service=shop["likes"], link=LINK, quantity=quantity) == {"error": error}


def test_add_without_enough_funds_is_refused_and_charges_nothing(app, shop):
    api = Api(app, ACME, new_key(app, shop["acme"], shop["bob"]))
    assert api("add", service=shop["likes"], link=LINK, quantity=100) == {
        "error": "Not enough funds on balance"
    }
    with app.app_context(), across_tenants():
        assert db.session.scalar(select(db.func.count(Order.id))) == 0


# --- status ----------------------------------------------------------------------------------


def test_status_of_one_order_in_the_common_types(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    assert api("status", order=placed["order"]) == {
        "charge": "0.13000",
        "start_count": "0",
        "status": "Pending",
        "remains": "100",
        "currency": "USD",
    }
    upstream(app, placed["order"], "partial", start_count=3572, remains=57)
    assert api("status", order=placed["order"]) == {
        "charge": "0.13000",
        "start_count": "3572",
        "status": "Partial",
        "remains": "57",
        "currency": "USD",
    }


def test_status_of_many_orders_answers_each_id(app, api, shop):
    one = api("add", service=shop["likes"], link=LINK, quantity=100)["order"]
    two = api("add", service=shop["likes"], link=LINK, quantity=200)["order"]
    reply = api("status", orders=f"{one}, {two},abc,999999")
    assert reply[str(one)]["status"] == "Pending"
    assert reply[str(two)]["charge"] == "0.26000"
    assert reply["abc"] == {"error": "Incorrect order ID"}
    assert reply["999999"] == {"error": "Incorrect order ID"}


def test_status_of_too_many_ids_is_refused(api):
    ids = ",".join(str(n) for n in range(1, 102))
    assert api("status", orders=ids) == {"error": "Too many IDs: at most 100 per request"}


@pytest.mark.parametrize("order", ["", "abc", "-1", "0", "1.5", "99999999999999"])
def test_status_of_a_malformed_id_is_refused(api, order):
    assert api("status", order=order) == {"error": "Incorrect order ID"}


def test_status_of_another_customers_order_is_refused(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    fund = Api(app, ACME, new_key(app, shop["acme"], shop["bob"]))
    assert fund("status", order=placed["order"]) == {"error": "Incorrect order ID"}


def test_another_panels_order_ids_are_not_visible(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    nusa = Api(app, NUSA, new_key(app, shop["nusa"], shop["budi"]))
    assert nusa("status", order=placed["order"]) == {"error": "Incorrect order ID"}
    assert nusa("status", orders=str(placed["order"])) == {
        str(placed["order"]): {"error": "Incorrect order ID"}
    }
    assert nusa("cancel", orders=str(placed["order"])) == [
        {"order": placed["order"], "cancel": {"error": "Incorrect order ID"}}
    ]
    assert nusa("refill", order=placed["order"]) == {"error": "Incorrect order ID"}
    assert order_row(app, placed["order"]).status == "pending"


# --- refill and refill_status ----------------------------------------------------------------


def test_refill_of_a_completed_order_is_requested(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    upstream(app, placed["order"], COMPLETED)
    reply = api("refill", order=placed["order"])
    assert isinstance(reply["refill"], str)
    with app.app_context(), across_tenants():
        request = db.session.get(UpstreamRequest, int(reply["refill"]))
        assert (request.kind, request.order_id) == ("refill", placed["order"])
    assert api("refill_status", refill=reply["refill"]) == {"status": "Pending"}


def test_refill_of_many_orders_answers_each(app, api, shop):
    done = api("add", service=shop["likes"], link=LINK, quantity=100)["order"]
    waiting = api("add", service=shop["likes"], link=LINK, quantity=100)["order"]
    upstream(app, done, COMPLETED)
    reply = api("refill", orders=f"{done},{waiting},x")
    assert reply[0]["order"] == done and isinstance(reply[0]["refill"], int)
    assert reply[1] == {
        "order": waiting,
        "refill": {"error": "Only a completed order can be refilled."},
    }
    assert reply[2] == {"order": "x", "refill": {"error": "Incorrect order ID"}}


def test_refill_of_a_service_without_refills_is_refused(app, api, shop):
    placed = api("add", service=shop["views"], link=LINK, quantity=100)
    upstream(app, placed["order"], COMPLETED)
    assert api("refill", order=placed["order"]) == {"error": "This service does not offer refills."}


def test_refill_status_of_many_refills(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    upstream(app, placed["order"], COMPLETED)
    refill = int(api("refill", order=placed["order"])["refill"])
    assert api("refill_status", refills=f"{refill},77,x") == [
        {"refill": refill, "status": "Pending"},
        {"refill": 77, "status": {"error": "Incorrect refill ID"}},
        {"refill": "x", "status": {"error": "Incorrect refill ID"}},
    ]


def test_refill_status_of_a_malformed_or_foreign_refill_is_refused(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    upstream(app, placed["order"], COMPLETED)
    refill = api("refill", order=placed["order"])["refill"]
    bob = Api(app, ACME, new_key(app, shop["acme"], shop["bob"]))
    assert bob("refill_status", refill=refill) == {"error": "Incorrect refill ID"}
    assert api("refill_status", refill="abc") == {"error": "Incorrect refill ID"}


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_of_an_unsent_order_refunds_it_in_full(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    assert api("cancel", orders=str(placed["order"])) == [{"order": placed["order"], "cancel": 1}]
    assert api("status", order=placed["order"])["status"] == "Canceled"
    assert balance_of(app, shop["acme"], shop["alice"]) == D("100")


def test_cancel_of_an_order_upstream_asks_the_provider(app, api, shop):
    placed = api("add", service=shop["likes"], link=LINK, quantity=100)
    upstream(app, placed["order"], IN_PROGRESS)
    assert api("cancel", orders=str(placed["order"])) == [{"order": placed["order"], "cancel": 1}]
    with app.app_context(), across_tenants():
        kinds = db.session.scalars(
            select(UpstreamRequest.kind).where(UpstreamRequest.order_id == placed["order"])
        ).all()
    assert kinds == ["cancel"]
    again = api("cancel", orders=str(placed["order"]))
    assert again == [
        {
            "order": placed["order"],
            "cancel": {"error": "A cancel of this order has already been requested."},
        }
    ]


def test_cancel_of_many_orders_answers_each(app, api, shop):
    unsent = api("add", service=shop["likes"], link=LINK, quantity=100)["order"]
    no_cancel = api("add", service=shop["views"], link=LINK, quantity=100)["order"]
    upstream(app, no_cancel, IN_PROGRESS)
    assert api("cancel", orders=f"{unsent},{no_cancel},0") == [
        {"order": unsent, "cancel": 1},
        {
            "order": no_cancel,
            "cancel": {
                "error": "This service does not allow canceling an order once it has started."
            },
        },
        {"order": "0", "cancel": {"error": "Incorrect order ID"}},
    ]


def test_cancel_without_ids_is_refused(api):
    assert api("cancel") == {"error": "Incorrect order ID"}


def test_cancel_of_too_many_ids_is_refused(api):
    ids = ",".join(str(n) for n in range(1, 200))
    assert api("cancel", orders=ids) == {"error": "Too many IDs: at most 100 per request"}
