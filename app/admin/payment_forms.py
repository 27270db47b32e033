"""Forms of the back office's payment pages: the panel's gateway settings, the review of a
customer's manual transfer, and the reseller's top-up of its wholesale wallet.

Secrets are password inputs that are never filled back in: blank keeps the stored one. Amounts
are text fields read by `app.money.parse_amount` in the view; the payments services then check
what only they can (key formats, limits, URLs) and their errors land on the same fields.
"""

from __future__ import annotations

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

from app.forms import at_most, required

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
