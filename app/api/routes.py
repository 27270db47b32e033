"""`<panel host>/api/v2`: the panel's own SMM API v2 (DESIGN.md, "SMM panel API v2").

One URL; `key` and `action` on every call, by POST form, POST JSON or GET query string, the key
also in `X-Api-Key` or `Authorization: Bearer`. The view parses, finds the caller's key, and
calls the same services the storefront uses (`place_order`, the price list, the wallet,
refills and cancels); a domain error becomes `{"error": …}` in English with HTTP 200, never a
500 or an HTML page. With no `action`, `refill`/`refills` reads as `refill_status` and
`order`/`orders` as `status`: only read-only actions are ever inferred.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, jsonify, request
from flask_limiter import RateLimitExceeded
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from app.accounts.models import User
from app.api import bp
from app.api.errors import (
    BAD_TEXT,
    INCORRECT_ORDER,
    INCORRECT_REFILL,
    INCORRECT_REQUEST,
    INCORRECT_SERVICE,
    INTERNAL,
    INVALID_JSON,
    INVALID_KEY,
    NO_PANEL,
    NOT_ENOUGH_FUNDS,
    PANEL_SUSPENDED,
    RATE_LIMITED,
    TOO_MANY_IDS,
    UNKNOWN_ACTION,
    ApiError,
    english,
    error_reply,
)
from app.api.keys import authenticate, touch
from app.api.models import ApiKey
from app.catalog.models import Service
from app.errors import NotFound, PasokError
from app.extensions import db, limiter
from app.ledger import InsufficientFunds
from app.ledger.history import customer_balance
from app.money import format_amount, format_rate
from app.orders.models import (
    API_STATUS,
    COMPLETED,
    REFILL,
    REFILL_COMPLETED,
    REFILL_IN_PROGRESS,
    REFILL_PENDING,
    REFILL_REJECTED,
    REFUSED,
    REQUEST_ERROR,
    REQUESTED,
    SENDING,
    Order,
    UpstreamRequest,
)
from app.orders.queries import MAX_ORDER_ID
from app.orders.services import (
    OrderNotCancelable,
    PanelSuspended,
    cancel_unsent_order,
    place_order,
)
from app.orders.upstream_requests import RequestRefused, request_cancel, request_refill
from app.orders.validation import LIST_PARAMS, OrderRejected
from app.panels.models import Tenant
from app.pricing.retail import customer_discount, price_list, quote
from tenants.context import current_tenant_id

log = logging.getLogger(__name__)

MAX_IDS = 100
ID = re.compile(r"\s*\d{1,10}\s*")
# Parameters that are not an order's own (`add` passes every other one to the order type).
NOT_ORDER_FIELDS = ("key", "action", "service", "ref")
# A refill's state → the refill status clients know.
REFILL_API_STATUS = {
    REQUESTED: "Pending",
    SENDING: "Pending",
    REFILL_PENDING: "Pending",
    REFILL_IN_PROGRESS: "In progress",
    REFILL_COMPLETED: "Completed",
    REFILL_REJECTED: "Rejected",
    REFUSED: "Rejected",
    REQUEST_ERROR: "Error",
}


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    customer: User


# --- the endpoint ----------------------------------------------------------------------------


def api_rate_limit() -> str:
    return current_app.config["PASOK_API_RATE_LIMIT"]


def api_rate_key() -> str:
    """Limits are per API key (and per client address for calls without a working key)."""
    tenant = current_tenant_id() or "platform"
    caller = current_caller()
    if caller is not None:
        return f"api:{tenant}:key:{caller.key.id}"
    return f"api:{tenant}:addr:{request.remote_addr or '-'}"


@bp.route("/api/v2", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@limiter.limit(api_rate_limit, key_func=api_rate_key)
def api_v2():
    """Every action of the SMM panel API v2, at one URL."""
    tenant: Tenant | None = g.get("tenant")
    if tenant is None:
        return error_reply(NO_PANEL)
    if request.method not in ("GET", "POST"):
        return error_reply(INCORRECT_REQUEST)
    try:
        params = request_params()
    except ApiError as error:
        return error_reply(error)
    caller = current_caller()
    if caller is None:
        return error_reply(INVALID_KEY)
    action = params.get("action", "").strip().lower() or inferred_action(params)
    if not action:
        return error_reply(INCORRECT_REQUEST)
    answer = ACTIONS.get(action)
    if answer is None:
        return error_reply(UNKNOWN_ACTION)
    try:
        touch(caller.key)
        reply = answer(tenant, caller.customer, params)
        db.session.commit()
    except ApiError as error:
        db.session.rollback()
        touch(caller.key)  # a refused call still used the key
        db.session.commit()
        return error_reply(error)
    response = jsonify(reply)
    response.headers["Cache-Control"] = "no-store"
    return response


def inferred_action(params: dict[str, str]) -> str | None:
    """A widely copied client omits `action`: only read-only readings are inferred."""
    if "refill" in params or "refills" in params:
        return "refill_status"
    if "order" in params or "orders" in params:
        return "status"
    return None


def current_caller() -> Caller | None:
    """The working key of this call and its customer (looked up once per request)."""
    if "api_caller" not in g:
        g.api_caller = _find_caller()
    return g.api_caller


def _find_caller() -> Caller | None:
    tenant = g.get("tenant")
    if tenant is None:
        return None
    try:
        params = request_params()
    except ApiError:
        return None
    found = authenticate(tenant.id, params.get("key") or key_from_headers())
    return Caller(*found) if found else None


def key_from_headers() -> str | None:
    key = request.headers.get("X-Api-Key", "").strip()
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def request_params() -> dict[str, str]:
    """The call's parameters, all as text: the query string, then a form or JSON object body
    (the body wins). Parsed once per request."""
    if "api_params" in g:
        if isinstance(g.api_params, ApiError):
            raise g.api_params
        return g.api_params
    try:
        g.api_params = _parse_params()
    except ApiError as error:
        g.api_params = error
        raise
    return g.api_params


def _parse_params() -> dict[str, str]:
    params = dict(request.args.items())
    if request.method == "POST":
        body = _json_body()
        if body is not None:
            params.update((str(k), as_text(str(k), v)) for k, v in body.items() if v is not None)
        else:
            params.update(request.form.items())
    for name, value in params.items():
        if "\x00" in name or "\x00" in value or not _encodable(name + value):
            raise ApiError(BAD_TEXT)
    return params


def _json_body() -> dict[str, Any] | None:
    """The JSON object sent, None for a form; a body that says JSON and is not, is refused."""
    data = request.get_data(cache=True)
    looks_like_json = request.is_json or (
        not request.mimetype.startswith(("multipart/", "application/x-www-form-urlencoded"))
        and data.lstrip()[:1] == b"{"
    )
    if not looks_like_json:
        return None
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise ApiError(INVALID_JSON) from None
    if not isinstance(body, dict):
        raise ApiError(INCORRECT_REQUEST)
    return body


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return False
    return True


def as_text(name: str, value: Any) -> str:
    """A JSON value as a form would have sent it: 100 → "100"; a list of comments → one per
    line; a list of ids → "1,2"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        separator = "\n" if name in LIST_PARAMS else ","
        return separator.join(as_text(name, v) for v in value if not isinstance(v, list | dict))
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


