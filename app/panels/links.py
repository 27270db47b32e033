"""Links to a panel's pages for messages read away from it (emails): on the host the request
came in on when it is the panel's own, else on the panel's subdomain of the platform."""

from __future__ import annotations

from flask import current_app, g, has_request_context, request

from app.panels.models import Tenant


def panel_url(tenant: Tenant, path: str) -> str:
    """The absolute URL of `path` ("/admin/topups/7") on `tenant`'s panel."""
    tenant_info = g.get("tenant") if has_request_context() else None
    if tenant_info is not None and tenant_info.id == tenant.id:
        return f"{request.host_url.rstrip('/')}{path}"
    scheme = "https" if current_app.config["PASOK_ENV"] == "production" else "http"
    return f"{scheme}://{tenant.slug}.{current_app.config['PASOK_PLATFORM_DOMAIN']}{path}"
