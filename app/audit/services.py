from __future__ import annotations

from typing import Any

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.extensions import db


def record_audit(
    action: str,
    *,
    actor: User | str,
    tenant_id: int | None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record a money, price or permission change in the caller's transaction.

    `actor` is the user who acted, or a label such as ``"cli"`` or ``"system"``.
    """
    entry = AuditEntry(
        tenant_id=tenant_id,
        actor_id=actor.id if isinstance(actor, User) else None,
        actor_label=actor.email if isinstance(actor, User) else actor,
        action=action,
        target=target,
        details=details or {},
    )
    db.session.add(entry)
    return entry
