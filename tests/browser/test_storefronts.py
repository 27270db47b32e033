"""Two white-label storefronts in a real browser: each wears its own theme and speaks its own
language, a customer can open an account on each, and a session never crosses hosts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from flask_babel import force_locale, gettext

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

STOREFRONTS = {
    "acme": {"theme": "aurora", "currency": "USD", "locale": "en"},
    "toko": {"theme": "nusantara", "currency": "IDR", "locale": "id"},
}
PHONE = {"width": 390, "height": 844}

PRIMARY_COLOURS_JS = """() => {
    const button = document.querySelector("main .button:not(.button--ghost)");
    return {
        variable: getComputedStyle(document.documentElement)
            .getPropertyValue("--color-primary").trim().toLowerCase(),
        button: button ? getComputedStyle(button).backgroundColor : null,
    };
}"""


@pytest.fixture
def storefronts(make):
    for slug, settings in STOREFRONTS.items():
        make.tenant(slug, **settings)
    return STOREFRONTS


def storefront_url(port: int, slug: str, path: str = "/") -> str:
    return f"http://{slug}.localhost:{port}{path}"


def primary_color(app, slug: str) -> str:
    """The primary colour the tenant's theme should show (no saved settings: the default)."""
    theme = app.extensions["pasok_themes"][STOREFRONTS[slug]["theme"]]
    return theme.defaults()["primary_color"].lower()


def rgb(hex_color: str) -> str:
    """`#6d28d9` as a browser reports a computed colour: `rgb(109, 40, 217)`."""
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def translated(app, slug: str, msgid: str) -> str:
    with (
        app.test_request_context(base_url=f"http://{slug}.localhost"),
        force_locale(STOREFRONTS[slug]["locale"]),
    ):
        return gettext(msgid)


def register(page, port: int, slug: str, email: str, name: str = "Alice Example") -> None:
    """From the storefront home, follow the sign-up link and open an account."""
    page.goto(storefront_url(port, slug))
    page.locator("main a[href='/register']").first.click()
    page.wait_for_url(storefront_url(port, slug, "/register"))
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(storefront_url(port, slug, "/dashboard"))


@pytest.mark.parametrize("slug", list(STOREFRONTS))
def test_customer_registers_and_lands_on_dashboard_signed_in(
    storefronts, live_server, new_context, tmp_path, slug
):
    page = new_context().new_page()

    register(page, live_server, slug, f"alice@{slug}.example.com")

    assert urlsplit(page.url).path == "/dashboard"
    assert page.locator("main h1").inner_text().endswith("Alice Example")
    assert page.locator("header form[action='/logout'] button").is_visible()
    assert page.locator("main a[href='/register'], header a[href='/register']").count() == 0
    page.screenshot(path=tmp_path / f"{slug}-dashboard.png", full_page=True)


def test_each_storefront_wears_its_theme_primary_colour(
    app, storefronts, live_server, new_context, tmp_path
):
    seen = {}
    for slug in STOREFRONTS:
        page = new_context().new_page()
        page.goto(storefront_url(live_server, slug))
        page.screenshot(path=tmp_path / f"{slug}-home.png", full_page=True)
        seen[slug] = page.evaluate(PRIMARY_COLOURS_JS)

    for slug, colours in seen.items():
        expected = primary_color(app, slug)
        assert colours == {"variable": expected, "button": rgb(expected)}, slug
    assert seen["acme"]["variable"] != seen["toko"]["variable"]


@pytest.mark.parametrize("slug", list(STOREFRONTS))
def test_storefront_speaks_its_panel_language(storefronts, live_server, new_context, slug):
    page = new_context().new_page()

    page.goto(storefront_url(live_server, slug, "/register"))

    assert page.evaluate("document.documentElement.lang") == STOREFRONTS[slug]["locale"]


def test_indonesian_storefront_shows_translated_text(app, storefronts, live_server, new_context):
    expected = translated(app, "toko", "Create account")
    assert expected != "Create account", "no Indonesian translation of 'Create account'"
    page = new_context().new_page()

    page.goto(storefront_url(live_server, "toko", "/register"))

    assert page.locator("main h1").inner_text() == expected
    assert page.get_by_role("button", name=expected, exact=True).is_visible()


def test_session_from_one_storefront_is_not_valid_on_another(storefronts, live_server, new_context):
    context = new_context()
    page = context.new_page()
    register(page, live_server, "acme", "alice@acme.example.com")

    page.goto(storefront_url(live_server, "toko", "/dashboard"))

    page.wait_for_url(re.compile(re.escape(storefront_url(live_server, "toko", "/login"))))
    assert page.locator("header form[action='/logout']").count() == 0
    # Host-only cookies carry their exact host; a ".localhost" domain would reach every panel.
    domains = {cookie["domain"] for cookie in context.cookies()}
    assert domains <= {"acme.localhost", "toko.localhost"}
    page.goto(storefront_url(live_server, "acme", "/dashboard"))
    assert urlsplit(page.url).path == "/dashboard"


@pytest.mark.parametrize("slug", list(STOREFRONTS))
def test_storefront_home_fits_a_phone_screen(storefronts, live_server, new_context, tmp_path, slug):
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()

    page.goto(storefront_url(live_server, slug))
    page.screenshot(path=tmp_path / f"{slug}-phone.png", full_page=True)

    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["inner"] == PHONE["width"]
    assert widths["scroll"] <= widths["inner"]


@pytest.mark.parametrize("slug", list(STOREFRONTS))
def test_storefront_home_loads_every_asset(storefronts, live_server, new_context, slug):
    page = new_context().new_page()
    failed = []

    def note_error(response):
        if response.status >= 400:
            failed.append(f"{response.status} {response.url}")

    page.on("response", note_error)
    page.on("requestfailed", lambda request: failed.append(f"{request.failure} {request.url}"))

    page.goto(storefront_url(live_server, slug))
    page.wait_for_load_state("networkidle")

    assert failed == []
