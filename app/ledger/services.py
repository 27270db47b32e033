"""Ledger movements: one function per business movement, each idempotent by its key.

Every movement
- runs in the caller's transaction and never commits; on an error it leaves nothing behind, so
  the caller may still commit its other work;
- happens at most once per idempotency key: the same key again returns the first entry and
  moves nothing, and the same key with different terms raises `IdempotencyConflict`;
- posts an entry whose postings sum to zero per currency, and updates the cached balances in
  the same transaction with atomic SQL. A wallet debit is conditional
  (`balance = balance - x WHERE balance >= x`), so two concurrent orders can never overspend
  one wallet; only `clawback` may take a wallet below zero.

Writing. An entry is written by a chain of gated steps (`_post_chain`): claim the key
(`INSERT … ON CONFLICT DO NOTHING`), debit the guarded wallet if it can pay, move the other
balances and write the postings. On PostgreSQL the chain, even the two entries of an order's
charge, is one statement of data-modifying CTEs: one round trip, after which the locks it took
are held only until the caller commits. SQLite has no such CTEs and runs the same steps one by
one.

Scoping. A movement is done for one tenant, and the caller must be in that tenant's scope or
across tenants; otherwise `TenantScopeError`, before anything is read. The movement itself then
works across tenants, on the accounts it derived from that tenant and no others: a wholesale
charge moves money from the tenant's wallet to the platform's sales, a row a tenant scope cannot
see (a scoped UPDATE of it would silently match nothing). Pending writes of the caller are
flushed first, so they are still checked against the caller's scope.

Locking. A movement's updates lock its accounts' rows in one global order (`LOCK_RANK`), so
movements cannot deadlock each other (SQLite serialises writers anyway). The tenant's sales and
wholesale wallet, and the platform's sales, are rows every order updates: `charge_order` is
best the last statement before the commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Insert,
    Select,
    Update,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from app.accounts.models import CUSTOMER, User
from app.audit.services import record_audit
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db
from app.ledger.models import (
    ADJUSTMENT,
    ADJUSTMENTS,
    CLAWBACK,
    CUSTOMER_WALLET,
    GATEWAY_CLEARING,
    ORDER_CHARGE,
    PARTIAL_REFUND,
    PLATFORM_SALES,
    PROVIDER_COST,
    REFUND,
    TENANT_SALES,
    TENANT_TOPUP,
    TENANT_WHOLESALE_WALLET,
    TOPUP,
    WHOLESALE_CHARGE,
    JournalEntry,
    LedgerAccount,
    Posting,
)
from app.money import Micros, format_amount, from_micros, pro_rata_refund
from app.money.amounts import places_of, require_decimal
from app.money.currency import Currency
from app.money.currency import currency as lookup_currency
from app.panels.models import Tenant
from app.types import utcnow
from tenants.context import across_tenants, current_scope
from tenants.scoping import TenantScopeError

GATEWAY_NAME = re.compile(r"[a-z0-9_-]{1,32}")
MAX_EXTERNAL_ID = 200
MAX_REASON = 500


class LedgerError(PasokError):
    """A movement the ledger refuses."""


class InsufficientFunds(LedgerError):
    """The wallet cannot pay. The message is the one SMM API clients expect."""

    def __init__(self, account: LedgerAccount, needed: Decimal):
        super().__init__(_l("Not enough funds on balance"))
        self.account_key = account.key
        self.needed = needed
        self.currency = account.currency


class IdempotencyConflict(LedgerError):
    """A key came again with other terms: a bug or a replay of something else, never a retry."""

    def __init__(self, key: str, stored: dict[str, Any], requested: dict[str, Any]):
        differing = sorted(
            k for k in stored.keys() | requested.keys() if stored.get(k) != requested.get(k)
        )
        # Only the names of the differing terms: the stored entry may be another tenant's.
        super().__init__(
            _l(
                "Idempotency key '%(key)s' was already used for a different movement "
                "(%(fields)s differ)",
                key=key,
                fields=", ".join(differing),
            )
        )
        self.key = key
        self.stored = stored
        self.requested = requested


class OrderNotCharged(LedgerError):
    def __init__(self, order_id: int):
        super().__init__(_l("Order %(order)s has no charge in the ledger", order=order_id))
        self.order_id = order_id


class OrderRefunded(LedgerError):
    def __init__(self, order_id: int):
        super().__init__(
            _l("Order %(order)s has been refunded; its wholesale is not charged", order=order_id)
        )
        self.order_id = order_id


@dataclass(frozen=True)
class OrderCharge:
    """What `charge_order` did: the retail entry, and the wholesale entry unless the tenant's
    wallet was short (then the order waits on hold until `charge_wholesale`). Ids, so that a
    caller who needs only the outcome reads nothing back."""

    entry_id: int
    wholesale_entry_id: int | None

    @property
    def wholesale_pending(self) -> bool:
        return self.wholesale_entry_id is None

    @property
    def entry(self) -> JournalEntry:
        return db.session.get(JournalEntry, self.entry_id)

    @property
    def wholesale_entry(self) -> JournalEntry | None:
        if self.wholesale_entry_id is None:
            return None
        return db.session.get(JournalEntry, self.wholesale_entry_id)


@dataclass(frozen=True)
class OrderTotals:
    """What the ledger charged and refunded for one order, per part."""

    retail_currency: str
    retail_charged: Decimal
    retail_refunded: Decimal
    wholesale_currency: str
    wholesale_charged: Decimal
    wholesale_refunded: Decimal


@dataclass(frozen=True)
class _Leg:
    account: LedgerAccount
    amount: Decimal  # signed: added to the account's balance


# --- scope, accounts and amounts -----------------------------------------------------------


@contextmanager
def _working_for(tenant_id: int | None) -> Iterator[None]:
    """Check that the caller may act for `tenant_id` (None: the platform), then work across
    tenants on the accounts the movement derives from it."""
    scope = current_scope()
    if scope is None:
        raise TenantScopeError("ledger access with no tenant in scope")
    if not scope.across_tenants and scope.tenant_id != tenant_id:
        raise TenantScopeError(
            f"ledger access for tenant {tenant_id} in the scope of tenant {scope.tenant_id}"
        )
    db.session.flush()
    with across_tenants():
        yield


def platform_currency() -> str:
    return lookup_currency(current_app.config["PASOK_PLATFORM_CURRENCY"]).code


def _insert_ignoring_conflict(model):
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"the ledger runs on PostgreSQL or SQLite, not {dialect}")


def _spec(
    kind: str,
    currency: str,
    *,
    tenant_id: int | None = None,
    customer_id: int | None = None,
    gateway: str | None = None,
) -> dict[str, Any]:
    """What identifies an account: the columns of its natural key."""
    return {
        "kind": kind,
        "currency": currency,
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "gateway": gateway,
    }


def _accounts(*specs: dict[str, Any]) -> list[LedgerAccount]:
    """The accounts, in the order asked, created on first use; one SELECT when all exist. Two
    transactions creating one at once both get the one row: the loser's INSERT … ON CONFLICT
    DO NOTHING waits for the winner, then selects."""
    keys = [LedgerAccount.natural_key(**spec) for spec in specs]
    found = _accounts_by_key(keys)
    missing = [(key, spec) for key, spec in zip(keys, specs, strict=True) if key not in found]
    if missing:
        for key, spec in missing:
            db.session.execute(
                _insert_ignoring_conflict(LedgerAccount)
                .values(key=key, **spec)
                .on_conflict_do_nothing(index_elements=["key"])
            )
        found.update(_accounts_by_key([key for key, _ in missing]))
    return [found[key] for key in keys]


def _accounts_by_key(keys: list[str]) -> dict[str, LedgerAccount]:
    rows = db.session.scalars(select(LedgerAccount).where(LedgerAccount.key.in_(keys)))
    return {account.key: account for account in rows}


def _account(kind: str, currency: str, **owner: Any) -> LedgerAccount:
    return _accounts(_spec(kind, currency, **owner))[0]


def _tenant(tenant_id: int) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(_l("No tenant %(id)s", id=tenant_id))
    return tenant


def _require_customer(customer: User) -> None:
    if customer.kind != CUSTOMER or customer.tenant_id is None:
        raise ValueError(f"user {customer.id} is not a customer; only customers have wallets")


def _customer_wallet(customer_id: int, tenant: Tenant) -> LedgerAccount:
    return _account(CUSTOMER_WALLET, tenant.currency, tenant_id=tenant.id, customer_id=customer_id)


def _wholesale_wallet(tenant_id: int) -> LedgerAccount:
    return _account(TENANT_WHOLESALE_WALLET, platform_currency(), tenant_id=tenant_id)


def _wallet_and_owner(owner: User | Tenant) -> tuple[LedgerAccount, int]:
    """A customer's wallet or a tenant's wholesale wallet, and the tenant it belongs to."""
    if isinstance(owner, Tenant):
        return _wholesale_wallet(owner.id), owner.id
    _require_customer(owner)
    return _customer_wallet(owner.id, _tenant(owner.tenant_id)), owner.tenant_id


def _clearing_for(wallet: LedgerAccount, gateway: str) -> LedgerAccount:
    """Customers pay through their tenant's own gateway keys; tenants pay the platform through
    the platform's keys. So a customer wallet's clearing account is the tenant's, and a
    wholesale wallet's is the platform's."""
    owner = wallet.tenant_id if wallet.kind == CUSTOMER_WALLET else None
    return _account(GATEWAY_CLEARING, wallet.currency, tenant_id=owner, gateway=gateway)


def _amount(value: Decimal, currency: str | Currency, *, what: str = "amount") -> Decimal:
    """`value` checked against the currency's ledger precision; never rounded here."""
    cur = lookup_currency(currency)
    require_decimal(value, what)
    if places_of(value) > cur.ledger_places:
        raise ValueError(
            f"{what} {value} has more than the {cur.ledger_places} places {cur.code} keeps"
        )
    return value


