"""The customer's add-funds pages: the gateways the panel offers with their limits, amount
errors kept on the form, a manual transfer with its proof image (checked, size-limited and
re-encoded), the top-up history with its states, the status after paying, and nobody else's
top-ups visible."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.extensions import db
from app.payments import (
    EXPIRED,
    MAX_PROOF_BYTES,
    PAID,
    Topup,
    set_enabled,
    set_limits,
    set_manual,
    set_midtrans,
    set_stripe,
)
from tenants.context import across_tenants, tenant_scope
from tests.conftest import sign_in
from tests.ordering import build_shop

D = Decimal
THEMES = ["base", "aurora", "nusantara"]
BANKS = "BCA 123 456 7890\na.n. PT Acme Panel"


# --- fixtures and helpers --------------------------------------------------------------------


def png(color=(200, 30, 30), size=(40, 30), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG", **save)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "SECRET-LOCATION-NOTE"  # ImageDescription
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def configure_manual(app, tenant_id: int, **limits) -> None:
    with app.app_context(), tenant_scope(tenant_id):
        set_manual(
            tenant_id,
            instructions="Transfer to our BCA account, then send the form.",
            bank_accounts=BANKS,
            qris_image=png((0, 0, 0), (50, 50)),
            actor="test",
        )
        if limits:
            set_limits(tenant_id, "manual", actor="test", **limits)
        db.session.commit()


def configure_stripe(app, tenant_id: int, api_base: str | None = None) -> None:
    with app.app_context(), tenant_scope(tenant_id):
        set_stripe(
            tenant_id,
            secret_key="sk_test_abc123",
            webhook_secret="whsec_abc123",
            api_base=api_base,
            actor="test",
        )
        set_limits(tenant_id, "stripe", min_amount=D("5"), max_amount=D("500"), actor="test")
        db.session.commit()


@pytest.fixture
def shop(app, make):
    """acme (USD: alice, bob) takes manual transfers; nusa (IDR: budi) too."""
    ids = build_shop(app, make)
    configure_manual(app, ids["acme"], min_amount=D("2"), max_amount=D("1000"))
    configure_manual(app, ids["nusa"])
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


def offered(page: str) -> list[tuple[str, str]]:
    """The gateways on the add-funds panel: (value, limits)."""
    return re.findall(
        r'name="gateway" value="(\w+)".*?gateway-option__limits">([^<]*)<', page, re.S
    )


def topups_of(app, customer_id: int) -> list[Topup]:
    with app.app_context(), across_tenants():
        rows = db.session.scalars(
            select(Topup).where(Topup.customer_id == customer_id).order_by(Topup.id)
        ).all()
        db.session.expunge_all()
        return rows


def count_topups(app) -> int:
    with app.app_context(), across_tenants():
        return db.session.scalar(select(func.count(Topup.id)))


def submit_manual(client, amount="25.00", reference="BCA 0412 Alice", proof=None, name="a.png"):
    """Post the transfer form as a browser does (multipart); the body is built in memory, so a
    large proof leaves no temporary file open behind the test client."""
    fields = {"amount": amount, "reference": reference}
    if proof is not None:
        fields["proof"] = FileStorage(io.BytesIO(proof), filename=name)
    boundary, body = encode_multipart(fields)
    return client.post(
        "/funds/manual", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def set_state(app, topup_id: int, state: str) -> None:
    with app.app_context(), across_tenants():
        db.session.get(Topup, topup_id).state = state
        db.session.commit()


# --- the add-funds panel ---------------------------------------------------------------------


def test_the_panel_offers_only_the_enabled_gateways_with_their_limits(app, shop, alice):
    configure_stripe(app, shop["acme"])
    with app.app_context(), tenant_scope(shop["acme"]):
        # Midtrans takes rupiah only: acme sells in USD, so it is not offered.
        set_midtrans(shop["acme"], server_key="SB-server", client_key="SB-client", actor="t")
        db.session.commit()

    page = html(alice.get("/funds"))

    assert offered(page) == [
        ("stripe", "USD 5.00 \u2013 500.00"),
        ("manual", "USD 2.00 \u2013 1000.00"),
    ]
    assert "Card (Stripe)" in page and "Manual bank transfer" in page
    assert "Midtrans" not in page
    assert 'inputmode="decimal"' in page

    with app.app_context(), tenant_scope(shop["acme"]):
        set_enabled(shop["acme"], "stripe", False, actor="test")
        db.session.commit()
    assert [g for g, _ in offered(html(alice.get("/funds")))] == ["manual"]


def test_an_idr_panel_offers_midtrans_with_rupiah_limits(app, shop, browser_for):
    with app.app_context(), tenant_scope(shop["nusa"]):
        set_midtrans(shop["nusa"], server_key="SB-server", client_key="SB-client", actor="t")
        set_limits(
            shop["nusa"], "midtrans", min_amount=D("10000"), max_amount=D("5000000"), actor="t"
        )
        db.session.commit()
    budi = signed_in(browser_for, "budi@example.com", "nusa.localhost")

    gateways = dict(offered(html(budi.get("/funds"))))

    assert gateways["midtrans"] == "IDR 10000 \u2013 5000000"
    assert list(gateways) == ["midtrans", "manual"]


def test_a_panel_without_gateways_says_to_contact_it(app, make, browser_for):
    ids = build_shop(app, make)
    alice = signed_in(browser_for)

    page = html(alice.get("/funds"))

    assert 'name="gateway"' not in page
    assert "Contact Acme Panel to add funds" in page
    assert alice.post("/funds/topup", data={"gateway": "manual", "amount": "5"}).status_code == 400
    assert alice.get("/funds/manual").status_code == 302
    assert count_topups(app) == 0
    assert ids["alice"]


@pytest.mark.parametrize(
    "amount, error",
    [
        ("abc", "'abc' is not a number"),
        ("1,000.00", "Write numbers without thousands separators"),
        ("-5", "A negative number is not allowed here"),
        ("0", "A payment amount must be more than zero"),
        ("1.50", "The smallest top-up is USD 2.00"),
        ("1000.01", "The largest top-up is USD 1000.00"),
        ("5.1234567", "USD amounts have at most 5 decimal places"),
    ],
)
def test_a_bad_amount_is_shown_on_the_field_and_keeps_the_form(app, shop, alice, amount, error):
    response = alice.post("/funds/topup", data={"gateway": "manual", "amount": amount})
    page = html(response).replace("&#39;", "'")

    assert response.status_code == 400
    field = re.search(r'<div class="field field--error">.*?<button', page, re.S)[0]
    assert re.search(r'id="amount"[^>]*value="([^"]*)"', field)[1] == amount  # kept as typed
    [shown] = re.findall(r'field__error" role="alert">([^<]*)<', field)
    assert error in shown
    assert re.search(r'value="manual"[^>]*checked', page)
    assert count_topups(app) == 0


def test_a_gateway_the_panel_does_not_offer_is_refused(app, shop, alice):
    response = alice.post("/funds/topup", data={"gateway": "stripe", "amount": "10"})

    assert response.status_code == 400
    assert "Choose one of the payment methods." in html(response)
    assert count_topups(app) == 0


def test_choosing_manual_transfer_leads_to_its_page_with_the_amount(app, shop, alice):
    response = alice.post("/funds/topup", data={"gateway": "manual", "amount": "25.50"})

    assert response.status_code == 303
    assert response.headers["Location"] == "/funds/manual?amount=25.50"
    assert count_topups(app) == 0


def test_a_gateway_that_does_not_answer_is_a_form_error(app, shop, alice):
    configure_stripe(app, shop["acme"], api_base="http://127.0.0.1:9")

    response = alice.post("/funds/topup", data={"gateway": "stripe", "amount": "10.00"})

    page = html(response)
    assert response.status_code == 503
    assert "The payment gateway did not answer" in page
    assert 'value="10.00"' in page
    assert [t.state for t in topups_of(app, shop["alice"])] == ["failed"]


# --- manual transfer -------------------------------------------------------------------------


def test_the_manual_page_shows_the_instructions_banks_qris_and_limits(app, shop, alice):
    page = html(alice.get("/funds/manual?amount=25.50"))

    assert "Transfer to our BCA account, then send the form." in page
    assert '<pre class="bank-accounts">BCA 123 456 7890\na.n. PT Acme Panel</pre>' in page
    assert 'src="/funds/manual/qris.png"' in page
    assert "USD 2.00 \u2013 1000.00" in page
    assert 'id="amount" inputmode="decimal"' in page and 'value="25.50"' in page
    assert 'accept="image/png,image/jpeg,image/webp"' in page
    assert "up to 5 MiB" in page
    assert 'enctype="multipart/form-data"' in page


def test_the_qris_image_is_served_as_a_png_not_to_be_sniffed(app, shop, alice):
    response = alice.get("/funds/manual/qris.png")

    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(response.data)).size == (50, 50)


def test_a_manual_transfer_with_a_png_proof_is_pending_with_the_proof_re_encoded(app, shop, alice):
    upload = png(pnginfo=_png_comment("hidden <script>alert(1)</script>"))

    response = submit_manual(alice, "25.00", "BCA 0412 Alice", upload)

    [topup] = topups_of(app, shop["alice"])
    assert response.status_code == 303
    assert response.headers["Location"] == f"/funds?topup={topup.id}"
    assert (topup.gateway, topup.state, topup.amount, topup.reference) == (
        "manual", "pending", D("25.00"), "BCA 0412 Alice",
    )  # fmt: skip
    page = html(alice.get(response.headers["Location"]))
    assert "Sent for review: your transfer of USD 25.00 is added to your balance" in page
    assert "topup-status--pending" in page and "spinner" not in page  # staff review, no poll
    row = re.search(rf'id="topup-{topup.id}".*?</tr>', page, re.S)[0]
    assert "Manual bank transfer" in row and "USD 25.00" in row
    assert 'topup-state--pending">Pending<' in row and "BCA 0412 Alice" in row

    proof = alice.get(f"/funds/topups/{topup.id}/proof")
    assert proof.status_code == 200 and proof.mimetype == "image/png"
    assert proof.headers["X-Content-Type-Options"] == "nosniff"
    assert proof.data != upload and b"<script>" not in proof.data
    shown = Image.open(io.BytesIO(proof.data))
    assert shown.format == "PNG" and shown.size == (40, 30) and "comment" not in shown.info
    assert shown.getpixel((0, 0)) == (200, 30, 30)


def _png_comment(text: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("comment", text)
    return info


def test_a_jpeg_proof_loses_its_exif_and_is_served_as_png(app, shop, alice):
    upload = jpeg_with_exif()

    assert submit_manual(alice, "10", "Alice", upload, name="photo.jpg").status_code == 303

    [topup] = topups_of(app, shop["alice"])
    # What is stored is already the re-encoded image, not the upload with its EXIF.
    assert topup.proof_type == "image/png" and b"SECRET-LOCATION-NOTE" not in topup.proof
    proof = alice.get(f"/funds/topups/{topup.id}/proof")
    assert proof.mimetype == "image/png"
    assert proof.data.startswith(b"\x89PNG") and b"SECRET-LOCATION-NOTE" not in proof.data
    assert not Image.open(io.BytesIO(proof.data)).getexif()


def test_a_manual_transfer_without_proof_is_accepted(app, shop, alice):
    assert submit_manual(alice, "3", "Alice Example").status_code == 303

    [topup] = topups_of(app, shop["alice"])
    assert topup.proof is None and topup.state == "pending"
    assert alice.get(f"/funds/topups/{topup.id}/proof").status_code == 404


@pytest.mark.parametrize(
    "content, name",
    [
        (b"<html><script>alert(document.cookie)</script></html>", "proof.png"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
            "proof.png",
        ),
        (b"%PDF-1.4 not an image", "proof.jpg"),
        (png()[:60], "truncated.png"),
    ],
)
def test_a_proof_that_is_not_an_image_is_a_form_error(app, shop, alice, content, name):
    response = submit_manual(alice, "25.00", "BCA 0412", content, name=name)

    page = html(response)
    assert response.status_code == 400
    assert "Upload a PNG, JPEG or WebP image" in page
    assert 'value="25.00"' in page and 'value="BCA 0412"' in page
    assert count_topups(app) == 0


def test_a_proof_over_the_size_limit_is_a_form_error(app, shop, alice):
    too_big = png() + b"\0" * (MAX_PROOF_BYTES - len(png()) + 1)

    response = submit_manual(alice, "25.00", "BCA 0412", too_big)

    assert response.status_code == 400
    assert "The image is larger than 5 MiB" in html(response)
    assert count_topups(app) == 0


@pytest.mark.parametrize(
    "amount, reference, error",
    [
        ("", "BCA", "amount"),
        ("2,5", "BCA", "amount"),
        ("0.50", "BCA", "The smallest top-up is USD 2.00"),
        ("10", "  ", "Give the transfer reference or the sender"),
        ("10", "x" * 201, "At most 200 characters"),
    ],
)
def test_a_bad_manual_form_keeps_what_was_typed(app, shop, alice, amount, reference, error):
    response = submit_manual(alice, amount, reference, png())

    page = html(response)
    assert response.status_code == 400
    assert error in page.replace("&#39;", "'")
    assert "field--error" in page
    if amount:
        assert f'value="{amount}"' in page
    assert "Choose the image again" in page  # a browser never sends a file back
    assert count_topups(app) == 0


# --- history and status ----------------------------------------------------------------------


def test_the_history_shows_each_state_as_a_badge_and_continue_for_a_pending_checkout(
    app, shop, alice
):
    with app.app_context(), tenant_scope(shop["acme"]):
        for gateway, state, url in [
            ("stripe", "pending", "https://checkout.example/pay/1"),
            ("stripe", "paid", "https://checkout.example/pay/2"),
            ("stripe", "failed", None),
            ("stripe", "expired", None),
            ("stripe", "refunded", None),
            ("stripe", "disputed", None),
        ]:
            db.session.add(
                Topup(
                    tenant_id=shop["acme"], customer_id=shop["alice"], gateway=gateway,
                    amount=D("7.25"), currency="USD", state=state, checkout_url=url,
                    external_id=f"cs_{state}",
                )
            )  # fmt: skip
        db.session.commit()

    page = html(alice.get("/funds/topups"))

    badges = re.findall(r'topup-state--(\w+)">([^<]+)<', page)
    assert badges == [
        ("disputed", "Disputed"),
        ("refunded", "Refunded"),
        ("expired", "Expired"),
        ("failed", "Failed"),
        ("paid", "Paid"),
        ("pending", "Pending"),
    ]
    continues = re.findall(r'href="([^"]+)"[^>]*>Continue payment<', page)
    assert continues == ["https://checkout.example/pay/1"]
    funds = html(alice.get("/funds"))
    assert funds.count('class="topup-row"') == 5 and 'href="/funds/topups"' in funds


def test_the_history_pages_and_shows_only_the_customers_own(app, shop, alice, browser_for):
    for n in range(22):
        assert submit_manual(alice, "2", f"ref-{n}").status_code == 303
    bob = signed_in(browser_for, "bob@example.com")
    assert submit_manual(bob, "2", "bob-ref").status_code == 303

    first = html(alice.get("/funds/topups"))
    second = html(alice.get("/funds/topups?page=2"))

    assert first.count('class="topup-row"') == 20 and "Page 1 of 2" in first
    assert second.count('class="topup-row"') == 2 and "ref-0<" in second
    assert "bob-ref" not in first + second
    budi = signed_in(browser_for, "budi@example.com", "nusa.localhost")
    nothing = html(budi.get("/funds/topups"))
    assert 'class="topup-row"' not in nothing and "empty-state" in nothing


def test_a_paid_topup_shows_the_amount_added(app, shop, alice):
    submit_manual(alice, "12.50", "BCA")
    [topup] = topups_of(app, shop["alice"])
    set_state(app, topup.id, PAID)

    page = html(alice.get(f"/funds?topup={topup.id}"))

    assert "Payment received: +USD 12.50 added to your balance." in page
    assert "topup-status--paid" in page and "spinner" not in page


def test_a_pending_gateway_payment_waits_with_a_spinner_and_polls(app, shop, alice):
    with app.app_context(), tenant_scope(shop["acme"]):
        topup = Topup(
            tenant_id=shop["acme"], customer_id=shop["alice"], gateway="stripe",
            amount=D("9"), currency="USD", state="pending", external_id="cs_x",
        )  # fmt: skip
        db.session.add(topup)
        db.session.commit()
        topup_id = topup.id

    page = html(alice.get(f"/funds?topup={topup_id}"))

    assert "Waiting for the payment of USD 9.00 to be confirmed" in page
    assert 'class="spinner"' in page
    assert f'data-status-url="/funds/topups/{topup_id}.json"' in page
    assert 'http-equiv="refresh"' in page and "js/funds.js" in page
    status = alice.get(f"/funds/topups/{topup_id}.json")
    assert status.get_json() == {
        "id": topup_id, "state": "pending", "label": "Pending", "balance": "0.00000",
    }  # fmt: skip

    set_state(app, topup_id, EXPIRED)
    assert alice.get(f"/funds/topups/{topup_id}.json").get_json()["state"] == "expired"
    page = html(alice.get(f"/funds?topup={topup_id}"))
    assert "expired before it was made" in page and "spinner" not in page


@pytest.mark.parametrize("topup_arg", ["abc", "0", "-1", "99999999999", "999999"])
def test_a_bad_topup_id_in_the_url_shows_no_banner(app, shop, alice, topup_arg):
    response = alice.get(f"/funds?topup={topup_arg}")

    assert response.status_code == 200
    assert "topup-status" not in html(response)


# --- nobody else's top-ups -------------------------------------------------------------------


@pytest.fixture
def alices_topup(app, shop, alice) -> int:
    assert submit_manual(alice, "25.00", "alice-secret-ref", png()).status_code == 303
    [topup] = topups_of(app, shop["alice"])
    return topup.id


@pytest.mark.parametrize(
    "email, host",
    [("bob@example.com", "acme.localhost"), ("budi@example.com", "nusa.localhost")],
)
def test_another_customer_cannot_see_a_topup(app, alices_topup, browser_for, email, host):
    other = signed_in(browser_for, email, host)

    assert other.get(f"/funds/topups/{alices_topup}/proof").status_code == 404
    assert other.get(f"/funds/topups/{alices_topup}.json").status_code == 404
    page = html(other.get(f"/funds?topup={alices_topup}"))
    assert "topup-status" not in page and "alice-secret-ref" not in page
    assert "alice-secret-ref" not in html(other.get("/funds/topups"))


def test_the_funds_pages_need_a_signed_in_customer(app, alices_topup, browser_for):
    visitor = browser_for("acme.localhost")
    for path in (
        "/funds/manual",
        "/funds/topups",
        f"/funds/topups/{alices_topup}.json",
        f"/funds/topups/{alices_topup}/proof",
        "/funds/manual/qris.png",
    ):
        response = visitor.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login")
    started = visitor.post("/funds/topup", data={"gateway": "manual", "amount": "5"})
    assert started.status_code == 302
    assert submit_manual(visitor).status_code == 302


def test_a_panel_without_a_qris_image_serves_none(app, shop, alice):
    with app.app_context(), tenant_scope(shop["acme"]):
        set_manual(shop["acme"], instructions="x", bank_accounts=BANKS, remove_qris=True, actor="t")
        db.session.commit()

    assert alice.get("/funds/manual/qris.png").status_code == 404
    assert "qris.png" not in html(alice.get("/funds/manual"))


@pytest.mark.parametrize("theme", THEMES)
def test_the_funds_pages_render_in_every_theme(app, make, browser_for, theme):
    ids = build_shop(app, make, theme=theme)
    configure_manual(app, ids["acme"])
    alice = signed_in(browser_for)
    assert submit_manual(alice, "5", "theme-ref", png()).status_code == 303

    for path in ("/funds", "/funds/manual", "/funds/topups"):
        response = alice.get(path)
        assert response.status_code == 200, path
        assert f"theme-{theme}" in html(response)
    assert "theme-ref" in html(alice.get("/funds"))


def test_an_indonesian_panel_shows_the_funds_pages_in_indonesian(app, make, browser_for):
    ids = build_shop(app, make, locale="id")
    configure_manual(app, ids["acme"])
    alice = signed_in(browser_for)

    funds = html(alice.get("/funds"))
    manual = html(alice.get("/funds/manual"))
    refused = html(submit_manual(alice, "abc", ""))

    assert "Metode pembayaran" in funds and "Transfer bank manual" in funds
    assert "Lanjut ke pembayaran" in funds
    assert "1. Transfer dananya" in manual and "Kirim untuk dicek" in manual
    assert "Bukti transfer (opsional)" in manual
    assert "Payment method" not in funds and "Send for review" not in manual
    assert re.findall(r'field__error" role="alert">([^<]*)<', refused.replace("&#39;", "'")) == [
        "'abc' bukan angka: gunakan angka dan satu '.' (mis. 25.50)"
    ]
