"""Placing orders: input checked per order type, the price snapshotted, both wallets charged in
one transaction (or nothing written), idempotent by ref and form token, on hold while the
tenant's wallet is short, cancelable while unsent, and inside its tenant."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from flask_babel.speaklater import LazyString
from sqlalchemy import func, select, update

from app.accounts.models import User
from app.catalog.models import PUBLISHED, UNLISTED, Category, Service, ServiceRoute
from app.errors import NotFound
from app.extensions import db
from app.money.fx import set_rate
from app.panels.models import SUSPENDED, Tenant
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants, enter_scope, leave_scope, tenant_scope
from tenants.scoping import TenantScopeError
from tests.conftest import (
    TEST_DATABASE_URL,
    Factories,
    empty_database,
    service_missing,
    watch_balance,
)

D = Decimal
LINK = "https://instagram.com/p/abc123"

# name: (order type, min, max, step, dripfeed, status)
SERVICES = {
    "likes": ("Default", 10, 1000, 10, True, PUBLISHED),
    "plain": ("Default", 10, 1000, 1, False, PUBLISHED),
    "package": ("Package", 1, 1, 1, False, PUBLISHED),
    "comments": ("Custom Comments", 2, 5, 1, False, PUBLISHED),
    "subs": ("Subscriptions", 10, 1000, 1, False, PUBLISHED),
    "hidden": ("Default", 10, 1000, 1, False, UNLISTED),
}


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def orders(app):
    """The orders modules, side by side."""
    from app.orders import models, services, validation

    return SimpleNamespace(models=models, services=services, validation=validation)


@pytest.fixture
def ledger():
    from app import ledger

    return ledger


def build_shop(app, make: Factories) -> dict[str, int]:
    """acme sells in USD, nusa in IDR (USD/IDR 16000); every service costs 1.00 USD per 1000
    wholesale, so acme's default 30% markup sells at 1.3 USD and nusa's at 20800 IDR."""
    ids = {"acme": make.tenant("acme"), "nusa": make.tenant("nusa", currency="IDR")}
    ids["alice"] = make.customer(ids["acme"], "alice@example.com")
    ids["bob"] = make.customer(ids["acme"], "bob@example.com")
    ids["budi"] = make.customer(ids["nusa"], "budi@example.com")
    with app.app_context(), across_tenants():
        provider = Provider(name="up", api_url="http://x.example/api/v2", api_key="k")
        category = Category(name="Instagram", position=1)
        for name, (kind, low, high, step, drip, status) in SERVICES.items():
            service = Service(
                category=category, name=name, type=kind, min_quantity=low, max_quantity=high,
                step=step, dripfeed=drip, status=status,
            )  # fmt: skip
            upstream = ProviderService(
                provider=provider, external_id=name, name=name, category="x", type=kind,
                rate=D("1.00"), min_quantity=low, max_quantity=high,
            )  # fmt: skip
            route = ServiceRoute(service=service, provider_service=upstream)
            db.session.add_all([service, upstream, route])
            db.session.flush()
            ids[name] = service.id
        set_rate("USD", "IDR", "16000", actor="test")
        db.session.commit()
    return ids


@pytest.fixture
def shop(app, make, orders, ledger):
    """Across tenants in an app context: the shop's rows loaded, alice with 10.00 USD and
    acme's wholesale wallet with 5.00 USD."""
    ids = build_shop(app, make)
    with app.app_context(), across_tenants():
        s = load(ids)
        ledger.adjust_customer(s.alice, D("10.00"), "opening credit", "test")
        ledger.topup_tenant(s.acme, D("5.00"), "opening", "test")
        db.session.commit()
        yield s
        db.session.rollback()


def load(ids: dict[str, int]) -> SimpleNamespace:
    with across_tenants():
        return SimpleNamespace(
            ids=ids,
            acme=db.session.get(Tenant, ids["acme"]),
            nusa=db.session.get(Tenant, ids["nusa"]),
            alice=db.session.get(User, ids["alice"]),
            bob=db.session.get(User, ids["bob"]),
            budi=db.session.get(User, ids["budi"]),
        )


def place(orders, shop, service="likes", customer=None, tenant=None, **fields):
    customer = customer or shop.alice
    options = {k: fields.pop(k) for k in ("ref", "form_token") if k in fields}
    return orders.services.place_order(
        tenant_id=(tenant or shop.acme).id,
        customer_id=customer.id,
        service_id=shop.ids[service],
        fields=fields or {"link": LINK, "quantity": "100"},
        actor=customer,
        **options,
    )


def wallet(ledger, owner) -> Decimal:
    if isinstance(owner, Tenant):
        return ledger.balance(ledger.wholesale_wallet_of(owner))
    return ledger.balance(ledger.wallet_of(owner))


def order_count(orders) -> int:
    return db.session.scalar(select(func.count(orders.models.Order.id)))


def entry_count(ledger) -> int:
    return db.session.scalar(select(func.count(ledger.JournalEntry.id)))


def assert_ledger_clean(ledger) -> None:
    report = ledger.verify_ledger()
    assert report.ok, report


# --- validation, per order type --------------------------------------------------------------


def svc(kind="Default", low=10, high=1000, step=1, dripfeed=False):
    return SimpleNamespace(type=kind, min_quantity=low, max_quantity=high, step=step,
                           dripfeed=dripfeed)  # fmt: skip


