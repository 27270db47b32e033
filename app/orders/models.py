"""Orders: what a customer bought, at what price, and where it is in the pipeline.

An order row is tenant-owned. It carries its own price snapshot (the customer's rate and
charge in the tenant currency, the wholesale rate and charge in the platform currency, and the
FX rate between them) so that refunds and reports never depend on today's prices.

States (DESIGN.md, "Orders and the pipeline"): `pending` → `submitting` → `in_progress` /
`processing` → `completed` | `partial` | `canceled`; side states `on_hold` (the tenant's
wholesale wallet was short), `unknown` (a submission's outcome is ambiguous) and `failed`
(rejected upstream after every fallback, refunded in full).

What a customer sees (the API v2 `status` and the storefront) is `API_STATUS[status]`. The rule:
an order shows *Pending* exactly while the customer may still cancel it locally (`pending`,
`on_hold` — the customer never learns that the reseller's wallet is short); once the pipeline has
claimed it (`submitting`, or `unknown` while we find out what the provider did) it shows
*In progress*; `failed` shows *Canceled*, since it was refunded in full and API v2 has no
"Failed".
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import ExactDecimal, Micros
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

PENDING = "pending"
SUBMITTING = "submitting"
IN_PROGRESS = "in_progress"
PROCESSING = "processing"
COMPLETED = "completed"
PARTIAL = "partial"
CANCELED = "canceled"
ON_HOLD = "on_hold"
UNKNOWN = "unknown"
FAILED = "failed"
STATUSES = (
    PENDING,
    SUBMITTING,
    IN_PROGRESS,
    PROCESSING,
    COMPLETED,
    PARTIAL,
    CANCELED,
    ON_HOLD,
    UNKNOWN,
    FAILED,
)
# Not yet sent upstream: the customer may still cancel these for a full refund.
UNSENT = (PENDING, ON_HOLD)
FINAL = (COMPLETED, PARTIAL, CANCELED, FAILED)

# What staff and operators see for each internal status, in their language.
STATUS_LABELS = {
    PENDING: _l("Pending"),
    SUBMITTING: _l("Submitting"),
    IN_PROGRESS: _l("In progress"),
    PROCESSING: _l("Processing"),
    COMPLETED: _l("Completed"),
    PARTIAL: _l("Partial"),
    CANCELED: _l("Canceled"),
    ON_HOLD: _l("On hold"),
    UNKNOWN: _l("Unknown"),
    FAILED: _l("Failed"),
}

API_STATUS = {
    PENDING: "Pending",
    ON_HOLD: "Pending",
    SUBMITTING: "In progress",
    UNKNOWN: "In progress",
    IN_PROGRESS: "In progress",
    PROCESSING: "Processing",
    COMPLETED: "Completed",
    PARTIAL: "Partial",
    CANCELED: "Canceled",
    FAILED: "Canceled",
}

MAX_LINK = 2048
MAX_REF = 64
MAX_FORM_TOKEN = 80


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Order(TenantOwned, db.Model):
    """One customer order. `link` is the order's target: the URL, or for Subscriptions the
    username. `quantity` is what the status reports against (for a drip-feed, the total of all
    runs); `params` holds the type's other `add` parameters as the API spells them."""

    __tablename__ = "orders"
    __table_args__ = (
        # The client's own reference: the same customer sending the same `ref` gets this order.
        UniqueConstraint("tenant_id", "customer_id", "ref"),
        # The storefront form's one-time token: the same form posted twice makes one order.
        UniqueConstraint("tenant_id", "customer_id", "form_token"),
        # Upstream orders are keyed by provider and external id, never external id alone.
        UniqueConstraint("provider_id", "external_id"),
        CheckConstraint(f"status IN ({_quoted(STATUSES)})", name="known_status"),
        CheckConstraint("quantity > 0", name="positive_quantity"),
        # Scanned backwards for "newest first": no DESC needed.
        Index("ix_orders_customer_list", "tenant_id", "customer_id", "id"),
        Index("ix_orders_tenant_status", "tenant_id", "status", "id"),
        Index("ix_orders_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_orders_status_next_poll", "status", "next_poll_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    link: Mapped[str] = mapped_column(String(MAX_LINK))
    quantity: Mapped[int]
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # The price snapshot. `retail_rate` is what this customer pays per 1000 (the quote's rate,
    # after any discount), `charge` exactly what was debited; both in `currency` (the tenant's).
    retail_rate: Mapped[Decimal] = mapped_column(Micros)
    charge: Mapped[Decimal] = mapped_column(Micros)
    currency: Mapped[str] = mapped_column(String(3))
    discount_percent: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(0))
    # The tenant's cost, in `platform_currency`: charged at once, or on resume if on hold.
    wholesale_rate: Mapped[Decimal] = mapped_column(Micros)
    wholesale_charge: Mapped[Decimal] = mapped_column(Micros)
    platform_currency: Mapped[str] = mapped_column(String(3))
    fx_rate: Mapped[Decimal] = mapped_column(ExactDecimal())  # 1 platform = fx_rate tenant

    ref: Mapped[str | None] = mapped_column(String(MAX_REF))
    form_token: Mapped[str | None] = mapped_column(String(MAX_FORM_TOKEN))

    start_count: Mapped[int | None]
    remains: Mapped[int | None]

    # The upstream side, filled in by the pipeline.
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    provider_service_id: Mapped[int | None] = mapped_column(ForeignKey("provider_services.id"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    # When a `pending` or `unknown` order is next due; while `submitting`, the deadline after
    # which the sweeper takes the worker for dead.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The forwarding bookkeeping (app/orders/forwarding.py). `submitted_at`: when the current
    # submission was claimed. `ref_sent`: it carried Pasok's order id as `ref` to a provider
    # that honours it, which alone makes an ambiguous outcome safe to resend.
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ref_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tries on the current route without a definite answer; reset on moving to the next route.
    route_tries: Mapped[int] = mapped_column(default=0)
    # Routes given up on (provider service ids): they rejected the service or never answered.
    skipped_routes: Mapped[list[int] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # An `unknown` order that must not be resent waits for an operator: since when, and the
    # evidence (time, link, quantity, provider, what was seen).
    review_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The status sync (app/orders/status_sync.py): when an order that is upstream is next asked
    # about (None: at once), and when it reached its final status there.
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def api_status(self) -> str:
        return API_STATUS[self.status]

    @property
    def is_unsent(self) -> bool:
        return self.status in UNSENT

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.status}>"
