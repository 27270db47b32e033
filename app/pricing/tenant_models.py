"""Tenant pricing: a tenant's retail rules, catalog curation and customer discounts.

Every row here belongs to one tenant. A provider sync writes only platform rows (services,
categories, routes), so a tenant's renames and hidden services survive every sync.

A rule or an override targets exactly one category or one service. Uniqueness is two
constraints, (tenant, category) and (tenant, service): the column left NULL never conflicts
(NULLs are distinct on SQLite and PostgreSQL), so each target has at most one row per tenant.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import ExactDecimal, Micros
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

DEFAULT_MARKUP_PERCENT = Decimal(30)
DEFAULT_MIN_MARGIN_PERCENT = Decimal(0)
# Rates per 1000 are often fractions of a cent: 2dp would show many cheap USD services as 0.00.
# Whole rupiah keeps cheap IDR services (a few rupiah per 1000) above zero; a tenant may choose
# "nearest:100" once its catalog is priced high enough.
DEFAULT_ROUNDING = {"USD": "4dp", "IDR": "0dp"}
FALLBACK_ROUNDING = "none"


def default_rounding(currency: str) -> str:
    return DEFAULT_ROUNDING.get(currency, FALLBACK_ROUNDING)


def _one_target() -> CheckConstraint:
    return CheckConstraint("(category_id IS NULL) <> (service_id IS NULL)", name="one_target")


class TenantPricing(TenantOwned, db.Model):
    """A tenant's global markup over wholesale, its display rounding and its minimum margin.

    A tenant with no row prices at `DEFAULT_MARKUP_PERCENT` and its currency's default rounding.
    """

    __tablename__ = "tenant_pricing"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    markup_percent: Mapped[Decimal] = mapped_column(ExactDecimal(), default=DEFAULT_MARKUP_PERCENT)
    # A policy as `app.money.rounding.parse_rounding_policy` spells it: "2dp", "nearest:100".
    rounding: Mapped[str] = mapped_column(String(40))
    min_margin_percent: Mapped[Decimal] = mapped_column(
        ExactDecimal(), default=DEFAULT_MIN_MARGIN_PERCENT
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PriceRule(TenantOwned, db.Model):
    """A category's markup, or a service's markup or fixed rate (per 1000, tenant currency)."""

    __tablename__ = "price_rules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "category_id"),
        UniqueConstraint("tenant_id", "service_id"),
        _one_target(),
        CheckConstraint("(markup_percent IS NULL) <> (fixed_rate IS NULL)", name="markup_or_fixed"),
        CheckConstraint("fixed_rate IS NULL OR service_id IS NOT NULL", name="fixed_per_service"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    markup_percent: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    fixed_rate: Mapped[Decimal | None] = mapped_column(Micros)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CatalogOverride(TenantOwned, db.Model):
    """How a tenant shows a platform category or service: hidden, renamed, re-described."""

    __tablename__ = "catalog_overrides"
    __table_args__ = (
        UniqueConstraint("tenant_id", "category_id"),
        UniqueConstraint("tenant_id", "service_id"),
        _one_target(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CustomerGroup(TenantOwned, db.Model):
    """A named discount a tenant gives a set of customers ("Resellers", 10%)."""

    __tablename__ = "customer_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    discount_percent: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerPricing(TenantOwned, db.Model):
    """A customer's group and personal discount; the personal discount, when set, wins."""

    __tablename__ = "customer_pricing"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_groups.id", ondelete="SET NULL"), index=True
    )
    discount_percent: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


TENANT_PRICING_MODELS = (TenantPricing, PriceRule, CatalogOverride, CustomerGroup, CustomerPricing)
