"""API keys and the `/api` page: customers create, rotate and revoke labelled keys (shown once,
stored hashed, each with when it was last used); `pasok apikey create`; the documentation in
the panel's theme and language with the panel's own host; the OpenAPI description; and rate
limits per key, answered with the API's error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.api.keys import MAX_KEYS_PER_CUSTOMER, digest_of
from app.api.models import ApiKey
from app.extensions import db
from tenants.context import across_tenants
from tests.api_support import ACME, NUSA, Api, api_shop, new_key
from tests.conftest import empty_database, sign_in

NEW_KEY = 'id="new-api-key">'


@pytest.fixture
def shop(app, make):
    return api_shop(app, make)


def signed_in(browser_for, host=ACME, email="alice@example.com"):
    browser = browser_for(host)
    sign_in(browser, "/login", email)
    return browser


def shown_key(page: str) -> str:
    return page.split(NEW_KEY, 1)[1].split("<", 1)[0]


def stored_keys(app) -> list[ApiKey]:
    with app.app_context(), across_tenants():
        keys = db.session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
        db.session.expunge_all()
        return list(keys)


# --- the page --------------------------------------------------------------------------------


def test_a_customer_creates_a_key_that_is_shown_once_and_stored_hashed(app, shop, browser_for):
    browser = signed_in(browser_for)
    page = browser.post("/api/keys", data={"label": "my bot"}).get_data(as_text=True)
    token = shown_key(page)
    assert len(token) == 40
    [key] = stored_keys(app)
    assert key.digest == digest_of(token) and token not in (key.digest, key.prefix)
    assert key.label == "my bot" and key.prefix == token[:8]
    again = browser.get("/api").get_data(as_text=True)
    assert token not in again and f"{token[:8]}…" in again and "my bot" in again
    assert Api(app, ACME, token)("balance")["balance"] == "100.00000"


def test_the_page_shows_when_each_key_was_last_used(app, shop, browser_for):
    browser = signed_in(browser_for)
    token = shown_key(browser.post("/api/keys", data={"label": "a"}).get_data(as_text=True))
    assert "Never" in browser.get("/api").get_data(as_text=True)
    Api(app, ACME, token)("balance")
    [key] = stored_keys(app)
    assert key.last_used_at is not None
    assert "Never" not in browser.get("/api").get_data(as_text=True)


def test_rotating_a_key_replaces_it(app, shop, browser_for):
    browser = signed_in(browser_for)
    old = shown_key(browser.post("/api/keys", data={"label": "bot"}).get_data(as_text=True))
    [key] = stored_keys(app)
    new = shown_key(browser.post(f"/api/keys/{key.id}/rotate").get_data(as_text=True))
    assert new != old
    assert Api(app, ACME, old)("balance") == {"error": "Invalid API key"}
    assert Api(app, ACME, new)("balance")["currency"] == "USD"
    assert [k.label for k in stored_keys(app) if k.revoked_at is None] == ["bot"]


def test_revoking_a_key_stops_it(app, shop, browser_for):
    browser = signed_in(browser_for)
    token = shown_key(browser.post("/api/keys", data={"label": ""}).get_data(as_text=True))
    [key] = stored_keys(app)
    response = browser.post(f"/api/keys/{key.id}/revoke")
    assert response.status_code == 302
    assert Api(app, ACME, token)("balance") == {"error": "Invalid API key"}
    page = browser.get("/api").get_data(as_text=True)
    assert f"API key {key.prefix}… revoked." in page
    assert f"<code>{key.prefix}…</code>" not in page


def test_a_customer_holds_a_few_keys_at_most(app, shop, browser_for):
    browser = signed_in(browser_for)
    for n in range(MAX_KEYS_PER_CUSTOMER):
        assert browser.post("/api/keys", data={"label": f"k{n}"}).status_code == 200
    refused = browser.post("/api/keys", data={"label": "one more"})
    assert refused.status_code == 400
    assert "at most 5 API keys" in refused.get_data(as_text=True)
    assert len(stored_keys(app)) == MAX_KEYS_PER_CUSTOMER


def test_a_label_that_is_too_long_is_refused(app, shop, browser_for):
    browser = signed_in(browser_for)
    refused = browser.post("/api/keys", data={"label": "x" * 65})
    assert refused.status_code == 400 and stored_keys(app) == []


def test_another_customers_key_cannot_be_rotated_or_revoked(app, shop, browser_for):
    new_key(app, shop["acme"], shop["bob"])
    [bobs] = stored_keys(app)
    browser = signed_in(browser_for)
    assert browser.post(f"/api/keys/{bobs.id}/revoke").status_code == 404
    assert browser.post(f"/api/keys/{bobs.id}/rotate").status_code == 404
    assert stored_keys(app)[0].revoked_at is None


def test_another_panels_customer_cannot_touch_a_key(app, shop, browser_for):
    new_key(app, shop["acme"], shop["alice"])
    [key] = stored_keys(app)
    browser = signed_in(browser_for, NUSA, "budi@example.com")
    assert browser.post(f"/api/keys/{key.id}/revoke").status_code == 404


def test_visitors_must_sign_in_to_create_a_key(app, shop, browser_for):
    browser = browser_for(ACME)
    assert browser.post("/api/keys", data={"label": "x"}).status_code == 302
    assert stored_keys(app) == []
    assert "Sign in to create an API key." in browser.get("/api").get_data(as_text=True)


def test_the_docs_use_the_panels_own_host(app, shop, browser_for):
    page = browser_for(ACME).get("/api").get_data(as_text=True)
    assert "http://acme.localhost/api/v2" in page
    assert f"service={shop['likes']}" in page
    for action in ("services", "add", "status", "refill", "refill_status", "cancel", "balance"):
        assert f'id="action-{action}"' in page
    assert "Incorrect order ID" in page and "Mentions with Hashtags" in page


@pytest.mark.parametrize("theme", ["base", "aurora", "nusantara"])
def test_the_api_page_renders_in_every_theme(app, make, browser_for, theme):
    ids = api_shop(app, make, theme=theme)
    browser = signed_in(browser_for)
    page = browser.post("/api/keys", data={"label": "t"}).get_data(as_text=True)
    assert NEW_KEY in page and 'href="/api"' in page
    assert browser_for(NUSA).get("/api").status_code == 200
    assert ids


def test_the_api_page_speaks_the_panels_language(app, shop, browser_for):
    page = browser_for(NUSA).get("/api").get_data(as_text=True)
    assert '<html lang="id"' in page
    assert "http://nusa.localhost/api/v2" in page
    assert '{"error": "Incorrect order ID"}' in page  # the API's own words stay English


def test_the_openapi_description_names_the_panels_host(app, shop):
    response = app.test_client().get("/api/v2/openapi.json", base_url=f"http://{NUSA}")
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["servers"] == [{"url": "http://nusa.localhost/api/v2"}]
    actions = spec["paths"]["/"]["get"]["parameters"][1]["schema"]["enum"]
    assert set(actions) == {
        "services", "add", "status", "refill", "refill_status", "cancel", "balance",
    }  # fmt: skip
    assert "Error" in spec["components"]["schemas"]


# --- the command -----------------------------------------------------------------------------


def test_pasok_apikey_create_prints_the_key_alone(app, shop):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["apikey", "create", "--tenant", "acme", "--email", "Alice@Example.com",
              "--label", "cli"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert len(token) == 40 and result.stdout == token + "\n"
    assert Api(app, ACME, token)("balance")["currency"] == "USD"
    assert stored_keys(app)[0].label == "cli"


def test_pasok_apikey_create_refuses_an_unknown_customer(app, shop):
    result = app.test_cli_runner().invoke(
        args=["apikey", "create", "--tenant", "acme", "--email", "budi@example.com"]
    )
    assert result.exit_code != 0
    assert "No customer budi@example.com on acme" in result.output
    assert stored_keys(app) == []


# --- rate limits -----------------------------------------------------------------------------


@pytest.fixture
def limited_app(make_app):
    app = make_app(RATELIMIT_ENABLED=True, PASOK_API_RATE_LIMIT="3 per minute")
    empty_database(app)
    return app


def test_calls_past_the_limit_get_a_clear_error(limited_app):
    from tests.conftest import Factories

    shop = api_shop(limited_app, Factories(limited_app))
    api = Api(limited_app, ACME, new_key(limited_app, shop["acme"], shop["alice"]))
    for how in ("form", "json", "get"):
        assert "balance" in api("balance", how=how)
    refused = api.client.get(
        "/api/v2", query_string={"key": api.key, "action": "balance"}, base_url=f"http://{ACME}"
    )
    assert refused.status_code == 200
    error = refused.get_json()["error"]
    assert error.startswith("Too many requests: at most 3 per 1 minute per API key")
    assert int(refused.headers["Retry-After"]) >= 1
    other = Api(limited_app, ACME, new_key(limited_app, shop["acme"], shop["bob"]))
    assert "balance" in other("balance")


def test_the_api_limit_leaves_form_post_limits_and_plain_pages_as_they_were(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True,
        PASOK_API_RATE_LIMIT="1 per minute",
        PASOK_AUTH_RATE_LIMIT="2 per minute",
    )
    empty_database(app)
    from tests.conftest import Factories

    Factories(app).tenant("acme")
    client = app.test_client()
    for _ in range(5):
        assert client.get("/login", base_url=f"http://{ACME}").status_code == 200
    answers = [
        client.post("/login", data={"email": "x@example.com", "password": "wrong-password"},
                    base_url=f"http://{ACME}").status_code
        for _ in range(3)
    ]  # fmt: skip
    assert answers[-1] == 429 and 429 not in answers[:2]


def test_the_api_rate_limit_set_in_the_environment_is_the_one_enforced(make_app, monkeypatch):
    from tests.conftest import Factories

    monkeypatch.setenv("PASOK_API_RATE_LIMIT", "2 per minute")
    app = make_app(RATELIMIT_ENABLED=True)
    empty_database(app)
    shop = api_shop(app, Factories(app))
    api = Api(app, ACME, new_key(app, shop["acme"], shop["alice"]))
    assert "balance" in api("balance") and "balance" in api("balance")
    assert api("balance")["error"].startswith("Too many requests: at most 2 per 1 minute")
