from flask import g, request
from flask_login import current_user, login_required
from sqlalchemy import select

from app.catalog.models import Service
from app.extensions import db
from app.ledger.history import customer_balance
from app.money import format_amount, format_rate
from app.orders.queries import count_customer_orders, customer_orders
from app.pricing.retail import price_list
from app.storefront import bp
from app.storefront.orders import order_rows
from tenants.pagecache import cached_for_visitors
from tenants.web import render_themed

LATEST_ORDERS = 5


@cached_for_visitors
def storefront_home():
    """The tenant's home page (served at `/` by the site blueprint)."""
    return render_themed("storefront/home.html")


@bp.get("/dashboard")
@login_required
def dashboard():
    """The customer's area: the balance, how many orders, and the latest ones."""
    tenant, user = g.tenant, current_user._get_current_object()
    latest = customer_orders(tenant.id, user.id, limit=LATEST_ORDERS)
    return render_themed(
        "storefront/dashboard.html",
        balance=format_amount(customer_balance(tenant, user), tenant.currency),
        order_count=count_customer_orders(tenant.id, user.id),
        rows=order_rows(latest, price_list(tenant.id)) if latest else [],
    )


@bp.get("/services")
@cached_for_visitors
def services():
    """The public price list: the tenant's services by category, searchable and filterable."""
    tenant = g.tenant
    prices = price_list(tenant.id)
    query = request.args.get("q", "").strip()[:100]
    category_id = request.args.get("category", type=int)
    categories = list({p.category_id: p.category for p in prices.prices}.items())
    needle = query.casefold()
    shown = [
        p
        for p in prices.prices
        if (category_id is None or p.category_id == category_id)
        and (not needle or needle in p.name.casefold() or needle in p.category.casefold())
    ]
    details = {}
    if shown:
        rows = db.session.scalars(
            select(Service).where(Service.id.in_([p.service_id for p in shown]))
        )
        details = {s.id: s for s in rows}
    groups: dict[int, dict] = {}
    for p in shown:
        service = details.get(p.service_id)
        if service is None:
            continue
        group = groups.setdefault(p.category_id, {"name": p.category, "items": []})
        group["items"].append(
            {
                "id": p.service_id,
                "name": p.name,
                "description": p.description,
                "rate": format_rate(p.rate, prices.currency),
                "min": service.min_quantity,
                "max": service.max_quantity,
                "refill": service.refill,
                "cancel": service.cancel,
            }
        )
    return render_themed(
        "storefront/services.html",
        groups=list(groups.values()),
        categories=categories,
        query=query,
        category_id=category_id,
        currency=prices.currency,
        total=len(prices),
    )
