"""The operators' console on the platform's root domain."""

from flask import Blueprint

from tenants.web import platform_only

bp = platform_only(Blueprint("console", __name__, url_prefix="/console"))

from app.console import catalog, payments, pipeline, pricing, providers, routes  # noqa: E402,F401
