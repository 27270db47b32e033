"""Back-office pages for a panel's orders: the list (search, filters, pages), one order with
its price snapshot and history, the owner's or admin's cancel-and-refund of an order not yet
sent upstream, and refills and cancels of orders that are upstream. Also the helpers every
back-office list shares, and the on-hold notice the layout shows on every page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_, select

from app.accounts.models import ADMIN, CUSTOMER, OWNER, User
from app.actions import committed
from app.admin import bp
from app.admin.customer_forms import CancelOrderForm
from app.admin.routes import staff_required
from app.audit.models import AuditEntry
from app.catalog.models import Service
from app.errors import NotFound
from app.extensions import db
from app.ledger import JournalEntry, OrderNotCharged, order_totals
from app.ledger.models import ORDER_CHARGE, PARTIAL_REFUND, REFUND, WHOLESALE_CHARGE
from app.money import convert_at, format_amount, format_rate
from app.orders.alerts import OnHoldSummary, on_hold_summary
from app.orders.models import (
    FAILED,
    ON_HOLD,
    PIPELINE_AUDIT_LABELS,
    STATUS_LABELS,
    STATUSES,
    SUBMITTING,
    UNKNOWN,
    Order,
)
from app.orders.services import OrderNotCancelable, cancel_unsent_order
from app.orders.upstream_requests import (
    RequestRefused,
    order_actions,
    request_cancel,
    request_refill,
)
from app.paging import Page, as_id, page_of, url_with
from app.pricing.tenant_models import CatalogOverride

PAGE_SIZE = 50
# Staff who may move money: refunds, adjustments, discounts. Support staff look and answer.
MONEY_ROLES = (OWNER, ADMIN)

# The states customers never see by name: what each means for the reseller.
ORDER_STATUS_HINTS = {
    SUBMITTING: _l("Being sent to the provider now."),
    ON_HOLD: _l(
        "Waiting for your wholesale wallet. It goes on automatically after you top up; "
        "the customer sees Pending."
    ),
    UNKNOWN: _l(
        "The provider's answer was lost; we are finding out whether it took the order. "
        "It is never sent twice. The customer sees In progress."
    ),
    FAILED: _l("Rejected by every provider and refunded in full. The customer sees Canceled."),
}
ENTRY_LABELS = {
    ORDER_CHARGE: _l("Customer charged"),
    WHOLESALE_CHARGE: _l("Wholesale charged"),
    REFUND: _l("Refund"),
    PARTIAL_REFUND: _l("Partial refund"),
}
AUDIT_LABELS = {
    "order.cancel": _l("Canceled and refunded"),
    **PIPELINE_AUDIT_LABELS,
}


# --- helpers every back-office list shares ---------------------------------------------------


@bp.context_processor
def back_office_helpers() -> dict:
    return {
        "url_with": url_with,
        "local_time": local_time,
        "money": money,
        "plain": plain,
        "order_status_labels": STATUS_LABELS,
        "order_status_hints": ORDER_STATUS_HINTS,
        "held_orders": held_orders,
        "may_move_money": may_move_money,
    }


def local_time(moment: datetime | None) -> str:
    """A stored UTC time in the panel's timezone."""
    return "—" if moment is None else format_datetime(moment, "yyyy-MM-dd HH:mm")


def money(amount: Decimal | None, currency: str) -> str:
    return "—" if amount is None else f"{format_amount(amount, currency)} {currency}"


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 12.5, 16250."""
    return f"{value.normalize():f}"


def may_move_money() -> bool:
    return current_user.is_authenticated and current_user.role in MONEY_ROLES


def held_orders() -> OnHoldSummary | None:
    """The panel's on-hold orders, looked up once per request, for signed-in staff only."""
    if not current_user.is_authenticated or g.get("tenant") is None:
        return None
    if "held_orders" not in g:
        g.held_orders = on_hold_summary(g.tenant.id)
    return g.held_orders


def tenant_zone() -> ZoneInfo:
    return ZoneInfo(g.tenant.timezone)


def start_of_day(day: date) -> datetime:
    """Midnight of `day` in the panel's timezone (an aware datetime; stored times are UTC)."""
    return datetime.combine(day, time.min, tzinfo=tenant_zone())


