"""The customer's ordering pages on the storefront: a new order with its live charge, mass
orders, the list of orders, one order (and canceling it), the wallet, and the dashboard; every
error a form error, nobody else's orders visible, in every theme."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.ledger.models import LedgerAccount
from app.orders.models import COMPLETED, IN_PROGRESS, ON_HOLD, PARTIAL, Order
from app.panels.models import SUSPENDED, Tenant
from tenants.context import across_tenants, tenant_scope
from tests.conftest import sign_in
from tests.ordering import LINK, build_shop, fund, fund_tenant

D = Decimal
THEMES = ["base", "aurora", "nusantara"]


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def shop(app, make):
    """acme and nusa with their catalog; alice has 10.00 USD, acme's wholesale wallet 5.00."""
    ids = build_shop(app, make)
    fund(app, ids["alice"], "10.00")
    fund_tenant(app, ids["acme"], "5.00")
    return ids


def signed_in(browser_for, email="alice@example.com", host="acme.localhost"):
    client = browser_for(host)
    assert sign_in(client, "/login", email).status_code == 302
    return client


@pytest.fixture
def alice(shop, browser_for):
    return signed_in(browser_for)


def html(response) -> str:
    return response.data.decode()


def form_token(page: str) -> str:
    return re.search(r'name="form_token" type="hidden" value="([^"]+)"', page)[1]


def order_form(client, service_id: int | None = None) -> str:
    response = client.get("/orders/new" + (f"?service={service_id}" if service_id else ""))
    assert response.status_code == 200
    return html(response)


def post_order(client, service_id, token: str | None = None, **fields):
    """Post the new-order form as a browser would: with the token its page was given."""
    if token is None:
        token = form_token(order_form(client, service_id))
    data = {"service": str(service_id), "form_token": token}
    data.update({k: str(v) for k, v in fields.items()})
    return client.post("/orders/new", data=data)


def post_mass(client, lines: str, token: str | None = None):
    if token is None:
        token = form_token(html(client.get("/orders/mass")))
    return client.post("/orders/mass", data={"orders": lines, "form_token": token})


def shown_inputs(page: str) -> set[str]:
    """The order inputs the page shows (the others are hidden and disabled)."""
    return {
        name for name, hidden in re.findall(r'data-param="(\w+)"( hidden)?>', page) if not hidden
    }


def orders_of(app, customer_id: int) -> list[Order]:
    with app.app_context(), across_tenants():
        orders = db.session.scalars(
            select(Order).where(Order.customer_id == customer_id).order_by(Order.id)
        ).all()
        db.session.expunge_all()
        return list(orders)


def balance_of(app, customer_id: int) -> Decimal:
    with app.app_context(), across_tenants():
        found = db.session.scalar(
            select(LedgerAccount.balance).where(LedgerAccount.customer_id == customer_id)
        )
        return found if found is not None else D(0)


def place(app, ids, customer="alice", tenant="acme", service="likes", quantity=100, link=LINK):
    """An order placed through the service, as the API or another page would."""
    from app.orders.services import place_order

    with app.app_context(), tenant_scope(ids[tenant]):
        placed = place_order(
            tenant_id=ids[tenant],
            customer_id=ids[customer],
            service_id=ids[service],
            fields={"link": link, "quantity": str(quantity)},
            actor="test",
        )
        db.session.commit()
        return placed.order.id


def set_order(app, order_id: int, **values) -> None:
    with app.app_context(), across_tenants():
        db.session.execute(update(Order).where(Order.id == order_id).values(**values))
        db.session.commit()


def set_theme(app, tenant_id: int, theme: str) -> None:
    with app.app_context(), across_tenants():
        db.session.get(Tenant, tenant_id).theme = theme
        db.session.commit()


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/orders/new", "/orders/mass", "/orders", "/orders/1", "/funds", "/dashboard"]
)
def test_the_customer_pages_send_visitors_to_sign_in(shop, browser_for, path):
    response = browser_for("acme.localhost").get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_live_charge_answers_visitors_in_json(shop, browser_for):
    response = browser_for("acme.localhost").get(f"/orders/quote?service={shop['likes']}")
    assert response.status_code == 401
    assert "error" in response.get_json()


def test_the_pages_do_not_exist_on_the_platform_domain(app, browser_for):
    assert browser_for("localhost").get("/orders/new").status_code == 404


