"""What every known host serves: the home page, theme assets, the language choice."""

from flask import Blueprint

bp = Blueprint("site", __name__)

from app.site import routes  # noqa: E402,F401
