"""`verify_ledger`: recompute every balance from the postings and check every entry.

Drift (a cached balance that its postings do not explain), an entry that does not sum to zero
in a currency, or a posting that disagrees with its account about the currency or the tenant
make the ledger wrong, as does a top-up whose wallet movements do not add up to what its state
says it is worth (credited once, less what was clawed back). A wallet below zero is not wrong
in itself — a clawback may put it there — so it is reported apart, as flagged, for staff.

All sums are taken in SQL on raw micro-units, so the check scales with the database, not with
the memory of the process running it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, case, func, select, type_coerce

from app.extensions import db
from app.ledger.models import WALLET_KINDS, JournalEntry, LedgerAccount, Posting
from app.money import from_micros
from app.money.amounts import places_of
from app.money.currency import CURRENCIES
from tenants.context import current_scope
from tenants.scoping import TenantScopeError


@dataclass(frozen=True)
class Drift:
    account: str
    currency: str
    cached: Decimal
    computed: Decimal


@dataclass(frozen=True)
class Imbalance:
    entry_id: int
    key: str
    currency: str
    total: Decimal


@dataclass(frozen=True)
class Mismatch:
    posting_id: int
    account: str
    problem: str


@dataclass(frozen=True)
class TopupMismatch:
    topup_id: int
    state: str
    currency: str
    expected: Decimal
    credited: Decimal


@dataclass(frozen=True)
class Flagged:
    account: str
    currency: str
    balance: Decimal


@dataclass
class LedgerReport:
    accounts: int = 0
    entries: int = 0
    postings: int = 0
    drift: list[Drift] = field(default_factory=list)
    unbalanced: list[Imbalance] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    topups: list[TopupMismatch] = field(default_factory=list)
    flagged: list[Flagged] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No drift, no unbalanced entry, no mismatched posting or top-up (flagged wallets
        are allowed)."""
        return not (self.drift or self.unbalanced or self.mismatched or self.topups)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "accounts": self.accounts,
            "entries": self.entries,
            "postings": self.postings,
            "drift": [
                {
                    "account": d.account,
                    "currency": d.currency,
                    "cached": show(d.cached, d.currency),
                    "computed": show(d.computed, d.currency),
                }
                for d in self.drift
            ],
            "unbalanced": [
                {
                    "entry_id": u.entry_id,
                    "key": u.key,
                    "currency": u.currency,
                    "total": show(u.total, u.currency),
                }
                for u in self.unbalanced
            ],
            "mismatched": [
                {"posting_id": m.posting_id, "account": m.account, "problem": m.problem}
                for m in self.mismatched
            ],
            "topups": [
                {
                    "topup_id": t.topup_id,
                    "state": t.state,
                    "expected": show(t.expected, t.currency),
                    "credited": show(t.credited, t.currency),
                    "currency": t.currency,
                }
                for t in self.topups
            ],
            "flagged": [
                {
                    "account": f.account,
                    "currency": f.currency,
                    "balance": show(f.balance, f.currency),
                }
                for f in self.flagged
            ],
        }


def show(amount: Decimal, currency: str) -> str:
    """The amount at its currency's precision, or in full when tampering left more digits."""
    cur = CURRENCIES.get(currency)
    if cur is None or places_of(amount) > cur.ledger_places:
        return f"{amount.normalize():f}"
    return f"{amount.quantize(cur.ledger_unit):f}"


def _decimal(micros) -> Decimal:
    # SUM of a BIGINT comes back as NUMERIC (a Decimal) on PostgreSQL, an int on SQLite.
    return from_micros(int(micros))


