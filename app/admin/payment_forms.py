"""Forms of the back office's payment pages: the panel's gateway settings, the review of a
customer's manual transfer, and the reseller's top-up of its wholesale wallet.

Secrets are password inputs that are never filled back in: blank keeps the stored one. Amounts
are text fields read by `app.money.parse_amount` in the view; the payments services then check
what only they can (key formats, limits, URLs) and their errors land on the same fields.
"""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice

from app.accounts.web import attach_error
from app.errors import ValidationError
from app.forms import at_most, required
from app.money import parse_amount
from app.payments import MANUAL, MIDTRANS, STRIPE

SANDBOX = "sandbox"
PRODUCTION = "production"


class GatewayLimitsMixin:
    """Whether customers are offered the gateway, and the amounts one top-up may be."""

    enabled = BooleanField(_l("Offer this to customers"))
    min_amount = StringField(_l("Smallest top-up"), validators=[at_most(40)])
    max_amount = StringField(_l("Largest top-up"), validators=[at_most(40)])


class StripeSettingsForm(GatewayLimitsMixin, FlaskForm):
    """The panel's own Stripe account: Checkout Sessions paid by card."""

    secret_key = PasswordField(_l("Secret key"), validators=[at_most(300)])
    webhook_secret = PasswordField(_l("Webhook signing secret"), validators=[at_most(300)])
    api_base = StringField(_l("API base URL"), validators=[at_most(300)])


class MidtransSettingsForm(GatewayLimitsMixin, FlaskForm):
    """The panel's own Midtrans account: Snap (QRIS, GoPay, virtual accounts)."""

    server_key = PasswordField(_l("Server key"), validators=[at_most(300)])
    client_key = StringField(_l("Client key"), validators=[at_most(200)])
    environment = RadioField(
        _l("Environment"),
        choices=[
            SelectChoice(SANDBOX, _l("Sandbox (test payments)")),
            SelectChoice(PRODUCTION, _l("Production (real money)")),
        ],
        default=SANDBOX,
        validate_choice=False,  # anything but "production" is the sandbox
    )
    api_base = StringField(_l("API base URL"), validators=[at_most(300)])


class ManualSettingsForm(GatewayLimitsMixin, FlaskForm):
    """Manual bank transfer: what customers read, and staff approve each transfer."""

    instructions = TextAreaField(_l("Instructions"), validators=[at_most(4000)])
    bank_accounts = TextAreaField(_l("Bank accounts"), validators=[at_most(4000)])
    qris_image = FileField(_l("QRIS image"))
    remove_qris = BooleanField(_l("Remove the QRIS image"))


class ApproveTopupForm(FlaskForm):
    """Approve a manual transfer for the amount that really arrived."""

    amount = StringField(_l("Amount received"), validators=[required(), at_most(40)])


class RejectTopupForm(FlaskForm):
    """Reject a manual transfer; the customer reads the reason."""

    reason = StringField(_l("Reason"), validators=[required(), at_most(500)])


class WholesaleTopupForm(FlaskForm):
    """Pay into the wholesale wallet through one of the platform's gateways."""

    gateway = SelectField(_l("Pay with"), validate_choice=False)
    amount = StringField(_l("Amount"), validators=[required(), at_most(40)])


SETTINGS_FORMS = {
    STRIPE: StripeSettingsForm,
    MIDTRANS: MidtransSettingsForm,
    MANUAL: ManualSettingsForm,
}


def typed_amount(form, name: str, currency: str) -> tuple[bool, Decimal | None]:
    """The amount typed in `form.<name>` (None when blank), and whether it could be read;
    an error goes on the field."""
    text = (getattr(form, name).data or "").strip()
    if not text:
        return True, None
    try:
        return True, parse_amount(text, currency, field=name)
    except ValidationError as error:
        attach_error(form, error)
        return False, None


def settings_form(gateway: str, accounts: dict, formdata=None):
    """A gateway's settings form, filled from what is stored unless posted. Secrets are never
    filled in: the page shows them masked."""
    form = SETTINGS_FORMS[gateway](formdata=formdata, prefix=gateway)
    if formdata is not None:
        return form
    account = accounts.get(gateway)
    form.enabled.data = account.enabled if account else True
    if account is not None:
        form.min_amount.data = typed_form(account.min_amount)
        form.max_amount.data = typed_form(account.max_amount)
    if gateway in (STRIPE, MIDTRANS):
        form.api_base.data = account.api_base if account else ""
    if gateway == MIDTRANS:
        form.client_key.data = account.client_key if account else ""
        form.environment.data = PRODUCTION if account and account.production else SANDBOX
    if gateway == MANUAL and account is not None:
        form.instructions.data = account.instructions
        form.bank_accounts.data = account.bank_accounts
    return form


def typed_form(value: Decimal | None) -> str:
    """An amount as a person would type it back: 25.5, 10000."""
    return "" if value is None else f"{value.normalize():f}"
