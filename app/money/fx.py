"""Exchange rates kept by operators, and conversion at them.

A stored rate reads "1 BASE = rate QUOTE" (USD/IDR 16250 means one dollar buys 16250 rupiah).
Rates are platform data: any tenant, worker or request may read them; only operators set them.

Looking a rate up (`get_rate`):
- the same currency on both sides is 1;
- a stored BASE/QUOTE rate is used as is;
- else a stored QUOTE/BASE rate is inverted, to 24 significant digits;
- else `MissingFxRate`. Rates are never chained through a third currency.

One pair has one number: setting USD/IDR removes a stored IDR/USD, so the two directions can
never disagree.

Converting (`convert`, or `convert_at` with a rate the caller already holds):
- amount * rate is computed exactly and rounded once, at the end;
- to the target currency's ledger precision, half-up by default; a refund is converted with
  `ROUND_DOWN` so it never exceeds its source; a price per 1000 with `places=RATE_PLACES`.
An order snapshots the rate `get_rate` gave and converts with `convert_at`, so what was applied
can be recomputed from the order alone.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import User
from app.audit.services import record_audit
from app.errors import PasokError, ValidationError
from app.extensions import db
from app.money.amounts import require_decimal
from app.money.conversion import check_fx_rate, convert_at, inverse_rate, parse_fx_rate
from app.money.currency import Currency
from app.money.currency import currency as lookup_currency
from app.money.models import FxRate
from app.types import utcnow


class MissingFxRate(PasokError):
    def __init__(self, base: str, quote: str):
        super().__init__(_l("No exchange rate for %(base)s/%(quote)s", base=base, quote=quote))
        self.base = base
        self.quote = quote


def _stored(base: str, quote: str) -> FxRate | None:
    return db.session.scalar(select(FxRate).where(FxRate.base == base, FxRate.quote == quote))


def set_rate(base: str, quote: str, rate: Decimal | str, actor: User | str) -> FxRate:
    """Set 1 `base` = `rate` `quote` (the rate as a Decimal or as typed, "16250.5"), replacing
    any rate stored for the pair in either direction, and audit it. The caller commits.

    Run it as the platform or across tenants (the CLI, the operator console): the audit entry
    belongs to no tenant.
    """
    base, quote = lookup_currency(base).code, lookup_currency(quote).code
    if base == quote:
        raise ValidationError(_l("An exchange rate needs two different currencies"), "quote")
    rate = parse_fx_rate(rate) if isinstance(rate, str) else check_fx_rate(rate)
    row = _stored(base, quote)
    previous = None if row is None else row.rate
    if row is None:
        row = FxRate(base=base, quote=quote)
        db.session.add(row)
    row.rate = rate
    # Set even when the rate is unchanged: re-confirming a rate is news about its age.
    row.updated_at = utcnow()
    row.updated_by = actor.email if isinstance(actor, User) else actor
    reverse = _stored(quote, base)
    if reverse is not None:
        db.session.delete(reverse)
    record_audit(
        "fx.set",
        actor=actor,
        tenant_id=None,
        target=f"fx:{base}/{quote}",
        details={
            "rate": f"{rate:f}",
            "previous": None if previous is None else f"{previous:f}",
            "removed_reverse": None if reverse is None else f"{reverse.rate:f}",
        },
    )
    db.session.flush()
    return row


def get_rate(base: str | Currency, quote: str | Currency) -> Decimal:
    """How many `quote` one `base` buys (see the module docstring for the lookup order)."""
    base, quote = lookup_currency(base).code, lookup_currency(quote).code
    if base == quote:
        return Decimal(1)
    direct = _stored(base, quote)
    if direct is not None:
        return direct.rate
    reverse = _stored(quote, base)
    if reverse is not None:
        return inverse_rate(reverse.rate)
    raise MissingFxRate(base, quote)


def convert(
    amount: Decimal,
    from_currency: str | Currency,
    to_currency: str | Currency,
    *,
    places: int | None = None,
    rounding: str = ROUND_HALF_UP,
) -> Decimal:
    """`amount` in `to_currency` at the current rate, rounded as `convert_at` does."""
    require_decimal(amount)
    rate = get_rate(from_currency, to_currency)
    return convert_at(amount, rate, to_currency, places=places, rounding=rounding)


def list_rates() -> list[FxRate]:
    return list(db.session.scalars(select(FxRate).order_by(FxRate.base, FxRate.quote)))
