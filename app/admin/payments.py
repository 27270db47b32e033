"""Back-office pages for money coming in: the panel's gateway settings (its own Stripe,
Midtrans and manual transfer), the review of customers' top-ups with the approval or rejection
of manual transfers, and the reseller's wholesale wallet, topped up through the platform's
gateways."""

from __future__ import annotations

from decimal import Decimal

from flask import (
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import CombinedMultiDict

from app.accounts.models import CUSTOMER, User
from app.accounts.web import attach_error
from app.admin import bp
from app.admin.orders import MONEY_ROLES, money
from app.admin.payment_forms import (
    PRODUCTION,
    SETTINGS_FORMS,
    ApproveTopupForm,
    RejectTopupForm,
    WholesaleTopupForm,
    settings_form,
    typed_amount,
    typed_form,
)
from app.admin.routes import staff_required
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.ledger import LedgerAccount, platform_currency
from app.ledger.models import CUSTOMER_WALLET
from app.orders.alerts import wholesale_balance
from app.paging import as_id, int_arg, page_of
from app.panels.models import Tenant
from app.payments import (
    GATEWAYS,
    MANUAL,
    MAX_PROOF_BYTES,
    MIDTRANS,
    PENDING,
    STRIPE,
    TOPUP_STATES,
    GatewayUnavailable,
    Topup,
    approve_manual_topup,
    count_topups,
    count_topups_for_review,
    find_topup,
    gateway_accounts,
    masked,
    offers_for,
    reject_manual_topup,
    set_enabled,
    set_limits,
    set_manual,
    set_midtrans,
    set_stripe,
    start_topup,
    topup_history,
    topups_for_review,
)
from app.payments.settings import DEFAULT_LIMITS, state_label
from app.payments.stripe_gateway import EVENTS as STRIPE_EVENTS

PAGE_SIZE = 50
HISTORY_SIZE = 20
NEGATIVE_SHOWN = 20
REFRESH_SECONDS = 3

GATEWAY_NAMES = {
    STRIPE: _l("Stripe"),
    MIDTRANS: _l("Midtrans"),
    MANUAL: _l("Manual transfer"),
}
PROOF_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
    "Cache-Control": "private, no-store",
}


@bp.context_processor
def payment_helpers() -> dict:
    return {
        "topup_state_label": state_label,
        "topup_states": TOPUP_STATES,
        "gateway_names": GATEWAY_NAMES,
        "pending_manual_topups": pending_manual_topups,
    }


def pending_manual_topups() -> int:
    """Manual transfers waiting for staff, counted once per request, for the nav badge."""
    if not current_user.is_authenticated or g.get("tenant") is None:
        return 0
    if "pending_manual_topups" not in g:
        g.pending_manual_topups = count_topups_for_review(
            g.tenant.id, state=PENDING, gateway=MANUAL
        )
    return g.pending_manual_topups


def actor() -> User:
    return current_user._get_current_object()


# --- gateway settings ------------------------------------------------------------------------


def render_payments(posted: str | None = None, posted_form=None):
    accounts = gateway_accounts(g.tenant.id)
    forms = {
        gateway: posted_form if gateway == posted else settings_form(gateway, accounts)
        for gateway in GATEWAYS
    }
    host = request.host_url
    return render_template(
        "admin/payments.html",
        forms=forms,
        accounts=accounts,
        secrets={
            STRIPE: masked(accounts[STRIPE].secret_key) if STRIPE in accounts else "",
            "webhook": masked(accounts[STRIPE].webhook_secret) if STRIPE in accounts else "",
            MIDTRANS: masked(accounts[MIDTRANS].secret_key) if MIDTRANS in accounts else "",
        },
        stripe_webhook_url=f"{host}webhooks/stripe",
        stripe_events=STRIPE_EVENTS,
        midtrans_notification_url=f"{host}webhooks/midtrans",
        midtrans_offered=g.tenant.currency == "IDR",
        max_qris_mib=MAX_PROOF_BYTES // (1024 * 1024),
        # What a blank limit means, shown as the placeholder.
        default_limits=DEFAULT_LIMITS.get(g.tenant.currency, (None, None)),
    )


@bp.get("/payments")
@staff_required(*MONEY_ROLES)
def payments():
    """The panel's payment gateways: one card each."""
    return render_payments()


@bp.post("/payments/<gateway>")
@staff_required(*MONEY_ROLES)
def save_payments(gateway: str):
    """Save one gateway's settings, limits and on/off switch, all or nothing."""
    if gateway not in SETTINGS_FORMS:
        abort(404)
    form = settings_form(gateway, {}, formdata=CombinedMultiDict((request.files, request.form)))
    if form.validate_on_submit():
        currency = g.tenant.currency
        min_ok, low = typed_amount(form, "min_amount", currency)
        max_ok, high = typed_amount(form, "max_amount", currency)
        if min_ok and max_ok:
            try:
                save_gateway(gateway, form)
                set_limits(g.tenant.id, gateway, min_amount=low, max_amount=high, actor=actor())
                set_enabled(g.tenant.id, gateway, form.enabled.data, actor=actor())
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                db.session.commit()
                flash(_("Saved"), "success")
                return redirect(url_for("admin.payments", _anchor=gateway))
    return render_payments(gateway, form)