@pytest.fixture
def check(app, orders):
    """`check(service, **fields)`: the valid request, or the OrderRejected raised."""
    with app.app_context():

        def validate(service, **fields):
            try:
                return orders.validation.validate_order(service, fields)
            except orders.validation.OrderRejected as exc:
                return exc

        yield validate


def rejected(result, field: str, message: str) -> bool:
    assert isinstance(result, Exception), f"expected a rejection, got {result}"
    assert (result.field, str(result)) == (field, message)
    return True


def test_a_default_order_takes_a_link_and_a_quantity(check):
    r = check(svc(), link=LINK, quantity="100")
    assert (r.link, r.quantity, r.billed_units, r.params) == (LINK, 100, 100, {})
    assert check(svc(), link=" http://example.com/x ", quantity=50).link == "http://example.com/x"


@pytest.mark.parametrize(
    "link",
    [
        "not a link",
        "instagram.com/p/abc",
        "ftp://example.com/file",
        "javascript:alert(1)",
        "http://",
        "https://localhost/x",
        "https://exa mple.com/x",
        "https://example.com:99999999/x",
        "https://" + "a" * 2050 + ".com",
    ],
)
def test_a_link_must_be_an_http_url_with_a_host(check, link):
    assert rejected(
        check(svc(), link=link, quantity="100"),
        "link",
        "Enter a valid link starting with http:// or https://",
    )


def test_a_link_is_required(check):
    assert rejected(check(svc(), quantity="100"), "link", "Link is required")
    assert rejected(check(svc(), link="   ", quantity="100"), "link", "Link is required")


@pytest.mark.parametrize("quantity", ["abc", "-5", "10.5", "1e3", True, 3.5, ["100"]])
def test_a_quantity_must_be_a_whole_number(check, quantity):
    result = check(svc(), link=LINK, quantity=quantity)
    assert result.field == "quantity"
    assert str(result) in ("Quantity must be a whole number", "Quantity is not valid")


def test_a_quantity_is_required(check):
    assert rejected(check(svc(), link=LINK), "quantity", "Quantity is required")


def test_a_quantity_must_be_within_the_services_limits(check):
    assert rejected(check(svc(), link=LINK, quantity="9"), "quantity",
                    "Quantity must be at least 10")  # fmt: skip
    assert rejected(check(svc(), link=LINK, quantity="1001"), "quantity",
                    "Quantity must be at most 1000")  # fmt: skip
    assert check(svc(), link=LINK, quantity="1000").quantity == 1000


def test_a_quantity_must_be_a_multiple_of_the_step(check):
    assert rejected(check(svc(step=10), link=LINK, quantity="105"), "quantity",
                    "Quantity must be a multiple of 10")  # fmt: skip
    assert check(svc(step=10), link=LINK, quantity="110").quantity == 110


def test_drip_feed_is_refused_on_a_service_without_it(check):
    assert rejected(check(svc(), link=LINK, quantity="100", runs="3", interval="10"), "runs",
                    "This service does not support drip-feed")  # fmt: skip


def test_a_drip_feed_order_counts_and_bills_every_run(check):
    r = check(svc(dripfeed=True), link=LINK, quantity="100", runs="3", interval="10")
    assert (r.quantity, r.billed_units) == (300, 300)
    assert r.params == {"runs": "3", "interval": "10"}


@pytest.mark.parametrize(
    ("runs", "interval", "field", "message"),
    [
        ("3", "", "runs", "Drip-feed needs both runs and interval"),
        ("", "10", "runs", "Drip-feed needs both runs and interval"),
        ("1", "10", "runs", "Drip-feed needs at least 2 runs"),
        ("x", "10", "runs", "Runs must be a whole number"),
        ("3", "0", "interval", "The interval must be at least 1 minute"),
        ("3", "-1", "interval", "Interval must be a whole number"),
        ("11", "10", "runs", "Quantity times runs must be at most 1000"),
    ],
)
def test_bad_drip_feed_input_is_refused(check, runs, interval, field, message):
    service = svc(dripfeed=True)
    result = check(service, link=LINK, quantity="100", runs=runs, interval=interval)
    assert rejected(result, field, message)


def test_a_package_is_one_package_billed_at_its_rate(check):
    r = check(svc("Package", 1, 1), link=LINK)
    assert (r.quantity, r.billed_units) == (1, 1000)
    assert rejected(check(svc("Package", 1, 1)), "link", "Link is required")


def test_custom_comments_are_one_per_line_and_their_count_is_the_quantity(check):
    service = svc("Custom Comments", 2, 5)
    r = check(service, link=LINK, comments="Nice!\r\nGreat shot\n  Wow  \n")
    assert (r.quantity, r.billed_units) == (3, 3)
    assert r.params == {"comments": "Nice!\nGreat shot\nWow"}
    assert check(service, link=LINK, comments="a\nb\nc", quantity="3").quantity == 3


