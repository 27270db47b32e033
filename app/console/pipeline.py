"""Console pages for the order pipeline: the orders that need an operator's eye, across every
tenant, and the review actions on one of them.

*Stuck* orders are `submitting` past their deadline (the worker died; the sweeper will move
them to `unknown`) or `pending` more than five minutes after they were due (no worker picks
them up). *Unknown* orders wait for a reconciliation or, with `review_at` set, for an operator.
*Failed* orders were rejected everywhere and refunded. The actions themselves, each audited,
live in app/orders/review.py; this module parses, calls them and says how it went. An order's
page also shows its refills and cancels, and lets an operator ask for one
(app/orders/upstream_requests.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Regexp

from app.audit.models import AuditEntry
from app.catalog.models import Service
from app.console import bp
from app.console.catalog import when
from app.console.forms import ConfirmForm
from app.errors import PasokError
from app.extensions import db
from app.forms import at_most, required
from app.ledger import OrderNotCharged, order_totals
from app.orders.models import (
    FAILED,
    PENDING,
    PIPELINE_AUDIT_LABELS,
    STATUS_LABELS,
    SUBMITTING,
    UNKNOWN,
    Order,
)
from app.orders.review import mark_delivered, refund_reviewed, resend_reviewed
from app.orders.upstream_requests import (
    RequestRefused,
    order_actions,
    request_cancel,
    request_refill,
)
from app.paging import as_id, page_of
from app.panels.models import Tenant
from app.providers.models import Provider
from app.types import utcnow
from tenants.context import across_tenants

PAGE_SIZE = 50
# A `pending` order this long past due has no worker taking it: the queue or Redis is unwell.
PENDING_GRACE = timedelta(minutes=5)

STUCK = "stuck"
TABS = {
    STUCK: _l("Stuck"),
    UNKNOWN: _l("Unknown"),
    FAILED: _l("Failed"),
}
TAB_HINTS = {
    STUCK: _l(
        "Submitting past their deadline (the worker stopped), or pending more than five "
        "minutes after they were due (no worker is taking them)."
    ),
    UNKNOWN: _l(
        "The provider's answer was lost. Orders marked “needs review” cannot be resent "
        "safely and wait for you; the others are being reconciled automatically."
    ),
    FAILED: _l("Rejected by every provider and refunded in full."),
}
# The review evidence (app/orders/review.py `review_evidence`), in the order people read it.
EVIDENCE_LABELS = {
    "at": _l("Put to review"),
    "reason": _l("Why"),
    "seen": _l("What was seen"),
    "http_status": _l("HTTP status"),
    "provider": _l("Provider"),
    "provider_url": _l("Provider URL"),
    "upstream_service": _l("Provider's service"),
    "link": _l("Link"),
    "quantity": _l("Quantity"),
    "params": _l("Other parameters"),
    "attempt": _l("Attempt"),
    "submitted_at": _l("Submitted"),
    "ref_sent": _l("Sent with our order id as ref"),
    "external_id": _l("Provider's order id"),
    "service_id": _l("Service"),
    "provider_id": _l("Provider id"),
}
TIME_KEYS = {"at", "submitted_at"}
AUDIT_LABELS = {
    "order.unknown": _l("Outcome unknown"),
    "order.fallback": _l("Moved to the next provider"),
    "order.failed": _l("Failed and refunded"),
    "order.reconciled": _l("Reconciled by its upstream id"),
    "order.cancel": _l("Canceled"),
    "order.review": _l("Put to operator review"),
    "order.review.delivered": _l("Marked delivered"),
    "order.review.refunded": _l("Refunded after review"),
    "order.review.resent": _l("Sent again after review"),
    **PIPELINE_AUDIT_LABELS,
}
# Upstream order ids are numbers or short tokens; anything else is a typo or a paste gone wrong.
UPSTREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
MAX_UPSTREAM_ID = 64  # orders.external_id


class DeliverForm(FlaskForm):
    external_id = StringField(
        _l("The provider's order id"),
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            required(),
            at_most(MAX_UPSTREAM_ID),
            Regexp(
                UPSTREAM_ID,
                message=_l("Enter the id as the provider shows it: letters, digits, . _ : -"),
            ),
        ],
    )


class ResendForm(FlaskForm):
    confirmed = BooleanField(
        _l("I have checked with the provider: it never received this order."),
        validators=[
            DataRequired(message=_l("Tick the box to confirm the provider never received it."))
        ],
    )


@dataclass(frozen=True)
class Filters:
    tab: str
    tenant_id: int | None
    provider_id: int | None
    order_id: int | None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.tenant_id, self.provider_id, self.order_id))


@bp.context_processor
def pipeline_helpers() -> dict:
    return {
        "order_status_labels": STATUS_LABELS,
        "evidence_labels": EVIDENCE_LABELS,
        "audit_labels": AUDIT_LABELS,
        "age_of": age_of,
    }


def age_of(moment: datetime | None) -> str:
    """How long ago, as people say it ("3 hours")."""
    if moment is None:
        return "—"
    return format_timedelta(utcnow() - moment, granularity="minute", threshold=1.0)


def tab_condition(tab: str, now: datetime):
    if tab == STUCK:
        return or_(
            and_(Order.status == SUBMITTING, Order.next_attempt_at <= now),
            and_(
                Order.status == PENDING,
                func.coalesce(Order.next_attempt_at, Order.created_at) <= now - PENDING_GRACE,
            ),
        )
    return Order.status == tab


def pipeline_query(filters: Filters, now: datetime) -> Select:
    query = select(Order).where(tab_condition(filters.tab, now))
    if filters.tenant_id is not None:
        query = query.where(Order.tenant_id == filters.tenant_id)
    if filters.provider_id is not None:
        query = query.where(Order.provider_id == filters.provider_id)
    if filters.order_id is not None:
        query = query.where(Order.id == filters.order_id)
    return query


def read_filters() -> Filters:
    tab = request.args.get("tab", STUCK)
    return Filters(
        tab=tab if tab in TABS else STUCK,
        tenant_id=as_id(request.args.get("tenant", "")),
        provider_id=as_id(request.args.get("provider", "")),
        order_id=as_id(request.args.get("q", "")),
    )


@bp.get("/pipeline")
@login_required
def pipeline():
    """Stuck, unknown and failed orders across every tenant."""
    filters = read_filters()
    now = utcnow()
    with across_tenants():
        counts = {
            tab: db.session.scalar(
                select(func.count()).select_from(Order).where(tab_condition(tab, now))
            )
            for tab in TABS
        }
        query = pipeline_query(filters, now)
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        page = page_of(total, PAGE_SIZE)
        # Stuck and unknown orders are worked oldest first; failures are read newest first.
        order_by = Order.id.desc() if filters.tab == FAILED else Order.id
        orders = db.session.scalars(
            query.order_by(order_by).offset(page.offset).limit(page.size)
        ).all()
        tenants = names_by_id(Tenant, Tenant.slug, {o.tenant_id for o in orders})
        services = names_by_id(Service, Service.name, {o.service_id for o in orders})
        all_providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
        all_tenants = db.session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug)).all()
    return render_template(
        "console/pipeline.html",
        filters=filters,
        tabs=TABS,
        tab_hints=TAB_HINTS,
        counts=counts,
        orders=orders,
        page=page,
        tenants=tenants,
        services=services,
        providers={p.id: p.name for p in all_providers},
        all_tenants=all_tenants,
        queues_url=(
            url_for("rq_dashboard.queues_overview")
            if "rq_dashboard" in current_app.blueprints
            else None
        ),
    )


def names_by_id(model, column, ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(model.id, column).where(model.id.in_(ids))).all())


@bp.get("/pipeline/orders/<int:order_id>")
@login_required
def pipeline_order(order_id: int):
    """One order: where it is, the review evidence, and what an operator may do."""
    return render_order(order_id)


def render_order(
    order_id: int,
    deliver_form: DeliverForm | None = None,
    resend_form: ResendForm | None = None,
) -> str:
    if as_id(order_id) is None:
        abort(404)
    with across_tenants():
        order = db.session.get(Order, order_id)
        if order is None:
            abort(404)
        tenant = db.session.get(Tenant, order.tenant_id)
        service = db.session.get(Service, order.service_id)
        provider = db.session.get(Provider, order.provider_id) if order.provider_id else None
        try:
            totals = order_totals(order.id)
        except OrderNotCharged:
            totals = None
        history = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == f"order:{order.id}")
            .order_by(AuditEntry.created_at, AuditEntry.id)
        ).all()
        page = render_template(
            "console/pipeline_order.html",
            order=order,
            tenant=tenant,
            service=service,
            provider=provider,
            totals=totals,
            history=history,
            evidence=evidence_rows(order.review),
            in_review=order.status == UNKNOWN and order.review_at is not None,
            deliver_form=deliver_form or DeliverForm(formdata=None),
            resend_form=resend_form or ResendForm(formdata=None),
            confirm_form=ConfirmForm(),
            actions=order_actions(order),
        )
    return page


def evidence_rows(review: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The evidence as (label, value) rows: the known keys first, in reading order, then any
    others as they were stored."""
    if not review:
        return []
    rows = [
        (str(label), readable(key, review[key]))
        for key, label in EVIDENCE_LABELS.items()
        if key in review
    ]
    rows += [(key, value) for key, value in review.items() if key not in EVIDENCE_LABELS]
    return rows


