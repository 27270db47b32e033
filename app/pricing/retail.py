"""Retail prices: what a tenant's customers pay per 1000, in the tenant's currency.

One engine serves the storefront, the API and the order charge:

wholesale rate (platform currency, `wholesale_prices`)
  → converted to the tenant currency at the operator's FX rate, exactly, to 6 places
  → the tenant's most specific rule: a service's fixed rate, else the service's markup, else its
    category's markup, else the tenant's global markup (`TenantPricing`, 30% by default)
  → the tenant's display rounding policy (a fixed rate is shown as the tenant typed it).

Retail is never silently raised: a rate below wholesale, or below wholesale plus the tenant's
minimum margin, is flagged (`below_wholesale`, `below_min_margin`) and listed for the tenant's
admin by `below_wholesale_services`.

A customer's quote then takes the personal discount (or, without one, the group's) off the
retail rate and rounds the result by the same policy, so a customer sees rates on the same
steps as the price list. A discount never takes the rate below the wholesale cost in the tenant
currency: it stops at the first policy step at or above that cost (or at the retail rate, if
that is lower) and the quote says `discount_clamped`.

Caching: a tenant's price list is computed in a fixed number of queries and kept in process,
keyed by tenant and by two version counters in Redis: a global one (catalog, routes, provider
costs, wholesale rules, FX rates) and one per tenant (its pricing, rules, overrides). A commit
that touched those models bumps the counters and drops this process's entries at once; other
processes check the counters at most once per `PASOK_PRICE_VERSION_CHECK_SECONDS` per tenant.
Without Redis, entries live `PASOK_PRICE_CACHE_FALLBACK_SECONDS`. Customer discounts are read on
each quote and never cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

import redis
from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session

from app.accounts.models import CUSTOMER, User
from app.audit.services import record_audit
from app.catalog.models import PUBLISHED, Category, Service, ServiceRoute
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db, get_redis
from app.money import (
    RATE_PLACES,
    RoundingPolicy,
    apply_rounding,
    charge,
    convert_at,
    parse_rounding_policy,
    round_rate,
)
from app.money.fx import get_rate
from app.money.models import FxRate
from app.money.rounding import UP
from app.panels.models import Tenant
from app.pricing.models import WholesaleRule
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
from app.pricing.wholesale import wholesale_prices
from app.providers.models import Provider, ProviderService
from tenants.context import current_scope, tenant_scope
from tenants.scoping import TenantScopeError

log = logging.getLogger(__name__)

HUNDRED = Decimal(100)
MIN_MARKUP, MAX_MARKUP = Decimal(-100), Decimal(10000)
MAX_MIN_MARGIN = Decimal(1000)

SERVICE_FIXED = "service fixed"
SERVICE_MARKUP = "service markup"
CATEGORY_MARKUP = "category markup"
GLOBAL_MARKUP = "global markup"

PERSONAL = "personal"
GROUP = "group"

GLOBAL_VERSION_KEY = "pasok:prices:version"


def tenant_version_key(tenant_id: int) -> str:
    return f"pasok:prices:tenant:{tenant_id}:version"


class ServiceNotForSale(PasokError):
    """The service is not on the tenant's price list (unpublished, hidden or unrouted)."""

    def __init__(self, service_id: int):
        super().__init__(_l("This service is not available"))
        self.service_id = service_id


@dataclass(frozen=True)
class RetailPrice:
    service_id: int
    category_id: int
    name: str  # the tenant's name for it, else the platform's
    category: str  # likewise
    description: str
    rate: Decimal  # per 1000, tenant currency, after the rounding policy
    wholesale_in_tenant: Decimal  # the wholesale rate in the tenant currency, 6 places
    wholesale: Decimal  # per 1000, platform currency
    fx_rate: Decimal  # 1 platform currency = fx_rate tenant currency
    rule: str  # SERVICE_FIXED, SERVICE_MARKUP, CATEGORY_MARKUP or GLOBAL_MARKUP
    below_wholesale: bool
    below_min_margin: bool

    @property
    def margin(self) -> Decimal:
        return self.rate - self.wholesale_in_tenant

    @property
    def margin_percent(self) -> Decimal | None:
        """The margin as a share of the wholesale cost, to one decimal; None for a free cost."""
        if self.wholesale_in_tenant <= 0:
            return None
        return (self.margin * HUNDRED / self.wholesale_in_tenant).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class PriceList:
    """A tenant's whole visible catalog, priced. Immutable: shared between requests."""

    tenant_id: int
    currency: str
    platform_currency: str
    fx_rate: Decimal
    rounding: str
    markup_percent: Decimal
    min_margin_percent: Decimal
    prices: tuple[RetailPrice, ...]  # by category position, category, then service id
    _by_id: dict[int, RetailPrice] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_id", {p.service_id: p for p in self.prices})

    def __len__(self) -> int:
        return len(self.prices)

    def __contains__(self, service_id: int) -> bool:
        return service_id in self._by_id

    def get(self, service_id: int) -> RetailPrice | None:
        return self._by_id.get(service_id)


