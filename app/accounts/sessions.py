"""One session cookie per area: the storefront (customers), `/admin` (staff) and `/console`
(operators). A staff login and a customer login on one host never share a session, so one
never makes the browser the other. Cookies are host-only (no Domain attribute)."""

from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import lazy_gettext as _l

from app.accounts.models import CUSTOMER, OPERATOR, STAFF
from app.accounts.services import load_session_user
from app.extensions import login_manager

AREAS = (("/admin", STAFF, "pasok_staff"), ("/console", OPERATOR, "pasok_operator"))


def _area(path: str) -> tuple[str, str, str]:
    for prefix, kind, cookie in AREAS:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, kind, cookie
    return "/", CUSTOMER, "pasok_session"


def session_kind() -> str:
    """Which kind of user this request's session can hold."""
    return _area(request.path)[1]


class AreaSessionInterface(SecureCookieSessionInterface):
    def get_cookie_name(self, app: Flask) -> str:
        return _area(request.path)[2]

    def get_cookie_path(self, app: Flask) -> str:
        return _area(request.path)[0]

    def open_session(self, app: Flask, request):
        # Most visitors arrive with no cookie: skip building the signing serializer for them.
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


@login_manager.user_loader
def load_user(session_id: str):
    return load_session_user(session_id, session_kind())


login_manager.blueprint_login_views = {
    "storefront": "auth.login",
    "auth": "auth.login",
    "admin": "admin.login",
    "console": "console.login",
}
login_manager.login_message = _l("Please sign in to continue.")
login_manager.login_message_category = "info"
