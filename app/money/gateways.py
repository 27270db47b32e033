"""Amounts as the payment gateways take them: exact integers, or a refusal.

A gateway amount is never rounded here: an amount a gateway cannot represent would charge the
customer something other than what the ledger credits, so it is refused with a readable message.
"""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.money.amounts import EXACT, places_of, require_decimal
from app.money.currency import IDR, Currency
from app.money.currency import currency as lookup_currency


def _positive(amount: Decimal) -> Decimal:
    require_decimal(amount)
    if amount <= 0:
        raise ValidationError(_l("A payment amount must be more than zero"), "amount")
    return amount


def stripe_minor_units(amount: Decimal, currency: str | Currency) -> int:
    """Stripe's `amount`: the smallest currency unit, 10.50 USD → 1050.

    Stripe counts IDR as a two-decimal currency, so 15000 IDR → 1500000.
    """
    cur = lookup_currency(currency)
    _positive(amount)
    if places_of(amount) > cur.stripe_places:
        raise ValidationError(
            _l(
                "Stripe takes %(code)s amounts with at most %(places)s decimal places",
                code=cur.code,
                places=cur.stripe_places,
            ),
            "amount",
        )
    return int(amount.scaleb(cur.stripe_places, context=EXACT))


def midtrans_amount(amount: Decimal, currency: str | Currency = IDR) -> int:
    """Midtrans's `gross_amount`: whole rupiah. Midtrans takes IDR only."""
    if lookup_currency(currency) is not IDR:
        raise ValidationError(_l("Midtrans takes only IDR"), "currency")
    _positive(amount)
    if places_of(amount) > 0:
        raise ValidationError(_l("Midtrans takes whole rupiah, without decimals"), "amount")
    return int(amount)
