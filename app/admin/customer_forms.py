"""Forms of the back office's customer and order pages.

Amounts and percentages are text fields read by the parsers of `app.money`, whose errors are
translated; the ledger and pricing services then check what only they can (the balance, the
discount's range) and their errors land on the same fields.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from app.forms import at_most, required

CREDIT = "credit"
DEBIT = "debit"


def optional_id(value) -> int | None:
    """A choice's row id, or None for "none" (no untranslated "could not coerce")."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 10 else None


class BalanceAdjustmentForm(FlaskForm):
    """A manual credit or debit of a customer's wallet. `token` is drawn when the form is shown,
    so the same form posted twice moves the money once."""

    direction = RadioField(
        _l("Adjustment"),
        choices=[
            SelectChoice(CREDIT, _l("Credit (add to the balance)")),
            SelectChoice(DEBIT, _l("Debit (take from the balance)")),
        ],
        default=CREDIT,
        validate_choice=False,  # checked by the view, with a translated message
    )
    amount = StringField(_l("Amount"), validators=[required(), at_most(40)])
    reason = StringField(_l("Reason"), validators=[required(), at_most(500)])
    token = HiddenField()


class CustomerPricingForm(FlaskForm):
    """A customer's group and personal discount; blank discount means none of its own."""

    group_id = SelectField(_l("Customer group"), coerce=optional_id, validate_choice=False)
    discount_percent = StringField(_l("Personal discount (%)"), validators=[at_most(20)])


class CancelOrderForm(FlaskForm):
    """Cancel an order not yet sent upstream and refund it: a button and its CSRF token."""