def test_bad_custom_comments_are_refused(check):
    service = svc("Custom Comments", 2, 5)
    assert rejected(check(service, link=LINK), "comments", "Comments is required")
    assert rejected(check(service, link=LINK, comments="a\n\nb"), "comments",
                    "Comments must not have empty lines")  # fmt: skip
    assert rejected(check(service, link=LINK, comments="only one"), "comments",
                    "Comments must be at least 2")  # fmt: skip
    assert rejected(check(service, link=LINK, comments="1\n2\n3\n4\n5\n6"), "comments",
                    "Comments must be at most 5")  # fmt: skip
    assert rejected(check(service, link=LINK, comments="a\nb\nc", quantity="4"), "comments",
                    "The quantity must equal the number of lines (3)")  # fmt: skip
    assert rejected(check(service, comments="a\nb"), "link", "Link is required")


def test_a_custom_comments_package_is_billed_once(check):
    r = check(svc("Custom Comments Package", 1, 1), link=LINK, comments="a\nb\nc")
    assert (r.quantity, r.billed_units, r.params) == (3, 1000, {"comments": "a\nb\nc"})


def test_mentions_with_hashtags_take_both_lists(check):
    service = svc("Mentions with Hashtags")
    r = check(service, link=LINK, quantity="100", usernames="ann\nbob", hashtags="#a\n#b")
    assert r.params == {"usernames": "ann\nbob", "hashtags": "#a\n#b"}
    assert rejected(check(service, link=LINK, quantity="100", usernames="ann"), "hashtags",
                    "Hashtags is required")  # fmt: skip
    assert rejected(check(service, link=LINK, quantity="5", usernames="a", hashtags="#a"),
                    "quantity", "Quantity must be at least 10")  # fmt: skip


def test_a_mentions_custom_list_is_as_many_as_its_usernames(check):
    service = svc("Mentions Custom List", 2, 10)
    assert check(service, link=LINK, usernames="ann\nbob\ncat").quantity == 3
    assert rejected(check(service, link=LINK, usernames="ann"), "usernames",
                    "Usernames must be at least 2")  # fmt: skip
    assert rejected(check(service, link=LINK), "usernames", "Usernames is required")


def test_a_mentions_hashtag_takes_one_hashtag(check):
    service = svc("Mentions Hashtag")
    assert check(service, link=LINK, quantity="100", hashtag="#sale").params == {"hashtag": "#sale"}
    assert rejected(check(service, link=LINK, quantity="100", hashtag="two words"), "hashtag",
                    "Hashtag is not valid")  # fmt: skip
    assert rejected(check(service, link=LINK, quantity="100"), "hashtag", "Hashtag is required")


@pytest.mark.parametrize("kind", ["Mentions User Followers", "Comment Likes"])
def test_types_with_a_username_take_a_handle(check, kind):
    service = svc(kind)
    assert check(service, link=LINK, quantity="100", username="@ann.b").params == {
        "username": "@ann.b"
    }
    assert rejected(check(service, link=LINK, quantity="100", username="ann b"), "username",
                    "Enter a username without spaces or a link")  # fmt: skip
    assert rejected(check(service, link=LINK, quantity="100"), "username", "Username is required")


def test_mentions_media_likers_take_a_media_link(check):
    service = svc("Mentions Media Likers")
    assert check(service, link=LINK, quantity="100", media=LINK).params == {"media": LINK}
    assert rejected(check(service, link=LINK, quantity="100", media="pic"), "media",
                    "Enter a valid link starting with http:// or https://")  # fmt: skip


def test_comment_replies_take_a_username_and_counted_comments(check):
    service = svc("Comment Replies", 1, 10)
    r = check(service, link=LINK, username="ann", comments="hi\nthere")
    assert (r.quantity, r.params) == (2, {"username": "ann", "comments": "hi\nthere"})
    assert rejected(check(service, link=LINK, comments="hi"), "username", "Username is required")


def test_a_poll_takes_a_positive_answer_number(check):
    service = svc("Poll")
    r = check(service, link=LINK, quantity="100", answer_number="2")
    assert r.params == {"answer_number": "2"}
    assert rejected(check(service, link=LINK, quantity="100", answer_number="0"),
                    "answer_number", "Answer number must be 1 or more")  # fmt: skip
    assert rejected(check(service, link=LINK, quantity="100", answer_number="first"),
                    "answer_number", "Answer number must be a whole number")  # fmt: skip
    assert rejected(check(service, link=LINK, quantity="100"), "answer_number",
                    "Answer number is required")  # fmt: skip


@pytest.mark.parametrize(("kind", "name"), [("Invites from Groups", "groups"), ("SEO", "keywords")])
def test_list_types_take_their_list(check, kind, name):
    service = svc(kind)
    assert check(service, link=LINK, quantity="100", **{name: "a\nb"}).params == {name: "a\nb"}
    assert rejected(check(service, link=LINK, quantity="100"), name,
                    f"{name.capitalize()} is required")  # fmt: skip


