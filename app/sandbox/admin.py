"""`/__sandbox/…`: hooks for tests and demos to look inside the sandbox and steer it.

Bad input answers HTTP 400 with `{"error": …}`; these are not part of the panel API.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from flask import Blueprint, current_app, request

from app.sandbox.options import MAX_SERVICES, parse_money
from app.sandbox.panel import SandboxPanel, parse_id, parse_rate

admin = Blueprint("sandbox_admin", __name__, url_prefix="/__sandbox")


def current_panel() -> SandboxPanel:
    return current_app.extensions["sandbox"]


@admin.errorhandler(ValueError)
def bad_request(error: ValueError):
    return {"error": str(error)}, 400


@admin.get("/orders")
def orders():
    """Every order held, oldest first; `?link=`, `?ref=`, `?service=`, `?status=` narrow it."""
    listed = current_panel().listed_orders(request.args)
    return {"count": len(listed), "orders": listed}


@admin.post("/clock")
def clock():
    """Move the sandbox's clock forward: `{"advance": seconds}`."""
    seconds = json_body().get("advance")
    if isinstance(seconds, bool) or not isinstance(seconds, int | Decimal):
        raise ValueError("advance must be a number of seconds")
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("advance must be a number of seconds, 0 or more")
    return {"advanced": seconds, "now": current_panel().advance_clock(seconds)}


@admin.post("/reset")
def reset():
    """Forget every order and refill; restore the starting catalog, balance and settings."""
    current_panel().reset()
    return {"reset": True}


@admin.post("/catalog")
def catalog():
    """Change the catalog: `{"reprice": {id: rate}, "update": {id: {field: value}},
    "remove": [id, …], "add": n}`, any of them, applied together or not at all."""
    body = json_body()
    unknown = set(body) - {"reprice", "update", "remove", "add"}
    if unknown:
        raise ValueError(f"unknown catalog change {sorted(unknown)[0]!r}")
    reprice = {service_id(k): parse_rate(v) for k, v in mapping(body, "reprice").items()}
    update = {service_id(k): mapping(v, None) for k, v in mapping(body, "update").items()}
    remove = body.get("remove", [])
    if not isinstance(remove, list):
        raise ValueError("remove must be a list of service ids")
    add = body.get("add", 0)
    if isinstance(add, bool) or not isinstance(add, int) or not 0 <= add <= MAX_SERVICES:
        raise ValueError(f"add must be a number of services from 0 to {MAX_SERVICES}")
    return current_panel().change_catalog(reprice, update, [service_id(i) for i in remove], add)


@admin.route("/settings", methods=["GET", "POST"])
def settings():
    """The settings that may change while running; POST some of them to change them."""
    panel = current_panel()
    if request.method == "POST":
        return panel.adjust(json_body())
    return panel.options.adjustable()


@admin.post("/balance")
def balance():
    """Set the balance: `{"balance": "12.50"}`."""
    return current_panel().set_balance(parse_money("balance", json_body().get("balance")))


def json_body() -> dict[str, Any]:
    """The request's JSON object, its decimals kept exact."""
    try:
        body = json.loads(request.get_data() or b"{}", parse_float=Decimal)
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def mapping(holder: Any, name: str | None) -> dict[Any, Any]:
    value = holder if name is None else holder.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{name or 'a service update'} must be an object")
    return value


def service_id(value: Any) -> int:
    number = None if isinstance(value, bool) else parse_id(str(value))
    if number is None:
        raise ValueError(f"{value!r} is not a service id")
    return number
