"""Gateway settings: a panel's own Stripe, Midtrans and manual transfer (or, with no tenant,
the platform's, used for tenants' wholesale top-ups), and what of them a wallet is offered.

Every change is audited with the secrets masked; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import User
from app.audit.services import record_audit
from app.crypto import mask
from app.errors import ValidationError
from app.extensions import db
from app.money.amounts import format_amount, places_of, require_decimal
from app.money.currency import IDR
from app.money.currency import currency as lookup_currency
from app.payments.images import reencode_image
from app.payments.models import (
    DISPUTED,
    EXPIRED,
    FAILED,
    MANUAL,
    MIDTRANS,
    PAID,
    PENDING,
    REFUNDED,
    STRIPE,
    GatewayAccount,
    owner_key,
)

MAX_TEXT = 4000
MAX_KEY = 200

# What a top-up may be unless the panel sets its own limits, per wallet currency.
DEFAULT_LIMITS = {
    "USD": (Decimal("1"), Decimal("10000")),
    "IDR": (Decimal("10000"), Decimal("100000000")),
}


@dataclass(frozen=True)
class GatewayOffer:
    """A gateway a wallet can be topped up through, with its limits in the wallet currency."""

    gateway: str
    label: str
    min_amount: Decimal
    max_amount: Decimal
    account: GatewayAccount


def gateway_label(gateway: str) -> str:
    labels = {
        STRIPE: _l("Card (Stripe)"),
        MIDTRANS: _l("QRIS, GoPay, bank transfer (Midtrans)"),
        MANUAL: _l("Manual bank transfer"),
    }
    return str(labels.get(gateway, gateway))


def amount_digits(amount: Decimal, currency: str) -> str:
    """ "25.50", "50000": a top-up amount or limit with the places a price shows, and more
    only when the amount has them, so it is always exact."""
    places = max(lookup_currency(currency).price_places, places_of(amount))
    return format_amount(amount, currency, places=places)


def shown_amount(amount: Decimal, currency: str) -> str:
    """ "USD 25.50", "IDR 50000"."""
    return f"{lookup_currency(currency).code} {amount_digits(amount, currency)}"


def state_label(state: str) -> str:
    """A top-up's state as people read it, in their language."""
    labels = {
        PENDING: _l("Pending"),
        PAID: _l("Paid"),
        FAILED: _l("Failed"),
        EXPIRED: _l("Expired"),
        REFUNDED: _l("Refunded"),
        DISPUTED: _l("Disputed"),
    }
    return str(labels.get(state, state))


def masked(secret: str | None) -> str:
    return "" if not secret else mask(secret)


def gateway_account(tenant_id: int | None, gateway: str) -> GatewayAccount | None:
    return db.session.scalar(
        select(GatewayAccount).where(
            GatewayAccount.owner == owner_key(tenant_id), GatewayAccount.gateway == gateway
        )
    )


def gateway_accounts(tenant_id: int | None) -> dict[str, GatewayAccount]:
    rows = db.session.scalars(
        select(GatewayAccount).where(GatewayAccount.owner == owner_key(tenant_id))
    )
    return {row.gateway: row for row in rows}


def takes_currency(gateway: str, currency: str) -> bool:
    """Midtrans takes rupiah only; Stripe and a bank transfer take any wallet currency."""
    return gateway != MIDTRANS or lookup_currency(currency) is IDR


def is_configured(account: GatewayAccount) -> bool:
    if account.gateway == STRIPE:
        return bool(account.secret_key and account.webhook_secret)
    if account.gateway == MIDTRANS:
        return bool(account.secret_key and account.client_key)
    return bool(account.instructions or account.bank_accounts or account.qris_image)


def limits_of(account: GatewayAccount, currency: str) -> tuple[Decimal, Decimal]:
    low, high = DEFAULT_LIMITS[lookup_currency(currency).code]
    return (
        account.min_amount if account.min_amount is not None else low,
        account.max_amount if account.max_amount is not None else high,
    )


def offered_gateways(tenant_id: int | None, currency: str) -> list[GatewayOffer]:
    """The enabled, configured gateways that take `currency`, in a fixed order."""
    accounts = gateway_accounts(tenant_id)
    offers = []
    for gateway in (MIDTRANS, STRIPE, MANUAL):
        account = accounts.get(gateway)
        if (
            account is None
            or not account.enabled
            or not is_configured(account)
            or not takes_currency(gateway, currency)
        ):
            continue
        low, high = limits_of(account, currency)
        offers.append(GatewayOffer(gateway, gateway_label(gateway), low, high, account))
    return offers


def _account_for_update(tenant_id: int | None, gateway: str) -> GatewayAccount:
    account = gateway_account(tenant_id, gateway)
    if account is None:
        account = GatewayAccount(
            tenant_id=tenant_id, owner=owner_key(tenant_id), gateway=gateway, enabled=True
        )
        db.session.add(account)
    return account


def _key(value: str | None, field: str, *, prefixes: tuple[str, ...] = ()) -> str:
    text = (value or "").strip()
    if len(text) > MAX_KEY or any(c.isspace() for c in text):
        raise ValidationError(_l("That does not look like a key"), field)
    if prefixes and text and not text.startswith(prefixes):
        raise ValidationError(
            _l("The key starts with %(prefix)s", prefix=" or ".join(prefixes)), field
        )
    return text


