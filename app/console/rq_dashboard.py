"""rq-dashboard at `/console/rq`, for signed-in operators on the platform domain only.

rq-dashboard has no authentication of its own and can delete and requeue jobs, so every
request to it passes `require_operator` first. That check is an app-level hook filtered on the
dashboard's blueprint, not a hook on the blueprint: the blueprint is one module object shared by
every app (hooks cannot be added after its first registration), and app hooks run before its
own `push_rq_connection`, so nobody reaches Redis before the check.

Its pages post with jQuery and send the `_csrf_token` cookie back as `X-CSRFToken`; we set that
cookie (path `/console/rq`) from the operator's session token, so CSRF protection stays on.
"""

from __future__ import annotations

import rq_dashboard
from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.accounts.models import OPERATOR

PREFIX = "/console/rq"
BLUEPRINT = rq_dashboard.blueprint.name  # "rq_dashboard"
CSRF_COOKIE = "_csrf_token"  # the name rq-dashboard's scripts read
# Changes state, yet rq-dashboard answers it on GET too: a link could trigger it.
POST_ONLY = {f"{BLUEPRINT}.requeue_all"}


def mount_rq_dashboard(app: Flask) -> None:
    # The app's own Redis. rq-dashboard reads RQ_DASHBOARD_REDIS_URL per request (its
    # "instance" switcher); setting it also stops its legacy-config warning about REDIS_URL.
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", (app.config["REDIS_URL"],))
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    app.redis_conn = app.extensions["pasok_redis"]
    app.before_request(require_operator)
    app.after_request(hand_over_csrf_token)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)


def require_operator():
    """The dashboard exists on the platform domain only, for signed-in operators."""
    if request.blueprint != BLUEPRINT:
        return None
    if g.get("tenant") is not None:
        abort(404)
    if not current_user.is_authenticated or current_user.kind != OPERATOR:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.endpoint in POST_ONLY and request.method != "POST":
        abort(405)
    g.rq_dashboard_operator = True
    return None


def hand_over_csrf_token(response):
    if g.get("rq_dashboard_operator") and response.mimetype == "text/html":
        response.set_cookie(
            CSRF_COOKIE,
            generate_csrf(),
            path=PREFIX,
            samesite="Strict",
            secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
            httponly=False,  # the dashboard's script reads it
        )
    return response