def save_gateway(gateway: str, form) -> None:
    tenant_id = g.tenant.id
    if gateway == STRIPE:
        set_stripe(
            tenant_id,
            secret_key=form.secret_key.data,
            webhook_secret=form.webhook_secret.data,
            api_base=form.api_base.data,
            actor=actor(),
        )
    elif gateway == MIDTRANS:
        set_midtrans(
            tenant_id,
            server_key=form.server_key.data,
            client_key=form.client_key.data,
            production=form.environment.data == PRODUCTION,
            api_base=form.api_base.data,
            actor=actor(),
        )
    else:
        upload = form.qris_image.data
        image = upload.read() if upload and getattr(upload, "filename", "") else None
        set_manual(
            tenant_id,
            instructions=form.instructions.data,
            bank_accounts=form.bank_accounts.data,
            qris_image=image or None,
            remove_qris=form.remove_qris.data,
            actor=actor(),
        )


@bp.get("/payments/qris.png")
@staff_required(*MONEY_ROLES)
def qris_image():
    """The QRIS image customers see on the manual transfer page (stored re-encoded)."""
    account = gateway_accounts(g.tenant.id).get(MANUAL)
    if account is None or not account.qris_image:
        abort(404)
    return image_response(account.qris_image)


def image_response(data: bytes):
    response = make_response(data)
    response.headers["Content-Type"] = "image/png"
    response.headers.update(PROOF_HEADERS)
    return response


# --- customers' top-ups ----------------------------------------------------------------------


@bp.get("/topups")
@staff_required()
def topups():
    """Customers' top-ups, pending ones first by default, filtered by state and gateway."""
    state = request.args.get("state", PENDING)
    state = state if state in TOPUP_STATES else None  # "any" or junk: every state
    gateway = request.args.get("gateway", "")
    gateway = gateway if gateway in GATEWAYS else None
    tenant_id = g.tenant.id
    total = count_topups_for_review(tenant_id, state=state, gateway=gateway)
    page = page_of(total, PAGE_SIZE)
    rows = topups_for_review(
        tenant_id, state=state, gateway=gateway, offset=page.offset, limit=page.size
    )
    return render_template(
        "admin/topups.html",
        rows=rows,
        page=page,
        emails=customer_emails(t.customer_id for t in rows),
        filters={"state": state or "any", "gateway": gateway or ""},
        negative=negative_wallets(tenant_id),
    )


def customer_emails(ids) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.session.execute(
        select(User.id, User.email).where(User.tenant_id == g.tenant.id, User.id.in_(wanted))
    )
    return dict(rows.all())


def negative_wallets(tenant_id: int) -> list[tuple[User, Decimal]]:
    """Customers whose wallet is below zero: only a reversed payment can do that."""
    rows = db.session.execute(
        select(User, LedgerAccount.balance)
        .join(LedgerAccount, LedgerAccount.customer_id == User.id)
        .where(
            LedgerAccount.kind == CUSTOMER_WALLET,
            LedgerAccount.tenant_id == tenant_id,
            User.tenant_id == tenant_id,
            User.kind == CUSTOMER,
            LedgerAccount.balance < Decimal(0),
        )
        .order_by(LedgerAccount.balance)
        .limit(NEGATIVE_SHOWN)
    ).all()
    return [(user, amount) for user, amount in rows]


def load_customer_topup(topup_id: int) -> Topup:
    """One of this panel's customers' top-ups, or 404 (another panel's, or a wholesale one)."""
    topup = find_topup(topup_id) if as_id(topup_id) else None
    # An explicit check as well: the lookup may answer from the identity map.
    if topup is None or topup.tenant_id != g.tenant.id or topup.is_wholesale:
        abort(404)
    return topup


def approve_form_for(topup: Topup, formdata=None) -> ApproveTopupForm:
    form = ApproveTopupForm(formdata=formdata, prefix="approve")
    if formdata is None:
        claimed = topup.claimed_amount if topup.claimed_amount is not None else topup.amount
        form.amount.data = typed_form(claimed)
    return form


def render_topup(topup: Topup, approve_form=None, reject_form=None):
    customer = db.session.get(User, topup.customer_id)
    if customer is None or customer.tenant_id != g.tenant.id:
        abort(404)
    return render_template(
        "admin/topup.html",
        topup=topup,
        customer=customer,
        reviewable=topup.gateway == MANUAL and topup.state == PENDING,
        approve_form=approve_form or approve_form_for(topup),
        reject_form=reject_form or RejectTopupForm(prefix="reject"),
    )


@bp.get("/topups/<int:topup_id>")
@staff_required()
def topup_detail(topup_id: int):
    """One customer top-up: its details, the transfer proof and, pending, the review."""
    return render_topup(load_customer_topup(topup_id))


