from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField

from app.auth.forms import ChangePasswordForm, LanguageForm, LoginForm

__all__ = ["BrandingForm", "ChangePasswordForm", "LanguageForm", "LoginForm"]


class BrandingForm(FlaskForm):
    """The theme choice; each theme's own settings are read from the request by key."""

    theme = SelectField(_l("Theme"))
