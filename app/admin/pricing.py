"""The owner's retail prices at /admin/pricing: the global markup, rounding and minimum margin,
category and service rules, customer groups, and the margins they give.

Every figure comes from the price engine (`app.pricing.retail`). A form's *Preview* button runs
the same setter the *Save* button does, prices the catalog with it and rolls it all back
(`preview_price_list`), so what the preview shows is exactly what saving would give.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import and_, func, select

from app.accounts.models import OWNER
from app.accounts.web import attach_error
from app.admin import bp
from app.admin.pricing_forms import (
    FIXED,
    MARKUP,
    CategoryRuleForm,
    ConfirmForm,
    GroupForm,
    ServiceRuleForm,
    TenantPricingForm,
    parse_percent,
    rounding_choices,
    rounding_label,
)
from app.admin.routes import staff_required
from app.catalog.models import PUBLISHED, Category, Service
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db
from app.money import format_rate, parse_rate
from app.money.fx import MissingFxRate
from app.navigation import safe_next
from app.paging import Page, as_id, page_of, url_with
from app.pricing.retail import (
    CATEGORY_MARKUP,
    GLOBAL_MARKUP,
    SERVICE_FIXED,
    SERVICE_MARKUP,
    PriceList,
    RetailPrice,
    below_wholesale_services,
    clear_price_rule,
    preview_price_list,
    price_list,
    set_group,
    set_price_rule,
    set_tenant_pricing,
)
from app.pricing.tenant_models import (
    DEFAULT_MARKUP_PERCENT,
    DEFAULT_MIN_MARGIN_PERCENT,
    CatalogOverride,
    CustomerGroup,
    CustomerPricing,
    PriceRule,
    TenantPricing,
    default_rounding,
)

PAGE_SIZE = 50
WARNING_LIMIT = 20  # flagged services listed in the warning; the margin table shows them all
PREVIEW_LIMIT = 200  # changed prices listed by a preview

RULE_LABELS = {
    SERVICE_FIXED: _l("Service fixed price"),
    SERVICE_MARKUP: _l("Service markup"),
    CATEGORY_MARKUP: _l("Category markup"),
    GLOBAL_MARKUP: _l("Global markup"),
}


# Helpers shared with the catalog pages


def plain(value: Decimal | None) -> str:
    """A decimal without trailing zeros or exponent: 30, 12.5."""
    return "—" if value is None else f"{value.normalize():f}"


def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{plain(value)}%"


def rate_in(rate: Decimal | None, currency: str) -> str:
    return "—" if rate is None else format_rate(rate, currency)


VIEW_HELPERS = {
    "plain": plain,
    "percent": percent,
    "rate_in": rate_in,
    "url_with": url_with,
    "rule_labels": RULE_LABELS,
}


def tenant_prices() -> tuple[PriceList | None, str | None]:
    """This tenant's price list, or None and why (an exchange rate the operator has not set)."""
    try:
        return price_list(g.tenant.id), None
    except MissingFxRate as error:
        return None, str(error)


@dataclass(frozen=True)
class ShownCategory:
    id: int
    name: str  # as the tenant's customers see it
    platform_name: str
    override: CatalogOverride | None


def catalog_categories() -> list[ShownCategory]:
    """The categories that hold published services, as this tenant names them."""
    rows = db.session.execute(
        select(Category, CatalogOverride)
        .outerjoin(
            CatalogOverride,
            and_(
                CatalogOverride.category_id == Category.id,
                CatalogOverride.tenant_id == g.tenant.id,
            ),
        )
        .where(Category.services.any(Service.status == PUBLISHED))
        .order_by(Category.position, Category.name, Category.id)
    ).all()
    return [ShownCategory(c.id, (o and o.name) or c.name, c.name, o) for c, o in rows]