def _positive(value: Decimal, currency: str | Currency) -> Decimal:
    if _amount(value, currency) <= 0:
        raise ValidationError(_l("The amount must be more than zero"), "amount")
    return value


def _not_negative(value: Decimal, currency: str | Currency, what: str) -> Decimal:
    if _amount(value, currency, what=what) < 0:
        raise ValueError(f"{what} cannot be negative, got {value}")
    return value


def _shown(amount: Decimal, currency: str) -> str:
    return format_amount(amount, currency)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_l("A reason is required"), "reason")
    if len(reason) > MAX_REASON:
        raise ValidationError(_l("A reason is at most %(n)s characters", n=MAX_REASON), "reason")
    return reason


def _gateway(gateway: str) -> str:
    name = (gateway or "").strip().lower()
    if not GATEWAY_NAME.fullmatch(name):
        raise ValidationError(_l("Unknown gateway '%(name)s'", name=gateway[:40]), "gateway")
    return name


def _external_id(external_id: str) -> str:
    value = (external_id or "").strip()
    if not value or len(value) > MAX_EXTERNAL_ID:
        raise ValidationError(_l("A payment reference is 1-200 characters"), "external_id")
    return value


def _actor_label(actor: User | str) -> str:
    return actor.email if isinstance(actor, User) else actor


