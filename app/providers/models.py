from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crypto import EncryptedText
from app.extensions import db
from app.money import Micros
from app.types import UTCDateTime, utcnow


class Provider(db.Model):
    """An upstream panel Pasok buys from. Platform data: no tenant owns it."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    api_url: Mapped[str] = mapped_column(String(500))
    api_key: Mapped[str] = mapped_column(EncryptedText)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Honours `ref` on add (Pasok panels, the sandbox): an unknown outcome can be resent.
    honours_ref: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=15.0)
    last_balance: Mapped[Decimal | None] = mapped_column(Micros)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    services: Mapped[list[ProviderService]] = relationship(back_populates="provider")

    def client(self):
        """A client on this process's session for the provider (kept-alive connections)."""
        from app.providers.client import ProviderClient, shared_session

        return ProviderClient(
            self.api_url,
            self.api_key,
            timeout=self.timeout_seconds,
            honours_ref=self.honours_ref,
            session=shared_session(self.api_url),
        )


class ProviderService(db.Model):
    """A service as the upstream lists it: its id there, its cost per 1000 in its currency."""

    __tablename__ = "provider_services"
    # Upstream ids are unique per provider only.
    __table_args__ = (UniqueConstraint("provider_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    rate: Mapped[Decimal] = mapped_column(Micros)
    min_quantity: Mapped[int]
    max_quantity: Mapped[int]
    refill: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    dripfeed: Mapped[bool] = mapped_column(Boolean, default=False)
    # False once the upstream stops listing it.
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    provider: Mapped[Provider] = relationship(back_populates="services")
