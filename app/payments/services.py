"""Top-ups: starting one at a gateway, and every change of its state, each credit or clawback
once.

Every change to a paid top-up happens with its row locked (`lock_topup`), so two deliveries of
one event, or a webhook racing the reconciliation, are applied one after the other; the
ledger's idempotency keys then make each movement happen at most once even if the lock were
lost. A top-up never moves back: pending → paid | failed | expired; paid → refunded | disputed;
disputed → paid when the dispute is won. A gateway that says "paid" for a top-up already
`failed` or `expired` here wins: the money arrived, so it is credited.
"""

from __future__ import annotations

import logging
import secrets
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.accounts.models import CUSTOMER, User
from app.audit.services import record_audit
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db
from app.ledger import clawback, credit_topup, platform_currency, restore_topup
from app.money.amounts import require_decimal
from app.money.gateways import midtrans_amount, stripe_minor_units
from app.panels.models import Tenant
from app.payments.images import reencode_image
from app.payments.models import (
    DISPUTED,
    FAILED,
    MANUAL,
    MIDTRANS,
    PAID,
    PENDING,
    REFUNDED,
    SETTLED_STATES,
    STRIPE,
    Topup,
)
from app.payments.notifications import (
    DISPUTE,
    REFUND,
    send_receipt_after_commit,
    tell_customer_of_review_after_commit,
    tell_staff_of_transfer_after_commit,
    warn_owners_of_negative_balance_after_commit,
)
from app.payments.settings import GatewayOffer, offered_gateways, shown_amount
from app.types import utcnow
from tenants.context import platform_scope
from tenants.scoping import belongs_to_current_scope

log = logging.getLogger(__name__)

MAX_REFERENCE = 200


class GatewayUnavailable(PasokError):
    """The gateway's API did not answer, or refused the call: nothing was charged."""


# --- who pays, and where -----------------------------------------------------------------


def wallet_currency(owner: User | Tenant) -> str:
    if isinstance(owner, Tenant):
        return platform_currency()
    return db.session.get(Tenant, owner.tenant_id).currency


def gateways_owner(owner: User | Tenant) -> int | None:
    """Whose gateways take the money: the panel's for its customers, the platform's for a
    panel's wholesale top-up."""
    return None if isinstance(owner, Tenant) else owner.tenant_id


def offers_for(owner: User | Tenant) -> list[GatewayOffer]:
    """The gateways `owner`'s wallet can be topped up through: the panel's for a customer;
    for a panel's wholesale wallet, the platform's (read as the platform: a panel's scope
    hides them), bank transfer aside, since staff of the platform do not review those."""
    if isinstance(owner, Tenant):
        with platform_scope():
            offers = offered_gateways(None, platform_currency())
        return [offer for offer in offers if offer.gateway != MANUAL]
    return offered_gateways(owner.tenant_id, wallet_currency(owner))


def owner_of(topup: Topup) -> User | Tenant:
    if topup.customer_id is None:
        return db.session.get(Tenant, topup.tenant_id)
    return db.session.get(User, topup.customer_id)


def return_url(topup: Topup, site_url: str) -> str:
    path = "admin/wallet" if topup.is_wholesale else "funds"
    return f"{site_url.rstrip('/')}/{path}?topup={topup.id}"


def notification_url(topup: Topup, site_url: str, gateway: str) -> str:
    """Where the gateway calls back: the panel's own host, or the platform's root domain for
    a wholesale top-up (paid through the platform's gateways)."""
    parts = urlsplit(site_url)
    if topup.is_wholesale:
        domain = current_app.config["PASOK_PLATFORM_DOMAIN"]
        parts = parts._replace(netloc=domain + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts._replace(path=f"/webhooks/{gateway}", query="", fragment=""))


# --- starting a top-up --------------------------------------------------------------------


def _checked_amount(amount: Decimal, gateway: str, currency: str, offer) -> Decimal:
    require_decimal(amount)
    if gateway == STRIPE:
        stripe_minor_units(amount, currency)
    elif gateway == MIDTRANS:
        midtrans_amount(amount, currency)
    elif amount <= 0:
        raise ValidationError(_l("A payment amount must be more than zero"), "amount")
    if amount < offer.min_amount:
        raise ValidationError(
            _l(
                "The smallest top-up is %(amount)s", amount=shown_amount(offer.min_amount, currency)
            ),
            "amount",
        )
    if amount > offer.max_amount:
        raise ValidationError(
            _l("The largest top-up is %(amount)s", amount=shown_amount(offer.max_amount, currency)),
            "amount",
        )
    return amount


