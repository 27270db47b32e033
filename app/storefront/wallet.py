"""The customer's wallet: the balance, adding funds through the panel's gateways, the latest
top-ups and every movement on the wallet, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.accounts.web import attach_error
from app.errors import ValidationError
from app.extensions import db
from app.ledger.history import (
    WalletLine,
    count_wallet_lines,
    customer_balance,
    customer_wallet,
    wallet_history,
)
from app.ledger.models import ADJUSTMENT, CLAWBACK, ORDER_CHARGE, PARTIAL_REFUND, REFUND, TOPUP
from app.money import format_amount
from app.paging import page_of, page_url
from app.payments import (
    MANUAL,
    GatewayUnavailable,
    check_topup_amount,
    offered_gateways,
    start_topup,
)
from app.storefront import bp
from app.storefront.topups import (
    TopupForm,
    find_offer,
    offer_cards,
    recent_topups,
    requested_banner,
    typed_amount,
)
from tenants.web import render_themed

LINES_PER_PAGE = 25


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    description: str
    order_id: int | None
    amount: str  # signed: "+10.00000", "-0.13000"
    credit: bool
    balance_after: str


def describe(line: WalletLine) -> str:
    """What the movement was, in the customer's words."""
    if line.kind == TOPUP:
        return _("Top-up")
    if line.kind == ORDER_CHARGE:
        return _("Order #%(id)s", id=line.order_id)
    if line.kind == REFUND:
        return _("Refund of order #%(id)s", id=line.order_id)
    if line.kind == PARTIAL_REFUND:
        return _("Partial refund of order #%(id)s", id=line.order_id)
    if line.kind == ADJUSTMENT:
        return _("Adjustment: %(reason)s", reason=line.memo)
    if line.kind == CLAWBACK:
        return _("Payment reversed: %(reason)s", reason=line.memo)
    return line.kind


def signed(amount, currency: str) -> str:
    shown = format_amount(abs(amount), currency)
    return f"+{shown}" if amount > 0 else f"\u2212{shown}"


def render_funds(form: TopupForm | None = None, status: int = 200):
    """The funds page, with the add-funds form as typed (and its errors) when there is one."""
    tenant = g.tenant
    user = current_user._get_current_object()
    wallet = customer_wallet(tenant, user)
    page = page_of(count_wallet_lines(wallet), LINES_PER_PAGE)
    lines = wallet_history(wallet, offset=page.offset, limit=page.size)
    rows = [
        HistoryRow(
            at=line.at,
            description=describe(line),
            order_id=line.order_id,
            amount=signed(line.amount, tenant.currency),
            credit=line.amount > 0,
            balance_after=format_amount(line.balance_after, tenant.currency),
        )
        for line in lines
    ]
    offers = offered_gateways(tenant.id, tenant.currency)
    if form is None:
        form = TopupForm(formdata=None)
    if not form.gateway.data and offers:
        form.gateway.data = offers[0].gateway
    topups, topup_count = recent_topups()
    return (
        render_themed(
            "storefront/funds.html",
            balance=format_amount(customer_balance(tenant, user), tenant.currency),
            currency=tenant.currency,
            rows=rows,
            page=page,
            page_url=page_url,
            form=form,
            offers=offer_cards(offers, tenant.currency),
            topups=topups,
            topup_count=topup_count,
            banner=requested_banner() if request.method == "GET" else None,
        ),
        status,
    )


@bp.get("/funds")
@login_required
def funds():
    """The wallet: its balance, adding funds, the latest top-ups and the history."""
    return render_funds()


@bp.post("/funds/topup")
@login_required
def start_payment():
    """Start a top-up through the chosen gateway and send the browser there to pay."""
    tenant = g.tenant
    form = TopupForm()
    if not form.validate_on_submit():
        return render_funds(form, 400)
    offer = find_offer(offered_gateways(tenant.id, tenant.currency), form.gateway.data)
    if offer is None:
        form.gateway.errors = [_("Choose one of the payment methods.")]
        return render_funds(form, 400)
    try:
        amount = typed_amount(form.amount.data, tenant.currency)
        if offer.gateway == MANUAL:
            check_topup_amount(current_user._get_current_object(), MANUAL, amount)
            # The transfer is made outside: its page says where to, then takes the proof.
            return redirect(url_for("storefront.manual_topup", amount=f"{amount:f}"), code=303)
        topup = start_topup(
            current_user._get_current_object(), offer.gateway, amount, site_url=request.host_url
        )
    except ValidationError as error:
        db.session.rollback()
        attach_error(form, error)
        return render_funds(form, 400)
    except GatewayUnavailable:
        db.session.rollback()
        form.form_errors.append(_("The payment gateway did not answer. Try again in a minute."))
        return render_funds(form, 503)
    return redirect(topup.checkout_url, code=303)
