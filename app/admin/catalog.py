"""The owner's catalog at /admin/catalog: the platform's published services as this panel's
customers see them, and the panel's own curation of them (hidden, renamed, re-described).

Curation is kept in the tenant's `catalog_overrides` rows (`app.pricing.retail.set_override`);
provider syncs write only platform rows, so they never undo it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased, contains_eager

from app.accounts.models import OWNER
from app.accounts.web import attach_error
from app.admin import bp
from app.admin.pricing import (
    FIXED,
    MARKUP,
    PAGE_SIZE,
    VIEW_HELPERS,
    Preview,
    apply_service_rule,
    catalog_categories,
    plain,
    published_service,
    rule_values,
    tenant_prices,
)
from app.admin.pricing_forms import (
    CategoryOverrideForm,
    ConfirmForm,
    ServiceOverrideForm,
    ServiceRuleForm,
)
from app.admin.routes import staff_required
from app.catalog.models import PUBLISHED, Category, Service
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.navigation import safe_next
from app.paging import Page, as_id, page_of
from app.pricing.retail import set_override
from app.pricing.tenant_models import CatalogOverride, PriceRule

SHOW_ALL, SHOW_HIDDEN, SHOW_EDITED = "", "hidden", "edited"


def own_override(category_id: int | None = None, service_id: int | None = None):
    """This tenant's override of a category or a service, if it has one."""
    column, target = (
        (CatalogOverride.service_id, service_id)
        if service_id is not None
        else (CatalogOverride.category_id, category_id)
    )
    return db.session.scalar(
        select(CatalogOverride).where(CatalogOverride.tenant_id == g.tenant.id, column == target)
    )


def catalog_category(category_id: int | None) -> Category | None:
    """A category of this panel's catalog (one that holds a published service), or None."""
    if category_id is None:
        return None
    return db.session.scalar(
        select(Category).where(
            Category.id == category_id, Category.services.any(Service.status == PUBLISHED)
        )
    )


# The list


@dataclass
class CatalogRow:
    service: Service
    override: CatalogOverride | None
    category_override: CatalogOverride | None

    @property
    def name(self) -> str:
        return (self.override and self.override.name) or self.service.name

    @property
    def category_name(self) -> str:
        return (
            self.category_override and self.category_override.name
        ) or self.service.category.name

    @property
    def hidden(self) -> bool:
        return bool(self.override and self.override.hidden)

    @property
    def category_hidden(self) -> bool:
        return bool(self.category_override and self.category_override.hidden)


@dataclass(frozen=True)
class CatalogFilters:
    q: str
    category_id: int | None
    show: str

    @classmethod
    def from_request(cls) -> CatalogFilters:
        show = request.args.get("show", "")
        return cls(
            q=request.args.get("q", "").strip()[:100],
            category_id=as_id(request.args.get("category", "")),
            show=show if show in (SHOW_HIDDEN, SHOW_EDITED) else SHOW_ALL,
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.category_id or self.show)


def catalog_page(filters: CatalogFilters) -> tuple[list[CatalogRow], Page]:
    """One page of the published services, by category, with this tenant's overrides of each
    service and its category: two queries however long the page is."""
    tenant_id = g.tenant.id
    own = aliased(CatalogOverride)
    own_category = aliased(CatalogOverride)
    conditions = [Service.status == PUBLISHED]
    if filters.q:
        number = as_id(filters.q)
        words = [
            Service.name.icontains(filters.q, autoescape=True),
            own.name.icontains(filters.q, autoescape=True),
            Category.name.icontains(filters.q, autoescape=True),
            own_category.name.icontains(filters.q, autoescape=True),
        ]
        conditions.append(or_(*words, Service.id == number) if number else or_(*words))
    if filters.category_id:
        conditions.append(Service.category_id == filters.category_id)
    if filters.show == SHOW_HIDDEN:
        conditions.append(or_(own.hidden.is_(True), own_category.hidden.is_(True)))
    elif filters.show == SHOW_EDITED:
        conditions.append(or_(own.id.is_not(None), own_category.id.is_not(None)))

    def joined(query):
        return (
            query.join(Category, Category.id == Service.category_id)
            .outerjoin(own, and_(own.service_id == Service.id, own.tenant_id == tenant_id))
            .outerjoin(
                own_category,
                and_(
                    own_category.category_id == Service.category_id,
                    own_category.tenant_id == tenant_id,
                ),
            )
            .where(*conditions)
        )

    total = db.session.scalar(joined(select(func.count(Service.id))))
    page = page_of(total, PAGE_SIZE)
    rows = db.session.execute(
        joined(select(Service, own, own_category))
        .options(contains_eager(Service.category))
        .order_by(Category.position, Category.name, Category.id, Service.id)
        .offset(page.offset)
        .limit(page.size)
    ).all()
    return [CatalogRow(s, o, c) for s, o, c in rows], page


