"""Host → tenant: subdomains, custom domains, unknown hosts, suspension, ports, case, dots."""

import pytest

from app.extensions import db
from app.panels.models import Tenant
from tenants.context import across_tenants
from tenants.provisioning import add_domain, get_tenant_by_slug, suspend_tenant
from tenants.resolution import PLATFORM, TENANT, UNKNOWN, TenantResolver, normalize_host


@pytest.mark.parametrize(
    "raw, host",
    [
        ("acme.localhost", "acme.localhost"),
        ("ACME.LocalHost", "acme.localhost"),
        ("acme.localhost:5000", "acme.localhost"),
        ("acme.localhost.", "acme.localhost"),
        ("Acme.Localhost.:8443", "acme.localhost"),
        ("[::1]:5000", "[::1]"),
        ("", ""),
    ],
)
def test_hosts_are_normalized(raw, host):
    assert normalize_host(raw) == host


@pytest.mark.parametrize(
    "host, kind, slug",
    [
        ("acme.localhost", TENANT, "acme"),
        ("ACME.localhost:5000", TENANT, "acme"),
        ("acme.localhost.", TENANT, "acme"),
        ("localhost", PLATFORM, None),
        ("localhost:5000", PLATFORM, None),
        ("www.localhost", PLATFORM, None),
        ("nope.localhost", UNKNOWN, None),
        ("a.acme.localhost", UNKNOWN, None),
        ("127.0.0.1", UNKNOWN, None),
        ("panel.acme-social.com", TENANT, "acme"),
        ("PANEL.acme-social.com:443", TENANT, "acme"),
        ("pending.acme-social.com", UNKNOWN, None),
    ],
)
def test_resolution(app, make, host, kind, slug):
    make.tenant("acme")
    with app.app_context(), across_tenants():
        tenant = get_tenant_by_slug("acme")
        for hostname, verified in [
            ("panel.acme-social.com", True),
            ("pending.acme-social.com", False),
        ]:
            add_domain(
                tenant, hostname, verified=verified, platform_domain="localhost", actor="test"
            )
        db.session.commit()
        match = app.extensions["pasok_resolver"].resolve(host)
    assert match.kind == kind
    assert (match.tenant.slug if match.tenant else None) == slug


def test_unknown_host_is_a_404_page(app, browser_for):
    response = browser_for("nobody.localhost").get("/")
    assert response.status_code == 404
    assert b"Page not found" in response.data


def test_platform_domain_serves_the_platform_site(app, browser_for):
    response = browser_for("localhost:5000").get("/")
    assert response.status_code == 200
    assert b"Operator sign in" in response.data


def test_custom_domain_serves_the_tenants_storefront(app, make, browser_for):
    make.tenant("acme")
    with app.app_context(), across_tenants():
        add_domain(
            get_tenant_by_slug("acme"),
            "panel.acme-social.com",
            verified=True,
            platform_domain="localhost",
            actor="test",
        )
        db.session.commit()
    response = browser_for("panel.acme-social.com").get("/")
    assert response.status_code == 200
    assert b"Acme Panel" in response.data


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/admin/login", "/dashboard"])
def test_suspended_tenant_shows_the_suspended_page(app, make, browser_for, path):
    make.tenant("acme")
    with app.app_context(), across_tenants():
        suspend_tenant(get_tenant_by_slug("acme"), reason="unpaid", actor="test")
        db.session.commit()
    response = browser_for("acme.localhost").get(path)
    assert response.status_code == 403
    assert b"This panel is suspended" in response.data
    assert b"unpaid" not in response.data  # the reason is for operators, not customers


def test_health_answers_on_any_host_even_suspended(app, make, browser_for):
    make.tenant("acme")
    with app.app_context(), across_tenants():
        suspend_tenant(get_tenant_by_slug("acme"), actor="test")
        db.session.commit()
    for host in ("acme.localhost", "nobody.example.org", "localhost", "10.1.2.3:8000"):
        assert browser_for(host).get("/healthz").status_code == 200
        assert browser_for(host).get("/readyz").status_code == 200


def test_a_change_in_another_process_is_seen_within_the_cache_lifetime(app, make):
    """Another process's resolver keeps its answer at most `ttl` seconds."""
    tenant_id = make.tenant("acme")
    now = [1000.0]
    other_process = TenantResolver("localhost", ttl_seconds=3, clock=lambda: now[0])
    with app.app_context():
        assert other_process.resolve("acme.localhost").tenant.is_suspended is False
        # A change committed elsewhere, bypassing this resolver's own invalidation.
        with app.app_context(), across_tenants():
            db.session.get(Tenant, tenant_id).status = "suspended"
            db.session.commit()
        now[0] += 2.9
        assert other_process.resolve("acme.localhost").tenant.is_suspended is False
        now[0] += 0.2
        assert other_process.resolve("acme.localhost").tenant.is_suspended is True


def test_the_committing_process_sees_its_change_at_once(app, make, browser_for):
    make.tenant("acme")
    client = browser_for("acme.localhost")
    assert client.get("/").status_code == 200
    with app.app_context(), across_tenants():
        suspend_tenant(get_tenant_by_slug("acme"), actor="test")
        db.session.commit()
    assert client.get("/").status_code == 403


def test_with_default_settings_every_process_sees_a_change_within_five_seconds(app, make):
    """The app's own resolver: a change it was not told about shows up within 5 s."""
    from sqlalchemy import text

    make.tenant("acme")
    resolver = app.extensions["pasok_resolver"]
    now = [50.0]
    resolver.clock = lambda: now[0]
    with app.app_context():
        assert not resolver.resolve("acme.localhost").tenant.is_suspended
        # Another process's write: plain SQL, so no session event reaches this resolver.
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE tenants SET status = 'suspended'"))
        now[0] += 5.0
        assert resolver.resolve("acme.localhost").tenant.is_suspended