# --- posting ---------------------------------------------------------------------------------


# Row locks are taken in this order of account kinds (then ids), by every movement, so no two
# movements can deadlock. Customer wallets come first, so that a short wallet fails an order
# before it has locked anything every order needs.
LOCK_RANK = {
    CUSTOMER_WALLET: 0,
    TENANT_SALES: 1,
    TENANT_WHOLESALE_WALLET: 2,
    PLATFORM_SALES: 3,
    ADJUSTMENTS: 4,
    GATEWAY_CLEARING: 5,
    PROVIDER_COST: 6,
}

# What became of one entry of a chain.
MADE = "made"  # its key claimed, the money moved, its postings written
SHORT = "short"  # the guarded wallet could not pay: nothing of the entry is left
TAKEN = "taken"  # its key was already used: nothing moved
SKIPPED = "skipped"  # an entry before it in the chain was not made

_ENTRIES = JournalEntry.__table__
_ACCOUNTS = LedgerAccount.__table__
_POSTINGS = Posting.__table__


@dataclass(frozen=True)
class _Entry:
    """A journal entry to make. Its legs are in lock order; with `guarded`, the first is the
    wallet debit that must not overdraw (it also runs for a zero amount: a negative wallet
    cannot pay even nothing)."""

    kind: str
    key: str
    tenant_id: int | None
    terms: dict[str, Any]
    legs: tuple[_Leg, ...]
    guarded: bool
    memo: str
    actor: str
    order_id: int | None
    topup_id: int | None

    @property
    def debit(self) -> Decimal:
        return -self.legs[0].amount


def _entry(
    kind: str,
    key: str,
    *,
    tenant_id: int | None,
    terms: dict[str, Any],
    legs: Sequence[_Leg],
    guarded: LedgerAccount | None = None,
    memo: str = "",
    actor: User | str = "system",
    order_id: int | None = None,
    topup_id: int | None = None,
) -> _Entry:
    totals: dict[str, Decimal] = {}
    for leg in legs:
        totals[leg.account.currency] = totals.get(leg.account.currency, Decimal(0)) + leg.amount
    if any(totals.values()):
        raise RuntimeError(f"entry {key} does not balance: {totals}")
    ordered = tuple(sorted(legs, key=lambda leg: (LOCK_RANK[leg.account.kind], leg.account.id)))
    if len({leg.account.id for leg in ordered}) != len(ordered):
        raise RuntimeError(f"entry {key} has two legs on one account")
    if guarded is not None and ordered[0].account.id != guarded.id:
        raise RuntimeError(f"entry {key}: its guarded wallet must be the first account it locks")
    return _Entry(
        kind,
        key,
        tenant_id,
        terms,
        ordered,
        guarded is not None,
        memo,
        _actor_label(actor),
        order_id,
        topup_id,
    )


@dataclass(frozen=True)
class _Outcome:
    outcome: str
    entry_id: int | None = None  # the entry made (MADE only)


def _find(key: str) -> JournalEntry | None:
    return db.session.scalar(select(JournalEntry).where(JournalEntry.idempotency_key == key))


def _existing(key: str, terms: dict[str, Any]) -> JournalEntry | None:
    """The entry already made with `key`, if any, after checking it was made on these terms."""
    entry = _find(key)
    if entry is not None and entry.terms != terms:
        raise IdempotencyConflict(key, entry.terms, terms)
    return entry


def _post(entry: _Entry) -> tuple[JournalEntry, bool]:
    """Make `entry` once: the entry, and whether this call made it. `InsufficientFunds` if its
    guarded wallet cannot pay (nothing is written)."""
    (outcome,) = _post_chain([entry])
    if outcome.outcome == MADE:
        return db.session.get(JournalEntry, outcome.entry_id), True
    if outcome.outcome == TAKEN:
        return _existing(entry.key, entry.terms), False
    raise InsufficientFunds(entry.legs[0].account, entry.debit)