def _offer(owner: User | Tenant, gateway: str):
    offer = next((o for o in offers_for(owner) if o.gateway == gateway), None)
    if offer is None:
        raise ValidationError(_l("That payment method is not available"), "gateway")
    return offer


def check_topup_amount(owner: User | Tenant, gateway: str, amount: Decimal) -> Decimal:
    """The amount, if `gateway` is offered to `owner` and takes it; a ValidationError if not.
    What a page checks before sending the customer on (start_topup and submit_manual_topup
    check the same)."""
    return _checked_amount(amount, gateway, wallet_currency(owner), _offer(owner, gateway))


def start_topup(owner: User | Tenant, gateway: str, amount: Decimal, *, site_url: str) -> Topup:
    """A top-up through Stripe or Midtrans: the row first (committed, so a crash after the
    gateway call leaves something for the reconciliation to find), then the gateway's checkout.
    The caller sends the browser to `checkout_url`."""
    from app.payments import midtrans_gateway, stripe_gateway

    if gateway == MANUAL:
        raise ValidationError(_l("Use the bank transfer form"), "gateway")
    offer = _offer(owner, gateway)
    currency = wallet_currency(owner)
    amount = _checked_amount(amount, gateway, currency, offer)
    account = offer.account
    topup = Topup(
        tenant_id=owner.id if isinstance(owner, Tenant) else owner.tenant_id,
        customer_id=None if isinstance(owner, Tenant) else owner.id,
        gateway=gateway,
        amount=amount,
        currency=currency,
        state=PENDING,
    )
    db.session.add(topup)
    db.session.flush()
    if gateway == MIDTRANS:
        # Ours, unique per Midtrans merchant even across databases that reuse ids.
        topup.external_id = f"PSK-{topup.id}-{secrets.token_hex(3)}"
    db.session.commit()
    try:
        if gateway == STRIPE:
            topup.external_id, topup.checkout_url = stripe_gateway.create_checkout(
                account, topup, return_url(topup, site_url), _panel_name(topup)
            )
        else:
            topup.checkout_url = midtrans_gateway.create_snap(
                account,
                topup,
                return_url(topup, site_url),
                notification_url(topup, site_url, MIDTRANS),
                _panel_name(topup),
            )
    except GatewayUnavailable as exc:
        topup.state = FAILED
        topup.note = str(exc)[:500]
        db.session.commit()
        raise
    db.session.commit()
    return topup


def _panel_name(topup: Topup) -> str:
    tenant = db.session.get(Tenant, topup.tenant_id)
    if topup.is_wholesale:
        return f"Pasok wholesale top-up: {tenant.name}"
    return f"{tenant.name}: balance top-up"


# --- manual transfer ----------------------------------------------------------------------


def submit_manual_topup(
    customer: User, amount: Decimal, reference: str, proof: bytes | None
) -> Topup:
    """A customer's bank transfer, waiting for staff to check it against the bank."""
    if customer.kind != CUSTOMER:
        raise ValidationError(_l("Only a customer tops up a wallet"), "customer")
    offer = _offer(customer, MANUAL)
    currency = wallet_currency(customer)
    amount = _checked_amount(amount, MANUAL, currency, offer)
    text = (reference or "").strip()
    if not text:
        raise ValidationError(_l("Give the transfer reference or the sender's name"), "reference")
    if len(text) > MAX_REFERENCE:
        raise ValidationError(_l("At most %(n)s characters", n=MAX_REFERENCE), "reference")
    image = reencode_image(proof) if proof else None
    topup = Topup(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        gateway=MANUAL,
        amount=amount,
        claimed_amount=amount,
        currency=currency,
        state=PENDING,
        reference=text,
        proof=image,
        proof_type="image/png" if image else None,
    )
    db.session.add(topup)
    db.session.flush()
    topup.external_id = f"manual-{topup.id}"
    tell_staff_of_transfer_after_commit(topup)
    db.session.commit()
    return topup


