"""The console's payments pages: the platform's own gateways for panels' wholesale top-ups
(secrets encrypted, shown masked, blank keeps them, bad input is a field error), every panel's
wholesale top-ups but never a customer's, the platform's webhook events, and that none of it
exists on a panel's host."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from sqlalchemy import Text, select, type_coerce

from app.extensions import db
from app.payments.models import (
    EXPIRED,
    PAID,
    PENDING,
    STRIPE,
    GatewayAccount,
    GatewayEvent,
    Topup,
)
from app.payments.settings import masked
from tenants.context import across_tenants
from tests.conftest import sign_in

D = Decimal
OPERATOR = "op@example.com"
STRIPE_KEY = "sk_test_platform9876"
SIGNING_SECRET = "whsec_platform5432"


@pytest.fixture
def panels(app, make):
    """acme with alice, and nusa with budi; each panel's owner is its staff."""
    ids = {"acme": make.tenant("acme"), "nusa": make.tenant("nusa")}
    ids["alice"] = make.customer(ids["acme"], "alice@example.com")
    ids["budi"] = make.customer(ids["nusa"], "budi@example.com")
    return ids


@pytest.fixture
def console(make, browser_for):
    """A browser on the root domain, signed in as an operator."""
    make.operator(OPERATOR)
    root = browser_for("localhost")
    assert sign_in(root, "/console/login", OPERATOR).status_code == 302
    return root


def stripe_form(**fields) -> dict:
    data = {
        "secret_key": STRIPE_KEY,
        "webhook_secret": SIGNING_SECRET,
        "api_base": "",
        "enabled": "y",
        "min_amount": "5",
        "max_amount": "900",
    }
    data.update(fields)
    return {f"stripe-{k}": v for k, v in data.items() if v is not None}


def platform_account(app, gateway: str = STRIPE) -> GatewayAccount | None:
    with app.app_context(), across_tenants():
        account = db.session.scalar(
            select(GatewayAccount).where(
                GatewayAccount.owner == "platform", GatewayAccount.gateway == gateway
            )
        )
        if account is not None:
            db.session.expunge(account)
        return account


def raw_platform_secret(app) -> str:
    """The platform's Stripe secret column as stored, without decrypting it."""
    with app.app_context(), across_tenants():
        return db.session.scalar(
            select(type_coerce(GatewayAccount.secret_key, Text)).where(
                GatewayAccount.owner == "platform", GatewayAccount.gateway == STRIPE
            )
        )


def add_topup(app, tenant_id: int, external_id: str, *, state=PAID, customer_id=None, **more):
    with app.app_context(), across_tenants():
        topup = Topup(
            tenant_id=tenant_id,
            customer_id=customer_id,
            gateway=STRIPE,
            amount=more.pop("amount", D("25.50")),
            currency="USD",
            state=state,
            external_id=external_id,
            **more,
        )
        db.session.add(topup)
        db.session.commit()
        return topup.id


def text_of(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(text))


def test_platform_stripe_settings_are_stored_encrypted_and_shown_masked(app, console):
    response = console.post("/console/payments/stripe", data=stripe_form())
    assert response.status_code == 302
    account = platform_account(app)
    assert account.tenant_id is None and account.owner == "platform"
    assert account.secret_key == STRIPE_KEY and account.webhook_secret == SIGNING_SECRET
    assert (account.min_amount, account.max_amount, account.enabled) == (D(5), D(900), True)
    stored = raw_platform_secret(app)
    assert stored and STRIPE_KEY not in stored
    page = console.get("/console/payments").get_data(as_text=True)
    assert "Saved" in page
    assert masked(STRIPE_KEY) in page and masked(SIGNING_SECRET) in page
    assert STRIPE_KEY not in page and SIGNING_SECRET not in page
    assert "http://localhost/webhooks/stripe" in page
    assert "checkout.session.completed" in page and "charge.dispute.closed" in page


def test_a_blank_secret_keeps_the_stored_one(app, console):
    console.post("/console/payments/stripe", data=stripe_form())
    response = console.post(
        "/console/payments/stripe",
        data=stripe_form(secret_key="", webhook_secret="", enabled=None, min_amount=""),
    )
    assert response.status_code == 302
    account = platform_account(app)
    assert account.secret_key == STRIPE_KEY and account.webhook_secret == SIGNING_SECRET
    assert account.enabled is False and account.min_amount is None


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"secret_key": "pk_test_12345678"}, "stripe-secret_key", "starts with sk_"),
        ({"min_amount": "1000", "max_amount": "900"}, "stripe-min_amount", "more than the"),
        ({"api_base": "ftp://sim.example"}, "stripe-api_base", "http(s) URL"),
        ({"max_amount": "lots"}, "stripe-max_amount", ""),
    ],
)
def test_bad_input_is_a_field_error_and_saves_nothing(app, console, fields, field, message):
    response = console.post("/console/payments/stripe", data=stripe_form(**fields))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    error = re.search(
        rf'<div class="field field--error">\s*<label for="{field}">.*?field__error[^>]*>([^<]+)<',
        page,
        re.S,
    )
    assert error and message in html.unescape(error.group(1))
    assert platform_account(app) is None
    assert STRIPE_KEY not in page


