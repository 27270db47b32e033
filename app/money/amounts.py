"""Exact amounts: storage in micro-units, the rounding of charges and refunds, parsing and display.

Amounts and rates are `decimal.Decimal`; a float anywhere in money is a bug and is refused with
a `TypeError`. Quantities are ints. Programming mistakes (a float, an amount with more places
than storage keeps) raise `TypeError`/`ValueError`; bad input from a person raises
`app.errors.ValidationError` with a readable English message.

Rounding rules:
- A charge is `rate * quantity / 1000`, rounded half-up to the currency's ledger precision.
- A refund is rounded toward zero, so it never exceeds what was charged.
- A rate (price per 1000) keeps 6 decimal places, rounded half-up.
"""

from __future__ import annotations

import re
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.money.currency import Currency
from app.money.currency import currency as lookup_currency

MICRO_PLACES = 6
RATE_PLACES = 6
# Storage is a signed 64-bit count of micro-units.
MAX_MICROS = 2**63 - 1
# The largest amount a person may type: far above any real top-up, far below storage limits.
MAX_INPUT = Decimal(10) ** 12

# Every money operation runs in this context, never the thread's default, so that a
# `getcontext().prec = 5` elsewhere cannot change an amount. Its precision exceeds any product
# of an amount and a rate here, so multiplication and quantizing are exact.
EXACT = Context(prec=80, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])

PLAIN_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def require_decimal(value: object, what: str = "amount") -> Decimal:
    """`value` itself if it is a finite Decimal; anything else is a programming error."""
    if isinstance(value, float):
        raise TypeError(f"{what} is a float ({value!r}); money is Decimal, never float")
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, not {value}")
    return value


def require_quantity(value: object, what: str = "quantity") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return value


def places_of(value: Decimal) -> int:
    """Decimal places that carry a digit: places_of(Decimal("1.2500")) == 2."""
    _, digits, exponent = value.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def quantize(value: Decimal, places: int, rounding: str) -> Decimal:
    result = value.quantize(Decimal(1).scaleb(-places), rounding=rounding, context=EXACT)
    return result.copy_abs() if result.is_zero() else result


def to_micros(amount: Decimal) -> int:
    """The amount as an integer count of 10⁻⁶ units, exactly.

    More than 6 places is refused, not rounded: which way to round is the caller's decision.
    An int is refused too, since it could mean whole units or micro-units.
    """
    require_decimal(amount)
    if places_of(amount) > MICRO_PLACES:
        raise ValueError(f"{amount} has more than {MICRO_PLACES} decimal places")
    micros = int(amount.scaleb(MICRO_PLACES, context=EXACT))
    if abs(micros) > MAX_MICROS:
        raise ValueError(f"{amount} is too large to store")
    return micros


def from_micros(micros: int) -> Decimal:
    """The Decimal amount for a count of micro-units (always with 6 places)."""
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise TypeError(f"micro-units are an int, not {type(micros).__name__}")
    return Decimal(micros).scaleb(-MICRO_PLACES, context=EXACT)


def _units(count: int, places: int) -> Decimal:
    return Decimal(count).scaleb(-places, context=EXACT)