# --- the new order form ----------------------------------------------------------------------


def test_the_form_preselects_the_service_and_describes_it(shop, alice):
    page = order_form(alice, shop["likes"])
    assert f'<option value="{shop["likes"]}" selected>' in page
    assert 'optgroup label="Instagram"' in page and 'optgroup label="TikTok"' in page
    assert "All about likes." in page
    assert ">10</span> \u2013 <span" in page and ">1000</span>" in page
    assert 'USD</span> <span data-info="rate">1.30<' in page
    assert "2 hours" in page  # its average time
    assert 'data-flag="refill">' in page and 'data-flag="cancel">' in page  # not hidden
    assert shown_inputs(page) == {"link", "quantity", "runs", "interval"}


def test_a_service_without_drip_feed_or_an_average_time(shop, alice):
    page = order_form(alice, shop["views"])
    assert shown_inputs(page) == {"link", "quantity"}
    assert 'data-info="average_time">\u2014<' in page
    assert 'data-flag="refill" hidden' in page and 'data-flag="cancel" hidden' in page


@pytest.mark.parametrize(
    ("service", "inputs"),
    [
        ("comments", {"link", "comments"}),
        ("package", {"link"}),
        ("subs", {"username", "min", "max", "delay", "posts", "old_posts", "expiry"}),
    ],
)
def test_the_form_asks_for_what_the_service_type_needs(shop, alice, service, inputs):
    page = order_form(alice, shop[service])
    assert shown_inputs(page) == inputs
    hidden_textarea = re.search(r'<textarea[^>]*name="usernames"[^>]*>', page)[0]
    assert "disabled" in hidden_textarea  # hidden inputs are not posted


@pytest.mark.parametrize("wanted", ["hidden", "999999", "abc", "1" * 40])
def test_a_service_not_for_sale_is_not_preselected(shop, alice, wanted):
    page = order_form(alice, shop.get(wanted, wanted))
    assert " selected>" not in page.split('id="service"')[1].split("</select>")[0]
    assert f'value="{shop["hidden"]}"' not in page
    assert shown_inputs(page) == set()


def test_the_form_never_comes_back_from_the_browser_cache(shop, alice):
    response = alice.get("/orders/new")
    assert response.headers["Cache-Control"] == "no-store"
    assert form_token(html(response)) != form_token(order_form(alice))


# --- placing an order ------------------------------------------------------------------------


def test_an_order_is_placed_charged_and_shown(app, shop, alice):
    response = post_order(alice, shop["likes"], link=LINK, quantity=100)

    [order] = orders_of(app, shop["alice"])
    assert response.status_code == 302
    assert response.headers["Location"] == f"/orders/{order.id}"
    assert (order.link, order.quantity, order.charge) == (LINK, 100, D("0.13"))
    assert balance_of(app, shop["alice"]) == D("9.87")
    page = html(alice.get(f"/orders/{order.id}"))
    assert f"Order #{order.id} placed: USD 0.13000." in page
    assert "Likes service" in page and LINK in page


def test_a_drip_feed_order_is_charged_for_every_run(app, shop, alice):
    post_order(alice, shop["likes"], link=LINK, quantity=100, runs=3, interval=30)
    [order] = orders_of(app, shop["alice"])
    assert (order.quantity, order.charge, order.params) == (
        300,
        D("0.39"),
        {"runs": "3", "interval": "30"},
    )


def test_inputs_the_service_does_not_ask_for_are_ignored(app, shop, alice):
    response = post_order(
        alice, shop["comments"], link=LINK, comments="nice\ngreat", quantity=999, runs=5
    )
    assert response.status_code == 302
    [order] = orders_of(app, shop["alice"])
    assert (order.quantity, order.params) == (2, {"comments": "nice\ngreat"})


