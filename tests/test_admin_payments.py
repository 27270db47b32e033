"""The back office's payment pages: a panel's own gateway settings (secrets encrypted, shown
masked, blank keeps them), the review of customers' manual transfers (credited once, at the
amount staff confirm, never across panels), and the wholesale wallet topped up through the
platform's gateways only."""

from __future__ import annotations

import html
import io
import re
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import Text, select, type_coerce

from app.accounts.models import User
from app.extensions import db
from app.ledger import verify_ledger
from app.ledger.history import customer_balance
from app.panels.models import Tenant
from app.payments.models import MANUAL, MIDTRANS, PENDING, STRIPE, GatewayAccount, Topup
from app.payments.services import submit_manual_topup
from app.payments.settings import masked, set_enabled, set_manual, set_stripe
from tenants.context import across_tenants, platform_scope, tenant_scope
from tests.conftest import sign_in

D = Decimal
OWNER = "owner@acme.example.com"
SUPPORT = "support@acme.example.com"
STRIPE_KEY = "sk_test_51Habcdefgh9876"
SIGNING_SECRET = "whsec_signing5432"


@pytest.fixture
def shops(app, make):
    """acme (USD) with alice, an admin and a support agent; nusa (IDR) with budi."""
    ids = {"acme": make.tenant("acme"), "nusa": make.tenant("nusa", currency="IDR")}
    ids["alice"] = make.customer(ids["acme"], "alice@example.com")
    ids["budi"] = make.customer(ids["nusa"], "budi@example.com")
    ids["admin"] = make.staff(ids["acme"], "admin@acme.example.com", role="admin")
    ids["support"] = make.staff(ids["acme"], SUPPORT, role="support")
    return ids


@pytest.fixture
def staff(browser_for):
    """`staff(email, host)`: a browser on that panel's back office, signed in."""

    def signed_in(email: str = OWNER, host: str = "acme.localhost"):
        browser = browser_for(host)
        assert sign_in(browser, "/admin/login", email).status_code == 302
        return browser

    return signed_in


def png(colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, format="PNG")
    return out.getvalue()


def text_of(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(text))


def stripe_form(**fields) -> dict:
    data = {
        "secret_key": STRIPE_KEY,
        "webhook_secret": SIGNING_SECRET,
        "api_base": "",
        "enabled": "y",
        "min_amount": "5",
        "max_amount": "500.50",
    }
    data.update(fields)
    return {f"stripe-{k}": v for k, v in data.items() if v is not None}


def account_of(app, tenant_id: int | None, gateway: str) -> GatewayAccount | None:
    with app.app_context(), across_tenants():
        account = db.session.scalar(
            select(GatewayAccount).where(
                GatewayAccount.tenant_id == tenant_id, GatewayAccount.gateway == gateway
            )
        )
        if account is not None:
            db.session.expunge(account)
        return account


def raw_secret(app, tenant_id: int, gateway: str) -> str:
    """The secret column as stored, without decrypting it."""
    with app.app_context(), across_tenants():
        return db.session.scalar(
            select(type_coerce(GatewayAccount.secret_key, Text)).where(
                GatewayAccount.tenant_id == tenant_id, GatewayAccount.gateway == gateway
            )
        )


def balance_of(app, customer_id: int) -> Decimal:
    with app.app_context(), across_tenants():
        customer = db.session.get(User, customer_id)
        return customer_balance(db.session.get(Tenant, customer.tenant_id), customer)


def assert_ledger_clean(app) -> None:
    with app.app_context(), across_tenants():
        report = verify_ledger()
        assert report.ok, report.as_dict()


def enable_manual(app, tenant_id: int) -> None:
    with app.app_context(), tenant_scope(tenant_id):
        set_manual(tenant_id, instructions="Transfer to BCA", bank_accounts="BCA 123", actor="t")
        db.session.commit()


def manual_topup(app, customer_id: int, amount: str, proof: bytes | None = None) -> int:
    """A customer's manual transfer, waiting for review; its id."""
    with app.app_context(), across_tenants():
        customer = db.session.get(User, customer_id)
        tenant_id = customer.tenant_id
    enable_manual(app, tenant_id)
    with app.app_context(), tenant_scope(tenant_id):
        customer = db.session.get(User, customer_id)
        topup = submit_manual_topup(customer, D(amount), "TRX-42", proof)
        return topup.id


