"""Central query scoping. It fails closed: tenant-owned data is never read or written
without a scope, and never outside the scope's tenant."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from tenants.context import current_scope


class TenantOwned:
    """Marks a model whose rows belong to a tenant (its `tenant_id` column)."""

    tenant_id: int | None


class TenantScopeError(RuntimeError):
    """Tenant-owned data was touched with no tenant in scope, or across tenants."""


def _owned_mappers(state: ORMExecuteState) -> list:
    return [m for m in state.all_mappers if issubclass(m.class_, TenantOwned)]


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("across_tenants"):
        return
    scope = current_scope()
    if scope is None:
        owned = _owned_mappers(state)
        if owned:
            names = ", ".join(sorted(m.class_.__name__ for m in owned))
            raise TenantScopeError(f"query of tenant-owned {names} with no tenant in scope")
        return
    if scope.across_tenants:
        return
    state.statement = state.statement.options(*_criteria_for(scope.tenant_id))


@lru_cache(maxsize=4096)
def _criteria_for(tenant_id: int | None) -> tuple:
    """One criteria option per tenant-owned model, so joins and relationship loads are
    scoped too, not only the statement's first entity. Built once per tenant: the options are
    immutable, and building a dozen lambda criteria costs more than most queries they scope."""
    if tenant_id is None:
        return tuple(
            with_loader_criteria(cls, lambda c: c.tenant_id.is_(None), include_aliases=True)
            for cls in _owned_models()
        )
    return tuple(
        with_loader_criteria(cls, lambda c: c.tenant_id == tenant_id, include_aliases=True)
        for cls in _owned_models()
    )


def _owned_models() -> list[type]:
    from app.extensions import Base

    return [m.class_ for m in Base.registry.mappers if issubclass(m.class_, TenantOwned)]


@event.listens_for(Session, "before_flush")
def _check_scoped_writes(session: Session, flush_context, instances) -> None:
    """Writes set `tenant_id` explicitly, and only ever to the tenant in scope."""
    changed = [
        o for o in (*session.new, *session.dirty, *session.deleted) if isinstance(o, TenantOwned)
    ]
    if not changed:
        return
    scope = current_scope()
    if scope is None:
        raise TenantScopeError("write of tenant-owned data with no tenant in scope")
    if scope.across_tenants:
        return
    for obj in changed:
        if obj.tenant_id != scope.tenant_id:
            raise TenantScopeError(
                f"write of {type(obj).__name__} for tenant {obj.tenant_id} "
                f"in the scope of tenant {scope.tenant_id}"
            )


def belongs_to_current_scope(obj: TenantOwned | None) -> bool:
    """The explicit check for id lookups (which the identity map may answer without SQL)."""
    scope = current_scope()
    if obj is None or scope is None:
        return False
    return scope.across_tenants or obj.tenant_id == scope.tenant_id
