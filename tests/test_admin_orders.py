"""The back office's order pages (search, filters, pages, one order's price snapshot, cancel and
refund), the overview's figures, and the on-hold alert: on every back-office page while orders
wait, and by email to the owners at most once an hour."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.extensions import db, get_redis
from app.ledger import adjust_customer, balance, topup_tenant, verify_ledger, wallet_of
from app.orders import alerts
from app.orders.models import CANCELED, IN_PROGRESS, ON_HOLD, PENDING, Order
from app.orders.services import place_order, resume_on_hold_orders
from app.panels.models import Tenant
from tenants.context import across_tenants, tenant_scope
from tests.conftest import sign_in
from tests.test_place_order import LINK, build_shop

D = Decimal
OWNER_EMAIL = "owner@acme.example.com"
DASH = "\N{EN DASH}"  # between the first and last number of a range


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, str, str]]:
    """Every email the on-hold alert sends: (to, subject, body)."""
    mails: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        alerts, "send_mail", lambda to, subject, body: mails.append((to, subject, body))
    )
    return mails


@pytest.fixture
def shop(app, make, sent):
    """acme (USD): alice with 10.00 USD, bob with 10.00 USD, a wholesale wallet of 0.25 USD
    (two orders of 100 at 0.10 wholesale each), an admin and a support agent. nusa (IDR): budi
    with 100000 IDR and an empty wholesale wallet. Retail at acme is 0.13 USD per 100."""
    ids = build_shop(app, make)
    ids["admin"] = make.staff(ids["acme"], "admin@acme.example.com", role="admin")
    ids["support"] = make.staff(ids["acme"], "support@acme.example.com", role="support")
    with app.app_context(), across_tenants():
        for name, amount in (("alice", "10.00"), ("bob", "10.00"), ("budi", "100000")):
            adjust_customer(db.session.get(User, ids[name]), D(amount), "opening", "test")
        topup_tenant(db.session.get(Tenant, ids["acme"]), D("0.25"), "opening", "test")
        db.session.commit()
    return ids


def place(app, shop, customer="alice", tenant="acme", service="plain", quantity="100", link=LINK):
    with app.app_context(), tenant_scope(shop[tenant]):
        placed = place_order(
            tenant_id=shop[tenant],
            customer_id=shop[customer],
            service_id=shop[service],
            fields={"link": link, "quantity": quantity},
            actor="test",
        )
        db.session.commit()
        return placed.order.id


def status_of(app, order_id: int) -> str:
    with app.app_context(), across_tenants():
        return db.session.get(Order, order_id).status


def balance_of(app, customer_id: int) -> Decimal:
    with app.app_context(), across_tenants():
        return balance(wallet_of(db.session.get(User, customer_id)))


def assert_ledger_clean(app) -> None:
    with app.app_context(), across_tenants():
        report = verify_ledger()
        assert report.ok, report


@pytest.fixture
def staff(browser_for):
    def signed_in(email: str = OWNER_EMAIL, host: str = "acme.localhost"):
        browser = browser_for(host)
        assert sign_in(browser, "/admin/login", email).status_code == 302
        return browser

    return signed_in


def text_of(response) -> str:
    """The page's text with tags dropped and spaces collapsed, for reading like a person."""
    text = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(text))


def listed(response) -> list[int]:
    """The order ids on a list page, in their order."""
    return [
        int(n) for n in re.findall(r'href="/admin/orders/(\d+)"', response.get_data(as_text=True))
    ]


# --- the list --------------------------------------------------------------------------------


def test_the_list_shows_the_panels_orders_newest_first(shop, staff, app):
    first = place(app, shop)
    second = place(app, shop, customer="bob", service="likes", quantity="200")
    theirs = place(app, shop, customer="budi", tenant="nusa")
    response = staff().get("/admin/orders")
    assert listed(response) == [second, first]
    assert theirs not in listed(response)
    page = text_of(response)
    assert f"#{second}" in page and "bob@example.com likes" in page and "200 0.26000 USD" in page
    assert "alice@example.com plain" in page and "100 0.13000 USD" in page


def test_orders_are_found_by_number_link_or_customer_email(shop, staff, app):
    first = place(app, shop)
    second = place(app, shop, customer="bob", link="https://tiktok.com/@someone")
    browser = staff()
    assert listed(browser.get(f"/admin/orders?q=%23{first}")) == [first]
    assert second in listed(browser.get(f"/admin/orders?q={second}"))  # or a link with it
    assert listed(browser.get("/admin/orders?q=TIKTOK.com")) == [second]
    assert listed(browser.get("/admin/orders?q=alice@")) == [first]
    assert listed(browser.get("/admin/orders?q=budi@example.com")) == []
    assert listed(browser.get("/admin/orders?q=%25")) == []  # a LIKE wildcard is plain text


