"""Ledger tables: accounts with a cached balance, journal entries, and their postings.

Sign convention: a posting adds its signed amount to its account's balance, and every entry's
postings sum to zero per currency. A positive wallet or sales balance is money the ledger holds
for that party; clearing and adjustment accounts go negative as money comes in from outside.

Tenancy: all three models are tenant-owned, and a row's `tenant_id` says whose it is. A
customer wallet, a tenant's sales and wholesale wallet, and the tenant's own gateway clearing and
adjustment accounts belong to the tenant; the platform's accounts (platform sales, provider cost,
the platform's gateway clearing and adjustments) have `tenant_id` NULL, so a tenant scope never
sees them. A posting belongs to its account's tenant; an entry to the tenant it was made for
(NULL for platform-only entries). See `app.ledger.services` for how movements that touch both
sides are scoped.

Foreign keys have no ON DELETE: money history is never deleted as a side effect.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.money import Micros
from app.types import UTCDateTime, utcnow
from tenants.scoping import TenantOwned

# Account kinds.
CUSTOMER_WALLET = "customer_wallet"  # per customer, tenant currency
TENANT_SALES = "tenant_sales"  # per tenant, tenant currency
TENANT_WHOLESALE_WALLET = "tenant_wholesale_wallet"  # per tenant, platform currency
PLATFORM_SALES = "platform_sales"  # platform currency
PROVIDER_COST = "provider_cost"  # per currency
GATEWAY_CLEARING = "gateway_clearing"  # per owner (tenant or platform), gateway and currency
ADJUSTMENTS = "adjustments"  # per owner and currency: the contra side of manual adjustments
ACCOUNT_KINDS = (
    CUSTOMER_WALLET,
    TENANT_SALES,
    TENANT_WHOLESALE_WALLET,
    PLATFORM_SALES,
    PROVIDER_COST,
    GATEWAY_CLEARING,
    ADJUSTMENTS,
)
# Only these may never be overdrawn, except by a clawback; verify flags them when negative.
WALLET_KINDS = (CUSTOMER_WALLET, TENANT_WHOLESALE_WALLET)
TENANT_ONLY_KINDS = (CUSTOMER_WALLET, TENANT_SALES, TENANT_WHOLESALE_WALLET)
PLATFORM_ONLY_KINDS = (PLATFORM_SALES, PROVIDER_COST)

# Journal entry kinds.
TOPUP = "topup"
ORDER_CHARGE = "order_charge"
WHOLESALE_CHARGE = "wholesale_charge"
REFUND = "refund"
PARTIAL_REFUND = "partial_refund"
ADJUSTMENT = "adjustment"
TENANT_TOPUP = "tenant_topup"
CLAWBACK = "clawback"
ENTRY_KINDS = (
    TOPUP,
    ORDER_CHARGE,
    WHOLESALE_CHARGE,
    REFUND,
    PARTIAL_REFUND,
    ADJUSTMENT,
    TENANT_TOPUP,
    CLAWBACK,
)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class LedgerAccount(TenantOwned, db.Model):
    """One account. `key` is its natural key as text: a unique constraint over the nullable
    columns would let NULLs repeat, so the columns are folded into one non-null string."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_quoted(ACCOUNT_KINDS)})", name="known_kind"),
        CheckConstraint(
            f"kind NOT IN ({_quoted(TENANT_ONLY_KINDS)}) OR tenant_id IS NOT NULL",
            name="tenant_account_has_a_tenant",
        ),
        CheckConstraint(
            f"kind NOT IN ({_quoted(PLATFORM_ONLY_KINDS)}) OR tenant_id IS NULL",
            name="platform_account_has_no_tenant",
        ),
        CheckConstraint(
            f"(kind = '{CUSTOMER_WALLET}') = (customer_id IS NOT NULL)",
            name="customer_wallet_has_a_customer",
        ),
        CheckConstraint(
            f"(kind = '{GATEWAY_CLEARING}') = (gateway IS NOT NULL)",
            name="clearing_has_a_gateway",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    gateway: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    # The cached balance: changed only by atomic SQL in the transaction that posts to it.
    balance: Mapped[Decimal] = mapped_column(Micros, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @staticmethod
    def natural_key(
        kind: str,
        currency: str,
        *,
        tenant_id: int | None = None,
        customer_id: int | None = None,
        gateway: str | None = None,
    ) -> str:
        """ "customer_wallet:t3:c12:-:USD", "platform_sales:-:-:-:USD", …"""
        return ":".join(
            (
                kind,
                "-" if tenant_id is None else f"t{tenant_id}",
                "-" if customer_id is None else f"c{customer_id}",
                gateway or "-",
                currency,
            )
        )

    def __repr__(self) -> str:
        return f"<LedgerAccount {self.key}>"


class JournalEntry(TenantOwned, db.Model):
    """One business movement. `idempotency_key` makes it happen at most once; `terms` are the
    caller's inputs, compared when the same key comes again."""

    __tablename__ = "journal_entries"
    __table_args__ = (CheckConstraint(f"kind IN ({_quoted(ENTRY_KINDS)})", name="known_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    memo: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(254), default="system")
    # References to the order or top-up the movement is about; plain ids, no foreign key yet.
    order_id: Mapped[int | None] = mapped_column(index=True)
    topup_id: Mapped[int | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    postings: Mapped[list[Posting]] = relationship(back_populates="entry", order_by="Posting.id")

    def __repr__(self) -> str:
        return f"<JournalEntry {self.idempotency_key}>"


class Posting(TenantOwned, db.Model):
    """A signed amount on one account. `tenant_id` is the account's tenant, so a tenant sees its
    side of a wholesale charge and never the platform's."""

    __tablename__ = "postings"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Micros)
    currency: Mapped[str] = mapped_column(String(3))

    entry: Mapped[JournalEntry] = relationship(back_populates="postings")
    account: Mapped[LedgerAccount] = relationship()