def test_the_same_form_posted_twice_places_one_order(app, shop, alice):
    token = form_token(order_form(alice, shop["likes"]))

    first = post_order(alice, shop["likes"], token, link=LINK, quantity=100)
    again = post_order(alice, shop["likes"], token, link=LINK, quantity=100)

    assert first.headers["Location"] == again.headers["Location"]
    assert len(orders_of(app, shop["alice"])) == 1
    assert balance_of(app, shop["alice"]) == D("9.87")
    assert "This order was already placed" in html(alice.get(again.headers["Location"]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"link": "instagram.com/p/abc", "quantity": 100}, "Enter a valid link"),
        ({"link": "", "quantity": 100}, "Link is required"),
        ({"link": LINK, "quantity": 5}, "Quantity must be at least 10"),
        ({"link": LINK, "quantity": 5000}, "Quantity must be at most 1000"),
        ({"link": LINK, "quantity": "ten"}, "Quantity must be a whole number"),
        ({"link": LINK, "quantity": 100, "runs": 1, "interval": 5}, "at least 2 runs"),
    ],
)
def test_bad_input_is_shown_on_its_field_and_charges_nothing(app, shop, alice, fields, message):
    response = post_order(alice, shop["likes"], **fields)

    assert response.status_code == 200
    page = html(response)
    assert message in page
    assert 'class="field field--error" data-param="' in page
    assert f'value="{fields["link"]}"' in page  # what was typed is kept
    assert orders_of(app, shop["alice"]) == []
    assert balance_of(app, shop["alice"]) == D("10.00")


@pytest.mark.parametrize("service", ["hidden", "999999", "x1"])
def test_a_service_not_for_sale_is_refused(app, shop, alice, service):
    response = post_order(alice, shop.get(service, service), "tok", link=LINK, quantity=100)
    assert response.status_code == 200
    assert "Unknown service" in html(response)
    assert orders_of(app, shop["alice"]) == []


def test_no_service_chosen(app, shop, alice):
    response = post_order(alice, "", "tok", link=LINK, quantity=100)
    assert response.status_code == 200
    assert "Choose a service" in html(response)


def test_a_customer_without_funds_is_sent_to_the_wallet(app, shop, browser_for):
    bob = signed_in(browser_for, "bob@example.com")

    response = post_order(bob, shop["likes"], link=LINK, quantity=100)

    assert response.status_code == 200
    page = html(response)
    assert "Not enough funds on balance" in page
    assert 'href="/funds">Add funds' in page
    assert orders_of(app, shop["bob"]) == []


def test_a_panel_suspended_while_the_form_was_open_refuses_the_order(app, shop, alice):
    token = form_token(order_form(alice, shop["likes"]))
    # Routing still has the panel as active (its cached view), the database says suspended.
    app.extensions["pasok_resolver"].clock = lambda: 0.0
    alice.get("/orders/new")
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(update(Tenant).where(Tenant.id == shop["acme"]).values(status=SUSPENDED))

    response = post_order(alice, shop["likes"], token, link=LINK, quantity=100)

    assert response.status_code == 200
    assert "Panel suspended" in html(response)
    assert orders_of(app, shop["alice"]) == []


def test_an_order_waiting_for_the_resellers_wallet_shows_as_pending(app, shop, alice):
    with app.app_context(), across_tenants():
        from app.ledger import topup_tenant

        topup_tenant(db.session.get(Tenant, shop["acme"]), D("-5.00"), "correction", "test")
        db.session.commit()

    response = post_order(alice, shop["likes"], link=LINK, quantity=100)

    [order] = orders_of(app, shop["alice"])
    assert order.status == ON_HOLD
    page = html(alice.get(response.headers["Location"]))
    assert "status-badge--pending" in page and "Cancel order" in page
    assert "on_hold" not in page and "On hold" not in page


# --- the live charge -------------------------------------------------------------------------


def quote(client, **args):
    response = client.get("/orders/quote", query_string=args)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_the_live_charge_prices_what_is_typed(shop, alice):
    reply = quote(alice, service=shop["likes"], quantity=100)
    assert (reply["charge"], reply["currency"], reply["quantity"]) == ("0.13000", "USD", 100)
    assert reply["enough_funds"] is True
    assert reply["service"]["fields"] == ["link", "quantity", "runs", "interval"]
    assert (reply["service"]["min"], reply["service"]["max"]) == (10, 1000)
    assert quote(alice, service=shop["likes"], quantity=100, runs=3, interval=5)["charge"] == (
        "0.39000"
    )


def test_the_live_charge_needs_no_link(shop, alice):
    assert quote(alice, service=shop["likes"], quantity=100, link="")["charge"] == "0.13000"
    assert quote(alice, service=shop["likes"], quantity=100, link="oops")["charge"] == "0.13000"


