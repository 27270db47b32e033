"""Adding funds on the storefront: the gateways the panel offers, paying through Stripe or
Midtrans, a manual bank transfer with its proof, and the customer's top-ups with their states.

The views parse the form and call `app.payments`, which validates the amount against the
gateway's limits again, talks to the gateway and credits the wallet once. Only the customer who
made a top-up can see it: another customer's id, on this panel or another, is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import abort, flash, g, jsonify, make_response, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField

from app.accounts.web import attach_error
from app.errors import ValidationError
from app.extensions import db
from app.ledger.history import customer_balance
from app.money import format_amount, parse_amount
from app.paging import int_arg, page_of, page_url
from app.payments import (
    MANUAL,
    MAX_PROOF_BYTES,
    MIDTRANS,
    PENDING,
    STRIPE,
    GatewayOffer,
    Topup,
    count_topups,
    find_topup,
    gateway_account,
    gateway_label,
    offered_gateways,
    submit_manual_topup,
    topup_history,
)
from app.payments.settings import amount_digits, shown_amount, state_label
from app.storefront import bp
from tenants.web import render_themed

TOPUPS_PER_PAGE = 20
RECENT_TOPUPS = 5
PROOF_ACCEPT = "image/png,image/jpeg,image/webp"
AMOUNT_INPUT = {"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}


class TopupForm(FlaskForm):
    """The add-funds panel: a gateway (radio cards drawn by the template) and an amount."""

    gateway = StringField(_l("Payment method"))
    amount = StringField(_l("Amount"), render_kw=AMOUNT_INPUT)


class ManualTopupForm(FlaskForm):
    amount = StringField(_l("Amount transferred"), render_kw=AMOUNT_INPUT)
    reference = StringField(
        _l("Transfer reference or sender name"),
        render_kw={"autocomplete": "off", "maxlength": 200},
    )
    proof = FileField(_l("Proof of transfer (optional)"), render_kw={"accept": PROOF_ACCEPT})


def customer():
    """The signed-in customer itself, not the `current_user` proxy."""
    return current_user._get_current_object()


# --- what the pages show ---------------------------------------------------------------------


def limits_text(offer: GatewayOffer, currency: str) -> str:
    """ "USD 1.00 \u2013 1000.00": the smallest and largest top-up this gateway takes."""
    low, high = offer.min_amount, offer.max_amount
    if low is not None and high is not None:
        return f"{shown_amount(low, currency)} \u2013 {amount_digits(high, currency)}"
    if low is not None:
        return _("From %(amount)s", amount=shown_amount(low, currency))
    if high is not None:
        return _("Up to %(amount)s", amount=shown_amount(high, currency))
    return ""


@dataclass(frozen=True)
class OfferCard:
    gateway: str
    label: str
    limits: str


def offer_cards(offers: list[GatewayOffer], currency: str) -> list[OfferCard]:
    return [OfferCard(o.gateway, str(o.label), limits_text(o, currency)) for o in offers]


@dataclass(frozen=True)
class TopupRow:
    id: int
    created_at: datetime
    gateway: str
    gateway_label: str
    amount: str
    state: str
    reference: str
    continue_url: str | None
    has_proof: bool

    @property
    def state_label(self) -> str:
        return state_label(self.state)


def topup_row(topup: Topup) -> TopupRow:
    resumable = topup.state == PENDING and topup.gateway in (STRIPE, MIDTRANS)
    return TopupRow(
        id=topup.id,
        created_at=topup.created_at,
        gateway=topup.gateway,
        gateway_label=gateway_label(topup.gateway),
        amount=shown_amount(topup.amount, topup.currency),
        state=topup.state,
        reference=topup.reference or topup.payment_method or "",
        continue_url=topup.checkout_url if resumable and topup.checkout_url else None,
        has_proof=topup.proof is not None,
    )


def recent_topups() -> tuple[list[TopupRow], int]:
    """The customer's newest top-ups for the funds page, and how many there are in all."""
    owner = customer()
    total = count_topups(owner)
    rows = (
        [topup_row(t) for t in topup_history(owner, offset=0, limit=RECENT_TOPUPS)] if total else []
    )
    return rows, total


def own_topup(topup_id: int | None) -> Topup | None:
    """The signed-in customer's top-up with this id; None for anyone else's."""
    if topup_id is None:
        return None
    topup = find_topup(topup_id)
    if (
        topup is None
        or topup.tenant_id != g.tenant.id
        or topup.customer_id is None
        or topup.customer_id != current_user.id
    ):
        return None
    return topup


@dataclass(frozen=True)
class TopupBanner:
    """What the customer is told on coming back from paying."""

    id: int
    state: str
    message: str
    waiting: bool  # a gateway payment still being confirmed: the page asks again


def topup_banner(topup: Topup) -> TopupBanner:
    amount = shown_amount(topup.amount, topup.currency)
    if topup.state == PENDING:
        if topup.gateway == MANUAL:
            message = _(
                "Sent for review: your transfer of %(amount)s is added to your balance once "
                "the panel's staff confirm it.",
                amount=amount,
            )
            return TopupBanner(topup.id, topup.state, message, waiting=False)
        message = _("Waiting for the payment of %(amount)s to be confirmed\u2026", amount=amount)
        return TopupBanner(topup.id, topup.state, message, waiting=True)
    if topup.state == "paid":
        message = _("Payment received: +%(amount)s added to your balance.", amount=amount)
    elif topup.state == "failed":
        message = _("The payment of %(amount)s failed. Nothing was charged.", amount=amount)
        if topup.note:
            message = f"{message} {topup.note}"
    elif topup.state == "expired":
        message = _("The payment of %(amount)s expired before it was made.", amount=amount)
    elif topup.state == "refunded":
        message = _("The payment of %(amount)s was refunded.", amount=amount)
    else:
        message = _("The payment of %(amount)s is disputed.", amount=amount)
    return TopupBanner(topup.id, topup.state, message, waiting=False)


