"""Forms of the console's supply pages: providers, the catalog, wholesale prices and FX rates.

Numbers a person types (markups, rates, timeouts) are text fields read by the money parsers of
`app.money`, whose errors are translated; whole numbers use `WholeNumberField`, whose error is
translated too (WTForms ships no Indonesian messages).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional

from app.catalog.models import DISABLED, PUBLISHED, UNLISTED
from app.forms import at_most, required
from app.money import CURRENCIES

STATUS_LABELS = {
    PUBLISHED: _l("Published"),
    UNLISTED: _l("Unlisted"),
    DISABLED: _l("Disabled"),
}


def entered() -> InputRequired:
    """Required, where 0 is a valid answer (DataRequired refuses it)."""
    return InputRequired(message=_l("This field is required."))


def between(low: int, high: int) -> NumberRange:
    return NumberRange(low, high, message=_l("Enter a number from %(min)s to %(max)s."))


class WholeNumberField(IntegerField):
    """An integer input whose parse error is in the user's language."""

    def process_formdata(self, valuelist):
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            self.data = int(str(valuelist[0]).strip())
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a whole number.")) from None


def optional_id(value) -> int | None:
    """A choice's row id, or None for anything else (no untranslated "could not coerce")."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 10 else None


def currency_choices() -> list[SelectChoice]:
    return [SelectChoice(code, f"{code} · {c.name}") for code, c in CURRENCIES.items()]


# Providers


class ProviderForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), at_most(64)])
    api_url = URLField(_l("API URL"), validators=[required(), at_most(500)])
    api_key = PasswordField(_l("API key"), validators=[required(), at_most(500)])
    # The service checks the currency, with a translated message.
    currency = SelectField(_l("Currency"), choices=currency_choices(), validate_choice=False)
    honours_ref = BooleanField(_l("Honours ref (answers the same order for the same ref)"))
    timeout_seconds = StringField(
        _l("Timeout (seconds)"), default="15", validators=[required(), at_most(10)]
    )


class ProviderEditForm(FlaskForm):
    api_url = URLField(_l("API URL"), validators=[required(), at_most(500)])
    api_key = PasswordField(_l("New API key"), validators=[at_most(500)])
    currency = SelectField(_l("Currency"), choices=currency_choices(), validate_choice=False)
    honours_ref = BooleanField(_l("Honours ref (answers the same order for the same ref)"))
    enabled = BooleanField(_l("Enabled: orders may be sent to this provider"))
    timeout_seconds = StringField(_l("Timeout (seconds)"), validators=[required(), at_most(10)])


class ImportForm(FlaskForm):
    publish = BooleanField(_l("Publish new services at once"))


# Catalog


class ServiceForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), at_most(255)])
    description = TextAreaField(_l("Description"), validators=[at_most(5000)])
    step = WholeNumberField(_l("Quantity step"), validators=[entered(), between(1, 1_000_000)])
    refill_days = WholeNumberField(
        _l("Refill guarantee (days)"), validators=[Optional(), between(0, 3650)]
    )
    status = SelectField(
        _l("Status"),
        choices=[SelectChoice(value, label) for value, label in STATUS_LABELS.items()],
        validate_choice=False,
    )


class CategoryForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), at_most(120)])
    position = WholeNumberField(_l("Position"), validators=[entered(), between(0, 100_000)])


class AddRouteForm(FlaskForm):
    # Rendered by hand, one per search result (hidden_tag() then only holds the CSRF token).
    provider_service_id = StringField(validators=[required(), at_most(12)])


# Wholesale prices


class GlobalMarkupForm(FlaskForm):
    markup_percent = StringField(_l("Markup (percent)"), validators=[required(), at_most(20)])


class CategoryMarkupForm(FlaskForm):
    category_id = SelectField(_l("Category"), coerce=optional_id, validate_choice=False)
    markup_percent = StringField(_l("Markup (percent)"), validators=[required(), at_most(20)])


MARKUP = "markup"
FIXED = "fixed"


class ServiceRuleForm(FlaskForm):
    service_id = WholeNumberField(_l("Service number"), validators=[entered(), between(1, 2**31)])
    kind = SelectField(
        _l("Rule"),
        choices=[
            SelectChoice(MARKUP, _l("Markup")),
            SelectChoice(FIXED, _l("Fixed rate")),
        ],
        validate_choice=False,
    )
    value = StringField(_l("Value"), validators=[required(), at_most(20)])


# Exchange rates


class FxRateForm(FlaskForm):
    base = SelectField(_l("From"), choices=currency_choices(), validate_choice=False)
    quote = SelectField(_l("To"), choices=currency_choices(), validate_choice=False)
    rate = StringField(_l("Exchange rate"), validators=[required(), at_most(40)])
