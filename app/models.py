"""Every model, imported so that the metadata (and Alembic) sees them all."""

from app.accounts.models import User
from app.api.models import ApiKey
from app.audit.models import AuditEntry
from app.catalog.models import CatalogChange, Category, Service, ServiceRoute
from app.ledger.models import JournalEntry, LedgerAccount, Posting
from app.money.models import FxRate
from app.orders.models import Order
from app.panels.models import Domain, Tenant
from app.payments.models import GatewayAccount, GatewayEvent, Topup
from app.pricing.models import WholesaleRule
from app.pricing.tenant_models import (
    CatalogOverride,
    CustomerGroup,
    CustomerPricing,
    PriceRule,
    TenantPricing,
)
from app.providers.models import Provider, ProviderService

__all__ = [
    "ApiKey",
    "AuditEntry",
    "CatalogChange",
    "CatalogOverride",
    "Category",
    "CustomerGroup",
    "CustomerPricing",
    "Domain",
    "FxRate",
    "GatewayAccount",
    "GatewayEvent",
    "JournalEntry",
    "LedgerAccount",
    "Order",
    "Posting",
    "PriceRule",
    "Provider",
    "ProviderService",
    "Service",
    "ServiceRoute",
    "Tenant",
    "TenantPricing",
    "Topup",
    "User",
    "WholesaleRule",
]
