"""The owner's pricing (/admin/pricing) and catalog curation (/admin/catalog) pages."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.catalog.models import PUBLISHED, UNLISTED, Category, Service, ServiceRoute
from app.extensions import db
from app.money.fx import set_rate
from app.pricing.tenant_models import CatalogOverride, CustomerGroup, PriceRule, TenantPricing
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants, tenant_scope
from tests.conftest import sign_in

D = Decimal


@pytest.fixture
def shop(app, make):
    """acme sells in USD, nusa in IDR (USD/IDR 16000), each with its owner. Likes: a (cost
    1.00 USD) and b (0.333333 USD); Views: c (1.25 USD); d is unlisted."""
    ids = {
        "acme": make.tenant("acme", currency="USD"),
        "nusa": make.tenant("nusa", currency="IDR", locale="en"),
    }
    with app.app_context(), across_tenants():
        usd = Provider(name="up", api_url="http://x.example/api/v2", api_key="k", currency="USD")
        likes, views = Category(name="Likes", position=1), Category(name="Views", position=2)
        for key, name, cost, category, status in [
            ("a", "Alpha Likes", "1.00", likes, PUBLISHED),
            ("b", "Beta Likes", "0.333333", likes, PUBLISHED),
            ("c", "Gamma Views", "1.25", views, PUBLISHED),
            ("d", "Delta Unlisted", "1.00", views, UNLISTED),
        ]:
            service = Service(
                category=category,
                name=name,
                description=f"about {name}",
                min_quantity=10,
                max_quantity=50000,
                status=status,
            )
            ps = ProviderService(
                provider=usd,
                external_id=key,
                name=name,
                category="x",
                type="Default",
                rate=D(cost),
                min_quantity=10,
                max_quantity=50000,
            )
            db.session.add_all([service, ps, ServiceRoute(service=service, provider_service=ps)])
            db.session.flush()
            ids[key] = service.id
        set_rate("USD", "IDR", "16000", actor="test")
        db.session.commit()
        ids["likes"], ids["views"] = likes.id, views.id
    return ids


@pytest.fixture
def owner(shop, browser_for):
    client = browser_for("acme.localhost")
    assert sign_in(client, "/admin/login", "owner@acme.example.com").status_code == 302
    return client


def rates(app, tenant_id):
    from app.pricing.retail import price_list

    with app.app_context(), tenant_scope(tenant_id):
        return {p.name: p.rate for p in price_list(tenant_id).prices}


def rows(app, model, tenant_id):
    with app.app_context(), across_tenants():
        return db.session.scalars(select(model).where(model.tenant_id == tenant_id)).all()


def audit_actions(app, tenant_id):
    return [e.action for e in rows(app, AuditEntry, tenant_id)]


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.data.decode()


def margin_row(html: str, service_id: int) -> str:
    """The margin table's row of a service."""
    table = html[html.index('id="margins"') :]
    match = re.search(
        rf"<tr[^>]*>\s*<td[^>]*><a[^>]*><span[^>]*>#{service_id}</span>.*?</tr>", table, re.S
    )
    assert match, f"no row for #{service_id}"
    return match.group(0)


SETTINGS = {
    "settings-markup_percent": "30",
    "settings-rounding": "4dp",
    "settings-min_margin_percent": "0",
}


# --- the pages ------------------------------------------------------------------------------


def test_the_owner_sees_pricing_and_catalog_in_the_nav_and_their_pages(owner, shop):
    html = html_of(owner.get("/admin/pricing"))
    assert 'href="/admin/pricing" aria-current="page"' in html and 'href="/admin/catalog"' in html
    assert "Global markup" in html and "Customer groups" in html and "Margins" in html
    assert "Alpha Likes" in html and "Delta Unlisted" not in html
    catalog = html_of(owner.get("/admin/catalog"))
    likes, views = (catalog.index(f'group-row__name">{c}<') for c in ("Likes", "Views"))
    assert likes < catalog.index("Alpha Likes") < views < catalog.index("Gamma Views")
    assert "provider updates never overwrite them" in catalog
    assert "Alpha Likes" in html_of(owner.get(f"/admin/catalog/services/{shop['a']}"))
    assert "Catalog name: Views" in html_of(owner.get(f"/admin/catalog/categories/{shop['views']}"))


