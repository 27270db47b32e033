"""Themes: settings validation, CSS custom properties, template fallback, static files,
and every storefront page rendering in every theme."""

import json

import pytest
from sqlalchemy import select

from app.extensions import db
from app.panels.models import Tenant
from tenants.context import across_tenants
from tenants.theming import (
    ThemeLoader,
    ThemeSettingsError,
    css_custom_properties,
    effective_settings,
    validate_settings,
)
from tests.conftest import sign_in

STOREFRONT_PAGES = ["/", "/services", "/login", "/register", "/reset", "/logout", "/nope-404"]
SIGNED_IN_PAGES = ["/dashboard", "/account"]


@pytest.fixture
def themes(app):
    return app.extensions["pasok_themes"]


def test_there_are_at_least_three_themes_with_settings(themes):
    assert {"base", "aurora", "nusantara"} <= set(themes)
    for theme in themes.values():
        keys = {s.key for s in theme.settings}
        assert {"logo_url", "tagline", "primary_color"} <= keys, theme.name
        validate_settings(theme, theme.defaults())  # the defaults are valid


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"primary_color": "red"}, "primary_color"),
        ({"primary_color": "#12345"}, "primary_color"),
        ({"primary_color": "#123456; background:url(x)"}, "primary_color"),
        ({"logo_url": "javascript:alert(1)"}, "logo_url"),
        ({"logo_url": "http://insecure.example/logo.png"}, "logo_url"),
        ({"logo_url": 'https://x.example/a.png" onerror="x'}, "logo_url"),
        ({"tagline": "x" * 500}, "tagline"),
        ({"font": "Comic Sans"}, "font"),
        ({"no_such_setting": "1"}, "no_such_setting"),
    ],
)
def test_bad_settings_are_refused_by_field(themes, settings, field):
    with pytest.raises(ThemeSettingsError) as caught:
        validate_settings(themes["base"], settings)
    assert field in caught.value.errors


def test_good_settings_become_css_custom_properties(themes):
    theme = themes["base"]
    clean = validate_settings(
        theme,
        {"primary_color": "#AA0011", "logo_url": "https://cdn.example.com/l.png", "font": "serif"},
    )
    css = css_custom_properties(theme, clean)
    assert "--color-primary: #AA0011;" in css
    assert "--font-body: Charter" in css
    assert "https://" not in css  # only declared CSS variables reach the stylesheet


def test_a_saved_value_the_theme_no_longer_accepts_falls_back_to_its_default(themes):
    theme = themes["base"]
    saved = {"primary_color": "url(evil)", "tagline": "Hi", "font": "serif"}
    settings = effective_settings(theme, saved)
    assert settings["primary_color"] == theme.defaults()["primary_color"]
    assert settings["tagline"] == "Hi"
    assert settings["font"] == "serif"


@pytest.mark.parametrize(
    "name",
    [
        "@base/../../app/config.py",
        "@base/../theme.json",
        "@nope/layout.html",
        "layout.html",
        "@base",
    ],
)
def test_the_loader_never_leaves_the_themes_templates(themes, name):
    from jinja2 import Environment, TemplateNotFound

    with pytest.raises(TemplateNotFound):
        ThemeLoader(themes).get_source(Environment(), name)


def test_templates_fall_back_to_base_and_extends_stay_in_the_theme(tmp_path):
    from jinja2 import Environment as Jinja

    from tenants.theming import join_themed_path, load_themes

    for name, files in {
        "base": {"layout.html": "base[{% block body %}{% endblock %}]", "page.html": "x"},
        "mini": {"page.html": '{% extends "layout.html" %}{% block body %}mini{% endblock %}'},
    }.items():
        (tmp_path / name / "templates").mkdir(parents=True)
        (tmp_path / name / "theme.json").write_text(json.dumps({"name": name}))
        for file, text in files.items():
            (tmp_path / name / "templates" / file).write_text(text)

    class ThemedJinja(Jinja):
        def join_path(self, template, parent):
            return join_themed_path(template, parent)

    env = ThemedJinja(loader=ThemeLoader(load_themes(tmp_path)))
    assert env.get_template("@mini/page.html").render() == "base[mini]"
    assert env.get_template("@mini/layout.html").filename.endswith("base/templates/layout.html")
    assert env.get_template("@base/page.html").render() == "x"


