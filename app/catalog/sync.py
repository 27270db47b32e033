"""Catalog sync: bring one provider's services into the platform catalog.

A sync reads the upstream's `services` once and, in batches:
- adds upstream services it has not seen, each with a platform service (unlisted, or published
  with `publish=True`) in the category of the upstream's category name;
- updates costs, limits and flags of known ones (a price change is "repriced");
- marks services the upstream no longer lists as unavailable, and disables platform services
  left with no available route ("removed"); one that comes back is "restored".
Every change is written to `catalog_changes`. Names and descriptions an operator has edited
are never overwritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.catalog.models import (
    DISABLED,
    PUBLISHED,
    UNLISTED,
    CatalogChange,
    Category,
    Service,
    ServiceRoute,
)
from app.errors import PasokError
from app.extensions import db
from app.providers.client import UpstreamService
from app.providers.models import Provider, ProviderService
from app.types import utcnow

BATCH = 500
TRACKED = ("name", "category", "type", "rate", "min_quantity", "max_quantity", "refill",
           "cancel", "dripfeed")  # fmt: skip


class SyncFailed(PasokError):
    pass


@dataclass
class SyncReport:
    provider: str
    run: str
    seen: int = 0
    added: list[str] = field(default_factory=list)
    repriced: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(
            len(x) for x in (self.added, self.repriced, self.updated, self.removed, self.restored)
        )

    def summary(self) -> str:
        return (
            f"{self.provider}: {self.seen} services upstream; {len(self.added)} added, "
            f"{len(self.repriced)} repriced, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {len(self.restored)} restored"
        )


def fetch_services(provider: Provider) -> list[UpstreamService]:
    reply = provider.client().services()
    if not reply.ok:
        raise SyncFailed(
            _l(
                "%(provider)s did not list its services: %(error)s",
                provider=provider.name,
                error=reply.error,
            )
        )
    return reply.data


def sync_provider(
    provider: Provider,
    upstream: list[UpstreamService],
    *,
    publish: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Apply `upstream` (the provider's current list) to the catalog; the caller commits."""
    report = SyncReport(provider=provider.name, run=uuid.uuid4().hex[:12], seen=len(upstream))
    now = utcnow()
    known = {
        ps.external_id: ps
        for ps in db.session.scalars(
            select(ProviderService).where(ProviderService.provider_id == provider.id)
        )
    }
    categories = {
        c.upstream_name: c
        for c in db.session.scalars(select(Category).where(Category.upstream_name.is_not(None)))
    }
    changes: list[CatalogChange] = []

    def change(kind: str, ps: ProviderService, before: dict, after: dict, service=None) -> None:
        changes.append(
            CatalogChange(
                sync_run=report.run,
                provider_id=provider.id,
                provider_service=ps,
                service=service,
                kind=kind,
                before=before,
                after=after,
            )
        )
        getattr(report, kind).append(ps.external_id)

    seen_ids = set()
    reshaped: list[ProviderService] = []
    for start in range(0, len(upstream), BATCH):
        for item in upstream[start : start + BATCH]:
            if item.external_id in seen_ids:
                continue  # an upstream listing a service twice: the first one counts
            seen_ids.add(item.external_id)
            ps = known.get(item.external_id)
            if ps is None:
                ps = _new_provider_service(provider, item, now)
                category = categories.get(item.category) or _new_category(item.category)
                categories[item.category] = category
                service = _new_service(item, category, UNLISTED if not publish else PUBLISHED)
                db.session.add_all(
                    [ps, service, ServiceRoute(service=service, provider_service=ps)]
                )
                change("added", ps, {}, _snapshot(item), service)
                continue
            before = {k: _jsonable(getattr(ps, k)) for k in TRACKED}
            after = _snapshot(item)
            ps.last_seen_at = now
            if not ps.available:
                ps.available = True
                change("restored", ps, {"available": False}, {"available": True})
            if before != after:
                for key in TRACKED:
                    setattr(ps, key, getattr(item, key))
                kind = "repriced" if before["rate"] != after["rate"] else "updated"
                reshaped.append(ps)
                diff_before = {k: v for k, v in before.items() if after[k] != v}
                change(kind, ps, diff_before, {k: after[k] for k in diff_before})
        db.session.flush()
        if progress:
            progress(min(start + BATCH, len(upstream)) - start)

    for external_id, ps in known.items():
        if external_id not in seen_ids and ps.available:
            ps.available = False
            change("removed", ps, {"available": True}, {"available": False})
    db.session.add_all(changes)
    db.session.flush()
    _follow_primary_routes(reshaped)
    _disable_services_without_routes(report)
    provider.last_synced_at = now
    return report


SHAPE = ("type", "min_quantity", "max_quantity", "refill", "cancel", "dripfeed")


def _follow_primary_routes(changed: list[ProviderService]) -> None:
    """A platform service takes its type, limits and flags from its first route."""
    by_id = {ps.id: ps for ps in changed}
    for start in range(0, len(changed), BATCH):
        ids = [ps.id for ps in changed[start : start + BATCH]]
        rows = db.session.execute(
            select(Service, ServiceRoute.provider_service_id)
            .join(ServiceRoute, ServiceRoute.service_id == Service.id)
            .where(ServiceRoute.provider_service_id.in_(ids), ServiceRoute.priority == 1)
        )
        for service, provider_service_id in rows:
            for key in SHAPE:
                setattr(service, key, getattr(by_id[provider_service_id], key))


def _disable_services_without_routes(report: SyncReport) -> None:
    if not report.removed:
        return
    orphaned = db.session.scalars(
        select(Service).where(
            Service.status != DISABLED,
            ~Service.routes.any(ServiceRoute.provider_service.has(ProviderService.available)),
        )
    )
    for service in orphaned:
        service.status = DISABLED


def _snapshot(item: UpstreamService) -> dict:
    return {k: _jsonable(getattr(item, k)) for k in TRACKED}


def _jsonable(value):
    from decimal import Decimal

    return str(value.normalize()) if isinstance(value, Decimal) else value


def _new_provider_service(provider: Provider, item: UpstreamService, now) -> ProviderService:
    return ProviderService(
        provider_id=provider.id,
        external_id=item.external_id,
        **{k: getattr(item, k) for k in TRACKED},
        available=True,
        first_seen_at=now,
        last_seen_at=now,
    )


def _new_category(upstream_name: str) -> Category:
    category = Category(name=upstream_name[:120], upstream_name=upstream_name)
    db.session.add(category)
    return category


def _new_service(item: UpstreamService, category: Category, status: str) -> Service:
    return Service(
        category=category,
        name=item.name,
        description="",
        type=item.type,
        min_quantity=item.min_quantity,
        max_quantity=item.max_quantity,
        refill=item.refill,
        cancel=item.cancel,
        dripfeed=item.dripfeed,
        status=status,
    )