@pytest.mark.parametrize("role", ["admin", "support"])
def test_staff_who_are_not_the_owner_get_403(make, shop, browser_for, role):
    make.staff(shop["acme"], f"{role}@acme.example.com", role=role)
    client = browser_for("acme.localhost")
    sign_in(client, "/admin/login", f"{role}@acme.example.com")
    for method, path in [
        ("get", "/admin/pricing"),
        ("post", "/admin/pricing/settings"),
        ("post", "/admin/pricing/categories"),
        ("post", "/admin/pricing/services"),
        ("post", "/admin/pricing/groups"),
        ("get", "/admin/catalog"),
        ("post", "/admin/catalog/actions"),
        ("get", f"/admin/catalog/services/{shop['a']}"),
        ("post", f"/admin/catalog/services/{shop['a']}/price"),
        ("get", f"/admin/catalog/categories/{shop['likes']}"),
    ]:
        assert getattr(client, method)(path).status_code == 403, path
    html = html_of(client.get("/admin/"))
    assert 'href="/admin/pricing"' not in html and 'href="/admin/catalog"' not in html


def test_signed_out_visitors_are_sent_to_sign_in(shop, browser_for):
    response = browser_for("acme.localhost").get("/admin/pricing")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_an_idr_panel_shows_wholesale_converted_and_rounding_for_rupiah(shop, browser_for):
    client = browser_for("nusa.localhost")
    sign_in(client, "/admin/login", "owner@nusa.example.com")
    html = html_of(client.get("/admin/pricing"))
    row = margin_row(html, shop["a"])
    assert "16000" in row and "20800" in row and "1.00 USD" in row
    assert '<option value="nearest:100"' in html and '<option value="2dp"' not in html
    assert "1 USD = 16000 IDR" in html


def test_a_missing_exchange_rate_is_explained_not_a_500(make, browser_for):
    make.tenant("toko", currency="IDR", locale="en")  # no USD/IDR rate at all
    client = browser_for("toko.localhost")
    sign_in(client, "/admin/login", "owner@toko.example.com")
    assert "No exchange rate for USD/IDR" in html_of(client.get("/admin/pricing"))
    assert "No exchange rate for USD/IDR" in html_of(client.get("/admin/catalog"))


# --- the global settings --------------------------------------------------------------------


def test_saving_markup_rounding_and_minimum_margin(app, owner, shop):
    response = owner.post(
        "/admin/pricing/settings",
        data={
            "settings-markup_percent": "12.5",
            "settings-rounding": "2dp",
            "settings-min_margin_percent": "5",
        },
    )
    assert response.status_code == 302
    assert rates(app, shop["acme"]) == {
        "Alpha Likes": D("1.13"),
        "Beta Likes": D("0.37"),
        "Gamma Views": D("1.41"),
    }
    (saved,) = rows(app, TenantPricing, shop["acme"])
    assert (saved.markup_percent, saved.rounding, saved.min_margin_percent) == (
        D("12.5"),
        "2dp",
        D(5),
    )
    assert "retail.pricing" in audit_actions(app, shop["acme"])
    html = html_of(owner.get("/admin/pricing"))
    assert 'value="12.5"' in html and '<option selected value="2dp">' in html


def test_rounding_choices_are_those_of_the_panels_currency(app, owner, shop):
    html = html_of(owner.get("/admin/pricing"))
    assert '<option value="2dp">' in html and "nearest:100" not in html
    response = owner.post(
        "/admin/pricing/settings", data={**SETTINGS, "settings-rounding": "nearest:100"}
    )
    assert "Choose one of the rounding options" in html_of(response)
    assert rows(app, TenantPricing, shop["acme"]) == []


