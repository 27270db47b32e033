"""Wholesale prices: what tenants pay the platform per 1000, in the platform currency.

cost (the first available route's rate, in its provider's currency)
  → converted to the platform currency at the operator's FX rate
  → the most specific rule: a service's fixed rate or markup, else its category's markup,
    else the global markup (0% when there is none)
  → rounded half-up to 6 decimals (a rate's precision).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit.services import record_audit
from app.catalog.models import Category, Service, ServiceRoute
from app.errors import ValidationError
from app.extensions import db
from app.money import RATE_PLACES, convert_at, round_rate
from app.money.fx import get_rate
from app.pricing.models import WholesaleRule
from app.providers.models import Provider, ProviderService

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class WholesalePrice:
    service_id: int
    cost: Decimal  # per 1000, provider currency
    cost_currency: str
    cost_in_platform: Decimal  # per 1000, platform currency
    rule: str  # "service fixed", "service markup", "category markup", "global markup"
    rate: Decimal  # the wholesale rate per 1000, platform currency

    @property
    def margin(self) -> Decimal:
        return self.rate - self.cost_in_platform


def wholesale_prices(service_ids: Iterable[int] | None = None) -> dict[int, WholesalePrice]:
    """Prices of the given services (all when None); a service with no available route has
    no price and is left out."""
    platform = current_app.config["PASOK_PLATFORM_CURRENCY"]
    rules = db.session.scalars(select(WholesaleRule)).all()
    global_rule = next((r for r in rules if r.category_id is None and r.service_id is None), None)
    by_category = {r.category_id: r for r in rules if r.category_id is not None}
    by_service = {r.service_id: r for r in rules if r.service_id is not None}

    query = (
        select(Service.id, Service.category_id, ProviderService.rate, Provider.currency)
        .join(ServiceRoute, ServiceRoute.service_id == Service.id)
        .join(ProviderService, ProviderService.id == ServiceRoute.provider_service_id)
        .join(Provider, Provider.id == ProviderService.provider_id)
        .where(ProviderService.available.is_(True), Provider.enabled.is_(True))
        .order_by(Service.id, ServiceRoute.priority)
    )
    if service_ids is not None:
        query = query.where(Service.id.in_(list(service_ids)))
    prices: dict[int, WholesalePrice] = {}
    rates: dict[str, Decimal] = {}  # one FX lookup per provider currency
    for service_id, category_id, cost, currency in db.session.execute(query):
        if service_id in prices:
            continue  # only the first available route sets the cost
        if currency not in rates:
            rates[currency] = get_rate(currency, platform)
        cost_in_platform = convert_at(cost, rates[currency], platform, places=RATE_PLACES)
        rule, label = _rule_for(service_id, category_id, by_service, by_category, global_rule)
        if rule is not None and rule.fixed_rate is not None:
            rate = rule.fixed_rate
        else:
            markup = rule.markup_percent if rule is not None else Decimal(0)
            rate = round_rate(cost_in_platform * (HUNDRED + markup) / HUNDRED)
        prices[service_id] = WholesalePrice(
            service_id, cost, currency, cost_in_platform, label, rate
        )
    return prices


def _rule_for(service_id, category_id, by_service, by_category, global_rule):
    if service_id in by_service:
        rule = by_service[service_id]
        return rule, "service fixed" if rule.fixed_rate is not None else "service markup"
    if category_id in by_category:
        return by_category[category_id], "category markup"
    return global_rule, "global markup"


def set_markup(
    percent: Decimal,
    *,
    actor,
    category: Category | None = None,
    service: Service | None = None,
) -> WholesaleRule:
    """Set the global, a category's or a service's markup (replacing a fixed rate)."""
    if not Decimal(-100) < percent <= Decimal(10000):
        raise ValidationError(_l("Markup must be between -100 and 10000 percent"), "markup_percent")
    rule = _rule(category, service)
    rule.markup_percent, rule.fixed_rate = percent, None
    _audit(rule, actor, {"markup_percent": str(percent)})
    return rule


def set_fixed_rate(rate: Decimal, *, actor, service: Service) -> WholesaleRule:
    """Sell `service` at a fixed wholesale rate per 1000, whatever it costs upstream."""
    if rate <= 0:
        raise ValidationError(_l("A fixed rate must be above zero"), "fixed_rate")
    rule = _rule(None, service)
    rule.fixed_rate, rule.markup_percent = round_rate(rate), None
    _audit(rule, actor, {"fixed_rate": str(rule.fixed_rate)})
    return rule


def clear_rule(*, actor, category: Category | None = None, service: Service | None = None) -> None:
    rule = _find(category, service)
    if rule is not None:
        _audit(rule, actor, {"cleared": True})
        db.session.delete(rule)


def _find(category: Category | None, service: Service | None) -> WholesaleRule | None:
    query = select(WholesaleRule)
    query = query.where(
        WholesaleRule.category_id == category.id
        if category
        else WholesaleRule.category_id.is_(None),
        WholesaleRule.service_id == service.id if service else WholesaleRule.service_id.is_(None),
    )
    return db.session.scalar(query)


def _rule(category: Category | None, service: Service | None) -> WholesaleRule:
    if category is not None and service is not None:
        raise ValidationError(_l("A rule is for a category or a service, not both"))
    rule = _find(category, service)
    if rule is None:
        rule = WholesaleRule(
            category_id=category.id if category else None,
            service_id=service.id if service else None,
        )
        db.session.add(rule)
    return rule


def _audit(rule: WholesaleRule, actor, details: dict) -> None:
    scope = (
        f"service:{rule.service_id}"
        if rule.service_id
        else f"category:{rule.category_id}"
        if rule.category_id
        else "global"
    )
    record_audit("wholesale.rule", actor=actor, tenant_id=None, target=scope, details=details)
