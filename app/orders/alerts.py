"""The on-hold alert: orders wait `on_hold` while the tenant's wholesale wallet is short, and its
owners must learn it quickly, without being flooded.

`on_hold_summary` gives what the back office shows (how many orders wait, the wholesale they
need, what the wallet holds). When an order goes on hold, `alert_owners_after_commit` notes
the tenant in the session; once the transaction commits, the tenant's owners get one email,
at most one per tenant per `ALERT_INTERVAL_SECONDS` (a Redis `SET NX EX` claim shared by every
process). The email is sent after the commit and never fails the order: a mail or Redis
problem is logged, and the back office's alert still shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import BigInteger, func, select, type_coerce
from sqlalchemy.orm import Session

from app.accounts.models import OWNER, STAFF, User
from app.after_commit import after_commit
from app.extensions import db, get_redis
from app.i18n import LOCALES
from app.ledger.models import TENANT_WHOLESALE_WALLET, LedgerAccount
from app.mail import send_mail
from app.money import format_amount, from_micros
from app.orders.models import ON_HOLD, Order
from app.panels.links import panel_url
from app.panels.models import Tenant
from tenants.context import tenant_scope

log = logging.getLogger(__name__)

ALERT_INTERVAL_SECONDS = 3600


def throttle_key(tenant_id: int) -> str:
    return f"pasok:alerts:on-hold:tenant:{tenant_id}"


@dataclass(frozen=True)
class OnHoldSummary:
    """A tenant's orders waiting for its wholesale wallet, in the platform currency."""

    count: int
    needed: Decimal  # the snapshotted wholesale of every waiting order
    balance: Decimal  # what the wholesale wallet holds now
    currency: str

    @property
    def shortfall(self) -> Decimal:
        """The least top-up that lets every waiting order go on."""
        return max(self.needed - self.balance, Decimal(0))


def wholesale_balance(tenant_id: int, session: Session | None = None) -> Decimal:
    """The tenant's wholesale wallet balance (0 before its first movement), read without
    creating the wallet: pages that only look must not write."""
    session = session or db.session
    currency = current_app.config["PASOK_PLATFORM_CURRENCY"]
    key = LedgerAccount.natural_key(TENANT_WHOLESALE_WALLET, currency, tenant_id=tenant_id)
    found = session.scalar(select(LedgerAccount.balance).where(LedgerAccount.key == key))
    return Decimal(0) if found is None else found


def on_hold_summary(tenant_id: int, session: Session | None = None) -> OnHoldSummary | None:
    """The tenant's on-hold orders, or None when none waits. Call it in the tenant's scope."""
    session = session or db.session
    # SUM of micro-units as an integer: PostgreSQL's SUM of a BIGINT is NUMERIC and would not
    # go through the column type.
    count, micros = session.execute(
        select(
            func.count(Order.id), func.sum(type_coerce(Order.wholesale_charge, BigInteger))
        ).where(Order.tenant_id == tenant_id, Order.status == ON_HOLD)
    ).one()
    if not count:
        return None
    return OnHoldSummary(
        count=count,
        needed=from_micros(int(micros or 0)),
        balance=wholesale_balance(tenant_id, session),
        currency=current_app.config["PASOK_PLATFORM_CURRENCY"],
    )


def alert_owners_after_commit(tenant_id: int) -> None:
    """An order of `tenant_id` went on hold in this transaction: email its owners once the
    transaction commits (nothing if it rolls back)."""
    after_commit(alert_owners_of_held_orders, tenant_id)


def alert_owners_of_held_orders(tenant_id: int) -> bool:
    """Email the tenant's owners how many orders wait and how much to top up, unless they were
    emailed within the last `ALERT_INTERVAL_SECONDS` or nothing waits any more. True if sent.

    Reads through a session of its own, so it may run right after a commit."""
    with Session(db.engine) as session, tenant_scope(tenant_id):
        # Re-read, not trusted from the caller: the order may have been canceled or resumed,
        # or its SAVEPOINT rolled back, since it was noted.
        summary = on_hold_summary(tenant_id, session)
        tenant = session.get(Tenant, tenant_id)
        owners = session.scalars(
            select(User).where(
                User.tenant_id == tenant_id,
                User.kind == STAFF,
                User.role == OWNER,
                User.is_enabled.is_(True),
            )
        ).all()
        recipients = [(owner.email, owner.locale) for owner in owners]
    if summary is None or tenant is None or not recipients:
        return False
    redis_client = get_redis()
    if not redis_client.set(throttle_key(tenant_id), "1", nx=True, ex=ALERT_INTERVAL_SECONDS):
        return False
    sent = 0
    for email, locale in recipients:
        try:
            with force_locale(locale if locale in LOCALES else tenant.default_locale):
                subject, body = _message(tenant, summary)
            send_mail(email, subject, body)
            sent += 1
        except Exception:
            log.exception("on-hold alert to %s of tenant %s not sent", email, tenant_id)
    if not sent:
        # Nobody was told: let the next order that goes on hold try again.
        redis_client.delete(throttle_key(tenant_id))
    return sent > 0


def _message(tenant: Tenant, summary: OnHoldSummary) -> tuple[str, str]:
    figures = {
        "panel": tenant.name,
        "count": summary.count,
        "needed": format_amount(summary.needed, summary.currency),
        "balance": format_amount(summary.balance, summary.currency),
        "shortfall": format_amount(summary.shortfall, summary.currency),
        "currency": summary.currency,
        "link": _orders_link(tenant),
    }
    subject = ngettext(
        "%(panel)s: %(num)s order is waiting for your wholesale wallet",
        "%(panel)s: %(num)s orders are waiting for your wholesale wallet",
        summary.count,
        **figures,
    )
    body = _(
        "%(count)s orders on %(panel)s are on hold: your customers have paid, but your "
        "wholesale wallet cannot pay for them yet.\n\n"
        "Wholesale needed: %(needed)s %(currency)s\n"
        "Wholesale wallet balance: %(balance)s %(currency)s\n"
        "Top up at least: %(shortfall)s %(currency)s\n\n"
        "They resume automatically, oldest first, as soon as you top up your wholesale "
        "wallet. Your customers see them as Pending meanwhile.\n\n"
        "See them here:\n%(link)s\n\n"
        "We send this at most once an hour.",
        **figures,
    )
    return subject, body


def _orders_link(tenant: Tenant) -> str:
    return panel_url(tenant, f"/admin/orders?status={ON_HOLD}")
