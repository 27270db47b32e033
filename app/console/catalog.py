"""Console pages for the platform catalog: services by category, their routes and history.

The catalog holds thousands of services, so lists are filtered and paginated in SQL and load
a page's routes, provider services and providers in a fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from app.accounts.web import attach_error
from app.audit.services import record_audit
from app.catalog.models import (
    SERVICE_STATUSES,
    CatalogChange,
    Category,
    Service,
    ServiceRoute,
)
from app.catalog.services import (
    EDITABLE,
    record_change,
    set_statuses,
    update_service,
)
from app.catalog.sync import SHAPE
from app.console import bp
from app.console.forms import ConfirmForm
from app.console.supply_forms import (
    STATUS_LABELS,
    AddRouteForm,
    CategoryForm,
    ServiceForm,
    ServiceRuleForm,
)
from app.errors import ValidationError
from app.extensions import db
from app.money import CURRENCIES, format_amount, format_rate, inverse_rate
from app.money.fx import MissingFxRate
from app.navigation import safe_next
from app.paging import Page, as_id, int_arg, page_of, url_with
from app.pricing.models import WholesaleRule
from app.pricing.wholesale import WholesalePrice, wholesale_prices
from app.providers.models import Provider, ProviderService

PAGE_SIZE = 50
SHOWN_DIGITS = Context(prec=10, rounding=ROUND_HALF_UP)
MAX_BULK = 500

# What catalog_changes rows say, for people. Syncs write the first five; the console writes
# "status", "edited" and "routes" when an operator changes a service.
CHANGE_LABELS = {
    "added": _l("Added"),
    "repriced": _l("Repriced"),
    "updated": _l("Updated"),
    "removed": _l("Removed"),
    "restored": _l("Restored"),
    "status": _l("Status changed"),
    "edited": _l("Edited"),
    "routes": _l("Routes changed"),
}
FIELD_LABELS = {
    "name": _l("Name"),
    "category": _l("Category"),
    "type": _l("Type"),
    "rate": _l("Cost"),
    "min_quantity": _l("Minimum"),
    "max_quantity": _l("Maximum"),
    "refill": _l("Refill"),
    "cancel": _l("Cancel"),
    "dripfeed": _l("Drip-feed"),
    "available": _l("Available"),
    "status": _l("Status"),
    "description": _l("Description"),
    "step": _l("Quantity step"),
    "refill_days": _l("Refill guarantee (days)"),
    "routes": _l("Routes"),
}
RULE_LABELS = {
    "service fixed": _l("Service fixed rate"),
    "service markup": _l("Service markup"),
    "category markup": _l("Category markup"),
    "global markup": _l("Global markup"),
}


# Helpers shared by the supply pages (providers, catalog, pricing, FX)


@bp.context_processor
def supply_helpers() -> dict:
    return {
        "when": when,
        "rate_in": rate_in,
        "amount_in": amount_in,
        "percent": percent,
        "url_with": url_with,
        "status_labels": STATUS_LABELS,
        "change_labels": CHANGE_LABELS,
        "field_labels": FIELD_LABELS,
        "rule_labels": RULE_LABELS,
        "shown_value": shown_value,
        "plain": plain,
        "margin_percent": margin_percent,
        "inverse": inverse_rate,
        "significant": significant,
    }


def when(moment) -> str:
    return "" if moment is None else format_datetime(moment, "yyyy-MM-dd HH:mm") + " UTC"


def rate_in(rate: Decimal | None, currency: str) -> str:
    """A price per 1000 as price lists show it; a currency Pasok does not keep, as it came."""
    if rate is None:
        return "—"
    if currency not in CURRENCIES:
        return f"{rate:f}"
    return format_rate(rate, currency)


def amount_in(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "—"
    if currency not in CURRENCIES:
        return f"{amount:f}"
    return format_amount(amount, currency)


def plain(value: Decimal | None) -> str:
    """A decimal without trailing zeros or exponent: 16250, 0.0125."""
    return "—" if value is None else f"{value.normalize():f}"


def significant(value: Decimal) -> Decimal:
    """A long exchange rate cut to 10 significant digits, for reading (never for sums)."""
    return SHOWN_DIGITS.plus(value)


def margin_percent(price: WholesalePrice) -> Decimal | None:
    """The margin as a share of the cost, to one decimal; None for a free service."""
    if price.cost_in_platform <= 0:
        return None
    return (price.margin * 100 / price.cost_in_platform).quantize(Decimal("0.1"))


def percent(value: Decimal | None) -> str:
    if value is None:
        return "—"
    text = f"{value.normalize():f}"
    return ("+" if value > 0 else "") + text + "%"


def shown_value(key: str, value) -> str:
    """One value of a catalog change (as stored in its JSON) for a person."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None or value == "":
        return "—"
    if key == "status" and value in STATUS_LABELS:
        return str(STATUS_LABELS[value])
    return str(value)


