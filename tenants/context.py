"""The scope every query runs in: one tenant, the platform, or explicitly across tenants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """`tenant_id=None` without `across_tenants` is the platform: rows that belong to no tenant."""

    tenant_id: int | None
    across_tenants: bool = False


PLATFORM = Scope(tenant_id=None)
ACROSS_TENANTS = Scope(tenant_id=None, across_tenants=True)

_current_scope: ContextVar[Scope | None] = ContextVar("pasok_scope", default=None)


def current_scope() -> Scope | None:
    return _current_scope.get()


def current_tenant_id() -> int | None:
    scope = _current_scope.get()
    return scope.tenant_id if scope else None


def enter_scope(scope: Scope) -> Token:
    return _current_scope.set(scope)


def leave_scope(token: Token) -> None:
    _current_scope.reset(token)


@contextmanager
def scoped(scope: Scope) -> Iterator[Scope]:
    token = enter_scope(scope)
    try:
        yield scope
    finally:
        leave_scope(token)


def tenant_scope(tenant_id: int):
    """Run the block as tenant `tenant_id`: every tenant-owned query sees only its rows."""
    return scoped(Scope(tenant_id=tenant_id))


def platform_scope():
    """Run the block as the platform: tenant-owned queries see only rows with no tenant."""
    return scoped(PLATFORM)


def across_tenants():
    """Run the block across every tenant. Only workers, the CLI and the operator console may."""
    return scoped(ACROSS_TENANTS)