def approve_manual_topup(
    topup_id: int, *, actor: User, amount: Decimal | None = None
) -> tuple[Topup, bool]:
    """Credit a manual transfer staff found in the bank, at the amount they confirm; a second
    approval (a double click, a second tab) changes nothing and says so."""
    topup = lock_topup(topup_id)
    if topup is None or topup.gateway != MANUAL or topup.is_wholesale:
        raise NotFound(_l("No such top-up"))
    if topup.state in SETTLED_STATES:
        db.session.rollback()
        return topup, False
    if topup.state != PENDING:
        db.session.rollback()
        raise ValidationError(_l("This top-up was rejected"), "state")
    if amount is not None:
        require_decimal(amount)
        if amount <= 0:
            raise ValidationError(_l("A payment amount must be more than zero"), "amount")
        topup.amount = amount
    topup.reviewed_by = actor.email
    _credit(topup, payment_ref=topup.external_id, method=MANUAL, actor=actor)
    tell_customer_of_review_after_commit(topup)
    record_audit(
        "payments.manual.approve",
        actor=actor,
        tenant_id=topup.tenant_id,
        target=f"topup:{topup.id}",
        details={"amount": format(topup.amount, "f"), "claimed": format(topup.claimed_amount, "f")},
    )
    db.session.commit()
    return topup, True


def reject_manual_topup(topup_id: int, *, actor: User, reason: str) -> Topup:
    text = (reason or "").strip()
    if not text:
        raise ValidationError(_l("Say why it is rejected"), "reason")
    topup = lock_topup(topup_id)
    if topup is None or topup.gateway != MANUAL or topup.is_wholesale:
        raise NotFound(_l("No such top-up"))
    if topup.state != PENDING:
        db.session.rollback()
        raise ValidationError(_l("Only a pending top-up can be rejected"), "state")
    topup.state = FAILED
    topup.note = text[:500]
    topup.reviewed_by = actor.email
    record_audit(
        "payments.manual.reject",
        actor=actor,
        tenant_id=topup.tenant_id,
        target=f"topup:{topup.id}",
        details={"reason": text[:500]},
    )
    tell_customer_of_review_after_commit(topup)
    db.session.commit()
    return topup


# --- state changes, each once ---------------------------------------------------------------


