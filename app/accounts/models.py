from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

OPERATOR = "operator"
STAFF = "staff"
CUSTOMER = "customer"
KINDS = (OPERATOR, STAFF, CUSTOMER)

OWNER = "owner"
ADMIN = "admin"
SUPPORT = "support"
STAFF_ROLES = (OWNER, ADMIN, SUPPORT)
ROLE_LABELS = {OWNER: _l("Owner"), ADMIN: _l("Admin"), SUPPORT: _l("Support")}


class User(UserMixin, TenantOwned, db.Model):
    """Anyone who logs in. Operators have no tenant; staff and customers belong to one."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "email"),
        # Operators have no tenant, so the constraint above does not cover them.
        Index(
            "uq_users_operator_email",
            "email",
            unique=True,
            postgresql_where=text("tenant_id IS NULL"),
            sqlite_where=text("tenant_id IS NULL"),
        ),
        CheckConstraint(
            "(kind = 'operator' AND tenant_id IS NULL)"
            " OR (kind <> 'operator' AND tenant_id IS NOT NULL)",
            name="operator_has_no_tenant",
        ),
        CheckConstraint(
            "(kind = 'staff') = (role IS NOT NULL)",
            name="staff_have_a_role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(8))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on a password change: every session carrying an older epoch is refused.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.is_enabled

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    @property
    def role_label(self) -> str:
        return str(ROLE_LABELS.get(self.role, self.role or ""))

    @property
    def is_owner(self) -> bool:
        return self.kind == STAFF and self.role == OWNER
