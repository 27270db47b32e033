"""Wholesale prices: cost → platform currency → the most specific rule → 6 decimals."""

from decimal import Decimal

import pytest

from app.catalog.models import Category, Service, ServiceRoute
from app.errors import ValidationError
from app.extensions import db
from app.money.fx import MissingFxRate, set_rate
from app.pricing.wholesale import clear_rule, set_fixed_rate, set_markup, wholesale_prices
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants

D = Decimal


@pytest.fixture
def catalog(app):
    """Two categories; service a (cost 1.00 USD), b (0.333333 USD), c (20000 IDR)."""
    with app.app_context(), across_tenants():
        usd = Provider(name="up", api_url="http://x.example/api/v2", api_key="k", currency="USD")
        idr = Provider(name="lokal", api_url="http://y.example/api/v2", api_key="k", currency="IDR")
        likes, views = Category(name="Likes"), Category(name="Views")
        services = {}
        for name, provider, cost, category in [
            ("a", usd, "1.00", likes),
            ("b", usd, "0.333333", likes),
            ("c", idr, "20000", views),
        ]:
            ps = ProviderService(
                provider=provider, external_id=name, name=name, category="x", type="Default",
                rate=D(cost), min_quantity=10, max_quantity=1000,
            )  # fmt: skip
            service = Service(category=category, name=name, min_quantity=10, max_quantity=1000)
            db.session.add_all([ps, service, ServiceRoute(service=service, provider_service=ps)])
            services[name] = service
        set_rate("USD", "IDR", "16000", actor="test")
        db.session.commit()
        yield services, likes
        db.session.rollback()


def rates(services):
    prices = wholesale_prices()
    return {name: prices[s.id].rate for name, s in services.items()}


def test_no_rules_means_cost_in_the_platform_currency(catalog):
    services, _ = catalog
    assert rates(services) == {"a": D("1.00"), "b": D("0.333333"), "c": D("1.25")}


def test_the_most_specific_rule_wins(catalog):
    services, likes = catalog
    set_markup(D("20"), actor="test")
    set_markup(D("50"), category=likes, actor="test")
    set_fixed_rate(D("0.9"), service=services["a"], actor="test")
    db.session.commit()
    prices = wholesale_prices()
    assert prices[services["a"].id].rate == D("0.9")  # service fixed
    assert prices[services["a"].id].rule == "service fixed"
    assert prices[services["b"].id].rate == D("0.500000")  # 0.333333 * 1.5 = 0.4999995 → half-up
    assert prices[services["b"].id].rule == "category markup"
    assert prices[services["c"].id].rate == D("1.5")  # 1.25 * 1.2
    assert prices[services["c"].id].rule == "global markup"
    assert prices[services["a"].id].margin == D("-0.1")  # below cost: the console flags it
    clear_rule(service=services["a"], actor="test")
    db.session.commit()
    assert wholesale_prices()[services["a"].id].rate == D("1.5")


def test_the_first_available_route_sets_the_cost(catalog):
    services, _ = catalog
    service = services["a"]
    fallback = ProviderService(provider=service.routes[0].provider_service.provider,
                               external_id="a2", name="a2", category="x", type="Default",
                               rate=D("2"), min_quantity=10, max_quantity=1000)  # fmt: skip
    db.session.add(ServiceRoute(service=service, provider_service=fallback, priority=2))
    db.session.commit()
    assert wholesale_prices([service.id])[service.id].cost == D("1.00")
    service.routes[0].provider_service.available = False
    db.session.commit()
    assert wholesale_prices([service.id])[service.id].cost == D("2")
    fallback.available = False
    db.session.commit()
    assert service.id not in wholesale_prices([service.id])  # no route, no price


def test_a_missing_exchange_rate_is_a_clear_error(catalog):
    from app.money.models import FxRate

    db.session.query(FxRate).delete()
    db.session.commit()
    with pytest.raises(MissingFxRate):
        wholesale_prices()


@pytest.mark.parametrize("percent", [D("-100"), D("-150"), D("10001")])
def test_bad_markups_are_refused(catalog, percent):
    with pytest.raises(ValidationError):
        set_markup(percent, actor="test")


def test_a_fixed_rate_must_be_positive(catalog):
    services, _ = catalog
    with pytest.raises(ValidationError):
        set_fixed_rate(D("0"), service=services["a"], actor="test")