def lock_topup(topup_id: int) -> Topup | None:
    """The top-up with its row locked for the rest of the transaction (scoped as the caller
    is: another tenant's top-up is None)."""
    return db.session.scalar(
        select(Topup)
        .where(Topup.id == topup_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _credit(topup: Topup, *, payment_ref: str | None, method: str | None, actor) -> None:
    credit_topup(owner_of(topup), topup.amount, topup.gateway, topup.external_id,
                 topup_id=topup.id, actor=actor)  # fmt: skip
    topup.state = PAID
    topup.payment_ref = payment_ref
    topup.payment_method = method
    topup.settled_at = utcnow()
    _resume_held_orders(topup)


def _resume_held_orders(topup: Topup) -> None:
    """A panel's wholesale wallet was credited: its orders waiting on hold go on."""
    if topup.is_wholesale:
        from app.orders.services import resume_on_hold_orders

        resume_on_hold_orders(topup.tenant_id)


def settle_paid(
    topup: Topup, paid: Decimal, currency: str, *, payment_ref: str | None, method: str | None
) -> str:
    """The gateway says the top-up is paid (`paid` in `currency`): credit it once. A paid
    amount that is not the top-up's is not credited; staff see it."""
    if topup.state in SETTLED_STATES:
        return "already settled"
    if paid != topup.amount or currency.upper() != topup.currency:
        topup.note = f"gateway reported {paid} {currency.upper()}, expected {topup.amount}"
        log.warning("top-up %s: %s", topup.id, topup.note)
        return "amount mismatch"
    _credit(topup, payment_ref=payment_ref, method=method, actor="system")
    send_receipt_after_commit(topup)
    return "credited"


def settle_unpaid(topup: Topup, state: str, note: str = "") -> str:
    """Failed or expired at the gateway: only a pending top-up moves."""
    if topup.state != PENDING:
        return f"stays {topup.state}"
    topup.state = state
    topup.note = note[:500]
    return state


def settle_refund(topup: Topup, refunded_total: Decimal, *, cause: str) -> str:
    """The gateway has refunded `refunded_total` of the payment in all: claw back what has
    not been clawed back yet."""
    if topup.state not in SETTLED_STATES:
        return "not credited"
    delta = min(refunded_total, topup.amount) - topup.refunded_amount
    if delta <= 0:
        return "already clawed back"
    clawback(owner_of(topup), delta, topup.gateway, topup.external_id,
             f"Refunded through {topup.gateway}", cause=cause)  # fmt: skip
    topup.refunded_amount += delta
    if topup.refunded_amount >= topup.amount:
        topup.state = REFUNDED
    warn_owners_of_negative_balance_after_commit(topup, REFUND)
    return "clawed back"


def settle_dispute(topup: Topup, dispute_id: str, amount: Decimal, *, funds_lost: bool) -> str:
    """A dispute's current state: while it is open or once lost the money is clawed back;
    once won it is given back. Re-reading the dispute makes the order of its events moot."""
    if topup.state not in SETTLED_STATES:
        return "not credited"
    owner = owner_of(topup)
    if funds_lost:
        if topup.disputed_amount > 0:
            return "already clawed back"
        take = min(amount, topup.amount - topup.refunded_amount)
        if take <= 0:
            return "nothing left to claw back"
        clawback(owner, take, topup.gateway, topup.external_id,
                 f"Disputed through {topup.gateway}", cause=f"dispute-{dispute_id}")  # fmt: skip
        topup.disputed_amount = take
        topup.state = DISPUTED
        warn_owners_of_negative_balance_after_commit(topup, DISPUTE)
        return "clawed back"
    if topup.disputed_amount <= 0:
        return "nothing to give back"
    restore_topup(
        owner,
        topup.disputed_amount,
        topup.gateway,
        topup.external_id,
        f"Dispute won through {topup.gateway}",
        cause=f"dispute-{dispute_id}",
    )
    topup.disputed_amount = Decimal(0)
    topup.state = REFUNDED if topup.refunded_amount >= topup.amount else PAID
    _resume_held_orders(topup)
    return "given back"


# --- reading ----------------------------------------------------------------------------------


def find_topup(topup_id: int) -> Topup | None:
    """The top-up, if it is in the current scope (the identity map may hold another
    tenant's, which `get` would return without SQL)."""
    topup = db.session.get(Topup, topup_id) if _plain_id(topup_id) else None
    return topup if belongs_to_current_scope(topup) else None


def _plain_id(value) -> bool:
    return isinstance(value, int) and 0 < value < 2**31


def _owned_by(owner: User | Tenant):
    if isinstance(owner, Tenant):
        return (Topup.tenant_id == owner.id, Topup.customer_id.is_(None))
    return (Topup.tenant_id == owner.tenant_id, Topup.customer_id == owner.id)


def topup_history(owner: User | Tenant, *, offset: int, limit: int) -> list[Topup]:
    return list(
        db.session.scalars(
            select(Topup)
            .where(*_owned_by(owner))
            .order_by(Topup.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def count_topups(owner: User | Tenant) -> int:
    return db.session.scalar(select(func.count(Topup.id)).where(*_owned_by(owner)))


def _review_filter(tenant_id: int, state: str | None, gateway: str | None) -> list:
    terms = [Topup.tenant_id == tenant_id, Topup.customer_id.is_not(None)]
    if state:
        terms.append(Topup.state == state)
    if gateway:
        terms.append(Topup.gateway == gateway)
    return terms


def topups_for_review(
    tenant_id: int, *, state: str | None, gateway: str | None, offset: int, limit: int
) -> list[Topup]:
    return list(
        db.session.scalars(
            select(Topup)
            .where(*_review_filter(tenant_id, state, gateway))
            .order_by(Topup.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )


def count_topups_for_review(tenant_id: int, *, state: str | None, gateway: str | None) -> int:
    return db.session.scalar(
        select(func.count(Topup.id)).where(*_review_filter(tenant_id, state, gateway))
    )