def test_a_subscription_targets_a_username_and_bills_max_per_post(check):
    expiry = (datetime.now(UTC) + timedelta(days=30)).date()
    r = check(svc("Subscriptions"), username="ann", min="100", max="200", delay="30",
              posts="5", old_posts="0", expiry=expiry.isoformat())  # fmt: skip
    assert (r.link, r.quantity, r.billed_units) == ("ann", 200, 1000)
    assert r.params == {"username": "ann", "min": "100", "max": "200", "delay": "30",
                        "posts": "5", "old_posts": "0",
                        "expiry": expiry.strftime("%d/%m/%Y")}  # fmt: skip
    plain = check(svc("Subscriptions"), username="ann", min="100", max="200", delay="0")
    assert (plain.quantity, plain.billed_units) == (200, 200)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"min": "100", "max": "200", "delay": "0"}, "username", "Username is required"),
        ({"username": "a b", "min": "100", "max": "200", "delay": "0"}, "username",
         "Enter a username without spaces or a link"),
        ({"username": "ann", "max": "200", "delay": "0"}, "min", "Min is required"),
        ({"username": "ann", "min": "300", "max": "200", "delay": "0"}, "min",
         "Min must not be more than max"),
        ({"username": "ann", "min": "5", "max": "200", "delay": "0"}, "min",
         "Min must be at least 10"),
        ({"username": "ann", "min": "100", "max": "2000", "delay": "0"}, "max",
         "Max must be at most 1000"),
        ({"username": "ann", "min": "100", "max": "200", "delay": "7"}, "delay",
         "Delay must be one of 0, 5, 10, 15, 30, 60, 90 minutes"),
        ({"username": "ann", "min": "100", "max": "200", "delay": "0", "posts": "0"}, "posts",
         "Posts must be 1 or more"),
        ({"username": "ann", "min": "100", "max": "200", "delay": "0", "old_posts": "-1"},
         "old_posts", "Old posts must be a whole number"),
        ({"username": "ann", "min": "100", "max": "200", "delay": "0", "expiry": "soon"},
         "expiry", "Enter the expiry date as dd/mm/yyyy"),
        ({"username": "ann", "min": "100", "max": "200", "delay": "0", "expiry": "01/01/2020"},
         "expiry", "The expiry date is in the past"),
    ],
)  # fmt: skip
def test_bad_subscription_input_is_refused(check, fields, field, message):
    assert rejected(check(svc("Subscriptions"), **fields), field, message)


def test_an_unknown_order_type_cannot_be_ordered(check):
    assert rejected(check(svc("Teleport"), link=LINK), "service", "This service cannot be ordered")


def test_rejections_are_marked_for_translation(check):
    result = check(svc(), link=LINK, quantity="5")
    assert isinstance(result.args[0], LazyString)


# --- placing one order -----------------------------------------------------------------------


def test_an_order_snapshots_its_price(orders, shop):
    placed = place(orders, shop)
    o = placed.order
    assert placed.created and o.status == "pending" and o.api_status == "Pending"
    assert (o.tenant_id, o.customer_id, o.service_id) == (shop.acme.id, shop.alice.id,
                                                          shop.ids["likes"])  # fmt: skip
    assert (o.link, o.quantity, o.params) == (LINK, 100, {})
    assert (o.retail_rate, o.charge, o.currency) == (D("1.3"), D("0.13"), "USD")
    assert (o.wholesale_rate, o.wholesale_charge, o.platform_currency) == (D("1"), D("0.1"), "USD")
    assert (o.fx_rate, o.discount_percent, o.attempts) == (D(1), D(0), 0)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(orders.models.Order, o.id)
    assert (stored.retail_rate, stored.charge, stored.fx_rate) == (D("1.3"), D("0.13"), D(1))


def test_an_idr_order_snapshots_both_currencies_and_the_fx_rate(orders, shop, ledger):
    ledger.adjust_customer(shop.budi, D("100000"), "opening credit", "test")
    ledger.topup_tenant(shop.nusa, D("5.00"), "opening", "test")
    o = place(orders, shop, customer=shop.budi, tenant=shop.nusa).order
    assert (o.retail_rate, o.charge, o.currency) == (D("20800"), D("2080"), "IDR")
    assert (o.wholesale_charge, o.platform_currency, o.fx_rate) == (D("0.1"), "USD", D("16000"))
    assert wallet(ledger, shop.budi) == D("97920")


def test_a_customer_discount_is_snapshotted(orders, shop):
    from app.pricing.retail import set_customer_discount

    set_customer_discount(shop.acme.id, shop.alice.id, discount_percent=D(10), actor="test")
    o = place(orders, shop).order
    assert (o.retail_rate, o.charge, o.discount_percent) == (D("1.17"), D("0.117"), D(10))


def test_an_order_charges_both_wallets_in_its_transaction(orders, shop, ledger):
    o = place(orders, shop).order
    assert wallet(ledger, shop.alice) == D("9.87")
    assert wallet(ledger, shop.acme) == D("4.9")
    totals = ledger.order_totals(o.id)
    assert (totals.retail_charged, totals.wholesale_charged) == (o.charge, o.wholesale_charge)
    db.session.rollback()  # the caller's rollback undoes the order and both charges together
    assert order_count(orders) == 0
    assert (wallet(ledger, shop.alice), wallet(ledger, shop.acme)) == (D("10.00"), D("5.00"))
    assert_ledger_clean(ledger)


def test_a_drip_feed_order_is_charged_for_every_run(orders, shop):
    o = place(orders, shop, link=LINK, quantity="100", runs="3", interval="15").order
    assert (o.quantity, o.charge, o.params) == (300, D("0.39"), {"runs": "3", "interval": "15"})


def test_a_package_is_charged_its_rate(orders, shop):
    o = place(orders, shop, "package", link=LINK).order
    assert (o.quantity, o.charge, o.wholesale_charge) == (1, D("1.3"), D("1"))