@bp.get("/topups/<int:topup_id>/proof")
@staff_required()
def topup_proof(topup_id: int):
    """The proof of transfer the customer uploaded (re-encoded PNG)."""
    topup = load_customer_topup(topup_id)
    if not topup.proof:
        abort(404)
    return image_response(topup.proof)


@bp.post("/topups/<int:topup_id>/approve")
@staff_required(*MONEY_ROLES)
def approve_topup(topup_id: int):
    """Credit a manual transfer, once, for the amount that arrived."""
    topup = load_customer_topup(topup_id)
    form = approve_form_for(topup, request.form)
    if form.validate_on_submit():
        ok, amount = typed_amount(form, "amount", topup.currency)
        if ok and amount is not None:
            try:
                approved, credited = approve_manual_topup(topup.id, actor=actor(), amount=amount)
            except NotFound:
                db.session.rollback()
                abort(404)
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                if credited:
                    flash(
                        _(
                            "Approved: %(amount)s credited to %(email)s.",
                            amount=money(approved.amount, approved.currency),
                            email=customer_emails([approved.customer_id]).get(
                                approved.customer_id, ""
                            ),
                        ),
                        "success",
                    )
                else:
                    flash(_("This top-up was already approved"), "info")
                return redirect(url_for("admin.topups"))
    return render_topup(topup, approve_form=form)


@bp.post("/topups/<int:topup_id>/reject")
@staff_required(*MONEY_ROLES)
def reject_topup(topup_id: int):
    """Refuse a manual transfer with a reason the customer reads; nothing is credited."""
    topup = load_customer_topup(topup_id)
    form = RejectTopupForm(request.form, prefix="reject")
    if form.validate_on_submit():
        try:
            reject_manual_topup(topup.id, actor=actor(), reason=form.reason.data.strip())
        except NotFound:
            db.session.rollback()
            abort(404)
        except ValidationError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            flash(_("The top-up was rejected."), "success")
            return redirect(url_for("admin.topups"))
    return render_topup(topup, reject_form=form)


# --- the wholesale wallet --------------------------------------------------------------------


def wholesale_offers() -> list:
    return offers_for(db.session.get(Tenant, g.tenant.id))


def wholesale_form(offers, formdata=None) -> WholesaleTopupForm:
    form = WholesaleTopupForm(formdata=formdata, prefix="topup")
    form.gateway.choices = [(o.gateway, o.label) for o in offers]
    if formdata is None and offers:
        form.gateway.data = offers[0].gateway
    return form


def returning_topup() -> Topup | None:
    """The wholesale top-up named in `?topup=` after the gateway sent the browser back: only
    this panel's own."""
    topup_id = int_arg("topup")
    topup = find_topup(topup_id) if topup_id else None
    if topup is None or topup.tenant_id != g.tenant.id or not topup.is_wholesale:
        return None
    return topup


def render_wallet(form=None, offers=None):
    tenant = db.session.get(Tenant, g.tenant.id)
    offers = wholesale_offers() if offers is None else offers
    returned = returning_topup()
    total = count_topups(tenant)
    page = page_of(total, HISTORY_SIZE)
    body = render_template(
        "admin/wallet.html",
        balance=wholesale_balance(tenant.id),
        currency=platform_currency(),
        offers=offers,
        form=form or wholesale_form(offers),
        returned=returned,
        refresh=REFRESH_SECONDS if returned is not None and returned.state == PENDING else None,
        history=topup_history(tenant, offset=page.offset, limit=page.size),
        page=page,
    )
    response = make_response(body)
    if returned is not None and returned.state == PENDING:
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


@bp.get("/wallet")
@staff_required()
def wallet():
    """The wholesale wallet: balance, orders waiting for it, a top-up and past top-ups."""
    return render_wallet()


@bp.post("/wallet/topup")
@staff_required(*MONEY_ROLES)
def wallet_topup():
    """Start a wholesale top-up through the platform's gateway and send the browser there."""
    offers = wholesale_offers()
    form = wholesale_form(offers, request.form)
    if form.validate_on_submit():
        if form.gateway.data not in {o.gateway for o in offers}:
            form.gateway.errors.append(_("Choose a way to pay from the list."))
        else:
            ok, amount = typed_amount(form, "amount", platform_currency())
            if ok and amount is not None:
                tenant = db.session.get(Tenant, g.tenant.id)
                try:
                    topup = start_topup(
                        tenant, form.gateway.data, amount, site_url=request.host_url
                    )
                except ValidationError as error:
                    db.session.rollback()
                    attach_error(form, error)
                except GatewayUnavailable:
                    db.session.rollback()
                    form.form_errors.append(_("The payment gateway did not answer; try again"))
                else:
                    if topup.checkout_url:
                        return redirect(topup.checkout_url, 303)
                    current_app.logger.error("Wholesale top-up %s has no checkout URL", topup.id)
                    form.form_errors.append(_("The payment gateway did not answer; try again"))
    return render_wallet(form, offers)