def topup_row(app, topup_id: int) -> Topup:
    with app.app_context(), across_tenants():
        topup = db.session.get(Topup, topup_id)
        db.session.expunge(topup)
        return topup


# --- gateway settings ------------------------------------------------------------------------


def test_stripe_settings_are_stored_encrypted_and_shown_masked(shops, staff, app):
    browser = staff()
    response = browser.post("/admin/payments/stripe", data=stripe_form())
    assert response.status_code == 302
    account = account_of(app, shops["acme"], STRIPE)
    assert account.secret_key == STRIPE_KEY and account.webhook_secret == SIGNING_SECRET
    assert (account.min_amount, account.max_amount, account.enabled) == (D(5), D("500.5"), True)
    stored = raw_secret(app, shops["acme"], STRIPE)
    assert stored and STRIPE_KEY not in stored
    page = browser.get("/admin/payments").get_data(as_text=True)
    assert "Saved" in page
    assert masked(STRIPE_KEY) in page and masked(SIGNING_SECRET) in page
    assert STRIPE_KEY not in page and SIGNING_SECRET not in page
    assert "http://acme.localhost/webhooks/stripe" in page
    assert "charge.dispute.closed" in page


def test_a_blank_secret_keeps_the_stored_one(shops, staff, app):
    browser = staff()
    browser.post("/admin/payments/stripe", data=stripe_form())
    response = browser.post(
        "/admin/payments/stripe",
        data=stripe_form(secret_key="", webhook_secret="", enabled=None, min_amount=""),
    )
    assert response.status_code == 302
    account = account_of(app, shops["acme"], STRIPE)
    assert account.secret_key == STRIPE_KEY and account.webhook_secret == SIGNING_SECRET
    assert account.enabled is False and account.min_amount is None


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"api_base": "ftp://sim.example"}, "stripe-api_base", "http(s) URL"),
        ({"min_amount": "600", "max_amount": "500"}, "stripe-min_amount", "more than the maximum"),
        ({"secret_key": "pk_test_12345678"}, "stripe-secret_key", "starts with sk_"),
        ({"max_amount": "1e3"}, "stripe-max_amount", ""),
    ],
)
def test_bad_stripe_input_is_a_field_error_and_saves_nothing(
    shops, staff, app, fields, field, message
):
    response = staff().post("/admin/payments/stripe", data=stripe_form(**fields))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    error = re.search(
        rf'<div class="field field--error">\s*<label for="{field}">.*?field__error[^>]*>([^<]+)<',
        page,
        re.S,
    )
    assert error and message in html.unescape(error.group(1))
    assert account_of(app, shops["acme"], STRIPE) is None
    assert STRIPE_KEY not in page  # what was typed stays, but never a secret


def test_typed_settings_are_kept_when_one_is_wrong(shops, staff):
    response = staff().post(
        "/admin/payments/stripe",
        data=stripe_form(api_base="http://127.0.0.1:9/sim", min_amount="600", max_amount="500"),
    )
    page = response.get_data(as_text=True)
    assert 'value="http://127.0.0.1:9/sim"' in page and 'value="600"' in page
    assert SIGNING_SECRET not in page


def test_midtrans_settings_are_saved_and_usd_panels_are_told_it_cannot_be_offered(
    shops, staff, app
):
    browser = staff()
    data = {
        "midtrans-server_key": "SB-Mid-server-abcdef987",
        "midtrans-client_key": "SB-Mid-client-xyz",
        "midtrans-environment": "production",
        "midtrans-enabled": "y",
    }
    assert browser.post("/admin/payments/midtrans", data=data).status_code == 302
    account = account_of(app, shops["acme"], MIDTRANS)
    assert account.secret_key == "SB-Mid-server-abcdef987"
    assert (account.client_key, account.production) == ("SB-Mid-client-xyz", True)
    assert raw_secret(app, shops["acme"], MIDTRANS) != "SB-Mid-server-abcdef987"
    page = text_of(browser.get("/admin/payments"))
    assert masked("SB-Mid-server-abcdef987") in page and "SB-Mid-server-abcdef987" not in page
    assert "Your panel's currency is USD, so Midtrans cannot be offered" in page
    idr_page = text_of(staff("owner@nusa.example.com", "nusa.localhost").get("/admin/payments"))
    assert "cannot be offered" not in idr_page
    assert "http://nusa.localhost/webhooks/midtrans" in idr_page


