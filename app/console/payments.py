"""The console's payments pages: the platform's own gateways, through which panels top up
their wholesale wallets, and every panel's wholesale top-ups with the gateway events that the
root domain received for them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from app.accounts.web import attach_error
from app.admin.payment_forms import PRODUCTION, settings_form, typed_amount
from app.console import bp
from app.errors import ValidationError
from app.extensions import db
from app.ledger import platform_currency
from app.paging import page_of
from app.panels.models import Tenant
from app.payments import (
    MIDTRANS,
    STRIPE,
    TOPUP_STATES,
    GatewayEvent,
    Topup,
    gateway_accounts,
    masked,
    set_enabled,
    set_limits,
    set_midtrans,
    set_stripe,
    state_label,
)
from app.payments.models import PLATFORM_OWNER
from app.payments.settings import DEFAULT_LIMITS
from app.payments.stripe_gateway import EVENTS as STRIPE_EVENTS
from tenants.context import across_tenants

# The platform takes no manual transfers: a panel's wholesale top-up is paid by gateway only.
PLATFORM_GATEWAYS = (STRIPE, MIDTRANS)
PAGE_SIZE = 50
EVENTS_SHOWN = 50


def platform_form(gateway: str, accounts: dict, formdata=None):
    """A platform gateway's settings form (the back office's), switched on for panels."""
    form = settings_form(gateway, accounts, formdata=formdata)
    form.enabled.label.text = _("Offer this to panels")
    return form


def render_payments(posted: str | None = None, posted_form=None):
    # The console's requests run in the platform's scope: these are the platform's accounts.
    accounts = gateway_accounts(None)
    forms = {
        gateway: posted_form if gateway == posted else platform_form(gateway, accounts)
        for gateway in PLATFORM_GATEWAYS
    }
    currency = platform_currency()
    stored = {gateway: accounts.get(gateway) for gateway in PLATFORM_GATEWAYS}
    return render_template(
        "console/payments.html",
        forms=forms,
        accounts=stored,
        secrets={
            STRIPE: masked(stored[STRIPE].secret_key) if stored[STRIPE] else "",
            "webhook": masked(stored[STRIPE].webhook_secret) if stored[STRIPE] else "",
            MIDTRANS: masked(stored[MIDTRANS].secret_key) if stored[MIDTRANS] else "",
        },
        currency=currency,
        stripe_webhook_url=f"{request.host_url}webhooks/stripe",
        stripe_events=STRIPE_EVENTS,
        midtrans_notification_url=f"{request.host_url}webhooks/midtrans",
        midtrans_offered=currency == "IDR",
        default_limits=DEFAULT_LIMITS.get(currency, (None, None)),
    )


@bp.get("/payments")
@login_required
def payments():
    """The platform's own gateways for panels' wholesale top-ups: one card each."""
    return render_payments()


@bp.post("/payments/<gateway>")
@login_required
def save_payments(gateway: str):
    """Save one platform gateway's keys, limits and on/off switch, all or nothing."""
    if gateway not in PLATFORM_GATEWAYS:
        abort(404)
    form = platform_form(gateway, {}, formdata=request.form)
    if form.validate_on_submit() and save_platform_gateway(gateway, form):
        flash(_("Saved"), "success")
        return redirect(url_for("console.payments", _anchor=gateway))
    return render_payments(gateway, form)


def save_platform_gateway(gateway: str, form) -> bool:
    """Store the form's settings as the platform's; errors go on the form's fields."""
    currency = platform_currency()
    min_ok, low = typed_amount(form, "min_amount", currency)
    max_ok, high = typed_amount(form, "max_amount", currency)
    if not (min_ok and max_ok):
        return False
    operator = current_user._get_current_object()
    try:
        if gateway == STRIPE:
            set_stripe(
                None,
                secret_key=form.secret_key.data,
                webhook_secret=form.webhook_secret.data,
                api_base=form.api_base.data,
                actor=operator,
            )
        else:
            set_midtrans(
                None,
                server_key=form.server_key.data,
                client_key=form.client_key.data,
                production=form.environment.data == PRODUCTION,
                api_base=form.api_base.data,
                actor=operator,
            )
        set_limits(None, gateway, min_amount=low, max_amount=high, actor=operator)
        set_enabled(None, gateway, form.enabled.data, actor=operator)
    except ValidationError as error:
        db.session.rollback()
        attach_error(form, error)
        return False
    db.session.commit()
    return True


@bp.get("/topups")
@login_required
def topups():
    """Every panel's wholesale top-ups, newest first, and the latest platform webhooks."""
    state = request.args.get("state", "")
    state = state if state in TOPUP_STATES else ""
    slug = request.args.get("panel", "").strip().lower()
    # Customers' top-ups are the panels' business: only wholesale ones (no customer) show.
    query = (
        select(Topup, Tenant)
        .join(Tenant, Tenant.id == Topup.tenant_id)
        .where(Topup.customer_id.is_(None))
    )
    if state:
        query = query.where(Topup.state == state)
    if slug:
        query = query.where(Tenant.slug == slug)
    with across_tenants():
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        page = page_of(total, PAGE_SIZE)
        rows = db.session.execute(
            query.order_by(Topup.created_at.desc(), Topup.id.desc())
            .offset(page.offset)
            .limit(page.size)
        ).all()
        panels = db.session.execute(select(Tenant.slug, Tenant.name).order_by(Tenant.slug)).all()
        events = db.session.scalars(
            select(GatewayEvent)
            .where(GatewayEvent.receiver == PLATFORM_OWNER)
            .order_by(GatewayEvent.received_at.desc(), GatewayEvent.id.desc())
            .limit(EVENTS_SHOWN)
        ).all()
    return render_template(
        "console/topups.html",
        rows=rows,
        page=page,
        panels=panels,
        events=events,
        filters={"state": state, "panel": slug},
        topup_states=TOPUP_STATES,
        topup_state_label=state_label,
    )
