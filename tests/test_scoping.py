"""Scoping fails closed: tenant-owned data needs a tenant (or an explicit cross-tenant scope)."""

import pytest
from sqlalchemy import delete, func, select, update

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.extensions import db
from app.panels.models import Domain, Tenant
from tenants.context import across_tenants, current_scope, tenant_scope
from tenants.scoping import TenantScopeError


@pytest.mark.parametrize(
    "statement",
    [
        select(User),
        select(User.email),
        select(func.count(User.id)),
        select(Domain).where(Domain.hostname == "x"),
        select(AuditEntry).limit(1),
        update(User).values(name="x"),
        delete(Domain),
    ],
    ids=["entity", "column", "count", "where", "limit", "update", "delete"],
)
def test_tenant_owned_statement_without_a_tenant_raises(app, statement):
    with app.app_context():
        assert current_scope() is None
        with pytest.raises(TenantScopeError, match="no tenant in scope"):
            db.session.execute(statement)


def test_platform_data_needs_no_tenant(app, make):
    make.tenant("acme")
    with app.app_context():
        assert db.session.scalar(select(Tenant.slug)) == "acme"


def test_writing_tenant_owned_data_without_a_tenant_raises(app, make):
    tenant_id = make.tenant("acme")
    with app.app_context():
        db.session.add(AuditEntry(tenant_id=tenant_id, actor_label="x", action="y", details={}))
        with pytest.raises(TenantScopeError, match="write"):
            db.session.flush()
        db.session.rollback()


def test_explicit_cross_tenant_scope_sees_every_tenant(app, make):
    a = make.tenant("acme")
    b = make.tenant("toko")
    make.customer(a, "a@example.com")
    make.customer(b, "b@example.com")
    with app.app_context(), across_tenants():
        tenants = set(db.session.scalars(select(User.tenant_id).where(User.kind == "customer")))
    assert tenants == {a, b}


def test_scoped_update_touches_only_the_tenants_rows(app, make):
    a = make.tenant("acme")
    b = make.tenant("toko")
    make.customer(a, "a@example.com")
    make.customer(b, "b@example.com")
    with app.app_context():
        with tenant_scope(a):
            db.session.execute(update(User).values(name="renamed"))
            db.session.commit()
        with across_tenants():
            names = dict(db.session.execute(select(User.email, User.name)).all())
    assert names["a@example.com"] == "renamed"
    assert names["b@example.com"] == ""


def test_relationship_loads_are_scoped(app, make):
    from tenants.provisioning import add_domain, get_tenant_by_slug

    make.tenant("acme")
    with app.app_context():
        with across_tenants():
            acme = get_tenant_by_slug("acme")
            add_domain(
                acme, "acme-social.com", verified=True, platform_domain="localhost", actor="t"
            )
            db.session.commit()
            acme_id = acme.id
        db.session.expunge_all()
        with tenant_scope(acme_id + 999):
            tenant = db.session.get(Tenant, acme_id)
            assert tenant.domains == []
