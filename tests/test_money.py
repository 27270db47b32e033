"""Money: exact amounts, the rounding of charges and refunds, display policies, gateway amounts,
column types and FX rates."""

import math
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text, update
from sqlalchemy.exc import StatementError

from app.audit.models import AuditEntry
from app.errors import PasokError, ValidationError
from app.extensions import db
from app.money import (
    IDR,
    RATE_PLACES,
    USD,
    ExactDecimal,
    Micros,
    apply_rounding,
    charge,
    convert_at,
    currency,
    format_amount,
    format_rate,
    from_micros,
    inverse_rate,
    midtrans_amount,
    parse_amount,
    parse_fx_rate,
    parse_rate,
    parse_rounding_policy,
    pro_rata_refund,
    refund_amount,
    round_rate,
    stripe_minor_units,
    to_micros,
)
from app.money import fx as fx_service
from tenants.context import across_tenants

D = Decimal
PROPERTY = settings(max_examples=200, deadline=None)
INT64 = 2**63 - 1


def decimals(places, low=0, high=10**9):
    return st.decimals(
        min_value=low, max_value=high, places=places, allow_nan=False, allow_infinity=False
    )


rates = decimals(RATE_PLACES, 0, 10**6)
quantities = st.integers(min_value=1, max_value=10**7)
currencies = st.sampled_from([USD, IDR])


def ledger_amounts(cur, high=10**9):
    return decimals(cur.ledger_places, 0, high)


def share(amount, numerator, denominator):
    """amount * numerator / denominator, exactly."""
    return Fraction(amount) * numerator / denominator


def whole_units(value, cur):
    return Fraction(value) / Fraction(cur.ledger_unit)


# Currencies


def test_currencies_know_their_ledger_price_list_and_stripe_precision():
    assert (USD.ledger_places, USD.price_places, USD.stripe_places) == (5, 2, 2)
    assert (IDR.ledger_places, IDR.price_places, IDR.stripe_places) == (2, 0, 2)
    assert USD.ledger_unit == D("0.00001")


def test_currency_codes_are_read_in_any_case():
    assert currency(" idr ") is IDR
    assert currency(USD) is USD


@pytest.mark.parametrize("code", ["EUR", "", "US"])
def test_an_unknown_currency_is_a_validation_error(code):
    with pytest.raises(ValidationError, match=r"Unknown currency .*USD, IDR") as error:
        currency(code)
    assert error.value.field == "currency"


# Micro-units


@PROPERTY
@given(decimals(6, -(10**12), 10**12))
def test_micro_units_round_trip_every_amount_exactly(amount):
    micros = to_micros(amount)
    assert isinstance(micros, int)
    assert from_micros(micros) == amount


@PROPERTY
@given(st.integers(min_value=-INT64, max_value=INT64))
def test_every_stored_integer_reads_back_to_itself(micros):
    assert to_micros(from_micros(micros)) == micros


def test_trailing_zeros_beyond_six_places_are_not_extra_places():
    assert to_micros(D("0.278190000000")) == 278190


def test_to_micros_refuses_a_seventh_place_rather_than_rounding():
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        to_micros(D("0.0000005"))


def test_to_micros_refuses_amounts_beyond_storage():
    with pytest.raises(ValueError, match="too large"):
        to_micros(D("9223372036855"))


@pytest.mark.parametrize("value", [1, D("NaN"), D("Infinity"), "1.00"])
def test_to_micros_takes_only_finite_decimals(value):
    with pytest.raises((TypeError, ValueError)):
        to_micros(value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_micros(0.1),
        lambda: charge(0.9, 1000, "USD"),
        lambda: refund_amount(0.1, "USD"),
        lambda: round_rate(0.1),
        lambda: format_amount(0.1, "USD"),
        lambda: parse_amount(25.5, "USD"),
        lambda: apply_rounding(0.5, "2dp"),
        lambda: stripe_minor_units(10.5, "USD"),
    ],
)
def test_floats_are_refused_loudly(call):
    with pytest.raises(TypeError, match="float"):
        call()


# Charges