def service_names(service_ids) -> dict[int, str]:
    """The panel's names for these services: its own rename, else the platform's."""
    ids = sorted(set(service_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(Service.id, func.coalesce(CatalogOverride.name, Service.name))
        .outerjoin(CatalogOverride, CatalogOverride.service_id == Service.id)
        .where(Service.id.in_(ids))
    ).all()
    return dict(rows)


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


# --- the list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    q: str
    status: str | None
    service_id: int | None
    customer_id: int | None
    since: date | None
    until: date | None

    @classmethod
    def from_request(cls) -> OrderFilters:
        status = request.args.get("status", "")
        return cls(
            q=request.args.get("q", "").strip()[:200],
            status=status if status in STATUSES else None,
            service_id=as_id(request.args.get("service", "").strip()),
            customer_id=as_id(request.args.get("customer", "").strip()),
            since=parse_day(request.args.get("from", "")),
            until=parse_day(request.args.get("to", "")),
        )

    def conditions(self, tenant_id: int) -> list:
        found = [Order.tenant_id == tenant_id]
        if self.q:
            matches = [
                Order.link.icontains(self.q, autoescape=True),
                Order.customer_id.in_(
                    select(User.id).where(
                        User.tenant_id == tenant_id,
                        User.kind == CUSTOMER,
                        User.email.icontains(self.q, autoescape=True),
                    )
                ),
            ]
            number = as_id(self.q.lstrip("#"))
            if number:
                matches.append(Order.id == number)
            found.append(or_(*matches))
        if self.status:
            found.append(Order.status == self.status)
        if self.service_id:
            found.append(Order.service_id == self.service_id)
        if self.customer_id:
            found.append(Order.customer_id == self.customer_id)
        if self.since:
            found.append(Order.created_at >= start_of_day(self.since))
        if self.until:
            found.append(Order.created_at < start_of_day(self.until + timedelta(days=1)))
        return found

    @property
    def active(self) -> bool:
        return any((self.q, self.status, self.service_id, self.customer_id, self.since, self.until))


def orders_page(conditions: list) -> tuple[list[tuple[Order, str]], Page]:
    """One page of orders, newest first, each with its customer's email: two queries."""
    total = db.session.scalar(select(func.count(Order.id)).where(*conditions))
    page = page_of(total, PAGE_SIZE)
    rows = db.session.execute(
        select(Order, User.email)
        .join(User, User.id == Order.customer_id)
        .where(*conditions)
        .order_by(Order.id.desc())
        .offset(page.offset)
        .limit(page.size)
    ).all()
    return [(order, email) for order, email in rows], page


@bp.get("/orders")
@staff_required()
def orders():
    """Every order of the panel, searched and filtered, a page at a time."""
    tenant_id = g.tenant.id
    filters = OrderFilters.from_request()
    rows, page = orders_page(filters.conditions(tenant_id))
    totals = dict(
        db.session.execute(
            select(Order.status, func.count(Order.id))
            .where(Order.tenant_id == tenant_id)
            .group_by(Order.status)
        ).all()
    )
    ordered_services = db.session.scalars(
        select(Order.service_id).where(Order.tenant_id == tenant_id).distinct()
    ).all()
    names = service_names([*ordered_services, *(order.service_id for order, _email in rows)])
    customer = db.session.get(User, filters.customer_id) if filters.customer_id else None
    if customer is not None and (customer.tenant_id != tenant_id or customer.kind != CUSTOMER):
        customer = None
    return render_template(
        "admin/orders.html",
        rows=rows,
        page=page,
        filters=filters,
        totals=totals,
        services=sorted(names.items(), key=lambda item: item[1].lower()),
        service_names=names,
        filtered_customer=customer,
        bad_dates=bool(
            (request.args.get("from", "").strip() and filters.since is None)
            or (request.args.get("to", "").strip() and filters.until is None)
        ),
    )


# --- one order -------------------------------------------------------------------------------


def load_order(order_id: int) -> Order:
    """The panel's order, or 404: another panel's order id does not exist here."""
    order = db.session.get(Order, order_id) if as_id(order_id) else None
    # An explicit check: `get` may answer from the identity map, without the scoped SQL.
    if order is None or order.tenant_id != g.tenant.id:
        abort(404)
    return order


@dataclass(frozen=True)
class Margin:
    wholesale_in_tenant: Decimal  # the snapshotted wholesale at the snapshotted FX rate
    amount: Decimal  # charge - wholesale, tenant currency
    percent: Decimal | None  # of the charge


def margin_of(order: Order) -> Margin:
    wholesale = convert_at(order.wholesale_charge, order.fx_rate, order.currency)
    amount = order.charge - wholesale
    percent = (amount * 100 / order.charge).quantize(Decimal("0.1")) if order.charge else None
    return Margin(wholesale, amount, percent)


@bp.get("/orders/<int:order_id>")
@staff_required()
def order_detail(order_id: int):
    """One order: what it is, its price snapshot, what the ledger moved, and its history."""
    return render_order(load_order(order_id))


def render_order(order: Order):
    customer = db.session.get(User, order.customer_id)
    try:
        totals = order_totals(order.id)
    except OrderNotCharged:
        totals = None
    entries = db.session.scalars(
        select(JournalEntry)
        .where(JournalEntry.order_id == order.id, JournalEntry.tenant_id == order.tenant_id)
        .order_by(JournalEntry.id)
    ).all()
    audits = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.tenant_id == order.tenant_id, AuditEntry.target == f"order:{order.id}")
        .order_by(AuditEntry.id)
    ).all()
    history = sorted(
        [
            HistoryLine(order.created_at, _("Placed"), customer.email if customer else ""),
            *(
                HistoryLine(e.created_at, str(ENTRY_LABELS.get(e.kind, e.kind)), e.actor)
                for e in entries
            ),
            *(
                HistoryLine(a.created_at, str(AUDIT_LABELS.get(a.action, a.action)), a.actor_label)
                for a in audits
            ),
        ],
        key=lambda line: line.at,
    )
    return render_template(
        "admin/order.html",
        order=order,
        customer=customer,
        service=db.session.get(Service, order.service_id),
        service_name=service_names([order.service_id]).get(order.service_id, ""),
        totals=totals,
        margin=margin_of(order),
        history=history,
        rate=format_rate,
        cancel_form=CancelOrderForm(),
        actions=order_actions(order),
    )


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    what: str
    by: str


