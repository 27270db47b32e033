"""The customer's orders on the storefront: a new order (with its charge worked out live as the
customer types), a mass order, the list of orders, one order, canceling it while unsent, and
asking for a refill or a cancel once it is upstream (app/orders/upstream_requests.py).

The views parse the form and call `app.orders.services`, the one code path that validates,
prices and places orders; prices come from `app.pricing.retail` only. A domain error becomes a
form error, never a 500.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import abort, flash, g, jsonify, make_response, redirect, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from app.accounts.web import attach_error
from app.actions import committed
from app.catalog.models import Service
from app.catalog.order_types import OrderType, order_type
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.ledger import InsufficientFunds, OrderNotCharged, order_totals
from app.ledger.history import customer_balance
from app.money import format_amount, format_rate
from app.orders.models import API_STATUS, Order
from app.orders.queries import (
    OrderFilter,
    count_customer_orders,
    customer_order,
    customer_orders,
    customer_statuses,
)
from app.orders.services import (
    MassOrderRejected,
    OrderNotCancelable,
    PanelSuspended,
    cancel_unsent_order,
    place_order,
    place_orders_mass,
)
from app.orders.upstream_requests import (
    RequestRefused,
    order_actions,
    request_cancel,
    request_refill,
)
from app.orders.validation import COUNTED_LISTS, OrderRejected, validate_order
from app.paging import page_of, page_url
from app.pricing.retail import PriceList, ServiceNotForSale, price_list, quote
from app.storefront import bp
from app.storefront.forms import PARAM_HELP, PARAM_LABELS, MassOrderForm, OrderForm
from tenants.web import render_themed

ORDERS_PER_PAGE = 20
MAX_SEARCH = 100
SERVICE_ID = re.compile(r"[0-9]{1,10}")

# What the customer sees for each API v2 status, in their language.
STATUS_LABELS = {
    "Pending": _l("Pending"),
    "In progress": _l("In progress"),
    "Processing": _l("Processing"),
    "Completed": _l("Completed"),
    "Partial": _l("Partial"),
    "Canceled": _l("Canceled"),
}

# An order's charge depends on these inputs only (and, for the types whose quantity is a list,
# on that list); the live charge fills every other required input with a valid stand-in, so it
# can be shown before the customer has typed a link.
PRICED_PARAMS = ("quantity", "runs", "interval", "min", "max", "posts")
STAND_INS = {
    "link": "https://example.com/preview",
    "media": "https://example.com/preview",
    "username": "preview",
    "hashtag": "preview",
    "usernames": "preview",
    "hashtags": "preview",
    "comments": "preview",
    "groups": "preview",
    "keywords": "preview",
    "answer_number": "1",
    "delay": "0",
}


def status_slug(visible: str) -> str:
    """ "In progress" → "in-progress", for URLs and CSS classes."""
    return visible.lower().replace(" ", "-")


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


def customer():
    """The signed-in customer itself, not the `current_user` proxy."""
    return current_user._get_current_object()


def money(amount, currency: str) -> str:
    return f"{currency} {format_amount(amount, currency)}"


# --- what the pages show ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    id: int
    created_at: datetime
    service_id: int
    service: str
    link: str
    quantity: int
    charge: str
    status: str  # the API v2 status the customer sees
    start_count: int | None
    remains: int | None
    cancelable: bool
    params: list[tuple[Any, str]] = field(default_factory=list)

    @property
    def status_slug(self) -> str:
        return status_slug(self.status)

    @property
    def status_label(self):
        return STATUS_LABELS.get(self.status, self.status)


def service_names(prices: PriceList, service_ids: set[int]) -> dict[int, str]:
    """The tenant's names for these services; the platform's for any no longer on sale."""
    names = {i: prices.get(i).name for i in service_ids if prices.get(i) is not None}
    missing = service_ids - names.keys()
    if missing:
        rows = db.session.execute(select(Service.id, Service.name).where(Service.id.in_(missing)))
        names.update({service_id: name for service_id, name in rows})
    return names


def order_rows(orders: list[Order], prices: PriceList) -> list[OrderRow]:
    names = service_names(prices, {o.service_id for o in orders})
    return [
        OrderRow(
            id=o.id,
            created_at=o.created_at,
            service_id=o.service_id,
            service=names.get(o.service_id, f"#{o.service_id}"),
            link=o.link,
            quantity=o.quantity,
            charge=money(o.charge, o.currency),
            status=API_STATUS[o.status],
            start_count=o.start_count,
            remains=o.remains,
            cancelable=o.is_unsent,
            params=[
                (PARAM_LABELS.get(name, name), value)
                for name, value in (o.params or {}).items()
                if name != "username" or value != o.link
            ],
        )
        for o in orders
    ]


def service_for_sale(prices: PriceList, wanted: str | None) -> Service | None:
    """The service the customer picked, if this tenant sells it."""
    wanted = (wanted or "").strip()
    if not SERVICE_ID.fullmatch(wanted) or int(wanted) not in prices:
        return None
    return db.session.get(Service, int(wanted))


def visible_params(service: Service) -> list[str]:
    """The inputs the service's order type asks for (drip-feed only where the service has it)."""
    kind = order_type(service.type)
    if kind is None:
        return []
    return [name for name in kind.params if service.dripfeed or name not in ("runs", "interval")]