@dataclass(frozen=True)
class Quote:
    """A customer's price for a service, and what an order snapshots."""

    tenant_id: int
    service_id: int
    customer_id: int | None
    currency: str  # the tenant's
    platform_currency: str
    rate: Decimal  # what this customer pays per 1000
    retail_rate: Decimal  # the price list's rate, before any discount
    discount_percent: Decimal
    discount_source: str | None  # PERSONAL, GROUP or None
    discount_clamped: bool  # the discount stopped at the wholesale cost
    wholesale: Decimal  # per 1000, platform currency
    wholesale_in_tenant: Decimal
    fx_rate: Decimal
    rule: str
    below_wholesale: bool  # `rate` is below the wholesale cost (the tenant's own rule did it)
    quantity: int | None = None
    charge: Decimal | None = None  # rate * quantity / 1000, tenant currency, ledger precision
    wholesale_charge: Decimal | None = None  # the tenant's cost, platform currency


# --- the price list -------------------------------------------------------------------------


def price_list(tenant_id: int) -> PriceList:
    """The tenant's priced catalog, from this process's cache when it is current."""
    _require_scope_for(tenant_id)
    cache = price_cache()
    if _uncommitted_price_changes(db.session):
        # Never cache what this transaction has not committed: it may yet roll back.
        with tenant_scope(tenant_id):
            return compute_price_list(tenant_id)
    return cache.get(tenant_id, lambda: _compute_scoped(tenant_id))


def below_wholesale_services(tenant_id: int) -> list[RetailPrice]:
    """Services the tenant sells below wholesale, or below wholesale plus its minimum margin:
    the admin's warning list."""
    return [p for p in price_list(tenant_id).prices if p.below_wholesale or p.below_min_margin]


def preview_price_list(tenant_id: int, change: Callable[[], object]) -> PriceList:
    """The price list as `change` (calls to the setters below) would make it, saving nothing.

    The change is flushed, priced and then rolled back with the whole transaction, so call it
    with nothing else unsaved; objects loaded before are expired, not lost. The setters'
    `ValidationError`s come through. Never cached: the session's price-change flags make
    `price_list` compute afresh meanwhile, and the rollback clears them."""
    _require_scope_for(tenant_id)
    try:
        change()
        db.session.flush()
        with tenant_scope(tenant_id):
            return compute_price_list(tenant_id)
    finally:
        db.session.rollback()


def _compute_scoped(tenant_id: int) -> PriceList:
    with tenant_scope(tenant_id):
        return compute_price_list(tenant_id)