def _post_chain(entries: Sequence[_Entry]) -> list[_Outcome]:
    """Make `entries` in order, each only if the one before it was made: what became of each.

    Each entry's steps are gated on the step before: claim its key, debit its guarded wallet if
    the wallet can pay, move the other balances, write the postings. An entry whose key was
    taken moves nothing (a retry); one whose wallet was short has its claimed row deleted again.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        outcomes = _run_as_one_statement(entries)
    else:
        outcomes = _run_step_by_step(entries)
    claimed_but_short = [o.entry_id for o in outcomes if o.outcome == SHORT]
    if claimed_but_short:
        db.session.execute(
            delete(JournalEntry)
            .where(JournalEntry.id.in_(claimed_but_short))
            .execution_options(synchronize_session=False)
        )
    for entry, outcome in zip(entries, outcomes, strict=True):
        if outcome.outcome == MADE:
            for leg in entry.legs:
                if leg.account in db.session:
                    db.session.expire(leg.account, ["balance"])
    return [_Outcome(o.outcome, o.entry_id if o.outcome == MADE else None) for o in outcomes]


@dataclass(frozen=True)
class _Shape:
    """What an entry's statements depend on, beyond their parameters."""

    guarded: bool
    moved: tuple[int, ...]  # the legs whose balance moves after the guarded debit
    posted: tuple[int, ...]  # the legs with a posting (non-zero)


def _shape(entry: _Entry) -> _Shape:
    first = 1 if entry.guarded else 0
    nonzero = tuple(i for i, leg in enumerate(entry.legs) if leg.amount)
    return _Shape(entry.guarded, tuple(i for i in nonzero if i >= first), nonzero)


def _run_as_one_statement(entries: Sequence[_Entry]) -> list[_Outcome]:
    """PostgreSQL: the whole chain in one statement, read back in one row."""
    shapes = tuple(_shape(entry) for entry in entries)
    params: dict[str, Any] = {}
    for n, entry in enumerate(entries):
        params.update(_params(n, entry))
    row = db.session.execute(_chain_statement(shapes), params).one()._mapping
    outcomes: list[_Outcome] = []
    for n, shape in enumerate(shapes):
        if outcomes and outcomes[-1].outcome != MADE:
            outcomes.append(_Outcome(SKIPPED))
        elif row[f"entry_{n}"] is None:
            outcomes.append(_Outcome(TAKEN))
        elif shape.guarded and not row[f"debit_{n}"]:
            outcomes.append(_Outcome(SHORT, row[f"entry_{n}"]))
        else:
            _check_written(entries[n], row[f"written_{n}"])
            outcomes.append(_Outcome(MADE, row[f"entry_{n}"]))
    return outcomes


@lru_cache(maxsize=64)
def _chain_statement(shapes: tuple[_Shape, ...]) -> Select:
    """The chain's CTEs, built once per shape: building the statement costs more than running
    it. The final SELECT reads every CTE in chain order, which runs them in that order (each
    waits for the one it is gated on), so rows are locked in the entries' lock order."""
    gate: ColumnElement[bool] = true()
    columns = []
    for n, shape in enumerate(shapes):
        claim = _claim(n, gate).cte(f"claim_{n}")
        entry_id = select(claim.c.id).scalar_subquery()
        columns.append(entry_id.label(f"entry_{n}"))
        gate = exists(select(claim.c.id))
        if shape.guarded:
            debit = _debit(n, gate).cte(f"debit_{n}")
            columns.append(_count(debit).label(f"debit_{n}"))
            gate = exists(select(debit.c.id))
        written = [_move(n, i, gate).cte(f"move_{n}_{i}") for i in shape.moved]
        written += [_posting(n, i, entry_id, gate).cte(f"posting_{n}_{i}") for i in shape.posted]
        columns.append(sum((_count(cte) for cte in written), literal(0)).label(f"written_{n}"))
    return select(*columns)


def _count(cte) -> ColumnElement[int]:
    return select(func.count()).select_from(cte).scalar_subquery()


def _run_step_by_step(entries: Sequence[_Entry]) -> list[_Outcome]:
    """SQLite: the same steps, one statement each."""
    outcomes: list[_Outcome] = []
    for n, entry in enumerate(entries):
        if outcomes and outcomes[-1].outcome != MADE:
            outcomes.append(_Outcome(SKIPPED))
            continue
        shape, params = _shape(entry), _params(n, entry)
        entry_id = db.session.execute(_claim(n, true()), params).scalar()
        if entry_id is None:
            outcomes.append(_Outcome(TAKEN))
            continue
        if shape.guarded and db.session.execute(_debit(n, true()), params).first() is None:
            outcomes.append(_Outcome(SHORT, entry_id))
            continue
        steps = [_move(n, i, true()) for i in shape.moved]
        steps += [_posting(n, i, literal(entry_id), true()) for i in shape.posted]
        _check_written(entry, sum(len(db.session.execute(s, params).all()) for s in steps))
        outcomes.append(_Outcome(MADE, entry_id))
    return outcomes


def _check_written(entry: _Entry, written: int) -> None:
    """Every balance moved and every posting written: a missing account row would otherwise
    make an entry that does not balance, silently."""
    shape = _shape(entry)
    if written != len(shape.moved) + len(shape.posted):
        raise RuntimeError(f"entry {entry.key} wrote {written} of its rows")


# The statements take their values as parameters named by entry (n) and leg (i).
_CLAIMED_COLUMNS = ("kind", "idempotency_key", "tenant_id", "terms", "memo", "actor")
_CLAIMED_COLUMNS += ("order_id", "topup_id", "created_at")