def test_a_preview_prices_the_catalog_and_saves_nothing(app, owner, shop):
    response = owner.post(
        "/admin/pricing/settings",
        data={**SETTINGS, "settings-markup_percent": "50", "preview": "1"},
    )
    html = html_of(response)
    assert "Preview: nothing is saved yet" in html
    assert "3 prices would change" in html
    preview = html[html.index('id="preview"') : html.index('id="settings"')]
    assert "1.30" in preview and "1.50" in preview  # Alpha: now, after
    assert 'value="50"' in html  # the form keeps what was typed, to save it
    assert rows(app, TenantPricing, shop["acme"]) == []
    assert "retail.pricing" not in audit_actions(app, shop["acme"])
    assert rates(app, shop["acme"])["Alpha Likes"] == D("1.3")
    after = html_of(owner.get("/admin/pricing"))
    assert "Preview: nothing is saved yet" not in after
    assert "1.30" in margin_row(after, shop["a"])


def test_a_preview_warns_of_prices_it_would_put_below_wholesale(owner, shop):
    html = html_of(
        owner.post(
            "/admin/pricing/settings",
            data={
                **SETTINGS,
                "settings-rounding": "up:0.01",
                "settings-markup_percent": "0",
                "settings-min_margin_percent": "10",
                "preview": "1",
            },
        )
    )
    assert "3 services would sell below wholesale or below your minimum margin" in html


BAD_SETTINGS = [
    ("markup_percent", "-5", "A negative number is not allowed here"),
    ("markup_percent", "abc", "is not a number"),
    ("markup_percent", "1,5", "without thousands separators"),
    ("markup_percent", "", "This field is required"),
    ("markup_percent", "20000", "Markup must be between -100 and 10000 percent"),
    ("markup_percent", "1.123456", "Use at most 4 decimal places"),
    ("min_margin_percent", "-1", "A negative number is not allowed here"),
    ("min_margin_percent", "5000", "The minimum margin must be between 0 and 1000 percent"),
    ("rounding", "bogus", "Choose one of the rounding options"),
]


def test_bad_settings_are_form_errors_saved_or_previewed(app, owner, shop):
    for field, value, error in BAD_SETTINGS:
        for preview in ("", "1"):
            data = {**SETTINGS, f"settings-{field}": value, "preview": preview}
            html = html_of(owner.post("/admin/pricing/settings", data=data))
            assert error in html and "field--error" in html, (field, value)
    assert rows(app, TenantPricing, shop["acme"]) == []


# --- rules and their precedence -------------------------------------------------------------


def test_rules_set_through_the_forms_and_their_precedence_in_the_margin_table(app, owner, shop):
    assert (
        owner.post(
            "/admin/pricing/categories",
            data={"category-category_id": shop["likes"], "category-markup_percent": "50"},
        ).status_code
        == 302
    )
    assert (
        owner.post(
            "/admin/pricing/services",
            data={"service-service_id": shop["b"], "service-kind": "markup", "service-value": "10"},
        ).status_code
        == 302
    )
    assert (
        owner.post(
            "/admin/pricing/services",
            data={
                "service-service_id": f"#{shop['a']}",
                "service-kind": "fixed",
                "service-value": "1.75",
            },
        ).status_code
        == 302
    )
    assert rates(app, shop["acme"]) == {
        "Alpha Likes": D("1.75"),
        "Beta Likes": D("0.3667"),
        "Gamma Views": D("1.625"),
    }
    html = html_of(owner.get("/admin/pricing"))
    a, b, c = (margin_row(html, shop[k]) for k in "abc")
    assert "Service fixed price" in a and "1.75" in a and "0.75" in a and "75%" in a
    assert "Service markup" in b and "10%" in b
    assert "Global markup" in c and "30%" in c
    # Without the service's own rule, the category's markup applies.
    (rule,) = [r for r in rows(app, PriceRule, shop["acme"]) if r.service_id == shop["b"]]
    assert owner.post(f"/admin/pricing/rules/{rule.id}/delete").status_code == 302
    b = margin_row(html_of(owner.get("/admin/pricing")), shop["b"])
    assert "Category markup" in b and "50%" in b and "0.50" in b
    assert audit_actions(app, shop["acme"]).count("retail.rule") == 4


def test_setting_a_category_again_replaces_its_markup(app, owner, shop):
    for markup in ("50", "20"):
        owner.post(
            "/admin/pricing/categories",
            data={"category-category_id": shop["likes"], "category-markup_percent": markup},
        )
    (rule,) = rows(app, PriceRule, shop["acme"])
    assert rule.markup_percent == D(20)
    html = html_of(owner.get(f"/admin/pricing?edit_category={shop['likes']}"))
    assert re.search(r'<input [^>]*name="category-markup_percent"[^>]*value="20"', html)