def compute_price_list(tenant_id: int) -> PriceList:
    """The price list straight from the database, in a fixed number of queries whatever the
    catalog's size (no cache). Call it in the tenant's scope."""
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(_l("No such panel"))
    platform = current_app.config["PASOK_PLATFORM_CURRENCY"]
    pricing = _pricing_settings(tenant_id, tenant.currency)
    policy = parse_rounding_policy(pricing.rounding)
    fx_rate = get_rate(platform, tenant.currency)

    rules = db.session.scalars(select(PriceRule).where(PriceRule.tenant_id == tenant_id)).all()
    service_rules = {r.service_id: r for r in rules if r.service_id is not None}
    category_rules = {r.category_id: r for r in rules if r.category_id is not None}
    overrides = db.session.scalars(
        select(CatalogOverride).where(CatalogOverride.tenant_id == tenant_id)
    ).all()
    service_overrides = {o.service_id: o for o in overrides if o.service_id is not None}
    category_overrides = {o.category_id: o for o in overrides if o.category_id is not None}

    rows = db.session.execute(
        select(Service.id, Service.category_id, Service.name, Service.description, Category.name)
        .join(Category, Category.id == Service.category_id)
        .where(Service.status == PUBLISHED)
        .order_by(Category.position, Category.id, Service.id)
    ).all()
    # All wholesale prices in one pass: cheaper than an IN list of every published id.
    wholesale = wholesale_prices()
    min_factor = (HUNDRED + pricing.min_margin_percent) / HUNDRED

    prices = []
    for service_id, category_id, name, description, category_name in rows:
        service_override = service_overrides.get(service_id)
        category_override = category_overrides.get(category_id)
        if (service_override and service_override.hidden) or (
            category_override and category_override.hidden
        ):
            continue
        cost = wholesale.get(service_id)
        if cost is None:
            continue  # no available route: not for sale
        wholesale_in_tenant = convert_at(cost.rate, fx_rate, tenant.currency, places=RATE_PLACES)
        rate, rule = _retail_rate(
            wholesale_in_tenant,
            service_rules.get(service_id),
            category_rules.get(category_id),
            pricing.markup_percent,
            policy,
        )
        prices.append(
            RetailPrice(
                service_id=service_id,
                category_id=category_id,
                name=(service_override and service_override.name) or name,
                category=(category_override and category_override.name) or category_name,
                description=(
                    service_override.description
                    if service_override and service_override.description is not None
                    else description or ""
                ),
                rate=rate,
                wholesale_in_tenant=wholesale_in_tenant,
                wholesale=cost.rate,
                fx_rate=fx_rate,
                rule=rule,
                below_wholesale=rate < wholesale_in_tenant,
                below_min_margin=rate < wholesale_in_tenant * min_factor,
            )
        )
    return PriceList(
        tenant_id=tenant_id,
        currency=tenant.currency,
        platform_currency=platform,
        fx_rate=fx_rate,
        rounding=policy.text,
        markup_percent=pricing.markup_percent,
        min_margin_percent=pricing.min_margin_percent,
        prices=tuple(prices),
    )


@dataclass(frozen=True)
class _Settings:
    markup_percent: Decimal
    rounding: str
    min_margin_percent: Decimal


def _pricing_settings(tenant_id: int, currency: str) -> _Settings:
    row = db.session.scalar(select(TenantPricing).where(TenantPricing.tenant_id == tenant_id))
    if row is None:
        return _Settings(
            DEFAULT_MARKUP_PERCENT, default_rounding(currency), DEFAULT_MIN_MARGIN_PERCENT
        )
    return _Settings(row.markup_percent, row.rounding, row.min_margin_percent)


def _retail_rate(
    wholesale_in_tenant: Decimal,
    service_rule: PriceRule | None,
    category_rule: PriceRule | None,
    global_markup: Decimal,
    policy: RoundingPolicy,
) -> tuple[Decimal, str]:
    if service_rule is not None and service_rule.fixed_rate is not None:
        return service_rule.fixed_rate, SERVICE_FIXED
    if service_rule is not None:
        markup, rule = service_rule.markup_percent, SERVICE_MARKUP
    elif category_rule is not None:
        markup, rule = category_rule.markup_percent, CATEGORY_MARKUP
    else:
        markup, rule = global_markup, GLOBAL_MARKUP
    # One rounding, of the exact product: rounding to 6 places first could tip a half step.
    exact = wholesale_in_tenant * (HUNDRED + markup) / HUNDRED
    return round_rate(apply_rounding(exact, policy)), rule


# --- quotes ---------------------------------------------------------------------------------