@pytest.mark.parametrize(
    ("rate", "quantity", "code", "expected"),
    [
        ("0.278185", 1000, "USD", "0.27819"),
        ("0.278184", 1000, "USD", "0.27818"),
        ("0.9", 1000, "USD", "0.90000"),
        ("0.000005", 1000, "USD", "0.00001"),  # half-up, where half-even would give 0
        ("0.1", 3, "USD", "0.00030"),
        ("15000", 333, "IDR", "4995.00"),
        ("5", 1, "IDR", "0.01"),
        ("0", 5000, "USD", "0.00000"),
    ],
)
def test_a_charge_is_rate_times_quantity_over_1000_rounded_half_up(rate, quantity, code, expected):
    result = charge(D(rate), quantity, code)
    assert result == D(expected)
    assert format_amount(result, code) == expected


@PROPERTY
@given(rates, quantities, currencies)
def test_a_charge_is_within_half_a_unit_of_the_exact_product_rounding_halves_up(
    rate, quantity, cur
):
    result = charge(rate, quantity, cur)
    assert whole_units(result, cur).denominator == 1
    offset = whole_units(result, cur) - whole_units(share(rate, quantity, 1000), cur)
    assert Fraction(-1, 2) < offset <= Fraction(1, 2)


def test_a_charge_refuses_a_rate_with_more_than_six_places():
    with pytest.raises(ValueError, match="round_rate"):
        charge(D("0.1234567"), 1000, "USD")


@pytest.mark.parametrize(("rate", "quantity"), [(D("-1"), 10), (D("1"), -10), (D("1"), True)])
def test_a_charge_refuses_negative_rates_and_quantities_that_are_not_counts(rate, quantity):
    with pytest.raises((TypeError, ValueError)):
        charge(rate, quantity, "USD")


# Refunds


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        ("0.123459", "USD", "0.12345"),
        ("-0.123459", "USD", "-0.12345"),
        ("10.999", "IDR", "10.99"),
        ("0.000009", "USD", "0.00000"),
    ],
)
def test_a_refund_rounds_toward_zero(amount, code, expected):
    assert refund_amount(D(amount), code) == D(expected)


@PROPERTY
@given(decimals(12, -(10**9), 10**9), currencies)
def test_a_refund_never_exceeds_its_source_and_loses_less_than_one_unit(amount, cur):
    refund = refund_amount(amount, cur)
    assert abs(refund) <= abs(amount)
    assert abs(amount - refund) < cur.ledger_unit


@PROPERTY
@given(st.data(), currencies, st.integers(min_value=1, max_value=300))
def test_pro_rata_refunds_for_every_remainder_stay_within_the_charge(data, cur, quantity):
    charged = data.draw(ledger_amounts(cur, 10**6))
    refunds = [pro_rata_refund(charged, quantity, remains, cur) for remains in range(quantity + 1)]
    assert refunds[0] == 0
    assert refunds[-1] == charged
    assert refunds == sorted(refunds)
    for remains, refund in enumerate(refunds):
        assert (
            0 <= whole_units(share(charged, remains, quantity), cur) - whole_units(refund, cur) < 1
        )
        # What the seller keeps covers at least the delivered share.
        assert charged - refund >= share(charged, quantity - remains, quantity)


@PROPERTY
@given(st.data(), currencies, quantities)
def test_a_pro_rata_refund_of_a_large_order_is_the_exact_share_rounded_toward_zero(
    data, cur, quantity
):
    charged = data.draw(ledger_amounts(cur))
    remains = data.draw(st.integers(min_value=0, max_value=quantity))
    refund = pro_rata_refund(charged, quantity, remains, cur)
    assert whole_units(refund, cur) == math.floor(
        whole_units(share(charged, remains, quantity), cur)
    )
    assert refund <= charged


def test_a_partial_order_refunds_its_undelivered_share():
    assert pro_rata_refund(D("0.27819"), 1000, 157, "USD") == D("0.04367")


@pytest.mark.parametrize(("quantity", "remains"), [(100, 101), (100, -1), (0, 0)])
def test_a_pro_rata_refund_refuses_remains_outside_the_order(quantity, remains):
    with pytest.raises(ValueError):
        pro_rata_refund(D("1.00000"), quantity, remains, "USD")


