"""Adding, editing and checking upstream providers."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit.services import record_audit
from app.errors import NotFound, PasokError, ValidationError
from app.extensions import db
from app.money import currency as known_currency
from app.providers.client import Balance
from app.providers.models import Provider
from app.types import utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProviderUnreachable(PasokError):
    pass


def validate_provider_fields(name: str, api_url: str, api_key: str, currency: str) -> tuple:
    name = name.strip()
    if not NAME.match(name):
        raise ValidationError(
            _l("Provider name must be 1-64 letters, digits, '.', '_' or '-'"), "name"
        )
    api_url = api_url.strip()
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_l("API URL must be an http:// or https:// address"), "api_url")
    api_key = api_key.strip()
    if not api_key or len(api_key) > 500:
        raise ValidationError(_l("API key must be 1-500 characters"), "api_key")
    return name, api_url, api_key, known_currency(currency.strip().upper()).code


def add_provider(
    name: str,
    api_url: str,
    api_key: str,
    *,
    currency: str = "USD",
    honours_ref: bool = False,
    timeout_seconds: float = 15.0,
    actor,
) -> Provider:
    name, api_url, api_key, currency = validate_provider_fields(name, api_url, api_key, currency)
    if db.session.scalar(select(Provider.id).where(Provider.name == name)):
        raise ValidationError(_l("A provider named '%(name)s' already exists", name=name), "name")
    if not 1 <= timeout_seconds <= 120:
        raise ValidationError(_l("Timeout must be 1-120 seconds"), "timeout_seconds")
    provider = Provider(
        name=name,
        api_url=api_url,
        api_key=api_key,
        currency=currency,
        honours_ref=honours_ref,
        timeout_seconds=timeout_seconds,
        enabled=True,
    )
    db.session.add(provider)
    db.session.flush()
    record_audit(
        "provider.add",
        actor=actor,
        tenant_id=None,
        target=f"provider:{name}",
        details={"api_url": api_url, "currency": currency, "honours_ref": honours_ref},
    )
    return provider


def update_provider(
    provider: Provider,
    *,
    api_url: str,
    api_key: str | None,
    currency: str,
    honours_ref: bool,
    enabled: bool,
    timeout_seconds: float,
    actor,
) -> None:
    """Edit a provider; an empty `api_key` keeps the stored one."""
    _, api_url, _, currency = validate_provider_fields(
        provider.name, api_url, api_key or provider.api_key, currency
    )
    if not 1 <= timeout_seconds <= 120:
        raise ValidationError(_l("Timeout must be 1-120 seconds"), "timeout_seconds")
    provider.api_url = api_url
    if api_key:
        provider.api_key = api_key.strip()
    provider.currency = currency
    provider.honours_ref = honours_ref
    provider.enabled = enabled
    provider.timeout_seconds = timeout_seconds
    record_audit(
        "provider.update",
        actor=actor,
        tenant_id=None,
        target=f"provider:{provider.name}",
        details={
            "api_url": api_url,
            "key_changed": bool(api_key),
            "currency": currency,
            "honours_ref": honours_ref,
            "enabled": enabled,
        },
    )


def get_provider(name: str) -> Provider:
    provider = db.session.scalar(select(Provider).where(Provider.name == name.strip()))
    if provider is None:
        raise NotFound(_l("No provider '%(name)s'", name=name))
    return provider


def check_balance(provider: Provider) -> Balance:
    """Ask the upstream for its balance (the connection test) and remember the answer."""
    reply = provider.client().balance()
    if not reply.ok:
        raise ProviderUnreachable(
            _l("%(provider)s did not answer: %(error)s", provider=provider.name, error=reply.error)
        )
    provider.last_balance = reply.data.amount.quantize(Decimal("0.000001"))
    provider.last_checked_at = utcnow()
    return reply.data