def test_the_live_charge_of_list_and_package_services(shop, alice):
    assert quote(alice, service=shop["comments"], comments="a\nb\nc")["quantity"] == 3
    assert quote(alice, service=shop["package"])["charge"] == "1.30000"
    assert quote(alice, service=shop["subs"], min=10, max=100, posts=2)["charge"] == "0.26000"


def test_the_live_charge_shows_the_service_before_anything_is_typed(shop, alice):
    reply = quote(alice, service=shop["likes"])
    assert reply["service"]["name"] == "Likes service"
    assert "charge" not in reply and "error" not in reply


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({"quantity": 5}, "quantity", "Quantity must be at least 10"),
        ({"quantity": "lots"}, "quantity", "Quantity must be a whole number"),
        ({"quantity": 100, "runs": 2}, "runs", "Drip-feed needs both runs and interval"),
    ],
)
def test_the_live_charge_explains_bad_input_in_json(shop, alice, args, field, message):
    reply = quote(alice, service=shop["likes"], **args)
    assert (reply["field"], reply["error"]) == (field, message)
    assert "charge" not in reply and reply["service"]["id"] == shop["likes"]


@pytest.mark.parametrize("service", ["hidden", "424242", "", "drop table"])
def test_the_live_charge_of_a_service_not_for_sale(shop, alice, service):
    assert quote(alice, service=shop.get(service, service), quantity=100) == {
        "error": "Unknown service",
        "field": "service",
    }


def test_the_live_charge_warns_when_the_balance_is_short(shop, browser_for):
    bob = signed_in(browser_for, "bob@example.com")
    assert quote(bob, service=shop["likes"], quantity=100)["enough_funds"] is False


def test_the_live_charge_is_what_the_order_is_charged_with_a_discount(app, shop, alice):
    from app.pricing.retail import set_customer_discount

    with app.app_context(), tenant_scope(shop["acme"]):
        set_customer_discount(shop["acme"], shop["alice"], actor="test", discount_percent=D(10))
        db.session.commit()
    live = quote(alice, service=shop["views"], quantity=1000)

    post_order(alice, shop["views"], link=LINK, quantity=1000)

    [order] = orders_of(app, shop["alice"])
    assert D(live["charge"]) == order.charge < D("1.30")
    assert live["service"]["rate"] in order_form(alice, shop["views"])


def test_the_live_charge_is_in_the_panels_currency(app, shop, browser_for):
    fund(app, shop["budi"], "100000")
    budi = signed_in(browser_for, "budi@example.com", "nusa.localhost")
    reply = quote(budi, service=shop["likes"], quantity=100)
    assert (reply["charge"], reply["currency"]) == ("2080.00", "IDR")


# --- mass orders -----------------------------------------------------------------------------


def test_a_mass_order_places_every_line_and_sums_them_up(app, shop, alice):
    lines = f"{shop['likes']}|{LINK}|100\n\n{shop['views']}|https://t.me/x|200\n"

    response = post_mass(alice, lines)

    assert response.status_code == 200
    page = html(response)
    assert "2 orders placed." in page
    assert "USD 0.39000" in page  # the total: 0.13 + 0.26
    assert "USD 9.61000" in page  # the balance after
    orders = orders_of(app, shop["alice"])
    assert [(o.service_id, o.quantity) for o in orders] == [
        (shop["likes"], 100),
        (shop["views"], 200),
    ]
    assert all(f'href="/orders/{o.id}"' in page for o in orders)


def test_a_mass_order_with_a_bad_line_shows_each_error_and_charges_nothing(app, shop, alice):
    lines = "\n".join(
        [
            f"{shop['likes']}|{LINK}|100",
            f"{shop['likes']}|not-a-link|100",
            f"{shop['views']}|{LINK}|5",
            f"{shop['comments']}|{LINK}|3",
        ]
    )

    response = post_mass(alice, lines)

    page = html(response)
    assert response.status_code == 200
    assert "Line 2: Enter a valid link" in page
    assert "Line 3: Quantity must be at least 100" in page
    assert "Line 4: This service cannot be ordered in bulk" in page
    assert "Line 1:" not in page
    assert lines.splitlines()[1] in page  # the text is kept to fix
    assert orders_of(app, shop["alice"]) == []
    assert balance_of(app, shop["alice"]) == D("10.00")


def test_a_mass_order_the_balance_cannot_cover_places_nothing(app, shop, alice):
    response = post_mass(alice, f"{shop['views']}|{LINK}|10000\n" * 2)  # 13.00 each
    assert "Not enough funds on balance" in html(response)
    assert orders_of(app, shop["alice"]) == []
    assert balance_of(app, shop["alice"]) == D("10.00")


