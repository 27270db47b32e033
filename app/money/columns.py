"""Column types that keep amounts and rates exact on SQLite and PostgreSQL alike.

SQLite has no exact decimal type: its NUMERIC goes through a float and loses digits. So amounts
are stored as integer micro-units, and the few values that need more than 6 places (FX rates)
as their decimal text.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, String
from sqlalchemy.types import TypeDecorator

from app.money.amounts import from_micros, require_decimal, to_micros


class Micros(TypeDecorator):
    """A Decimal amount or rate with at most 6 places, stored as a BIGINT of micro-units.

    Arithmetic and comparisons in SQL stay correct, since both sides are micro-units:
    `Wallet.balance - amount` and `Wallet.balance >= amount` bind `amount` through this type.
    A value with more than 6 places is refused, never rounded.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_literal_param(self, value: Decimal | None, dialect) -> str:
        return "NULL" if value is None else str(to_micros(value))

    def process_result_value(self, value: int | None, dialect) -> Decimal | None:
        return None if value is None else from_micros(int(value))


class ExactDecimal(TypeDecorator):
    """A Decimal of any precision, stored as its plain decimal text ("0.000061538462").

    For values read and written whole (FX rates and their snapshots): SQL cannot compute with
    them or order them numerically.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int = 60):
        super().__init__(length)

    def process_bind_param(self, value: Decimal | None, dialect) -> str | None:
        if value is None:
            return None
        text = f"{require_decimal(value, 'value'):f}"
        if len(text) > self.impl.length:
            raise ValueError(f"{text} is longer than {self.impl.length} characters")
        return text

    def process_result_value(self, value: str | None, dialect) -> Decimal | None:
        return None if value is None else Decimal(value)