def test_orders_are_filtered_by_status_including_internal_ones(shop, staff, app):
    sent_first = place(app, shop)
    pending = place(app, shop)
    held = place(app, shop)  # the wallet paid for two
    with app.app_context(), across_tenants():
        db.session.execute(update(Order).where(Order.id == sent_first).values(status="unknown"))
        db.session.commit()
    browser = staff()
    assert listed(browser.get("/admin/orders?status=on_hold")) == [held]
    assert listed(browser.get("/admin/orders?status=pending")) == [pending]
    assert listed(browser.get("/admin/orders?status=unknown")) == [sent_first]
    assert listed(browser.get("/admin/orders?status=failed")) == []
    assert listed(browser.get("/admin/orders?status=bogus")) == [held, pending, sent_first]
    counts = text_of(browser.get("/admin/orders"))
    assert "Pending 1" in counts and "On hold 1" in counts and "Unknown 1" in counts


def test_orders_are_filtered_by_service_and_customer(shop, staff, app):
    plain = place(app, shop)
    likes = place(app, shop, customer="bob", service="likes")
    browser = staff()
    assert listed(browser.get(f"/admin/orders?service={shop['likes']}")) == [likes]
    assert listed(browser.get(f"/admin/orders?service={shop['plain']}")) == [plain]
    response = browser.get(f"/admin/orders?customer={shop['bob']}")
    assert listed(response) == [likes]
    assert "Orders of bob@example.com." in text_of(response)
    # Another panel's customer id filters to nothing and names no one.
    response = browser.get(f"/admin/orders?customer={shop['budi']}")
    assert listed(response) == [] and "budi" not in text_of(response)


def test_orders_are_filtered_by_date_in_the_panels_timezone(shop, staff, app):
    old, recent = place(app, shop), place(app, shop)
    with app.app_context(), across_tenants():
        db.session.get(Tenant, shop["acme"]).timezone = "Asia/Jakarta"
        # 2026-03-01 23:30 in Jakarta (UTC+7) is 16:30 UTC the same day.
        at = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
        db.session.execute(update(Order).where(Order.id == old).values(created_at=at))
        db.session.commit()
    app.extensions["pasok_resolver"].invalidate()
    browser = staff()
    assert listed(browser.get("/admin/orders?from=2026-03-01&to=2026-03-01")) == [old]
    assert listed(browser.get("/admin/orders?from=2026-03-02")) == [recent]
    assert listed(browser.get("/admin/orders?to=2026-02-28")) == []
    response = browser.get("/admin/orders?from=yesterday")
    assert listed(response) == [recent, old]
    assert "Enter dates as YYYY-MM-DD" in text_of(response)


def test_the_list_is_paginated(shop, staff, app):
    with app.app_context(), across_tenants():
        topup_tenant(db.session.get(Tenant, shop["acme"]), D("10"), "more", "test")
        db.session.commit()
    ids = [place(app, shop, service="plain", quantity="10") for _ in range(53)]
    browser = staff()
    first = browser.get("/admin/orders")
    assert listed(first) == ids[::-1][:50]
    assert f"1{DASH}50 of 53 orders" in text_of(first)
    second = browser.get("/admin/orders?page=2&status=pending")
    assert listed(second) == ids[::-1][50:]
    assert f"51{DASH}53 of 53 orders" in text_of(second)
    assert listed(browser.get("/admin/orders?page=99")) == ids[::-1][50:]


def test_support_staff_see_orders(shop, staff, app):
    order_id = place(app, shop)
    browser = staff("support@acme.example.com")
    assert listed(browser.get("/admin/orders")) == [order_id]
    page = browser.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert "Cancel and refund" not in page


# --- one order -------------------------------------------------------------------------------


def test_an_order_shows_its_price_snapshot_and_margin(shop, staff, app):
    order_id = place(app, shop)
    page = text_of(staff().get(f"/admin/orders/{order_id}"))
    assert "Customer charge 0.13000 USD" in page
    assert "Wholesale charge 0.10000 USD" in page
    assert "Your margin 0.03000 USD (23.1%)" in page
    assert "Customer's rate per 1000 1.30 USD" in page
    assert "The customer sees: Pending" in page
    assert "alice@example.com" in page and LINK in page


def test_an_order_in_another_currency_shows_the_wholesale_converted(shop, staff, app):
    with app.app_context(), across_tenants():
        topup_tenant(db.session.get(Tenant, shop["nusa"]), D("1"), "opening", "test")
        db.session.commit()
    order_id = place(app, shop, customer="budi", tenant="nusa")
    browser = staff("owner@nusa.example.com", host="nusa.localhost")
    browser.post("/admin/language", data={"locale": "en"})
    page = text_of(browser.get(f"/admin/orders/{order_id}"))
    assert "Customer charge 2080.00 IDR" in page
    assert "Wholesale charge 0.10000 USD = 1600.00 IDR at 1 USD = 16000 IDR" in page
    assert "Your margin 480.00 IDR (23.1%)" in page


