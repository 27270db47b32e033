"""The reseller's back office at `<tenant host>/admin`."""

from flask import Blueprint

from tenants.web import tenant_only

bp = tenant_only(Blueprint("admin", __name__, url_prefix="/admin"))

from app.admin import catalog, customers, orders, payments, pricing, routes  # noqa: E402,F401
