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

Scoping. A movement is done for one tenant, and the caller must be in that tenant's scope or
across tenants; otherwise `TenantScopeError`, before anything is read. The movement itself then
works across tenants, on the accounts it derived from that tenant and no others: a wholesale
charge moves money from the tenant's wallet to the platform's sales, a row a tenant scope cannot
see (a scoped UPDATE of it would silently match nothing). Pending writes of the caller are
flushed first, so they are still checked against the caller's scope.

Locking. A movement locks every account it touches in id order (`SELECT … FOR UPDATE` on
PostgreSQL; SQLite serialises writers anyway) before it changes any, so movements cannot
deadlock each other. Platform sales is one row every wholesale charge updates: keep the
transactions that call `charge_order` short.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, delete, func, select, type_coerce, update
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
from app.money import format_amount, from_micros, pro_rata_refund
from app.money.amounts import places_of, require_decimal
from app.money.currency import Currency
from app.money.currency import currency as lookup_currency
from app.panels.models import Tenant
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
    wallet was short (then the order waits on hold until `charge_wholesale`)."""

    entry: JournalEntry
    wholesale_entry: JournalEntry | None

    @property
    def wholesale_pending(self) -> bool:
        return self.wholesale_entry is None


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


def _account(
    kind: str,
    currency: str,
    *,
    tenant_id: int | None = None,
    customer_id: int | None = None,
    gateway: str | None = None,
) -> LedgerAccount:
    """The account, created on first use. Two transactions creating it at once both get the
    one row: the loser's INSERT … ON CONFLICT DO NOTHING waits for the winner, then selects."""
    key = LedgerAccount.natural_key(
        kind, currency, tenant_id=tenant_id, customer_id=customer_id, gateway=gateway
    )
    query = select(LedgerAccount).where(LedgerAccount.key == key)
    found = db.session.scalar(query)
    if found is not None:
        return found
    db.session.execute(
        _insert_ignoring_conflict(LedgerAccount)
        .values(
            key=key,
            kind=kind,
            tenant_id=tenant_id,
            customer_id=customer_id,
            gateway=gateway,
            currency=currency,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return db.session.scalars(query).one()


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


def _find(key: str) -> JournalEntry | None:
    return db.session.scalar(select(JournalEntry).where(JournalEntry.idempotency_key == key))


def _existing(key: str, terms: dict[str, Any]) -> JournalEntry | None:
    """The entry already made with `key`, if any, after checking it was made on these terms."""
    entry = _find(key)
    if entry is not None and entry.terms != terms:
        raise IdempotencyConflict(key, entry.terms, terms)
    return entry


def _lock(accounts: Sequence[LedgerAccount]) -> None:
    ids = sorted({a.id for a in accounts})
    db.session.execute(
        select(LedgerAccount.id)
        .where(LedgerAccount.id.in_(ids))
        .order_by(LedgerAccount.id)
        .with_for_update()
    ).all()


def _post(
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
) -> tuple[JournalEntry, bool]:
    """Make the entry `key` once: the entry, and whether this call made it.

    `guarded` is the wallet that must not be overdrawn: its debit is the one conditional
    update, done first, so that when it fails nothing else has moved yet.
    """
    found = _existing(key, terms)
    if found is not None:
        return found, False
    totals: dict[str, Decimal] = {}
    for leg in legs:
        totals[leg.account.currency] = totals.get(leg.account.currency, Decimal(0)) + leg.amount
    if any(totals.values()):
        raise RuntimeError(f"entry {key} does not balance: {totals}")
    _lock([leg.account for leg in legs])
    # Claim the key first: a concurrent call with the same key waits here for this
    # transaction, then finds the entry instead of moving the money a second time.
    entry_id = db.session.execute(
        _insert_ignoring_conflict(JournalEntry)
        .values(
            kind=kind,
            idempotency_key=key,
            tenant_id=tenant_id,
            terms=terms,
            memo=memo,
            actor=_actor_label(actor),
            order_id=order_id,
            topup_id=topup_id,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(JournalEntry.id)
    ).scalar_one_or_none()
    if entry_id is None:
        return _existing(key, terms), False
    others = list(legs)
    if guarded is not None:
        debit = -sum((leg.amount for leg in legs if leg.account.id == guarded.id), Decimal(0))
        moved = db.session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == guarded.id, LedgerAccount.balance >= debit)
            .values(balance=LedgerAccount.balance - debit)
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != 1:
            db.session.execute(
                delete(JournalEntry)
                .where(JournalEntry.id == entry_id)
                .execution_options(synchronize_session=False)
            )
            raise InsufficientFunds(guarded, debit)
        others = [leg for leg in legs if leg.account.id != guarded.id]
    for leg in sorted(others, key=lambda leg: leg.account.id):
        if leg.amount:
            db.session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == leg.account.id)
                .values(balance=LedgerAccount.balance + leg.amount)
                .execution_options(synchronize_session=False)
            )
    db.session.add_all(
        Posting(
            entry_id=entry_id,
            account_id=leg.account.id,
            tenant_id=leg.account.tenant_id,
            amount=leg.amount,
            currency=leg.account.currency,
        )
        for leg in legs
        if leg.amount
    )
    for leg in legs:
        db.session.expire(leg.account, ["balance"])
    db.session.flush()
    return db.session.get(JournalEntry, entry_id), True


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
            TOPUP,
            f"topup:{gateway}:{external_id}",
            tenant_id=tenant_id,
            terms={"account": wallet.key, "amount": _shown(amount, wallet.currency)},
            legs=[_Leg(clearing, -amount), _Leg(wallet, amount)],
            memo=f"Top-up via {gateway} {external_id}",
            actor=actor,
            topup_id=topup_id,
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
        key = f"order-{order_id}"
        found = _existing(key, terms)
        if found is not None:
            return OrderCharge(found, _find(f"wholesale-{order_id}"))
        wallet = _customer_wallet(customer.id, tenant)
        sales = _account(TENANT_SALES, tenant.currency, tenant_id=tenant.id)
        tenant_wallet = _wholesale_wallet(tenant.id)
        platform_sales = _account(PLATFORM_SALES, pc)
        _lock([wallet, sales, tenant_wallet, platform_sales])
        # The guarded debit also runs for a zero retail: a negative wallet cannot order.
        entry, made = _post(
            ORDER_CHARGE,
            key,
            tenant_id=tenant.id,
            terms=terms,
            legs=[_Leg(wallet, -retail), _Leg(sales, retail)],
            guarded=wallet,
            memo=f"Order {order_id}",
            actor=actor,
            order_id=order_id,
        )
        if not made:
            return OrderCharge(entry, _find(f"wholesale-{order_id}"))
        try:
            wholesale_entry = _charge_wholesale(tenant.id, order_id, wholesale, actor)
        except InsufficientFunds:
            wholesale_entry = None
        return OrderCharge(entry, wholesale_entry)


