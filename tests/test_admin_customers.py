"""The back office's customer pages: the list (search, pages, balances, order counts), one
customer's profile, and the balance adjustments, discounts and groups owners and admins set,
every one audited, kept in the ledger, and inside the panel."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.accounts.models import CUSTOMER, User
from app.audit.models import AuditEntry
from app.extensions import db
from app.ledger import (
    JournalEntry,
    adjust_customer,
    balance,
    topup_tenant,
    verify_ledger,
    wallet_of,
)
from app.ledger.models import ADJUSTMENT
from app.orders.services import place_order
from app.panels.models import Tenant
from app.pricing.retail import customer_discount, set_group
from app.pricing.tenant_models import CustomerPricing
from tenants.context import across_tenants, tenant_scope
from tests.conftest import sign_in
from tests.test_place_order import LINK, build_shop

D = Decimal
OWNER_EMAIL = "owner@acme.example.com"
DASH = "\N{EN DASH}"  # between the first and last number of a range


@pytest.fixture
def shop(app, make):
    """acme (USD) with alice (10.00 USD and one order), bob, an admin and a support agent;
    nusa (IDR) with budi. Every service costs 1.00 USD per 1000 wholesale."""
    ids = build_shop(app, make)
    ids["admin"] = make.staff(ids["acme"], "admin@acme.example.com", role="admin")
    ids["support"] = make.staff(ids["acme"], "support@acme.example.com", role="support")
    with app.app_context(), tenant_scope(ids["acme"]):
        adjust_customer(db.session.get(User, ids["alice"]), D("10.00"), "opening", "test")
        topup_tenant(db.session.get(Tenant, ids["acme"]), D("5.00"), "opening", "test")
        db.session.commit()
        place_order(
            tenant_id=ids["acme"],
            customer_id=ids["alice"],
            service_id=ids["plain"],
            fields={"link": LINK, "quantity": "100"},
            actor="test",
        )
        db.session.commit()
    return ids


@pytest.fixture
def staff(browser_for):
    """`staff(email)`: a browser on acme's back office, signed in as that staff member."""

    def signed_in(email: str = OWNER_EMAIL):
        browser = browser_for("acme.localhost")
        assert sign_in(browser, "/admin/login", email).status_code == 302
        return browser

    return signed_in


def text_of(response) -> str:
    """The page's text with tags dropped and spaces collapsed, for reading like a person."""
    text = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(text))


def balance_of(app, customer_id: int) -> Decimal:
    with app.app_context(), across_tenants():
        return balance(wallet_of(db.session.get(User, customer_id)))


def adjustments(app) -> int:
    with app.app_context(), across_tenants():
        return db.session.scalar(
            select(func.count(JournalEntry.id)).where(JournalEntry.kind == ADJUSTMENT)
        )


def assert_ledger_clean(app) -> None:
    with app.app_context(), across_tenants():
        report = verify_ledger()
        assert report.ok, report


def adjust(browser, customer_id: int, **fields):
    data = {"adjust-direction": "credit", "adjust-amount": "", "adjust-reason": ""}
    data.update({f"adjust-{key}": value for key, value in fields.items()})
    return browser.post(f"/admin/customers/{customer_id}/adjust", data=data)


# --- the list --------------------------------------------------------------------------------


def test_the_list_shows_each_customers_balance_and_order_count(shop, staff):
    page = text_of(staff().get("/admin/customers"))
    assert "alice@example.com 9.87000 USD 1" in page  # 10.00 less one order of 0.13
    assert "bob@example.com 0.00000 USD 0" in page
    assert "budi@example.com" not in page


def test_the_list_finds_customers_by_email_or_name(shop, staff, app):
    with app.app_context(), across_tenants():
        db.session.get(User, shop["bob"]).name = "Bob Santoso"
        db.session.commit()
    browser = staff()
    by_email = text_of(browser.get("/admin/customers?q=ALICE@"))
    assert "alice@example.com" in by_email and "bob@example.com" not in by_email
    by_name = text_of(browser.get("/admin/customers?q=santoso"))
    assert "bob@example.com" in by_name and "alice@example.com" not in by_name
    nobody = text_of(browser.get("/admin/customers?q=budi"))
    assert "No customer matches" in nobody


def test_the_list_is_paginated_newest_first(shop, staff, app):
    with app.app_context(), tenant_scope(shop["acme"]):
        db.session.add_all(
            User(
                tenant_id=shop["acme"],
                kind=CUSTOMER,
                email=f"c{n:02}@example.com",
                password_hash="-",
            )
            for n in range(55)
        )
        db.session.commit()
    browser = staff()
    first = text_of(browser.get("/admin/customers"))
    assert f"1{DASH}50 of 57 customers" in first
    assert "c54@example.com" in first and "c05@example.com" in first
    assert "c04@example.com" not in first
    second = text_of(browser.get("/admin/customers?page=2"))
    assert f"51{DASH}57 of 57 customers" in second
    assert "c04@example.com" in second and "alice@example.com" in second
    assert "c05@example.com" not in second