@bp.get("/catalog")
@staff_required(OWNER)
def catalog():
    """The catalog as this panel's customers see it, to hide, rename and re-describe."""
    filters = CatalogFilters.from_request()
    rows, page = catalog_page(filters)
    prices, price_problem = tenant_prices()
    counts = dict(
        db.session.execute(
            select(CatalogOverride.hidden, func.count())
            .where(CatalogOverride.tenant_id == g.tenant.id)
            .group_by(CatalogOverride.hidden)
        ).all()
    )

    def url_for_page(number: int) -> str:
        args = {"q": filters.q, "category": filters.category_id, "show": filters.show}
        args["page"] = number if number > 1 else None
        return url_for("admin.catalog", **{k: v for k, v in args.items() if v})

    return render_template(
        "admin/catalog.html",
        rows=rows,
        page=page,
        filters=filters,
        categories=catalog_categories(),
        prices=prices,
        price_problem=price_problem,
        on_sale=len(prices) if prices is not None else 0,
        hidden_count=counts.get(True, 0),
        edited_count=sum(counts.values()),
        url_for_page=url_for_page,
        form=ConfirmForm(),
        **VIEW_HELPERS,
    )


@bp.post("/catalog/actions")
@staff_required(OWNER)
def catalog_action():
    """Hide, show or reset one service or category: `action=<hide|show|reset>:<kind>:<id>`."""
    back = safe_next(url_for("admin.catalog"))
    if not ConfirmForm().validate_on_submit():
        return redirect(back)
    action, _sep, rest = request.form.get("action", "").partition(":")
    kind, _sep, number = rest.partition(":")
    target_id = as_id(number)
    if kind == "service" and published_service(target_id):
        target, label = {"service_id": target_id}, _("Service #%(id)s", id=target_id)
    elif kind == "category" and catalog_category(target_id):
        target, label = (
            {"category_id": target_id},
            _("Category %(name)s", name=shown_category(target_id)),
        )
    else:
        abort(404)
    if action not in ("hide", "show", "reset"):
        abort(400)
    override = own_override(**target)
    if action == "reset":
        set_override(g.tenant.id, actor=current_user, **target)
        message = _(
            "%(item)s is back to the catalog's name, description and visibility.", item=label
        )
    else:
        set_override(
            g.tenant.id,
            actor=current_user,
            hidden=action == "hide",
            name=override.name if override else None,
            description=override.description if override else None,
            **target,
        )
        message = (
            _("%(item)s is hidden from your customers.", item=label)
            if action == "hide"
            else _("%(item)s is shown to your customers.", item=label)
        )
    db.session.commit()
    flash(message, "success")
    return redirect(back)


def shown_category(category_id: int) -> str:
    return next((c.name for c in catalog_categories() if c.id == category_id), "")


# One service


@bp.route("/catalog/services/<int:service_id>", methods=["GET", "POST"])
@staff_required(OWNER)
def catalog_service(service_id: int):
    """Rename, re-describe or hide one service; see and set its price."""
    service = published_service(as_id(service_id)) or abort(404)
    form = ServiceOverrideForm(obj=own_override(service_id=service.id))
    if form.validate_on_submit() and saved_override(form, service_id=service.id):
        flash(_("Service #%(id)s saved.", id=service.id), "success")
        return redirect(url_for("admin.catalog_service", service_id=service.id))
    return render_service(service, form=form)


