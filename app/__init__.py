"""Pasok: a multi-tenant white-label SMM reseller panel platform."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from app.config import (
    PROJECT_ROOT,
    apply_derived_settings,
    check_production_settings,
    settings_from_environment,
)
from app.extensions import babel, connect_redis, csrf, db, limiter, login_manager, migrate


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application; `config` overrides settings read from the environment."""
    from tenants.theming import load_themes
    from tenants.web import ThemedFlask, init_tenancy

    app = ThemedFlask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(settings_from_environment(app.instance_path))
    if config:
        app.config.update(config)
    apply_derived_settings(app.config)
    check_production_settings(app.config)
    app.config.setdefault("RATELIMIT_STORAGE_URI", rate_limit_storage(app.config))
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "pasok-limits")
    # A Redis outage must not lock everyone out of logging in: fall back to memory.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)

    app.extensions["pasok_themes"] = load_themes(app.config["PASOK_THEMES_DIR"])
    app.extensions["pasok_redis"] = connect_redis(app.config["REDIS_URL"])

    from app import models  # noqa: F401  (the metadata must know every table)
    from app.accounts.sessions import AreaSessionInterface
    from app.i18n import install_template_gettext, select_locale, select_timezone
    from app.pricing import retail  # noqa: F401  (its commit hooks keep price caches fresh)

    app.session_interface = AreaSessionInterface()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    install_template_gettext(app)
    limiter.init_app(app)
    init_tenancy(app)

    register_blueprints(app)
    from app.cli import register_commands
    from app.errorpages import register_error_pages

    register_error_pages(app)
    register_commands(app)
    return app


def rate_limit_storage(config: dict[str, Any]) -> str:
    if config.get("PASOK_RATELIMIT_STORAGE_URL"):
        return config["PASOK_RATELIMIT_STORAGE_URL"]
    url = config["REDIS_URL"]
    return "memory://" if url.startswith("fakeredis://") else url


def register_blueprints(app: Flask) -> None:
    from app.admin import bp as admin_bp
    from app.api import bp as api_bp
    from app.api import pages_bp as api_pages_bp
    from app.auth import bp as auth_bp
    from app.console import bp as console_bp
    from app.console.rq_dashboard import mount_rq_dashboard
    from app.health import bp as health_bp
    from app.site import bp as site_bp
    from app.storefront import bp as storefront_bp
    from app.webhooks import bp as webhooks_bp

    blueprints = (
        health_bp, site_bp, storefront_bp, auth_bp, admin_bp, console_bp, api_bp, api_pages_bp,
        webhooks_bp,
    )  # fmt: skip
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    csrf.exempt(api_bp)  # called by scripts with a key, never by a browser session
    csrf.exempt(webhooks_bp)  # called by gateways, proven by their signatures
    mount_rq_dashboard(app)
