"""Operators' edits to the catalog: status, names and descriptions, recorded in the history."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit.services import record_audit
from app.catalog.models import PUBLISHED, SERVICE_STATUSES, CatalogChange, Service, ServiceRoute
from app.errors import ValidationError
from app.extensions import db
from app.providers.models import ProviderService

EDITABLE = ("name", "description", "step", "refill_days", "status")


def deliverable(service: Service) -> bool:
    """Some route can take an order: its upstream lists it and its provider is enabled."""
    return any(
        r.provider_service.available and r.provider_service.provider.enabled for r in service.routes
    )


def set_statuses(ids: list[int], status: str, *, actor) -> tuple[list[int], list[int]]:
    """Set the status of the services `ids`, recording each change; a service nobody can
    deliver is not published. Returns the changed and the refused ids. The caller commits."""
    services = db.session.scalars(
        select(Service)
        .where(Service.id.in_(ids))
        .options(
            selectinload(Service.routes)
            .selectinload(ServiceRoute.provider_service)
            .joinedload(ProviderService.provider)
        )
    ).all()
    changed, refused = [], []
    for service in services:
        if service.status == status:
            continue
        if status == PUBLISHED and not deliverable(service):
            refused.append(service.id)
            continue
        record_change(service, "status", {"status": service.status}, {"status": status})
        service.status = status
        changed.append(service.id)
    if changed:
        record_audit(
            "catalog.status",
            actor=actor,
            tenant_id=None,
            target="services",
            details={"status": status, "services": changed},
        )
    return changed, refused


def record_change(service: Service, kind: str, before: dict, after: dict) -> None:
    """An operator's change in the service's history (next to the syncs' changes)."""
    db.session.add(
        CatalogChange(service_id=service.id, kind=kind, before=before, after=after, sync_run=None)
    )


def update_service(service: Service, values: dict, *, actor) -> None:
    """Apply an operator's edit (`EDITABLE` keys); an edited name or description is kept by
    later syncs. The caller commits."""
    values = {
        **values,
        "name": (values.get("name") or "").strip(),
        "description": (values.get("description") or "").strip(),
    }
    if values["status"] not in SERVICE_STATUSES:
        raise ValidationError(_l("Choose a status from the list."), "status")
    if not values["name"]:
        raise ValidationError(_l("This field is required."), "name")
    if values["step"] > service.max_quantity > 0:
        raise ValidationError(
            _l("The step cannot exceed the maximum quantity (%(max)s).", max=service.max_quantity),
            "step",
        )
    if values["status"] == PUBLISHED != service.status and not deliverable(service):
        raise ValidationError(
            _l("No available provider delivers this service: it cannot be published."), "status"
        )
    changes = {
        k: (getattr(service, k), values[k]) for k in EDITABLE if getattr(service, k) != values[k]
    }
    if not changes:
        return
    edits = {k: v for k, v in changes.items() if k != "status"}
    if edits:
        record_change(
            service,
            "edited",
            {k: history_value(before) for k, (before, _after) in edits.items()},
            {k: history_value(after) for k, (_before, after) in edits.items()},
        )
    if "status" in changes:
        before, after = changes["status"]
        record_change(service, "status", {"status": before}, {"status": after})
    service.name_edited = service.name_edited or "name" in changes
    service.description_edited = service.description_edited or "description" in changes
    for key, (_before, after) in changes.items():
        setattr(service, key, after)
    record_audit(
        "catalog.service.update",
        actor=actor,
        tenant_id=None,
        target=f"service:{service.id}",
        details={
            k: {"before": history_value(b), "after": history_value(a)}
            for k, (b, a) in changes.items()
        },
    )


def history_value(value):
    """What the history keeps of a value: long texts are cut."""
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value
