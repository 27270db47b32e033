from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.providers.models import ProviderService
from app.types import UTCDateTime, utcnow

UNLISTED = "unlisted"
PUBLISHED = "published"
DISABLED = "disabled"
SERVICE_STATUSES = (UNLISTED, PUBLISHED, DISABLED)


class Category(db.Model):
    """A platform category. `upstream_name` is what syncs match on; `name` is what
    storefronts show, and an operator's rename is never undone by a sync."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    upstream_name: Mapped[str | None] = mapped_column(String(255), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    services: Mapped[list[Service]] = relationship(back_populates="category")


class Service(db.Model):
    """A platform service, sold (at wholesale) to every tenant, delivered by its routes."""

    __tablename__ = "services"
    __table_args__ = (Index("ix_services_category_status", "category_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(64), default="Default")
    min_quantity: Mapped[int]
    max_quantity: Mapped[int]
    step: Mapped[int] = mapped_column(default=1)
    refill: Mapped[bool] = mapped_column(Boolean, default=False)
    refill_days: Mapped[int | None]
    cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    dripfeed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Computed from completed orders (the pipeline fills it in).
    average_seconds: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default=UNLISTED)
    # Operator edits that a sync must keep.
    name_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    description_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    category: Mapped[Category] = relationship(back_populates="services")
    routes: Mapped[list[ServiceRoute]] = relationship(
        back_populates="service", order_by="ServiceRoute.priority"
    )


class ServiceRoute(db.Model):
    """An upstream service that can deliver a platform service; priority 1 is tried first,
    the others are fallbacks in order."""

    __tablename__ = "service_routes"
    __table_args__ = (
        UniqueConstraint("service_id", "priority"),
        UniqueConstraint("service_id", "provider_service_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    provider_service_id: Mapped[int] = mapped_column(
        ForeignKey("provider_services.id", ondelete="CASCADE"), index=True
    )
    priority: Mapped[int] = mapped_column(default=1)

    service: Mapped[Service] = relationship(back_populates="routes")
    provider_service: Mapped[ProviderService] = relationship()


class CatalogChange(db.Model):
    """The price and status history: one row per change a sync (or an operator) made."""

    __tablename__ = "catalog_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sync_run: Mapped[str | None] = mapped_column(String(32), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    provider_service_id: Mapped[int | None] = mapped_column(
        ForeignKey("provider_services.id", ondelete="CASCADE")
    )
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # added, repriced, updated, removed, restored
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    provider_service: Mapped[ProviderService | None] = relationship()
    service: Mapped[Service | None] = relationship()