def get_or_404(model, object_id: int):
    row = db.session.get(model, object_id) if as_id(object_id) else None
    if row is None:
        abort(404)
    return row


@dataclass(frozen=True)
class CatalogFilters:
    q: str
    status: str | None
    provider_id: int | None
    category_id: int | None

    @classmethod
    def from_request(cls) -> CatalogFilters:
        status = request.args.get("status", "")
        return cls(
            q=request.args.get("q", "").strip()[:100],
            status=status if status in SERVICE_STATUSES else None,
            provider_id=int_arg("provider"),
            category_id=int_arg("category"),
        )

    def conditions(self) -> list:
        found = []
        if self.q:
            by_name = Service.name.icontains(self.q, autoescape=True)
            number = as_id(self.q.lstrip("#"))
            found.append(or_(by_name, Service.id == number) if number else by_name)
        if self.status:
            found.append(Service.status == self.status)
        if self.category_id:
            found.append(Service.category_id == self.category_id)
        if self.provider_id:
            found.append(
                Service.routes.any(
                    ServiceRoute.provider_service.has(
                        ProviderService.provider_id == self.provider_id
                    )
                )
            )
        return found

    @property
    def active(self) -> bool:
        return bool(self.q or self.status or self.provider_id or self.category_id)


def services_page(conditions: list) -> tuple[list[Service], Page]:
    """One page of services, by category, with their category, routes, provider services and
    providers loaded: five queries however long the page is."""
    total = db.session.scalar(select(func.count(Service.id)).where(*conditions))
    page = page_of(total, PAGE_SIZE)
    services = db.session.scalars(
        select(Service)
        .join(Service.category)
        .where(*conditions)
        .order_by(Category.position, Category.name, Category.id, Service.id)
        .offset(page.offset)
        .limit(page.size)
        .options(
            contains_eager(Service.category),
            selectinload(Service.routes)
            .selectinload(ServiceRoute.provider_service)
            .joinedload(ProviderService.provider),
        )
    ).all()
    return services, page


def prices_for(service_ids: list[int] | None) -> tuple[dict[int, WholesalePrice], str | None]:
    """Wholesale prices, or none and the reason when an exchange rate is missing."""
    try:
        return wholesale_prices(service_ids), None
    except MissingFxRate as error:
        return {}, str(error)


def filter_choices() -> tuple[list[Provider], list[Category]]:
    providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    categories = db.session.scalars(
        select(Category).order_by(Category.position, Category.name)
    ).all()
    return providers, categories


# The catalog


@bp.get("/catalog")
@login_required
def catalog():
    """Every platform service by category, filtered, a page at a time."""
    filters = CatalogFilters.from_request()
    services, page = services_page(filters.conditions())
    prices, price_problem = prices_for([s.id for s in services])
    providers, categories = filter_choices()
    totals = dict(
        db.session.execute(select(Service.status, func.count()).group_by(Service.status)).all()
    )
    return render_template(
        "console/catalog.html",
        services=services,
        page=page,
        filters=filters,
        prices=prices,
        price_problem=price_problem,
        providers=providers,
        categories=categories,
        totals=totals,
        form=ConfirmForm(),
    )


@bp.post("/catalog/status")
@login_required
def catalog_status():
    """Publish, unlist or disable one service (`set=<id>:<status>`) or the ticked ones."""
    back = safe_next(url_for("console.catalog"))
    if not ConfirmForm().validate_on_submit():
        return redirect(back)
    single = request.form.get("set", "")
    if single:
        service_id, _sep, status = single.partition(":")
        ids = [service_id]
    else:
        status = request.form.get("bulk", "")
        ids = request.form.getlist("service_ids")
    ids = sorted({as_id(i) for i in ids} - {None})
    if status not in SERVICE_STATUSES:
        flash(_("Choose what to do with the services."), "error")
        return redirect(back)
    if not ids:
        flash(_("Tick the services to change first."), "error")
        return redirect(back)
    if len(ids) > MAX_BULK:
        flash(_("Change at most %(n)s services at once.", n=MAX_BULK), "error")
        return redirect(back)
    changed, refused = set_statuses(ids, status, actor=current_user)
    db.session.commit()
    if changed:
        flash(
            _(
                "%(count)s services are now %(status)s.",
                count=len(changed),
                status=str(STATUS_LABELS[status]).lower(),
            ),
            "success",
        )
    if refused:
        flash(
            _(
                "%(count)s services have no available provider and were not published: %(ids)s.",
                count=len(refused),
                ids=", ".join(f"#{i}" for i in refused[:20]),
            ),
            "error",
        )
    if not changed and not refused:
        flash(_("Nothing to change."), "info")
    return redirect(back)


# One service


