"""Payment emails, each sent once the transaction that makes it true commits:

- a customer reports a bank transfer → the panel's owners and admins, at most one email per
  panel per `NEW_TRANSFER_INTERVAL_SECONDS`, saying how many transfers wait for review;
- staff approve or reject it → the customer (the amount credited and the new balance, or
  the reason);
- a refund or a lost dispute takes a customer's wallet below zero → the panel's owners, at
  most one email per customer per `NEGATIVE_BALANCE_INTERVAL_SECONDS`;
- a Stripe or Midtrans payment is credited → the customer, a short receipt.

Services call the `…_after_commit` functions inside their transaction; nothing goes out if it
rolls back. Each email is written in its reader's language (theirs, else the panel's), re-reads
what it announces through a session of its own, and never fails the payment: a mail or Redis
problem is logged. The throttles are Redis `SET NX EX` claims shared by every process, given
back when nobody could be told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from decimal import Decimal

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import ADMIN, OWNER, STAFF, User
from app.after_commit import after_commit
from app.extensions import db, get_redis
from app.i18n import LOCALES
from app.ledger.models import CUSTOMER_WALLET, LedgerAccount
from app.mail import send_mail
from app.panels.links import panel_url
from app.panels.models import Tenant
from app.payments.models import (
    FAILED,
    MANUAL,
    MIDTRANS,
    PENDING,
    SETTLED_STATES,
    STRIPE,
    Topup,
)
from app.payments.settings import gateway_label, shown_amount
from tenants.context import tenant_scope

log = logging.getLogger(__name__)

NEW_TRANSFER_INTERVAL_SECONDS = 600
NEGATIVE_BALANCE_INTERVAL_SECONDS = 86400

REFUND = "refund"
DISPUTE = "dispute"

Recipient = tuple[str, str]  # (email, locale)


def new_transfer_throttle_key(tenant_id: int) -> str:
    return f"pasok:notify:manual-topups:tenant:{tenant_id}"


def negative_balance_throttle_key(customer_id: int) -> str:
    return f"pasok:notify:negative-balance:customer:{customer_id}"


# --- noted inside the transaction -------------------------------------------------------------


def tell_staff_of_transfer_after_commit(topup: Topup) -> None:
    after_commit(tell_staff_of_transfer, topup.tenant_id, topup.id)


def tell_customer_of_review_after_commit(topup: Topup) -> None:
    after_commit(tell_customer_of_review, topup.tenant_id, topup.id)


def send_receipt_after_commit(topup: Topup) -> None:
    if not topup.is_wholesale:
        after_commit(send_receipt, topup.tenant_id, topup.id)


def warn_owners_of_negative_balance_after_commit(topup: Topup, reversal: str) -> None:
    """`topup` was refunded (`REFUND`) or lost in a dispute (`DISPUTE`) in this transaction."""
    if not topup.is_wholesale:
        after_commit(warn_owners_of_negative_balance, topup.tenant_id, topup.id, reversal)


# --- sent after the commit --------------------------------------------------------------------


def tell_staff_of_transfer(tenant_id: int, topup_id: int) -> bool:
    """Email the panel's owners and admins that a bank transfer waits for review, unless they
    were emailed within `NEW_TRANSFER_INTERVAL_SECONDS`. True if sent."""
    with Session(db.engine) as session, tenant_scope(tenant_id):
        topup = session.get(Topup, topup_id)
        tenant = session.get(Tenant, tenant_id)
        if topup is None or tenant is None or topup.state != PENDING:
            return False
        customer = session.get(User, topup.customer_id)
        waiting = session.scalar(
            select(func.count(Topup.id)).where(
                Topup.tenant_id == tenant_id,
                Topup.customer_id.is_not(None),
                Topup.gateway == MANUAL,
                Topup.state == PENDING,
            )
        )
        recipients = _staff(session, tenant, (OWNER, ADMIN))
    if not recipients:
        return False
    redis_client = get_redis()
    key = new_transfer_throttle_key(tenant_id)
    if not redis_client.set(key, "1", nx=True, ex=NEW_TRANSFER_INTERVAL_SECONDS):
        return False

    def compose() -> tuple[str, str]:
        figures = {
            "panel": tenant.name,
            "customer": _who(customer),
            "amount": shown_amount(topup.amount, topup.currency),
            "reference": topup.reference,
            "link": panel_url(tenant, f"/admin/topups/{topup.id}"),
            "list": panel_url(tenant, f"/admin/topups?gateway={MANUAL}"),
        }
        subject = ngettext(
            "%(panel)s: %(num)s bank transfer is waiting for review",
            "%(panel)s: %(num)s bank transfers are waiting for review",
            waiting,
            **figures,
        )
        body = "\n\n".join(
            (
                _(
                    "%(customer)s reports a bank transfer of %(amount)s.\n"
                    "Reference: %(reference)s\n\n"
                    "Check it against your bank account, then approve or reject it here:\n"
                    "%(link)s",
                    **figures,
                ),
                ngettext(
                    "%(num)s bank transfer is waiting for review in all:\n%(list)s",
                    "%(num)s bank transfers are waiting for review in all:\n%(list)s",
                    waiting,
                    **figures,
                ),
                _("We send this at most once every 10 minutes."),
            )
        )
        return subject, _signed(body, tenant)

    sent = _send_each(recipients, compose, f"new-transfer email of top-up {topup_id}")
    if not sent:
        # Nobody was told: let the next transfer try again.
        redis_client.delete(key)
    return sent > 0


def tell_customer_of_review(tenant_id: int, topup_id: int) -> bool:
    """Email the customer that staff approved their bank transfer (the amount credited, the
    balance now) or rejected it (the reason). True if sent."""
    with Session(db.engine) as session, tenant_scope(tenant_id):
        topup = session.get(Topup, topup_id)
        tenant = session.get(Tenant, tenant_id)
        if topup is None or tenant is None or topup.is_wholesale:
            return False
        customer = session.get(User, topup.customer_id)
        balance = _customer_balance(session, tenant, topup.customer_id)
    if topup.state in SETTLED_STATES:
        compose = _approved(tenant, topup, balance)
    elif topup.state == FAILED:
        compose = _rejected(tenant, topup)
    else:  # still pending: the review was rolled back
        return False
    return _send_each([_recipient(customer, tenant)], compose, f"review of top-up {topup_id}") > 0


def send_receipt(tenant_id: int, topup_id: int) -> bool:
    """Email the customer a receipt for a gateway payment credited to their wallet."""
    with Session(db.engine) as session, tenant_scope(tenant_id):
        topup = session.get(Topup, topup_id)
        tenant = session.get(Tenant, tenant_id)
        if topup is None or tenant is None or topup.is_wholesale:
            return False
        if topup.state not in SETTLED_STATES:
            return False
        customer = session.get(User, topup.customer_id)
        balance = _customer_balance(session, tenant, topup.customer_id)

    def compose() -> tuple[str, str]:
        figures = {
            "panel": tenant.name,
            "amount": shown_amount(topup.amount, topup.currency),
            "gateway": _gateway_name(topup.gateway),
            "balance": shown_amount(balance, tenant.currency),
            "number": topup.id,
            "link": panel_url(tenant, "/funds"),
        }
        subject = _("Payment received: +%(amount)s", **figures)
        body = _(
            "Thank you: we received your payment of %(amount)s through %(gateway)s and added "
            "it to your balance on %(panel)s.\n\n"
            "Top-up: #%(number)s\n"
            "Your balance now: %(balance)s\n\n"
            "Your wallet:\n%(link)s",
            **figures,
        )
        return subject, _signed(body, tenant)

    return _send_each([_recipient(customer, tenant)], compose, f"receipt of top-up {topup_id}") > 0


def warn_owners_of_negative_balance(tenant_id: int, topup_id: int, reversal: str) -> bool:
    """Email the panel's owners that a reversed payment left its customer's wallet below
    zero, unless they were told about that customer within the last day. True if sent."""
    with Session(db.engine) as session, tenant_scope(tenant_id):
        topup = session.get(Topup, topup_id)
        tenant = session.get(Tenant, tenant_id)
        if topup is None or tenant is None or topup.is_wholesale:
            return False
        customer = session.get(User, topup.customer_id)
        balance = _customer_balance(session, tenant, topup.customer_id)
        recipients = _staff(session, tenant, (OWNER,))
    if balance >= 0 or not recipients:
        return False
    redis_client = get_redis()
    key = negative_balance_throttle_key(customer.id)
    if not redis_client.set(key, "1", nx=True, ex=NEGATIVE_BALANCE_INTERVAL_SECONDS):
        return False
    taken = topup.disputed_amount if reversal == DISPUTE else topup.refunded_amount

    def compose() -> tuple[str, str]:
        figures = {
            "panel": tenant.name,
            "customer": _who(customer),
            "gateway": _gateway_name(topup.gateway),
            "amount": shown_amount(topup.amount, topup.currency),
            "taken": shown_amount(taken, topup.currency),
            "balance": shown_amount(balance, tenant.currency),
            "number": topup.id,
            "link": panel_url(tenant, f"/admin/customers/{customer.id}"),
        }
        if reversal == DISPUTE:
            happened = _(
                "%(customer)s disputed a payment of %(amount)s (top-up #%(number)s) with "
                "%(gateway)s, and the money was taken back: %(taken)s.",
                **figures,
            )
        else:
            happened = _(
                "%(gateway)s refunded %(taken)s of a payment of %(amount)s by %(customer)s "
                "(top-up #%(number)s), and it was taken back from the wallet.",
                **figures,
            )
        subject = _("%(panel)s: %(customer)s's balance is below zero", **figures)
        body = "\n\n".join(
            (
                happened,
                _(
                    "Balance now: %(balance)s\n\n"
                    "The customer cannot place orders while the balance is below zero; "
                    "orders already paid for go on.\n\n"
                    "See the customer here:\n%(link)s",
                    **figures,
                ),
                _("We send this at most once a day per customer."),
            )
        )
        return subject, _signed(body, tenant)

    sent = _send_each(recipients, compose, f"negative-balance email of top-up {topup_id}")
    if not sent:
        redis_client.delete(key)
    return sent > 0


# --- the parts every email shares -------------------------------------------------------------


def _approved(tenant: Tenant, topup: Topup, balance: Decimal) -> Callable[[], tuple[str, str]]:
    def compose() -> tuple[str, str]:
        figures = {
            "panel": tenant.name,
            "amount": shown_amount(topup.amount, topup.currency),
            "claimed": shown_amount(topup.claimed_amount or topup.amount, topup.currency),
            "reference": topup.reference,
            "balance": shown_amount(balance, tenant.currency),
            "link": panel_url(tenant, "/funds"),
        }
        subject = _("%(panel)s: your bank transfer of %(amount)s is approved", **figures)
        parts = [
            _(
                "We found your bank transfer (reference %(reference)s) and added %(amount)s "
                "to your balance on %(panel)s.",
                **figures,
            )
        ]
        if topup.claimed_amount is not None and topup.claimed_amount != topup.amount:
            parts.append(
                _(
                    "You reported %(claimed)s; %(amount)s is what reached the account, so "
                    "that is what we added.",
                    **figures,
                )
            )
        parts.append(_("Your balance now: %(balance)s\n\nYour wallet:\n%(link)s", **figures))
        return subject, _signed("\n\n".join(parts), tenant)

    return compose


def _rejected(tenant: Tenant, topup: Topup) -> Callable[[], tuple[str, str]]:
    def compose() -> tuple[str, str]:
        figures = {
            "panel": tenant.name,
            "amount": shown_amount(topup.claimed_amount or topup.amount, topup.currency),
            "reference": topup.reference,
            "reason": topup.note,
            "link": panel_url(tenant, "/funds"),
        }
        subject = _("%(panel)s: your bank transfer was not approved", **figures)
        body = _(
            "Your bank transfer of %(amount)s (reference %(reference)s) on %(panel)s was not "
            "approved, and your balance has not changed.\n\n"
            "Reason: %(reason)s\n\n"
            "If you did send the money, contact us with your bank's receipt.\n\n"
            "Your wallet:\n%(link)s",
            **figures,
        )
        return subject, _signed(body, tenant)

    return compose


def _staff(session: Session, tenant: Tenant, roles: tuple[str, ...]) -> list[Recipient]:
    users = session.scalars(
        select(User)
        .where(
            User.tenant_id == tenant.id,
            User.kind == STAFF,
            User.role.in_(roles),
            User.is_enabled.is_(True),
        )
        .order_by(User.id)
    ).all()
    return [_recipient(user, tenant) for user in users]


def _recipient(user: User, tenant: Tenant) -> Recipient:
    return user.email, user.locale if user.locale in LOCALES else tenant.default_locale


def _customer_balance(session: Session, tenant: Tenant, customer_id: int) -> Decimal:
    """The wallet's committed balance, read without creating the wallet (0 before it)."""
    key = LedgerAccount.natural_key(
        CUSTOMER_WALLET, tenant.currency, tenant_id=tenant.id, customer_id=customer_id
    )
    found = session.scalar(select(LedgerAccount.balance).where(LedgerAccount.key == key))
    return Decimal(0) if found is None else found


def _who(customer: User) -> str:
    return f"{customer.name} <{customer.email}>" if customer.name else customer.email


def _gateway_name(gateway: str) -> str:
    return {STRIPE: "Stripe", MIDTRANS: "Midtrans"}.get(gateway) or gateway_label(gateway)


def _signed(body: str, tenant: Tenant) -> str:
    return f"{body}\n\n-- \n{tenant.name}"


def _send_each(
    recipients: Iterable[Recipient], compose: Callable[[], tuple[str, str]], what: str
) -> int:
    """Send `compose()`'s email to each recipient in their language; how many were sent."""
    sent = 0
    for email, locale in recipients:
        try:
            with force_locale(locale):
                subject, body = compose()
            send_mail(email, subject, body)
            sent += 1
        except Exception:
            log.exception("%s to %s not sent", what, email)
    return sent