def test_the_same_mass_form_posted_twice_places_once(app, shop, alice):
    token = form_token(html(alice.get("/orders/mass")))
    lines = f"{shop['likes']}|{LINK}|100\n{shop['likes']}|{LINK}/2|100"

    post_mass(alice, lines, token)
    again = post_mass(alice, lines, token)

    assert "These orders were already placed." in html(again)
    assert len(orders_of(app, shop["alice"])) == 2
    assert balance_of(app, shop["alice"]) == D("9.74")


def test_an_empty_mass_order_is_a_form_error(shop, alice):
    response = post_mass(alice, "  \n ")
    assert response.status_code == 200
    assert "Enter at least one order" in html(response)


# --- the list of orders ----------------------------------------------------------------------


def test_orders_are_listed_newest_first_a_page_at_a_time(app, shop, alice):
    ids = [place(app, shop, quantity=10 + n) for n in range(21)]

    first = html(alice.get("/orders"))
    second = html(alice.get("/orders?page=2"))

    assert first.index(f'id="order-{ids[20]}"') < first.index(f'id="order-{ids[1]}"')
    assert f'id="order-{ids[0]}"' not in first and f'id="order-{ids[0]}"' in second
    assert "Page 1 of 2" in first and 'href="/orders?page=2"' in first
    last = html(alice.get("/orders?page=99"))  # out of range: the last page
    assert re.findall(r'id="order-(\d+)"', last) == [str(ids[0])]


def test_the_status_tabs_are_what_the_customer_sees(app, shop, alice):
    pending, held, running, done, partial = (place(app, shop) for _ in range(5))
    set_order(app, held, status=ON_HOLD)
    set_order(app, running, status=IN_PROGRESS, start_count=50, remains=40)
    set_order(app, done, status=COMPLETED)
    set_order(app, partial, status=PARTIAL, remains=20)

    page = html(alice.get("/orders"))
    tabs = re.findall(r'class="tabs__tab" href="[^"]*"[^>]*>([^<]+)<', page)
    shown = ["All", "Pending", "In progress", "Processing", "Completed", "Partial", "Canceled"]
    assert tabs == shown
    listed = html(alice.get("/orders?status=pending"))
    assert f'id="order-{pending}"' in listed and f'id="order-{held}"' in listed
    assert f'id="order-{done}"' not in listed
    completed = html(alice.get("/orders?status=completed"))
    assert f'id="order-{done}"' in completed and f'id="order-{pending}"' not in completed
    assert 'href="/orders?status=completed" aria-current="page"' in completed
    assert "status-badge--completed" in completed
    assert "No orders match" in html(alice.get("/orders?status=canceled"))
    assert f'id="order-{done}"' in html(alice.get("/orders?status=on_hold"))  # unknown: all


def test_orders_are_searched_by_id_or_link(app, shop, alice):
    first = place(app, shop, link="https://instagram.com/p/first")
    second = place(app, shop, link="https://tiktok.com/@second")

    by_id = html(alice.get(f"/orders?q=%23{second}"))
    assert f'id="order-{second}"' in by_id and f'id="order-{first}"' not in by_id
    by_link = html(alice.get("/orders?q=TIKTOK.com"))
    assert f'id="order-{second}"' in by_link and f'id="order-{first}"' not in by_link
    assert "No orders match" in html(alice.get("/orders?q=100%25_nothing"))
    assert html(alice.get("/orders?q=" + "9" * 30)).count('class="order-row"') == 0


def test_a_customer_sees_only_their_own_orders(app, shop, alice):
    fund(app, shop["bob"], "5.00")
    fund(app, shop["budi"], "100000")
    mine = place(app, shop)
    bobs = place(app, shop, customer="bob")
    budis = place(app, shop, customer="budi", tenant="nusa")

    page = html(alice.get("/orders"))
    assert f'id="order-{mine}"' in page
    assert f'id="order-{bobs}"' not in page and f'id="order-{budis}"' not in page
    assert f'id="order-{bobs}"' not in html(alice.get(f"/orders?q={bobs}"))


# --- one order -------------------------------------------------------------------------------


