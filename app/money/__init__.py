"""Money: currencies, exact amounts, rounding, column types and conversion arithmetic.

Everything here is pure and imports no model, so models may use `Micros` without cycles.
Exchange rates kept in the database are in `app.money.fx` (service) and `app.money.models`.
"""

from app.money.amounts import (
    MICRO_PLACES,
    RATE_PLACES,
    charge,
    format_amount,
    format_rate,
    from_micros,
    parse_amount,
    parse_rate,
    pro_rata_refund,
    refund_amount,
    round_rate,
    to_micros,
)
from app.money.columns import ExactDecimal, Micros
from app.money.conversion import (
    FX_RATE_PLACES,
    check_fx_rate,
    convert_at,
    inverse_rate,
    parse_fx_rate,
)
from app.money.currency import CURRENCIES, IDR, USD, Currency, currency
from app.money.gateways import midtrans_amount, stripe_minor_units
from app.money.rounding import RoundingPolicy, apply_rounding, parse_rounding_policy

__all__ = [
    "CURRENCIES",
    "FX_RATE_PLACES",
    "IDR",
    "MICRO_PLACES",
    "RATE_PLACES",
    "USD",
    "Currency",
    "ExactDecimal",
    "Micros",
    "RoundingPolicy",
    "apply_rounding",
    "charge",
    "check_fx_rate",
    "convert_at",
    "currency",
    "format_amount",
    "format_rate",
    "from_micros",
    "inverse_rate",
    "midtrans_amount",
    "parse_amount",
    "parse_fx_rate",
    "parse_rate",
    "parse_rounding_policy",
    "pro_rata_refund",
    "refund_amount",
    "round_rate",
    "stripe_minor_units",
    "to_micros",
]
