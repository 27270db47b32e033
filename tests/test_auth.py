"""Every auth flow for customers, staff and operators, with bad input."""

import re
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from tenants.context import across_tenants
from tests.conftest import PASSWORD, sign_in


@pytest.fixture
def acme(app, make):
    tenant_id = make.tenant("acme")
    make.customer(tenant_id, "alice@example.com")
    make.staff(tenant_id, "staff@acme.example.com", role="owner")
    return tenant_id


def register(client, email="new@example.com", password="a-fine-pass-4", confirm=None, name="New"):
    return client.post(
        "/register",
        data={"name": name, "email": email, "password": password, "confirm": confirm or password},
    )


def user_by_email(app, email):
    with app.app_context(), across_tenants():
        return db.session.scalar(select(User).where(User.email == email))


# Registration


def test_register_signs_the_customer_in(acme, app, browser_for):
    client = browser_for("acme.localhost")
    response = register(client, email="  New.Person@Example.COM ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    assert b"Welcome" in client.get("/dashboard").data
    user = user_by_email(app, "new.person@example.com")
    assert user.tenant_id == acme and user.kind == "customer"


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"email": "not-an-email"}, b"Enter a valid email address"),
        ({"password": "short"}, b"at least 8 characters"),
        ({"password": "password123"}, b"too easy to guess"),
        ({"password": "aaaaaaaaaaaa"}, b"too easy to guess"),
        ({"confirm": "something-else-1"}, b"Passwords do not match"),
        ({"email": "ALICE@example.com"}, b"already exists"),
        ({"email": ""}, b"This field is required"),
    ],
)
def test_register_rejects_bad_input(acme, app, browser_for, fields, error):
    data = {"email": "new@example.com", "password": "a-fine-pass-4", **fields}
    client = browser_for("acme.localhost")
    response = register(client, **data)
    assert response.status_code == 200
    assert error in response.data
    with app.app_context(), across_tenants():
        count = len(db.session.scalars(select(User).where(User.kind == "customer")).all())
    assert count == 1  # only alice


# Login and logout


def test_login_with_any_letter_case(acme, browser_for):
    client = browser_for("acme.localhost")
    assert sign_in(client, "/login", "Alice@EXAMPLE.com").headers["Location"] == "/dashboard"


@pytest.mark.parametrize(
    "email, password",
    [("alice@example.com", "wrong-password-1"), ("nobody@example.com", PASSWORD), ("", "")],
)
def test_login_rejects_bad_credentials_with_one_message(acme, browser_for, email, password):
    response = sign_in(browser_for("acme.localhost"), "/login", email, password)
    assert response.status_code == 200
    assert b"Wrong email or password" in response.data or b"This field is required" in response.data


