"""Tenant data never crosses tenants. Later issues add their routes to these tables."""

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.extensions import db
from app.panels.models import Domain
from tenants.context import platform_scope, tenant_scope
from tenants.provisioning import add_domain, get_tenant_by_slug
from tenants.scoping import TenantScopeError
from tests.conftest import PASSWORD, sign_in

# Pages only a signed-in customer may open: (path, expected text when signed in).
CUSTOMER_PAGES = [
    ("/dashboard", b"Welcome"),
    ("/account", b"Change password"),
    ("/orders", b'page-title">Orders'),
    ("/orders/new", b'page-title">New order'),
    ("/orders/mass", b'page-title">Mass order'),
    ("/funds", b'page-title">Funds'),
    ("/funds/topups", b'page-title">Your top-ups'),
]
# Pages only the tenant's staff may open.
STAFF_PAGES = [
    ("/admin/", b"Overview"),
    ("/admin/account", b"Change password"),
    ("/admin/branding", b"Branding"),
    ("/admin/customers", b"Customers"),
    ("/admin/orders", b"Orders"),
    ("/admin/pricing", b"Pricing"),
    ("/admin/catalog", b"Catalog"),
    ("/admin/payments", b"Stripe"),
    ("/admin/topups", b"Top-ups"),
    ("/admin/wallet", b"Wholesale wallet"),
]
# Pages of the operator console: they exist on the platform domain only.
CONSOLE_PAGES = [
    "/console/",
    "/console/tenants",
    "/console/account",
    "/console/login",
    "/console/providers",
    "/console/providers/1",
    "/console/catalog",
    "/console/catalog/services/1",
    "/console/catalog/categories/1",
    "/console/pricing",
    "/console/fx",
    "/console/pipeline",
    "/console/rq/",
    "/console/payments",
    "/console/topups",
]
# Pages of a tenant that do not exist on the platform domain.
TENANT_ONLY_PAGES = [
    "/login",
    "/register",
    "/reset",
    "/dashboard",
    "/account",
    "/services",
    "/orders",
    "/orders/new",
    "/orders/mass",
    "/orders/quote",
    "/orders/1",
    "/funds",
    "/funds/topups",
    "/funds/topups/1.json",
    "/funds/topups/1/proof",
    "/funds/manual",
    "/funds/manual/qris.png",
    "/admin/login",
    "/admin/customers",
    "/admin/orders",
    "/admin/pricing",
    "/admin/catalog",
    "/admin/payments",
    "/admin/topups",
    "/admin/topups/1",
    "/admin/wallet",
]


@pytest.fixture
def two_panels(app, make):
    a = make.tenant("acme")
    b = make.tenant("toko", currency="IDR", locale="en")
    make.customer(a, "alice@example.com")
    make.customer(b, "budi@example.com")
    make.staff(a, "staff@acme.example.com", role="owner")
    make.staff(b, "staff@toko.example.com", role="owner")
    return a, b


@pytest.mark.parametrize("path, marker", CUSTOMER_PAGES)
def test_customer_cookie_from_a_is_anonymous_on_b(two_panels, app, browser_for, path, marker):
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/login", "alice@example.com").status_code == 302
    assert marker in acme.get(path).data
    stolen = acme.cookie("pasok_session").value

    toko = browser_for("toko.localhost")
    toko.client.set_cookie("pasok_session", stolen, domain="toko.localhost")
    response = toko.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path, marker", STAFF_PAGES)
def test_staff_of_a_cannot_open_bs_admin(two_panels, app, browser_for, path, marker):
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/admin/login", "staff@acme.example.com").status_code == 302
    assert marker in acme.get(path).data
    stolen = acme.cookie("pasok_staff", path="/admin").value

    toko = browser_for("toko.localhost")
    toko.client.set_cookie("pasok_staff", stolen, domain="toko.localhost", path="/admin")
    response = toko.get(path)
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]


def test_staff_of_a_cannot_sign_in_on_b(two_panels, browser_for):
    response = sign_in(browser_for("toko.localhost"), "/admin/login", "staff@acme.example.com")
    assert response.status_code == 200
    assert b"Wrong email or password" in response.data


def test_customer_of_a_cannot_sign_in_on_b(two_panels, browser_for):
    response = sign_in(browser_for("toko.localhost"), "/login", "alice@example.com")
    assert b"Wrong email or password" in response.data


def test_the_same_email_is_two_accounts_on_two_panels(two_panels, make, browser_for):
    _, b = two_panels
    make.user("customer", b, "alice@example.com", password="a-different-pass-9")
    assert sign_in(browser_for("acme.localhost"), "/login", "alice@example.com").status_code == 302
    toko = browser_for("toko.localhost")
    assert b"Wrong email" in sign_in(toko, "/login", "alice@example.com").data
    assert sign_in(toko, "/login", "alice@example.com", "a-different-pass-9").status_code == 302