def _wholesale_terms(tenant_id: int, wholesale: str, currency: str) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "wholesale": wholesale, "currency": currency}


def _charge_wholesale(
    tenant_id: int, order_id: int, wholesale: Decimal, actor: User | str
) -> JournalEntry:
    pc = platform_currency()
    entry, _ = _post(
        WHOLESALE_CHARGE,
        f"wholesale-{order_id}",
        tenant_id=tenant_id,
        terms=_wholesale_terms(tenant_id, _shown(wholesale, pc), pc),
        legs=[
            _Leg(_wholesale_wallet(tenant_id), -wholesale),
            _Leg(_account(PLATFORM_SALES, pc), wholesale),
        ],
        guarded=_wholesale_wallet(tenant_id),
        memo=f"Wholesale for order {order_id}",
        actor=actor,
        order_id=order_id,
    )
    return entry


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
        return _charge_wholesale(tenant.id, order_id, wholesale, actor)


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
        tenant = _tenant(charge.tenant_id)
        legs = [
            _Leg(_account(TENANT_SALES, totals.retail_currency, tenant_id=tenant.id), -retail),
            _Leg(_customer_wallet(charge.terms["customer_id"], tenant), retail),
            _Leg(_account(PLATFORM_SALES, totals.wholesale_currency), -wholesale),
            _Leg(_wholesale_wallet(tenant.id), wholesale),
        ]
        entry, _ = _post(
            kind,
            key,
            tenant_id=tenant.id,
            terms=terms,
            legs=legs,
            memo=memo,
            actor=actor,
            order_id=order_id,
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
        kind,
        key or f"{kind}:{uuid.uuid4().hex}",
        tenant_id=wallet.tenant_id,
        terms={"account": wallet.key, "amount": shown, "reason": reason},
        legs=[_Leg(contra, -amount), _Leg(wallet, amount)],
        guarded=wallet if amount < 0 else None,
        memo=reason,
        actor=actor,
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
    actor: User | str = "system",
) -> JournalEntry:
    """Take back (part of) a credited top-up the gateway refunded or lost in a dispute: the
    wallet → gateway clearing, even below zero, since the money is already gone. At most the
    top-up's amount, once per top-up; audited."""
    gateway, external_id = _gateway(gateway), _external_id(external_id)
    reason = _reason(reason)
    with _working_for(owner.id if isinstance(owner, Tenant) else owner.tenant_id):
        wallet, tenant_id = _wallet_and_owner(owner)
        amount = _positive(amount, wallet.currency)
        topup = _find(f"topup:{gateway}:{external_id}")
        if topup is None or topup.terms["account"] != wallet.key:
            raise NotFound(
                _l("No top-up %(gateway)s %(id)s on this wallet", gateway=gateway, id=external_id)
            )
        if amount > Decimal(topup.terms["amount"]):
            raise ValidationError(_l("A clawback cannot exceed its top-up"), "amount")
        shown = _shown(amount, wallet.currency)
        entry, made = _post(
            CLAWBACK,
            f"clawback:{gateway}:{external_id}",
            tenant_id=tenant_id,
            terms={"account": wallet.key, "amount": shown},
            legs=[_Leg(wallet, -amount), _Leg(_clearing_for(wallet, gateway), amount)],
            memo=reason,
            actor=actor,
            topup_id=topup.topup_id,
        )
        if made:
            record_audit(
                "ledger.clawback",
                actor=actor,
                tenant_id=tenant_id,
                target=f"topup:{gateway}:{external_id}",
                details={"amount": shown, "currency": wallet.currency, "reason": reason},
            )
        return entry