# Rates and tenant rounding policies


def test_a_rate_keeps_six_places_rounded_half_up():
    assert round_rate(D("0.1234565")) == D("0.123457")
    assert round_rate(D("0.12345649")) == D("0.123456")


@PROPERTY
@given(decimals(12, 0, 10**6))
def test_round_rate_is_idempotent_and_within_half_a_micro_unit(rate):
    rounded = round_rate(rate)
    assert round_rate(rounded) == rounded
    assert abs(rounded - rate) <= D("0.0000005")


@pytest.mark.parametrize(
    ("policy", "rate", "expected"),
    [
        ("nearest:100", "15049.99", "15000"),
        ("nearest:100", "15050", "15100"),
        ("up:100", "15000.01", "15100"),
        ("up:100", "15000", "15000"),
        ("down:100", "15099.99", "15000"),
        ("nearest:0.05", "1.024", "1.00"),
        ("nearest:0.05", "1.025", "1.05"),
        ("2dp", "0.125", "0.13"),
        ("0dp", "2.5", "3"),
        ("none", "0.1234565", "0.123457"),
    ],
)
def test_a_rounding_policy_rounds_the_shown_rate(policy, rate, expected):
    result = apply_rounding(D(rate), policy)
    assert result == D(expected)
    assert str(result) == expected


def test_a_rounding_policy_has_one_canonical_spelling():
    assert str(parse_rounding_policy(" Nearest:100.00 ")) == "nearest:100"
    assert str(parse_rounding_policy("UP:0.50")) == "up:0.5"
    assert str(parse_rounding_policy("2DP")) == "2dp"


@pytest.mark.parametrize(
    "text",
    ["", "3", "7dp", "nearest", "nearest:0", "nearest:-5", "up:0.0000001", "round:100",
     "nearest:1e2", "nearest:1,000", "nearest:10000000000"],
)  # fmt: skip
def test_a_rounding_policy_must_be_one_of_the_known_forms(text):
    with pytest.raises(ValidationError, match="rounding policy") as error:
        parse_rounding_policy(text)
    assert error.value.field == "rounding"


policies = st.sampled_from(
    ["none", "0dp", "2dp", "6dp", "nearest:100", "up:100", "down:100", "nearest:0.05", "up:0.3"]
)


@PROPERTY
@given(policies, decimals(6, 0, 10**7), decimals(6, 0, 10**7))
def test_rounding_policies_never_show_a_higher_rate_lower(policy, a, b):
    low, high = sorted([a, b])
    assert apply_rounding(low, policy) <= apply_rounding(high, policy)


@PROPERTY
@given(policies, decimals(9, 0, 10**7))
def test_rounding_a_rounded_rate_changes_nothing(policy, rate):
    once = apply_rounding(rate, policy)
    assert apply_rounding(once, policy) == once


@PROPERTY
@given(policies, decimals(9, 0, 10**7))
def test_a_rounded_rate_moves_by_less_than_one_step_in_the_policys_direction(policy, rate):
    parsed = parse_rounding_policy(policy)
    rounded = apply_rounding(rate, parsed)
    if parsed.mode == "up":
        assert rate <= rounded < rate + parsed.step
    elif parsed.mode == "down":
        assert rate - parsed.step < rounded <= rate
    else:
        assert abs(rounded - rate) <= parsed.step / 2


# Parsing and display