def test_support_staff_may_look_at_customers(shop, staff):
    browser = staff("support@acme.example.com")
    assert "alice@example.com" in text_of(browser.get("/admin/customers"))
    page = text_of(browser.get(f"/admin/customers/{shop['alice']}"))
    assert "9.87000 USD" in page
    assert "Only owners and admins can adjust balances." in page


# --- one customer ----------------------------------------------------------------------------


def test_the_profile_shows_balance_wallet_movements_and_orders(shop, staff):
    page = text_of(staff().get(f"/admin/customers/{shop['alice']}"))
    assert "Balance 9.87000 USD" in page
    assert "Adjustment by staff" in page and "opening" in page and "+10.00000 USD" in page
    assert "Order #1 -0.13000 USD" in page
    assert "#1" in page and "plain" in page and LINK in page


def test_a_customer_of_another_panel_is_not_found(shop, staff, app):
    browser = staff()
    budi = shop["budi"]
    assert browser.get(f"/admin/customers/{budi}").status_code == 404
    assert adjust(browser, budi, amount="5", reason="x").status_code == 404
    pricing = {"pricing-discount_percent": "10"}
    assert browser.post(f"/admin/customers/{budi}/pricing", data=pricing).status_code == 404
    assert balance_of(app, budi) == 0
    with app.app_context(), across_tenants():
        assert db.session.scalar(select(func.count(CustomerPricing.id))) == 0


def test_a_staff_id_is_not_a_customer(shop, staff):
    assert staff().get(f"/admin/customers/{shop['admin']}").status_code == 404
    assert staff().get("/admin/customers/99999999999").status_code == 404


# --- balance adjustments ---------------------------------------------------------------------


def test_an_owner_credits_a_balance_and_it_is_audited(shop, staff, app):
    response = adjust(staff(), shop["alice"], amount="5.50", reason="Bank transfer 123")
    assert response.status_code == 302
    assert balance_of(app, shop["alice"]) == D("15.37")
    with app.app_context(), across_tenants():
        audit = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "ledger.adjust_customer")
        ).all()[-1]
        assert (audit.actor_label, audit.target, audit.tenant_id) == (
            OWNER_EMAIL, f"user:{shop['alice']}", shop["acme"],
        )  # fmt: skip
        assert audit.details["amount"] == "5.50000"
        assert audit.details["reason"] == "Bank transfer 123"
    assert_ledger_clean(app)


def test_the_flash_says_what_was_adjusted(shop, staff):
    browser = staff()
    response = adjust(browser, shop["alice"], amount="2", reason="goodwill")
    page = text_of(browser.get(response.headers["Location"]))
    assert "Credited 2.00000 USD to alice@example.com. The balance is now 11.87000 USD." in page


def test_an_admin_debits_a_balance(shop, staff, app):
    browser = staff("admin@acme.example.com")
    response = adjust(browser, shop["alice"], direction="debit", amount="3", reason="refund fix")
    assert response.status_code == 302
    assert balance_of(app, shop["alice"]) == D("6.87")
    assert "Debited 3.00000 USD from alice@example.com" in text_of(
        browser.get(response.headers["Location"])
    )
    assert_ledger_clean(app)


def test_a_debit_beyond_the_balance_is_a_form_error(shop, staff, app):
    before = adjustments(app)
    response = adjust(staff(), shop["alice"], direction="debit", amount="20", reason="oops")
    assert response.status_code == 200
    assert "The balance is 9.87000 USD: a debit cannot take it below zero." in text_of(response)
    assert balance_of(app, shop["alice"]) == D("9.87")
    assert adjustments(app) == before
    assert_ledger_clean(app)


def test_an_adjustment_needs_a_reason(shop, staff, app):
    before = adjustments(app)
    response = adjust(staff(), shop["alice"], amount="5", reason="   ")
    assert response.status_code == 200
    assert "This field is required." in text_of(response)
    assert adjustments(app) == before


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "'abc' is not a number: use digits and one '.' (e.g. 25.50)"),
        ("1,000", "Write numbers without thousands separators"),
        ("-5", "A negative number is not allowed here"),
        ("0", "The amount must not be zero"),
        ("1.1234567", "USD amounts have at most 5 decimal places"),
        ("", "This field is required."),
    ],
)
def test_a_bad_amount_is_a_form_error(shop, staff, app, amount, message):
    before = adjustments(app)
    response = adjust(staff(), shop["alice"], amount=amount, reason="test")
    assert response.status_code == 200
    assert message in text_of(response)
    assert adjustments(app) == before
    assert balance_of(app, shop["alice"]) == D("9.87")


