"""Back-office pages for a panel's customers: the list (search, pages, balances, order counts)
and one customer's profile, balance, wallet movements and orders, with the manual balance
adjustment, the personal discount and the customer group that owners and admins may set."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, func, or_, select

from app.accounts.models import CUSTOMER, User
from app.accounts.web import attach_error
from app.admin import bp
from app.admin.customer_forms import (
    CREDIT,
    DEBIT,
    BalanceAdjustmentForm,
    CustomerPricingForm,
)
from app.admin.orders import MONEY_ROLES, money, service_names
from app.admin.routes import staff_required
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.ledger import (
    IdempotencyConflict,
    InsufficientFunds,
    JournalEntry,
    LedgerAccount,
    Posting,
    adjust_customer,
)
from app.ledger.models import (
    ADJUSTMENT,
    CLAWBACK,
    CUSTOMER_WALLET,
    ORDER_CHARGE,
    PARTIAL_REFUND,
    REFUND,
    TOPUP,
)
from app.money import parse_amount
from app.money.amounts import parse_plain_decimal, places_of
from app.orders.models import Order
from app.paging import Page, as_id, page_of
from app.pricing.retail import GROUP, PERSONAL, customer_discount, set_customer_discount
from app.pricing.tenant_models import CustomerGroup, CustomerPricing

PAGE_SIZE = 50
RECENT_MOVEMENTS = 20
RECENT_ORDERS = 10
DISCOUNT_PLACES = 2
FORM_TOKEN = re.compile(r"[0-9a-f]{32}")

MOVEMENT_LABELS = {
    TOPUP: _l("Top-up"),
    ORDER_CHARGE: _l("Order"),
    REFUND: _l("Refund"),
    PARTIAL_REFUND: _l("Partial refund"),
    ADJUSTMENT: _l("Adjustment by staff"),
    CLAWBACK: _l("Payment reversed"),
}
DISCOUNT_SOURCES = {PERSONAL: _l("personal"), GROUP: _l("from the group")}


# --- the list --------------------------------------------------------------------------------


def customers_page(tenant_id: int, q: str) -> tuple[list, Page]:
    """One page of customers, newest first, each with its balance and order count."""
    conditions = [User.tenant_id == tenant_id, User.kind == CUSTOMER]
    if q:
        matches = [
            User.email.icontains(q, autoescape=True),
            User.name.icontains(q, autoescape=True),
        ]
        number = as_id(q.lstrip("#"))
        if number:
            matches.append(User.id == number)
        conditions.append(or_(*matches))
    total = db.session.scalar(select(func.count(User.id)).where(*conditions))
    page = page_of(total, PAGE_SIZE)
    order_count = (
        select(func.count(Order.id))
        .where(Order.tenant_id == tenant_id, Order.customer_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(User, LedgerAccount.balance, order_count)
        .outerjoin(
            LedgerAccount,
            and_(LedgerAccount.customer_id == User.id, LedgerAccount.kind == CUSTOMER_WALLET),
        )
        .where(*conditions)
        .order_by(User.id.desc())
        .offset(page.offset)
        .limit(page.size)
    ).all()
    return [(user, balance or Decimal(0), count) for user, balance, count in rows], page


@bp.get("/customers")
@staff_required()
def customers():
    """The panel's customers, searched by email or name, a page at a time."""
    q = request.args.get("q", "").strip()[:100]
    rows, page = customers_page(g.tenant.id, q)
    return render_template("admin/customers.html", rows=rows, page=page, q=q)


# --- one customer ----------------------------------------------------------------------------


def load_customer(customer_id: int) -> User:
    """The panel's customer, or 404: another panel's customer id does not exist here."""
    customer = db.session.get(User, customer_id) if as_id(customer_id) else None
    # An explicit check: `get` may answer from the identity map, without the scoped SQL.
    if customer is None or customer.tenant_id != g.tenant.id or customer.kind != CUSTOMER:
        abort(404)
    return customer


def wallet_balance(customer: User) -> Decimal:
    """The balance, read without creating the wallet (a page view must not write)."""
    found = db.session.scalar(
        select(LedgerAccount.balance).where(
            LedgerAccount.kind == CUSTOMER_WALLET,
            LedgerAccount.customer_id == customer.id,
            LedgerAccount.tenant_id == customer.tenant_id,
        )
    )
    return Decimal(0) if found is None else found


def groups() -> list[CustomerGroup]:
    return db.session.scalars(
        select(CustomerGroup)
        .where(CustomerGroup.tenant_id == g.tenant.id)
        .order_by(CustomerGroup.name)
    ).all()


def pricing_form_for(customer: User, formdata=None) -> CustomerPricingForm:
    """The pricing form, filled from the customer's saved pricing unless posted."""
    form = CustomerPricingForm(formdata=formdata, prefix="pricing")
    form.group_id.choices = [("", _("No group"))] + [
        (group.id, f"{group.name} (-{group.discount_percent.normalize():f}%)") for group in groups()
    ]
    if formdata is None:
        saved = db.session.scalar(
            select(CustomerPricing).where(CustomerPricing.customer_id == customer.id)
        )
        form.group_id.data = saved.group_id if saved else None
        discount = saved.discount_percent if saved else None
        form.discount_percent.data = "" if discount is None else f"{discount.normalize():f}"
    return form


def adjustment_form(formdata=None) -> BalanceAdjustmentForm:
    form = BalanceAdjustmentForm(formdata=formdata, prefix="adjust")
    if formdata is None:
        form.token.data = uuid.uuid4().hex
    return form


