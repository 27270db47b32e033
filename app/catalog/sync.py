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
from dataclasses import dataclass, field, replace

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select, update

from app.audit.services import record_audit
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
from app.money import round_rate
from app.providers.client import UpstreamService
from app.providers.models import Provider, ProviderService
from app.types import utcnow

BATCH = 500
TRACKED = ("name", "category", "type", "rate", "min_quantity", "max_quantity", "refill",
           "cancel", "dripfeed")  # fmt: skip


CHANGE_KINDS = ("added", "repriced", "updated", "removed", "restored")


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


def record_import(provider: Provider, report: SyncReport, *, publish: bool, actor) -> None:
    """An import is a price change: it goes to the audit log beside its catalog changes."""
    record_audit(
        "catalog.sync",
        actor=actor,
        tenant_id=None,
        target=f"provider:{provider.name}",
        details={
            "run": report.run,
            "publish": publish,
            "seen": report.seen,
            **{kind: len(getattr(report, kind)) for kind in CHANGE_KINDS},
        },
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
    """Apply `upstream` (the provider's current list) to the catalog; the caller commits.

    Set-based: known services are read as plain rows and compared as tuples, changes are
    written with bulk UPDATEs and INSERTs per batch, so a re-sync costs a few dozen statements
    whatever the catalog's size (see bench/catalog.py).
    """
    report = SyncReport(provider=provider.name, run=uuid.uuid4().hex[:12], seen=len(upstream))
    now = utcnow()
    # Costs are kept to a rate's precision (6 places); an upstream may quote more.
    upstream = [replace(item, rate=round_rate(item.rate)) for item in upstream]
    known = {
        row.external_id: row
        for row in db.session.execute(
            select(*KNOWN_COLUMNS).where(ProviderService.provider_id == provider.id)
        )
    }
    if not upstream and any(row.available for row in known.values()):
        # An empty list is far likelier an upstream hiccup than every service withdrawn.
        raise SyncFailed(
            _l(
                "%(provider)s listed no services; nothing was changed",
                provider=provider.name,
            )
        )
    categories = {
        c.upstream_name: c
        for c in db.session.scalars(select(Category).where(Category.upstream_name.is_not(None)))
    }
    status = PUBLISHED if publish else UNLISTED
    changes: list[dict] = []

    def change(kind, external_id, provider_service_id, before, after, service_id=None) -> None:
        changes.append(
            {
                "at": now,
                "sync_run": report.run,
                "provider_id": provider.id,
                "provider_service_id": provider_service_id,
                "service_id": service_id,
                "kind": kind,
                "before": before,
                "after": after,
            }
        )
        getattr(report, kind).append(external_id)

    seen_ids: set[str] = set()
    seen_rows: list[int] = []
    restored: list[int] = []
    reshaped: dict[int, UpstreamService] = {}
    for start in range(0, len(upstream), BATCH):
        updates: list[dict] = []
        new_items: list[UpstreamService] = []
        for item in upstream[start : start + BATCH]:
            if item.external_id in seen_ids:
                continue  # an upstream listing a service twice: the first one counts
            seen_ids.add(item.external_id)
            row = known.get(item.external_id)
            if row is None:
                new_items.append(item)
                continue
            seen_rows.append(row.id)
            if not row.available:
                restored.append(row.id)
                change("restored", item.external_id, row.id, {"available": False},
                       {"available": True})  # fmt: skip
            stored = tuple(row[3:])
            if stored == tuple(getattr(item, k) for k in TRACKED):
                continue  # Decimals compare by value: "0.90" equals "0.9"
            before = {k: _jsonable(v) for k, v in zip(TRACKED, stored, strict=True)}
            after = _snapshot(item)
            updates.append({"id": row.id, **{k: getattr(item, k) for k in TRACKED}})
            reshaped[row.id] = item
            kind = "repriced" if before["rate"] != after["rate"] else "updated"
            changed = {k: v for k, v in before.items() if after[k] != v}
            change(kind, item.external_id, row.id, changed, {k: after[k] for k in changed})
        if updates:
            db.session.execute(update(ProviderService), updates)
        for item, ps_id, service_id in _insert_new(provider, new_items, categories, status, now):
            change("added", item.external_id, ps_id, {}, _snapshot(item), service_id)
        if progress:
            progress(min(start + BATCH, len(upstream)) - start)

    removed = [
        (external_id, row.id)
        for external_id, row in known.items()
        if external_id not in seen_ids and row.available
    ]
    for external_id, ps_id in removed:
        change("removed", external_id, ps_id, {"available": True}, {"available": False})
    _set_where_ids({"available": False}, [ps_id for _, ps_id in removed])
    _set_where_ids({"available": True}, restored)
    _set_where_ids({"last_seen_at": now}, seen_rows)
    for start in range(0, len(changes), BATCH):
        db.session.execute(insert(CatalogChange), changes[start : start + BATCH])
    _follow_primary_routes(reshaped)
    _disable_services_without_routes(report)
    provider.last_synced_at = now
    return report


KNOWN_COLUMNS = (
    ProviderService.id,
    ProviderService.external_id,
    ProviderService.available,
    *(getattr(ProviderService, k) for k in TRACKED),
)


def _insert_new(provider, items, categories, status, now) -> list[tuple]:
    """New upstream services with their platform services and first routes, in bulk (the ORM
    would send one INSERT per object on SQLite, which cannot order RETURNING rows)."""
    if not items:
        return []
    missing = dict.fromkeys(i.category for i in items if i.category not in categories)
    for name in missing:
        categories[name] = _new_category(name)
    if missing:
        db.session.flush()
    ps_ids = dict(
        db.session.execute(
            insert(ProviderService).returning(ProviderService.external_id, ProviderService.id),
            [
                {
                    "provider_id": provider.id,
                    "external_id": item.external_id,
                    **{k: getattr(item, k) for k in TRACKED},
                    "available": True,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for item in items
            ],
        ).all()
    )
    service_ids = db.session.scalars(
        insert(Service).returning(Service.id, sort_by_parameter_order=True),
        [
            {
                "category_id": categories[item.category].id,
                "name": item.name,
                "description": "",
                **{k: getattr(item, k) for k in SHAPE},
                "status": status,
            }
            for item in items
        ],
    ).all()
    db.session.execute(
        insert(ServiceRoute),
        [
            {"service_id": sid, "provider_service_id": ps_ids[item.external_id], "priority": 1}
            for item, sid in zip(items, service_ids, strict=True)
        ],
    )
    return [
        (item, ps_ids[item.external_id], sid) for item, sid in zip(items, service_ids, strict=True)
    ]


def _set_where_ids(values: dict, ids: list[int]) -> None:
    for start in range(0, len(ids), BATCH):
        db.session.execute(
            update(ProviderService)
            .where(ProviderService.id.in_(ids[start : start + BATCH]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


SHAPE = ("type", "min_quantity", "max_quantity", "refill", "cancel", "dripfeed")


def _follow_primary_routes(changed: dict[int, UpstreamService]) -> None:
    """A platform service takes its type, limits and flags from its first route."""
    ids = list(changed)
    for start in range(0, len(ids), BATCH):
        rows = db.session.execute(
            select(Service, ServiceRoute.provider_service_id)
            .join(ServiceRoute, ServiceRoute.service_id == Service.id)
            .where(
                ServiceRoute.provider_service_id.in_(ids[start : start + BATCH]),
                ServiceRoute.priority == 1,
            )
        )
        for service, provider_service_id in rows:
            for key in SHAPE:
                setattr(service, key, getattr(changed[provider_service_id], key))


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


def _new_category(upstream_name: str) -> Category:
    category = Category(name=upstream_name[:120], upstream_name=upstream_name)
    db.session.add(category)
    return category
