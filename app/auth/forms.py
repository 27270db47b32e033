from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from app.forms import at_most, required, same_as
from app.i18n import LOCALES


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[required(), at_most(254)])
    password = PasswordField(_l("Password"), validators=[required(), at_most(200)])


class RegisterForm(FlaskForm):
    name = StringField(_l("Name"), validators=[at_most(120)])
    email = EmailField(_l("Email"), validators=[required(), at_most(254)])
    password = PasswordField(_l("Password"), validators=[required(), at_most(200)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[required(), same_as("password")],
    )


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[required(), at_most(254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[required(), at_most(200)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[required(), same_as("password")],
    )


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[required()])
    password = PasswordField(_l("New password"), validators=[required(), at_most(200)])
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[required(), same_as("password")],
    )


class LanguageForm(FlaskForm):
    locale = SelectField(
        _l("Language"), choices=[SelectChoice(code, label) for code, label in LOCALES.items()]
    )