@bp.get("/customers/<int:customer_id>")
@staff_required()
def customer_detail(customer_id: int):
    """One customer: profile, balance, wallet movements, orders and pricing."""
    return render_customer(load_customer(customer_id))


def render_customer(
    customer: User,
    adjust_form: BalanceAdjustmentForm | None = None,
    pricing_form: CustomerPricingForm | None = None,
):
    movements = db.session.execute(
        select(Posting.amount, JournalEntry)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(
            LedgerAccount.kind == CUSTOMER_WALLET,
            LedgerAccount.customer_id == customer.id,
            LedgerAccount.tenant_id == customer.tenant_id,
        )
        .order_by(Posting.id.desc())
        .limit(RECENT_MOVEMENTS)
    ).all()
    orders = db.session.scalars(
        select(Order)
        .where(Order.tenant_id == customer.tenant_id, Order.customer_id == customer.id)
        .order_by(Order.id.desc())
        .limit(RECENT_ORDERS)
    ).all()
    order_count = db.session.scalar(
        select(func.count(Order.id)).where(
            Order.tenant_id == customer.tenant_id, Order.customer_id == customer.id
        )
    )
    discount, source = customer_discount(customer.tenant_id, customer.id)
    return render_template(
        "admin/customer.html",
        customer=customer,
        balance=wallet_balance(customer),
        movements=movements,
        movement_labels=MOVEMENT_LABELS,
        orders=orders,
        order_count=order_count,
        service_names=service_names(o.service_id for o in orders),
        discount=discount,
        discount_source=DISCOUNT_SOURCES.get(source),
        has_groups=bool(groups()),
        adjust_form=adjust_form or adjustment_form(),
        pricing_form=pricing_form or pricing_form_for(customer),
    )


@bp.post("/customers/<int:customer_id>/adjust")
@staff_required(*MONEY_ROLES)
def adjust_balance(customer_id: int):
    """Credit or debit the customer's wallet by hand, with a reason; audited."""
    customer = load_customer(customer_id)
    form = adjustment_form(request.form)
    if form.validate_on_submit():
        amount = signed_amount(form, g.tenant.currency)
        if amount is not None:
            try:
                adjust_customer(
                    customer,
                    amount,
                    form.reason.data,
                    current_user._get_current_object(),
                    key=adjustment_key(customer, form.token.data),
                )
            except InsufficientFunds:
                db.session.rollback()
                form.amount.errors.append(
                    _(
                        "The balance is %(balance)s: a debit cannot take it below zero.",
                        balance=money(wallet_balance(customer), g.tenant.currency),
                    )
                )
            except IdempotencyConflict:
                db.session.rollback()
                form.form_errors.append(
                    _("This form was already sent. Reload the page to make another adjustment.")
                )
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                db.session.commit()
                flash(adjusted_message(customer, amount), "success")
                return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    return render_customer(customer, adjust_form=form)


def signed_amount(form: BalanceAdjustmentForm, currency: str) -> Decimal | None:
    """The typed amount, negative for a debit; None with the error on the form."""
    if form.direction.data not in (CREDIT, DEBIT):
        form.direction.errors.append(_("Choose credit or debit."))
        return None
    try:
        amount = parse_amount(form.amount.data, currency)
    except ValidationError as error:
        attach_error(form, error)
        return None
    return -amount if form.direction.data == DEBIT else amount


def adjustment_key(customer: User, token: str | None) -> str | None:
    """The same form posted twice moves the money once; a form without a token, every time."""
    if not token or not FORM_TOKEN.fullmatch(token):
        return None
    return f"adjustment:staff:t{customer.tenant_id}:c{customer.id}:{token}"


def adjusted_message(customer: User, amount: Decimal) -> str:
    currency = g.tenant.currency
    figures = {
        "amount": money(abs(amount), currency),
        "email": customer.email,
        "balance": money(wallet_balance(customer), currency),
    }
    if amount > 0:
        return _("Credited %(amount)s to %(email)s. The balance is now %(balance)s.", **figures)
    return _("Debited %(amount)s from %(email)s. The balance is now %(balance)s.", **figures)


@bp.post("/customers/<int:customer_id>/pricing")
@staff_required(*MONEY_ROLES)
def customer_pricing(customer_id: int):
    """Set the customer's group and personal discount (blank: none of its own)."""
    customer = load_customer(customer_id)
    form = pricing_form_for(customer, request.form)
    if form.validate_on_submit():
        discount = discount_from(form)
        group_id = form.group_id.data
        if group_id is not None and group_id not in {group.id for group in groups()}:
            form.group_id.errors.append(_("Choose a group from the list."))
        elif not form.discount_percent.errors:
            try:
                set_customer_discount(
                    customer.tenant_id,
                    customer.id,
                    actor=current_user._get_current_object(),
                    group_id=group_id,
                    discount_percent=discount,
                )
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            except NotFound:
                db.session.rollback()
                form.group_id.errors.append(_("Choose a group from the list."))
            else:
                db.session.commit()
                flash(_("Pricing of %(email)s saved.", email=customer.email), "success")
                return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    return render_customer(customer, pricing_form=form)


def discount_from(form: CustomerPricingForm) -> Decimal | None:
    """The typed discount percent, None when blank; errors go on the field."""
    text = (form.discount_percent.data or "").strip()
    if not text:
        return None
    try:
        value = parse_plain_decimal(text, allow_negative=False, field="discount_percent")
    except ValidationError as error:
        attach_error(form, error)
        return None
    if places_of(value) > DISCOUNT_PLACES:
        form.discount_percent.errors.append(
            _("Use at most %(n)s decimal places.", n=DISCOUNT_PLACES)
        )
        return None
    return value
