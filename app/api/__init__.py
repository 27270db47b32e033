"""The panel's SMM API v2 (`/api/v2`, JSON for scripts and other panels) and the customer's
`/api` page (the API's documentation and the customer's keys)."""

from flask import Blueprint

from tenants.web import tenant_only

# JSON only, answered on any host (a host that is no panel gets the API's error, not a page).
bp = Blueprint("api", __name__)
# The storefront's `/api` page, in the tenant's theme.
pages_bp = tenant_only(Blueprint("api_pages", __name__))

from app.api import openapi, pages, routes  # noqa: E402,F401
