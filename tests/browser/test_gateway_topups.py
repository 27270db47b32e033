"""Adding funds in a real browser through each gateway simulator: the customer picks the
method on /funds, pays on the simulator's page, comes back to a confirmation and sees the
balance; the simulator's signed webhook did the crediting."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.money import format_amount
from tests.conftest import PASSWORD
from tests.payments_support import balance_of, connect_midtrans, connect_stripe

pytestmark = pytest.mark.browser


def url(port: int, slug: str, path: str) -> str:
    return f"http://{slug}.localhost:{port}{path}"


def sign_in(page, port: int, slug: str, email: str) -> None:
    page.goto(url(port, slug, "/login"))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(url(port, slug, "/dashboard"))


def add_funds(page, port: int, slug: str, gateway: str, amount: str) -> None:
    page.goto(url(port, slug, "/funds"))
    page.locator(f"input[name=gateway][value={gateway}]").check()
    page.fill("#amount", amount)
    page.locator("#add-funds form button[type=submit]").click()


def test_a_customer_adds_funds_by_card_through_the_stripe_simulator(
    app, make, live_server, gateway_simulator, new_context
):
    acme = make.tenant("acme", theme="aurora")
    alice = make.customer(acme, "alice@example.com")
    connect_stripe(app, gateway_simulator, acme, "sk_test_acme", f"acme.localhost:{live_server}")
    page = new_context().new_page()
    sign_in(page, live_server, "acme", "alice@example.com")

    add_funds(page, live_server, "acme", "stripe", "12.50")
    page.wait_for_url(re.compile(r"/stripe/pay/cs_"))
    expect(page.locator("body")).to_contain_text("12.50")
    page.locator("#pay").click()

    page.wait_for_url(re.compile(r"/funds\?topup=\d+$"))
    expect(page.locator("#topup-status")).to_have_class(re.compile("topup-status--paid"))
    expect(page.locator("#balance")).to_contain_text(format_amount(balance_of(app, alice), "USD"))
    assert balance_of(app, alice) == 12.5


def test_a_customer_pays_by_qris_through_the_midtrans_simulator(
    app, make, live_server, gateway_simulator, new_context
):
    toko = make.tenant("toko", theme="nusantara", currency="IDR")
    budi = make.customer(toko, "budi@example.com")
    connect_midtrans(app, gateway_simulator, toko, "SB-Mid-server-toko")
    page = new_context(viewport={"width": 390, "height": 844}).new_page()
    sign_in(page, live_server, "toko", "budi@example.com")

    add_funds(page, live_server, "toko", "midtrans", "50000")
    page.wait_for_url(re.compile(r"/midtrans/snap/v4/redirection/"))
    page.locator("#method-qris").click()
    page.locator("#pay").click()

    page.wait_for_url(re.compile(r"/funds\?topup=\d+"))
    expect(page.locator("#topup-status")).to_have_class(re.compile("topup-status--paid"))
    assert balance_of(app, budi) == 50000
    expect(page.locator("#balance")).to_contain_text(format_amount(balance_of(app, budi), "IDR"))
