"""Ordering in a real browser: a customer with funds picks a service on the price list, sees the
charge follow what they type, places the order, and finds it in their orders and their wallet;
every ordering page fits a phone in every theme."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.ordering import LINK, build_shop, fund, fund_tenant

pytestmark = pytest.mark.browser

THEMES = ["base", "aurora", "nusantara"]
PHONE = {"width": 390, "height": 844}


def url(port: int, path: str, slug: str = "acme") -> str:
    return f"http://{slug}.localhost:{port}{path}"


def open_shop(app, make, theme: str) -> dict[str, int]:
    ids = build_shop(app, make, theme=theme)
    fund(app, ids["alice"], "10.00")
    fund_tenant(app, ids["acme"], "5.00")
    return ids


def sign_in(page, port: int, email: str = "alice@example.com") -> None:
    page.goto(url(port, "/login"))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(url(port, "/dashboard"))


@pytest.mark.parametrize("theme", THEMES)
def test_a_customer_orders_from_the_price_list_and_sees_the_charge(
    app, make, live_server, new_context, tmp_path, theme
):
    shop = open_shop(app, make, theme)
    page = new_context().new_page()
    sign_in(page, live_server)

    page.goto(url(live_server, "/services"))
    page.locator(f"#service-{shop['likes']} a", has_text="Order").click()
    page.wait_for_url(url(live_server, f"/orders/new?service={shop['likes']}"))
    expect(page.locator("#service")).to_have_value(str(shop["likes"]))
    expect(page.locator("#service-info")).to_contain_text("All about likes.")
    charge = page.locator("#order-charge")
    expect(charge).to_have_text("\u2014")

    page.fill("#link", LINK)
    page.locator("#quantity").press_sequentially("100")
    expect(charge).to_have_text("USD 0.13000")
    page.fill("#quantity", "5")
    expect(page.locator("#order-charge-note")).to_have_text("Quantity must be at least 10")
    expect(charge).to_have_text("\u2014")
    page.fill("#quantity", "200")
    expect(charge).to_have_text("USD 0.26000")
    page.screenshot(path=tmp_path / f"{theme}-new-order.png", full_page=True)
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    order_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".alert--success")).to_contain_text(f"Order #{order_id} placed")
    page.goto(url(live_server, "/orders"))
    row = page.locator(f"#order-{order_id}")
    expect(row).to_contain_text("USD 0.26000")
    expect(row.locator(".status-badge")).to_have_text("Pending")
    page.goto(url(live_server, "/funds"))
    expect(page.locator("#balance")).to_have_text("USD 9.74000")
    expect(page.locator(".history-row").first).to_contain_text(f"Order #{order_id}")
    expect(page.locator(".history-row").first).to_contain_text("\u22120.26000")


def test_choosing_another_service_shows_the_inputs_its_type_needs(
    app, make, live_server, new_context
):
    shop = open_shop(app, make, "base")
    page = new_context().new_page()
    sign_in(page, live_server)
    page.goto(url(live_server, f"/orders/new?service={shop['likes']}"))
    expect(page.locator("#runs")).to_be_visible()

    page.select_option("#service", str(shop["comments"]))

    expect(page.locator("#comments")).to_be_visible()
    expect(page.locator("#quantity")).to_be_hidden()
    expect(page.locator("#runs")).to_be_hidden()
    expect(page.locator("#service-info")).to_contain_text("All about comments.")
    assert page.url.endswith(f"/orders/new?service={shop['comments']}")
    page.fill("#comments", "great\nlove it\nwow")
    expect(page.locator("#order-charge")).to_have_text("USD 0.00390")


def test_the_live_charge_warns_a_customer_who_cannot_pay(app, make, live_server, new_context):
    shop = open_shop(app, make, "base")
    page = new_context().new_page()
    sign_in(page, live_server, "bob@example.com")
    page.goto(url(live_server, f"/orders/new?service={shop['likes']}"))

    page.fill("#quantity", "100")

    expect(page.locator("#order-funds-warning")).to_be_visible()
    expect(page.locator("#order-funds-warning a")).to_have_attribute("href", "/funds")


@pytest.mark.parametrize("theme", THEMES)
def test_every_ordering_page_fits_a_phone(app, make, live_server, new_context, tmp_path, theme):
    shop = open_shop(app, make, theme)
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    sign_in(page, live_server)
    page.goto(url(live_server, f"/orders/new?service={shop['likes']}"))
    page.fill("#link", LINK + "/" + "a-very-long-path-segment" * 4)
    page.fill("#quantity", "100")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    order_path = "/" + page.url.split("/", 3)[3]

    for path in (
        f"/orders/new?service={shop['likes']}",
        "/orders/mass",
        "/orders",
        order_path,
        "/funds",
        "/dashboard",
    ):
        page.goto(url(live_server, path))
        name = path.strip("/").replace("/", "-").split("?")[0]
        page.screenshot(path=tmp_path / f"{theme}-{name}.png", full_page=True)
        widths = page.evaluate(
            "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
        )
        assert widths["inner"] == PHONE["width"], path
        assert widths["scroll"] <= widths["inner"], path
    # On a phone the order list is a stack of cards, each with its own labels.
    page.goto(url(live_server, "/orders"))
    row = page.locator(".order-row").first
    assert row.evaluate("el => getComputedStyle(el).display") == "block"
    label = row.locator("td[data-label]").first
    assert label.evaluate("el => getComputedStyle(el, '::before').content") == '"ID"'