def _params(n: int, entry: _Entry) -> dict[str, Any]:
    params = {
        f"e{n}_kind": entry.kind,
        f"e{n}_idempotency_key": entry.key,
        f"e{n}_tenant_id": entry.tenant_id,
        f"e{n}_terms": entry.terms,
        f"e{n}_memo": entry.memo,
        f"e{n}_actor": entry.actor,
        f"e{n}_order_id": entry.order_id,
        f"e{n}_topup_id": entry.topup_id,
        f"e{n}_created_at": utcnow(),
    }
    for i, leg in enumerate(entry.legs):
        params[f"e{n}_{i}_account"] = leg.account.id
        params[f"e{n}_{i}_tenant"] = leg.account.tenant_id
        params[f"e{n}_{i}_amount"] = leg.amount
        params[f"e{n}_{i}_currency"] = leg.account.currency
    return params


def _claim(n: int, gate: ColumnElement[bool]) -> Insert:
    """The entry's row, if `gate` holds and its key is free (a concurrent claim of the same key
    waits here for the first transaction to end)."""
    c = _ENTRIES.c
    columns = [c[name] for name in _CLAIMED_COLUMNS]
    row = select(*(bindparam(f"e{n}_{col.name}", type_=col.type) for col in columns))
    return (
        _insert_ignoring_conflict(_ENTRIES)
        .from_select(columns, row.where(gate))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(c.id)
    )


def _debit(n: int, gate: ColumnElement[bool]) -> Update:
    """The guarded wallet debit (leg 0, a negative amount): no row when the wallet cannot pay."""
    balance_, amount = _ACCOUNTS.c.balance, bindparam(f"e{n}_0_amount", type_=Micros())
    return (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == bindparam(f"e{n}_0_account"), balance_ + amount >= 0, gate)
        .values(balance=balance_ + amount)
        .returning(_ACCOUNTS.c.id)
    )


def _move(n: int, i: int, gate: ColumnElement[bool]) -> Update:
    balance_ = _ACCOUNTS.c.balance
    return (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == bindparam(f"e{n}_{i}_account"), gate)
        .values(balance=balance_ + bindparam(f"e{n}_{i}_amount", type_=Micros()))
        .returning(_ACCOUNTS.c.id)
    )


def _posting(n: int, i: int, entry_id: ColumnElement[int], gate: ColumnElement[bool]) -> Insert:
    c = _POSTINGS.c
    values = {
        c.account_id: bindparam(f"e{n}_{i}_account", type_=c.account_id.type),
        c.tenant_id: bindparam(f"e{n}_{i}_tenant", type_=c.tenant_id.type),
        c.amount: bindparam(f"e{n}_{i}_amount", type_=c.amount.type),
        c.currency: bindparam(f"e{n}_{i}_currency", type_=c.currency.type),
    }
    return (
        _POSTINGS.insert()
        .from_select([c.entry_id, *values], select(entry_id, *values.values()).where(gate))
        .returning(c.id)
    )


# --- reading ---------------------------------------------------------------------------------


def wallet_of(customer: User) -> LedgerAccount:
    """The customer's wallet (in the tenant's currency), created on first use."""
    _require_customer(customer)
    with _working_for(customer.tenant_id):
        return _customer_wallet(customer.id, _tenant(customer.tenant_id))


def wholesale_wallet_of(tenant: Tenant) -> LedgerAccount:
    """The tenant's wholesale wallet (in the platform currency), created on first use."""
    with _working_for(tenant.id):
        return _wholesale_wallet(tenant.id)


def balance(account: LedgerAccount) -> Decimal:
    """The account's cached balance as committed or written in this transaction (never a
    stale copy from the session)."""
    with _working_for(account.tenant_id):
        return db.session.scalars(
            select(LedgerAccount.balance).where(LedgerAccount.id == account.id)
        ).one()


def order_totals(order_id: int) -> OrderTotals:
    """What was charged and refunded for `order_id` (in the caller's scope)."""
    charge = _find(f"order-{order_id}")
    if charge is None:
        raise OrderNotCharged(order_id)
    with _working_for(charge.tenant_id):
        return _order_totals(charge)


def _order_totals(charge: JournalEntry) -> OrderTotals:
    # Sums per entry kind and account kind, in raw micro-units: SUM of a BIGINT is NUMERIC on
    # PostgreSQL and would not go through the column type.
    micros = type_coerce(Posting.amount, BigInteger)
    rows = db.session.execute(
        select(JournalEntry.kind, LedgerAccount.kind, func.sum(micros))
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(JournalEntry.order_id == charge.order_id)
        .where(LedgerAccount.kind.in_((CUSTOMER_WALLET, TENANT_WHOLESALE_WALLET)))
        .group_by(JournalEntry.kind, LedgerAccount.kind)
    ).all()
    sums = {
        (entry_kind, account_kind): from_micros(int(total))
        for entry_kind, account_kind, total in rows
    }

    def total(entry_kinds: tuple[str, ...], account_kind: str) -> Decimal:
        return sum((sums.get((k, account_kind), Decimal(0)) for k in entry_kinds), Decimal(0))

    refunds = (REFUND, PARTIAL_REFUND)
    return OrderTotals(
        retail_currency=charge.terms["retail_currency"],
        retail_charged=-total((ORDER_CHARGE,), CUSTOMER_WALLET),
        retail_refunded=total(refunds, CUSTOMER_WALLET),
        wholesale_currency=charge.terms["wholesale_currency"],
        wholesale_charged=-total((WHOLESALE_CHARGE,), TENANT_WHOLESALE_WALLET),
        wholesale_refunded=total(refunds, TENANT_WHOLESALE_WALLET),
    )