def test_login_follows_only_local_next(acme, browser_for):
    client = browser_for("acme.localhost")
    response = client.post(
        "/login?next=//evil.example.com/", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/dashboard"
    client = browser_for("acme.localhost")
    response = client.post(
        "/login?next=/account", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/account"


def test_disabled_customer_cannot_sign_in(acme, app, browser_for):
    with app.app_context(), across_tenants():
        db.session.scalar(select(User).where(User.email == "alice@example.com")).is_enabled = False
        db.session.commit()
    assert (
        b"Wrong email" in sign_in(browser_for("acme.localhost"), "/login", "alice@example.com").data
    )


def test_logout_needs_a_post(acme, browser_for):
    client = browser_for("acme.localhost")
    sign_in(client, "/login", "alice@example.com")
    assert client.get("/logout").status_code == 200
    assert client.get("/dashboard").status_code == 200  # a link alone signs nobody out
    assert client.post("/logout").status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_dashboard_needs_a_signed_in_customer(acme, browser_for):
    response = browser_for("acme.localhost").get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


# Staff and customer sessions on one host


def test_staff_and_customer_sessions_are_independent(acme, make, browser_for):
    client = browser_for("acme.localhost")
    assert sign_in(client, "/admin/login", "staff@acme.example.com").status_code == 302
    assert client.get("/admin/").status_code == 200
    # The staff session does not make the browser a customer...
    assert client.get("/dashboard").status_code == 302
    # ...and a customer login beside it changes nothing for the staff session.
    assert sign_in(client, "/login", "alice@example.com").status_code == 302
    assert client.get("/dashboard").status_code == 200
    assert client.get("/admin/").status_code == 200
    client.post("/logout")
    assert client.get("/dashboard").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_customer_credentials_do_not_open_the_back_office(acme, browser_for):
    response = sign_in(browser_for("acme.localhost"), "/admin/login", "alice@example.com")
    assert b"Wrong email or password" in response.data


def test_cookies_are_host_only_and_http_only(acme, browser_for):
    client = browser_for("acme.localhost")
    response = sign_in(client, "/login", "alice@example.com")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Domain=" not in cookie
    admin = sign_in(client, "/admin/login", "staff@acme.example.com").headers["Set-Cookie"]
    assert admin.startswith("pasok_staff=") and "Path=/admin" in admin


def test_support_staff_cannot_open_branding(acme, make, browser_for):
    make.staff(acme, "support@acme.example.com", role="support")
    client = browser_for("acme.localhost")
    sign_in(client, "/admin/login", "support@acme.example.com")
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/branding").status_code == 403


# Password change


def change_password(client, path, current=PASSWORD, new="brand-new-pass-5", prefix=""):
    return client.post(
        path,
        data={
            f"{prefix}current_password": current,
            f"{prefix}password": new,
            f"{prefix}confirm": new,
        },
    )


def test_customer_password_change_ends_other_sessions(acme, browser_for):
    laptop = browser_for("acme.localhost")
    phone = browser_for("acme.localhost")
    sign_in(laptop, "/login", "alice@example.com")
    sign_in(phone, "/login", "alice@example.com")
    response = change_password(laptop, "/account", prefix="pw-")
    assert response.status_code == 302
    assert laptop.get("/dashboard").status_code == 200  # this session stays
    assert phone.get("/dashboard").status_code == 302  # the other one is over
    assert sign_in(browser_for("acme.localhost"), "/login", "alice@example.com").status_code == 200
    fresh = browser_for("acme.localhost")
    assert sign_in(fresh, "/login", "alice@example.com", "brand-new-pass-5").status_code == 302


@pytest.mark.parametrize(
    "current, new, error",
    [
        ("wrong-current-1", "brand-new-pass-5", b"Current password is wrong"),
        (PASSWORD, "short", b"at least 8 characters"),
        (PASSWORD, PASSWORD, b"must differ"),
    ],
)
def test_customer_password_change_rejects_bad_input(acme, browser_for, current, new, error):
    client = browser_for("acme.localhost")
    sign_in(client, "/login", "alice@example.com")
    response = change_password(client, "/account", current=current, new=new, prefix="pw-")
    assert response.status_code == 200
    assert error in response.data
    assert client.get("/dashboard").status_code == 200


def test_staff_password_change_ends_other_staff_sessions(acme, browser_for):
    one = browser_for("acme.localhost")
    two = browser_for("acme.localhost")
    sign_in(one, "/admin/login", "staff@acme.example.com")
    sign_in(two, "/admin/login", "staff@acme.example.com")
    assert change_password(one, "/admin/account").status_code == 302
    assert one.get("/admin/").status_code == 200
    assert two.get("/admin/").status_code == 302


def test_operator_password_change_ends_other_operator_sessions(app, make, browser_for):
    make.operator("op@example.com")
    one = browser_for("localhost")
    two = browser_for("localhost")
    sign_in(one, "/console/login", "op@example.com")
    sign_in(two, "/console/login", "op@example.com")
    assert change_password(one, "/console/account").status_code == 302
    assert one.get("/console/tenants").status_code == 200
    assert two.get("/console/tenants").status_code == 302


# Password reset


def reset_link(app) -> str:
    folder = Path(app.config["PASOK_MAIL_DIR"])
    newest = max(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    text = message_from_bytes(newest.read_bytes(), policy=default).get_content()
    newest.unlink()
    return re.search(r"http://acme\.localhost(/reset/\S+)", text).group(1)


def test_password_reset_round_trip(acme, app, browser_for):
    client = browser_for("acme.localhost")
    response = client.post("/reset", data={"email": "ALICE@example.com"})
    assert response.status_code == 302
    link = reset_link(app)
    assert client.get(link).status_code == 200
    data = {"password": "reset-pass-word-8", "confirm": "reset-pass-word-8"}
    assert client.post(link, data=data).headers["Location"] == "/login"
    assert sign_in(client, "/login", "alice@example.com", "reset-pass-word-8").status_code == 302
    # Single use: the link is dead once used.
    assert browser_for("acme.localhost").get(link).status_code == 400


def test_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(acme, app, browser_for):
    mail = Path(app.config["PASOK_MAIL_DIR"])
    before = set(mail.glob("*.eml"))  # the folder is the session's: other tests' mail stays
    response = browser_for("acme.localhost").post("/reset", data={"email": "nobody@example.com"})
    assert response.status_code == 302
    assert set(mail.glob("*.eml")) == before


def test_reset_link_expires(acme, app, make_app, browser_for):
    browser_for("acme.localhost").post("/reset", data={"email": "alice@example.com"})
    link = reset_link(app)
    expired = make_app(PASOK_PASSWORD_RESET_MAX_AGE=-1)
    client = browser_for("acme.localhost", expired.test_client())
    assert client.get(link).status_code == 400


def test_reset_link_from_another_tenant_does_not_work(acme, app, make, browser_for):
    make.tenant("toko")
    browser_for("acme.localhost").post("/reset", data={"email": "alice@example.com"})
    link = reset_link(app)
    assert browser_for("toko.localhost").get(link).status_code == 400


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 500])
def test_forged_reset_tokens_are_refused(acme, browser_for, token):
    assert browser_for("acme.localhost").get(f"/reset/{token}").status_code == 400


def test_reset_rejects_a_weak_new_password(acme, app, browser_for):
    client = browser_for("acme.localhost")
    client.post("/reset", data={"email": "alice@example.com"})
    link = reset_link(app)
    response = client.post(link, data={"password": "short", "confirm": "short"})
    assert response.status_code == 200
    assert b"at least 8 characters" in response.data
    assert client.get(link).status_code == 200  # still usable


# Operators


def test_operator_login_and_tenant_management(app, make, browser_for):
    make.operator("op@example.com")
    root = browser_for("localhost")
    assert root.get("/console/tenants").status_code == 302
    assert sign_in(root, "/console/login", "OP@example.com").status_code == 302
    response = root.post(
        "/console/tenants",
        data={
            "slug": "newpanel",
            "name": "New Panel",
            "owner_email": "owner@newpanel.example.com",
            "owner_password": "owner-pass-77",
            "theme": "aurora",
            "currency": "IDR",
            "locale": "id",
        },
    )
    assert response.status_code == 302
    page = root.get("/console/tenants").data
    assert b"New Panel" in page and b"newpanel.localhost" in page
    with app.app_context(), across_tenants():
        from tenants.provisioning import get_tenant_by_slug

        tenant_id = get_tenant_by_slug("newpanel").id
    root.post(f"/console/tenants/{tenant_id}/suspend", data={"reason": "chargebacks"})
    assert browser_for("newpanel.localhost").get("/").status_code == 403
    root.post(f"/console/tenants/{tenant_id}/resume")
    assert browser_for("newpanel.localhost").get("/").status_code == 200
    assert root.post("/console/tenants/99999/resume").status_code == 404


@pytest.mark.parametrize(
    "slug, error", [("www", b"is reserved"), ("-bad-", b"Slug must be"), ("a", b"Slug must be")]
)
def test_console_rejects_bad_tenants(app, make, browser_for, slug, error):
    make.operator("op@example.com")
    root = browser_for("localhost")
    sign_in(root, "/console/login", "op@example.com")
    data = {
        "slug": slug,
        "name": "X",
        "owner_email": "o@example.com",
        "owner_password": "owner-pass-77",
        "theme": "base",
        "currency": "USD",
        "locale": "en",
    }
    response = root.post("/console/tenants", data=data)
    assert response.status_code == 200
    assert error in response.data


def test_staff_cannot_use_the_console(acme, browser_for):
    response = sign_in(browser_for("localhost"), "/console/login", "staff@acme.example.com")
    assert b"Wrong email or password" in response.data


@pytest.mark.parametrize("path", ["/register", "/login", "/admin/login"])
def test_form_fields_carry_autocomplete_only_when_given(acme, browser_for, path):
    page = browser_for("acme.localhost").get(path).data
    assert b'autocomplete="None"' not in page
    assert b'autocomplete="email"' in page