@bp.route("/catalog/services/<int:service_id>", methods=["GET", "POST"])
@login_required
def catalog_service(service_id: int):
    """Edit a service; see its routes, its wholesale price and its history."""
    service = load_service(service_id)
    form = ServiceForm(obj=service) if request.method == "GET" else ServiceForm()
    if form.validate_on_submit():
        try:
            update_service(
                service,
                {key: getattr(form, key).data for key in EDITABLE},
                actor=current_user,
            )
        except ValidationError as error:
            db.session.rollback()
            attach_error(form, error)
        else:
            db.session.commit()
            flash(_("Service #%(id)s saved.", id=service.id), "success")
            return redirect(url_for("console.catalog_service", service_id=service.id))
    return render_service(service, form)


def load_service(service_id: int) -> Service:
    if as_id(service_id) is None:
        abort(404)
    service = db.session.scalar(
        select(Service)
        .where(Service.id == service_id)
        .options(
            joinedload(Service.category),
            selectinload(Service.routes)
            .selectinload(ServiceRoute.provider_service)
            .joinedload(ProviderService.provider),
        )
    )
    if service is None:
        abort(404)
    return service


def render_service(service: Service, form: ServiceForm, rule_form: ServiceRuleForm | None = None):
    prices, price_problem = prices_for([service.id])
    route_ps_ids = [r.provider_service_id for r in service.routes]
    history = db.session.scalars(
        select(CatalogChange)
        .where(
            or_(
                CatalogChange.service_id == service.id,
                and_(
                    CatalogChange.provider_service_id.in_(route_ps_ids),
                    CatalogChange.kind != "added",
                ),
            )
        )
        .order_by(CatalogChange.at.desc(), CatalogChange.id.desc())
        .limit(100)
        .options(joinedload(CatalogChange.provider_service))
    ).all()
    rule = db.session.scalar(select(WholesaleRule).where(WholesaleRule.service_id == service.id))
    if rule_form is None:
        rule_form = ServiceRuleForm(formdata=None, prefix="rule", service_id=service.id)
        if rule is not None:
            rule_form.kind.data = "fixed" if rule.fixed_rate is not None else "markup"
            rule_form.value.data = (
                f"{rule.fixed_rate.normalize():f}"
                if rule.fixed_rate is not None
                else f"{rule.markup_percent.normalize():f}"
            )
    providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    candidates = find_provider_services(service, route_ps_ids)
    return render_template(
        "console/catalog_service.html",
        service=service,
        form=form,
        price=prices.get(service.id),
        price_problem=price_problem,
        rule=rule,
        rule_form=rule_form,
        history=history,
        providers=providers,
        candidates=candidates,
        searched=candidates is not None,
        confirm_form=ConfirmForm(),
        route_form=AddRouteForm(formdata=None),
    )


def find_provider_services(service: Service, exclude: list[int]) -> list[ProviderService] | None:
    """Provider services matching `?provider=&find=` (an upstream id or part of a name), of
    the service's order type (a fallback takes the same order), that are not routes of
    `service` yet; None when nothing was searched."""
    find = request.args.get("find", "").strip()[:100]
    provider_id = int_arg("provider")
    if not find and not provider_id:
        return None
    query = (
        select(ProviderService)
        .where(ProviderService.type == service.type)
        .options(joinedload(ProviderService.provider))
    )
    if provider_id:
        query = query.where(ProviderService.provider_id == provider_id)
    if find:
        query = query.where(
            or_(
                ProviderService.external_id == find,
                ProviderService.name.icontains(find, autoescape=True),
            )
        )
    if exclude:
        query = query.where(ProviderService.id.not_in(exclude))
    query = query.order_by(ProviderService.available.desc(), ProviderService.rate)
    return db.session.scalars(query.limit(20)).all()


# Routes: which upstream services deliver a platform service, in order


@bp.post("/catalog/services/<int:service_id>/routes")
@login_required
def catalog_add_route(service_id: int):
    """Add a provider service as the last fallback of a service."""
    service = load_service(service_id)
    form = AddRouteForm()
    back = url_for("console.catalog_service", service_id=service.id)
    if not form.validate_on_submit():
        return redirect(back)
    number = as_id(form.provider_service_id.data.strip())
    provider_service = db.session.get(ProviderService, number) if number else None
    if provider_service is None:
        flash(_("That provider service does not exist."), "error")
    elif any(r.provider_service_id == provider_service.id for r in service.routes):
        flash(_("That provider service already delivers this service."), "error")
    else:
        before = route_summary(service.routes)
        route = ServiceRoute(
            service_id=service.id,
            provider_service_id=provider_service.id,
            priority=max((r.priority for r in service.routes), default=0) + 1,
        )
        db.session.add(route)
        db.session.flush()
        db.session.refresh(service, ["routes"])
        save_route_change(service, before)
        flash(
            _(
                "%(provider)s #%(id)s added as fallback %(priority)s.",
                provider=provider_service.provider.name,
                id=provider_service.external_id,
                priority=route.priority,
            ),
            "success",
        )
    return redirect(back)


