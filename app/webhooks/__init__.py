"""Payment gateways' webhooks: on a panel's host for its customers' top-ups, on the root
domain for the platform's (panels' wholesale top-ups)."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from app.webhooks import routes  # noqa: E402,F401
