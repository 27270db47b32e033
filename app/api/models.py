"""API keys: what a customer's scripts (or another panel) use to call `<panel host>/api/v2`.

A key is a random token shown once, when it is made; only its SHA-256 digest is stored. The
token has 160 random bits, so a plain (unsalted, fast) digest is as good as a password hash
here and lets a request find its key with one indexed lookup. `prefix` (the token's first
characters) lets a customer tell their keys apart without the key itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

MAX_LABEL = 64
PREFIX_LENGTH = 8


class ApiKey(TenantOwned, db.Model):
    """One of a customer's API keys; `revoked_at` set means it no longer works."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_customer", "tenant_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(MAX_LABEL), default="")
    prefix: Mapped[str] = mapped_column(String(PREFIX_LENGTH))
    # hex SHA-256 of the token; unique, so a token finds at most one key.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix}…>"