@bp.post("/catalog/services/<int:service_id>/routes/<int:route_id>/move")
@login_required
def catalog_move_route(service_id: int, route_id: int):
    """Move a route one place up or down the fallback order."""
    service = load_service(service_id)
    routes = sorted(service.routes, key=lambda r: r.priority)
    index = next((i for i, r in enumerate(routes) if r.id == route_id), None)
    if index is None:
        abort(404)
    direction = request.form.get("direction")
    other = index - 1 if direction == "up" else index + 1 if direction == "down" else -1
    if ConfirmForm().validate_on_submit() and 0 <= other < len(routes):
        before = route_summary(routes)
        swap_priorities(routes[index], routes[other], routes)
        db.session.refresh(service, ["routes"])
        save_route_change(service, before)
        flash(_("Route order saved."), "success")
    return redirect(url_for("console.catalog_service", service_id=service.id))


@bp.post("/catalog/services/<int:service_id>/routes/<int:route_id>/remove")
@login_required
def catalog_remove_route(service_id: int, route_id: int):
    """Stop using a provider service for a service; the last route cannot go."""
    service = load_service(service_id)
    routes = sorted(service.routes, key=lambda r: r.priority)
    route = next((r for r in routes if r.id == route_id), None)
    if route is None:
        abort(404)
    if ConfirmForm().validate_on_submit():
        if len(routes) == 1:
            flash(_("A service keeps at least one route."), "error")
        else:
            before = route_summary(routes)
            db.session.delete(route)
            db.session.flush()
            # Close the gap from the top down, one row at a time, so no two routes of the
            # service ever share a priority (service_id, priority is unique).
            for position, kept in enumerate([r for r in routes if r is not route], start=1):
                if kept.priority != position:
                    kept.priority = position
                    db.session.flush()
            db.session.refresh(service, ["routes"])
            save_route_change(service, before)
            flash(_("Route removed."), "success")
    return redirect(url_for("console.catalog_service", service_id=service.id))


def swap_priorities(a: ServiceRoute, b: ServiceRoute, routes: list[ServiceRoute]) -> None:
    """Swap two routes' priorities without two rows ever holding the same one: a moves to a
    free value first (each step flushed on its own)."""
    first, second = a.priority, b.priority
    a.priority = min(r.priority for r in routes) - 1
    db.session.flush()
    b.priority = first
    db.session.flush()
    a.priority = second
    db.session.flush()


def route_summary(routes: list[ServiceRoute]) -> str:
    ordered = sorted(routes, key=lambda r: r.priority)
    return ", ".join(
        f"{r.provider_service.provider.name} #{r.provider_service.external_id}" for r in ordered
    )


def save_route_change(service: Service, before: str) -> None:
    """Record a change of routes; the service follows its (maybe new) primary route's type,
    limits and flags, as a sync would."""
    primary = service.routes[0].provider_service
    for key in SHAPE:
        setattr(service, key, getattr(primary, key))
    after = route_summary(service.routes)
    record_change(service, "routes", {"routes": before}, {"routes": after})
    record_audit(
        "catalog.service.routes",
        actor=current_user,
        tenant_id=None,
        target=f"service:{service.id}",
        details={"before": before, "after": after},
    )
    db.session.commit()


# Categories


@bp.route("/catalog/categories/<int:category_id>", methods=["GET", "POST"])
@login_required
def catalog_category(category_id: int):
    """Rename a category (syncs keep matching it by its upstream name) or move it."""
    category = get_or_404(Category, category_id)
    form = CategoryForm(obj=category) if request.method == "GET" else CategoryForm()
    if form.validate_on_submit():
        name = form.name.data.strip()
        if not name:
            attach_error(form, ValidationError(_l("This field is required."), "name"))
        else:
            changes = {
                k: {"before": getattr(category, k), "after": v}
                for k, v in (("name", name), ("position", form.position.data))
                if getattr(category, k) != v
            }
            category.name, category.position = name, form.position.data
            if changes:
                record_audit(
                    "catalog.category.update",
                    actor=current_user,
                    tenant_id=None,
                    target=f"category:{category.id}",
                    details=changes,
                )
            db.session.commit()
            flash(_("Category saved."), "success")
            return redirect(url_for("console.catalog", category=category.id))
    counts = dict(
        db.session.execute(
            select(Service.status, func.count())
            .where(Service.category_id == category.id)
            .group_by(Service.status)
        ).all()
    )
    rule = db.session.scalar(select(WholesaleRule).where(WholesaleRule.category_id == category.id))
    return render_template(
        "console/catalog_category.html", category=category, form=form, counts=counts, rule=rule
    )