def average_time(seconds: int | None) -> str:
    if not seconds:
        return "\u2014"
    return format_timedelta(timedelta(seconds=seconds), granularity="minute")


def service_info(prices: PriceList, service: Service) -> dict[str, Any]:
    """What the order form shows about a service, at this customer's own price."""
    price = prices.get(service.id)
    rate = quote(g.tenant.id, service.id, current_user.id)
    kind = order_type(service.type)
    return {
        "id": service.id,
        "name": price.name,
        "category": price.category,
        "description": price.description,
        "type": service.type,
        "min": service.min_quantity,
        "max": service.max_quantity,
        "rate": format_rate(rate.rate, rate.currency),
        "currency": rate.currency,
        "average_time": average_time(service.average_seconds),
        "refill": service.refill,
        "cancel": service.cancel,
        "dripfeed": service.dripfeed,
        "fields": visible_params(service),
        "counted": COUNTED_LISTS.get(kind.name) if kind else None,
    }


def service_choices(prices: PriceList) -> dict[str, list[tuple[str, str]]]:
    """The services for sale by category, for a grouped select."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for p in prices.prices:
        groups.setdefault(p.category, []).append((str(p.service_id), f"{p.service_id} · {p.name}"))
    return groups


def show_rejection(form, error: ValidationError, shown: list[str]) -> None:
    """A rejection on the input it names when that input is on the page, else on the form."""
    if error.field in (*shown, "service"):
        attach_error(form, error)
    else:
        form.form_errors.append(str(error))


def no_store(body: str, status: int = 200):
    """A page holding a one-time form token: the back button must not bring an old one back."""
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- a new order -----------------------------------------------------------------------------


@bp.route("/orders/new", methods=["GET", "POST"])
@login_required
def new_order():
    """Order one service: its details, the inputs its type needs, and the live charge."""
    prices = price_list(g.tenant.id)
    form = OrderForm()
    form.service.choices = service_choices(prices)
    if request.method == "GET":
        wanted = service_for_sale(prices, request.args.get("service"))
        form.service.data = str(wanted.id) if wanted else ""
        form.form_token.data = new_form_token()
    service = service_for_sale(prices, form.service.data)
    shown = visible_params(service) if service else []
    short_of_funds = False
    if form.validate_on_submit():
        if not (form.service.data or "").strip():
            form.service.errors = [_("Choose a service")]
        else:
            try:
                placed = place_order(
                    tenant_id=g.tenant.id,
                    customer_id=current_user.id,
                    service_id=form.service.data,
                    fields={name: getattr(form, name).data for name in shown},
                    form_token=form.form_token.data or None,
                    actor=customer(),
                )
            except InsufficientFunds:
                db.session.rollback()
                short_of_funds = True
            except PanelSuspended as error:
                db.session.rollback()
                form.form_errors.append(str(error))
            except NotFound:
                db.session.rollback()
                abort(404)
            except ValidationError as error:
                db.session.rollback()
                show_rejection(form, error, shown)
            else:
                db.session.commit()
                order = placed.order
                if placed.created:
                    flash(
                        _(
                            "Order #%(id)s placed: %(charge)s.",
                            id=order.id,
                            charge=money(order.charge, order.currency),
                        ),
                        "success",
                    )
                else:
                    flash(_("This order was already placed (#%(id)s).", id=order.id), "info")
                return redirect(url_for("storefront.order", order_id=order.id))
    return no_store(
        render_themed(
            "storefront/order_new.html",
            form=form,
            service=service_info(prices, service) if service else None,
            shown=shown,
            labels=PARAM_LABELS,
            help=PARAM_HELP,
            short_of_funds=short_of_funds,
            balance=money(customer_balance(g.tenant, customer()), g.tenant.currency),
        )
    )


def preview_fields(kind: OrderType, args) -> dict[str, str] | None:
    """The inputs to price: what the customer typed of the inputs the charge depends on, and a
    stand-in for every other required one. None while nothing priced has been typed."""
    counted = COUNTED_LISTS.get(kind.name)
    priced = [name for name in kind.params if name in PRICED_PARAMS or name == counted]
    typed = {name: args.get(name, "") for name in priced if args.get(name, "").strip()}
    if priced and not typed:
        return None
    fields = {name: STAND_INS[name] for name in kind.required if name not in priced}
    fields.update(typed)
    return fields


@bp.get("/orders/quote")
def order_quote():
    """The live charge, as JSON: `{"service": {...}, "charge": "1.30000", "currency": "USD"}`,
    or `{"error": "...", "field": "quantity"}`. The order itself is priced again at submit."""
    if not current_user.is_authenticated:
        return jsonify(error=_("Please sign in to order.")), 401
    prices = price_list(g.tenant.id)
    service = service_for_sale(prices, request.args.get("service"))
    kind = order_type(service.type) if service else None
    if kind is None:
        return _json(error=_("Unknown service"), field="service")
    reply: dict[str, Any] = {"service": service_info(prices, service)}
    fields = preview_fields(kind, request.args)
    if fields is None:
        return _json(**reply)
    try:
        order = validate_order(service, fields)
        priced = quote(g.tenant.id, service.id, current_user.id, order.billed_units)
    except OrderRejected as error:
        return _json(**reply, error=str(error), field=error.field)
    except ServiceNotForSale:
        return _json(error=_("Unknown service"), field="service")
    balance = customer_balance(g.tenant, customer())
    return _json(
        **reply,
        charge=format_amount(priced.charge, priced.currency),
        currency=priced.currency,
        quantity=order.quantity,
        enough_funds=priced.charge <= balance,
    )


def _json(**reply):
    response = jsonify(reply)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- a mass order ----------------------------------------------------------------------------


@bp.route("/orders/mass", methods=["GET", "POST"])
@login_required
def mass_order():
    """Many orders at once, one `service|link|quantity` a line: all placed, or none."""
    form = MassOrderForm()
    if request.method == "GET":
        form.form_token.data = new_form_token()
    line_errors = []
    short_of_funds = False
    if form.validate_on_submit():
        try:
            placed = place_orders_mass(
                g.tenant.id,
                current_user.id,
                form.orders.data or "",
                customer(),
                form_token=form.form_token.data or None,
            )
        except MassOrderRejected as error:
            db.session.rollback()
            line_errors = error.errors
        except InsufficientFunds:
            db.session.rollback()
            short_of_funds = True
        except PanelSuspended as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        except NotFound:
            db.session.rollback()
            abort(404)
        except ValidationError as error:
            db.session.rollback()
            show_rejection(form, error, ["orders"])
        else:
            db.session.commit()
            orders = [p.order for p in placed]
            currency = orders[0].currency
            return no_store(
                render_themed(
                    "storefront/order_mass_done.html",
                    rows=order_rows(orders, price_list(g.tenant.id)),
                    created=sum(1 for p in placed if p.created),
                    total=money(sum(o.charge for o in orders), currency),
                    balance=money(customer_balance(g.tenant, customer()), currency),
                )
            )
    return no_store(
        render_themed(
            "storefront/order_mass.html",
            form=form,
            line_errors=line_errors,
            short_of_funds=short_of_funds,
            balance=money(customer_balance(g.tenant, customer()), g.tenant.currency),
        )
    )


# --- the list, one order, canceling ----------------------------------------------------------


@bp.get("/orders")
@login_required
def orders():
    """The customer's orders, newest first, by status and searched by order id or link."""
    visible = customer_statuses()
    by_slug = {status_slug(status): status for status in visible}
    slug = request.args.get("status", "")
    status = by_slug.get(slug)
    search = request.args.get("q", "").strip()[:MAX_SEARCH]
    where = OrderFilter(status=status, search=search)
    page = page_of(count_customer_orders(g.tenant.id, current_user.id, where), ORDERS_PER_PAGE)
    found = customer_orders(
        g.tenant.id, current_user.id, where, offset=page.offset, limit=page.size
    )
    tabs = [("", _("All"))] + [(status_slug(s), STATUS_LABELS.get(s, s)) for s in visible]
    return render_themed(
        "storefront/orders.html",
        rows=order_rows(found, price_list(g.tenant.id)),
        tabs=tabs,
        current=status_slug(status) if status else "",
        search=search,
        page=page,
        page_url=page_url,
        filtered=bool(status or search),
    )


