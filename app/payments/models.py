"""Payments: each panel's gateway settings, the top-ups paid through them, and the gateway
events received, stored once.

A top-up belongs to its tenant. With a customer it credits that customer's wallet through the
tenant's own gateways; without one it is the tenant's wholesale top-up, paid through the
platform's gateways. `GatewayAccount.tenant_id` is None for the platform's own gateways.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.crypto import EncryptedText
from app.extensions import db
from app.money.columns import Micros
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

STRIPE = "stripe"
MIDTRANS = "midtrans"
MANUAL = "manual"
GATEWAYS = (STRIPE, MIDTRANS, MANUAL)

# Top-up states: pending → paid | failed | expired; paid → refunded | disputed (clawbacks);
# disputed → paid when the dispute is won. Nothing ever goes back to pending.
PENDING = "pending"
PAID = "paid"
FAILED = "failed"
EXPIRED = "expired"
REFUNDED = "refunded"
DISPUTED = "disputed"
TOPUP_STATES = (PENDING, PAID, FAILED, EXPIRED, REFUNDED, DISPUTED)
SETTLED_STATES = (PAID, REFUNDED, DISPUTED)

PLATFORM_OWNER = "platform"


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def owner_key(tenant_id: int | None) -> str:
    """Who a gateway account or an event belongs to, as one non-null string: "t12" or
    "platform" (a unique constraint over a nullable tenant_id would let NULLs repeat)."""
    return PLATFORM_OWNER if tenant_id is None else f"t{tenant_id}"


class GatewayAccount(TenantOwned, db.Model):
    """One gateway's settings for one panel (or, with no tenant, for the platform).

    Secrets are Fernet tokens at rest (`EncryptedText`) and are shown again only masked.
    """

    __tablename__ = "gateway_accounts"
    __table_args__ = (
        UniqueConstraint("owner", "gateway", name="uq_gateway_accounts_owner_gateway"),
        CheckConstraint(f"gateway IN ({_quoted(GATEWAYS)})", name="known_gateway"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    owner: Mapped[str] = mapped_column(String(32))
    gateway: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Stripe: the secret key; Midtrans: the server key.
    secret_key: Mapped[str | None] = mapped_column(EncryptedText)
    # Stripe: the webhook endpoint's signing secret.
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText)
    # Midtrans: the client key (public by design: Snap.js carries it to the browser).
    client_key: Mapped[str | None] = mapped_column(String(200))
    production: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the SDK sends its calls instead of the gateway's own API (the simulator).
    api_base: Mapped[str | None] = mapped_column(String(300))
    # Manual transfer: what the customer reads, and an optional QRIS image (re-encoded PNG).
    instructions: Mapped[str] = mapped_column(Text, default="")
    bank_accounts: Mapped[str] = mapped_column(Text, default="")
    qris_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Amount limits per top-up, in the wallet's currency; None means the gateway default.
    min_amount: Mapped[Decimal | None] = mapped_column(Micros)
    max_amount: Mapped[Decimal | None] = mapped_column(Micros)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<GatewayAccount {self.owner} {self.gateway}>"


class Topup(TenantOwned, db.Model):
    """One payment into a wallet: a customer's (customer_id set) or the tenant's wholesale
    wallet (customer_id None). `external_id` is the gateway's reference for it (the Stripe
    Checkout Session, the Midtrans order id, `manual-<id>`), and keys its ledger credit."""

    __tablename__ = "topups"
    __table_args__ = (
        UniqueConstraint("gateway", "external_id", name="uq_topups_gateway_external_id"),
        CheckConstraint(f"state IN ({_quoted(TOPUP_STATES)})", name="known_state"),
        CheckConstraint(f"gateway IN ({_quoted(GATEWAYS)})", name="known_gateway"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_topups_wallet", "tenant_id", "customer_id", "id"),
        Index("ix_topups_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    gateway: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Micros)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    external_id: Mapped[str | None] = mapped_column(String(200))
    # Stripe's PaymentIntent or Midtrans's transaction id, once paid: refunds and disputes
    # name the payment, not the checkout.
    payment_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    payment_method: Mapped[str | None] = mapped_column(String(40))
    checkout_url: Mapped[str | None] = mapped_column(String(1000))
    refunded_amount: Mapped[Decimal] = mapped_column(Micros, default=Decimal(0))
    disputed_amount: Mapped[Decimal] = mapped_column(Micros, default=Decimal(0))
    # Manual transfer: the customer's reference and proof, and the staff's review.
    reference: Mapped[str] = mapped_column(String(200), default="")
    proof: Mapped[bytes | None] = mapped_column(LargeBinary)
    proof_type: Mapped[str | None] = mapped_column(String(40))
    claimed_amount: Mapped[Decimal | None] = mapped_column(Micros)
    reviewed_by: Mapped[str | None] = mapped_column(String(254))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_wholesale(self) -> bool:
        return self.customer_id is None

    def __repr__(self) -> str:
        return f"<Topup {self.id} {self.gateway} {self.state}>"


class GatewayEvent(TenantOwned, db.Model):
    """A webhook delivery, stored once per receiver: a replayed event finds its row and
    changes nothing. `receiver` is the host's owner ("t12" or "platform")."""

    __tablename__ = "gateway_events"
    __table_args__ = (
        UniqueConstraint("receiver", "gateway", "event_id", name="uq_gateway_events_once"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    receiver: Mapped[str] = mapped_column(String(32))
    gateway: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(80))
    topup_id: Mapped[int | None] = mapped_column(ForeignKey("topups.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(200), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<GatewayEvent {self.gateway} {self.event_id}>"