# --- movements -------------------------------------------------------------------------------


def credit_topup(
    owner: User | Tenant,
    amount: Decimal,
    gateway: str,
    external_id: str,
    *,
    topup_id: int | None = None,
    actor: User | str = "system",
) -> JournalEntry:
    """A paid top-up: gateway clearing → the customer's wallet (or, for a tenant, its
    wholesale wallet), once per (gateway, external id)."""
    gateway, external_id = _gateway(gateway), _external_id(external_id)
    with _working_for(owner.id if isinstance(owner, Tenant) else owner.tenant_id):
        wallet, tenant_id = _wallet_and_owner(owner)
        amount = _positive(amount, wallet.currency)
        clearing = _clearing_for(wallet, gateway)
        entry, _ = _post(
            _entry(
                TOPUP,
                f"topup:{gateway}:{external_id}",
                tenant_id=tenant_id,
                terms={"account": wallet.key, "amount": _shown(amount, wallet.currency)},
                legs=[_Leg(clearing, -amount), _Leg(wallet, amount)],
                memo=f"Top-up via {gateway} {external_id}",
                actor=actor,
                topup_id=topup_id,
            )
        )
        return entry


def charge_order(
    customer: User,
    tenant: Tenant,
    order_id: int,
    retail: Decimal,
    wholesale: Decimal,
    *,
    actor: User | str = "system",
) -> OrderCharge:
    """Charge an order to both wallets in the caller's transaction: retail from the customer's
    wallet to the tenant's sales (tenant currency), wholesale from the tenant's wholesale wallet
    to the platform's sales (platform currency).

    The customer must afford the retail (else `InsufficientFunds` and nothing moves). If the
    tenant's wallet is short, the customer is still charged and the result says the wholesale
    is pending: the order goes on hold until `charge_wholesale`. A repeated call reports what
    the first did and moves nothing, even if the wholesale has since become affordable.
    """
    _require_customer(customer)
    if customer.tenant_id != tenant.id:
        raise ValueError(f"customer {customer.id} does not belong to tenant {tenant.id}")
    with _working_for(tenant.id):
        pc = platform_currency()
        retail = _not_negative(retail, tenant.currency, "retail")
        wholesale = _not_negative(wholesale, pc, "wholesale")
        terms = {
            "customer_id": customer.id,
            "tenant_id": tenant.id,
            "retail": _shown(retail, tenant.currency),
            "retail_currency": tenant.currency,
            "wholesale": _shown(wholesale, pc),
            "wholesale_currency": pc,
        }
        wallet, sales, tenant_wallet, platform_sales = _accounts(
            _spec(CUSTOMER_WALLET, tenant.currency, tenant_id=tenant.id, customer_id=customer.id),
            _spec(TENANT_SALES, tenant.currency, tenant_id=tenant.id),
            _spec(TENANT_WHOLESALE_WALLET, pc, tenant_id=tenant.id),
            _spec(PLATFORM_SALES, pc),
        )
        retail_entry = _entry(
            ORDER_CHARGE,
            f"order-{order_id}",
            tenant_id=tenant.id,
            terms=terms,
            legs=[_Leg(wallet, -retail), _Leg(sales, retail)],
            guarded=wallet,
            memo=f"Order {order_id}",
            actor=actor,
            order_id=order_id,
        )
        wholesale_entry = _wholesale_entry(
            tenant.id, order_id, wholesale, tenant_wallet, platform_sales, actor
        )
        # Both entries in one chain: the wholesale only once the retail is made.
        charged, wholesale_charged = _post_chain([retail_entry, wholesale_entry])
        if charged.outcome == SHORT:
            raise InsufficientFunds(wallet, retail)
        if charged.outcome == TAKEN:
            # A retry: report what the first call did.
            first = _existing(retail_entry.key, terms)
            first_wholesale = _find(wholesale_entry.key)
            return OrderCharge(first.id, first_wholesale.id if first_wholesale else None)
        if wholesale_charged.outcome == TAKEN:
            return OrderCharge(
                charged.entry_id, _existing(wholesale_entry.key, wholesale_entry.terms).id
            )
        return OrderCharge(charged.entry_id, wholesale_charged.entry_id)


def _wholesale_terms(tenant_id: int, wholesale: str, currency: str) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "wholesale": wholesale, "currency": currency}


def _wholesale_entry(
    tenant_id: int,
    order_id: int,
    wholesale: Decimal,
    tenant_wallet: LedgerAccount,
    platform_sales: LedgerAccount,
    actor: User | str,
) -> _Entry:
    return _entry(
        WHOLESALE_CHARGE,
        f"wholesale-{order_id}",
        tenant_id=tenant_id,
        terms=_wholesale_terms(
            tenant_id, _shown(wholesale, tenant_wallet.currency), tenant_wallet.currency
        ),
        legs=[_Leg(tenant_wallet, -wholesale), _Leg(platform_sales, wholesale)],
        guarded=tenant_wallet,
        memo=f"Wholesale for order {order_id}",
        actor=actor,
        order_id=order_id,
    )


