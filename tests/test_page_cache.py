"""Visitors' pages are rendered once per tenant snapshot and language, and never personal."""

import pytest

import app.storefront.routes as storefront
from app.extensions import db
from app.panels.models import Tenant
from tenants.context import across_tenants
from tests.conftest import sign_in


@pytest.fixture
def renders(monkeypatch):
    """Count the storefront home page's real renders."""
    calls = []
    real = storefront.render_themed

    def counting(template, **context):
        calls.append(template)
        return real(template, **context)

    monkeypatch.setattr(storefront, "render_themed", counting)
    return calls


@pytest.fixture
def acme(app, make):
    tenant_id = make.tenant("acme", theme="aurora")
    make.customer(tenant_id, "alice@example.com")
    return tenant_id


def test_visitors_share_one_render_with_no_cookie_and_no_token(acme, browser_for, renders):
    first = browser_for("acme.localhost").get("/")
    second = browser_for("acme.localhost").get("/")
    assert first.data == second.data
    assert len(renders) == 1
    assert "Set-Cookie" not in first.headers and "Set-Cookie" not in second.headers
    assert b"csrf_token" not in first.data


def test_each_language_has_its_own_page(acme, browser_for, renders):
    client = browser_for("acme.localhost")
    english = client.get("/")
    assert client.get("/language?locale=id&next=/").status_code == 302
    indonesian = client.get("/")
    assert b'lang="en"' in english.data and b'lang="id"' in indonesian.data
    assert len(renders) == 2


def test_a_tenant_change_reaches_visitors_at_once(acme, app, browser_for, renders):
    client = browser_for("acme.localhost")
    assert b"theme-aurora" in client.get("/").data
    with app.app_context(), across_tenants():
        db.session.get(Tenant, acme).theme = "nusantara"
        db.session.commit()
    assert b"theme-nusantara" in client.get("/").data


def test_signed_in_customers_get_their_own_page(acme, browser_for, renders):
    browser_for("acme.localhost").get("/")
    client = browser_for("acme.localhost")
    sign_in(client, "/login", "alice@example.com")
    page = client.get("/")
    assert b"csrf_token" in page.data  # the signed-in language form posts with a token
    assert b"/dashboard" in page.data
    assert len(renders) == 2
    visitor = browser_for("acme.localhost").get("/")
    assert b"csrf_token" not in visitor.data


def test_pending_messages_are_not_cached(acme, browser_for, renders):
    client = browser_for("acme.localhost")
    sign_in(client, "/login", "alice@example.com")
    client.post("/logout")  # flashes "You have signed out."
    page = client.get("/")
    assert b"You have signed out" in page.data
    assert b"You have signed out" not in browser_for("acme.localhost").get("/").data


def test_the_language_menu_for_visitors_changes_only_this_browser(acme, app, browser_for):
    client = browser_for("acme.localhost")
    sign_in(client, "/login", "alice@example.com")
    client.get("/language?locale=id")  # a link cannot change the account's language
    with app.app_context(), across_tenants():
        from sqlalchemy import select

        from app.accounts.models import User

        assert db.session.scalar(select(User.locale)) is None
