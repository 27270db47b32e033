"""Settings read from the environment, with overrides from `create_app(config=...)`."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "pasok-development-secret-key"


class ConfigurationError(RuntimeError):
    """The deployment is configured in a way that must not run."""


def settings_from_environment(instance_path: str) -> dict:
    env = os.environ.get
    return {
        "PASOK_ENV": env("PASOK_ENV", "development"),
        "SECRET_KEY": env("SECRET_KEY", DEFAULT_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": database_url(
            env("DATABASE_URL", f"sqlite:///{Path(instance_path) / 'pasok.sqlite3'}")
        ),
        "REDIS_URL": env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "PASOK_PLATFORM_DOMAIN": env("PASOK_PLATFORM_DOMAIN", "localhost").lower().rstrip("."),
        "PASOK_PLATFORM_CURRENCY": env("PASOK_PLATFORM_CURRENCY", "USD").upper(),
        "PASOK_SECRET_KEYS": env("PASOK_SECRET_KEYS", ""),
        "PASOK_THEMES_DIR": env("PASOK_THEMES_DIR", str(PROJECT_ROOT / "themes")),
        "PASOK_TENANT_CACHE_SECONDS": float(env("PASOK_TENANT_CACHE_SECONDS", "3")),
        "PASOK_MAIL_BACKEND": env("PASOK_MAIL_BACKEND", "console"),
        "PASOK_MAIL_DIR": env("PASOK_MAIL_DIR", str(Path(instance_path) / "mail")),
        "PASOK_MAIL_FROM": env("PASOK_MAIL_FROM", "Pasok <no-reply@localhost>"),
        "SMTP_HOST": env("SMTP_HOST", "localhost"),
        "SMTP_PORT": int(env("SMTP_PORT", "587")),
        "SMTP_USERNAME": env("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": env("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": env("SMTP_STARTTLS", "1") == "1",
        "PASOK_AUTH_RATE_LIMIT": env("PASOK_AUTH_RATE_LIMIT", "10 per minute"),
        "PASOK_API_RATE_LIMIT": env("PASOK_API_RATE_LIMIT", "600 per minute"),
        "PASOK_PASSWORD_RESET_MAX_AGE": int(env("PASOK_PASSWORD_RESET_MAX_AGE", "3600")),
        "PASOK_RATELIMIT_STORAGE_URL": env("PASOK_RATELIMIT_STORAGE_URL", ""),
        # Host-only cookies: a session from one storefront is never valid on another.
        "SESSION_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DOMAIN": None,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_TRANSLATION_DIRECTORIES": str(PROJECT_ROOT / "app" / "translations"),
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    }


def database_url(url: str) -> str:
    """Normalise PostgreSQL URLs to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def apply_derived_settings(config: dict) -> None:
    """Settings that follow from others once the overrides are in."""
    # Production is served over TLS: cookies never travel in clear.
    if config["PASOK_ENV"] == "production":
        config["SESSION_COOKIE_SECURE"] = True


def check_production_settings(config: dict) -> None:
    """Production refuses to start with a default or missing secret."""
    if config["PASOK_ENV"] != "production":
        return
    problems = []
    if not config.get("SECRET_KEY") or config["SECRET_KEY"] == DEFAULT_SECRET_KEY:
        problems.append("SECRET_KEY is missing or the development default")
    elif len(config["SECRET_KEY"]) < 32:
        problems.append("SECRET_KEY is shorter than 32 characters")
    if not config.get("PASOK_SECRET_KEYS"):
        problems.append("PASOK_SECRET_KEYS is missing (needed to encrypt secrets at rest)")
    if config.get("PASOK_MAIL_BACKEND") != "smtp":
        problems.append("PASOK_MAIL_BACKEND must be smtp in production")
    if problems:
        raise ConfigurationError("Refusing to start in production: " + "; ".join(problems))
