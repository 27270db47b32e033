from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import ExactDecimal, Micros
from app.types import UTCDateTime, utcnow


class WholesaleRule(db.Model):
    """How the platform prices a service for tenants, in the platform currency.

    One global rule (no category, no service) with a markup %, rules per category with a
    markup %, and rules per service with a markup % or a fixed rate per 1000. The most specific
    rule wins: service, then category, then global.
    """

    __tablename__ = "wholesale_rules"
    __table_args__ = (
        UniqueConstraint("category_id", "service_id"),
        CheckConstraint("category_id IS NULL OR service_id IS NULL", name="one_scope"),
        CheckConstraint("(markup_percent IS NULL) <> (fixed_rate IS NULL)", name="markup_or_fixed"),
        CheckConstraint("fixed_rate IS NULL OR service_id IS NOT NULL", name="fixed_per_service"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    markup_percent: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    fixed_rate: Mapped[Decimal | None] = mapped_column(Micros)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