def quote(
    tenant_id: int, service_id: int, customer_id: int | None = None, quantity: int | None = None
) -> Quote:
    """What `customer_id` pays for `service_id` (per 1000, and for `quantity` when given), with
    the figures an order snapshots. Raises `ServiceNotForSale` off the price list."""
    prices = price_list(tenant_id)
    price = prices.get(service_id)
    if price is None:
        raise ServiceNotForSale(service_id)
    discount, source = (Decimal(0), None)
    if customer_id is not None:
        with tenant_scope(tenant_id):
            discount, source = customer_discount(tenant_id, customer_id)
    rate, clamped = price.rate, False
    if discount:
        policy = parse_rounding_policy(prices.rounding)
        discounted = round_rate(apply_rounding(price.rate * (HUNDRED - discount) / HUNDRED, policy))
        # The floor is the first policy step at or above the cost, but never above the retail
        # rate: a tenant pricing below cost keeps its own (already warned) rate.
        floor = min(price.rate, round_rate(apply_rounding(price.wholesale_in_tenant, _up(policy))))
        rate, clamped = (floor, True) if discounted < floor else (discounted, False)
    result = Quote(
        tenant_id=tenant_id,
        service_id=service_id,
        customer_id=customer_id,
        currency=prices.currency,
        platform_currency=prices.platform_currency,
        rate=rate,
        retail_rate=price.rate,
        discount_percent=discount,
        discount_source=source,
        discount_clamped=clamped,
        wholesale=price.wholesale,
        wholesale_in_tenant=price.wholesale_in_tenant,
        fx_rate=price.fx_rate,
        rule=price.rule,
        below_wholesale=rate < price.wholesale_in_tenant,
    )
    if quantity is None:
        return result
    return replace(
        result,
        quantity=quantity,
        charge=charge(rate, quantity, prices.currency),
        wholesale_charge=charge(price.wholesale, quantity, prices.platform_currency),
    )


def _up(policy: RoundingPolicy) -> RoundingPolicy:
    return RoundingPolicy(UP, policy.step, f"up:{policy.step}")


def customer_discount(tenant_id: int, customer_id: int) -> tuple[Decimal, str | None]:
    """The customer's discount % and where it comes from: personal wins over group."""
    row = db.session.execute(
        select(CustomerPricing.discount_percent, CustomerGroup.discount_percent)
        .outerjoin(CustomerGroup, CustomerGroup.id == CustomerPricing.group_id)
        .where(CustomerPricing.tenant_id == tenant_id, CustomerPricing.customer_id == customer_id)
    ).first()
    if row is None:
        return Decimal(0), None
    personal, group = row
    if personal is not None:
        return personal, PERSONAL
    if group is not None:
        return group, GROUP
    return Decimal(0), None


# --- the admin's changes (the caller commits) -----------------------------------------------


def set_tenant_pricing(
    tenant_id: int, *, markup: Decimal, rounding: str, min_margin: Decimal, actor
) -> TenantPricing:
    """Set the tenant's global markup %, display rounding policy and minimum margin %."""
    _check_markup(markup)
    policy = parse_rounding_policy(rounding)
    if not Decimal(0) <= min_margin <= MAX_MIN_MARGIN:
        raise ValidationError(
            _l("The minimum margin must be between 0 and 1000 percent"), "min_margin"
        )
    row = db.session.scalar(select(TenantPricing).where(TenantPricing.tenant_id == tenant_id))
    if row is None:
        row = TenantPricing(tenant_id=tenant_id)
        db.session.add(row)
    row.markup_percent, row.rounding, row.min_margin_percent = markup, policy.text, min_margin
    _audit(
        tenant_id,
        actor,
        "retail.pricing",
        "pricing",
        {"markup_percent": f"{markup:f}", "rounding": policy.text, "min_margin": f"{min_margin:f}"},
    )
    return row


def set_price_rule(
    tenant_id: int,
    *,
    actor,
    category_id: int | None = None,
    service_id: int | None = None,
    markup: Decimal | None = None,
    fixed_rate: Decimal | None = None,
) -> PriceRule:
    """Price a category by markup %, or a service by markup % or a fixed rate per 1000 in the
    tenant's currency; replaces the target's previous rule."""
    _check_target(category_id, service_id)
    if (markup is None) == (fixed_rate is None):
        raise ValidationError(_l("Give either a markup or a fixed rate"))
    if markup is not None:
        _check_markup(markup)
    else:
        if service_id is None:
            raise ValidationError(_l("Only a service can have a fixed rate"), "fixed_rate")
        if fixed_rate <= 0:
            raise ValidationError(_l("A fixed rate must be above zero"), "fixed_rate")
        fixed_rate = round_rate(fixed_rate)
    rule = _find(PriceRule, tenant_id, category_id, service_id)
    if rule is None:
        rule = PriceRule(tenant_id=tenant_id, category_id=category_id, service_id=service_id)
        db.session.add(rule)
    rule.markup_percent, rule.fixed_rate = markup, fixed_rate
    details = (
        {"markup_percent": f"{markup:f}"}
        if markup is not None
        else {"fixed_rate": f"{fixed_rate:f}"}
    )
    _audit(tenant_id, actor, "retail.rule", _target(category_id, service_id), details)
    return rule