@bp.post("/orders/<int:order_id>/cancel")
@staff_required(*MONEY_ROLES)
def cancel_order(order_id: int):
    """Cancel an order not yet sent upstream and refund it in full to the customer."""
    order = load_order(order_id)
    if not CancelOrderForm().validate_on_submit():
        return redirect(url_for("admin.order_detail", order_id=order.id))
    try:
        cancel_unsent_order(order.id, order.customer_id, actor=current_user._get_current_object())
    except OrderNotCancelable:
        db.session.rollback()
        flash(
            _(
                "Order #%(id)s has already been sent to the provider and can no longer be "
                "canceled here.",
                id=order_id,
            ),
            "error",
        )
    except NotFound:
        db.session.rollback()
        abort(404)
    else:
        db.session.commit()
        flash(
            _(
                "Order #%(id)s is canceled and %(amount)s is back on the customer's balance.",
                id=order_id,
                amount=money(order.charge, order.currency),
            ),
            "success",
        )
    return redirect(url_for("admin.order_detail", order_id=order_id))


# --- refills and cancels of orders that are upstream -----------------------------------------


@bp.post("/orders/<int:order_id>/refill")
@staff_required()
def refill_order(order_id: int):
    """Ask the provider for a refill of a completed order, within its refill window."""
    order = load_order(order_id)
    if CancelOrderForm().validate_on_submit():
        _upstream_request(
            order, request_refill, _("Refill of order #%(id)s requested.", id=order.id)
        )
    return redirect(url_for("admin.order_detail", order_id=order.id))


@bp.post("/orders/<int:order_id>/request-cancel")
@staff_required(*MONEY_ROLES)
def request_cancel_order(order_id: int):
    """Ask the provider to stop an order that has started; the status sync refunds what was
    not delivered once the provider confirms."""
    order = load_order(order_id)
    if CancelOrderForm().validate_on_submit():
        _upstream_request(
            order,
            request_cancel,
            _(
                "Cancel of order #%(id)s requested. What was not delivered is refunded once the "
                "provider confirms.",
                id=order.id,
            ),
        )
    return redirect(url_for("admin.order_detail", order_id=order.id))


def _upstream_request(order: Order, ask, done: str) -> None:
    actor = current_user._get_current_object()
    if committed(lambda: ask(order.id, actor=actor), RequestRefused) is not None:
        flash(done, "success")
