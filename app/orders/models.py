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

# What the pipeline writes to the audit log about an order, as staff and operators read it.
PIPELINE_AUDIT_LABELS = {
    "order.canceled": _l("Canceled by the provider and refunded"),
    "order.partial": _l("Partial: the remainder refunded"),
    "order.refill.requested": _l("Refill requested"),
    "order.refill.refused": _l("Refill refused by the provider"),
    "order.refill.completed": _l("Refill completed"),
    "order.refill.rejected": _l("Refill rejected by the provider"),
    "order.refill.error": _l("Refill failed"),
    "order.cancel.requested": _l("Cancel requested"),
    "order.cancel.accepted": _l("Cancel accepted by the provider"),
    "order.cancel.refused": _l("Cancel refused by the provider"),
    "order.cancel.error": _l("Cancel failed"),
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


# --- refills and cancels of orders that are upstream ------------------------------------------

REFILL = "refill"
CANCEL = "cancel"
REQUEST_KINDS = (REFILL, CANCEL)

# A request's life (app/orders/upstream_requests.py): `requested` (committed, its job enqueued
# after the commit) → `sending` (claimed by the job, `next_attempt_at` its deadline) → for a
# cancel `accepted` or `refused`; for a refill `refused`, or the upstream's refill statuses
# `pending` → `in_progress` → `completed` | `rejected` | `error`. `error`: no clear answer (the
# provider could not be reached, its reply was lost, or it reported "Error").
REQUESTED = "requested"
SENDING = "sending"
ACCEPTED = "accepted"
REFUSED = "refused"
REFILL_PENDING = "pending"
REFILL_IN_PROGRESS = "in_progress"
REFILL_COMPLETED = "completed"
REFILL_REJECTED = "rejected"
REQUEST_ERROR = "error"
REQUEST_STATES = (
    REQUESTED,
    SENDING,
    ACCEPTED,
    REFUSED,
    REFILL_PENDING,
    REFILL_IN_PROGRESS,
    REFILL_COMPLETED,
    REFILL_REJECTED,
    REQUEST_ERROR,
)
REQUEST_FINAL = (ACCEPTED, REFUSED, REFILL_COMPLETED, REFILL_REJECTED, REQUEST_ERROR)
# A refill the upstream has taken and that we poll (`refill_status`) until it is final.
REFILL_POLLED = (REFILL_PENDING, REFILL_IN_PROGRESS)

REQUEST_STATE_LABELS = {
    REQUESTED: _l("Requested"),
    SENDING: _l("Sending"),
    ACCEPTED: _l("Accepted"),
    REFUSED: _l("Refused"),
    REFILL_PENDING: _l("Pending"),
    REFILL_IN_PROGRESS: _l("In progress"),
    REFILL_COMPLETED: _l("Completed"),
    REFILL_REJECTED: _l("Rejected"),
    REQUEST_ERROR: _l("Error"),
}
REQUEST_KIND_LABELS = {REFILL: _l("Refill"), CANCEL: _l("Cancel")}


class UpstreamRequest(TenantOwned, db.Model):
    """A refill or cancel of an order that is upstream: recorded (and committed) before its job
    is enqueued, sent by that job, and followed to its own final state. `open_kind` is the kind
    while the request is open and NULL once final: with the unique constraint, an order has at
    most one open refill and one open cancel, whoever asks at once."""

    __tablename__ = "upstream_requests"
    __table_args__ = (
        UniqueConstraint("order_id", "open_kind"),
        # Upstream refills are keyed by provider and refill id, never refill id alone.
        UniqueConstraint("provider_id", "external_id"),
        CheckConstraint(f"kind IN ({_quoted(REQUEST_KINDS)})", name="known_kind"),
        CheckConstraint(f"state IN ({_quoted(REQUEST_STATES)})", name="known_state"),
        Index("ix_upstream_requests_state_next_attempt", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default=REQUESTED)
    open_kind: Mapped[str | None] = mapped_column(String(8))
    # Who asked: a customer or staff email, an operator's, or "api".
    requested_by: Mapped[str] = mapped_column(String(255))
    # The provider it went to (the order's), and the upstream's refill id once it took one.
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    # While `requested`: when the job is next due; while `sending`: the deadline after which the
    # sweeper takes the worker for dead; while a refill is polled: its next poll.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The upstream's refusal or what went wrong, as it said it (staff see it, customers do not).
    error: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_final(self) -> bool:
        return self.state in REQUEST_FINAL

    @property
    def state_label(self):
        return REQUEST_STATE_LABELS.get(self.state, self.state)

    @property
    def kind_label(self):
        return REQUEST_KIND_LABELS.get(self.kind, self.kind)

    def __repr__(self) -> str:
        return f"<UpstreamRequest {self.id} {self.kind} {self.state}>"