def test_an_order_of_another_panel_is_not_found(shop, staff, app):
    theirs = place(app, shop, customer="budi", tenant="nusa")
    browser = staff()
    assert browser.get(f"/admin/orders/{theirs}").status_code == 404
    assert browser.post(f"/admin/orders/{theirs}/cancel").status_code == 404
    assert status_of(app, theirs) == ON_HOLD
    assert browser.get("/admin/orders/0").status_code == 404
    assert browser.get("/admin/orders/99999999999").status_code == 404


def test_an_owner_cancels_an_on_hold_order_and_refunds_it(shop, staff, app):
    place(app, shop), place(app, shop)
    held = place(app, shop)
    assert status_of(app, held) == ON_HOLD
    browser = staff()
    response = browser.post(f"/admin/orders/{held}/cancel")
    assert response.status_code == 302
    assert status_of(app, held) == CANCELED
    assert balance_of(app, shop["alice"]) == D("9.74")  # the two sent orders stay charged
    page = text_of(browser.get(response.headers["Location"]))
    assert f"Order #{held} is canceled and 0.13000 USD is back on the customer's balance." in page
    assert "Refunded to the customer 0.13000 USD" in page
    assert "Canceled and refunded" in page and OWNER_EMAIL in page
    with app.app_context(), across_tenants():
        audit = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "order.cancel")
        ).one()
        assert (audit.actor_label, audit.target) == (OWNER_EMAIL, f"order:{held}")
    assert_ledger_clean(app)


def test_an_admin_cancels_a_pending_order(shop, staff, app):
    order_id = place(app, shop)
    assert status_of(app, order_id) == PENDING
    response = staff("admin@acme.example.com").post(f"/admin/orders/{order_id}/cancel")
    assert response.status_code == 302
    assert status_of(app, order_id) == CANCELED
    assert balance_of(app, shop["alice"]) == D("10.00")
    assert_ledger_clean(app)


def test_an_order_already_sent_cannot_be_canceled(shop, staff, app):
    order_id = place(app, shop)
    with app.app_context(), across_tenants():
        db.session.execute(update(Order).where(Order.id == order_id).values(status=IN_PROGRESS))
        db.session.commit()
    browser = staff()
    assert "Cancel and refund" not in browser.get(f"/admin/orders/{order_id}").get_data(
        as_text=True
    )
    response = browser.post(f"/admin/orders/{order_id}/cancel")
    assert response.status_code == 302
    page = text_of(browser.get(response.headers["Location"]))
    assert "has already been sent to the provider and can no longer be canceled" in page
    assert status_of(app, order_id) == IN_PROGRESS
    assert balance_of(app, shop["alice"]) == D("9.87")
    assert_ledger_clean(app)


def test_support_staff_cannot_cancel_orders(shop, staff, app):
    order_id = place(app, shop)
    response = staff("support@acme.example.com").post(f"/admin/orders/{order_id}/cancel")
    assert response.status_code == 403
    assert status_of(app, order_id) == PENDING


# --- the overview and the on-hold alert ------------------------------------------------------


def test_the_overview_shows_todays_figures_and_the_wholesale_wallet(shop, staff, app):
    place(app, shop), place(app, shop, customer="bob"), place(app, shop)
    yesterday = place(app, shop)
    with app.app_context(), across_tenants():
        at = datetime.now(UTC) - timedelta(days=2)
        db.session.execute(update(Order).where(Order.id == yesterday).values(created_at=at))
        db.session.commit()
    page = text_of(staff().get("/admin/"))
    assert "Customers 2" in page
    assert "Orders today 3" in page
    assert "Orders on hold 2" in page
    assert "Wholesale wallet 0.05000 USD" in page


def test_no_on_hold_alert_while_nothing_waits(shop, staff, app):
    place(app, shop)
    browser = staff()
    for path in ("/admin/", "/admin/orders", "/admin/customers", "/admin/account"):
        page = browser.get(path).get_data(as_text=True)
        assert "hold-notice" not in page and "alert--hold" not in page
        assert "Top up" not in page


def test_the_on_hold_alert_says_how_many_wait_and_what_to_top_up(shop, staff, app):
    place(app, shop), place(app, shop)  # the wallet's 0.25 pays for two: 0.05 left
    place(app, shop), place(app, shop, customer="bob")
    page = text_of(staff().get("/admin/"))
    assert "2 orders are on hold" in page
    assert "Wholesale needed 0.20000 USD" in page
    assert "Wholesale wallet 0.05000 USD" in page
    assert "Top up at least 0.15000 USD" in page
    assert "They resume automatically" in page


