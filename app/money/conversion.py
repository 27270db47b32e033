"""Converting at a known exchange rate: arithmetic only. Rates are looked up in `app.money.fx`."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.money.amounts import (
    EXACT,
    parse_plain_decimal,
    places_of,
    quantize,
    require_decimal,
)
from app.money.currency import Currency
from app.money.currency import currency as lookup_currency

# An operator's rate: "1 BASE = rate QUOTE", up to 12 places (0.000061538462 USD per rupiah).
FX_RATE_PLACES = 12
MAX_FX_RATE = Decimal(10) ** 12
# An inverse rate is kept to 24 significant digits: its error is far below a micro-unit on any
# amount Pasok stores, and it fits an `ExactDecimal` column for snapshots.
INVERSE_DIGITS = 24
INVERSE = Context(prec=INVERSE_DIGITS, rounding=ROUND_HALF_UP)


def check_fx_rate(rate: Decimal, field: str = "rate") -> Decimal:
    """`rate` if an operator may set it: positive, at most 12 places, below 10¹²."""
    require_decimal(rate, "rate")
    if rate <= 0:
        raise ValidationError(_l("An exchange rate must be more than zero"), field)
    if places_of(rate) > FX_RATE_PLACES:
        raise ValidationError(
            _l("An exchange rate has at most %(places)s decimal places", places=FX_RATE_PLACES),
            field,
        )
    if rate >= MAX_FX_RATE:
        raise ValidationError(_l("The exchange rate is too large"), field)
    return rate


def parse_fx_rate(text: str, field: str = "rate") -> Decimal:
    """An exchange rate typed by an operator ("16250.5"), checked as `check_fx_rate` does."""
    return check_fx_rate(parse_plain_decimal(text, allow_negative=True, field=field), field)


def inverse_rate(rate: Decimal) -> Decimal:
    """1 / rate to 24 significant digits, as a plain decimal (16000, not 1.6E+4)."""
    require_decimal(rate, "rate")
    if rate <= 0:
        raise ValueError(f"only a positive rate has an inverse, got {rate}")
    inverse = INVERSE.divide(Decimal(1), rate)
    return inverse.quantize(Decimal(1)) if inverse.as_tuple().exponent > 0 else inverse


def convert_at(
    amount: Decimal,
    rate: Decimal,
    to_currency: str | Currency,
    *,
    places: int | None = None,
    rounding: str = ROUND_HALF_UP,
) -> Decimal:
    """amount * rate, computed exactly and rounded once: to the target currency's ledger
    precision (or `places`, e.g. `RATE_PLACES` for a price per 1000) with `rounding`.

    Half-up suits prices and charges; convert a refund with `ROUND_DOWN` so it never exceeds
    the amount it came from.
    """
    require_decimal(amount)
    require_decimal(rate, "rate")
    if rate <= 0:
        raise ValueError(f"an exchange rate must be positive, got {rate}")
    target_places = lookup_currency(to_currency).ledger_places if places is None else places
    return quantize(EXACT.multiply(amount, rate), target_places, rounding)