@pytest.mark.parametrize("path", CONSOLE_PAGES)
def test_console_does_not_exist_on_tenant_hosts(two_panels, browser_for, path):
    assert browser_for("acme.localhost").get(path).status_code == 404


@pytest.mark.parametrize("path", TENANT_ONLY_PAGES)
def test_tenant_pages_do_not_exist_on_the_platform_domain(app, browser_for, path):
    assert browser_for("localhost").get(path).status_code == 404


def test_operator_cookie_is_not_a_tenant_staff_session(two_panels, make, app, browser_for):
    make.operator("op@example.com")
    root = browser_for("localhost")
    assert sign_in(root, "/console/login", "op@example.com").status_code == 302
    stolen = root.cookie("pasok_operator", path="/console").value
    acme = browser_for("acme.localhost")
    acme.client.set_cookie("pasok_staff", stolen, domain="acme.localhost", path="/admin")
    assert acme.get("/admin/").status_code == 302


def test_an_id_of_bs_user_is_invisible_on_a(two_panels, app):
    a, b = two_panels
    with app.app_context():
        with tenant_scope(b):
            budi = db.session.scalar(select(User).where(User.email == "budi@example.com"))
            budi_id = budi.id
        db.session.expunge_all()
        with tenant_scope(a):
            assert db.session.get(User, budi_id) is None
            assert db.session.scalar(select(User).where(User.id == budi_id)) is None
            emails = set(db.session.scalars(select(User.email)))
    assert "budi@example.com" not in emails
    assert "alice@example.com" in emails


def test_domains_and_audit_entries_are_scoped(two_panels, app):
    a, _ = two_panels
    with app.app_context():
        from tenants.context import across_tenants

        with across_tenants():
            add_domain(
                get_tenant_by_slug("toko"),
                "toko-sosmed.id",
                verified=True,
                platform_domain="localhost",
                actor="test",
            )
            db.session.commit()
        with tenant_scope(a):
            assert db.session.scalars(select(Domain)).all() == []
            assert {e.tenant_id for e in db.session.scalars(select(AuditEntry))} == {a}
        with platform_scope():
            assert db.session.scalars(select(AuditEntry)).all() == []


def test_writing_another_tenants_row_is_refused(two_panels, app):
    a, b = two_panels
    with app.app_context(), tenant_scope(a):
        db.session.add(AuditEntry(tenant_id=b, actor_label="x", action="forged", details={}))
        with pytest.raises(TenantScopeError, match="tenant"):
            db.session.flush()
        db.session.rollback()


def test_password_fixture_is_strong_enough():
    from app.accounts.services import check_password_strength

    check_password_strength(PASSWORD)


# --- ids of another tenant's rows, typed into URLs -------------------------------------------


@pytest.fixture
def shops(app, make):
    """acme (alice, an owner) and nusa (budi, an owner); budi has an order, nusa a price rule
    and a customer group."""
    from decimal import Decimal

    from app.orders.services import place_order
    from app.pricing.retail import set_group, set_price_rule
    from tests.ordering import LINK, build_shop, fund, fund_tenant

    ids = build_shop(app, make)
    make.staff(ids["acme"], "staff@acme.example.com", role="owner")
    make.staff(ids["nusa"], "staff@nusa.example.com", role="owner")
    fund(app, ids["budi"], "100000")
    fund_tenant(app, ids["nusa"], "5.00")
    with app.app_context(), tenant_scope(ids["nusa"]):
        placed = place_order(
            tenant_id=ids["nusa"],
            customer_id=ids["budi"],
            service_id=ids["views"],
            fields={"link": LINK, "quantity": "100"},
            actor="test",
        )
        rule = set_price_rule(
            ids["nusa"], actor="test", service_id=ids["likes"], markup=Decimal(50)
        )
        group = set_group(ids["nusa"], actor="test", name="VIP", discount_percent=Decimal(5))
        db.session.commit()
        ids.update(order=placed.order.id, rule=rule.id, group=group.id)
    return ids


def nusa_state(app, ids) -> tuple:
    from app.ledger import balance, wallet_of
    from app.orders.models import Order
    from app.pricing.tenant_models import CustomerGroup, PriceRule

    with app.app_context(), tenant_scope(ids["nusa"]):
        budi = db.session.get(User, ids["budi"])
        return (
            db.session.get(Order, ids["order"]).status,
            balance(wallet_of(budi)),
            db.session.get(PriceRule, ids["rule"]) is not None,
            db.session.get(CustomerGroup, ids["group"]).discount_percent,
        )


