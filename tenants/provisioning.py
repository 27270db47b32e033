"""Creating, suspending and resuming tenants, and routing custom domains to them."""

from __future__ import annotations

import re
import secrets
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.accounts.models import OWNER, STAFF, User
from app.accounts.services import create_user
from app.audit.services import record_audit
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.panels.models import ACTIVE, SUSPENDED, Domain, Tenant
from tenants.context import across_tenants, tenant_scope

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$")
HOSTNAME = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# Subdomains a tenant may not take: the platform's own names, and names that mislead.
RESERVED_SLUGS = frozenset(
    """
    www admin administrator api app apps assets auth billing blog cdn console dashboard demo
    dev docs email ftp help imap login logout mail media mx ns ns1 ns2 panel pasok platform
    pop root security shop signup smtp static status store support system test webhooks
    webmail
    """.split()
)
CURRENCIES = ("USD", "IDR")
LOCALES = ("en", "id")
DEFAULT_TIMEZONE = {"IDR": "Asia/Jakarta"}


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG.match(slug):
        raise ValidationError(
            _l(
                "Slug must be 3-32 lowercase letters, digits or hyphens, "
                "starting and ending with a letter or digit"
            ),
            "slug",
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError(_l("Slug '%(slug)s' is reserved", slug=slug), "slug")
    return slug


def create_tenant(
    *,
    slug: str,
    name: str,
    owner_email: str,
    owner_password: str,
    theme: str = "base",
    currency: str = "USD",
    locale: str | None = None,
    timezone: str | None = None,
    themes: dict | None = None,
    actor: User | str = "system",
) -> Tenant:
    """Create a tenant and its owner in one transaction (the caller commits)."""
    from flask import current_app

    slug = validate_slug(slug)
    name = name.strip()
    if not 1 <= len(name) <= 120:
        raise ValidationError(_l("Name must be 1-120 characters"), "name")
    known_themes = themes if themes is not None else current_app.extensions["pasok_themes"]
    if theme not in known_themes:
        raise ValidationError(
            _l(
                "Unknown theme '%(theme)s' (themes: %(themes)s)",
                theme=theme,
                themes=", ".join(sorted(known_themes)),
            ),
            "theme",
        )
    currency = currency.strip().upper()
    if currency not in CURRENCIES:
        raise ValidationError(
            _l("Currency must be one of %(choices)s", choices=", ".join(CURRENCIES)), "currency"
        )
    locale = (locale or ("id" if currency == "IDR" else "en")).strip().lower()
    if locale not in LOCALES:
        raise ValidationError(
            _l("Locale must be one of %(choices)s", choices=", ".join(LOCALES)), "locale"
        )
    timezone = timezone or DEFAULT_TIMEZONE.get(currency, "UTC")
    if timezone not in available_timezones():
        raise ValidationError(_l("Unknown timezone '%(tz)s'", tz=timezone), "timezone")
    with across_tenants():
        if db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)):
            raise ValidationError(_l("Slug '%(slug)s' is already taken", slug=slug), "slug")
    tenant = Tenant(
        slug=slug,
        name=name,
        status=ACTIVE,
        theme=theme,
        theme_settings={},
        default_locale=locale,
        currency=currency,
        timezone=timezone,
    )
    db.session.add(tenant)
    db.session.flush()
    with tenant_scope(tenant.id):
        owner = create_user(
            kind=STAFF, tenant_id=tenant.id, email=owner_email, password=owner_password, role=OWNER
        )
        record_audit(
            "tenant.create",
            actor=actor,
            tenant_id=tenant.id,
            target=f"tenant:{slug}",
            details={"owner": owner.email, "currency": currency, "theme": theme},
        )
        db.session.flush()
    return tenant


def get_tenant_by_slug(slug: str) -> Tenant:
    with across_tenants():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug.strip().lower()))
    if tenant is None:
        raise NotFound(_l("No tenant '%(slug)s'", slug=slug))
    return tenant


def suspend_tenant(tenant: Tenant, *, reason: str = "", actor: User | str) -> None:
    """Close the panel's storefront, back office and API; its webhooks keep working."""
    if tenant.status == SUSPENDED:
        raise ValidationError(_l("Tenant '%(slug)s' is already suspended", slug=tenant.slug))
    _set_status(tenant, SUSPENDED, reason.strip() or None, actor)


def resume_tenant(tenant: Tenant, *, actor: User | str) -> None:
    if tenant.status != SUSPENDED:
        raise ValidationError(_l("Tenant '%(slug)s' is not suspended", slug=tenant.slug))
    _set_status(tenant, ACTIVE, None, actor)


def _set_status(tenant: Tenant, status: str, reason: str | None, actor: User | str) -> None:
    tenant.status = status
    tenant.suspended_reason = reason
    with tenant_scope(tenant.id):
        record_audit(
            "tenant.suspend" if status == SUSPENDED else "tenant.resume",
            actor=actor,
            tenant_id=tenant.id,
            target=f"tenant:{tenant.slug}",
            details={"reason": reason} if reason else {},
        )
        db.session.flush()


def add_domain(
    tenant: Tenant, hostname: str, *, verified: bool, platform_domain: str, actor: User | str
) -> Domain:
    """Route a custom hostname to `tenant` (now if `verified`, else after the DNS check)."""
    from app.types import utcnow

    hostname = hostname.strip().lower().rstrip(".")
    if not HOSTNAME.match(hostname):
        raise ValidationError(_l("'%(host)s' is not a valid hostname", host=hostname), "hostname")
    if hostname == platform_domain or hostname.endswith("." + platform_domain):
        raise ValidationError(
            _l("Custom domains cannot be under the platform's own domain"), "hostname"
        )
    with across_tenants():
        if db.session.scalar(select(Domain.id).where(Domain.hostname == hostname)):
            raise ValidationError(
                _l("Domain '%(host)s' is already in use", host=hostname), "hostname"
            )
    with tenant_scope(tenant.id):
        domain = Domain(
            tenant_id=tenant.id,
            hostname=hostname,
            verified=verified,
            verification_token=secrets.token_urlsafe(24),
            verified_at=utcnow() if verified else None,
        )
        db.session.add(domain)
        record_audit(
            "domain.add",
            actor=actor,
            tenant_id=tenant.id,
            target=f"domain:{hostname}",
            details={"verified": verified},
        )
        db.session.flush()
    return domain


def save_branding(tenant: Tenant, *, theme: str, settings: dict, actor: User) -> None:
    """Set a tenant's theme and its validated settings."""
    from flask import current_app

    from tenants.theming import validate_settings

    themes = current_app.extensions["pasok_themes"]
    if theme not in themes:
        raise ValidationError(_l("Unknown theme '%(theme)s'", theme=theme), "theme")
    clean = validate_settings(themes[theme], settings)
    tenant.theme = theme
    tenant.theme_settings = clean
    record_audit(
        "tenant.branding",
        actor=actor,
        tenant_id=tenant.id,
        target=f"tenant:{tenant.slug}",
        details={"theme": theme},
    )
