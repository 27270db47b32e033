"""Adding funds in a real browser: a customer picks manual transfer on the funds page, sends
the transfer form with a proof image and finds the top-up pending in their history; the page
waiting on a gateway payment updates itself once the payment settles; every funds page fits a
phone in every theme."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from PIL import Image
from playwright.sync_api import expect

from app.extensions import db
from app.payments import PAID, Topup, set_limits, set_manual
from tenants.context import across_tenants, tenant_scope
from tests.conftest import PASSWORD
from tests.ordering import build_shop, fund

pytestmark = pytest.mark.browser

THEMES = ["base", "aurora", "nusantara"]
PHONE = {"width": 390, "height": 844}
BANKS = "BCA 123 456 7890 a.n. PT Acme Panel Sejahtera Abadi\nMandiri 900 00 1234 5678"


def url(port: int, path: str, slug: str = "acme") -> str:
    return f"http://{slug}.localhost:{port}{path}"


def png_bytes(color=(30, 160, 90), size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def open_shop(app, make, theme: str = "base") -> dict[str, int]:
    ids = build_shop(app, make, theme=theme)
    fund(app, ids["alice"], "10.00")
    with app.app_context(), tenant_scope(ids["acme"]):
        set_manual(
            ids["acme"],
            instructions="Transfer the exact amount, then tell us below.\nWe check within 1 hour.",
            bank_accounts=BANKS,
            qris_image=png_bytes((0, 0, 0), (80, 80)),
            actor="test",
        )
        set_limits(
            ids["acme"], "manual", min_amount=Decimal(2), max_amount=Decimal(1000), actor="test"
        )
        db.session.commit()
    return ids


def sign_in(page, port: int, email: str = "alice@example.com") -> None:
    page.goto(url(port, "/login"))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(url(port, "/dashboard"))


def fits(page) -> bool:
    sizes = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    return sizes["scroll"] <= sizes["inner"]


def test_a_customer_sends_a_manual_transfer_with_its_proof(
    app, make, live_server, new_context, tmp_path
):
    shop = open_shop(app, make)
    proof = tmp_path / "transfer.png"
    proof.write_bytes(png_bytes())
    page = new_context().new_page()
    sign_in(page, live_server)

    page.goto(url(live_server, "/funds"))
    expect(page.locator("#balance")).to_have_text("USD 10.00000")
    option = page.locator(".gateway-option", has_text="Manual bank transfer")
    expect(option).to_contain_text("USD 2.00 \u2013 1000.00")
    option.click()
    page.fill("#amount", "1")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator(".field--error .field__error")).to_have_text(
        "The smallest top-up is USD 2.00"
    )
    expect(page.locator("#amount")).to_have_value("1")

    page.fill("#amount", "25.50")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(url(live_server, "/funds/manual?amount=25.50"))
    expect(page.locator(".bank-accounts")).to_have_text(BANKS)
    expect(page.locator("img.qris-image")).to_have_js_property("naturalWidth", 80)
    expect(page.locator("#amount")).to_have_value("25.50")
    page.fill("#reference", "BCA 0412 Alice")
    page.set_input_files("#proof", str(proof))
    page.get_by_role("button", name="Send for review").click()

    page.wait_for_url(re.compile(r".*/funds\?topup=\d+$"))
    topup_id = int(page.url.rsplit("=", 1)[1])
    expect(page.locator("#topup-status")).to_contain_text(
        "Sent for review: your transfer of USD 25.50 is added to your balance"
    )
    row = page.locator(f"#topup-{topup_id}")
    expect(row).to_contain_text("USD 25.50")
    expect(row.locator(".topup-state")).to_have_text("Pending")
    expect(page.locator("#balance")).to_have_text("USD 10.00000")  # not until staff confirm
    page.screenshot(path=tmp_path / "funds-after-transfer.png", full_page=True)

    shown = page.goto(url(live_server, f"/funds/topups/{topup_id}/proof"))
    assert shown.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(shown.body())).size == (64, 48)
    with app.app_context(), across_tenants():
        stored = db.session.get(Topup, topup_id)
        assert (stored.customer_id, stored.state) == (shop["alice"], "pending")


@pytest.mark.parametrize("theme", THEMES)
def test_the_page_waiting_on_a_payment_updates_once_it_is_paid(
    app, make, live_server, new_context, tmp_path, theme
):
    shop = open_shop(app, make, theme)
    with app.app_context(), tenant_scope(shop["acme"]):
        topup = Topup(
            tenant_id=shop["acme"], customer_id=shop["alice"], gateway="stripe",
            amount=Decimal("12.00"), currency="USD", state="pending", external_id="cs_wait",
        )  # fmt: skip
        db.session.add(topup)
        db.session.commit()
        topup_id = topup.id
    page = new_context().new_page()
    sign_in(page, live_server)

    page.goto(url(live_server, f"/funds?topup={topup_id}"))
    status = page.locator("#topup-status")
    expect(status).to_contain_text("Waiting for the payment of USD 12.00 to be confirmed")
    expect(status.locator(".spinner")).to_be_visible()
    expect(status.locator(".topup-status__progress")).to_contain_text("Still checking")
    page.screenshot(path=tmp_path / f"{theme}-waiting.png")

    with app.app_context(), across_tenants():
        db.session.get(Topup, topup_id).state = PAID
        db.session.commit()

    expect(status).to_contain_text("Payment received: +USD 12.00 added to your balance.")
    expect(status.locator(".spinner")).to_have_count(0)


@pytest.mark.parametrize("theme", THEMES)
def test_the_funds_pages_fit_a_phone(app, make, live_server, new_context, tmp_path, theme):
    shop = open_shop(app, make, theme)
    with app.app_context(), tenant_scope(shop["acme"]):
        history = [("pending", "BCA 0412 Alice Example Longname"), ("paid", ""), ("failed", "")]
        for state, ref in history:
            db.session.add(
                Topup(
                    tenant_id=shop["acme"], customer_id=shop["alice"], gateway="manual",
                    amount=Decimal("25.5"), currency="USD", state=state, reference=ref,
                    external_id=f"manual-x-{state}",
                )
            )  # fmt: skip
        db.session.commit()
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    sign_in(page, live_server)

    page.goto(url(live_server, "/funds"))
    page.fill("#amount", "abc")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.locator(".field--error .field__error")).to_be_visible()
    assert fits(page), f"{theme}: the funds page with a form error scrolls sideways"
    page.screenshot(path=tmp_path / f"{theme}-funds-error.png", full_page=True)

    for path in ("/funds?topup=1", "/funds/manual?amount=25.50", "/funds/topups"):
        page.goto(url(live_server, path))
        expect(page.locator(".page-title")).to_be_visible()
        assert fits(page), f"{theme}: {path} scrolls sideways"
        name = re.sub(r"\W+", "-", path).strip("-")
        page.screenshot(path=tmp_path / f"{theme}-{name}.png", full_page=True)
    expect(page.locator(".topup-row").first).to_be_visible()
