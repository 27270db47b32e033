"""Languages: English and Bahasa Indonesia. API errors and CLI output stay English."""

from __future__ import annotations

from flask import g, has_request_context, request, session
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


def remember_locale(locale: str) -> bool:
    """Remember a language for this browser and, if signed in, for the user."""
    if locale not in LOCALES:
        return False
    session["locale"] = locale
    if current_user.is_authenticated:
        current_user.locale = locale
        db.session.commit()
    return True