@pytest.fixture
def panel(app, make):
    tenant_id = make.tenant("acme")
    make.customer(tenant_id, "alice@example.com")
    return tenant_id


def set_theme(app, tenant_id, theme, settings=None):
    with app.app_context(), across_tenants():
        tenant = db.session.get(Tenant, tenant_id)
        tenant.theme = theme
        tenant.theme_settings = settings or {}
        db.session.commit()


@pytest.mark.parametrize("theme", ["base", "aurora", "nusantara"])
def test_every_storefront_page_renders_in_every_theme(app, panel, browser_for, themes, theme):
    set_theme(app, panel, theme)
    client = browser_for("acme.localhost")
    for path in STOREFRONT_PAGES:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        page = response.data.decode()
        assert f"theme-{theme}" in page, path
        assert "--color-primary: " + themes[theme].defaults()["primary_color"] in page
    sign_in(client, "/login", "alice@example.com")
    for path in SIGNED_IN_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert f"theme-{theme}" in response.data.decode()


def test_tenant_settings_reach_the_page(app, panel, browser_for):
    set_theme(app, panel, "aurora", {"primary_color": "#123abc", "tagline": "Cepat & murah"})
    page = browser_for("acme.localhost").get("/").data.decode()
    assert "--color-primary: #123abc;" in page
    assert "Cepat &amp; murah" in page


def test_theme_static_files_fall_back_to_base_with_cache_headers(app, browser_for):
    client = browser_for("localhost")

    def fetch(path, **kwargs):
        response = client.get(path, **kwargs)
        response.close()  # file responses hold their file open until closed
        return response

    own = fetch("/theme-static/base/css/base.css?v=1")
    assert own.status_code == 200
    assert "max-age=31536000" in own.headers["Cache-Control"]
    assert "immutable" in own.headers["Cache-Control"]
    fallback = fetch("/theme-static/aurora/css/base.css")
    assert fallback.status_code == 200 and fallback.headers["ETag"] == own.headers["ETag"]
    assert "max-age=3600" in fallback.headers["Cache-Control"]
    etag = {"If-None-Match": own.headers["ETag"]}
    assert fetch("/theme-static/base/css/base.css", headers=etag).status_code == 304
    for bad in [
        "/theme-static/base/../theme.json",
        "/theme-static/nope/css/base.css",
        "/theme-static/base/css/missing.css",
        "/theme-static/base/%2e%2e/theme.json",
    ]:
        assert fetch(bad).status_code == 404, bad


def test_branding_page_saves_a_valid_theme_and_refuses_a_bad_one(app, panel, make, browser_for):
    make.staff(panel, "owner2@acme.example.com", role="owner")
    client = browser_for("acme.localhost")
    sign_in(client, "/admin/login", "owner2@acme.example.com")
    page = client.get("/admin/branding?theme=nusantara").data.decode()
    assert 'name="setting-primary_color"' in page
    bad = client.post(
        "/admin/branding", data={"theme": "nusantara", "setting-primary_color": "blue"}
    )
    assert bad.status_code == 200 and b"Enter a colour like #1a2b3c" in bad.data
    with app.app_context(), across_tenants():
        assert db.session.scalar(select(Tenant.theme)) == "base"
    theme = app.extensions["pasok_themes"]["nusantara"]
    data = {f"setting-{k}": v for k, v in theme.defaults().items()}
    data.update({"theme": "nusantara", "setting-primary_color": "#0a0b0c"})
    assert client.post("/admin/branding", data=data).status_code == 302
    storefront = browser_for("acme.localhost").get("/").data.decode()
    assert "theme-nusantara" in storefront and "--color-primary: #0a0b0c;" in storefront
