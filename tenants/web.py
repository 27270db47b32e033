"""Every request passes through here: the host picks the tenant (or the platform), the
query scope follows, and pages render in the tenant's theme."""

from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType

from flask import Blueprint, Flask, abort, current_app, g, render_template, request, url_for
from flask.templating import Environment
from flask_babel import get_locale
from jinja2 import ChoiceLoader

from tenants.context import PLATFORM, Scope, enter_scope, leave_scope
from tenants.pagecache import VisitorPageCache
from tenants.resolution import TENANT, UNKNOWN, TenantResolver, register_resolver
from tenants.theming import (
    BASE_THEME,
    Theme,
    ThemeLoader,
    css_custom_properties,
    effective_settings,
    join_themed_path,
    theme_static_file,
    themed_name,
)

# Blueprints that answer on any host, known or not.
HOST_AGNOSTIC = {"health"}
# Endpoints a suspended tenant still serves: money in flight is never dropped.
SERVED_WHILE_SUSPENDED = {
    "site.theme_static",
    "webhooks.stripe_events",
    "webhooks.midtrans_notifications",
}


class ThemedEnvironment(Environment):
    def join_path(self, template: str, parent: str) -> str:
        return join_themed_path(template, parent)


class ThemedFlask(Flask):
    """Flask whose templates may be themed (`@<theme>/<path>`, see tenants.theming)."""

    jinja_environment = ThemedEnvironment

    def create_global_jinja_loader(self):
        return ChoiceLoader(
            [ThemeLoader(self.extensions["pasok_themes"]), super().create_global_jinja_loader()]
        )


def init_tenancy(app: Flask) -> None:
    resolver = TenantResolver(
        app.config["PASOK_PLATFORM_DOMAIN"], app.config["PASOK_TENANT_CACHE_SECONDS"]
    )
    app.extensions["pasok_resolver"] = resolver
    app.extensions["pasok_page_cache"] = VisitorPageCache()
    register_resolver(resolver)
    app.before_request(bind_request_to_host)
    app.teardown_request(release_scope)
    app.context_processor(theme_context)


def bind_request_to_host():
    g.tenant = None
    if request.blueprint in HOST_AGNOSTIC:
        return None
    match = current_app.extensions["pasok_resolver"].resolve(request.host)
    if match.kind == UNKNOWN:
        g.unknown_host = True
        abort(404)
    if match.kind == TENANT:
        g.tenant = match.tenant
        g.scope_token = enter_scope(Scope(tenant_id=match.tenant.id))
        if match.tenant.is_suspended and request.endpoint not in SERVED_WHILE_SUSPENDED:
            return suspended_response()
    else:
        g.scope_token = enter_scope(PLATFORM)
    return None


def release_scope(exc=None) -> None:
    token = g.pop("scope_token", None)
    if token is not None:
        leave_scope(token)


def suspended_response():
    return render_themed("errors/suspended.html"), 403


def tenant_only(blueprint: Blueprint) -> Blueprint:
    """The blueprint answers on tenant hosts only; elsewhere its URLs do not exist."""

    @blueprint.before_request
    def _require_tenant():
        if g.get("tenant") is None:
            abort(404)

    return blueprint


def platform_only(blueprint: Blueprint) -> Blueprint:
    """The blueprint answers on the platform's own domain only."""

    @blueprint.before_request
    def _require_platform():
        if g.get("tenant") is not None:
            abort(404)

    return blueprint


def current_theme() -> Theme:
    themes = current_app.extensions["pasok_themes"]
    tenant = g.get("tenant")
    name = tenant.theme if tenant is not None else BASE_THEME
    return themes.get(name) or themes[BASE_THEME]


def render_themed(template: str, **context) -> str:
    """Render `template` in the current tenant's theme (base on the platform domain)."""
    return render_template(themed_name(current_theme().name, template), **context)


@lru_cache(maxsize=1024)
def _theme_look(theme: Theme, saved_items: tuple) -> tuple[MappingProxyType, str]:
    """A tenant's effective theme settings and their CSS, worked out once per distinct set."""
    settings = effective_settings(theme, dict(saved_items))
    return MappingProxyType(settings), css_custom_properties(theme, settings)


def theme_static(filename: str, theme: str | None = None) -> str:
    """A theme file's URL, versioned by its modification time so browsers may cache it."""
    name = theme or current_theme().name
    version = _asset_version(name, filename, current_app.debug)
    return url_for("site.theme_static", theme=name, filename=filename, v=version)


_asset_versions: dict[tuple[str, str], str | None] = {}


def _asset_version(theme: str, filename: str, recheck: bool) -> str | None:
    """Files change only on deploy, so each is looked at once per process (every time while
    debugging)."""
    key = (theme, filename)
    if recheck or key not in _asset_versions:
        file = theme_static_file(current_app.extensions["pasok_themes"], theme, filename)
        if file is None:
            current_app.logger.warning("theme %s has no static file %s", theme, filename)
        _asset_versions[key] = str(int(file.stat().st_mtime)) if file else None
    return _asset_versions[key]


def theme_context() -> dict:
    tenant = g.get("tenant")
    theme = current_theme()
    saved = tuple(sorted(tenant.theme_settings.items())) if tenant else ()
    settings, css = _theme_look(theme, saved)
    return {
        "tenant": tenant,
        "theme": theme,
        "theme_settings": settings,
        "theme_css": css,
        "theme_static": theme_static,
        "current_locale": str(get_locale()),
    }
