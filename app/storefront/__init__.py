"""The tenant's storefront: the home page and the customer area."""

from flask import Blueprint

from tenants.web import tenant_only

bp = tenant_only(Blueprint("storefront", __name__))

from app.storefront import orders, routes, topups, wallet  # noqa: E402,F401