def test_an_unknown_direction_is_a_form_error(shop, staff, app):
    response = adjust(staff(), shop["alice"], direction="gift", amount="5", reason="test")
    assert "Choose credit or debit." in text_of(response)
    assert balance_of(app, shop["alice"]) == D("9.87")


def test_the_same_form_sent_twice_moves_the_money_once(shop, staff, app):
    browser = staff()
    form = browser.get(f"/admin/customers/{shop['alice']}").get_data(as_text=True)
    token = re.search(r'name="adjust-token"[^>]*value="([0-9a-f]{32})"', form)[1]
    for _ in range(2):
        response = adjust(browser, shop["alice"], amount="1", reason="once", token=token)
        assert response.status_code == 302
    assert balance_of(app, shop["alice"]) == D("10.87")
    with app.app_context(), across_tenants():
        audited = db.session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "ledger.adjust_customer")
        ).all()
    assert [d["reason"] for d in audited] == ["opening", "once"]
    assert_ledger_clean(app)


def test_support_staff_cannot_adjust_balances(shop, staff, app):
    response = adjust(staff("support@acme.example.com"), shop["alice"], amount="5", reason="x")
    assert response.status_code == 403
    assert balance_of(app, shop["alice"]) == D("9.87")


# --- discounts and groups --------------------------------------------------------------------


def discount_of(app, shop) -> tuple:
    with app.app_context(), tenant_scope(shop["acme"]):
        return customer_discount(shop["acme"], shop["alice"])


def set_pricing(browser, customer_id: int, **fields):
    data = {f"pricing-{key}": value for key, value in fields.items()}
    return browser.post(f"/admin/customers/{customer_id}/pricing", data=data)


def test_a_personal_discount_is_set_and_cleared(shop, staff, app):
    browser = staff()
    assert set_pricing(browser, shop["alice"], discount_percent="12.5").status_code == 302
    assert discount_of(app, shop) == (D("12.5"), "personal")
    page = text_of(browser.get(f"/admin/customers/{shop['alice']}"))
    assert "Discount 12.5% personal" in page
    assert set_pricing(browser, shop["alice"], discount_percent="").status_code == 302
    assert discount_of(app, shop) == (D(0), None)
    with app.app_context(), across_tenants():
        actions = db.session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "retail.customer")
        ).all()
    assert actions == [
        {"group_id": None, "discount_percent": "12.5"},
        {"cleared": True},
    ]


@pytest.mark.parametrize(
    ("discount", "message"),
    [
        ("150", "A discount must be between 0 and 100 percent"),
        ("ten", "'ten' is not a number"),
        ("-5", "A negative number is not allowed here"),
        ("10.125", "Use at most 2 decimal places."),
    ],
)
def test_a_bad_discount_is_a_form_error(shop, staff, app, discount, message):
    response = set_pricing(staff(), shop["alice"], discount_percent=discount)
    assert response.status_code == 200
    assert message in text_of(response)
    assert discount_of(app, shop) == (D(0), None)


def test_the_group_choice_appears_once_groups_exist(shop, staff, app):
    browser = staff()
    assert 'name="pricing-group_id"' not in browser.get(
        f"/admin/customers/{shop['alice']}"
    ).get_data(as_text=True)
    with app.app_context(), tenant_scope(shop["acme"]):
        group = set_group(shop["acme"], actor="test", name="Resellers", discount_percent=D(10))
        db.session.commit()
        group_id = group.id
    page = browser.get(f"/admin/customers/{shop['alice']}").get_data(as_text=True)
    assert 'name="pricing-group_id"' in page and "Resellers (-10%)" in page
    assert set_pricing(browser, shop["alice"], group_id=str(group_id)).status_code == 302
    assert discount_of(app, shop) == (D(10), "group")


def test_another_panels_group_cannot_be_chosen(shop, staff, app):
    with app.app_context(), tenant_scope(shop["nusa"]):
        theirs = set_group(shop["nusa"], actor="test", name="VIP", discount_percent=D(50))
        db.session.commit()
        theirs_id = theirs.id
    with app.app_context(), tenant_scope(shop["acme"]):
        set_group(shop["acme"], actor="test", name="Resellers", discount_percent=D(10))
        db.session.commit()
    response = set_pricing(staff(), shop["alice"], group_id=str(theirs_id))
    assert response.status_code == 200
    assert "Choose a group from the list." in text_of(response)
    assert discount_of(app, shop) == (D(0), None)


def test_support_staff_cannot_change_discounts(shop, staff, app):
    response = set_pricing(staff("support@acme.example.com"), shop["alice"], discount_percent="5")
    assert response.status_code == 403
    assert discount_of(app, shop) == (D(0), None)