def test_a_rule_preview_shows_its_precedence_without_saving(app, owner, shop):
    html = html_of(
        owner.post(
            "/admin/pricing/categories",
            data={
                "category-category_id": shop["likes"],
                "category-markup_percent": "100",
                "preview": "1",
            },
        )
    )
    preview = html[html.index('id="preview"') : html.index('id="settings"')]
    assert "2 prices would change" in preview
    assert "Category markup" in preview and "100%" in preview and "2.00" in preview
    assert rows(app, PriceRule, shop["acme"]) == []


BAD_RULES = [
    (
        "/admin/pricing/categories",
        {"category-category_id": "99999", "category-markup_percent": "10"},
        "Choose a category",
    ),
    (
        "/admin/pricing/categories",
        {"category-category_id": "x", "category-markup_percent": "10"},
        "Choose a category",
    ),
    (
        "/admin/pricing/categories",
        {"category-category_id": "{likes}", "category-markup_percent": "-10"},
        "A negative number is not allowed here",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "{a}", "service-kind": "fixed", "service-value": "0"},
        "A fixed rate must be above zero",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "{a}", "service-kind": "fixed", "service-value": "abc"},
        "is not a number",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "{a}", "service-kind": "fixed", "service-value": "1.1234567"},
        "A rate has at most 6 decimal places",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "{a}", "service-kind": "bogus", "service-value": "1"},
        "Choose a markup or a fixed price",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "99999", "service-kind": "markup", "service-value": "10"},
        "No service on your catalog has that number",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "{d}", "service-kind": "markup", "service-value": "10"},
        "No service on your catalog has that number",
    ),
    (
        "/admin/pricing/services",
        {"service-service_id": "99999999999", "service-kind": "markup", "service-value": "10"},
        "No service on your catalog has that number",
    ),
]


def test_bad_rules_are_form_errors_saved_or_previewed(app, owner, shop):
    for url, data, error in BAD_RULES:
        data = {k: v.format(**shop) for k, v in data.items()}
        for preview in ("", "1"):
            html = html_of(owner.post(url, data={**data, "preview": preview}))
            assert error in html, data
    assert rows(app, PriceRule, shop["acme"]) == []


# --- the below-wholesale warning ------------------------------------------------------------


def test_the_below_wholesale_warning_appears_and_disappears(app, owner, shop):
    assert 'id="warning"' not in html_of(owner.get("/admin/pricing"))
    response = owner.post(
        "/admin/pricing/services",
        data={"service-service_id": shop["a"], "service-kind": "fixed", "service-value": "0.9"},
        follow_redirects=True,
    )
    html = html_of(response)
    assert "1 service now sells below wholesale" in html  # the flash after saving
    warning = html[
        html.index('id="warning"') : html.index("</section>", html.index('id="warning"'))
    ]
    assert "Alpha Likes" in warning and "below wholesale" in warning
    assert f'href="/admin/catalog/services/{shop["a"]}#price"' in warning
    assert "Beta Likes" not in warning
    service_page = html_of(owner.get(f"/admin/catalog/services/{shop['a']}"))
    assert "You sell this service below what it costs you" in service_page
    # Fixed from the service's own page.
    response = owner.post(
        f"/admin/catalog/services/{shop['a']}/price",
        data={"rule-kind": "fixed", "rule-value": "1.5"},
    )
    assert response.headers["Location"].endswith(f"/admin/catalog/services/{shop['a']}#price")
    assert 'id="warning"' not in html_of(owner.get("/admin/pricing"))


def test_a_price_under_the_minimum_margin_is_warned_too(owner, shop):
    owner.post("/admin/pricing/settings", data={**SETTINGS, "settings-min_margin_percent": "40"})
    html = html_of(owner.get("/admin/pricing"))
    assert "3 services sell below wholesale or below your minimum margin" in html
    assert "under minimum margin" in margin_row(html, shop["c"])
    only = html_of(owner.get("/admin/pricing?below=1"))
    assert "3 services on sale" in only