def test_a_subscription_is_stored_with_its_username_as_target(orders, shop):
    o = place(orders, shop, "subs", username="ann", min="100", max="200", delay="5").order
    assert (o.link, o.quantity, o.charge) == ("ann", 200, D("0.26"))


def test_custom_comments_are_stored_one_per_line(orders, shop):
    o = place(orders, shop, "comments", link=LINK, comments="one\ntwo\nthree").order
    assert (o.quantity, o.params["comments"], o.charge) == (3, "one\ntwo\nthree", D("0.0039"))


def test_bad_input_places_nothing(orders, shop, ledger):
    with pytest.raises(orders.validation.OrderRejected, match="Quantity must be at least 10"):
        place(orders, shop, link=LINK, quantity="1")
    with pytest.raises(orders.validation.OrderRejected, match="does not support drip-feed"):
        place(orders, shop, "plain", link=LINK, quantity="100", runs="2", interval="5")
    assert order_count(orders) == 0 and wallet(ledger, shop.alice) == D("10.00")


@pytest.mark.parametrize("service_id", [999999, "abc", "-1", None, True])
def test_an_unknown_service_is_refused(orders, shop, service_id):
    with pytest.raises(orders.validation.OrderRejected, match=r"^Unknown service$"):
        orders.services.place_order(tenant_id=shop.acme.id, customer_id=shop.alice.id,
                                    service_id=service_id, fields={"link": LINK, "quantity": 100},
                                    actor="test")  # fmt: skip


def test_a_service_not_for_sale_is_unknown_even_with_bad_input(orders, shop):
    with pytest.raises(orders.validation.OrderRejected, match=r"^Unknown service$") as exc:
        place(orders, shop, "hidden", link="garbage", quantity="1")
    assert exc.value.field == "service"


def test_a_service_the_tenant_hides_is_unknown_to_its_customers(orders, shop, ledger):
    from app.pricing.retail import set_override

    set_override(shop.acme.id, service_id=shop.ids["likes"], hidden=True, actor="test")
    with pytest.raises(orders.validation.OrderRejected, match=r"^Unknown service$"):
        place(orders, shop)
    ledger.adjust_customer(shop.budi, D("100000"), "opening credit", "test")
    assert place(orders, shop, customer=shop.budi, tenant=shop.nusa).created  # nusa still sells


def test_a_suspended_panel_takes_no_orders(orders, shop):
    shop.acme.status = SUSPENDED
    with pytest.raises(orders.services.PanelSuspended):
        place(orders, shop)


def test_a_pending_order_is_recorded_for_forwarding_after_commit(orders, shop, monkeypatch):
    sent = []
    monkeypatch.setattr(orders.services, "enqueue_forwarding", sent.append)
    o = place(orders, shop).order
    assert orders.services.orders_to_forward() == [o.id]
    db.session.commit()
    assert sent == [[o.id]] and orders.services.orders_to_forward() == []
    place(orders, shop, ref="gone")
    db.session.rollback()
    assert orders.services.orders_to_forward() == []


def test_other_orders_savepoints_neither_send_early_nor_forget(orders, shop, ledger, monkeypatch):
    sent = []
    monkeypatch.setattr(orders.services, "enqueue_forwarding", sent.append)
    first = place(orders, shop).order
    second = place(orders, shop).order  # its savepoint's release is not the commit
    assert sent == []
    with pytest.raises(ledger.InsufficientFunds):
        place(orders, shop, customer=shop.bob)  # its savepoint rolls back
    assert orders.services.orders_to_forward() == [first.id, second.id]
    db.session.commit()
    assert sent == [[first.id, second.id]]


