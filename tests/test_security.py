"""CSRF on every form and rate limits per tenant and client address."""

import re

import pytest

from tests.conftest import PASSWORD

FORMS = [
    ("acme.localhost", "/login"),
    ("acme.localhost", "/register"),
    ("acme.localhost", "/reset"),
    ("acme.localhost", "/logout"),
    ("acme.localhost", "/language"),
    ("acme.localhost", "/admin/login"),
    ("localhost", "/console/login"),
]


@pytest.fixture
def strict_app(make_app, app, make):
    make.tenant("acme")
    make.customer(1, "alice@example.com")
    return make_app(WTF_CSRF_ENABLED=True)


@pytest.mark.parametrize("host, path", FORMS)
def test_posts_without_a_csrf_token_are_refused(strict_app, browser_for, host, path):
    client = browser_for(host, strict_app.test_client())
    response = client.post(path, data={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert b"The form expired" in response.data


def test_a_post_with_the_pages_csrf_token_works(strict_app, browser_for):
    client = browser_for("acme.localhost", strict_app.test_client())
    page = client.get("/login").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "alice@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


@pytest.fixture
def limited_app(make_app, app, make):
    make.tenant("acme")
    make.tenant("toko")
    return make_app(RATELIMIT_ENABLED=True, PASOK_AUTH_RATE_LIMIT="3 per minute")


def failed_login(client):
    return client.post("/login", data={"email": "x@example.com", "password": "wrong-pass-1"})


def test_login_is_rate_limited_per_tenant_and_address(limited_app, browser_for):
    acme = browser_for("acme.localhost", limited_app.test_client())
    assert [failed_login(acme).status_code for _ in range(3)] == [200, 200, 200]
    limited = failed_login(acme)
    assert limited.status_code == 429
    assert b"Too many attempts" in limited.data
    # The same address on another tenant has its own budget.
    toko = browser_for("toko.localhost", limited_app.test_client())
    assert failed_login(toko).status_code == 200
    # Another address on the same tenant too.
    other = limited_app.test_client()
    response = other.post(
        "/login",
        base_url="http://acme.localhost",
        data={"email": "x@example.com", "password": "wrong-pass-1"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert response.status_code == 200
    # Reading the page is not limited.
    assert acme.get("/login").status_code == 200


@pytest.mark.parametrize("path", ["/register", "/reset", "/admin/login"])
def test_registration_reset_and_staff_login_are_rate_limited(limited_app, browser_for, path):
    client = browser_for("acme.localhost", limited_app.test_client())
    codes = [client.post(path, data={"email": "x@example.com"}).status_code for _ in range(4)]
    assert codes[:3] != [429, 429, 429] and codes[3] == 429


def test_operator_login_is_rate_limited(limited_app, browser_for):
    client = browser_for("localhost", limited_app.test_client())
    codes = [client.post("/console/login", data={}).status_code for _ in range(4)]
    assert codes[-1] == 429


# A NUL byte cannot be stored by PostgreSQL, and a lone surrogate is not UTF-8: either in any
# parameter is a clear 400 before any view runs, never a database error.
UNREADABLE = [
    ("acme.localhost", "post", "/login", {"email": "a\x00b@example.com", "password": "x"}),
    ("acme.localhost", "get", "/services?q=a%00b", None),
    ("acme.localhost", "post", "/admin/login", {"email": "x@example.com\x00", "password": "x"}),
    ("localhost", "post", "/console/login", {"email": "op\x00@example.com", "password": "x"}),
]


@pytest.mark.parametrize("host, method, path, data", UNREADABLE)
def test_a_nul_byte_in_a_parameter_is_a_clear_400(app, make, browser_for, host, method, path, data):
    make.tenant("acme")
    client = browser_for(host)
    response = getattr(client, method)(path, data=data) if data else client.get(path)
    assert response.status_code == 400
    assert b"cannot be read" in response.data


def test_a_nul_byte_on_the_api_is_its_own_json_error(app, make, browser_for):
    make.tenant("acme")
    response = browser_for("acme.localhost").post(
        "/api/v2", data={"key": "k\x00", "action": "balance"}
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "error": "Incorrect request: parameters must be text without NUL characters"
    }