def test_a_missing_midtrans_client_key_is_a_field_error(shops, staff, app):
    data = {"midtrans-server_key": "SB-Mid-server-abcdef987", "midtrans-client_key": ""}
    response = staff().post("/admin/payments/midtrans", data=data)
    assert response.status_code == 200
    assert "This key is required" in text_of(response)
    assert account_of(app, shops["acme"], MIDTRANS) is None


def test_manual_transfer_settings_with_a_qris_image(shops, staff, app):
    browser = staff()
    data = {
        "manual-instructions": "Transfer, then upload the receipt.",
        "manual-bank_accounts": "BCA 1234567890 a.n. Acme",
        "manual-enabled": "y",
        "manual-qris_image": (io.BytesIO(png()), "qris.png"),
    }
    response = browser.post("/admin/payments/manual", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    account = account_of(app, shops["acme"], MANUAL)
    assert account.bank_accounts == "BCA 1234567890 a.n. Acme" and account.qris_image
    image = browser.get("/admin/payments/qris.png")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(image.data)).size == (8, 8)

    removed = {
        "manual-instructions": "Transfer, then upload the receipt.",
        "manual-bank_accounts": "BCA 1234567890 a.n. Acme",
        "manual-remove_qris": "y",
    }
    assert browser.post("/admin/payments/manual", data=removed).status_code == 302
    assert account_of(app, shops["acme"], MANUAL).qris_image is None
    assert browser.get("/admin/payments/qris.png").status_code == 404


def test_a_qris_upload_that_is_not_an_image_is_refused(shops, staff, app):
    data = {
        "manual-instructions": "Transfer",
        "manual-qris_image": (io.BytesIO(b"<html>not an image</html>"), "qris.png"),
    }
    response = staff().post("/admin/payments/manual", data=data, content_type="multipart/form-data")
    assert response.status_code == 200
    assert "Upload a PNG, JPEG or WebP image" in text_of(response)
    assert account_of(app, shops["acme"], MANUAL) is None


def test_support_staff_cannot_see_or_change_payment_settings(shops, staff, app):
    browser = staff(SUPPORT)
    assert browser.get("/admin/payments").status_code == 403
    assert browser.post("/admin/payments/stripe", data=stripe_form()).status_code == 403
    assert account_of(app, shops["acme"], STRIPE) is None
    assert b'href="/admin/payments"' not in browser.get("/admin/topups").data


def test_an_unknown_gateway_is_not_found(shops, staff):
    assert staff().post("/admin/payments/paypal", data={}).status_code == 404


# --- customers' top-ups ----------------------------------------------------------------------


def test_the_list_shows_pending_top_ups_with_a_badge_in_the_nav(shops, staff, app):
    topup_id = manual_topup(app, shops["alice"], "25.00")
    manual_topup(app, shops["budi"], "50000")
    browser = staff()
    response = browser.get("/admin/topups")
    page = text_of(response)
    assert "alice@example.com" in page and "budi@example.com" not in page
    assert "25.00000 USD" in page and "TRX-42" in page
    body = response.get_data(as_text=True)
    assert f'href="/admin/topups/{topup_id}"' in body
    assert f'href="/admin/customers/{shops["alice"]}"' in body
    assert re.search(r'Top-ups <span class="nav-count"[^>]*>1</span>', body)
    paid_only = text_of(browser.get("/admin/topups?state=paid"))
    assert "alice@example.com" not in paid_only


def test_approving_twice_credits_once(shops, staff, app):
    topup_id = manual_topup(app, shops["alice"], "25.00", proof=png())
    browser = staff()
    first = browser.post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "25.00"})
    assert first.status_code == 302
    second = browser.post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "25.00"})
    assert second.status_code == 302
    assert "This top-up was already approved" in text_of(browser.get(second.location))
    assert balance_of(app, shops["alice"]) == D("25.00")
    assert topup_row(app, topup_id).state == "paid"
    assert_ledger_clean(app)