def requested_banner() -> TopupBanner | None:
    """The banner for `?topup=<id>`, when that top-up is the customer's own."""
    topup = own_topup(int_arg("topup"))
    return topup_banner(topup) if topup is not None else None


def find_offer(offers: list[GatewayOffer], gateway: str | None) -> GatewayOffer | None:
    return next((o for o in offers if o.gateway == gateway), None)


def typed_amount(text: str | None, currency: str) -> Decimal:
    """The typed amount as an exact Decimal; the service checks it against the gateway."""
    return parse_amount((text or "").strip(), currency)


# --- the customer's top-ups ------------------------------------------------------------------


@bp.get("/funds/topups")
@login_required
def topups():
    """Every top-up the customer made, newest first."""
    owner = customer()
    page = page_of(count_topups(owner), TOPUPS_PER_PAGE)
    rows = [topup_row(t) for t in topup_history(owner, offset=page.offset, limit=page.size)]
    return render_themed("storefront/topups.html", rows=rows, page=page, page_url=page_url)


@bp.get("/funds/topups/<int:topup_id>.json")
@login_required
def topup_status(topup_id: int):
    """A top-up's state and the balance, for the page waiting on a payment."""
    topup = own_topup(topup_id)
    if topup is None:
        return jsonify(error="not found"), 404
    tenant = g.tenant
    response = jsonify(
        id=topup.id,
        state=topup.state,
        label=state_label(topup.state),
        balance=format_amount(customer_balance(tenant, customer()), tenant.currency),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def image_response(data: bytes):
    """A stored, re-encoded PNG, never sniffed as anything else."""
    response = make_response(data)
    response.mimetype = "image/png"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/funds/topups/<int:topup_id>/proof")
@login_required
def topup_proof(topup_id: int):
    """The proof of transfer the customer uploaded (as stored: re-encoded)."""
    topup = own_topup(topup_id)
    if topup is None or topup.proof is None:
        abort(404)
    return image_response(topup.proof)


# --- manual transfer -------------------------------------------------------------------------


def manual_offer() -> GatewayOffer | None:
    return find_offer(offered_gateways(g.tenant.id, g.tenant.currency), MANUAL)


def render_manual(
    form: ManualTopupForm, offer: GatewayOffer, status: int = 200, *, proof_lost: bool = False
):
    currency = g.tenant.currency
    account = offer.account
    return (
        render_themed(
            "storefront/funds_manual.html",
            form=form,
            currency=currency,
            limits=limits_text(offer, currency),
            instructions=(account.instructions or "").strip(),
            bank_accounts=(account.bank_accounts or "").strip(),
            has_qris=bool(account.qris_image),
            max_proof_mib=MAX_PROOF_BYTES // (1024 * 1024),
            proof_lost=proof_lost,
        ),
        status,
    )


@bp.get("/funds/manual")
@login_required
def manual_topup():
    """Where to transfer to, and the form to tell the panel it was done."""
    offer = manual_offer()
    if offer is None:
        flash(_("This panel does not take manual transfers."), "error")
        return redirect(url_for("storefront.funds"))
    form = ManualTopupForm(formdata=None, amount=request.args.get("amount", "")[:40])
    return render_manual(form, offer)


def uploaded_proof(form: ManualTopupForm) -> bytes | None:
    """The proof image's bytes, read no further than the limit; None when none was chosen."""
    upload = request.files.get("proof")
    if upload is None or not upload.filename:
        return None
    data = upload.stream.read(MAX_PROOF_BYTES + 1)
    if len(data) > MAX_PROOF_BYTES:
        raise ValidationError(
            _("The image is larger than %(mib)s MiB", mib=MAX_PROOF_BYTES // (1024 * 1024)),
            "proof",
        )
    return data or None


@bp.post("/funds/manual")
@login_required
def submit_manual():
    """Record the customer's transfer as a pending top-up for the staff to review."""
    offer = manual_offer()
    if offer is None:
        abort(404)
    form = ManualTopupForm()
    if not form.validate_on_submit():
        return render_manual(form, offer, 400)
    currency = g.tenant.currency
    problems = []
    amount = proof = None
    try:
        amount = typed_amount(form.amount.data, currency)
    except ValidationError as error:
        problems.append(error)
    try:
        proof = uploaded_proof(form)
    except ValidationError as error:
        problems.append(error)
    if not problems:
        try:
            topup = submit_manual_topup(
                customer(), amount, (form.reference.data or "").strip(), proof
            )
        except ValidationError as error:
            db.session.rollback()
            problems.append(error)
    if problems:
        for error in problems:
            attach_error(form, error)
        # A browser never re-sends a file: say so when a good image has to be chosen again.
        lost = proof is not None and not form.proof.errors
        return render_manual(form, offer, 400, proof_lost=lost)
    return redirect(url_for("storefront.funds", topup=topup.id), code=303)


@bp.get("/funds/manual/qris.png")
@login_required
def manual_qris():
    """The panel's QRIS code for manual transfers."""
    account = gateway_account(g.tenant.id, MANUAL)
    if account is None or not account.enabled or not account.qris_image:
        abort(404)
    return image_response(account.qris_image)
