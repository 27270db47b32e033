"""The double-entry ledger: accounts, journal entries, postings, and one function per business
movement (top-ups, order charges, refunds, adjustments, clawbacks), plus `verify_ledger`.

Read `app.ledger.models` for the accounts and the sign convention, `app.ledger.services` for
how movements stay idempotent, balanced, race-free and tenant-scoped.
"""

from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.ledger.services import (
    IdempotencyConflict,
    InsufficientFunds,
    LedgerError,
    OrderCharge,
    OrderNotCharged,
    OrderRefunded,
    OrderTotals,
    adjust_customer,
    balance,
    charge_order,
    charge_wholesale,
    clawback,
    credit_topup,
    order_totals,
    platform_currency,
    refund_order,
    refund_remainder,
    restore_topup,
    topup_tenant,
    wallet_of,
    wholesale_wallet_of,
)
from app.ledger.verify import LedgerReport, verify_ledger

__all__ = [
    "IdempotencyConflict",
    "InsufficientFunds",
    "JournalEntry",
    "LedgerAccount",
    "LedgerError",
    "LedgerReport",
    "OrderCharge",
    "OrderNotCharged",
    "OrderRefunded",
    "OrderTotals",
    "Posting",
    "adjust_customer",
    "balance",
    "charge_order",
    "charge_wholesale",
    "clawback",
    "credit_topup",
    "order_totals",
    "platform_currency",
    "refund_order",
    "refund_remainder",
    "restore_topup",
    "topup_tenant",
    "verify_ledger",
    "wallet_of",
    "wholesale_wallet_of",
]
