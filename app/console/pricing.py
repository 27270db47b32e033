"""Console pages for wholesale prices (the operator's markup rules, with a preview of what they
give) and for the exchange rates costs are converted at."""

from __future__ import annotations

from decimal import Decimal

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.accounts.web import attach_error
from app.catalog.models import Category, Service
from app.console import bp
from app.console.catalog import (
    CatalogFilters,
    filter_choices,
    load_service,
    plain,
    prices_for,
    render_service,
    services_page,
)
from app.console.forms import ConfirmForm
from app.console.supply_forms import (
    FIXED,
    MARKUP,
    CategoryMarkupForm,
    FxRateForm,
    GlobalMarkupForm,
    ServiceForm,
    ServiceRuleForm,
)
from app.errors import ValidationError
from app.extensions import db
from app.money import CURRENCIES, parse_rate
from app.money.amounts import parse_plain_decimal
from app.money.fx import MissingFxRate, get_rate, list_rates, set_rate
from app.navigation import safe_next
from app.paging import as_id
from app.pricing.models import WholesaleRule
from app.pricing.wholesale import clear_rule, set_fixed_rate, set_markup


def platform_currency() -> str:
    return current_app.config["PASOK_PLATFORM_CURRENCY"]


def markup_from(form, field: str = "markup_percent") -> Decimal | None:
    """The typed markup percent, or None with the error on the field."""
    try:
        return parse_plain_decimal(getattr(form, field).data, allow_negative=True, field=field)
    except ValidationError as error:
        attach_error(form, error)
        return None


# Wholesale prices


@bp.get("/pricing")
@login_required
def pricing():
    """The wholesale rules and a preview of the prices they give."""
    return render_pricing()


def render_pricing(
    global_form: GlobalMarkupForm | None = None,
    category_form: CategoryMarkupForm | None = None,
    service_form: ServiceRuleForm | None = None,
):
    rules = db.session.scalars(select(WholesaleRule)).all()
    global_rule = next((r for r in rules if r.category_id is None and r.service_id is None), None)
    category_rules = {r.category_id: r for r in rules if r.category_id is not None}
    service_rules = {r.service_id: r for r in rules if r.service_id is not None}
    providers, categories = filter_choices()

    global_form = global_form or GlobalMarkupForm(formdata=None, prefix="global")
    if global_form.markup_percent.data is None:
        global_form.markup_percent.data = (
            f"{global_rule.markup_percent.normalize():f}" if global_rule else "0"
        )
    category_form = category_form or CategoryMarkupForm(formdata=None, prefix="category")
    category_form.category_id.choices = [(c.id, c.name) for c in categories]
    service_form = service_form or ServiceRuleForm(formdata=None, prefix="service")

    # Every price, once, to count and find what sells below cost; then the preview's page.
    all_prices, price_problem = prices_for(None)
    below = sorted(sid for sid, p in all_prices.items() if p.rate < p.cost_in_platform)
    filters = CatalogFilters.from_request()
    conditions = filters.conditions()
    only_below = request.args.get("below") == "1"
    if only_below:
        conditions.append(Service.id.in_(below))
    services, page = services_page(conditions)
    ruled_services = {
        s.id: s
        for s in db.session.scalars(
            select(Service)
            .where(Service.id.in_(list(service_rules)))
            .options(joinedload(Service.category))
        )
    }
    return render_template(
        "console/pricing.html",
        platform=platform_currency(),
        global_rule=global_rule,
        category_rules=category_rules,
        service_rules=service_rules,
        ruled_services=ruled_services,
        categories=categories,
        category_names={c.id: c.name for c in categories},
        providers=providers,
        global_form=global_form,
        category_form=category_form,
        service_form=service_form,
        confirm_form=ConfirmForm(),
        prices=all_prices,
        price_problem=price_problem,
        below=below,
        only_below=only_below,
        filters=filters,
        services=services,
        page=page,
    )


@bp.post("/pricing/global")
@login_required
def pricing_global():
    """Set the global markup: the price of every service no other rule covers."""
    form = GlobalMarkupForm(prefix="global")
    if form.validate_on_submit():
        percent = markup_from(form)
        if percent is not None:
            try:
                set_markup(percent, actor=current_user)
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                db.session.commit()
                flash(_("Global markup saved."), "success")
                return redirect(url_for("console.pricing"))
    return render_pricing(global_form=form)