def charge_wholesale(
    tenant: Tenant, order_id: int, wholesale: Decimal, *, actor: User | str = "system"
) -> JournalEntry:
    """Charge an on-hold order's snapshotted wholesale once the tenant can pay it
    (`InsufficientFunds` while it still cannot). Once per order."""
    with _working_for(tenant.id):
        pc = platform_currency()
        shown = _shown(_not_negative(wholesale, pc, "wholesale"), pc)
        charge = _find(f"order-{order_id}")
        if charge is None or charge.tenant_id != tenant.id:
            raise OrderNotCharged(order_id)
        # The wholesale snapshotted when the order was charged is the one to charge.
        if charge.terms["wholesale"] != shown:
            raise IdempotencyConflict(
                charge.idempotency_key,
                {"wholesale": charge.terms["wholesale"]},
                {"wholesale": shown},
            )
        _lock_order(charge)
        done = _existing(f"wholesale-{order_id}", _wholesale_terms(tenant.id, shown, pc))
        if done is not None:
            return done
        if _find(f"refund-{order_id}") or _find(f"partial-{order_id}"):
            raise OrderRefunded(order_id)
        tenant_wallet, platform_sales = _accounts(
            _spec(TENANT_WHOLESALE_WALLET, pc, tenant_id=tenant.id), _spec(PLATFORM_SALES, pc)
        )
        entry, _ = _post(
            _wholesale_entry(tenant.id, order_id, wholesale, tenant_wallet, platform_sales, actor)
        )
        return entry


def _lock_order(charge: JournalEntry) -> None:
    """Serialise the charges and refunds of one order (PostgreSQL), so that two refunds cannot
    both see the full charge unrefunded."""
    db.session.execute(
        select(JournalEntry.id).where(JournalEntry.id == charge.id).with_for_update()
    ).all()


def _order_refund(
    order_id: int,
    kind: str,
    key: str,
    terms: dict[str, Any],
    retail_share: Callable[[OrderTotals], Decimal],
    wholesale_share: Callable[[OrderTotals], Decimal],
    memo: str,
    actor: User | str,
) -> JournalEntry:
    charge = _find(f"order-{order_id}")
    if charge is None:
        raise OrderNotCharged(order_id)
    with _working_for(charge.tenant_id):
        found = _existing(key, terms)
        if found is not None:
            return found
        _lock_order(charge)
        totals = _order_totals(charge)
        # Never more than what was charged and is not yet refunded.
        retail = min(retail_share(totals), totals.retail_charged - totals.retail_refunded)
        wholesale = min(
            wholesale_share(totals), totals.wholesale_charged - totals.wholesale_refunded
        )
        tenant_id = charge.tenant_id
        wallet, sales, tenant_wallet, platform_sales = _accounts(
            _spec(
                CUSTOMER_WALLET,
                totals.retail_currency,
                tenant_id=tenant_id,
                customer_id=charge.terms["customer_id"],
            ),
            _spec(TENANT_SALES, totals.retail_currency, tenant_id=tenant_id),
            _spec(TENANT_WHOLESALE_WALLET, totals.wholesale_currency, tenant_id=tenant_id),
            _spec(PLATFORM_SALES, totals.wholesale_currency),
        )
        entry, _ = _post(
            _entry(
                kind,
                key,
                tenant_id=tenant_id,
                terms=terms,
                legs=[
                    _Leg(wallet, retail),
                    _Leg(sales, -retail),
                    _Leg(tenant_wallet, wholesale),
                    _Leg(platform_sales, -wholesale),
                ],
                memo=memo,
                actor=actor,
                order_id=order_id,
            )
        )
        return entry


def refund_order(order_id: int, *, actor: User | str = "system") -> JournalEntry:
    """Refund an order in full: to the customer what they paid, to the tenant the wholesale it
    paid (nothing if it was still pending), less anything already refunded. Once per order."""
    return _order_refund(
        order_id,
        REFUND,
        f"refund-{order_id}",
        {"order_id": order_id},
        lambda t: t.retail_charged,
        lambda t: t.wholesale_charged,
        f"Refund of order {order_id}",
        actor,
    )


def refund_remainder(
    order_id: int, quantity: int, remains: int, *, actor: User | str = "system"
) -> JournalEntry:
    """Refund the undelivered `remains` of `quantity` pro rata to both wallets, rounded toward
    zero, never more than is left unrefunded. Once per order. Clamp a provider's odd `remains`
    to 0..quantity before calling."""
    return _order_refund(
        order_id,
        PARTIAL_REFUND,
        f"partial-{order_id}",
        {"order_id": order_id, "quantity": quantity, "remains": remains},
        lambda t: pro_rata_refund(t.retail_charged, quantity, remains, t.retail_currency),
        lambda t: pro_rata_refund(t.wholesale_charged, quantity, remains, t.wholesale_currency),
        f"Partial refund of order {order_id}: {remains} of {quantity} undelivered",
        actor,
    )


def _adjust(
    kind: str,
    wallet: LedgerAccount,
    contra: LedgerAccount,
    amount: Decimal,
    reason: str,
    actor: User | str,
    key: str | None,
    action: str,
    target: str,
) -> JournalEntry:
    if _amount(amount, wallet.currency) == 0:
        raise ValidationError(_l("The amount must not be zero"), "amount")
    reason = _reason(reason)
    shown = _shown(amount, wallet.currency)
    entry, made = _post(
        _entry(
            kind,
            key or f"{kind}:{uuid.uuid4().hex}",
            tenant_id=wallet.tenant_id,
            terms={"account": wallet.key, "amount": shown, "reason": reason},
            legs=[_Leg(contra, -amount), _Leg(wallet, amount)],
            guarded=wallet if amount < 0 else None,
            memo=reason,
            actor=actor,
        )
    )
    if made:
        record_audit(
            action,
            actor=actor,
            tenant_id=wallet.tenant_id,
            target=target,
            details={
                "amount": shown,
                "currency": wallet.currency,
                "reason": reason,
                "entry": entry.idempotency_key,
            },
        )
    return entry