def clear_price_rule(
    tenant_id: int, *, actor, category_id: int | None = None, service_id: int | None = None
) -> bool:
    """Remove a category's or service's rule; False when there was none."""
    rule = _find(PriceRule, tenant_id, category_id, service_id)
    if rule is None:
        return False
    _audit(tenant_id, actor, "retail.rule", _target(category_id, service_id), {"cleared": True})
    db.session.delete(rule)
    return True


def set_override(
    tenant_id: int,
    *,
    actor,
    category_id: int | None = None,
    service_id: int | None = None,
    hidden: bool = False,
    name: str | None = None,
    description: str | None = None,
) -> CatalogOverride | None:
    """Hide, rename or re-describe a category or service on the tenant's panel. Blank text
    means the platform's; an override that changes nothing is removed (None)."""
    _check_target(category_id, service_id)
    name = (name or "").strip() or None
    limit = 120 if category_id is not None else 255
    if name is not None and len(name) > limit:
        raise ValidationError(_l("The name is too long"), "name")
    description = (description or "").strip() or None
    if description is not None and len(description) > 10000:
        raise ValidationError(_l("The description is too long"), "description")
    row = _find(CatalogOverride, tenant_id, category_id, service_id)
    target = _target(category_id, service_id)
    details = {"hidden": hidden, "name": name, "description": description is not None}
    if not hidden and name is None and description is None:
        if row is not None:
            db.session.delete(row)
            _audit(tenant_id, actor, "retail.override", target, {"cleared": True})
        return None
    if row is None:
        row = CatalogOverride(tenant_id=tenant_id, category_id=category_id, service_id=service_id)
        db.session.add(row)
    row.hidden, row.name, row.description = hidden, name, description
    _audit(tenant_id, actor, "retail.override", target, details)
    return row