@pytest.mark.parametrize(
    ("typed", "code", "expected"),
    [
        ("25.50", "USD", "25.50"),
        (" 7 ", "USD", "7"),
        ("0.00001", "USD", "0.00001"),
        ("15000", "IDR", "15000"),
        ("15000.50", "IDR", "15000.50"),
        ("007.5", "USD", "7.5"),
    ],
)
def test_parse_amount_reads_plain_decimals_exactly(typed, code, expected):
    assert parse_amount(typed, code) == D(expected)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a number"),
        ("   ", "Enter a number"),
        ("abc", "'abc' is not a number"),
        ("1e3", "is not a number"),
        ("1E3", "is not a number"),
        ("NaN", "is not a number"),
        ("Infinity", "is not a number"),
        ("inf", "is not a number"),
        ("+5", "is not a number"),
        (".5", "is not a number"),
        ("5.", "is not a number"),
        ("1.000.00", "is not a number"),
        ("1_000", "is not a number"),
        ("0x10", "is not a number"),
        ("\u0663", "is not a number"),  # an Arabic-Indic three, which Decimal() would accept
        ("$25", "is not a number"),
        ("1,000.00", "without thousands separators"),
        ("25,50", "without thousands separators"),
        ("-5", "negative"),
        ("-0", "negative"),
        ("25.505001", "USD amounts have at most 5 decimal places"),
        ("1000000000000", "too large"),
    ],
)
def test_parse_amount_refuses_anything_but_digits_and_one_point(typed, message):
    with pytest.raises(ValidationError, match=message) as error:
        parse_amount(typed, "USD")
    assert error.value.field == "amount"


def test_parse_amount_holds_each_currency_to_its_places():
    with pytest.raises(ValidationError, match="IDR amounts have at most 2 decimal places"):
        parse_amount("100.555", "IDR")
    with pytest.raises(ValidationError, match="IDR amounts have no decimal places"):
        parse_amount("100.5", "IDR", places=0)


def test_parse_amount_allows_negatives_only_when_asked():
    assert parse_amount("-5.25", "USD", allow_negative=True) == D("-5.25")
    assert str(parse_amount("-0", "USD", allow_negative=True)) == "0"


@pytest.mark.parametrize("value", [D("25.50"), 25, None])
def test_parse_amount_takes_the_text_a_person_typed(value):
    with pytest.raises(TypeError):
        parse_amount(value, "USD")


@PROPERTY
@given(st.data(), currencies)
def test_a_formatted_amount_parses_back_to_itself(data, cur):
    amount = data.draw(ledger_amounts(cur, 10**11))
    assert parse_amount(format_amount(amount, cur), cur) == amount


def test_parse_rate_takes_six_places():
    assert parse_rate("0.278185") == D("0.278185")
    with pytest.raises(ValidationError, match="at most 6 decimal places"):
        parse_rate("0.2781851")


@pytest.mark.parametrize(
    ("amount", "code", "places", "shown"),
    [
        ("0.27819", "USD", None, "0.27819"),
        ("100.84292", "USD", None, "100.84292"),
        ("15000", "IDR", None, "15000.00"),
        ("15000", "IDR", 0, "15000"),
        ("0.905", "USD", 2, "0.91"),
        ("1E+3", "USD", None, "1000.00000"),
        ("-0.000001", "USD", None, "0.00000"),
        ("-12.5", "USD", 2, "-12.50"),
    ],
)
def test_format_amount_shows_plain_digits_to_the_currency_precision(amount, code, places, shown):
    assert format_amount(D(amount), code, places) == shown


@pytest.mark.parametrize(
    ("rate", "code", "shown"),
    [
        ("0.9", "USD", "0.90"),
        ("0.0125", "USD", "0.0125"),
        ("0.1234567", "USD", "0.123457"),
        ("15000", "IDR", "15000"),
        ("15000.5", "IDR", "15000.5"),
    ],
)
def test_a_price_list_shows_a_rate_with_the_places_it_needs(rate, code, shown):
    assert format_rate(D(rate), code) == shown


# Gateways


@pytest.mark.parametrize(
    ("amount", "code", "units"),
    [("10.50", "USD", 1050), ("10", "USD", 1000), ("15000", "IDR", 1500000), ("0.01", "IDR", 1)],
)
def test_stripe_takes_the_smallest_unit_counting_idr_as_two_decimal(amount, code, units):
    assert stripe_minor_units(D(amount), code) == units


@pytest.mark.parametrize(
    ("amount", "message"),
    [("10.505", "at most 2 decimal places"), ("0", "more than zero"), ("-1", "more than zero")],
)
def test_stripe_amounts_it_cannot_represent_are_refused(amount, message):
    with pytest.raises(ValidationError, match=message):
        stripe_minor_units(D(amount), "USD")