def adjust_customer(
    customer: User,
    amount: Decimal,
    reason: str,
    actor: User | str,
    *,
    key: str | None = None,
) -> JournalEntry:
    """A manual credit (positive) or debit (negative, never below zero) of a customer's wallet
    against the tenant's adjustments account; audited. Pass `key` to make a retry safe."""
    _require_customer(customer)
    with _working_for(customer.tenant_id):
        tenant = _tenant(customer.tenant_id)
        return _adjust(
            ADJUSTMENT,
            _customer_wallet(customer.id, tenant),
            _account(ADJUSTMENTS, tenant.currency, tenant_id=tenant.id),
            amount,
            reason,
            actor,
            key,
            "ledger.adjust_customer",
            f"user:{customer.id}",
        )


def topup_tenant(
    tenant: Tenant,
    amount: Decimal,
    reason: str,
    actor: User | str,
    *,
    key: str | None = None,
) -> JournalEntry:
    """An operator's credit (or, negative, correction) of a tenant's wholesale wallet against
    the platform's adjustments account; audited."""
    with _working_for(tenant.id):
        pc = platform_currency()
        return _adjust(
            TENANT_TOPUP,
            _wholesale_wallet(tenant.id),
            _account(ADJUSTMENTS, pc),
            amount,
            reason,
            actor,
            key,
            "ledger.topup_tenant",
            f"tenant:{tenant.slug}",
        )


def clawback(
    owner: User | Tenant,
    amount: Decimal,
    gateway: str,
    external_id: str,
    reason: str,
    *,
    cause: str,
    actor: User | str = "system",
) -> JournalEntry:
    """Take back (part of) a credited top-up the gateway refunded or lost in a dispute: the
    wallet → gateway clearing, even below zero, since the money is already gone. Once per
    `cause` (a refund, a dispute), each at most the top-up's amount; audited. The caller
    bounds the sum over causes (see app.payments)."""
    return _reverse_topup(
        owner, amount, gateway, external_id, reason, cause, actor, taken_back=True
    )


def restore_topup(
    owner: User | Tenant,
    amount: Decimal,
    gateway: str,
    external_id: str,
    reason: str,
    *,
    cause: str,
    actor: User | str = "system",
) -> JournalEntry:
    """Give back what a clawback took when its cause is undone (a dispute won): gateway
    clearing → the wallet, once per `cause`; audited."""
    return _reverse_topup(
        owner, amount, gateway, external_id, reason, cause, actor, taken_back=False
    )


def _reverse_topup(
    owner: User | Tenant,
    amount: Decimal,
    gateway: str,
    external_id: str,
    reason: str,
    cause: str,
    actor: User | str,
    *,
    taken_back: bool,
) -> JournalEntry:
    """A movement between a credited top-up's wallet and its gateway clearing: out of the
    wallet (a clawback) or back into it (a restore)."""
    gateway, external_id = _gateway(gateway), _external_id(external_id)
    reason = _reason(reason)
    kind, prefix, action = (
        (CLAWBACK, "clawback", "ledger.clawback")
        if taken_back
        else (TOPUP, "restore", "ledger.restore")
    )
    with _working_for(owner.id if isinstance(owner, Tenant) else owner.tenant_id):
        wallet, tenant_id = _wallet_and_owner(owner)
        amount = _positive(amount, wallet.currency)
        topup = _credited_topup(wallet, gateway, external_id, amount)
        shown = _shown(amount, wallet.currency)
        into_wallet = -amount if taken_back else amount
        entry, made = _post(
            _entry(
                kind,
                f"{prefix}:{gateway}:{external_id}:{_external_id(cause)}",
                tenant_id=tenant_id,
                terms={"account": wallet.key, "amount": shown},
                legs=[
                    _Leg(wallet, into_wallet),
                    _Leg(_clearing_for(wallet, gateway), -into_wallet),
                ],
                memo=reason,
                actor=actor,
                topup_id=topup.topup_id,
            )
        )
        if made:
            record_audit(
                action,
                actor=actor,
                tenant_id=tenant_id,
                target=f"topup:{gateway}:{external_id}",
                details={
                    "amount": shown,
                    "currency": wallet.currency,
                    "reason": reason,
                    "cause": cause,
                },
            )
        return entry


def _credited_topup(
    wallet: LedgerAccount, gateway: str, external_id: str, amount: Decimal
) -> JournalEntry:
    topup = _find(f"topup:{gateway}:{external_id}")
    if topup is None or topup.terms["account"] != wallet.key:
        raise NotFound(
            _l("No top-up %(gateway)s %(id)s on this wallet", gateway=gateway, id=external_id)
        )
    if amount > Decimal(topup.terms["amount"]):
        raise ValidationError(_l("A clawback cannot exceed its top-up"), "amount")
    return topup