def published_service(service_id: int | None) -> Service | None:
    """A service the tenant may sell (published on the platform), or None."""
    if service_id is None:
        return None
    return db.session.scalar(
        select(Service).where(Service.id == service_id, Service.status == PUBLISHED)
    )


def rule_values(tenant_id: int) -> dict[tuple[str, int], str]:
    """The markup of each of the tenant's markup rules, for the margin table: ("category", 3)
    → "50%". A fixed price needs no note: it is the retail price itself."""
    values = {}
    for rule in db.session.scalars(select(PriceRule).where(PriceRule.tenant_id == tenant_id)):
        if rule.markup_percent is not None:
            key = (
                ("service", rule.service_id) if rule.service_id else ("category", rule.category_id)
            )
            values[key] = percent(rule.markup_percent)
    return values


# The page


@bp.get("/pricing")
@staff_required(OWNER)
def pricing():
    """The owner's prices: rules, customer groups, warnings and the margin of every service."""
    return render_pricing()


def render_pricing(
    *,
    settings_form: TenantPricingForm | None = None,
    category_form: CategoryRuleForm | None = None,
    service_form: ServiceRuleForm | None = None,
    group_form: GroupForm | None = None,
    edited_group: tuple[int, GroupForm] | None = None,
    preview: Preview | None = None,
):
    tenant_id = g.tenant.id
    prices, price_problem = tenant_prices()
    currency = prices.currency if prices is not None else g.tenant.currency
    saved = db.session.scalar(select(TenantPricing).where(TenantPricing.tenant_id == tenant_id))
    current = {
        "markup": saved.markup_percent if saved else DEFAULT_MARKUP_PERCENT,
        "rounding": saved.rounding if saved else default_rounding(currency),
        "min_margin": saved.min_margin_percent if saved else DEFAULT_MIN_MARGIN_PERCENT,
    }
    rules = db.session.scalars(
        select(PriceRule).where(PriceRule.tenant_id == tenant_id).order_by(PriceRule.id)
    ).all()
    category_rules = [r for r in rules if r.category_id is not None]
    service_rules = [r for r in rules if r.service_id is not None]
    categories = catalog_categories()
    category_names = {c.id: c.name for c in categories}
    service_names = dict(
        db.session.execute(
            select(Service.id, Service.name).where(
                Service.id.in_([r.service_id for r in service_rules])
            )
        ).all()
    )
    if prices is not None:
        service_names.update(
            {
                r.service_id: prices.get(r.service_id).name
                for r in service_rules
                if r.service_id in prices
            }
        )

    if settings_form is None:
        settings_form = TenantPricingForm(formdata=None, prefix="settings")
        settings_form.markup_percent.data = plain(current["markup"])
        settings_form.rounding.data = current["rounding"]
        settings_form.min_margin_percent.data = plain(current["min_margin"])
    settings_form.rounding.choices = rounding_choices(currency, current["rounding"])
    if category_form is None:
        category_form = CategoryRuleForm(formdata=None, prefix="category")
        editing = as_id(request.args.get("edit_category"))
        rule = next((r for r in category_rules if r.category_id == editing), None)
        if rule is not None:
            category_form.category_id.data = rule.category_id
            category_form.markup_percent.data = plain(rule.markup_percent)
    category_form.category_id.choices = [(c.id, c.name) for c in categories]
    if service_form is None:
        service_form = ServiceRuleForm(formdata=None, prefix="service")
        editing = as_id(request.args.get("edit_service"))
        rule = next((r for r in service_rules if r.service_id == editing), None)
        if rule is not None:
            service_form.service_id.data = str(rule.service_id)
            fixed = rule.fixed_rate is not None
            service_form.kind.data = FIXED if fixed else MARKUP
            service_form.value.data = plain(rule.fixed_rate if fixed else rule.markup_percent)
    group_form = group_form or GroupForm(formdata=None, prefix="group")

    groups = db.session.scalars(
        select(CustomerGroup)
        .where(CustomerGroup.tenant_id == tenant_id)
        .order_by(CustomerGroup.name)
    ).all()
    members = dict(
        db.session.execute(
            select(CustomerPricing.group_id, func.count())
            .where(CustomerPricing.tenant_id == tenant_id, CustomerPricing.group_id.is_not(None))
            .group_by(CustomerPricing.group_id)
        ).all()
    )
    group_forms = {
        group.id: GroupForm(
            formdata=None,
            prefix=f"group-{group.id}",
            name=group.name,
            discount_percent=plain(group.discount_percent),
        )
        for group in groups
    }
    if edited_group is not None:
        group_forms[edited_group[0]] = edited_group[1]

    below = below_wholesale_services(tenant_id) if prices is not None else []
    table = MarginTable.from_request(prices, categories) if prices is not None else None
    return render_template(
        "admin/pricing.html",
        currency=currency,
        prices=prices,
        price_problem=price_problem,
        current=current,
        rounding_label=rounding_label(current["rounding"], currency, example=False),
        category_rules=category_rules,
        service_rules=service_rules,
        category_names=category_names,
        service_names=service_names,
        rule_values=preview.rule_values if preview else rule_values(tenant_id),
        categories=categories,
        settings_form=settings_form,
        category_form=category_form,
        service_form=service_form,
        group_form=group_form,
        groups=groups,
        group_forms=group_forms,
        members=members,
        below=below,
        warning_limit=WARNING_LIMIT,
        table=table,
        preview=preview,
        confirm_form=ConfirmForm(),
        **VIEW_HELPERS,
    )


