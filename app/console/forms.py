from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from app.forms import at_most, required
from app.i18n import LOCALES as LANGUAGE_NAMES
from tenants.provisioning import CURRENCIES, LOCALES


class TenantForm(FlaskForm):
    slug = StringField(_l("Subdomain"), validators=[required(), at_most(63)])
    name = StringField(_l("Panel name"), validators=[required(), at_most(120)])
    owner_email = EmailField(_l("Owner email"), validators=[required(), at_most(254)])
    owner_password = PasswordField(_l("Owner password"), validators=[required()])
    theme = SelectField(_l("Theme"))
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c) for c in CURRENCIES])
    locale = SelectField(
        _l("Language"), choices=[SelectChoice(code, LANGUAGE_NAMES[code]) for code in LOCALES]
    )


class SuspendForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[at_most(500)])


class ConfirmForm(FlaskForm):
    """A bare form: a button and its CSRF token."""
