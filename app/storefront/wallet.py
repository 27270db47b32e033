"""The customer's wallet: the balance and every movement on it, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g
from flask_babel import gettext as _
from flask_login import current_user, login_required

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
from app.storefront import bp
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


@bp.get("/funds")
@login_required
def funds():
    """The wallet: its balance and its history."""
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
    return render_themed(
        "storefront/funds.html",
        balance=format_amount(customer_balance(tenant, user), tenant.currency),
        currency=tenant.currency,
        rows=rows,
        page=page,
        page_url=page_url,
    )