@dataclass
class MarginTable:
    """One page of the price list, filtered by a search, a category or only flagged prices."""

    q: str
    category_id: int | None
    only_below: bool
    rows: list[RetailPrice]
    page: Page

    @classmethod
    def from_request(cls, prices: PriceList, categories: list[ShownCategory]) -> MarginTable:
        q = request.args.get("q", "").strip()[:100]
        category_id = as_id(request.args.get("category", ""))
        only_below = request.args.get("below") == "1"
        needle, number = q.casefold(), as_id(q)
        found = [
            p
            for p in prices.prices
            if (category_id is None or p.category_id == category_id)
            and (not only_below or p.below_wholesale or p.below_min_margin)
            and (
                not needle
                or needle in p.name.casefold()
                or needle in p.category.casefold()
                or p.service_id == number
            )
        ]
        page = page_of(len(found), PAGE_SIZE)
        return cls(q, category_id, only_below, found[page.offset : page.offset + page.size], page)

    @property
    def active(self) -> bool:
        return bool(self.q or self.category_id or self.only_below)

    def url(self, **changes) -> str:
        """The pricing page's URL for this table with some arguments changed."""
        args = {
            "q": self.q,
            "category": self.category_id,
            "below": "1" if self.only_below else None,
            "page": self.page.number if self.page.number > 1 else None,
        }
        args.update(changes)
        return url_for("admin.pricing", **{k: v for k, v in args.items() if v}) + "#margins"

    def url_for_page(self, number: int) -> str:
        return self.url(page=number if number > 1 else None)


# Saving, or previewing


@dataclass(frozen=True)
class Preview:
    """What a submitted change would do: the prices that move and the flagged ones after it."""

    prices: PriceList
    changed: list[tuple[RetailPrice, RetailPrice | None]]  # (after, before)
    below: list[RetailPrice]
    rule_values: dict[tuple[str, int], str]

    @property
    def shown(self) -> list[tuple[RetailPrice, RetailPrice | None]]:
        return self.changed[:PREVIEW_LIMIT]