def readable(key: str, value: Any) -> Any:
    """Stored ISO times as the console shows times; anything else as it is."""
    if key in TIME_KEYS and isinstance(value, str):
        try:
            return when(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


@bp.post("/pipeline/orders/<int:order_id>/deliver")
@login_required
def pipeline_deliver(order_id: int):
    """The operator found the order upstream: it goes on under that upstream id."""
    if as_id(order_id) is None:
        abort(404)
    form = DeliverForm()
    if not form.validate_on_submit():
        return render_order(order_id, deliver_form=form)
    external_id = form.external_id.data
    with across_tenants():
        order = db.session.get(Order, order_id)
        if order is None:
            abort(404)
        taken = db.session.scalar(
            select(Order.id).where(
                Order.provider_id == order.provider_id,
                Order.external_id == external_id,
                Order.id != order.id,
            )
        )
        if taken is not None:
            form.external_id.errors.append(
                _("Order #%(other)s already has this id at this provider.", other=taken)
            )
            return render_order(order_id, deliver_form=form)
        try:
            mark_delivered(order_id, external_id, actor=current_user)
            db.session.commit()
        except PasokError as error:
            db.session.rollback()
            flash(str(error), "error")
        except IntegrityError:  # another order took the id between the check and the commit
            db.session.rollback()
            form.external_id.errors.append(_("Another order already has this id at this provider."))
            return render_order(order_id, deliver_form=form)
        else:
            flash(
                _(
                    "Order #%(id)s is marked delivered under provider order %(external)s; "
                    "the status sync follows it from here.",
                    id=order_id,
                    external=external_id,
                ),
                "success",
            )
    return redirect(url_for("console.pipeline_order", order_id=order_id))


@bp.post("/pipeline/orders/<int:order_id>/refund")
@login_required
def pipeline_refund(order_id: int):
    """The operator gives the order up: canceled, both wallets refunded in full, once."""
    if as_id(order_id) is None:  # beyond an INTEGER: PostgreSQL would refuse the query
        abort(404)
    if ConfirmForm().validate_on_submit():
        with across_tenants():
            try:
                refund_reviewed(order_id, actor=current_user)
                db.session.commit()
            except PasokError as error:
                db.session.rollback()
                flash(str(error), "error")
            else:
                flash(_("Order #%(id)s is canceled and refunded in full.", id=order_id), "success")
    return redirect(url_for("console.pipeline_order", order_id=order_id))


@bp.post("/pipeline/orders/<int:order_id>/resend")
@login_required
def pipeline_resend(order_id: int):
    """The operator confirmed the upstream never received the order: it is sent again."""
    if as_id(order_id) is None:
        abort(404)
    form = ResendForm()
    if not form.validate_on_submit():
        return render_order(order_id, resend_form=form)
    with across_tenants():
        try:
            resend_reviewed(order_id, actor=current_user)
            db.session.commit()
        except PasokError as error:
            db.session.rollback()
            flash(str(error), "error")
        else:
            flash(_("Order #%(id)s is pending again and will be sent.", id=order_id), "success")
    return redirect(url_for("console.pipeline_order", order_id=order_id))


@bp.post("/pipeline/orders/<int:order_id>/refill")
@login_required
def pipeline_refill(order_id: int):
    """Ask the provider for a refill of a completed order, within its refill window."""
    return _upstream_request(
        order_id, request_refill, _("Refill of order #%(id)s requested.", id=order_id)
    )


@bp.post("/pipeline/orders/<int:order_id>/request-cancel")
@login_required
def pipeline_request_cancel(order_id: int):
    """Ask the provider to stop an order that has started; the status sync refunds what was
    not delivered once the provider confirms."""
    return _upstream_request(
        order_id,
        request_cancel,
        _(
            "Cancel of order #%(id)s requested. What was not delivered is refunded once the "
            "provider confirms.",
            id=order_id,
        ),
    )


def _upstream_request(order_id: int, ask, done: str):
    if as_id(order_id) is None:
        abort(404)
    if ConfirmForm().validate_on_submit():
        with across_tenants():
            if db.session.get(Order, order_id) is None:
                abort(404)
            try:
                ask(order_id, actor=current_user._get_current_object())
            except RequestRefused as error:
                db.session.rollback()
                flash(str(error), "error")
            else:
                db.session.commit()
                flash(done, "success")
    return redirect(url_for("console.pipeline_order", order_id=order_id))
