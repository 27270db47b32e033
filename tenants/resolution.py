"""Host header → tenant, cached in process.

Entries live `PASOK_TENANT_CACHE_SECONDS` (3 s by default), so a change made by any process
(suspension, domain, theme) is seen by every other process within that time; the process that
commits the change drops its cache at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.panels.models import SUSPENDED, Domain, Tenant
from tenants.context import across_tenants

PLATFORM = "platform"
TENANT = "tenant"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class TenantInfo:
    """A read-only snapshot of a tenant, safe to share between requests and threads."""

    id: int
    slug: str
    name: str
    status: str
    suspended_reason: str | None
    theme: str
    theme_settings: MappingProxyType
    default_locale: str
    currency: str
    timezone: str

    @property
    def is_suspended(self) -> bool:
        return self.status == SUSPENDED

    @classmethod
    def of(cls, tenant: Tenant) -> TenantInfo:
        return cls(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            status=tenant.status,
            suspended_reason=tenant.suspended_reason,
            theme=tenant.theme,
            theme_settings=MappingProxyType(dict(tenant.theme_settings or {})),
            default_locale=tenant.default_locale,
            currency=tenant.currency,
            timezone=tenant.timezone,
        )


@dataclass(frozen=True)
class HostMatch:
    kind: str
    tenant: TenantInfo | None = None


UNKNOWN_HOST = HostMatch(UNKNOWN)
PLATFORM_HOST = HostMatch(PLATFORM)


def normalize_host(host: str) -> str:
    """`Acme.Example.COM.:443` → `acme.example.com`; IPv6 literals keep their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    host = host.rsplit(":", 1)[0] if ":" in host else host
    return host.rstrip(".")


class TenantResolver:
    def __init__(self, platform_domain: str, ttl_seconds: float, clock=time.monotonic):
        self.platform_domain = platform_domain
        self.ttl = ttl_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, HostMatch]] = {}
        self._lock = threading.Lock()

    def resolve(self, raw_host: str) -> HostMatch:
        host = normalize_host(raw_host)
        now = self.clock()
        cached = self._cache.get(host)
        if cached and cached[0] > now:
            return cached[1]
        match = self._lookup(host)
        with self._lock:
            self._cache[host] = (now + self.ttl, match)
        return match

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def _lookup(self, host: str) -> HostMatch:
        if not host:
            return UNKNOWN_HOST
        if host in (self.platform_domain, f"www.{self.platform_domain}"):
            return PLATFORM_HOST
        suffix = f".{self.platform_domain}"
        with across_tenants():
            if host.endswith(suffix):
                slug = host[: -len(suffix)]
                if "." in slug:
                    return UNKNOWN_HOST
                tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
            else:
                tenant = db.session.scalar(
                    select(Tenant)
                    .join(Domain, Domain.tenant_id == Tenant.id)
                    .where(Domain.hostname == host, Domain.verified.is_(True))
                )
            return HostMatch(TENANT, TenantInfo.of(tenant)) if tenant else UNKNOWN_HOST


_resolvers: list[TenantResolver] = []


def register_resolver(resolver: TenantResolver) -> None:
    _resolvers.append(resolver)


def _invalidate_all() -> None:
    for resolver in _resolvers:
        resolver.invalidate()


@event.listens_for(Session, "after_flush")
def _note_tenancy_changes(session: Session, flush_context) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, Tenant | Domain) for obj in touched):
        session.info["tenancy_changed"] = True


@event.listens_for(Session, "after_commit")
def _drop_cache_after_tenancy_change(session: Session) -> None:
    if session.info.pop("tenancy_changed", False):
        _invalidate_all()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_changes(session: Session) -> None:
    session.info.pop("tenancy_changed", None)
