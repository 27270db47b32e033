"""Read-only views of a customer's wallet for the storefront: its balance and its history.

Nothing here writes. A customer who has never had money has no wallet account yet; they read
as a zero balance and an empty history (`wallet_of` would create the account, a write a page
view should not make). The queries run in the caller's tenant scope and also name the
customer's account explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, func, select, type_coerce

from app.accounts.models import User
from app.extensions import db
from app.ledger.models import CUSTOMER_WALLET, JournalEntry, LedgerAccount, Posting
from app.money import from_micros
from app.panels.models import Tenant


@dataclass(frozen=True)
class WalletLine:
    """One movement on the wallet: what it was (`kind`, a journal entry kind, with the order it
    concerns or the reason staff gave), the signed amount, and the balance right after it."""

    posting_id: int
    at: datetime
    kind: str
    order_id: int | None
    memo: str
    amount: Decimal
    balance_after: Decimal


def customer_wallet(tenant: Tenant, customer: User) -> LedgerAccount | None:
    """The customer's wallet account, or None before its first movement."""
    key = LedgerAccount.natural_key(
        CUSTOMER_WALLET, tenant.currency, tenant_id=tenant.id, customer_id=customer.id
    )
    return db.session.scalar(
        select(LedgerAccount).where(
            LedgerAccount.key == key,
            LedgerAccount.tenant_id == tenant.id,
            LedgerAccount.customer_id == customer.id,
        )
    )


def customer_balance(tenant: Tenant, customer: User) -> Decimal:
    """The wallet's balance as committed or written in this transaction; zero without one."""
    wallet = customer_wallet(tenant, customer)
    if wallet is None:
        return Decimal(0)
    return db.session.scalars(
        select(LedgerAccount.balance).where(LedgerAccount.id == wallet.id)
    ).one()


def count_wallet_lines(wallet: LedgerAccount | None) -> int:
    if wallet is None:
        return 0
    return db.session.scalar(select(func.count(Posting.id)).where(Posting.account_id == wallet.id))


def wallet_history(
    wallet: LedgerAccount | None, *, offset: int = 0, limit: int = 25
) -> list[WalletLine]:
    """One page of the wallet's movements, newest first, each with the balance after it.

    The balance after the page's newest line is the current balance less every later posting
    (one SUM); each older line's is the one above it less that line's amount. Postings are
    inserted in order under the wallet's row lock, so id order is the order they happened in.
    """
    if wallet is None:
        return []
    rows = db.session.execute(
        select(Posting.id, Posting.amount, JournalEntry)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(Posting.account_id == wallet.id)
        .order_by(Posting.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    if not rows:
        return []
    # Summed in raw micro-units: SUM of a BIGINT is NUMERIC on PostgreSQL and would not go
    # through the column type.
    later = db.session.scalar(
        select(func.coalesce(func.sum(type_coerce(Posting.amount, BigInteger)), 0)).where(
            Posting.account_id == wallet.id, Posting.id > rows[0].id
        )
    )
    current = db.session.scalars(
        select(LedgerAccount.balance).where(LedgerAccount.id == wallet.id)
    ).one()
    after = current - from_micros(int(later))
    lines = []
    for posting_id, amount, entry in rows:
        lines.append(
            WalletLine(
                posting_id=posting_id,
                at=entry.created_at,
                kind=entry.kind,
                order_id=entry.order_id,
                memo=entry.memo,
                amount=amount,
                balance_after=after,
            )
        )
        after -= amount
    return lines