def _own_order(order_id: int) -> Order:
    order = customer_order(g.tenant.id, current_user.id, order_id)
    if order is None:
        abort(404)
    return order


@bp.get("/orders/<int:order_id>")
@login_required
def order(order_id: int):
    """One of the customer's orders."""
    found = _own_order(order_id)
    row = order_rows([found], price_list(g.tenant.id))[0]
    try:
        totals = order_totals(found.id)
    except OrderNotCharged:
        refunded = None
    else:
        refunded = totals.retail_refunded or None
    return render_themed(
        "storefront/order.html",
        row=row,
        refunded=money(refunded, found.currency) if refunded else None,
        actions=order_actions(found),
    )


@bp.post("/orders/<int:order_id>/cancel")
@login_required
def cancel_order(order_id: int):
    """Cancel an order that has not been sent yet, for a full refund."""
    found = _own_order(order_id)
    canceled = committed(
        lambda: cancel_unsent_order(found.id, current_user.id, actor=customer()),
        OrderNotCancelable,
    )
    if canceled is not None:
        flash(
            _(
                "Order #%(id)s canceled; %(charge)s is back on your balance.",
                id=canceled.id,
                charge=money(canceled.charge, canceled.currency),
            ),
            "success",
        )
    return redirect(url_for("storefront.order", order_id=found.id))


# --- refills and cancels of orders that are upstream -----------------------------------------


@bp.post("/orders/<int:order_id>/refill")
@login_required
def refill_order(order_id: int):
    """Ask for a refill of a completed order, within its service's refill window."""
    found = _own_order(order_id)
    asked = committed(
        lambda: request_refill(found.id, actor=customer(), customer_id=current_user.id),
        RequestRefused,
    )
    if asked is not None:
        flash(
            _("Refill of order #%(id)s requested; its progress shows below.", id=found.id),
            "success",
        )
    return redirect(url_for("storefront.order", order_id=found.id))


@bp.post("/orders/<int:order_id>/request-cancel")
@login_required
def request_cancel_order(order_id: int):
    """Ask the provider to stop an order that has started; what was not delivered is
    refunded once the provider confirms."""
    found = _own_order(order_id)
    asked = committed(
        lambda: request_cancel(found.id, actor=customer(), customer_id=current_user.id),
        RequestRefused,
    )
    if asked is not None:
        flash(
            _(
                "Cancel of order #%(id)s requested. What was not delivered goes back to your "
                "balance once the provider confirms.",
                id=found.id,
            ),
            "success",
        )
    return redirect(url_for("storefront.order", order_id=found.id))
