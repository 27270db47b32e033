"""The public price list at `/services`: priced services by category, search and filter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.catalog.models import PUBLISHED, UNLISTED, Category, Service, ServiceRoute
from app.extensions import db
from app.money.fx import set_rate
from app.panels.models import Tenant
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants
from tests.conftest import sign_in


@pytest.fixture
def shop(app, make):
    """acme sells in USD, nusa in IDR (USD/IDR 16000). Likes: a (1.00 USD, refill) and
    b (0.333333 USD, cancel); Views: c (1.25 USD); d is unlisted and e has no route."""
    ids = {"acme": make.tenant("acme", currency="USD"), "nusa": make.tenant("nusa", currency="IDR")}
    make.customer(ids["acme"])
    with app.app_context(), across_tenants():
        usd = Provider(name="up", api_url="http://x.example/api/v2", api_key="k", currency="USD")
        likes, views = Category(name="Likes", position=1), Category(name="Views", position=2)
        for name, cost, category, status, refill, cancel in [
            ("Alpha Likes", "1.00", likes, PUBLISHED, True, False),
            ("Beta Likes", "0.333333", likes, PUBLISHED, False, True),
            ("Gamma Views", "1.25", views, PUBLISHED, False, False),
            ("Delta Unlisted", "1.00", views, UNLISTED, False, False),
            ("Epsilon Unrouted", None, views, PUBLISHED, False, False),
        ]:
            service = Service(category=category, name=name, description=f"about {name}",
                              min_quantity=10, max_quantity=50000, status=status,
                              refill=refill, cancel=cancel)  # fmt: skip
            db.session.add(service)
            if cost is not None:
                ps = ProviderService(
                    provider=usd, external_id=name, name=name, category="x", type="Default",
                    rate=Decimal(cost), min_quantity=10, max_quantity=50000,
                )  # fmt: skip
                db.session.add_all([ps, ServiceRoute(service=service, provider_service=ps)])
            db.session.flush()
            ids[name.split()[0].lower()] = service.id
        set_rate("USD", "IDR", "16000", actor="test")
        db.session.commit()
        ids["likes"], ids["views"] = likes.id, views.id
    return ids


def page(browser_for, host="acme.localhost", path="/services"):
    response = browser_for(host).get(path)
    assert response.status_code == 200
    return response.data.decode()


def test_lists_published_priced_services_in_the_tenants_currency(shop, browser_for):
    acme = page(browser_for)
    assert "USD 1.30" in acme and "USD 0.4333" in acme and "USD 1.625" in acme
    assert acme.index("Alpha Likes") < acme.index("Beta Likes") < acme.index("Gamma Views")
    assert acme.index(">Likes<") < acme.index(">Views<")
    assert "10 \u2013 50000" in acme
    assert f'id="service-{shop["alpha"]}"' in acme
    assert "Delta Unlisted" not in acme and "Epsilon Unrouted" not in acme
    nusa = page(browser_for, "nusa.localhost")
    assert "IDR 20800" in nusa and "IDR 6933" in nusa and "IDR 26000" in nusa
    assert "USD" not in nusa


def test_badges_and_the_order_link_follow_the_visitor(shop, browser_for):
    acme = page(browser_for)
    assert acme.count(">Refill<") == 1 and acme.count(">Cancel<") == 1
    assert "/orders/new" not in acme and 'href="/register"' in acme
    client = browser_for("acme.localhost")
    sign_in(client, "/login", "alice@example.com")
    signed_in = client.get("/services").data.decode()
    assert f'href="/orders/new?service={shop["alpha"]}"' in signed_in


def test_search_by_name_or_category_ignores_case(shop, browser_for):
    found = page(browser_for, path="/services?q=bEtA")
    assert "Beta Likes" in found and "Alpha Likes" not in found and "Gamma Views" not in found
    by_category = page(browser_for, path="/services?q=views")
    assert "Gamma Views" in by_category and "Alpha Likes" not in by_category
    nothing = page(browser_for, path="/services?q=zzz")
    assert "No services match your search" in nothing and "Beta Likes" not in nothing


def test_category_filter(shop, browser_for):
    views = page(browser_for, path=f"/services?category={shop['views']}")
    assert "Gamma Views" in views and "Alpha Likes" not in views
    assert f'<option value="{shop["views"]}" selected>' in views
    likes = page(browser_for, path=f"/services?category={shop['likes']}&q=alpha")
    assert "Alpha Likes" in likes and "Beta Likes" not in likes
    assert "Alpha Likes" in page(browser_for, path="/services?category=oops")  # ignored


def test_overrides_apply_to_their_tenant_only(app, shop, browser_for):
    from app.pricing.retail import set_override

    with app.app_context(), across_tenants():
        set_override(shop["acme"], service_id=shop["alpha"], name="IG Likes HQ", actor="test")
        set_override(shop["acme"], service_id=shop["beta"], hidden=True, actor="test")
        set_override(shop["acme"], category_id=shop["views"], name="Instagram Views", actor="test")
        db.session.commit()
    acme = page(browser_for)
    assert "IG Likes HQ" in acme and "Beta Likes" not in acme and "Instagram Views" in acme
    nusa = page(browser_for, "nusa.localhost")
    assert "IG Likes HQ" not in nusa and "Instagram Views" not in nusa
    assert "Alpha Likes" in nusa and "Beta Likes" in nusa


def test_an_empty_catalog_says_so(make, browser_for):
    make.tenant("kosong")
    assert "No services yet" in page(browser_for, "kosong.localhost")


def test_the_page_is_not_on_the_platform_domain(app, browser_for):
    assert browser_for("localhost").get("/services").status_code == 404


@pytest.mark.parametrize("theme", ["base", "aurora", "nusantara"])
def test_renders_in_every_theme_with_a_nav_link(app, shop, browser_for, theme):
    with app.app_context(), across_tenants():
        db.session.get(Tenant, shop["acme"]).theme = theme
        db.session.commit()
    html = page(browser_for)
    assert f"theme-{theme}" in html and "Alpha Likes" in html
    assert 'href="/services" aria-current="page"' in html
    assert 'href="/services"' in page(browser_for, path="/")


def test_an_indonesian_panel_is_in_indonesian(make, shop, browser_for):
    make.tenant("toko", currency="IDR", locale="id")
    html = page(browser_for, "toko.localhost")
    assert "Layanan" in html and "Cari" in html and "Semua kategori" in html
    assert "Services" not in html