# --- errors: always JSON, never an HTML page ------------------------------------------------


@bp.after_request
def suspended_panel_in_json(response: Response) -> Response:
    # The tenancy layer answers a suspended panel's requests with its themed page before any
    # view runs; API clients get the API's error instead.
    tenant = g.get("tenant")
    if tenant is not None and tenant.is_suspended and response.mimetype != "application/json":
        return error_reply(PANEL_SUSPENDED)
    return response


@bp.errorhandler(RateLimitExceeded)
def rate_limited(error: RateLimitExceeded):
    db.session.rollback()
    limit = limiter.current_limit
    seconds = 1
    if limit is not None:
        seconds = max(1, int(limit.reset_at - time.time()) + 1)
    response = error_reply(RATE_LIMITED.format(limit=error.limit.limit, seconds=seconds))
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.errorhandler(404)
def unknown_host(error):
    # The only 404 here: the host is no panel (the tenancy layer refuses it before the view).
    return error_reply(NO_PANEL)


@bp.errorhandler(400)
@bp.errorhandler(405)
@bp.errorhandler(413)
@bp.errorhandler(HTTPException)
def bad_http_request(error):
    db.session.rollback()
    return error_reply(INCORRECT_REQUEST)


@bp.errorhandler(500)
@bp.errorhandler(Exception)
def internal_error(error):
    db.session.rollback()
    log.exception("API v2 call failed", exc_info=error)
    return error_reply(INTERNAL, 500)