def test_an_order_shows_pending_exactly_while_the_customer_may_cancel_it(orders, shop):
    """Every internal status reads as one of API v2's six, and as *Pending* exactly while the
    customer can still cancel for a full refund."""
    api_v2 = {"Pending", "In progress", "Processing", "Completed", "Partial", "Canceled"}
    for status in orders.models.STATUSES:
        order = place(orders, shop).order
        db.session.execute(
            update(orders.models.Order)
            .where(orders.models.Order.id == order.id)
            .values(status=status)
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(order)
        shown = order.api_status
        assert shown in api_v2
        try:
            orders.services.cancel_unsent_order(order.id, shop.alice.id, actor="test")
            cancelled = True
        except orders.services.OrderNotCancelable:
            cancelled = False
        assert cancelled == (shown == "Pending"), status


# --- funds -----------------------------------------------------------------------------------


def test_a_customer_who_cannot_pay_gets_nothing_written(orders, shop, ledger):
    kept = place(orders, shop, "package", link=LINK).order  # 1.30
    ledger.adjust_customer(shop.alice, D("-8.00"), "correction", "test")  # 0.70 left
    entries = entry_count(ledger)
    with pytest.raises(ledger.InsufficientFunds, match="Not enough funds on balance"):
        place(orders, shop, "package", link=LINK)
    # The caller's transaction is still usable: its earlier work commits, the refused order
    # left nothing behind.
    db.session.commit()
    assert db.session.scalars(select(orders.models.Order.id)).all() == [kept.id]
    assert entry_count(ledger) == entries
    assert wallet(ledger, shop.alice) == D("0.7")
    assert_ledger_clean(ledger)


def test_an_unaffordable_order_leaves_no_row_and_no_charge(orders, shop, ledger):
    ledger.adjust_customer(shop.bob, D("0.10"), "opening credit", "test")
    with pytest.raises(ledger.InsufficientFunds):
        place(orders, shop, customer=shop.bob)  # 0.13 > 0.10
    db.session.commit()
    assert order_count(orders) == 0
    assert (wallet(ledger, shop.bob), wallet(ledger, shop.acme)) == (D("0.10"), D("5.00"))
    assert_ledger_clean(ledger)


def test_an_order_waits_on_hold_while_the_tenants_wallet_is_short(orders, shop, ledger):
    ledger.topup_tenant(shop.acme, D("-4.95"), "correction", "test")  # 0.05 left, order is 0.10
    o = place(orders, shop).order
    assert (o.status, o.api_status) == ("on_hold", "Pending")
    assert wallet(ledger, shop.alice) == D("9.87")  # the customer is charged anyway
    assert wallet(ledger, shop.acme) == D("0.05")
    assert orders.services.orders_to_forward() == []  # not sent upstream while on hold
    assert_ledger_clean(ledger)


def test_a_top_up_resumes_on_hold_orders_oldest_first(orders, shop, ledger):
    ledger.topup_tenant(shop.acme, D("-5.00"), "correction", "test")
    held = [place(orders, shop).order for _ in range(3)]
    assert [o.status for o in held] == ["on_hold"] * 3
    assert orders.services.resume_on_hold_orders(shop.acme.id) == []  # still nothing to pay with
    ledger.topup_tenant(shop.acme, D("0.25"), "top-up", "test")
    resumed = orders.services.resume_on_hold_orders(shop.acme.id)
    assert [o.id for o in resumed] == [held[0].id, held[1].id]
    assert [o.status for o in held] == ["pending", "pending", "on_hold"]
    assert wallet(ledger, shop.acme) == D("0.05")
    assert orders.services.orders_to_forward() == [held[0].id, held[1].id]
    ledger.topup_tenant(shop.acme, D("0.05"), "top-up", "test")
    assert orders.services.resume_on_hold_orders(shop.acme.id) == [held[2]]
    assert wallet(ledger, shop.acme) == 0
    assert ledger.order_totals(held[2].id).wholesale_charged == D("0.1")
    assert_ledger_clean(ledger)


def test_the_tenant_topup_command_resumes_what_the_new_balance_pays_for(app, orders, shop, ledger):
    from app.ledger.commands import tenant_topup_command

    ledger.topup_tenant(shop.acme, D("-5.00"), "correction", "test")
    held = [place(orders, shop).order for _ in range(2)]
    db.session.commit()
    result = app.test_cli_runner().invoke(
        tenant_topup_command, ["acme", "--amount", "0.15", "--reason", "wire 0518"]
    )
    assert result.exit_code == 0, result.output
    assert "Resumed 1 on-hold order(s)." in result.output
    db.session.expire_all()
    assert [db.session.get(orders.models.Order, o.id).status for o in held] == [
        "pending",
        "on_hold",
    ]
    assert wallet(ledger, shop.acme) == D("0.05")
    assert_ledger_clean(ledger)


# --- idempotency -----------------------------------------------------------------------------


def test_the_same_ref_returns_the_same_order_charged_once(orders, shop, ledger):
    first = place(orders, shop, link=LINK, quantity="100", ref="client-42")
    db.session.commit()
    again = place(orders, shop, link=LINK, quantity="100", ref="client-42")
    assert (again.created, again.order.id) == (False, first.order.id)
    assert order_count(orders) == 1 and wallet(ledger, shop.alice) == D("9.87")
    assert orders.services.orders_to_forward() == []


def test_a_ref_is_per_customer(orders, shop, ledger):
    ledger.adjust_customer(shop.bob, D("1.00"), "opening credit", "test")
    a = place(orders, shop, link=LINK, quantity="100", ref="r1")
    b = place(orders, shop, customer=shop.bob, link=LINK, quantity="100", ref="r1")
    assert a.created and b.created and a.order.id != b.order.id


def test_the_same_form_posted_twice_makes_one_order(orders, shop, ledger):
    first = place(orders, shop, link=LINK, quantity="100", form_token="tok-1")
    again = place(orders, shop, link=LINK, quantity="100", form_token="tok-1")
    assert (again.created, again.order.id) == (False, first.order.id)
    assert place(orders, shop, link=LINK, quantity="100", form_token="tok-2").created
    assert order_count(orders) == 2 and wallet(ledger, shop.alice) == D("9.74")


def test_a_repeated_ref_is_answered_even_when_its_input_would_now_fail(orders, shop):
    first = place(orders, shop, link=LINK, quantity="100", ref="r1")
    again = place(orders, shop, link="garbage", quantity="1", ref="r1")
    assert again.order.id == first.order.id and not again.created


# --- mass orders -----------------------------------------------------------------------------


def mass(orders, shop, lines, customer=None, **options):
    customer = customer or shop.alice
    return orders.services.place_orders_mass(shop.acme.id, customer.id, lines, customer, **options)


def test_a_mass_order_places_every_line(orders, shop, ledger):
    likes, plain = shop.ids["likes"], shop.ids["plain"]
    placed = mass(orders, shop, f"{likes}|{LINK}|100\n\n{plain} | https://t.me/x?a=1|b | 50\n")
    assert [(p.order.service_id, p.order.link, p.order.quantity) for p in placed] == [
        (likes, LINK, 100),
        (plain, "https://t.me/x?a=1|b", 50),
    ]
    assert wallet(ledger, shop.alice) == D("9.805")  # 0.13 + 0.065
    assert orders.services.orders_to_forward() == [p.order.id for p in placed]


def test_a_mass_order_with_bad_lines_lists_them_all_and_places_nothing(orders, shop, ledger):
    likes, comments = shop.ids["likes"], shop.ids["comments"]
    lines = "\n".join(
        [
            f"{likes}|{LINK}|100",
            "999999|https://example.com/a|100",
            f"{likes}|not-a-link|100",
            f"{likes}|{LINK}|5",
            f"{likes}|{LINK}",
            f"{comments}|{LINK}|3",
            f"{likes}|{LINK}|105",
        ]
    )
    with pytest.raises(orders.services.MassOrderRejected) as exc:
        mass(orders, shop, lines)
    assert [(e.line, e.field, str(e.message)) for e in exc.value.errors] == [
        (2, "service", "Unknown service"),
        (3, "link", "Enter a valid link starting with http:// or https://"),
        (4, "quantity", "Quantity must be at least 10"),
        (5, "orders", "Write each order as service|link|quantity"),
        (6, "service", "This service cannot be ordered in bulk"),
        (7, "quantity", "Quantity must be a multiple of 10"),
    ]
    assert order_count(orders) == 0 and wallet(ledger, shop.alice) == D("10.00")


def test_an_empty_mass_order_is_refused(orders, shop):
    with pytest.raises(orders.validation.OrderRejected, match="Enter at least one order"):
        mass(orders, shop, "\n  \n")


def test_a_mass_order_the_customer_cannot_finish_paying_places_nothing(orders, shop, ledger):
    line = f"{shop.ids['likes']}|{LINK}|1000\n"  # 1.30 each; alice has 10.00
    with pytest.raises(ledger.InsufficientFunds):
        mass(orders, shop, line * 8)
    db.session.commit()
    assert order_count(orders) == 0 and wallet(ledger, shop.alice) == D("10.00")
    assert orders.services.orders_to_forward() == []
    assert len(mass(orders, shop, line * 7)) == 7
    assert wallet(ledger, shop.alice) == D("0.9")
    assert_ledger_clean(ledger)


def test_the_same_mass_form_posted_twice_places_once(orders, shop, ledger):
    lines = f"{shop.ids['likes']}|{LINK}|100\n{shop.ids['plain']}|{LINK}|100"
    first = mass(orders, shop, lines, form_token="mass-1")
    again = mass(orders, shop, lines, form_token="mass-1")
    assert [p.created for p in again] == [False, False]
    assert [p.order.id for p in again] == [p.order.id for p in first]
    assert wallet(ledger, shop.alice) == D("9.74")


# --- canceling unsent orders -----------------------------------------------------------------


def test_a_pending_order_is_canceled_with_a_full_refund(orders, shop, ledger):
    o = place(orders, shop).order
    canceled = orders.services.cancel_unsent_order(o.id, shop.alice.id)
    assert (canceled.status, canceled.api_status, canceled.remains) == ("canceled", "Canceled", 100)
    assert (wallet(ledger, shop.alice), wallet(ledger, shop.acme)) == (D("10.00"), D("5.00"))
    assert orders.services.orders_to_forward() == []
    assert_ledger_clean(ledger)


def test_an_on_hold_order_is_canceled_with_its_retail_refunded(orders, shop, ledger):
    ledger.topup_tenant(shop.acme, D("-5.00"), "correction", "test")
    o = place(orders, shop).order
    orders.services.cancel_unsent_order(o.id, shop.alice.id)
    assert (wallet(ledger, shop.alice), wallet(ledger, shop.acme)) == (D("10.00"), D(0))
    ledger.topup_tenant(shop.acme, D("1.00"), "top-up", "test")
    assert orders.services.resume_on_hold_orders(shop.acme.id) == []  # nothing left to resume
    assert_ledger_clean(ledger)


@pytest.mark.parametrize("status", ["submitting", "in_progress", "unknown", "completed"])
def test_an_order_claimed_for_sending_cannot_be_canceled(orders, shop, ledger, status):
    o = place(orders, shop).order
    db.session.execute(
        update(orders.models.Order).where(orders.models.Order.id == o.id).values(status=status)
    )
    with pytest.raises(orders.services.OrderNotCancelable, match="can no longer be canceled"):
        orders.services.cancel_unsent_order(o.id, shop.alice.id)
    assert wallet(ledger, shop.alice) == D("9.87")


def test_an_order_is_canceled_once(orders, shop, ledger):
    o = place(orders, shop).order
    orders.services.cancel_unsent_order(o.id, shop.alice.id)
    with pytest.raises(orders.services.OrderNotCancelable):
        orders.services.cancel_unsent_order(o.id, shop.alice.id)
    assert wallet(ledger, shop.alice) == D("10.00")


def test_a_customer_cannot_cancel_anothers_order(orders, shop):
    o = place(orders, shop).order
    with pytest.raises(NotFound):
        orders.services.cancel_unsent_order(o.id, shop.bob.id)
    assert o.status == "pending"


# --- tenants ---------------------------------------------------------------------------------


def test_a_customer_of_one_panel_cannot_order_on_another(orders, shop):
    with pytest.raises(NotFound, match="No such customer"):
        place(orders, shop, customer=shop.alice, tenant=shop.nusa)


def test_a_panel_sees_only_its_own_orders(orders, shop, ledger):
    ledger.adjust_customer(shop.budi, D("100000"), "opening credit", "test")
    mine = place(orders, shop).order
    theirs = place(orders, shop, customer=shop.budi, tenant=shop.nusa).order
    db.session.commit()
    with tenant_scope(shop.nusa.id):
        assert db.session.scalars(select(orders.models.Order.id)).all() == [theirs.id]
        with pytest.raises(NotFound):
            orders.services.cancel_unsent_order(mine.id, shop.alice.id)
        with pytest.raises(TenantScopeError):
            place(orders, shop)  # acme's order from nusa's scope
    assert db.session.get(orders.models.Order, mine.id).status == "pending"


def test_orders_are_not_read_without_a_scope(orders, shop):
    token = enter_scope(None)
    try:
        with pytest.raises(TenantScopeError):
            db.session.scalars(select(orders.models.Order)).all()
        with pytest.raises(TenantScopeError):
            place(orders, shop)
    finally:
        leave_scope(token)


def test_the_ledger_verifies_clean_after_a_mix_of_everything(orders, shop, ledger):
    ledger.topup_tenant(shop.acme, D("-4.85"), "correction", "test")  # 0.15: one wholesale
    a = place(orders, shop, ref="a").order
    b = place(orders, shop, ref="b").order
    place(orders, shop, ref="a")
    mass(orders, shop, f"{shop.ids['plain']}|{LINK}|200")
    orders.services.cancel_unsent_order(a.id, shop.alice.id)
    ledger.topup_tenant(shop.acme, D("1.00"), "top-up", "test")
    orders.services.resume_on_hold_orders(shop.acme.id)
    orders.services.cancel_unsent_order(b.id, shop.alice.id)
    db.session.commit()
    assert_ledger_clean(ledger)
    assert wallet(ledger, shop.alice) == D("9.74")  # only the mass order's 200 remains charged


# --- concurrency on PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def postgres_shop(make_app, orders):
    if not TEST_DATABASE_URL:
        service_missing("PASOK_TEST_DATABASE_URL is not set")
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 25, "max_overflow": 5})
    empty_database(app)
    return app, build_shop(app, Factories(app))


