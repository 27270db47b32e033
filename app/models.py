"""Every model, imported so that the metadata (and Alembic) sees them all."""

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.catalog.models import CatalogChange, Category, Service, ServiceRoute
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.money.models import FxRate
from app.panels.models import Domain, Tenant
from app.pricing.models import WholesaleRule
from app.providers.models import Provider, ProviderService

__all__ = [
    "AuditEntry",
    "CatalogChange",
    "Category",
    "Domain",
    "FxRate",
    "JournalEntry",
    "LedgerAccount",
    "Posting",
    "Provider",
    "ProviderService",
    "Service",
    "ServiceRoute",
    "Tenant",
    "User",
    "WholesaleRule",
]
