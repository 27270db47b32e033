"""Catalog sync from a provider: added, repriced, updated, removed and restored services,
operator edits kept, the history written; and provider keys never stored in clear."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from app.catalog.models import DISABLED, PUBLISHED, UNLISTED, CatalogChange, Category, Service
from app.catalog.sync import SyncFailed, fetch_services, sync_provider
from app.extensions import db
from app.providers.models import Provider, ProviderService
from app.providers.services import add_provider
from tenants.context import across_tenants


@pytest.fixture
def operator_context(app):
    with app.app_context(), across_tenants():
        yield
        db.session.rollback()


@pytest.fixture
def provider(operator_context, sandbox):
    provider = add_provider("sandbox", sandbox.url, sandbox.key, honours_ref=True, actor="test")
    db.session.commit()
    return provider


def sync(provider, publish=False):
    report = sync_provider(provider, fetch_services(provider), publish=publish)
    db.session.commit()
    return report


def service_for(provider, external_id) -> Service:
    ps = db.session.scalar(
        select(ProviderService).where(
            ProviderService.provider_id == provider.id, ProviderService.external_id == external_id
        )
    )
    return db.session.scalar(select(Service).where(Service.routes.any(provider_service_id=ps.id)))


def test_first_import_adds_everything_unlisted(provider):
    report = sync(provider)
    assert len(report.added) == 50 and report.changed == 50
    assert db.session.scalar(select(func.count()).select_from(Service)) == 50
    statuses = set(db.session.scalars(select(Service.status)))
    assert statuses == {UNLISTED}
    categories = db.session.scalars(select(Category.name)).all()
    assert len(categories) >= 5 and len(set(categories)) == len(categories)
    assert db.session.scalar(select(func.count()).select_from(CatalogChange)) == 50


def test_import_with_publish(provider):
    sync(provider, publish=True)
    assert set(db.session.scalars(select(Service.status))) == {PUBLISHED}


def test_resync_reports_every_kind_of_change(provider, sandbox):
    sync(provider, publish=True)
    sandbox.admin(
        "catalog",
        {"reprice": {"3": "0.777"}, "update": {"4": {"min": 123}}, "remove": [5], "add": 2},
    )
    report = sync(provider)
    assert report.repriced == ["3"]
    assert report.updated == ["4"]
    assert report.removed == ["5"]
    assert len(report.added) == 2
    assert report.restored == []
    repriced = db.session.scalar(
        select(CatalogChange).where(
            CatalogChange.sync_run == report.run, CatalogChange.kind == "repriced"
        )
    )
    assert repriced.after == {"rate": "0.777"} and repriced.before["rate"] != "0.777"
    assert service_for(provider, "4").min_quantity == 123  # limits follow the primary route
    assert service_for(provider, "5").status == DISABLED  # no route left
    new_ones = [service_for(provider, i) for i in report.added]
    assert {s.status for s in new_ones} == {UNLISTED}
    # Nothing changed since: an empty report.
    assert sync(provider).changed == 0


def test_a_service_that_comes_back_is_restored(provider, sandbox):
    sync(provider)
    sandbox.admin("catalog", {"remove": [6]})
    sync(provider)
    sandbox.admin("reset", {})
    report = sync(provider)
    assert report.restored == ["6"]
    ps = db.session.scalar(select(ProviderService).where(ProviderService.external_id == "6"))
    assert ps.available


def test_operator_edits_survive_a_sync(provider, sandbox):
    sync(provider)
    service = service_for(provider, "1")
    service.name, service.name_edited = "Instagram Followers HQ", True
    service.description, service.description_edited = "Real-looking profiles.", True
    category = service.category
    category.name = "Instagram"
    db.session.commit()
    sandbox.admin(
        "catalog", {"update": {"1": {"name": "[SBX] renamed upstream"}}, "reprice": {"1": "9.9"}}
    )
    report = sync(provider)
    assert report.repriced == ["1"]
    service = service_for(provider, "1")
    assert service.name == "Instagram Followers HQ"
    assert service.description == "Real-looking profiles."
    assert service.category.name == "Instagram"
    ps = db.session.scalar(select(ProviderService).where(ProviderService.external_id == "1"))
    assert ps.name == "[SBX] renamed upstream" and ps.rate == Decimal("9.9")


def test_a_provider_that_does_not_answer_changes_nothing(provider, sandbox):
    sync(provider)
    sandbox.admin("settings", {"faults": {"html": 1.0}})
    with pytest.raises(SyncFailed, match="did not list its services"):
        fetch_services(provider)
    assert db.session.scalar(select(func.count()).select_from(Service)) == 50


def test_the_api_key_is_never_stored_in_clear(provider):
    raw = db.session.execute(text("SELECT api_key FROM providers")).scalar_one()
    assert "sandbox-key" not in raw
    db.session.expunge_all()
    assert db.session.scalar(select(Provider.api_key)) == "sandbox-key"


def test_an_empty_listing_changes_nothing(provider, sandbox):
    sync(provider)
    with pytest.raises(SyncFailed, match="listed no services"):
        sync_provider(provider, [], publish=False)
    db.session.rollback()
    assert set(db.session.scalars(select(ProviderService.available))) == {True}


def test_costs_with_more_than_six_places_are_rounded_half_up(provider, sandbox):
    from dataclasses import replace

    sync(provider)
    upstream = [
        replace(item, rate=Decimal("0.0012345")) if item.external_id == "7" else item
        for item in fetch_services(provider)
    ]
    report = sync_provider(provider, upstream)
    db.session.commit()
    assert report.repriced == ["7"]
    ps = db.session.scalar(select(ProviderService).where(ProviderService.external_id == "7"))
    assert ps.rate == Decimal("0.001235")


def test_an_import_is_audited(provider, sandbox):
    from app.audit.models import AuditEntry
    from app.catalog.sync import record_import

    report = sync(provider)
    record_import(provider, report, publish=False, actor="test")
    db.session.commit()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "catalog.sync"))
    assert entry.details["added"] == 50 and entry.target == "provider:sandbox"
