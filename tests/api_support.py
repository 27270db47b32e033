"""Helpers for the API v2 tests: a shop with funded customers, keys, and calls."""

from __future__ import annotations

from sqlalchemy import update

from app.api.keys import create_key
from app.extensions import db
from app.orders.models import Order
from app.providers.models import Provider
from app.types import utcnow
from tenants.context import across_tenants, tenant_scope
from tests.ordering import build_shop, fund, fund_tenant

ACME = "acme.localhost"
NUSA = "nusa.localhost"


def api_shop(app, make, **kwargs) -> dict[str, int]:
    """acme (USD) and nusa (IDR) with their catalog; alice and budi funded, bob not."""
    ids = build_shop(app, make, **kwargs)
    fund(app, ids["alice"], "100")
    fund(app, ids["budi"], "1000000")
    fund_tenant(app, ids["acme"], "1000")
    fund_tenant(app, ids["nusa"], "1000")
    return ids


def new_key(app, tenant_id: int, customer_id: int, label: str = "") -> str:
    with app.app_context(), tenant_scope(tenant_id):
        token = create_key(tenant_id, customer_id, label, actor="test").token
        db.session.commit()
    return token


def upstream(app, order_id: int, status: str, **values) -> None:
    """Move an order as the pipeline would: sent upstream, now at `status`."""
    with app.app_context(), across_tenants():
        provider_id = db.session.scalar(db.select(Provider.id))
        db.session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(
                status=status,
                provider_id=provider_id,
                external_id=f"up-{order_id}",
                finished_at=utcnow(),
                **values,
            )
        )
        db.session.commit()


class Api:
    """Calls to one panel's `/api/v2` through the Flask test client."""

    def __init__(self, app, host: str = ACME, key: str | None = None):
        self.client = app.test_client()
        self.host = host
        self.key = key

    def __call__(self, action: str | None = None, *, how: str = "form", **params):
        if action is not None:
            params["action"] = action
        if self.key is not None and "key" not in params:
            params["key"] = self.key
        url = f"http://{self.host}"
        if how == "form":
            response = self.client.post("/api/v2", data=params, base_url=url)
        elif how == "json":
            response = self.client.post("/api/v2", json=params, base_url=url)
        elif how == "get":
            response = self.client.get("/api/v2", query_string=params, base_url=url)
        else:
            raise ValueError(how)
        assert response.status_code == 200, response.data[:500]
        assert response.mimetype == "application/json", response.data[:500]
        return response.get_json()