def preview_change(change: Callable[[], object]) -> Preview | None:
    """Price the catalog as `change` would; nothing is saved (see `preview_price_list`)."""
    live, _problem = tenant_prices()
    values: dict = {}

    def change_and_note_rules():
        change()
        values.update(rule_values(g.tenant.id))

    after = preview_price_list(g.tenant.id, change_and_note_rules)
    changed = []
    for price in after.prices:
        old = live.get(price.service_id) if live is not None else None
        if old is None or old.rate != price.rate or old.rule != price.rule:
            changed.append((price, old))
    below = [p for p in after.prices if p.below_wholesale or p.below_min_margin]
    return Preview(after, changed, below, values)


def save_or_preview(
    form,
    change: Callable[[], object],
    saved: str,
    render: Callable[..., object],
    back: str | None = None,
    fields: dict[str, str] | None = None,
):
    """Run a setter for good (commit, flash `saved`, redirect to `back`) or, when the form was
    sent with its Preview button, only to show what it would do. A refused value shows on the
    form's field (`fields` maps the setter's field names to the form's)."""
    try:
        if request.form.get("preview"):
            return render(preview=preview_change(change))
        change()
    except (ValidationError, NotFound, MissingFxRate) as error:
        db.session.rollback()
        field = getattr(error, "field", None)
        attach_error(form, ValidationError(str(error), (fields or {}).get(field, field)))
        return render()
    db.session.commit()
    flash(saved, "success")
    prices, _problem = tenant_prices()
    flagged = (
        [p for p in prices.prices if p.below_wholesale or p.below_min_margin]
        if prices is not None
        else []
    )
    if flagged:
        flash(
            ngettext(
                "%(num)s service now sells below wholesale or below your minimum margin.",
                "%(num)s services now sell below wholesale or below your minimum margin.",
                len(flagged),
            ),
            "warning",
        )
    return redirect(safe_next(back or url_for("admin.pricing")))


def refuse(form, error: PasokError) -> None:
    attach_error(form, error if isinstance(error, ValidationError) else ValidationError(str(error)))


# The global settings


@bp.post("/pricing/settings")
@staff_required(OWNER)
def pricing_settings():
    """Save (or preview) the global markup, the rounding of shown prices and the minimum margin."""
    form = TenantPricingForm(prefix="settings")
    prices, _problem = tenant_prices()
    currency = prices.currency if prices is not None else g.tenant.currency
    saved = db.session.scalar(select(TenantPricing).where(TenantPricing.tenant_id == g.tenant.id))
    current = saved.rounding if saved else default_rounding(currency)
    form.rounding.choices = rounding_choices(currency, current)

    def render(preview=None):
        return render_pricing(settings_form=form, preview=preview)

    if not form.validate_on_submit():
        return render()
    try:
        markup = parse_percent(form.markup_percent.data, field="markup_percent")
        min_margin = parse_percent(form.min_margin_percent.data, field="min_margin_percent")
        if form.rounding.data not in {choice.value for choice in form.rounding.choices}:
            raise ValidationError(_l("Choose one of the rounding options."), "rounding")
    except ValidationError as error:
        refuse(form, error)
        return render()
    tenant_id = g.tenant.id
    return save_or_preview(
        form,
        lambda: set_tenant_pricing(
            tenant_id,
            markup=markup,
            rounding=form.rounding.data,
            min_margin=min_margin,
            actor=current_user,
        ),
        _("Pricing saved. Your price list shows it now."),
        render,
        fields={"min_margin": "min_margin_percent"},
    )


# Category and service rules


@bp.post("/pricing/categories")
@staff_required(OWNER)
def pricing_category():
    """Save (or preview) a category's markup: it wins over the global markup."""
    form = CategoryRuleForm(prefix="category")
    categories = {c.id: c for c in catalog_categories()}
    form.category_id.choices = [(c.id, c.name) for c in categories.values()]

    def render(preview=None):
        return render_pricing(category_form=form, preview=preview)

    if not form.validate_on_submit():
        return render()
    category = categories.get(form.category_id.data)
    try:
        if category is None:
            raise ValidationError(_l("Choose a category."), "category_id")
        markup = parse_percent(form.markup_percent.data, field="markup_percent")
    except ValidationError as error:
        refuse(form, error)
        return render()
    tenant_id = g.tenant.id
    return save_or_preview(
        form,
        lambda: set_price_rule(
            tenant_id, category_id=category.id, markup=markup, actor=current_user
        ),
        _("Markup of %(category)s saved.", category=category.name),
        render,
    )