def set_group(
    tenant_id: int,
    *,
    actor,
    name: str,
    discount_percent: Decimal,
    group_id: int | None = None,
) -> CustomerGroup:
    """Create a customer group, or rename / re-price the group `group_id`."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationError(_l("A group needs a name of at most 80 characters"), "name")
    _check_discount(discount_percent)
    clash = db.session.scalar(
        select(CustomerGroup).where(
            CustomerGroup.tenant_id == tenant_id, CustomerGroup.name == name
        )
    )
    if clash is not None and clash.id != group_id:
        raise ValidationError(_l("There is already a group with this name"), "name")
    if group_id is None:
        group = CustomerGroup(tenant_id=tenant_id)
        db.session.add(group)
    else:
        group = _group(tenant_id, group_id)
    group.name, group.discount_percent = name, discount_percent
    target = f"group:{group_id}" if group_id else "group:new"
    details = {"name": name, "discount_percent": f"{discount_percent:f}"}
    _audit(tenant_id, actor, "retail.group", target, details)
    return group


def set_customer_discount(
    tenant_id: int,
    customer_id: int,
    *,
    actor,
    group_id: int | None = None,
    discount_percent: Decimal | None = None,
) -> CustomerPricing | None:
    """Put a customer in a group and/or give a personal discount (which wins over the group's).
    Neither removes the customer's pricing (None)."""
    customer = db.session.get(User, customer_id)
    if customer is None or customer.tenant_id != tenant_id or customer.kind != CUSTOMER:
        raise NotFound(_l("No such customer"))
    if group_id is not None:
        _group(tenant_id, group_id)
    if discount_percent is not None:
        _check_discount(discount_percent)
    row = db.session.scalar(
        select(CustomerPricing).where(
            CustomerPricing.tenant_id == tenant_id, CustomerPricing.customer_id == customer_id
        )
    )
    target = f"customer:{customer_id}"
    if group_id is None and discount_percent is None:
        if row is not None:
            db.session.delete(row)
            _audit(tenant_id, actor, "retail.customer", target, {"cleared": True})
        return None
    if row is None:
        row = CustomerPricing(tenant_id=tenant_id, customer_id=customer_id)
        db.session.add(row)
    row.group_id, row.discount_percent = group_id, discount_percent
    details = {
        "group_id": group_id,
        "discount_percent": None if discount_percent is None else f"{discount_percent:f}",
    }
    _audit(tenant_id, actor, "retail.customer", target, details)
    return row


def _check_markup(markup: Decimal) -> None:
    if not isinstance(markup, Decimal) or not markup.is_finite():
        raise ValidationError(_l("Enter a markup in percent"), "markup_percent")
    if not MIN_MARKUP < markup <= MAX_MARKUP:
        raise ValidationError(_l("Markup must be between -100 and 10000 percent"), "markup_percent")


def _check_discount(discount: Decimal) -> None:
    if not isinstance(discount, Decimal) or not discount.is_finite():
        raise ValidationError(_l("Enter a discount in percent"), "discount_percent")
    if not Decimal(0) <= discount <= HUNDRED:
        raise ValidationError(
            _l("A discount must be between 0 and 100 percent"), "discount_percent"
        )


def _check_target(category_id: int | None, service_id: int | None) -> None:
    if (category_id is None) == (service_id is None):
        raise ValidationError(_l("Choose a category or a service"))
    model, target_id = (Category, category_id) if category_id is not None else (Service, service_id)
    if db.session.get(model, target_id) is None:
        raise NotFound(_l("No such category or service"))


def _find(model, tenant_id: int, category_id: int | None, service_id: int | None):
    return db.session.scalar(
        select(model).where(
            model.tenant_id == tenant_id,
            model.category_id == category_id
            if category_id is not None
            else model.category_id.is_(None),
            model.service_id == service_id
            if service_id is not None
            else model.service_id.is_(None),
        )
    )


def _group(tenant_id: int, group_id: int) -> CustomerGroup:
    group = db.session.scalar(
        select(CustomerGroup).where(
            CustomerGroup.tenant_id == tenant_id, CustomerGroup.id == group_id
        )
    )
    if group is None:
        raise NotFound(_l("No such customer group"))
    return group


def _target(category_id: int | None, service_id: int | None) -> str:
    return f"service:{service_id}" if service_id is not None else f"category:{category_id}"


def _audit(tenant_id: int, actor, action: str, target: str, details: dict) -> None:
    record_audit(action, actor=actor, tenant_id=tenant_id, target=target, details=details)


def _require_scope_for(tenant_id: int) -> None:
    scope = current_scope()
    if scope is None or not (scope.across_tenants or scope.tenant_id == tenant_id):
        raise TenantScopeError(f"prices of tenant {tenant_id} read outside its scope")


# --- the cache ------------------------------------------------------------------------------


@dataclass
class _Entry:
    prices: PriceList
    versions: tuple[int, int] | None  # (global, tenant) when computed; None without Redis
    computed_at: float
    checked_at: float


class PriceCache:
    """Price lists of one process, keyed by tenant; see the module docstring."""

    def __init__(
        self,
        redis_client: Callable[[], redis.Redis],
        check_seconds: float = 1.0,
        fallback_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.redis_client = redis_client
        self.check_seconds = check_seconds
        self.fallback_seconds = fallback_seconds
        self.clock = clock
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._redis_down_until = 0.0

    def get(self, tenant_id: int, compute: Callable[[], PriceList]) -> PriceList:
        now = self.clock()
        entry = self._entries.get(tenant_id)
        if entry is not None and now - entry.checked_at < self.check_seconds:
            return entry.prices
        versions = self._versions(tenant_id, now)
        if entry is not None:
            if versions is None and entry.versions is None:
                fresh = now - entry.computed_at < self.fallback_seconds
            elif versions is None:
                # Redis went away since: trust the entry as long as one computed without it.
                fresh = now - entry.checked_at < self.fallback_seconds
            else:
                fresh = versions == entry.versions
            if fresh:
                if versions is not None:
                    entry.checked_at = now
                return entry.prices
        # Versions are read before computing: a change committed meanwhile shows as a newer
        # version at the next check, never as a stale entry under the new version.
        prices = compute()
        with self._lock:
            self._entries[tenant_id] = _Entry(prices, versions, now, now)
        return prices

    def invalidate(self, tenant_ids: set[int] | None = None) -> None:
        """Drop the given tenants' entries, or every entry."""
        with self._lock:
            if tenant_ids is None:
                self._entries.clear()
            else:
                for tenant_id in tenant_ids:
                    self._entries.pop(tenant_id, None)

    def _versions(self, tenant_id: int, now: float) -> tuple[int, int] | None:
        if now < self._redis_down_until:
            return None
        try:
            values = self.redis_client().mget(GLOBAL_VERSION_KEY, tenant_version_key(tenant_id))
        except redis.RedisError as exc:
            log.warning(
                "price versions unavailable, caching for %ss: %s", self.fallback_seconds, exc
            )
            self._redis_down_until = now + self.fallback_seconds
            return None
        return tuple(int(v or 0) for v in values)


def price_cache() -> PriceCache:
    """This app's price cache (one per process)."""
    cache = current_app.extensions.get("pasok_price_cache")
    if cache is None:
        app = current_app._get_current_object()
        cache = current_app.extensions.setdefault(
            "pasok_price_cache",
            PriceCache(
                lambda: app.extensions["pasok_redis"],
                check_seconds=float(app.config.get("PASOK_PRICE_VERSION_CHECK_SECONDS", 1.0)),
                fallback_seconds=float(app.config.get("PASOK_PRICE_CACHE_FALLBACK_SECONDS", 5.0)),
            ),
        )
    return cache


# --- invalidation on commit -----------------------------------------------------------------

# Platform data every tenant's prices derive from.
GLOBAL_PRICE_MODELS = (
    Service,
    Category,
    ServiceRoute,
    ProviderService,
    Provider,
    WholesaleRule,
    FxRate,
)
# A tenant's own pricing. Customer discounts are read per quote, never cached.
TENANT_PRICE_MODELS = (TenantPricing, PriceRule, CatalogOverride)
GLOBAL_FLAG = "prices_changed_global"
TENANTS_FLAG = "prices_changed_tenants"


def _uncommitted_price_changes(session: Session) -> bool:
    return bool(session.info.get(GLOBAL_FLAG) or session.info.get(TENANTS_FLAG))


def _note(session: Session, objects) -> None:
    for obj in objects:
        if isinstance(obj, GLOBAL_PRICE_MODELS):
            session.info[GLOBAL_FLAG] = True
        elif isinstance(obj, TENANT_PRICE_MODELS) and obj.tenant_id is not None:
            session.info.setdefault(TENANTS_FLAG, set()).add(obj.tenant_id)
        elif isinstance(obj, Tenant) and obj.id is not None:
            session.info.setdefault(TENANTS_FLAG, set()).add(obj.id)  # its currency


@event.listens_for(Session, "after_flush")
def _note_price_changes(session: Session, flush_context) -> None:
    _note(session, (*session.new, *session.dirty, *session.deleted))


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_price_changes(state: ORMExecuteState) -> None:
    """`update(Service)…` and `query(FxRate).delete()` change prices without a flush."""
    if not (state.is_update or state.is_delete):
        return
    classes = {m.class_ for m in state.all_mappers}
    if any(issubclass(c, GLOBAL_PRICE_MODELS) for c in classes):
        state.session.info[GLOBAL_FLAG] = True
    elif any(issubclass(c, TENANT_PRICE_MODELS) for c in classes):
        state.session.info[GLOBAL_FLAG] = True  # the tenants are unknown: bump everyone


@event.listens_for(Session, "after_commit")
def _publish_price_changes(session: Session) -> None:
    changed_global = session.info.pop(GLOBAL_FLAG, False)
    tenants = session.info.pop(TENANTS_FLAG, set())
    if not (changed_global or tenants) or not has_app_context():
        return
    cache = current_app.extensions.get("pasok_price_cache")
    if cache is not None:
        cache.invalidate(None if changed_global else tenants)
    try:
        pipe = get_redis().pipeline(transaction=False)
        if changed_global:
            pipe.incr(GLOBAL_VERSION_KEY)
        for tenant_id in tenants:
            pipe.incr(tenant_version_key(tenant_id))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish a price change; other processes see it later: %s", exc)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_price_changes(session: Session) -> None:
    session.info.pop(GLOBAL_FLAG, None)
    session.info.pop(TENANTS_FLAG, None)