def test_a_customer_cannot_open_or_cancel_another_tenants_order(shops, app, browser_for):
    before = nusa_state(app, shops)
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/login", "alice@example.com").status_code == 302
    assert acme.get(f"/orders/{shops['order']}").status_code == 404
    assert acme.post(f"/orders/{shops['order']}/cancel").status_code == 404
    assert acme.post(f"/orders/{shops['order']}/refill").status_code == 404
    assert acme.post(f"/orders/{shops['order']}/request-cancel").status_code == 404
    listed = acme.get(f"/orders?q={shops['order']}").data
    assert f'href="/orders/{shops["order"]}"'.encode() not in listed
    assert nusa_state(app, shops) == before


STAFF_ID_PROBES = [
    ("get", "/admin/orders/{order}", {}),
    ("post", "/admin/orders/{order}/cancel", {}),
    ("post", "/admin/orders/{order}/refill", {}),
    ("post", "/admin/orders/{order}/request-cancel", {}),
    ("get", "/admin/customers/{budi}", {}),
    ("post", "/admin/customers/{budi}/adjust", {"amount": "-100", "reason": "stolen"}),
    ("post", "/admin/customers/{budi}/pricing", {"discount_percent": "90"}),
    ("post", "/admin/pricing/rules/{rule}/delete", {}),
    ("post", "/admin/pricing/groups/{group}", {"name": "Hacked", "discount_percent": "99"}),
]


@pytest.mark.parametrize("method, path, data", STAFF_ID_PROBES)
def test_staff_cannot_reach_another_tenants_rows_by_id(shops, app, browser_for, method, path, data):
    before = nusa_state(app, shops)
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/admin/login", "staff@acme.example.com").status_code == 302
    response = getattr(acme, method)(path.format(**shops), data=data)
    assert response.status_code == 404
    assert nusa_state(app, shops) == before


def test_a_key_and_the_api_stay_on_their_own_panel(shops, app, browser_for):
    """budi's key works on nusa's API only; alice can neither rotate nor revoke it, and nusa's
    order ids mean nothing on acme's API."""
    from app.api.keys import create_key

    with app.app_context(), tenant_scope(shops["nusa"]):
        key = create_key(shops["nusa"], shops["budi"], "bot", actor="test")
        db.session.commit()
        key_id = key.key.id
    before = nusa_state(app, shops)
    on_acme = browser_for("acme.localhost").post(
        "/api/v2", data={"key": key.token, "action": "status", "order": shops["order"]}
    )
    assert on_acme.get_json() == {"error": "Invalid API key"}
    on_nusa = browser_for("nusa.localhost").post(
        "/api/v2", data={"key": key.token, "action": "status", "order": shops["order"]}
    )
    assert "status" in on_nusa.get_json()
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/login", "alice@example.com").status_code == 302
    assert acme.post(f"/api/keys/{key_id}/rotate").status_code == 404
    assert acme.post(f"/api/keys/{key_id}/revoke").status_code == 404
    still = browser_for("nusa.localhost").post(
        "/api/v2", data={"key": key.token, "action": "balance"}
    )
    assert "balance" in still.get_json()
    assert nusa_state(app, shops) == before


def test_another_tenants_orders_and_customers_are_not_listed(shops, browser_for):
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/admin/login", "staff@acme.example.com").status_code == 302
    assert b"budi@example.com" not in acme.get("/admin/customers?q=budi").data
    assert b"budi@example.com" not in acme.get("/admin/orders?q=budi").data
    assert b"budi@example.com" not in acme.get(f"/admin/orders?q={shops['order']}").data


def test_a_webhook_signed_for_one_panel_is_refused_on_another(two_panels, app):
    """Each host verifies with its own owner's secrets: acme's Stripe signature means nothing
    on toko's host, on the platform's, or where no gateway is set up."""
    from app.extensions import db
    from app.payments import set_stripe
    from tenants.context import platform_scope, tenant_scope
    from tests.payments_support import post_stripe, stripe_signature

    a, b = two_panels
    for tenant_id, scope, key in ((a, tenant_scope(a), "sk_a"), (None, platform_scope(), "sk_p")):
        with app.app_context(), scope:
            set_stripe(tenant_id, secret_key=key, webhook_secret=f"whsec_{key}", actor="test")
            db.session.commit()
    body = '{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}}'
    signed_for_a = stripe_signature(body, "whsec_sk_a")
    client = app.test_client()

    assert post_stripe(client, "toko.localhost", body, signed_for_a).status_code == 404
    assert post_stripe(client, "localhost", body, signed_for_a).status_code == 400
    assert post_stripe(client, "nowhere.localhost", body, signed_for_a).status_code == 404
    with app.app_context(), tenant_scope(b):
        set_stripe(b, secret_key="sk_b", webhook_secret="whsec_sk_b", actor="test")
        db.session.commit()
    assert post_stripe(client, "toko.localhost", body, signed_for_a).status_code == 400