def test_midtrans_takes_whole_rupiah():
    assert midtrans_amount(D("15000")) == 15000
    assert midtrans_amount(D("15000.00")) == 15000


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        ("15000.50", "IDR", "whole rupiah"),
        ("0", "IDR", "more than zero"),
        ("10", "USD", "only IDR"),
    ],
)
def test_midtrans_refuses_what_it_cannot_take(amount, code, message):
    with pytest.raises(ValidationError, match=message):
        midtrans_amount(D(amount), code)


# Conversion arithmetic


def test_an_inverse_rate_is_a_plain_decimal_to_24_significant_digits():
    assert inverse_rate(D("0.0000625")) == D("16000")
    assert str(inverse_rate(D("0.0000625"))) == "16000"
    assert inverse_rate(D("16250")) == D("0.0000615384615384615384615385")


def test_conversion_rounds_once_to_the_target_precision():
    assert convert_at(D("10.00001"), D("16250.5"), "IDR") == D("162505.16")
    assert convert_at(D("162505.16"), inverse_rate(D("16250.5")), "USD") == D("10.00001")
    assert convert_at(D("0.9"), D("16250.55"), "IDR", places=RATE_PLACES) == D("14625.495")
    assert convert_at(D("1.99"), D("0.5"), "IDR", rounding=ROUND_DOWN) == D("0.99")


@PROPERTY
@given(ledger_amounts(USD, 10**7), decimals(6, 1000, 100000))
def test_usd_to_idr_and_back_is_within_one_unit(amount, idr_per_usd):
    rupiah = convert_at(amount, idr_per_usd, IDR)
    back = convert_at(rupiah, inverse_rate(idr_per_usd), USD)
    assert abs(back - amount) <= USD.ledger_unit


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0", "more than zero"),
        ("-16250", "more than zero"),
        ("0.0000000000001", "at most 12 decimal places"),
        ("1000000000000", "too large"),
        ("16,250", "thousands separators"),
        ("1.6e4", "not a number"),
    ],
)
def test_an_fx_rate_must_be_a_positive_plain_decimal(typed, message):
    with pytest.raises(ValidationError, match=message):
        parse_fx_rate(typed)


# Column types, on the test database (SQLite, or PostgreSQL when configured)


@pytest.fixture
def probe(app):
    """A scratch table with the money column types, outside the application's metadata."""
    table = Table(
        "money_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("amount", Micros),
        Column("rate", ExactDecimal()),
    )
    with app.app_context():
        table.create(db.engine)
        try:
            yield table
        finally:
            table.drop(db.engine)


AMOUNTS = [D("0.27819"), D("0.000001"), D("-123456789.123456"), D("9223372036854.775807"), D(0)]


def test_micros_columns_keep_amounts_to_the_last_digit(probe):
    with db.engine.begin() as conn:
        conn.execute(insert(probe), [{"amount": a} for a in [*AMOUNTS, None]])
        stored = conn.execute(select(probe.c.amount).order_by(probe.c.id)).scalars().all()
        raw = conn.execute(text("SELECT amount FROM money_probe ORDER BY id")).scalars().all()
    assert stored == [*AMOUNTS, None]
    assert all(isinstance(a, Decimal) for a in stored[:-1])
    assert raw[0] == 278190


def test_a_micros_column_refuses_a_seventh_place(probe):
    with pytest.raises(StatementError, match="more than 6 decimal places"), db.engine.begin() as c:
        c.execute(insert(probe), {"amount": D("0.0000001")})


def test_sql_arithmetic_on_micros_columns_stays_in_micro_units(probe):
    with db.engine.begin() as conn:
        conn.execute(insert(probe), {"id": 1, "amount": D("10.00000")})
        debit = D("0.27819")
        debited = conn.execute(
            update(probe)
            .where(probe.c.id == 1, probe.c.amount >= debit)
            .values(amount=probe.c.amount - debit)
        ).rowcount
        overspent = conn.execute(
            update(probe)
            .where(probe.c.id == 1, probe.c.amount >= D("9.72182"))
            .values(amount=probe.c.amount - D("9.72182"))
        ).rowcount
        balance = conn.execute(select(probe.c.amount)).scalar_one()
    assert (debited, overspent, balance) == (1, 0, D("9.72181"))


