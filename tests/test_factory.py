import pytest

from app import create_app
from app.config import DEFAULT_SECRET_KEY, ConfigurationError


def test_config_overrides_the_environment(base_config):
    app = create_app({**base_config, "PASOK_PLATFORM_DOMAIN": "panel.test"})
    assert app.config["PASOK_PLATFORM_DOMAIN"] == "panel.test"
    assert app.config["TESTING"] is True


def test_defaults_without_overrides(monkeypatch):
    for name in ("DATABASE_URL", "PASOK_PLATFORM_DOMAIN", "PASOK_PLATFORM_CURRENCY", "PASOK_ENV"):
        monkeypatch.delenv(name, raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("instance/pasok.sqlite3")
    assert app.config["PASOK_PLATFORM_DOMAIN"] == "localhost"
    assert app.config["PASOK_PLATFORM_CURRENCY"] == "USD"
    assert app.config["SESSION_COOKIE_DOMAIN"] is None


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/pasok")
    assert create_app().config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/pasok"


@pytest.mark.parametrize(
    "overrides, complaint",
    [
        ({}, "SECRET_KEY is missing or the development default"),
        ({"SECRET_KEY": DEFAULT_SECRET_KEY}, "development default"),
        ({"SECRET_KEY": "short"}, "shorter than 32"),
        ({"SECRET_KEY": "x" * 40, "PASOK_SECRET_KEYS": ""}, "PASOK_SECRET_KEYS is missing"),
    ],
)
def test_production_refuses_default_or_missing_secrets(monkeypatch, overrides, complaint):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("PASOK_SECRET_KEYS", raising=False)
    config = {"PASOK_ENV": "production", "PASOK_MAIL_BACKEND": "smtp", **overrides}
    if "SECRET_KEY" not in overrides:
        config["SECRET_KEY"] = ""
    with pytest.raises(ConfigurationError, match=complaint):
        create_app(config)


def test_production_starts_with_real_secrets():
    app = create_app(
        {
            "PASOK_ENV": "production",
            "SECRET_KEY": "k" * 48,
            "PASOK_SECRET_KEYS": "a-fernet-key",
            "PASOK_MAIL_BACKEND": "smtp",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
