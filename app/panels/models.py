from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

ACTIVE = "active"
SUSPENDED = "suspended"


class Tenant(db.Model):
    """A reseller's panel. The tenant row itself is platform data, not tenant-owned."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    theme: Mapped[str] = mapped_column(String(40), default="base")
    theme_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    default_locale: Mapped[str] = mapped_column(String(8), default="en")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    domains: Mapped[list[Domain]] = relationship(back_populates="tenant")

    @property
    def is_suspended(self) -> bool:
        return self.status == SUSPENDED


class Domain(TenantOwned, db.Model):
    """A custom hostname that routes to a tenant once verified."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tenant: Mapped[Tenant] = relationship(back_populates="domains")
