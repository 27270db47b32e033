"""Every model, imported so that the metadata (and Alembic) sees them all."""

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.panels.models import Domain, Tenant

__all__ = ["AuditEntry", "Domain", "Tenant", "User"]