def test_the_margin_table_filters_and_pages(owner, shop):
    html = html_of(owner.get(f"/admin/pricing?category={shop['views']}"))
    assert "Gamma Views" in html[html.index('id="margins"') :]
    assert "Alpha Likes" not in html[html.index('id="margins"') :]
    found = html_of(owner.get("/admin/pricing?q=bEtA"))[0:]
    margins = found[found.index('id="margins"') :]
    assert "Beta Likes" in margins and "Alpha Likes" not in margins
    assert "Beta Likes" in html_of(owner.get(f"/admin/pricing?q=%23{shop['b']}"))
    assert html_of(owner.get("/admin/pricing?page=999&category=oops"))


# --- customer groups ------------------------------------------------------------------------


def test_customer_groups_are_added_and_edited(app, owner, shop):
    response = owner.post(
        "/admin/pricing/groups", data={"group-name": "Resellers", "group-discount_percent": "10"}
    )
    assert response.status_code == 302
    (group,) = rows(app, CustomerGroup, shop["acme"])
    assert (group.name, group.discount_percent) == ("Resellers", D(10))
    response = owner.post(
        f"/admin/pricing/groups/{group.id}",
        data={f"group-{group.id}-name": "VIP", f"group-{group.id}-discount_percent": "15"},
    )
    assert response.status_code == 302
    (group,) = rows(app, CustomerGroup, shop["acme"])
    assert (group.name, group.discount_percent) == ("VIP", D(15))
    assert audit_actions(app, shop["acme"]).count("retail.group") == 2
    assert 'value="VIP"' in html_of(owner.get("/admin/pricing"))


BAD_GROUPS = [
    ("VIP", "5", "There is already a group with this name"),
    ("Other", "101", "A discount must be between 0 and 100 percent"),
    ("Other", "-1", "A negative number is not allowed here"),
    ("Other", "ten", "is not a number"),
    ("", "5", "This field is required"),
]


def test_bad_groups_are_form_errors(app, owner, shop):
    owner.post("/admin/pricing/groups", data={"group-name": "VIP", "group-discount_percent": "1"})
    for name, discount, error in BAD_GROUPS:
        data = {"group-name": name, "group-discount_percent": discount}
        assert error in html_of(owner.post("/admin/pricing/groups", data=data)), data
    assert [g.name for g in rows(app, CustomerGroup, shop["acme"])] == ["VIP"]


# --- another tenant's ids -------------------------------------------------------------------


def test_another_tenants_rules_and_groups_are_404_and_untouched(app, owner, shop, browser_for):
    owner.post(
        "/admin/pricing/categories",
        data={"category-category_id": shop["likes"], "category-markup_percent": "50"},
    )
    owner.post("/admin/pricing/groups", data={"group-name": "VIP", "group-discount_percent": "5"})
    (rule,) = rows(app, PriceRule, shop["acme"])
    (group,) = rows(app, CustomerGroup, shop["acme"])
    nusa = browser_for("nusa.localhost")
    sign_in(nusa, "/admin/login", "owner@nusa.example.com")
    assert nusa.post(f"/admin/pricing/rules/{rule.id}/delete").status_code == 404
    assert (
        nusa.post(
            f"/admin/pricing/groups/{group.id}",
            data={f"group-{group.id}-name": "Mine", f"group-{group.id}-discount_percent": "90"},
        ).status_code
        == 404
    )
    assert len(rows(app, PriceRule, shop["acme"])) == 1
    assert rows(app, CustomerGroup, shop["acme"])[0].name == "VIP"
    # nusa's own pages show nothing of acme's.
    html = html_of(nusa.get("/admin/pricing"))
    assert "VIP" not in html and "No category has its own markup" in html
    assert "Category markup" not in margin_row(html, shop["a"])


def test_the_admin_pages_of_one_panel_do_not_open_with_anothers_cookie(owner, shop, browser_for):
    stolen = owner.cookie("pasok_staff", path="/admin").value
    nusa = browser_for("nusa.localhost")
    nusa.client.set_cookie("pasok_staff", stolen, domain="nusa.localhost", path="/admin")
    for path in ("/admin/pricing", "/admin/catalog", f"/admin/catalog/services/{shop['a']}"):
        assert nusa.get(path).status_code == 302


