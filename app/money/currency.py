"""The currencies Pasok keeps money in, with the precision each is kept, shown and paid in."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from app.errors import ValidationError


@dataclass(frozen=True)
class Currency:
    code: str
    name: str
    # Balances, charges and refunds are kept to this many places; the API's `charge` and
    # `balance` show all of them (panels show USD charges as "0.27819").
    ledger_places: int
    # Price lists show rates with at least this many places.
    price_places: int
    # Stripe's smallest unit: amount * 10**stripe_places. Stripe counts IDR as two-decimal.
    stripe_places: int

    @property
    def ledger_unit(self) -> Decimal:
        """The smallest amount the ledger keeps, e.g. 0.00001 USD."""
        return Decimal(1).scaleb(-self.ledger_places)


USD = Currency("USD", "US dollar", ledger_places=5, price_places=2, stripe_places=2)
IDR = Currency("IDR", "Indonesian rupiah", ledger_places=2, price_places=0, stripe_places=2)

CURRENCIES: dict[str, Currency] = {c.code: c for c in (USD, IDR)}


def currency(code: str | Currency) -> Currency:
    """The currency for an ISO code (any case, surrounding spaces ignored)."""
    if isinstance(code, Currency):
        return code
    if not isinstance(code, str):
        raise TypeError(f"a currency code is a string, not {type(code).__name__}")
    found = CURRENCIES.get(code.strip().upper())
    if found is None:
        raise ValidationError(
            _l(
                "Unknown currency '%(code)s' (currencies: %(choices)s)",
                code=code.strip(),
                choices=", ".join(CURRENCIES),
            ),
            "currency",
        )
    return found