def saved_override(form: ServiceOverrideForm | CategoryOverrideForm, **target: int) -> bool:
    """Save the form's name, description and hidden flag for `target` (a service or category
    id) and commit; False, with the reason on the form, when the engine refuses."""
    edits = {k: v for k, v in form.data.items() if k in ("name", "description", "hidden")}
    try:
        set_override(g.tenant.id, **target, **edits, actor=current_user)
    except (ValidationError, NotFound) as error:
        db.session.rollback()
        attach_error(
            form, error if isinstance(error, ValidationError) else ValidationError(str(error))
        )
        return False
    db.session.commit()
    return True


@bp.post("/catalog/services/<int:service_id>/price")
@staff_required(OWNER)
def catalog_service_price(service_id: int):
    """Save (or preview) this service's own markup or fixed price."""
    service = published_service(as_id(service_id)) or abort(404)
    form = ServiceRuleForm(prefix="rule")
    form.service_id.data = str(service.id)  # this page's service, whatever was sent

    def render(preview=None):
        return render_service(service, rule_form=form, preview=preview)

    back = url_for("admin.catalog_service", service_id=service.id) + "#price"
    return apply_service_rule(form, render, back=back)


def render_service(
    service: Service,
    *,
    form: ServiceOverrideForm | None = None,
    rule_form: ServiceRuleForm | None = None,
    preview: Preview | None = None,
):
    tenant_id = g.tenant.id
    override = own_override(service_id=service.id)
    category_override = own_override(category_id=service.category_id)
    prices, price_problem = tenant_prices()
    rule = db.session.scalar(
        select(PriceRule).where(
            PriceRule.tenant_id == tenant_id, PriceRule.service_id == service.id
        )
    )
    if form is None:
        form = ServiceOverrideForm(
            formdata=None,
            name=override.name if override else "",
            description=override.description if override else "",
            hidden=bool(override and override.hidden),
        )
    if rule_form is None:
        rule_form = ServiceRuleForm(formdata=None, prefix="rule", service_id=str(service.id))
        if rule is not None:
            fixed = rule.fixed_rate is not None
            rule_form.kind.data = FIXED if fixed else MARKUP
            rule_form.value.data = plain(rule.fixed_rate if fixed else rule.markup_percent)
    return render_template(
        "admin/catalog_service.html",
        service=service,
        override=override,
        category_override=category_override,
        category_name=(category_override and category_override.name) or service.category.name,
        prices=prices,
        price_problem=price_problem,
        price=prices.get(service.id) if prices is not None else None,
        currency=prices.currency if prices is not None else g.tenant.currency,
        rule=rule,
        rule_values=preview.rule_values if preview else rule_values(tenant_id),
        form=form,
        rule_form=rule_form,
        preview=preview,
        after=preview.prices.get(service.id) if preview else None,
        confirm_form=ConfirmForm(),
        **VIEW_HELPERS,
    )


# One category


@bp.route("/catalog/categories/<int:category_id>", methods=["GET", "POST"])
@staff_required(OWNER)
def catalog_category_edit(category_id: int):
    """Rename or hide a category on this panel."""
    category = catalog_category(as_id(category_id)) or abort(404)
    override = own_override(category_id=category.id)
    form = CategoryOverrideForm(obj=override)
    if form.validate_on_submit() and saved_override(form, category_id=category.id):
        flash(_("Category saved."), "success")
        return redirect(url_for("admin.catalog", category=category.id))
    count = db.session.scalar(
        select(func.count(Service.id)).where(
            Service.category_id == category.id, Service.status == PUBLISHED
        )
    )
    return render_template(
        "admin/catalog_category.html",
        category=category,
        override=override,
        form=form,
        count=count,
        confirm_form=ConfirmForm(),
        **VIEW_HELPERS,
    )