def test_exact_decimal_columns_keep_every_digit(probe):
    rate = D("0.0000615384615384615384615385")
    with db.engine.begin() as conn:
        conn.execute(insert(probe), [{"rate": rate}, {"rate": D("1.6E+4")}])
        stored = conn.execute(select(probe.c.rate).order_by(probe.c.id)).scalars().all()
        raw = conn.execute(text("SELECT rate FROM money_probe ORDER BY id")).scalars().all()
    assert stored == [rate, D(16000)]
    assert raw == ["0.0000615384615384615384615385", "16000"]


# FX rates kept by operators


@pytest.fixture
def fx(app):
    """The FX service, working across tenants as operators do."""
    with app.app_context(), across_tenants():
        yield fx_service
        db.session.rollback()


def test_setting_a_rate_stores_it_and_audits_it(fx):
    fx.set_rate("usd", "idr", "16250.5", actor="cli")
    db.session.commit()
    assert fx.get_rate("USD", "IDR") == D("16250.5")
    [stored] = fx.list_rates()
    assert (stored.base, stored.quote, stored.rate, stored.updated_by) == (
        "USD",
        "IDR",
        D("16250.5"),
        "cli",
    )
    [entry] = db.session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.tenant_id, entry.target) == ("fx.set", None, "fx:USD/IDR")
    assert entry.details == {"rate": "16250.5", "previous": None, "removed_reverse": None}


def test_setting_a_rate_again_updates_it_and_remembers_the_previous_one(fx):
    fx.set_rate("USD", "IDR", D("16000"), actor="cli")
    fx.set_rate("USD", "IDR", D("16250"), actor="op@example.com")
    db.session.commit()
    assert [(r.rate, r.updated_by) for r in fx.list_rates()] == [(D("16250"), "op@example.com")]
    last = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert last.details["previous"] == "16000"


def test_one_pair_has_one_number(fx):
    fx.set_rate("IDR", "USD", "0.0000625", actor="cli")
    fx.set_rate("USD", "IDR", "16250", actor="cli")
    db.session.commit()
    assert [(r.base, r.quote) for r in fx.list_rates()] == [("USD", "IDR")]
    assert fx.get_rate("IDR", "USD") == inverse_rate(D("16250"))


def test_a_rate_is_read_inverted_when_only_the_reverse_is_stored(fx):
    fx.set_rate("IDR", "USD", "0.0000625", actor="cli")
    db.session.commit()
    assert fx.get_rate("USD", "IDR") == D("16000")
    assert fx.convert(D("2.50000"), "USD", "IDR") == D("40000.00")


def test_a_currency_converts_to_itself_at_one(fx):
    assert fx.get_rate("IDR", "idr") == 1
    assert fx.convert(D("0.123456"), "USD", "USD") == D("0.12346")


def test_a_missing_rate_is_a_domain_error(fx):
    with pytest.raises(fx.MissingFxRate, match="No exchange rate for USD/IDR") as error:
        fx.convert(D("1"), "USD", "IDR")
    assert isinstance(error.value, PasokError)
    assert (error.value.base, error.value.quote) == ("USD", "IDR")


def test_conversion_rounds_to_the_target_ledger_or_rate_precision(fx):
    fx.set_rate("USD", "IDR", "16250.55", actor="cli")
    assert fx.convert(D("0.27818"), "USD", "IDR") == D("4520.58")
    assert fx.convert(D("0.27818"), "USD", "IDR", rounding=ROUND_DOWN) == D("4520.57")
    assert fx.convert(D("0.9"), "USD", "IDR", places=RATE_PLACES) == D("14625.495")


@pytest.mark.parametrize(
    ("base", "quote", "rate", "message"),
    [
        ("USD", "USD", "1", "two different currencies"),
        ("USD", "EUR", "1", "Unknown currency"),
        ("USD", "IDR", "0", "more than zero"),
        ("USD", "IDR", "abc", "not a number"),
        ("USD", "IDR", D("-1"), "more than zero"),
    ],
)
def test_setting_a_bad_rate_is_refused(fx, base, quote, rate, message):
    with pytest.raises(ValidationError, match=message):
        fx.set_rate(base, quote, rate, actor="cli")
    assert fx.list_rates() == []