def verify_ledger() -> LedgerReport:
    """Check the whole ledger, across every tenant; the caller must say it works across
    tenants (the CLI, the operator console)."""
    scope = current_scope()
    if scope is None or not scope.across_tenants:
        raise TenantScopeError("verify_ledger reads every tenant's ledger: run it across tenants")
    report = LedgerReport(
        accounts=db.session.scalar(select(func.count(LedgerAccount.id))),
        entries=db.session.scalar(select(func.count(JournalEntry.id))),
        postings=db.session.scalar(select(func.count(Posting.id))),
    )
    micros = type_coerce(Posting.amount, BigInteger)
    balance = type_coerce(LedgerAccount.balance, BigInteger)

    sums = (
        select(Posting.account_id.label("account_id"), func.sum(micros).label("total"))
        .group_by(Posting.account_id)
        .subquery()
    )
    computed = func.coalesce(sums.c.total, 0)
    for key, currency, cached, total in db.session.execute(
        select(LedgerAccount.key, LedgerAccount.currency, balance, computed)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(computed != balance)
        .order_by(LedgerAccount.id)
    ):
        report.drift.append(Drift(key, currency, _decimal(cached), _decimal(total)))

    for entry_id, key, currency, total in db.session.execute(
        select(JournalEntry.id, JournalEntry.idempotency_key, Posting.currency, func.sum(micros))
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .group_by(JournalEntry.id, JournalEntry.idempotency_key, Posting.currency)
        .having(func.sum(micros) != 0)
        .order_by(JournalEntry.id)
    ):
        report.unbalanced.append(Imbalance(entry_id, key, currency, _decimal(total)))

    for posting_id, key, posting_currency, account_currency, same_tenant in db.session.execute(
        select(
            Posting.id,
            LedgerAccount.key,
            Posting.currency,
            LedgerAccount.currency,
            Posting.tenant_id.is_not_distinct_from(LedgerAccount.tenant_id),
        )
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(
            (Posting.currency != LedgerAccount.currency)
            | Posting.tenant_id.is_distinct_from(LedgerAccount.tenant_id)
        )
        .order_by(Posting.id)
    ):
        problems = []
        if posting_currency != account_currency:
            problems.append(f"posted in {posting_currency} to a {account_currency} account")
        if not same_tenant:
            problems.append("its tenant is not the account's")
        report.mismatched.append(Mismatch(posting_id, key, "; ".join(problems)))

    report.topups.extend(_topups_not_matching_their_movements())

    for key, currency, cached in db.session.execute(
        select(LedgerAccount.key, LedgerAccount.currency, balance)
        .where(LedgerAccount.kind.in_(WALLET_KINDS), balance < 0)
        .order_by(LedgerAccount.id)
    ):
        report.flagged.append(Flagged(key, currency, _decimal(cached)))
    return report


def _topups_not_matching_their_movements() -> list[TopupMismatch]:
    """Each top-up against the sum of its entries' wallet postings: a settled one is worth its
    amount less what was clawed back (refunds, disputes), any other nothing."""
    from app.payments.models import SETTLED_STATES, Topup

    micros = type_coerce(Posting.amount, BigInteger)
    moved = (
        select(JournalEntry.topup_id.label("topup_id"), func.sum(micros).label("total"))
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(JournalEntry.topup_id.is_not(None), LedgerAccount.kind.in_(WALLET_KINDS))
        .group_by(JournalEntry.topup_id)
        .subquery()
    )
    amount, refunded, disputed = (
        type_coerce(column, BigInteger)
        for column in (Topup.amount, Topup.refunded_amount, Topup.disputed_amount)
    )
    settled = Topup.state.in_(SETTLED_STATES)
    expected = case((settled, amount - refunded - disputed), else_=0)
    credited = func.coalesce(moved.c.total, 0)
    return [
        TopupMismatch(topup_id, state, currency, _decimal(want), _decimal(got))
        for topup_id, state, currency, want, got in db.session.execute(
            select(Topup.id, Topup.state, Topup.currency, expected, credited)
            .outerjoin(moved, moved.c.topup_id == Topup.id)
            .where(expected != credited)
            .order_by(Topup.id)
        )
    ]
