"""Forms of the back office's pricing and catalog pages.

Numbers a person types (markups, rates, discounts) are text fields read by `parse_percent` and
`app.money.parse_rate`, whose errors are translated; WTForms' own messages are not.
"""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from app.errors import ValidationError
from app.forms import at_most, required
from app.money import apply_rounding, parse_rounding_policy
from app.money.amounts import parse_plain_decimal, places_of

PERCENT_PLACES = 4

# The rounding policies offered per currency. A policy set another way (the CLI, or before a
# change of currency) is offered too, so saving the form never changes it by accident.
ROUNDING_POLICIES = {
    "USD": ["2dp", "3dp", "4dp", "5dp", "6dp", "up:0.01", "nearest:0.05"],
    "IDR": [
        "0dp",
        "nearest:10",
        "nearest:50",
        "nearest:100",
        "up:100",
        "nearest:500",
        "nearest:1000",
    ],
}
FALLBACK_POLICIES = ["none", "0dp", "1dp", "2dp", "3dp", "4dp", "5dp", "6dp"]
EXAMPLE_RATE = {"USD": Decimal("1.234567"), "IDR": Decimal("12345.678")}


def rounding_label(text: str, currency: str, *, example: bool = True) -> str:
    """A policy for people, with what it does to an example rate."""
    policy = parse_rounding_policy(text)
    step = f"{policy.step.normalize():f}"
    if policy.text == "none":
        label = _l("Exact (6 decimal places)")
    elif policy.text.endswith("dp"):
        places = int(policy.text[0])
        label = (
            _l("Whole %(currency)s", currency=currency)
            if places == 0
            else _l("%(n)s decimal places", n=places)
        )
    elif policy.mode == "nearest":
        label = _l("Nearest %(step)s", step=step)
    elif policy.mode == "up":
        label = _l("Up to the next %(step)s", step=step)
    else:
        label = _l("Down to the previous %(step)s", step=step)
    if not example:
        return str(label)
    rate = EXAMPLE_RATE.get(currency, Decimal("1.234567"))
    return f"{label} ({rate:f} → {apply_rounding(rate, policy):f})"


def rounding_choices(currency: str, current: str | None = None) -> list[SelectChoice]:
    policies = list(ROUNDING_POLICIES.get(currency, FALLBACK_POLICIES))
    if current and current not in policies:
        policies.append(current)
    return [SelectChoice(text, rounding_label(text, currency)) for text in policies]


def parse_percent(text: str | None, *, field: str, allow_negative: bool = False) -> Decimal:
    """A percentage typed by a person ("12.5"): plain digits, at most 4 decimal places."""
    value = parse_plain_decimal(text or "", allow_negative=allow_negative, field=field)
    if places_of(value) > PERCENT_PLACES:
        raise ValidationError(
            _l("Use at most %(places)s decimal places", places=PERCENT_PLACES), field
        )
    return value


def optional_id(value) -> int | None:
    """A choice's row id, or None for anything else (no untranslated "could not coerce")."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 10 else None


class TenantPricingForm(FlaskForm):
    markup_percent = StringField(
        _l("Markup over wholesale (percent)"), validators=[required(), at_most(20)]
    )
    rounding = SelectField(_l("Rounding of the prices you show"), validate_choice=False)
    min_margin_percent = StringField(
        _l("Minimum margin (percent)"), validators=[required(), at_most(20)]
    )


class CategoryRuleForm(FlaskForm):
    category_id = SelectField(_l("Category"), coerce=optional_id, validate_choice=False)
    markup_percent = StringField(_l("Markup (percent)"), validators=[required(), at_most(20)])


MARKUP = "markup"
FIXED = "fixed"


class ServiceRuleForm(FlaskForm):
    service_id = StringField(_l("Service number"), validators=[required(), at_most(12)])
    kind = SelectField(
        _l("Price by"),
        choices=[
            SelectChoice(MARKUP, _l("Markup (percent)")),
            SelectChoice(FIXED, _l("Fixed price")),
        ],
        validate_choice=False,
    )
    value = StringField(_l("Value"), validators=[required(), at_most(20)])


class GroupForm(FlaskForm):
    name = StringField(_l("Group name"), validators=[required(), at_most(80)])
    discount_percent = StringField(_l("Discount (percent)"), validators=[required(), at_most(20)])


class ServiceOverrideForm(FlaskForm):
    name = StringField(_l("Name your customers see"), validators=[at_most(255)])
    description = TextAreaField(_l("Description your customers see"), validators=[at_most(10000)])
    hidden = BooleanField(_l("Hidden: not on your price list and not for sale"))


class CategoryOverrideForm(FlaskForm):
    name = StringField(_l("Name your customers see"), validators=[at_most(120)])
    hidden = BooleanField(_l("Hidden: every service in it is off your price list"))


class ConfirmForm(FlaskForm):
    """A bare form: a button and its CSRF token."""