def test_concurrent_orders_never_overspend_one_wallet(postgres_shop, orders, ledger):
    """20 orders at once against a wallet that affords exactly 10."""
    app, ids = postgres_shop
    with app.app_context(), across_tenants():
        s = load(ids)
        ledger.adjust_customer(s.alice, D("1.30"), "opening credit", "test")  # 10 orders of 0.13
        ledger.topup_tenant(s.acme, D("5.00"), "opening", "test")
        wallet_id = ledger.wallet_of(s.alice).id
        db.session.commit()
    start = threading.Barrier(20)

    def order(n: int) -> str:
        with app.app_context(), tenant_scope(ids["acme"]):
            start.wait(timeout=30)
            try:
                orders.services.place_order(tenant_id=ids["acme"], customer_id=ids["alice"],
                                            service_id=ids["likes"],
                                            fields={"link": LINK, "quantity": "100"},
                                            actor="test")  # fmt: skip
                outcome = "placed"
            except ledger.InsufficientFunds:
                outcome = "refused"
            db.session.commit()  # a refused order left nothing to commit
            return outcome

    with watch_balance(app, wallet_id) as seen, ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = Counter(pool.map(order, range(20)))
    assert outcomes == {"placed": 10, "refused": 10}
    assert seen and min(seen) >= 0
    with app.app_context(), across_tenants():
        assert order_count(orders) == 10
        assert wallet(ledger, load(ids).alice) == 0
        assert_ledger_clean(ledger)


def test_the_same_ref_sent_concurrently_makes_one_order(postgres_shop, orders, ledger):
    app, ids = postgres_shop
    with app.app_context(), across_tenants():
        s = load(ids)
        ledger.adjust_customer(s.alice, D("10.00"), "opening credit", "test")
        ledger.topup_tenant(s.acme, D("5.00"), "opening", "test")
        db.session.commit()
    start = threading.Barrier(5)

    def order(n: int) -> tuple[int, bool]:
        with app.app_context(), tenant_scope(ids["acme"]):
            start.wait(timeout=30)
            placed = orders.services.place_order(tenant_id=ids["acme"], customer_id=ids["alice"],
                                                 service_id=ids["likes"],
                                                 fields={"link": LINK, "quantity": "100"},
                                                 ref="same", actor="test")  # fmt: skip
            db.session.commit()
            return placed.order.id, placed.created

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(order, range(5)))
    assert len({order_id for order_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 4 + [True]
    with app.app_context(), across_tenants():
        assert order_count(orders) == 1
        assert wallet(ledger, load(ids).alice) == D("9.87")
        assert_ledger_clean(ledger)