def test_approving_with_a_corrected_amount_credits_that_amount(shops, staff, app):
    topup_id = manual_topup(app, shops["alice"], "25.00")
    browser = staff("admin@acme.example.com")
    page = browser.get(f"/admin/topups/{topup_id}").get_data(as_text=True)
    assert 'value="25"' in page  # the claimed amount, to correct
    response = browser.post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "20.5"})
    assert response.status_code == 302
    assert balance_of(app, shops["alice"]) == D("20.50")
    topup = topup_row(app, topup_id)
    assert (topup.amount, topup.claimed_amount) == (D("20.5"), D("25"))
    assert_ledger_clean(app)


def test_a_bad_approved_amount_is_a_field_error(shops, staff, app):
    topup_id = manual_topup(app, shops["alice"], "25.00")
    response = staff().post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "2,5"})
    assert response.status_code == 200
    assert 'id="approve-amount"' in response.get_data(as_text=True)
    assert "field__error" in response.get_data(as_text=True)
    assert balance_of(app, shops["alice"]) == 0
    assert topup_row(app, topup_id).state == PENDING


def test_rejecting_needs_a_reason_and_credits_nothing(shops, staff, app):
    topup_id = manual_topup(app, shops["alice"], "25.00")
    browser = staff()
    blank = browser.post(f"/admin/topups/{topup_id}/reject", data={"reject-reason": " "})
    assert blank.status_code == 200
    assert "This field is required." in text_of(blank)
    assert topup_row(app, topup_id).state == PENDING
    done = browser.post(f"/admin/topups/{topup_id}/reject", data={"reject-reason": "No money"})
    assert done.status_code == 302
    topup = topup_row(app, topup_id)
    assert (topup.state, topup.note) == ("failed", "No money")
    assert balance_of(app, shops["alice"]) == 0
    late = browser.post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "25"})
    assert late.status_code == 200 and "This top-up was rejected" in text_of(late)
    assert balance_of(app, shops["alice"]) == 0
    assert_ledger_clean(app)


def test_the_proof_is_served_as_a_png_that_is_never_sniffed(shops, staff, app):
    with_proof = manual_topup(app, shops["alice"], "25.00", proof=png("blue"))
    without = manual_topup(app, shops["alice"], "10.00")
    browser = staff(SUPPORT)
    response = browser.get(f"/admin/topups/{with_proof}/proof")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(response.data)).getpixel((0, 0)) == (0, 0, 255)
    assert browser.get(f"/admin/topups/{without}/proof").status_code == 404


def test_support_staff_see_a_top_up_but_cannot_review_it(shops, staff, app):
    topup_id = manual_topup(app, shops["alice"], "25.00")
    browser = staff(SUPPORT)
    page = browser.get(f"/admin/topups/{topup_id}").get_data(as_text=True)
    assert "TRX-42" in page and "/approve" not in page and "/reject" not in page
    approve = browser.post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "25"})
    reject = browser.post(f"/admin/topups/{topup_id}/reject", data={"reject-reason": "x"})
    assert (approve.status_code, reject.status_code) == (403, 403)
    assert topup_row(app, topup_id).state == PENDING
    assert balance_of(app, shops["alice"]) == 0


def test_another_panels_top_up_is_not_found(shops, staff, app):
    budis = manual_topup(app, shops["budi"], "50000", proof=png())
    browser = staff()
    assert browser.get(f"/admin/topups/{budis}").status_code == 404
    assert browser.get(f"/admin/topups/{budis}/proof").status_code == 404
    approve = browser.post(f"/admin/topups/{budis}/approve", data={"approve-amount": "50000"})
    reject = browser.post(f"/admin/topups/{budis}/reject", data={"reject-reason": "mine now"})
    assert (approve.status_code, reject.status_code) == (404, 404)
    assert topup_row(app, budis).state == PENDING
    assert balance_of(app, shops["budi"]) == 0