def charge(rate_per_1000: Decimal, quantity: int, currency: str | Currency) -> Decimal:
    """What `quantity` units cost at `rate_per_1000`: rate * quantity / 1000, rounded half-up
    to the currency's ledger precision (0.278185 USD → 0.27819).

    The rate keeps at most 6 places (see `round_rate`); more is refused rather than guessed.
    """
    places = lookup_currency(currency).ledger_places
    rate = require_decimal(rate_per_1000, "rate")
    if rate < 0:
        raise ValueError(f"a rate cannot be negative, got {rate}")
    if places_of(rate) > RATE_PLACES:
        raise ValueError(f"rate {rate} has more than {RATE_PLACES} places; use round_rate()")
    quantity = require_quantity(quantity)
    # Integer arithmetic: rate in micro-units * quantity, divided by 1000 and by the micro-units
    # per ledger unit, with half-up as floor((2n + d) / 2d) for non-negative n.
    numerator = to_micros(rate) * quantity
    denominator = 1000 * 10 ** (MICRO_PLACES - places)
    return _units((2 * numerator + denominator) // (2 * denominator), places)


def refund_amount(amount: Decimal, currency: str | Currency) -> Decimal:
    """An exact refund (say, a converted or computed share) rounded toward zero to the ledger
    precision, so a refund never exceeds the amount it came from."""
    places = lookup_currency(currency).ledger_places
    return quantize(require_decimal(amount), places, ROUND_DOWN)


def pro_rata_refund(
    charge: Decimal, quantity: int, remains: int, currency: str | Currency
) -> Decimal:
    """The share of `charge` for the `remains` undelivered units of `quantity`:
    charge * remains / quantity, rounded toward zero to the ledger precision.

    It is 0 when nothing remains and exactly `charge` when nothing was delivered; in between it
    never exceeds the exact share, so the seller keeps any rounding remainder. `remains` outside
    0..quantity is refused: clamp a provider's odd report before refunding.
    """
    places = lookup_currency(currency).ledger_places
    charged = require_decimal(charge, "charge")
    if charged < 0:
        raise ValueError(f"a charge cannot be negative, got {charged}")
    quantity = require_quantity(quantity)
    remains = require_quantity(remains, "remains")
    if quantity == 0:
        raise ValueError("quantity must be positive")
    if remains > quantity:
        raise ValueError(f"remains {remains} exceeds quantity {quantity}")
    if remains == quantity:
        return charged
    numerator = to_micros(charged) * remains
    denominator = quantity * 10 ** (MICRO_PLACES - places)
    return _units(numerator // denominator, places)


def round_rate(rate: Decimal) -> Decimal:
    """A rate (price per 1000) rounded half-up to the 6 places rates keep."""
    return quantize(require_decimal(rate, "rate"), RATE_PLACES, ROUND_HALF_UP)


def parse_plain_decimal(text: object, *, allow_negative: bool, field: str) -> Decimal:
    """Digits with at most one '.', nothing else: no exponents, no NaN, no separators."""
    if isinstance(text, float):
        raise TypeError(f"{field} is a float ({text!r}); parse the text the person typed")
    if not isinstance(text, str):
        raise TypeError(f"{field} must be text, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValidationError(_l("Enter a number"), field)
    if "," in text:
        raise ValidationError(
            _l("Write numbers without thousands separators, with '.' for decimals (e.g. 1000.50)"),
            field,
        )
    match = PLAIN_DECIMAL.fullmatch(text) if len(text) <= 40 else None
    if match is None:
        raise ValidationError(
            _l("'%(text)s' is not a number: use digits and one '.' (e.g. 25.50)", text=text[:20]),
            field,
        )
    if match.group(1) and not allow_negative:
        raise ValidationError(_l("A negative number is not allowed here"), field)
    value = Decimal(text)
    if abs(value) >= MAX_INPUT:
        raise ValidationError(_l("The number is too large"), field)
    return value.copy_abs() if value.is_zero() else value


def parse_amount(
    text: str,
    currency: str | Currency,
    *,
    allow_negative: bool = False,
    places: int | None = None,
    field: str = "amount",
) -> Decimal:
    """An amount typed into a form or the CLI ("25.50") as an exact Decimal.

    Strict on purpose: digits and at most one '.', so "1,000.00", "1e3", "NaN" and "25,5" are
    refused rather than guessed. At most `places` decimals (the currency's ledger precision by
    default); a negative amount only with `allow_negative`.
    """
    cur = lookup_currency(currency)
    value = parse_plain_decimal(text, allow_negative=allow_negative, field=field)
    allowed = cur.ledger_places if places is None else places
    if places_of(value) > allowed:
        if allowed == 0:
            message = _l("%(code)s amounts have no decimal places", code=cur.code)
        else:
            message = _l(
                "%(code)s amounts have at most %(places)s decimal places",
                code=cur.code,
                places=allowed,
            )
        raise ValidationError(message, field)
    return value


def parse_rate(text: str, *, field: str = "rate") -> Decimal:
    """A price per 1000 typed by a person: a non-negative decimal with at most 6 places."""
    value = parse_plain_decimal(text, allow_negative=False, field=field)
    if places_of(value) > RATE_PLACES:
        raise ValidationError(
            _l("A rate has at most %(places)s decimal places", places=RATE_PLACES), field
        )
    return value


def format_amount(amount: Decimal, currency: str | Currency, places: int | None = None) -> str:
    """Plain digits for display and the API: "0.27819", "15000.00"; no symbol, no separators.

    `places` defaults to the currency's ledger precision; fewer places round half-up.
    """
    cur = lookup_currency(currency)
    shown = cur.ledger_places if places is None else places
    return f"{quantize(require_decimal(amount), shown, ROUND_HALF_UP):f}"


def format_rate(rate: Decimal, currency: str | Currency) -> str:
    """A rate for a price list: at least the currency's price places ("0.90", "15000"), and
    more only when the rate has them ("0.0125")."""
    cur = lookup_currency(currency)
    rounded = round_rate(rate)
    return f"{quantize(rounded, max(cur.price_places, places_of(rounded)), ROUND_HALF_UP):f}"