def test_an_order_shows_what_was_bought_and_where_it_is(app, shop, alice):
    order_id = place(app, shop, quantity=250)
    set_order(app, order_id, status=PARTIAL, start_count=3572, remains=157)

    page = html(alice.get(f"/orders/{order_id}"))

    assert f"Order #{order_id}" in page
    for text in ("Likes service", LINK, ">250<", "USD 0.32500", "3572", "157"):
        assert text in page, text
    assert "status-badge--partial" in page and ">Partial<" in page
    assert "Cancel order" not in page


def test_another_customers_or_tenants_order_is_not_found(app, shop, alice):
    fund(app, shop["bob"], "5.00")
    fund(app, shop["budi"], "100000")
    bobs = place(app, shop, customer="bob")
    budis = place(app, shop, customer="budi", tenant="nusa")

    for order_id in (bobs, budis, 999999, 2**40):
        assert alice.get(f"/orders/{order_id}").status_code == 404
        assert alice.post(f"/orders/{order_id}/cancel").status_code == 404
    assert [o.status for o in orders_of(app, shop["bob"])] == ["pending"]
    assert balance_of(app, shop["bob"]) == D("4.87")


def test_an_unsent_order_is_canceled_for_a_full_refund(app, shop, alice):
    order_id = place(app, shop)

    response = alice.post(f"/orders/{order_id}/cancel")

    assert response.headers["Location"] == f"/orders/{order_id}"
    page = html(alice.get(f"/orders/{order_id}"))
    assert f"Order #{order_id} canceled; USD 0.13000 is back on your balance." in page
    assert "status-badge--canceled" in page and "Refunded" in page
    assert balance_of(app, shop["alice"]) == D("10.00")
    again = alice.post(f"/orders/{order_id}/cancel", follow_redirects=True)
    assert "can no longer be canceled" in html(again)
    assert balance_of(app, shop["alice"]) == D("10.00")


def test_an_order_already_sent_cannot_be_canceled(app, shop, alice):
    order_id = place(app, shop)
    set_order(app, order_id, status=IN_PROGRESS)

    assert "Cancel order" not in html(alice.get(f"/orders/{order_id}"))
    response = alice.post(f"/orders/{order_id}/cancel", follow_redirects=True)
    assert "can no longer be canceled" in html(response)
    assert balance_of(app, shop["alice"]) == D("9.87")