def test_a_wholesale_top_up_is_not_reviewed_as_a_customers(shops, staff, app):
    with app.app_context(), across_tenants():
        topup = Topup(tenant_id=shops["acme"], gateway=STRIPE, amount=D(10), currency="USD")
        db.session.add(topup)
        db.session.commit()
        topup_id = topup.id
    assert staff().get(f"/admin/topups/{topup_id}").status_code == 404


def test_customers_whose_payment_was_reversed_below_zero_are_flagged(shops, staff, app):
    from app.ledger import adjust_customer
    from app.payments.services import lock_topup, settle_refund

    topup_id = manual_topup(app, shops["alice"], "25.00")
    browser = staff()
    browser.post(f"/admin/topups/{topup_id}/approve", data={"approve-amount": "25"})
    assert "negative balance" not in text_of(browser.get("/admin/topups"))
    with app.app_context(), tenant_scope(shops["acme"]):
        adjust_customer(db.session.get(User, shops["alice"]), D("-20"), "spent", "test")
        db.session.commit()
        settle_refund(lock_topup(topup_id), D("25"), cause="refund-1")
        db.session.commit()
    page = text_of(browser.get("/admin/topups"))
    assert "1 customer has a negative balance after a reversed payment" in page
    assert "alice@example.com -20.00000 USD" in page
    assert_ledger_clean(app)


# --- the wholesale wallet --------------------------------------------------------------------


def configure_platform_stripe(app) -> None:
    with app.app_context(), platform_scope():
        set_stripe(None, secret_key=STRIPE_KEY, webhook_secret=SIGNING_SECRET, actor="op")
        db.session.commit()


def test_the_wallet_offers_only_the_platforms_gateways(shops, staff, app):
    browser = staff()
    assert "The platform offers no way to pay online yet" in text_of(browser.get("/admin/wallet"))
    enable_manual(app, shops["acme"])
    with app.app_context(), tenant_scope(shops["acme"]):
        set_stripe(
            shops["acme"], secret_key="sk_live_acme_own_1111", webhook_secret="whsec_a", actor="t"
        )
        db.session.commit()
    with app.app_context(), platform_scope():
        set_manual(None, instructions="Wire us", bank_accounts="", actor="op")
        db.session.commit()
    assert "The platform offers no way to pay online yet" in text_of(browser.get("/admin/wallet"))
    configure_platform_stripe(app)
    page = browser.get("/admin/wallet").get_data(as_text=True)
    assert 'value="stripe"' in page and "Card (Stripe)" in page
    assert 'value="manual"' not in page and "Manual bank transfer" not in page


def test_a_wholesale_top_up_outside_the_limits_is_a_field_error(shops, staff, app):
    configure_platform_stripe(app)
    response = staff().post(
        "/admin/wallet/topup", data={"topup-gateway": "stripe", "topup-amount": "0.50"}
    )
    assert response.status_code == 200
    assert "The smallest top-up is USD 1.00" in text_of(response)
    with app.app_context(), across_tenants():
        assert db.session.scalar(select(Topup.id)) is None


def test_a_wholesale_top_up_through_a_gateway_not_offered_is_refused(shops, staff, app):
    configure_platform_stripe(app)
    with app.app_context(), platform_scope():
        set_manual(None, instructions="Wire us", bank_accounts="", actor="op")
        db.session.commit()
    response = staff().post(
        "/admin/wallet/topup", data={"topup-gateway": "manual", "topup-amount": "20"}
    )
    assert response.status_code == 200
    assert "Choose a way to pay from the list." in text_of(response)


def test_support_staff_cannot_top_up_the_wholesale_wallet(shops, staff, app):
    configure_platform_stripe(app)
    browser = staff(SUPPORT)
    assert "Only owners and admins can top up" in text_of(browser.get("/admin/wallet"))
    data = {"topup-gateway": "stripe", "topup-amount": "20"}
    assert browser.post("/admin/wallet/topup", data=data).status_code == 403


def wholesale_topup(app, tenant_id: int, state: str) -> int:
    with app.app_context(), across_tenants():
        topup = Topup(
            tenant_id=tenant_id, gateway=STRIPE, amount=D("12.5"), currency="USD", state=state
        )
        db.session.add(topup)
        db.session.commit()
        return topup.id