# --- the actions -----------------------------------------------------------------------------


def services(tenant: Tenant, customer: User, params: dict[str, str]) -> list[dict[str, Any]]:
    """The price list at this customer's own rates."""
    prices = price_list(tenant.id)
    ids = [p.service_id for p in prices.prices]
    details = (
        {s.id: s for s in db.session.scalars(select(Service).where(Service.id.in_(ids)))}
        if ids
        else {}
    )
    discounted = customer_discount(tenant.id, customer.id)[0] > 0
    rows = []
    for p in prices.prices:
        service = details.get(p.service_id)
        if service is None:
            continue
        rate = quote(tenant.id, p.service_id, customer.id).rate if discounted else p.rate
        rows.append(
            {
                "service": p.service_id,
                "name": p.name,
                "type": service.type,
                "category": p.category,
                "rate": format_rate(rate, prices.currency),
                "min": str(service.min_quantity),
                "max": str(service.max_quantity),
                "refill": bool(service.refill),
                "cancel": bool(service.cancel),
                "dripfeed": bool(service.dripfeed),
            }
        )
    return rows


def balance(tenant: Tenant, customer: User, params: dict[str, str]) -> dict[str, str]:
    amount = customer_balance(tenant, customer)
    return {"balance": format_amount(amount, tenant.currency), "currency": tenant.currency}


def add(tenant: Tenant, customer: User, params: dict[str, str]) -> dict[str, int]:
    """Place one order through `place_order`; the same `ref` again gets the same order."""
    fields = {k: v for k, v in params.items() if k not in NOT_ORDER_FIELDS}
    try:
        placed = place_order(
            tenant_id=tenant.id,
            customer_id=customer.id,
            service_id=params.get("service", ""),
            fields=fields,
            ref=params.get("ref"),
            actor=customer,
        )
    except OrderRejected as error:
        message = english(error.args[0])
        if error.field == "service" and message == "Unknown service":
            raise ApiError(INCORRECT_SERVICE) from None
        raise ApiError(message) from None
    except InsufficientFunds:
        raise ApiError(NOT_ENOUGH_FUNDS) from None
    except PanelSuspended:
        raise ApiError(PANEL_SUSPENDED) from None
    except NotFound:
        raise ApiError(INVALID_KEY) from None
    except PasokError as error:
        raise ApiError(english(error.args[0])) from None
    return {"order": placed.order.id}


def status(tenant: Tenant, customer: User, params: dict[str, str]) -> dict[str, Any]:
    if "orders" in params:
        wanted = listed_ids(params["orders"], INCORRECT_ORDER)
        found = own_orders(customer, wanted)
        return {
            text: order_status(found[number]) if number in found else {"error": INCORRECT_ORDER}
            for text, number in wanted
        }
    number = parse_id(params.get("order", ""))
    found = own_orders(customer, [("", number)]) if number else {}
    if number not in found:
        raise ApiError(INCORRECT_ORDER)
    return order_status(found[number])


def order_status(order: Order) -> dict[str, str]:
    visible = API_STATUS[order.status]
    if order.remains is not None:
        remains = order.remains
    else:
        remains = 0 if order.status == COMPLETED else order.quantity
    return {
        "charge": format_amount(order.charge, order.currency),
        "start_count": str(order.start_count or 0),
        "status": visible,
        "remains": str(remains),
        "currency": order.currency,
    }


def refill(tenant: Tenant, customer: User, params: dict[str, str]) -> Any:
    if "orders" in params:
        wanted = listed_ids(params["orders"], INCORRECT_ORDER)
        return [
            {"order": as_id(text, number), "refill": _each(lambda n: _refill(customer, n), number)}
            for text, number in wanted
        ]
    request_id = _refill(customer, parse_id(params.get("order", "")))
    return {"refill": str(request_id)}


def _refill(customer: User, order_id: int | None) -> int:
    if order_id is None:
        raise ApiError(INCORRECT_ORDER)
    try:
        made = request_refill(order_id, actor=customer, customer_id=customer.id)
    except NotFound:
        raise ApiError(INCORRECT_ORDER) from None
    except RequestRefused as error:
        raise ApiError(english(error.args[0])) from None
    return made.id