def test_midtrans_is_flagged_when_the_platform_currency_is_not_rupiah(app, console):
    page = text_of(console.get("/console/payments"))
    assert "The platform's currency is USD, so Midtrans cannot be offered to panels." in page


def test_an_unknown_gateway_does_not_exist(console):
    assert console.post("/console/payments/manual", data={}).status_code == 404


def test_signed_out_visitors_are_sent_to_the_console_login(app, browser_for):
    for path in ("/console/payments", "/console/topups"):
        response = browser_for("localhost").get(path)
        assert response.status_code == 302 and "/console/login" in response.location


@pytest.mark.parametrize("path", ["/console/payments", "/console/topups"])
def test_panels_staff_and_customers_cannot_reach_the_pages(panels, browser_for, path):
    staff = browser_for("acme.localhost")
    assert sign_in(staff, "/admin/login", "owner@acme.example.com").status_code == 302
    customer = browser_for("acme.localhost")
    assert sign_in(customer, "/login", "alice@example.com").status_code == 302
    assert staff.get(path).status_code == 404
    assert customer.get(path).status_code == 404
    assert staff.post("/console/payments/stripe", data=stripe_form()).status_code == 404


def test_the_list_shows_every_panels_wholesale_top_ups_and_no_customers(app, panels, console):
    add_topup(app, panels["acme"], "cs_acme_wholesale", note="first top-up")
    add_topup(app, panels["nusa"], "cs_nusa_wholesale", state=PENDING, amount=D("40"))
    add_topup(app, panels["acme"], "cs_alice_retail", customer_id=panels["alice"])
    page = text_of(console.get("/console/topups"))
    assert "cs_acme_wholesale" in page and "cs_nusa_wholesale" in page
    assert "Acme Panel acme" in page and "Nusa Panel nusa" in page
    assert "25.50" in page and "USD" in page and "first top-up" in page
    assert "cs_alice_retail" not in page
    assert page.index("cs_nusa_wholesale") < page.index("cs_acme_wholesale")  # newest first


def test_the_state_filter_shows_only_that_state(app, panels, console):
    add_topup(app, panels["acme"], "cs_paid_one")
    add_topup(app, panels["nusa"], "cs_expired_one", state=EXPIRED)
    page = text_of(console.get("/console/topups?state=expired"))
    assert "cs_expired_one" in page and "cs_paid_one" not in page


def test_the_panel_filter_shows_only_that_panel(app, panels, console):
    add_topup(app, panels["acme"], "cs_from_acme")
    add_topup(app, panels["nusa"], "cs_from_nusa")
    page = text_of(console.get("/console/topups?panel=nusa"))
    assert "cs_from_nusa" in page and "cs_from_acme" not in page


def test_platform_gateway_events_are_listed_and_panels_events_are_not(app, panels, console):
    topup_id = add_topup(app, panels["acme"], "cs_with_event")
    with app.app_context(), across_tenants():
        db.session.add_all(
            [
                GatewayEvent(
                    tenant_id=None,
                    receiver="platform",
                    gateway=STRIPE,
                    event_id="evt_platform_1",
                    kind="checkout.session.completed",
                    topup_id=topup_id,
                    outcome="credited",
                ),
                GatewayEvent(
                    tenant_id=panels["acme"],
                    receiver=f"t{panels['acme']}",
                    gateway=STRIPE,
                    event_id="evt_acme_own",
                    kind="checkout.session.completed",
                ),
            ]
        )
        db.session.commit()
    page = text_of(console.get("/console/topups"))
    events = page[page.index("Recent gateway events") :]
    assert "evt_platform_1" in events and "checkout.session.completed" in events
    assert "credited" in events and f"#{topup_id}" in events
    assert "evt_acme_own" not in page


def test_platform_midtrans_settings_are_saved_for_the_platform(app, console):
    response = console.post(
        "/console/payments/midtrans",
        data={
            "midtrans-server_key": "SB-Mid-server-platform77",
            "midtrans-client_key": "SB-Mid-client-platform",
            "midtrans-environment": "production",
            "midtrans-enabled": "y",
        },
    )
    assert response.status_code == 302
    account = platform_account(app, "midtrans")
    assert account.owner == "platform" and account.tenant_id is None
    assert account.secret_key == "SB-Mid-server-platform77" and account.production is True
    page = console.get("/console/payments").get_data(as_text=True)
    assert masked("SB-Mid-server-platform77") in page and "SB-Mid-server-platform77" not in page
    assert "Offer this to panels" in page
