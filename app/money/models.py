from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money.columns import ExactDecimal
from app.types import UTCDateTime, utcnow


class FxRate(db.Model):
    """1 `base` = `rate` `quote`, kept by operators. Platform data, not tenant-owned."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("base", "quote"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(254))