def refill_status(tenant: Tenant, customer: User, params: dict[str, str]) -> Any:
    if "refills" in params:
        wanted = listed_ids(params["refills"], INCORRECT_REFILL)
        found = own_refills(customer, wanted)
        return [
            {
                "refill": as_id(text, number),
                "status": REFILL_API_STATUS.get(found[number].state, "Pending")
                if number in found
                else {"error": INCORRECT_REFILL},
            }
            for text, number in wanted
        ]
    number = parse_id(params.get("refill", ""))
    found = own_refills(customer, [("", number)]) if number else {}
    if number not in found:
        raise ApiError(INCORRECT_REFILL)
    return {"status": REFILL_API_STATUS.get(found[number].state, "Pending")}


def cancel(tenant: Tenant, customer: User, params: dict[str, str]) -> list[dict[str, Any]]:
    """Cancel each order: at once with a full refund while it is unsent, else by asking the
    provider (what was not delivered is refunded once the provider confirms)."""
    sent = params.get("orders") if "orders" in params else params.get("order", "")
    wanted = listed_ids(sent, INCORRECT_ORDER)
    found = own_orders(customer, wanted)
    return [
        {
            "order": as_id(text, number),
            "cancel": _each(lambda n: _cancel(customer, found.get(n)), number),
        }
        for text, number in wanted
    ]


def _cancel(customer: User, order: Order | None) -> int:
    if order is None:
        raise ApiError(INCORRECT_ORDER)
    try:
        if order.is_unsent:
            cancel_unsent_order(order.id, customer.id, actor=customer)
        else:
            request_cancel(order.id, actor=customer, customer_id=customer.id)
    except NotFound:
        raise ApiError(INCORRECT_ORDER) from None
    except (OrderNotCancelable, RequestRefused) as error:
        raise ApiError(english(error.args[0])) from None
    return 1


ACTIONS: dict[str, Callable[[Tenant, User, dict[str, str]], Any]] = {
    "services": services,
    "balance": balance,
    "add": add,
    "status": status,
    "refill": refill,
    "refill_status": refill_status,
    "cancel": cancel,
}


# --- ids -------------------------------------------------------------------------------------


def parse_id(text: str) -> int | None:
    """A positive id that fits the id columns, or None."""
    if not ID.fullmatch(text or ""):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ORDER_ID else None


def listed_ids(text: str, empty_error: str) -> list[tuple[str, int | None]]:
    """Comma-separated ids, each once in the order given, as (the text sent, the id or None)."""
    parts = list(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))
    if not parts:
        raise ApiError(empty_error)
    if len(parts) > MAX_IDS:
        raise ApiError(TOO_MANY_IDS)
    return [(part, parse_id(part)) for part in parts]


def as_id(text: str, number: int | None) -> int | str:
    """How a reply names an id the client sent: a number when it is one."""
    return number if number is not None else text


def own_orders(customer: User, wanted: list[tuple[str, int | None]]) -> dict[int, Order]:
    ids = [number for _, number in wanted if number is not None]
    if not ids:
        return {}
    rows = db.session.scalars(
        select(Order).where(
            Order.id.in_(ids),
            Order.tenant_id == customer.tenant_id,
            Order.customer_id == customer.id,
        )
    )
    return {order.id: order for order in rows}


def own_refills(customer: User, wanted: list[tuple[str, int | None]]) -> dict[int, UpstreamRequest]:
    ids = [number for _, number in wanted if number is not None]
    if not ids:
        return {}
    rows = db.session.scalars(
        select(UpstreamRequest)
        .join(Order, Order.id == UpstreamRequest.order_id)
        .where(
            UpstreamRequest.id.in_(ids),
            UpstreamRequest.kind == REFILL,
            UpstreamRequest.tenant_id == customer.tenant_id,
            Order.customer_id == customer.id,
        )
    )
    return {row.id: row for row in rows}


def _each(step: Callable[[int | None], Any], number: int | None) -> Any:
    """One id of a multi call: its answer, or its own `{"error": …}`."""
    try:
        return step(number)
    except ApiError as error:
        return {"error": str(error)}
