"""The parts of logging in that the customer, staff and operator areas share."""

from __future__ import annotations

from flask import current_app, session
from flask_babel import gettext as _
from flask_login import current_user, login_user
from flask_wtf import FlaskForm

from app.accounts.models import User
from app.accounts.services import authenticate, change_password
from app.errors import ValidationError
from app.extensions import db, limiter


def auth_rate_limit():
    """Per tenant and client address (see `rate_limit_key`), on form posts only."""
    return limiter.limit(lambda: current_app.config["PASOK_AUTH_RATE_LIMIT"], methods=["POST"])


def start_session(user: User) -> None:
    """A fresh session for `user`: nothing from before the login is kept but the language."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
    login_user(user)


def sign_in(kind: str, form: FlaskForm) -> User | None:
    user = authenticate(kind, form.email.data, form.password.data)
    if user is None:
        form.form_errors.append(_("Wrong email or password."))
        return None
    start_session(user)
    db.session.commit()
    return user


def attach_error(form: FlaskForm, error: ValidationError) -> None:
    """Show a service's validation error on its field, or on the form when it has none."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))


def apply_password_change(form: FlaskForm) -> bool:
    """Change the signed-in user's password from `form`; this session stays, the others end."""
    # The real user, not the `current_user` proxy: login_user must store the object itself.
    user = current_user._get_current_object()
    try:
        change_password(user, form.current_password.data, form.password.data)
    except ValidationError as error:
        db.session.rollback()
        attach_error(form, error)
        return False
    db.session.commit()
    login_user(user)  # re-issue this session with the new epoch
    return True