def test_returning_from_the_gateway_shows_the_top_ups_state(shops, staff, app):
    pending = wholesale_topup(app, shops["acme"], "pending")
    paid = wholesale_topup(app, shops["acme"], "paid")
    browser = staff()
    waiting = browser.get(f"/admin/wallet?topup={pending}")
    assert "Waiting for the payment of 12.50000 USD" in text_of(waiting)
    assert waiting.headers["Refresh"] == "3"
    done = browser.get(f"/admin/wallet?topup={paid}")
    assert "Paid: 12.50000 USD was added" in text_of(done)
    assert "Refresh" not in done.headers
    history = text_of(done)
    assert history.count("12.50000 USD") >= 2


def test_another_panels_wholesale_top_up_shows_no_banner(shops, staff, app):
    nusas = wholesale_topup(app, shops["nusa"], "pending")
    customers = manual_topup(app, shops["alice"], "25.00")
    browser = staff()
    for topup_id in (nusas, customers):
        response = browser.get(f"/admin/wallet?topup={topup_id}")
        assert response.status_code == 200
        assert "Waiting for the payment" not in text_of(response)
        assert "Refresh" not in response.headers


def test_the_ledger_verifies_after_approvals_and_rejections(shops, staff, app):
    browser = staff()
    approved = manual_topup(app, shops["alice"], "7.25")
    rejected = manual_topup(app, shops["alice"], "3.00")
    browser.post(f"/admin/topups/{approved}/approve", data={"approve-amount": "7.25"})
    browser.post(f"/admin/topups/{rejected}/reject", data={"reject-reason": "Not received"})
    assert balance_of(app, shops["alice"]) == D("7.25")
    assert_ledger_clean(app)


def test_disabling_a_gateway_keeps_its_settings(shops, staff, app):
    with app.app_context(), tenant_scope(shops["acme"]):
        set_stripe(shops["acme"], secret_key=STRIPE_KEY, webhook_secret=SIGNING_SECRET, actor="t")
        set_enabled(shops["acme"], STRIPE, True, actor="t")
        db.session.commit()
    browser = staff()
    response = browser.post(
        "/admin/payments/stripe", data=stripe_form(secret_key="", webhook_secret="", enabled=None)
    )
    assert response.status_code == 302
    account = account_of(app, shops["acme"], STRIPE)
    assert account.enabled is False and account.secret_key == STRIPE_KEY


@pytest.fixture
def simulator(gateway_simulator):
    return gateway_simulator.url


def test_a_wholesale_top_up_goes_to_the_platforms_stripe_checkout(shops, staff, app, simulator):
    with app.app_context(), platform_scope():
        set_stripe(
            None,
            secret_key="sk_test_platform",
            webhook_secret=SIGNING_SECRET,
            api_base=f"{simulator}/stripe",
            actor="op",
        )
        db.session.commit()
    response = staff().post(
        "/admin/wallet/topup", data={"topup-gateway": "stripe", "topup-amount": "20"}
    )
    assert response.status_code == 303
    assert response.location.startswith(f"{simulator}/stripe/pay/cs_")
    with app.app_context(), across_tenants():
        topup = db.session.scalar(select(Topup))
        assert (topup.tenant_id, topup.customer_id) == (shops["acme"], None)
        assert (topup.amount, topup.currency, topup.state) == (D(20), "USD", PENDING)
        assert topup.checkout_url == response.location


def test_a_gateway_that_does_not_answer_is_a_form_error(shops, staff, app):
    with app.app_context(), platform_scope():
        set_stripe(
            None,
            secret_key="sk_test_platform",
            webhook_secret=SIGNING_SECRET,
            api_base="http://127.0.0.1:9/stripe",  # nothing listens on the discard port
            actor="op",
        )
        db.session.commit()
    response = staff().post(
        "/admin/wallet/topup", data={"topup-gateway": "stripe", "topup-amount": "20"}
    )
    assert response.status_code == 200
    assert "The payment gateway did not answer; try again" in text_of(response)
    assert 'value="20"' in response.get_data(as_text=True)