# --- catalog curation -----------------------------------------------------------------------


@pytest.fixture
def alice(make, shop, browser_for):
    """acme's customer, signed in: her pages are never the visitors' cached ones."""
    make.customer(shop["acme"], "alice@example.com")
    client = browser_for("acme.localhost")
    assert sign_in(client, "/login", "alice@example.com").status_code == 302
    return client


def storefront(client) -> str:
    return html_of(client.get("/services"))


def act(owner, action, back="/admin/catalog"):
    return owner.post("/admin/catalog/actions", data={"action": action, "next": back})


def test_hiding_and_showing_a_service_reaches_the_storefront(app, owner, alice, shop):
    assert "Beta Likes" in storefront(alice)
    response = act(owner, f"hide:service:{shop['b']}")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/catalog"
    assert "Beta Likes" not in storefront(alice)
    html = html_of(owner.get("/admin/catalog"))
    assert f'value="show:service:{shop["b"]}"' in html and "not for sale" in html
    assert "Beta Likes" in html_of(owner.get("/admin/catalog?show=hidden"))
    assert "Alpha Likes" not in html_of(owner.get("/admin/catalog?show=hidden"))
    act(owner, f"show:service:{shop['b']}")
    assert "Beta Likes" in storefront(alice)
    assert audit_actions(app, shop["acme"]).count("retail.override") == 2


def test_renaming_and_describing_a_service_reaches_the_storefront(app, owner, alice, shop):
    response = owner.post(
        f"/admin/catalog/services/{shop['a']}",
        data={"name": "IG Likes HQ", "description": "Real-looking likes, no drop"},
    )
    assert response.status_code == 302
    page = storefront(alice)
    assert "IG Likes HQ" in page and "Real-looking likes, no drop" in page
    assert "Alpha Likes" not in page
    catalog = html_of(owner.get("/admin/catalog"))
    assert "IG Likes HQ" in catalog and "Catalog name: Alpha Likes" in catalog
    assert "IG Likes HQ" in html_of(owner.get("/admin/catalog?q=hq"))
    assert "IG Likes HQ" in html_of(owner.get("/admin/catalog?show=edited"))
    # The price list and the pricing page use the panel's name as well.
    assert "IG Likes HQ" in margin_row(html_of(owner.get("/admin/pricing")), shop["a"])


def test_reset_brings_back_the_catalog_default(app, owner, alice, shop):
    owner.post(
        f"/admin/catalog/services/{shop['a']}",
        data={"name": "IG Likes HQ", "description": "Mine", "hidden": "y"},
    )
    assert "Alpha Likes" not in storefront(alice) and "IG Likes HQ" not in storefront(alice)
    back = f"/admin/catalog/services/{shop['a']}"
    assert act(owner, f"reset:service:{shop['a']}", back).headers["Location"] == back
    page = storefront(alice)
    assert "Alpha Likes" in page and "about Alpha Likes" in page and "IG Likes HQ" not in page
    assert rows(app, CatalogOverride, shop["acme"]) == []


def test_a_category_is_renamed_hidden_and_reset(app, owner, alice, shop):
    response = owner.post(
        f"/admin/catalog/categories/{shop['views']}", data={"name": "Instagram Views"}
    )
    assert response.status_code == 302
    assert "Instagram Views" in storefront(alice)
    act(owner, f"hide:category:{shop['views']}")
    page = storefront(alice)
    assert "Gamma Views" not in page and "Instagram Views" not in page
    assert "hidden with its category" in html_of(owner.get("/admin/catalog"))
    (override,) = rows(app, CatalogOverride, shop["acme"])
    assert (override.name, override.hidden) == ("Instagram Views", True)  # the name is kept
    act(owner, f"reset:category:{shop['views']}")
    page = storefront(alice)
    assert "Gamma Views" in page and ">Views<" in page


def test_visitors_see_curation_once_the_panel_snapshot_is_renewed(app, owner, shop, browser_for):
    visitor = browser_for("acme.localhost")
    assert "Beta Likes" in storefront(visitor)
    act(owner, f"hide:service:{shop['b']}")
    # Visitors share a page cached per panel snapshot, renewed every few seconds.
    app.extensions["pasok_resolver"].invalidate()
    assert "Beta Likes" not in storefront(visitor)


