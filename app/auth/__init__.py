"""Customer accounts on a tenant's storefront: register, log in and out, reset, account."""

from flask import Blueprint

from tenants.web import tenant_only

bp = tenant_only(Blueprint("auth", __name__))

from app.auth import routes  # noqa: E402,F401