def test_every_back_office_page_shows_the_on_hold_notice(shop, staff, app):
    place(app, shop), place(app, shop), place(app, shop)
    browser = staff("support@acme.example.com")
    for path in ("/admin/customers", "/admin/account", f"/admin/customers/{shop['bob']}"):
        page = text_of(browser.get(path))
        assert "1 order on hold" in page
        assert "Top up 0.05000 USD to your wholesale wallet; they resume automatically." in page


def test_the_alert_goes_once_the_orders_resume(shop, staff, app):
    place(app, shop), place(app, shop), place(app, shop)
    browser = staff()
    assert "1 order is on hold" in text_of(browser.get("/admin/"))
    with app.app_context(), tenant_scope(shop["acme"]):
        topup_tenant(db.session.get(Tenant, shop["acme"]), D("1"), "top-up", "test")
        resume_on_hold_orders(shop["acme"])
        db.session.commit()
    page = text_of(browser.get("/admin/"))
    assert "is on hold" not in page and "Orders on hold 0" in page


# --- the on-hold email -----------------------------------------------------------------------


def test_owners_are_emailed_when_an_order_goes_on_hold(shop, app, make, sent):
    make.staff(shop["acme"], "boss@acme.example.com", role="owner")
    place(app, shop), place(app, shop)
    assert sent == []
    place(app, shop)
    assert sorted(to for to, _subject, _body in sent) == ["boss@acme.example.com", OWNER_EMAIL]
    _to, subject, body = sent[0]
    assert subject == "Acme Panel: 1 order is waiting for your wholesale wallet"
    assert "Wholesale needed: 0.10000 USD" in body
    assert "Wholesale wallet balance: 0.05000 USD" in body
    assert "Top up at least: 0.05000 USD" in body
    assert "resume automatically" in body
    assert "http://acme.localhost/admin/orders?status=on_hold" in body


def test_the_on_hold_email_goes_at_most_once_an_hour_per_panel(shop, app, sent):
    place(app, shop), place(app, shop)
    place(app, shop), place(app, shop), place(app, shop, customer="bob")
    assert len(sent) == 1
    with app.app_context():
        ttl = get_redis().ttl(alerts.throttle_key(shop["acme"]))
        assert 0 < ttl <= 3600
        # An hour later the throttle has expired: the next order on hold emails again.
        get_redis().delete(alerts.throttle_key(shop["acme"]))
    place(app, shop)
    assert len(sent) == 2
    assert "4 orders are waiting" in sent[1][1]


def test_each_panel_has_its_own_throttle(shop, app, make, sent):
    make.staff(shop["nusa"], "pemilik@nusa.example.com", role="owner")
    place(app, shop), place(app, shop), place(app, shop)
    place(app, shop, customer="budi", tenant="nusa")
    assert {to for to, _subject, _body in sent} == {
        OWNER_EMAIL, "owner@nusa.example.com", "pemilik@nusa.example.com",
    }  # fmt: skip


def test_admins_and_support_get_no_on_hold_email(shop, app, sent):
    place(app, shop), place(app, shop), place(app, shop)
    assert [to for to, _subject, _body in sent] == [OWNER_EMAIL]


def test_no_email_when_the_transaction_rolls_back(shop, app, sent):
    place(app, shop), place(app, shop)
    with app.app_context(), tenant_scope(shop["acme"]):
        place_order(
            tenant_id=shop["acme"],
            customer_id=shop["alice"],
            service_id=shop["plain"],
            fields={"link": LINK, "quantity": "100"},
            actor="test",
        )
        db.session.rollback()
    assert sent == []
    with app.app_context():
        assert get_redis().get(alerts.throttle_key(shop["acme"])) is None


def test_a_mail_failure_never_fails_the_order(shop, app, monkeypatch):
    def broken(to, subject, body):
        raise OSError("SMTP is down")

    monkeypatch.setattr(alerts, "send_mail", broken)
    place(app, shop), place(app, shop)
    held = place(app, shop)
    assert status_of(app, held) == ON_HOLD
    with app.app_context():
        # Nobody was told, so the next order on hold tries again.
        assert get_redis().get(alerts.throttle_key(shop["acme"])) is None


def test_the_email_goes_through_the_configured_mail_backend(shop, app, monkeypatch, tmp_path):
    from app import mail

    monkeypatch.setattr(alerts, "send_mail", mail.send_mail)
    app.config["PASOK_MAIL_DIR"] = str(tmp_path)
    place(app, shop), place(app, shop), place(app, shop)
    messages = [path.read_text() for path in tmp_path.glob("*.eml")]
    assert len(messages) == 1
    assert f"To: {OWNER_EMAIL}" in messages[0]
    assert "1 order is waiting for your wholesale wallet" in messages[0]