def test_curation_is_per_panel(app, owner, shop, browser_for):
    act(owner, f"hide:service:{shop['b']}")
    owner.post(f"/admin/catalog/services/{shop['a']}", data={"name": "IG Likes HQ"})
    page = storefront(browser_for("nusa.localhost"))
    assert "Beta Likes" in page and "Alpha Likes" in page and "IG Likes HQ" not in page
    nusa = browser_for("nusa.localhost")
    sign_in(nusa, "/admin/login", "owner@nusa.example.com")
    html = html_of(nusa.get("/admin/catalog"))
    assert "IG Likes HQ" not in html and 'value="show:service:' not in html


UNKNOWN_ACTIONS = [
    ("hide:service:{d}", 404),  # unlisted: not in the panel's catalog
    ("hide:service:99999", 404),
    ("hide:category:99999", 404),
    ("hide:provider:{a}", 404),
    ("hide:service:abc", 404),
    ("delete:service:{a}", 400),
]


def test_unknown_catalog_actions_change_nothing(app, owner, shop):
    for action, status in UNKNOWN_ACTIONS:
        data = {"action": action.format(**shop)}
        assert owner.post("/admin/catalog/actions", data=data).status_code == status, action
    assert rows(app, CatalogOverride, shop["acme"]) == []


def test_pages_of_services_and_categories_outside_the_catalog_are_404(owner, shop):
    assert owner.get(f"/admin/catalog/services/{shop['d']}").status_code == 404
    assert owner.get("/admin/catalog/services/99999").status_code == 404
    assert owner.get("/admin/catalog/categories/99999").status_code == 404
    assert owner.post(f"/admin/catalog/services/{shop['d']}/price").status_code == 404


def test_a_too_long_name_is_a_form_error(app, owner, shop):
    html = html_of(owner.post(f"/admin/catalog/services/{shop['a']}", data={"name": "x" * 300}))
    assert "Use at most 255 characters" in html
    html = html_of(
        owner.post(f"/admin/catalog/categories/{shop['likes']}", data={"name": "x" * 121})
    )
    assert "Use at most 120 characters" in html
    assert rows(app, CatalogOverride, shop["acme"]) == []


def test_the_service_page_previews_and_sets_its_price(app, owner, shop):
    html = html_of(
        owner.post(
            f"/admin/catalog/services/{shop['c']}/price",
            data={"rule-kind": "markup", "rule-value": "100", "preview": "1"},
        )
    )
    assert "Preview: nothing is saved yet" in html and "Your price would be 2.50 USD" in html
    assert rows(app, PriceRule, shop["acme"]) == []
    owner.post(
        f"/admin/catalog/services/{shop['c']}/price",
        data={"rule-kind": "markup", "rule-value": "100"},
    )
    (rule,) = rows(app, PriceRule, shop["acme"])
    assert (rule.service_id, rule.markup_percent) == (shop["c"], D(100))
    page = html_of(owner.get(f"/admin/catalog/services/{shop['c']}"))
    assert "Service markup" in page and "2.50" in page
    # The service's number in the form is the page's, whatever is sent.
    owner.post(
        f"/admin/catalog/services/{shop['c']}/price",
        data={"rule-service_id": shop["a"], "rule-kind": "fixed", "rule-value": "3"},
    )
    assert [r.service_id for r in rows(app, PriceRule, shop["acme"])] == [shop["c"]]


def test_the_catalog_pages_through_a_large_catalog(app, owner, shop):
    with app.app_context(), across_tenants():
        category = db.session.get(Category, shop["likes"])
        db.session.add_all(
            Service(
                category=category,
                name=f"Bulk {n:03}",
                min_quantity=1,
                max_quantity=10,
                status=PUBLISHED,
            )
            for n in range(60)
        )
        db.session.commit()
    first = html_of(owner.get("/admin/catalog"))
    assert "1\u201350 of 63 services" in first and 'href="/admin/catalog?page=2"' in first
    second = html_of(owner.get("/admin/catalog?page=2"))
    assert "51\u201363 of 63 services" in second and "Gamma Views" in second
    assert "unavailable" in second  # the bulk services have no provider