@bp.post("/pricing/services")
@staff_required(OWNER)
def pricing_service():
    """Save (or preview) a service's markup or fixed price: it wins over every other rule."""
    form = ServiceRuleForm(prefix="service")

    def render(preview=None):
        return render_pricing(service_form=form, preview=preview)

    return apply_service_rule(form, render)


def apply_service_rule(form: ServiceRuleForm, render: Callable[..., object], back=None):
    """Read a service rule form and save or preview it; errors show on the form."""
    if not form.validate_on_submit():
        return render()
    service = published_service(as_id(form.service_id.data))
    try:
        if service is None:
            raise ValidationError(_l("No service on your catalog has that number."), "service_id")
        if form.kind.data == FIXED:
            rule = {"fixed_rate": parse_rate(form.value.data, field="value")}
        elif form.kind.data == MARKUP:
            rule = {"markup": parse_percent(form.value.data, field="value")}
        else:
            raise ValidationError(_l("Choose a markup or a fixed price."), "kind")
    except ValidationError as error:
        refuse(form, error)
        return render()
    tenant_id = g.tenant.id
    return save_or_preview(
        form,
        lambda: set_price_rule(tenant_id, service_id=service.id, actor=current_user, **rule),
        _("Price of service #%(id)s saved.", id=service.id),
        render,
        back=back,
        fields={"markup_percent": "value", "fixed_rate": "value"},
    )


@bp.post("/pricing/rules/<int:rule_id>/delete")
@staff_required(OWNER)
def pricing_clear(rule_id: int):
    """Remove a category's or a service's rule: the next rule down applies again."""
    rule = db.session.scalar(
        select(PriceRule).where(PriceRule.id == rule_id, PriceRule.tenant_id == g.tenant.id)
    )
    if rule is None:
        abort(404)
    back = safe_next(url_for("admin.pricing"))
    if ConfirmForm().validate_on_submit():
        clear_price_rule(
            g.tenant.id,
            category_id=rule.category_id,
            service_id=rule.service_id,
            actor=current_user,
        )
        db.session.commit()
        flash(_("Rule removed."), "success")
    return redirect(back)


# Customer groups


@bp.post("/pricing/groups")
@staff_required(OWNER)
def pricing_group_add():
    """Add a customer group with its discount."""
    form = GroupForm(prefix="group")
    return save_group(form, None, lambda: render_pricing(group_form=form))


@bp.post("/pricing/groups/<int:group_id>")
@staff_required(OWNER)
def pricing_group_edit(group_id: int):
    """Rename a customer group or change its discount."""
    group = db.session.scalar(
        select(CustomerGroup).where(
            CustomerGroup.id == group_id, CustomerGroup.tenant_id == g.tenant.id
        )
    )
    if group is None:
        abort(404)
    form = GroupForm(prefix=f"group-{group.id}")
    return save_group(form, group.id, lambda: render_pricing(edited_group=(group_id, form)))


def save_group(form: GroupForm, group_id: int | None, render: Callable[[], object]):
    if not form.validate_on_submit():
        return render()
    try:
        discount = parse_percent(form.discount_percent.data, field="discount_percent")
        set_group(
            g.tenant.id,
            name=form.name.data,
            discount_percent=discount,
            group_id=group_id,
            actor=current_user,
        )
    except (ValidationError, NotFound) as error:
        db.session.rollback()
        refuse(form, error)
        return render()
    db.session.commit()
    flash(_("Customer group %(name)s saved.", name=form.name.data.strip()), "success")
    return redirect(url_for("admin.pricing") + "#groups")