@bp.post("/pricing/categories")
@login_required
def pricing_category():
    """Set a category's markup (it wins over the global markup)."""
    form = CategoryMarkupForm(prefix="category")
    form.category_id.choices = []
    if form.validate_on_submit():
        number = as_id(form.category_id.data)
        category = db.session.get(Category, number) if number else None
        percent = markup_from(form)
        if category is None:
            attach_error(form, ValidationError(_l("Choose a category."), "category_id"))
        elif percent is not None:
            try:
                set_markup(percent, actor=current_user, category=category)
            except ValidationError as error:
                db.session.rollback()
                attach_error(form, error)
            else:
                db.session.commit()
                flash(_("Markup of %(category)s saved.", category=category.name), "success")
                return redirect(url_for("console.pricing"))
    return render_pricing(category_form=form)


@bp.post("/pricing/services")
@login_required
def pricing_service():
    """Set a service's markup or fixed rate (it wins over every other rule)."""
    # The same form sits on the pricing page ("service-…") and on a service's page ("rule-…").
    prefix = "rule" if request.form.get("prefix") == "rule" else "service"
    form = ServiceRuleForm(prefix=prefix)
    number = as_id(form.service_id.data)
    service = db.session.get(Service, number) if number else None
    if form.validate_on_submit():
        if service is None:
            attach_error(form, ValidationError(_l("No service has that number."), "service_id"))
        elif set_service_rule(form, service):
            db.session.commit()
            flash(_("Wholesale rule of service #%(id)s saved.", id=service.id), "success")
            return redirect(safe_next(url_for("console.pricing")))
    if prefix == "rule" and service is not None:
        # Show the error on the service's page, where the form was.
        service = load_service(service.id)
        return render_service(service, ServiceForm(formdata=None, obj=service), form)
    if prefix == "rule":
        flash(_("No service has that number."), "error")
        return redirect(url_for("console.pricing"))
    return render_pricing(service_form=form)


def set_service_rule(form: ServiceRuleForm, service: Service) -> bool:
    try:
        if form.kind.data == FIXED:
            rate = parse_rate(form.value.data, field="value")
            set_fixed_rate(rate, actor=current_user, service=service)
        elif form.kind.data == MARKUP:
            value = parse_plain_decimal(form.value.data, allow_negative=True, field="value")
            set_markup(value, actor=current_user, service=service)
        else:
            raise ValidationError(_l("Choose a markup or a fixed rate."), "kind")
    except ValidationError as error:
        db.session.rollback()
        if error.field in ("markup_percent", "fixed_rate"):
            error.field = "value"
        attach_error(form, error)
        return False
    return True


@bp.post("/pricing/clear")
@login_required
def pricing_clear():
    """Remove a rule: the global markup, a category's or a service's."""
    back = safe_next(url_for("console.pricing"))
    if not ConfirmForm().validate_on_submit():
        return redirect(back)
    category_id = request.form.get("category_id", "")
    service_id = request.form.get("service_id", "")
    category = db.session.get(Category, as_id(category_id)) if as_id(category_id) else None
    service = db.session.get(Service, as_id(service_id)) if as_id(service_id) else None
    if (category_id and category is None) or (service_id and service is None):
        flash(_("That rule no longer exists."), "error")
        return redirect(back)
    clear_rule(actor=current_user, category=category, service=service)
    db.session.commit()
    flash(_("Rule removed."), "success")
    return redirect(back)


# Exchange rates


@bp.route("/fx", methods=["GET", "POST"])
@login_required
def fx():
    """Exchange rates: the list, and the form to set one."""
    form = FxRateForm()
    if request.method == "GET":
        form.base.data = form.base.data or platform_currency()
        form.quote.data = next((c for c in CURRENCIES if c != form.base.data), form.base.data)
    if form.validate_on_submit():
        try:
            row = set_rate(form.base.data, form.quote.data, form.rate.data, current_user)
        except (ValidationError, MissingFxRate) as error:
            db.session.rollback()
            if isinstance(error, ValidationError) and error.field == "currency":
                error.field = "base"
            attach_error(form, error)
        else:
            db.session.commit()
            flash(
                _(
                    "1 %(base)s = %(rate)s %(quote)s saved.",
                    base=row.base,
                    rate=plain(row.rate),
                    quote=row.quote,
                ),
                "success",
            )
            return redirect(url_for("console.fx"))
    return render_template("console/fx.html", form=form, rates=list_rates(), needed=needed_rates())


def needed_rates() -> list[dict]:
    """Each currency to the platform currency: the rate in use, or missing."""
    platform = platform_currency()
    rows = []
    for code in CURRENCIES:
        if code == platform:
            continue
        try:
            rate = get_rate(code, platform)
        except MissingFxRate:
            rate = None
        rows.append({"base": code, "quote": platform, "rate": rate})
    return rows
