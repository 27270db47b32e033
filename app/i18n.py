"""Languages: English and Bahasa Indonesia. API errors and CLI output stay English."""

from __future__ import annotations

from flask import Flask, g, has_request_context, request, session
from flask_babel import get_locale, get_translations
from flask_login import current_user

from app.extensions import db

LOCALES = {"en": "English", "id": "Bahasa Indonesia"}


def select_locale() -> str:
    """The signed-in user's choice, then this browser's, then the panel's default.
    Outside a request (the CLI, workers) it is English."""
    if not has_request_context():
        return "en"
    user = current_user
    if user and user.is_authenticated and user.locale in LOCALES:
        return user.locale
    if session.get("locale") in LOCALES:
        return session["locale"]
    tenant = g.get("tenant")
    if tenant is not None:
        return tenant.default_locale
    return request.accept_languages.best_match(list(LOCALES)) or "en"


def select_timezone() -> str:
    tenant = g.get("tenant") if has_request_context() else None
    return tenant.timezone if tenant is not None else "UTC"


def remember_locale(locale: str, *, save_to_account: bool = True) -> bool:
    """Remember a language for this browser and, if signed in, for the user."""
    if locale not in LOCALES:
        return False
    session["locale"] = locale
    if save_to_account and current_user.is_authenticated:
        current_user.locale = locale
        db.session.commit()
    return True


def _request_translations():
    """This request's catalogue, found once: Flask-Babel looks it up again on every call,
    which dominates the cost of a page with many strings."""
    locale = get_locale()
    cached = g.get("_pasok_translations")
    if cached is None or cached[0] is not locale:
        cached = (locale, get_translations())
        g._pasok_translations = cached
    return cached[1]


def install_template_gettext(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _request_translations().ugettext(s),
        ngettext=lambda s, p, n: _request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
