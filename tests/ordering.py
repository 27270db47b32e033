"""A shop to order from, for the storefront ordering tests (test client and Chromium).

acme sells in USD, nusa in IDR (USD/IDR 16000). Every service costs 1.00 USD per 1000
wholesale, so acme's default 30% markup sells at 1.30 USD and nusa's at 20800 IDR per 1000.
"""

from __future__ import annotations

from decimal import Decimal

from app.accounts.models import User
from app.catalog.models import PUBLISHED, UNLISTED, Category, Service, ServiceRoute
from app.extensions import db
from app.money.fx import set_rate
from app.panels.models import Tenant
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants

D = Decimal
LINK = "https://instagram.com/p/abc123"

# name: (category, order type, min, max, dripfeed, refill, cancel, average seconds, status)
SERVICES = {
    "likes": ("Instagram", "Default", 10, 1000, True, True, True, 7200, PUBLISHED),
    "views": ("Instagram", "Default", 100, 10000, False, False, False, None, PUBLISHED),
    "comments": ("Instagram", "Custom Comments", 2, 5, False, False, False, None, PUBLISHED),
    "package": ("Instagram", "Package", 1, 1, False, False, False, None, PUBLISHED),
    "subs": ("TikTok", "Subscriptions", 10, 1000, False, False, False, None, PUBLISHED),
    "hidden": ("TikTok", "Default", 10, 1000, False, False, False, None, UNLISTED),
}


def build_shop(app, make, *, theme: str = "base", locale: str | None = None) -> dict[str, int]:
    """The tenants, their customers and the catalog; returns their ids by name."""
    ids = {
        "acme": make.tenant("acme", theme=theme, locale=locale),
        "nusa": make.tenant("nusa", currency="IDR", theme=theme),
    }
    ids["alice"] = make.customer(ids["acme"], "alice@example.com")
    ids["bob"] = make.customer(ids["acme"], "bob@example.com")
    ids["budi"] = make.customer(ids["nusa"], "budi@example.com")
    with app.app_context(), across_tenants():
        provider = Provider(name="up", api_url="http://x.example/api/v2", api_key="k")
        categories: dict[str, Category] = {}
        for name, spec in SERVICES.items():
            category_name, kind, low, high, drip, refill, cancel, average, status = spec
            category = categories.setdefault(
                category_name, Category(name=category_name, position=len(categories) + 1)
            )
            service = Service(
                category=category, name=f"{name.title()} service", type=kind,
                description=f"All about {name}.", min_quantity=low, max_quantity=high,
                dripfeed=drip, refill=refill, cancel=cancel, average_seconds=average,
                status=status,
            )  # fmt: skip
            upstream = ProviderService(
                provider=provider, external_id=name, name=name, category="x", type=kind,
                rate=D("1.00"), min_quantity=low, max_quantity=high,
            )  # fmt: skip
            db.session.add_all([service, upstream])
            db.session.add(ServiceRoute(service=service, provider_service=upstream))
            db.session.flush()
            ids[name] = service.id
        set_rate("USD", "IDR", "16000", actor="test")
        db.session.commit()
    return ids


def fund(app, customer_id: int, amount: str, reason: str = "opening credit") -> None:
    """Credit a customer's wallet, as staff would."""
    from app.ledger import adjust_customer

    with app.app_context(), across_tenants():
        adjust_customer(db.session.get(User, customer_id), D(amount), reason, "test")
        db.session.commit()


def fund_tenant(app, tenant_id: int, amount: str) -> None:
    """Credit a tenant's wholesale wallet, so its orders go on rather than wait on hold."""
    from app.ledger import topup_tenant

    with app.app_context(), across_tenants():
        topup_tenant(db.session.get(Tenant, tenant_id), D(amount), "opening", "test")
        db.session.commit()