def _kept(new: str, stored: str | None, field: str) -> str:
    """A blank secret keeps the stored one; with none stored it is required."""
    if new:
        return new
    if stored:
        return stored
    raise ValidationError(_l("This key is required"), field)


def _api_base(value: str | None) -> str | None:
    text = (value or "").strip().rstrip("/")
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(text) > 300:
        raise ValidationError(_l("The API base is an http(s) URL"), "api_base")
    return text


def _text(value: str | None, field: str) -> str:
    text = (value or "").strip()
    if len(text) > MAX_TEXT:
        raise ValidationError(_l("At most %(n)s characters", n=MAX_TEXT), field)
    return text


def _audit(account: GatewayAccount, actor: User | str, details: dict) -> None:
    db.session.flush()
    record_audit(
        "payments.gateway.set",
        actor=actor,
        tenant_id=account.tenant_id,
        target=f"{account.owner}:{account.gateway}",
        details=details,
    )


def set_stripe(
    tenant_id: int | None,
    *,
    secret_key: str | None,
    webhook_secret: str | None,
    api_base: str | None = None,
    actor: User | str,
) -> GatewayAccount:
    """Replace the Stripe settings (a blank secret keeps the stored one)."""
    secret = _key(secret_key, "secret_key", prefixes=("sk_", "rk_"))
    signing = _key(webhook_secret, "webhook_secret", prefixes=("whsec_",))
    base = _api_base(api_base)
    account = _account_for_update(tenant_id, STRIPE)
    account.secret_key = _kept(secret, account.secret_key, "secret_key")
    account.webhook_secret = _kept(signing, account.webhook_secret, "webhook_secret")
    account.api_base = base
    _audit(
        account,
        actor,
        {"secret_key": masked(account.secret_key), "webhook_secret": masked(signing or None),
         "api_base": base},
    )  # fmt: skip
    return account


def set_midtrans(
    tenant_id: int | None,
    *,
    server_key: str | None,
    client_key: str | None,
    production: bool = False,
    api_base: str | None = None,
    actor: User | str,
) -> GatewayAccount:
    """Replace the Midtrans settings (a blank server key keeps the stored one)."""
    server = _key(server_key, "server_key")
    client = _key(client_key, "client_key")
    if not client:
        raise ValidationError(_l("This key is required"), "client_key")
    base = _api_base(api_base)
    account = _account_for_update(tenant_id, MIDTRANS)
    account.secret_key = _kept(server, account.secret_key, "server_key")
    account.client_key = client
    account.production = bool(production)
    account.api_base = base
    _audit(
        account,
        actor,
        {"server_key": masked(account.secret_key), "client_key": client,
         "production": account.production, "api_base": base},
    )  # fmt: skip
    return account


def set_manual(
    tenant_id: int | None,
    *,
    instructions: str | None,
    bank_accounts: str | None,
    qris_image: bytes | None = None,
    remove_qris: bool = False,
    actor: User | str,
) -> GatewayAccount:
    """Replace the manual transfer settings; an uploaded QRIS image is checked and
    re-encoded."""
    text = _text(instructions, "instructions")
    banks = _text(bank_accounts, "bank_accounts")
    image = reencode_image(qris_image, "qris_image") if qris_image else None
    account = _account_for_update(tenant_id, MANUAL)
    account.instructions = text
    account.bank_accounts = banks
    if image is not None:
        account.qris_image = image
    elif remove_qris:
        account.qris_image = None
    if not is_configured(account):
        raise ValidationError(
            _l("Give instructions, a bank account or a QRIS image"), "instructions"
        )
    _audit(account, actor, {"qris_image": account.qris_image is not None})
    return account


def set_limits(
    tenant_id: int | None,
    gateway: str,
    *,
    min_amount: Decimal | None,
    max_amount: Decimal | None,
    actor: User | str,
) -> GatewayAccount:
    """The least and most one top-up may be through `gateway` (None: the default)."""
    for value, field in ((min_amount, "min_amount"), (max_amount, "max_amount")):
        if value is not None and require_decimal(value, field) <= 0:
            raise ValidationError(_l("A limit is more than zero"), field)
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise ValidationError(_l("The minimum is more than the maximum"), "min_amount")
    account = _require_account(tenant_id, gateway)
    account.min_amount, account.max_amount = min_amount, max_amount
    _audit(account, actor, {"min_amount": _shown(min_amount), "max_amount": _shown(max_amount)})
    return account


def set_enabled(
    tenant_id: int | None, gateway: str, enabled: bool, *, actor: User | str
) -> GatewayAccount:
    account = _require_account(tenant_id, gateway)
    account.enabled = bool(enabled)
    _audit(account, actor, {"enabled": account.enabled})
    return account


def _require_account(tenant_id: int | None, gateway: str) -> GatewayAccount:
    account = gateway_account(tenant_id, gateway)
    if account is None:
        raise ValidationError(_l("Set the gateway up first"), "gateway")
    return account


def _shown(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