def test_canceling_needs_the_forms_csrf_token(app, shop, make_app, browser_for):
    order_id = place(app, shop)
    guarded = make_app(WTF_CSRF_ENABLED=True)
    client = browser_for("acme.localhost", guarded.test_client())
    login_page = html(client.get("/login"))
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)[1]
    client.post("/login", data={"email": "alice@example.com", "password": "correct-horse-7",
                                "csrf_token": csrf})  # fmt: skip

    assert client.post(f"/orders/{order_id}/cancel").status_code == 400
    assert [o.status for o in orders_of(app, shop["alice"])] == ["pending"]
    page = html(client.get(f"/orders/{order_id}"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.split("/cancel")[1])[1]
    assert client.post(f"/orders/{order_id}/cancel", data={"csrf_token": token}).status_code == 302
    assert [o.status for o in orders_of(app, shop["alice"])] == ["canceled"]


# --- the wallet ------------------------------------------------------------------------------


def test_the_wallet_shows_the_balance_and_every_movement(app, shop, alice):
    from app.accounts.models import User
    from app.ledger import clawback, credit_topup

    with app.app_context(), across_tenants():
        customer = db.session.get(User, shop["alice"])
        credit_topup(customer, D("5.00"), "manual", "wire-1")
        clawback(customer, D("1.00"), "manual", "wire-1", "bank reversal", cause="refund")
        db.session.commit()
    order_id = place(app, shop)
    alice.post(f"/orders/{order_id}/cancel")

    page = html(alice.get("/funds"))

    assert 'id="balance">USD 14.00000<' in page
    rows = re.findall(
        r'history-row__description">\s*(?:<a href="([^"]*)">)?([^<]+?)\s*<.*?'
        r"history-row__amount [^\"]*\">([^<]+)<.*?<td[^>]*>([^<]+)</td>",
        page,
        re.S,
    )
    assert rows == [
        (f"/orders/{order_id}", f"Refund of order #{order_id}", "+0.13000", "14.00000"),
        (f"/orders/{order_id}", f"Order #{order_id}", "\u22120.13000", "13.87000"),
        ("", "Payment reversed: bank reversal", "\u22121.00000", "14.00000"),
        ("", "Top-up", "+5.00000", "15.00000"),
        ("", "Adjustment: opening credit", "+10.00000", "10.00000"),
    ]
    assert "top-ups are made by the shop's staff" in page


def test_the_wallet_history_keeps_the_running_balance_across_pages(app, shop, alice):
    for _ in range(26):
        place(app, shop)  # 26 charges of 0.13 after the opening 10.00

    first = html(alice.get("/funds"))
    second = html(alice.get("/funds?page=2"))

    assert first.count('class="history-row"') == 25 and "Page 1 of 2" in first
    assert 'id="balance">USD 6.62000<' in first
    assert ">6.62000<" in first  # after the newest charge
    assert second.count('class="history-row"') == 2
    assert ">9.87000<" in second and ">10.00000<" in second  # the first charge, the opening


def test_a_customer_who_never_had_money_has_an_empty_wallet(app, shop, browser_for):
    def accounts():
        with app.app_context(), across_tenants():
            return db.session.scalar(select(func.count(LedgerAccount.id)))

    before = accounts()
    bob = signed_in(browser_for, "bob@example.com")

    page = html(bob.get("/funds"))
    dashboard = html(bob.get("/dashboard"))

    assert 'id="balance">USD 0.00000<' in page and "No movements yet" in page
    assert "USD 0.00000" in dashboard
    assert accounts() == before  # looking at it created no wallet


# --- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_shows_the_balance_the_order_count_and_the_latest_orders(app, shop, alice):
    ids = [place(app, shop) for _ in range(6)]

    page = html(alice.get("/dashboard"))

    assert "USD 9.22000" in page
    assert re.search(r'stat__label">Orders</span>\s*<span class="stat__value">6<', page)
    assert all(f'id="order-{i}"' in page for i in ids[1:])
    assert f'id="order-{ids[0]}"' not in page and 'href="/orders">See all orders' in page


def test_a_new_customers_dashboard_invites_a_first_order(shop, browser_for):
    page = html(signed_in(browser_for, "bob@example.com").get("/dashboard"))
    assert "No orders yet" in page and 'href="/orders/new"' in page


# --- every theme, both languages -------------------------------------------------------------


@pytest.mark.parametrize("theme", THEMES)
def test_every_ordering_page_renders_in_every_theme(app, shop, alice, theme):
    set_theme(app, shop["acme"], theme)
    order_id = place(app, shop)
    pages = [
        f"/orders/new?service={shop['likes']}",
        "/orders/mass",
        "/orders",
        f"/orders/{order_id}",
        "/funds",
        "/dashboard",
        "/services",
    ]
    for path in pages:
        response = alice.get(path)
        assert response.status_code == 200, path
        page = html(response)
        assert f"theme-{theme}" in page, path
        for link in ('href="/orders/new"', 'href="/orders"', 'href="/funds"'):
            assert link in page, (path, link)
    script = alice.get("/theme-static/base/js/order.js")
    script.close()
    assert script.status_code == 200


@pytest.mark.parametrize("theme", THEMES)
def test_the_nav_marks_the_page_you_are_on(app, shop, alice, theme):
    set_theme(app, shop["acme"], theme)
    assert 'href="/orders" aria-current="page"' in html(alice.get("/orders"))
    assert 'href="/funds" aria-current="page"' in html(alice.get("/funds"))
    assert 'href="/orders/new" aria-current="page"' in html(alice.get("/orders/new"))


def test_the_order_buttons_of_the_price_list_open_the_form(shop, alice):
    page = html(alice.get("/services"))
    assert f'href="/orders/new?service={shop["likes"]}"' in page


def test_an_indonesian_panel_orders_in_its_language_and_currency(app, shop, browser_for):
    fund(app, shop["budi"], "100000")
    budi = signed_in(browser_for, "budi@example.com", "nusa.localhost")
    response = post_order(budi, shop["likes"], link=LINK, quantity=100)
    order_id = int(response.headers["Location"].rsplit("/", 1)[1])

    for path in ("/orders/new", "/orders", f"/orders/{order_id}", "/funds", "/dashboard"):
        page = html(budi.get(path))
        assert '<html lang="id">' in page, path
        assert "USD" not in page, path
    assert "IDR 2080.00" in html(budi.get(f"/orders/{order_id}"))
