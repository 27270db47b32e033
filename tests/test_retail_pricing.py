"""Retail prices: wholesale → tenant currency → the tenant's rule → its rounding, then discounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis
from sqlalchemy import event, select, text

from app.audit.models import AuditEntry
from app.catalog.models import DISABLED, PUBLISHED, UNLISTED, Category, Service, ServiceRoute
from app.errors import ValidationError
from app.extensions import db
from app.money.fx import set_rate
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants, tenant_scope
from tenants.scoping import TenantScopeError

D = Decimal


@pytest.fixture
def shop(app, make):
    """acme sells in USD, nusa in IDR (USD/IDR 16000). Services: a (cost 1.00 USD) and
    b (0.333333 USD) in Likes; c (20000 IDR = 1.25 USD) in Views; d unlisted; e unrouted."""
    acme, nusa = make.tenant("acme", currency="USD"), make.tenant("nusa", currency="IDR")
    customer = make.customer(acme)
    nusa_customer = make.customer(nusa, "budi@example.com")
    with app.app_context(), across_tenants():
        usd = Provider(name="up", api_url="http://x.example/api/v2", api_key="k", currency="USD")
        idr = Provider(name="lokal", api_url="http://y.example/api/v2", api_key="k", currency="IDR")
        likes = Category(name="Likes", position=1)
        views = Category(name="Views", position=2)
        services = {}
        for name, provider, cost, category, status in [
            ("a", usd, "1.00", likes, PUBLISHED),
            ("b", usd, "0.333333", likes, PUBLISHED),
            ("c", idr, "20000", views, PUBLISHED),
            ("d", usd, "1.00", views, UNLISTED),
            ("e", None, None, views, PUBLISHED),
        ]:
            service = Service(category=category, name=name, description=f"about {name}",
                              min_quantity=10, max_quantity=10000, status=status)  # fmt: skip
            db.session.add(service)
            if provider is not None:
                ps = ProviderService(
                    provider=provider, external_id=name, name=name, category="x", type="Default",
                    rate=D(cost), min_quantity=10, max_quantity=10000,
                )  # fmt: skip
                db.session.add_all([ps, ServiceRoute(service=service, provider_service=ps)])
            services[name] = service
        set_rate("USD", "IDR", "16000", actor="test")
        db.session.commit()
        yield Shop(acme, nusa, customer, nusa_customer, {k: s.id for k, s in services.items()},
                   likes.id, views.id)  # fmt: skip
        db.session.rollback()


class Shop:
    def __init__(self, acme, nusa, customer, nusa_customer, ids, likes, views):
        self.acme, self.nusa = acme, nusa
        self.customer, self.nusa_customer = customer, nusa_customer
        self.ids, self.likes, self.views = ids, likes, views

    def rates(self, tenant_id):
        from app.pricing.retail import price_list

        prices = price_list(tenant_id)
        return {name: prices.get(i).rate for name, i in self.ids.items() if i in prices}


def retail():
    from app.pricing import retail as module

    return module


# --- the price list -------------------------------------------------------------------------


def test_defaults_are_a_30_percent_markup_and_the_currencys_rounding(shop):
    # USD rounds to 4 places, IDR to whole rupiah; d is unlisted and e has no route.
    assert shop.rates(shop.acme) == {"a": D("1.3"), "b": D("0.4333"), "c": D("1.625")}
    assert shop.rates(shop.nusa) == {"a": D("20800"), "b": D("6933"), "c": D("26000")}


def test_wholesale_is_converted_exactly_to_the_tenant_currency(shop):
    price = retail().price_list(shop.nusa).get(shop.ids["b"])
    assert price.wholesale == D("0.333333")
    assert price.fx_rate == D("16000")
    assert price.wholesale_in_tenant == D("5333.328")
    assert price.rule == "global markup"


def test_usd_rounds_half_up_to_two_places(shop):
    retail().set_tenant_pricing(
        shop.acme, markup=D("12.5"), rounding="2dp", min_margin=D(0), actor="test"
    )
    db.session.commit()
    # 1.125 → 1.13 (half-up, not half-even); 0.374999625 → 0.37; 1.40625 → 1.41
    assert shop.rates(shop.acme) == {"a": D("1.13"), "b": D("0.37"), "c": D("1.41")}


def test_idr_rounds_half_up_to_the_nearest_100(shop):
    retail().set_tenant_pricing(
        shop.nusa, markup=D("0.3125"), rounding="nearest:100", min_margin=D(0), actor="test"
    )
    db.session.commit()
    # 16050 → 16100; 5349.994… → 5300; 20062.5 → 20100
    assert shop.rates(shop.nusa) == {"a": D("16100"), "b": D("5300"), "c": D("20100")}


def test_the_most_specific_rule_wins(shop):
    r = retail()
    r.set_price_rule(shop.nusa, category_id=shop.likes, markup=D(50), actor="test")
    db.session.commit()
    assert shop.rates(shop.nusa) == {"a": D("24000"), "b": D("8000"), "c": D("26000")}
    r.set_price_rule(shop.nusa, service_id=shop.ids["b"], markup=D(10), actor="test")
    r.set_price_rule(shop.nusa, service_id=shop.ids["a"], fixed_rate=D("17050"), actor="test")
    db.session.commit()
    prices = r.price_list(shop.nusa)
    rules = {name: prices.get(i).rule for name, i in shop.ids.items() if i in prices}
    assert rules == {"a": "service fixed", "b": "service markup", "c": "global markup"}
    # A fixed rate is shown as typed: the rounding policy is for computed rates.
    assert shop.rates(shop.nusa) == {"a": D("17050"), "b": D("5867"), "c": D("26000")}
    r.clear_price_rule(shop.nusa, service_id=shop.ids["a"], actor="test")
    db.session.commit()
    assert shop.rates(shop.nusa)["a"] == D("24000")  # back to its category's markup


def test_a_rule_change_is_audited(shop):
    retail().set_price_rule(shop.acme, category_id=shop.likes, markup=D(40), actor="test")
    db.session.commit()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "retail.rule"))
    assert (entry.tenant_id, entry.target) == (shop.acme, f"category:{shop.likes}")
    assert entry.details == {"markup_percent": "40"}


def test_hidden_services_and_categories_are_not_for_sale(shop):
    r = retail()
    r.set_override(shop.acme, service_id=shop.ids["b"], hidden=True, actor="test")
    r.set_override(shop.acme, category_id=shop.views, hidden=True, actor="test")
    db.session.commit()
    assert set(shop.rates(shop.acme)) == {"a"}
    assert set(shop.rates(shop.nusa)) == {"a", "b", "c"}  # another tenant's curation
    with pytest.raises(r.ServiceNotForSale):
        r.quote(shop.acme, shop.ids["b"])


def test_renames_and_descriptions_override_the_platforms(shop):
    r = retail()
    r.set_override(shop.acme, service_id=shop.ids["a"], name="IG Likes HQ",
                   description="Real-looking likes", actor="test")  # fmt: skip
    r.set_override(shop.acme, category_id=shop.likes, name="Instagram", actor="test")
    db.session.commit()
    a, b = (r.price_list(shop.acme).get(shop.ids[n]) for n in "ab")
    assert (a.name, a.category, a.description) == ("IG Likes HQ", "Instagram", "Real-looking likes")
    assert (b.name, b.category, b.description) == ("b", "Instagram", "about b")
    assert r.set_override(shop.acme, service_id=shop.ids["a"], actor="test") is None  # cleared
    db.session.commit()
    assert r.price_list(shop.acme).get(shop.ids["a"]).name == "a"


def test_retail_below_wholesale_is_flagged_not_corrected(shop):
    r = retail()
    r.set_price_rule(shop.acme, service_id=shop.ids["a"], fixed_rate=D("0.9"), actor="test")
    r.set_tenant_pricing(shop.acme, markup=D(30), rounding="4dp", min_margin=D(40), actor="test")
    db.session.commit()
    a = r.price_list(shop.acme).get(shop.ids["a"])
    assert (a.rate, a.below_wholesale, a.below_min_margin) == (D("0.9"), True, True)
    c = r.price_list(shop.acme).get(shop.ids["c"])  # 30% markup is under the 40% minimum
    assert (c.rate, c.below_wholesale, c.below_min_margin) == (D("1.625"), False, True)
    warned = {p.service_id for p in r.below_wholesale_services(shop.acme)}
    assert warned == {shop.ids["a"], shop.ids["b"], shop.ids["c"]}
    assert r.below_wholesale_services(shop.nusa) == []


def test_a_coarse_rounding_step_below_wholesale_is_flagged(shop):
    r = retail()
    r.set_tenant_pricing(shop.acme, markup=D(0), rounding="nearest:1", min_margin=D(0),
                         actor="test")  # fmt: skip
    db.session.commit()
    warned = {p.service_id for p in r.below_wholesale_services(shop.acme)}
    assert warned == {shop.ids["b"], shop.ids["c"]}  # 0.333333 → 0 and 1.25 → 1
    assert r.price_list(shop.acme).get(shop.ids["b"]).rate == D(0)


# --- quotes and discounts -------------------------------------------------------------------


def test_a_quote_without_a_customer_is_the_list_price(shop):
    q = retail().quote(shop.acme, shop.ids["a"])
    assert (q.rate, q.retail_rate, q.discount_percent, q.discount_source) == (
        D("1.3"), D("1.3"), D(0), None,
    )  # fmt: skip


def test_a_group_discount_applies_to_its_customers(shop):
    r = retail()
    group = r.set_group(shop.acme, name="Resellers", discount_percent=D(10), actor="test")
    db.session.flush()
    r.set_customer_discount(shop.acme, shop.customer, group_id=group.id, actor="test")
    db.session.commit()
    q = r.quote(shop.acme, shop.ids["a"], shop.customer)
    assert (q.rate, q.discount_percent, q.discount_source) == (D("1.17"), D(10), "group")


def test_a_personal_discount_wins_over_the_group(shop):
    r = retail()
    group = r.set_group(shop.acme, name="Resellers", discount_percent=D(10), actor="test")
    db.session.flush()
    r.set_customer_discount(shop.acme, shop.customer, group_id=group.id,
                            discount_percent=D(20), actor="test")  # fmt: skip
    db.session.commit()
    q = r.quote(shop.acme, shop.ids["a"], shop.customer)
    assert (q.rate, q.discount_source, q.discount_clamped) == (D("1.04"), "personal", False)


def test_a_discount_stops_at_wholesale_and_says_so(shop):
    r = retail()
    r.set_customer_discount(shop.acme, shop.customer, discount_percent=D(50), actor="test")
    db.session.commit()
    q = r.quote(shop.acme, shop.ids["a"], shop.customer)  # 0.65 would be below 1.00
    assert (q.rate, q.discount_clamped, q.below_wholesale) == (D("1.00"), True, False)


def test_a_discounted_idr_rate_is_rounded_and_stops_at_the_next_step_above_cost(shop):
    r = retail()
    r.set_tenant_pricing(shop.nusa, markup=D(30), rounding="nearest:100", min_margin=D(0),
                         actor="test")  # fmt: skip
    r.set_customer_discount(shop.nusa, shop.nusa_customer, discount_percent=D(5), actor="test")
    db.session.commit()
    assert r.quote(shop.nusa, shop.ids["a"], shop.nusa_customer).rate == D("19800")  # 19760
    r.set_customer_discount(shop.nusa, shop.nusa_customer, discount_percent=D(50), actor="test")
    db.session.commit()
    q = r.quote(shop.nusa, shop.ids["b"], shop.nusa_customer)  # cost 5333.328 IDR
    assert (q.retail_rate, q.rate, q.discount_clamped) == (D("6900"), D("5400"), True)


def test_a_discount_never_lowers_a_rate_the_tenant_set_below_cost(shop):
    r = retail()
    r.set_price_rule(shop.acme, service_id=shop.ids["a"], fixed_rate=D("0.9"), actor="test")
    r.set_customer_discount(shop.acme, shop.customer, discount_percent=D(10), actor="test")
    db.session.commit()
    q = r.quote(shop.acme, shop.ids["a"], shop.customer)
    assert (q.rate, q.discount_clamped, q.below_wholesale) == (D("0.9"), True, True)


def test_a_quote_for_a_quantity_carries_the_order_snapshot(shop):
    q = retail().quote(shop.acme, shop.ids["b"], quantity=333)
    assert q.charge == D("0.14429")  # 0.4333 * 0.333 = 0.1442889, half-up to 5 places
    assert q.wholesale_charge == D("0.11100")  # 0.333333 * 0.333 = 0.110999889
    assert (q.wholesale, q.fx_rate, q.currency, q.platform_currency) == (
        D("0.333333"), D(1), "USD", "USD",
    )  # fmt: skip
    q = retail().quote(shop.nusa, shop.ids["a"], quantity=1500)
    assert (q.charge, q.wholesale_charge, q.fx_rate) == (D("31200.00"), D("1.50000"), D(16000))


def test_another_tenants_customer_gets_no_discount(shop):
    r = retail()
    r.set_customer_discount(shop.acme, shop.customer, discount_percent=D(20), actor="test")
    db.session.commit()
    assert r.quote(shop.nusa, shop.ids["a"], shop.customer).discount_percent == D(0)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"markup": D(-100), "rounding": "2dp", "min_margin": D(0)},
        {"markup": D(10001), "rounding": "2dp", "min_margin": D(0)},
        {"markup": D(30), "rounding": "nearest:0", "min_margin": D(0)},
        {"markup": D(30), "rounding": "2dp", "min_margin": D(-1)},
    ],
)
def test_bad_tenant_pricing_is_refused(shop, kwargs):
    with pytest.raises(ValidationError):
        retail().set_tenant_pricing(shop.acme, actor="test", **kwargs)


def test_bad_rules_and_discounts_are_refused(shop):
    r = retail()
    with pytest.raises(ValidationError):
        r.set_price_rule(shop.acme, category_id=shop.likes, fixed_rate=D(1), actor="test")
    with pytest.raises(ValidationError):
        r.set_price_rule(shop.acme, service_id=shop.ids["a"], markup=D(1), fixed_rate=D(1),
                         actor="test")  # fmt: skip
    with pytest.raises(ValidationError):
        r.set_price_rule(shop.acme, service_id=shop.ids["a"], fixed_rate=D(0), actor="test")
    with pytest.raises(ValidationError):
        r.set_customer_discount(shop.acme, shop.customer, discount_percent=D(101), actor="test")
    with pytest.raises(ValidationError):
        r.set_group(shop.acme, name=" ", discount_percent=D(5), actor="test")


# --- tenant isolation -----------------------------------------------------------------------


def test_one_tenants_rules_never_price_another(shop):
    r = retail()
    r.set_price_rule(shop.acme, category_id=shop.likes, markup=D(100), actor="test")
    r.set_tenant_pricing(shop.acme, markup=D(5), rounding="2dp", min_margin=D(0), actor="test")
    db.session.commit()
    assert shop.rates(shop.acme) == {"a": D("2.00"), "b": D("0.67"), "c": D("1.31")}
    assert shop.rates(shop.nusa) == {"a": D("20800"), "b": D("6933"), "c": D("26000")}


def test_a_tenant_scope_reads_only_its_own_rules(shop):
    from app.pricing.tenant_models import PriceRule

    r = retail()
    r.set_price_rule(shop.acme, category_id=shop.likes, markup=D(100), actor="test")
    r.set_price_rule(shop.nusa, category_id=shop.likes, markup=D(50), actor="test")
    db.session.commit()
    with tenant_scope(shop.acme):
        assert {rule.tenant_id for rule in db.session.scalars(select(PriceRule))} == {shop.acme}
        with pytest.raises(TenantScopeError):
            r.price_list(shop.nusa)
        r.set_price_rule(shop.nusa, category_id=shop.views, markup=D(1), actor="test")
        with pytest.raises(TenantScopeError):
            db.session.flush()
    db.session.rollback()


# --- caching --------------------------------------------------------------------------------


def test_the_price_list_is_cached(shop):
    first = retail().price_list(shop.acme)
    assert retail().price_list(shop.acme) is first
    # A write that bypasses the ORM is not seen until a version changes.
    db.session.execute(text("UPDATE provider_services SET rate = 5000000"))
    db.session.commit()
    assert retail().price_list(shop.acme) is first


def test_a_rule_change_is_seen_at_once_in_the_process(shop):
    assert shop.rates(shop.acme)["a"] == D("1.3")
    retail().set_price_rule(shop.acme, service_id=shop.ids["a"], markup=D(50), actor="test")
    db.session.commit()
    assert shop.rates(shop.acme)["a"] == D("1.5")


def test_an_uncommitted_change_is_never_cached(shop):
    r = retail()
    r.set_price_rule(shop.acme, service_id=shop.ids["a"], markup=D(50), actor="test")
    db.session.flush()
    assert shop.rates(shop.acme)["a"] == D("1.5")
    db.session.rollback()
    assert shop.rates(shop.acme)["a"] == D("1.3")


def test_an_fx_change_reprices_every_tenant(shop):
    assert shop.rates(shop.nusa)["a"] == D("20800")
    set_rate("USD", "IDR", "15000", actor="test")
    db.session.commit()
    assert shop.rates(shop.nusa)["a"] == D("19500")


def test_catalog_and_cost_changes_reprice_every_tenant(shop):
    assert set(shop.rates(shop.acme)) == {"a", "b", "c"}
    db.session.get(Service, shop.ids["b"]).status = DISABLED
    db.session.execute(
        ProviderService.__table__.update()
        .where(ProviderService.external_id == "a")
        .values(rate=D("2.00"))
    )
    db.session.commit()
    assert shop.rates(shop.acme) == {"a": D("2.6"), "c": D("1.625")}


def test_a_bulk_orm_update_reprices(shop):
    from sqlalchemy import update

    assert shop.rates(shop.acme)["a"] == D("1.3")
    db.session.execute(update(ProviderService).where(ProviderService.external_id == "a")
                       .values(rate=D("3.00")))  # fmt: skip
    db.session.commit()
    assert shop.rates(shop.acme)["a"] == D("3.9")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def second_process(make_app, app, clock, redis_client=None):
    """Another process: its own app, session and price cache, the same database and Redis."""
    from app.pricing.retail import PriceCache

    other = make_app()
    shared = redis_client or app.extensions["pasok_redis"]
    other.extensions["pasok_redis"] = shared
    other.extensions["pasok_price_cache"] = PriceCache(lambda: shared, clock=clock)
    return other


def test_another_process_sees_a_change_within_a_second(shop, app, make_app):
    clock = Clock()
    other = second_process(make_app, app, clock)
    with other.app_context():
        assert shop.rates(shop.acme)["a"] == D("1.3")
    retail().set_price_rule(shop.acme, service_id=shop.ids["a"], markup=D(50), actor="test")
    db.session.commit()
    with other.app_context():
        assert shop.rates(shop.acme)["a"] == D("1.3")  # checked less than a second ago
        clock.now += 1.01
        assert shop.rates(shop.acme)["a"] == D("1.5")
    set_rate("USD", "IDR", "15000", actor="test")  # a global change
    db.session.commit()
    with other.app_context():
        assert shop.rates(shop.nusa)["a"] == D("19500")  # never cached there before
    set_rate("USD", "IDR", "14000", actor="test")
    db.session.commit()
    with other.app_context():
        assert shop.rates(shop.nusa)["a"] == D("19500")
        clock.now += 1.01
        assert shop.rates(shop.nusa)["a"] == D("18200")


class DeadRedis:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise redis.ConnectionError("redis is down")

        return fail


def test_without_redis_prices_are_cached_briefly(shop, app, make_app):
    clock = Clock()
    other = second_process(make_app, app, clock, DeadRedis())
    with other.app_context(), across_tenants():
        assert shop.rates(shop.acme)["a"] == D("1.3")
        retail().set_tenant_pricing(shop.acme, markup=D(50), rounding="4dp", min_margin=D(0),
                                    actor="test")  # fmt: skip
        db.session.commit()  # the bump fails quietly; this process drops its own entry
        assert shop.rates(shop.acme)["a"] == D("1.5")
        db.session.execute(text("UPDATE tenant_pricing SET markup_percent = '10'"))
        db.session.commit()
        clock.now += 4
        assert shop.rates(shop.acme)["a"] == D("1.5")
        clock.now += 1.01
        assert shop.rates(shop.acme)["a"] == D("1.1")


def test_pricing_a_large_catalog_takes_a_fixed_number_of_queries(shop, app):
    def statements_for_price_list(tenant_id):
        count = 0

        def counter(*args):
            nonlocal count
            count += 1

        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            with tenant_scope(tenant_id):
                retail().compute_price_list(tenant_id)
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)
        return count

    small = statements_for_price_list(shop.nusa)
    provider = db.session.scalar(select(Provider).where(Provider.currency == "USD"))
    category = db.session.get(Category, shop.likes)
    for n in range(1000):
        ps = ProviderService(provider=provider, external_id=f"bulk{n}", name=f"bulk{n}",
                             category="x", type="Default", rate=D("0.5"), min_quantity=10,
                             max_quantity=1000)  # fmt: skip
        service = Service(category=category, name=f"bulk{n}", min_quantity=10,
                          max_quantity=1000, status=PUBLISHED)  # fmt: skip
        db.session.add_all([ps, service, ServiceRoute(service=service, provider_service=ps)])
        if n % 2:
            db.session.flush()
            retail().set_override(shop.nusa, service_id=service.id, name=f"B{n}", actor="test")
    db.session.commit()
    assert statements_for_price_list(shop.nusa) == small
    assert len(retail().price_list(shop.nusa)) == 1003
