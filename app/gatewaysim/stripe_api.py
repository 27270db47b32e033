"""The simulator's Stripe: the API subset Pasok calls, the hosted pay page, admin actions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

from app.gatewaysim.delivery import DeliveryLog, Webhook

API_VERSION = "2024-06-20"
SECRET_SALT = b"pasok-gateway-simulator"
DEFAULT_EXPIRY_SECONDS = 24 * 3600
MIN_EXPIRY_SECONDS = 30 * 60
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx"}
ZERO_DECIMAL |= {"vnd", "vuv", "xaf", "xof", "xpf"}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "idr": "Rp", "inr": "₹"}
ALPHANUMERIC = string.ascii_letters + string.digits


def stripe_webhook_secret(api_key: str, url: str) -> str:
    """The signing secret of `url`'s endpoint in `api_key`'s account: derived, not random, so
    re-registering after a simulator restart gives the secret the receiver already holds."""
    digest = hmac.new(SECRET_SALT, f"{api_key}|{url}".encode(), hashlib.sha256).hexdigest()
    return "whsec_" + digest[:32]


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(24))


class StripeError(Exception):
    """An API error in Stripe's shape: `{"error": {"type", "message", "param"?, "code"?}}`."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": kind, "message": message}
        if param is not None:
            self.body["param"] = param
        if code is not None:
            self.body["code"] = code


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, param=param, code="resource_missing"
    )


def owned(objects: dict[str, dict], kind: str, object_id: str, param: str = "id") -> dict:
    """The account's object with that id, or Stripe's 404 naming it."""
    found = objects.get(object_id)
    if found is None:
        raise missing(kind, object_id, param)
    return found


@dataclass
class StripeAccount:
    """One secret key's world: nothing here is visible to another key."""

    key: str
    sessions: dict[str, dict] = field(default_factory=dict)
    session_lines: dict[str, list[dict]] = field(default_factory=dict)
    payment_intents: dict[str, dict] = field(default_factory=dict)
    charges: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    disputes: dict[str, dict] = field(default_factory=dict)
    endpoints: dict[str, dict] = field(default_factory=dict)
    replies: dict[str, tuple[int, dict]] = field(default_factory=dict)


class StripeState:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.accounts: dict[str, StripeAccount] = {}
        self.owners: dict[str, StripeAccount] = {}

    def now(self) -> int:
        return int(self.clock.now())

    def account(self, key: str) -> StripeAccount:
        return self.accounts.setdefault(key, StripeAccount(key))

    def owner(self, object_id: str) -> StripeAccount | None:
        return self.owners.get(object_id)

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.owners.clear()

    def event_webhooks(self, account: StripeAccount, kind: str, obj: dict) -> list[Webhook]:
        """The event `kind` about `obj`, one webhook per endpoint that listens for it."""
        endpoints = [
            endpoint
            for endpoint in account.endpoints.values()
            if kind in endpoint["enabled_events"] or "*" in endpoint["enabled_events"]
        ]
        if not endpoints:
            return []
        event = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "type": kind,
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": len(endpoints),
            "request": {"id": None, "idempotency_key": None},
        }
        body = json.dumps(event, indent=2)
        return [
            Webhook("stripe", endpoint["url"], body, stripe_secret=endpoint["secret"])
            for endpoint in endpoints
        ]

    def refresh_session(self, account: StripeAccount, session: dict, outbox: list) -> dict:
        """Stripe expires an open session at `expires_at`; here it happens when next looked at."""
        if session["status"] == "open" and self.now() >= session["expires_at"]:
            self.expire_session(account, session, outbox)
        return session

    def expire_session(self, account: StripeAccount, session: dict, outbox: list) -> None:
        session.update(status="expired", url=None)
        outbox += self.event_webhooks(account, "checkout.session.expired", session)

    def session_for(self, account: StripeAccount, session_id: str, outbox: list) -> dict:
        session = owned(account.sessions, "checkout.session", session_id, "session")
        return self.refresh_session(account, session, outbox)

    def pay_session(self, account: StripeAccount, session: dict, settled: bool) -> list:
        """The buyer pays: a payment intent and its charge, settled now (card) or later."""
        now = self.now()
        intent_id, charge_id = new_id("pi_"), new_id("ch_")
        amount, currency = session["amount_total"], session["currency"]
        account.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if settled else 0,
            "amount_refunded": 0,
            "captured": settled,
            "created": now,
            "currency": currency,
            "disputed": False,
            "livemode": False,
            "metadata": dict(session["metadata"]),
            "paid": settled,
            "payment_intent": intent_id,
            "refunded": False,
            "status": "succeeded" if settled else "pending",
        }
        account.payment_intents[intent_id] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if settled else 0,
            "created": now,
            "currency": currency,
            "latest_charge": charge_id,
            "livemode": False,
            "metadata": dict(session["metadata"]),
            "payment_method_types": list(session["payment_method_types"]),
            "status": "succeeded" if settled else "processing",
        }
        self.owners[intent_id] = self.owners[charge_id] = account
        session.update(
            status="complete",
            payment_status="paid" if settled else "unpaid",
            payment_intent=intent_id,
            url=None,
        )
        return self.event_webhooks(account, "checkout.session.completed", session)

    def settle_session(self, account: StripeAccount, session: dict, succeeded: bool) -> list:
        """A delayed payment (bank transfer) arrives or fails."""
        intent = account.payment_intents.get(session["payment_intent"] or "")
        if intent is None or intent["status"] != "processing":
            raise ValueError(f"session {session['id']} has no payment waiting to settle")
        charge = account.charges[intent["latest_charge"]]
        if succeeded:
            intent.update(status="succeeded", amount_received=intent["amount"])
            charge.update(status="succeeded", paid=True, captured=True)
            charge["amount_captured"] = charge["amount"]
            session["payment_status"] = "paid"
            kind = "checkout.session.async_payment_succeeded"
        else:
            intent["status"] = "requires_payment_method"
            charge["status"] = "failed"
            kind = "checkout.session.async_payment_failed"
        return self.event_webhooks(account, kind, session)

    def open_dispute(
        self, account: StripeAccount, intent: dict, reason: str
    ) -> tuple[dict, list[Webhook]]:
        charge = account.charges[intent["latest_charge"]]
        if charge["status"] != "succeeded":
            raise ValueError(f"charge {charge['id']} has not succeeded")
        if charge["disputed"]:
            raise ValueError(f"charge {charge['id']} is already disputed")
        dispute_id = new_id("dp_")
        dispute = {
            "id": dispute_id,
            "object": "dispute",
            "amount": charge["amount"] - charge["amount_refunded"],
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "livemode": False,
            "metadata": {},
            "payment_intent": intent["id"],
            "reason": reason,
            "status": "needs_response",
        }
        charge["disputed"] = True
        account.disputes[dispute_id] = dispute
        self.owners[dispute_id] = account
        return dispute, self.event_webhooks(account, "charge.dispute.created", dispute)


def stripe_state() -> StripeState:
    return current_app.extensions["gatewaysim.stripe"]


def delivery_log() -> DeliveryLog:
    return current_app.extensions["gatewaysim.deliveries"]


# -- Stripe's form encoding: a[b][0][c]=v, with a[]=v appending -------------------------------

KEY_PATTERN = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def key_path(name: str) -> list[str]:
    match = KEY_PATTERN.match(name)
    if match is None:
        return [name]
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def parse_stripe_params(pairs: Iterable[tuple[str, str]]) -> dict:
    """Nested dicts from bracketed keys; a dict whose keys are all indexes becomes a list."""
    root: dict = {}
    for name, value in pairs:
        path = key_path(name)
        node = root
        for depth, key in enumerate(path):
            key = key or str(len(node))
            if depth == len(path) - 1:
                node[key] = value
                break
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise StripeError(f"Invalid value for {name}: it is nested under a plain value.")
            node = child
    return as_lists(root)


def as_lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: as_lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def as_int(value: Any, param: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise StripeError(f"Invalid integer: {value}", param=param) from None


def positive_int(value: Any, param: str) -> int:
    number = as_int(value, param)
    if number < 1:
        raise StripeError("This value must be greater than or equal to 1.", param=param)
    return number


def required(params: dict, name: str, param: str | None = None) -> Any:
    value = params.get(name)
    if value in (None, "", {}, []):
        raise StripeError(f"Missing required param: {param or name}.", param=param or name)
    return value


def as_list(value: Any) -> list:
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_metadata(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise StripeError("Invalid object", param="metadata")
    return {str(key): str(item) for key, item in value.items()}


# -- the API --------------------------------------------------------------------------------

api = Blueprint("gatewaysim_stripe_api", __name__, url_prefix="/stripe/v1")

View = Callable[..., dict]


def api_view(view: View):
    """Authenticate, run the view under the state lock, replay an idempotent POST, then send
    the webhooks it queued with the lock released (a receiver may call back into the API)."""

    @wraps(view)
    def wrapper(**kwargs: Any):
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not key.startswith("sk_"):
            message = "Invalid API Key provided." if key else "You did not provide an API key."
            body = {"error": {"type": "invalid_request_error", "message": message}}
            return jsonify(body), 401
        state = stripe_state()
        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method != "POST":
            idempotency_key = None
        outbox: list[Webhook] = []
        replayed = False
        with state.lock:
            account = state.account(key)
            if idempotency_key and idempotency_key in account.replies:
                status, body = account.replies[idempotency_key]
                replayed = True
            else:
                pairs = (request.form if request.method == "POST" else request.args).items(
                    multi=True
                )
                try:
                    params = parse_stripe_params(pairs)
                    status, body = 200, view(state, account, params, outbox, **kwargs)
                except StripeError as error:
                    status, body = error.status, {"error": error.body}
                    outbox.clear()
                if idempotency_key:
                    account.replies[idempotency_key] = (status, copy.deepcopy(body))
        delivery_log().send_all(outbox)
        response = jsonify(body)
        response.status_code = status
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    return wrapper


def listing(url: str, data: list[dict]) -> dict:
    return {"object": "list", "data": data, "has_more": False, "url": url}


@api.post("/checkout/sessions")
@api_view
def create_session(state: StripeState, account: StripeAccount, params: dict, outbox: list):
    """Create a Checkout Session (mode=payment, inline price_data only)."""
    mode = required(params, "mode")
    if mode != "payment":
        raise StripeError(f"Invalid mode: {mode}; the simulator supports payment.", param="mode")
    success_url = required(params, "success_url")
    lines = parse_line_items(required(params, "line_items"))
    currencies = {line["currency"] for line in lines}
    if len(currencies) > 1:
        raise StripeError("All line items must use the same currency.", param="line_items")
    now = state.now()
    expires_at = now + DEFAULT_EXPIRY_SECONDS
    if params.get("expires_at") not in (None, ""):
        expires_at = as_int(params["expires_at"], "expires_at")
        if not now + MIN_EXPIRY_SECONDS <= expires_at <= now + DEFAULT_EXPIRY_SECONDS:
            raise StripeError(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
            )
    session_id = new_id("cs_test_")
    amount = sum(line["unit_amount"] * line["quantity"] for line in lines)
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "cancel_url": params.get("cancel_url") or None,
        "client_reference_id": params.get("client_reference_id") or None,
        "created": now,
        "currency": currencies.pop(),
        "expires_at": expires_at,
        "livemode": False,
        "metadata": as_metadata(params.get("metadata")),
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": as_list(params.get("payment_method_types")) or ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "success_url": success_url,
        "url": f"{request.host_url}stripe/pay/{session_id}",
    }
    account.sessions[session_id] = session
    account.session_lines[session_id] = lines
    state.owners[session_id] = account
    return session


def parse_line_items(items: Any) -> list[dict]:
    if not isinstance(items, list):
        raise StripeError("Invalid array", param="line_items")
    lines = []
    for index, item in enumerate(items):
        prefix = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise StripeError("Invalid object", param=prefix)
        if "price" in item:
            raise StripeError(
                f"No such price: '{item['price']}'; the simulator takes price_data only.",
                param=f"{prefix}[price]",
                code="resource_missing",
            )
        price = required(item, "price_data", f"{prefix}[price_data]")
        if not isinstance(price, dict):
            raise StripeError("Invalid object", param=f"{prefix}[price_data]")
        currency = str(required(price, "currency", f"{prefix}[price_data][currency]")).lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeError(
                f"Invalid currency: {currency}.", param=f"{prefix}[price_data][currency]"
            )
        unit_param = f"{prefix}[price_data][unit_amount]"
        unit_amount = positive_int(required(price, "unit_amount", unit_param), unit_param)
        product = required(price, "product_data", f"{prefix}[price_data][product_data]")
        name_param = f"{prefix}[price_data][product_data][name]"
        name = required(product if isinstance(product, dict) else {}, "name", name_param)
        quantity_param = f"{prefix}[quantity]"
        quantity = positive_int(required(item, "quantity", quantity_param), quantity_param)
        lines.append(
            {"name": name, "currency": currency, "unit_amount": unit_amount, "quantity": quantity}
        )
    if not lines:
        raise StripeError("Missing required param: line_items.", param="line_items")
    return lines


@api.get("/checkout/sessions")
@api_view
def list_sessions(state: StripeState, account: StripeAccount, params: dict, outbox: list):
    """List Checkout Sessions, newest first, optionally for one payment_intent."""
    intent = params.get("payment_intent")
    sessions = [
        state.refresh_session(account, session, outbox)
        for session in reversed(account.sessions.values())
        if not intent or session["payment_intent"] == intent
    ]
    limit = as_int(params.get("limit") or 10, "limit")
    return listing("/v1/checkout/sessions", sessions[:limit])


@api.get("/checkout/sessions/<session_id>")
@api_view
def retrieve_session(state, account, params, outbox, session_id: str):
    """Retrieve a Checkout Session of this account."""
    return state.session_for(account, session_id, outbox)


@api.post("/checkout/sessions/<session_id>/expire")
@api_view
def expire_session(state, account, params, outbox, session_id: str):
    """Expire an open Checkout Session."""
    session = state.session_for(account, session_id, outbox)
    if session["status"] != "open":
        raise StripeError(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".'
        )
    state.expire_session(account, session, outbox)
    return session


@api.get("/payment_intents/<intent_id>")
@api_view
def retrieve_payment_intent(state, account, params, outbox, intent_id: str):
    """Retrieve a PaymentIntent of this account."""
    return owned(account.payment_intents, "payment_intent", intent_id, "intent")


@api.get("/charges/<charge_id>")
@api_view
def retrieve_charge(state, account, params, outbox, charge_id: str):
    """Retrieve a Charge of this account."""
    return owned(account.charges, "charge", charge_id, "charge")


@api.get("/disputes/<dispute_id>")
@api_view
def retrieve_dispute(state, account, params, outbox, dispute_id: str):
    """Retrieve a Dispute of this account."""
    return owned(account.disputes, "dispute", dispute_id, "dispute")


@api.post("/refunds")
@api_view
def create_refund(state: StripeState, account: StripeAccount, params: dict, outbox: list):
    """Refund all or part of a payment intent's (or charge's) remaining amount."""
    if params.get("payment_intent"):
        intent = owned(
            account.payment_intents, "payment_intent", params["payment_intent"], "payment_intent"
        )
        charge = account.charges[intent["latest_charge"]]
    elif params.get("charge"):
        charge = owned(account.charges, "charge", params["charge"], "charge")
    else:
        raise StripeError("One of `charge` or `payment_intent` is required.")
    if charge["status"] != "succeeded":
        raise StripeError(f"Charge {charge['id']} has not succeeded; it cannot be refunded.")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining == 0:
        raise StripeError(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = remaining
    if params.get("amount") not in (None, ""):
        amount = positive_int(params["amount"], "amount")
        if amount > remaining:
            raise StripeError(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                param="amount",
            )
    refund_id = new_id("re_")
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "created": state.now(),
        "currency": charge["currency"],
        "metadata": as_metadata(params.get("metadata")),
        "payment_intent": charge["payment_intent"],
        "reason": params.get("reason") or None,
        "status": "succeeded",
    }
    account.refunds[refund_id] = refund
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    outbox += state.event_webhooks(account, "charge.refunded", charge)
    return refund


@api.post("/webhook_endpoints")
@api_view
def create_webhook_endpoint(state, account, params, outbox):
    """Register a webhook endpoint; the same url again is the same endpoint."""
    url = required(params, "url")
    events = as_list(required(params, "enabled_events"))
    for endpoint in account.endpoints.values():
        if endpoint["url"] == url:
            endpoint["enabled_events"] = events
            return endpoint
    endpoint_id = new_id("we_")
    endpoint = {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "api_version": None,
        "created": state.now(),
        "enabled_events": events,
        "livemode": False,
        "metadata": as_metadata(params.get("metadata")),
        "secret": stripe_webhook_secret(account.key, url),
        "status": "enabled",
        "url": url,
    }
    account.endpoints[endpoint_id] = endpoint
    return endpoint


@api.get("/webhook_endpoints")
@api_view
def list_webhook_endpoints(state, account, params, outbox):
    """List this account's webhook endpoints (without their secrets, as Stripe does)."""
    endpoints = [
        {key: value for key, value in endpoint.items() if key != "secret"}
        for endpoint in account.endpoints.values()
    ]
    return listing("/v1/webhook_endpoints", endpoints)


@api.delete("/webhook_endpoints/<endpoint_id>")
@api_view
def delete_webhook_endpoint(state, account, params, outbox, endpoint_id: str):
    """Delete a webhook endpoint."""
    if account.endpoints.pop(endpoint_id, None) is None:
        raise missing("webhook_endpoint", endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@api.route("/<path:rest>", methods=["GET", "POST", "DELETE"])
def unknown_route(rest: str):
    """Anything else is a route the simulator does not serve."""
    message = f"Unrecognized request URL ({request.method}: /v1/{rest})."
    return jsonify(error={"type": "invalid_request_error", "message": message}), 404


# -- the hosted pay page ---------------------------------------------------------------------

pay = Blueprint("gatewaysim_stripe_pay", __name__, url_prefix="/stripe/pay")


def format_amount(amount: int, currency: str) -> str:
    whole = amount if currency in ZERO_DECIMAL else amount / 100
    number = f"{whole:,.0f}" if currency in ZERO_DECIMAL else f"{whole:,.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def render_pay_page(session: dict, lines: list[dict], error: str | None = None, status=200):
    items = [
        {
            "name": line["name"],
            "quantity": line["quantity"],
            "amount": format_amount(line["unit_amount"] * line["quantity"], line["currency"]),
        }
        for line in lines
    ]
    page = render_template(
        "gatewaysim/stripe_pay.html",
        session=session,
        items=items,
        total=format_amount(session["amount_total"], session["currency"]),
        error=error,
    )
    return page, status


def render_closed(title: str, message: str, status: int):
    return render_template("gatewaysim/closed.html", title=title, message=message), status


@pay.get("/<session_id>")
def pay_page(session_id: str):
    """The hosted checkout page for an open session."""
    state = stripe_state()
    outbox: list[Webhook] = []
    with state.lock:
        account = state.owner(session_id)
        session = account and account.sessions.get(session_id)
        if session is not None:
            state.refresh_session(account, session, outbox)
            session = copy.deepcopy(session)
            lines = list(account.session_lines[session_id])
    delivery_log().send_all(outbox)
    if session is None:
        return render_closed("Checkout not found", "This checkout link is not valid.", 404)
    if session["status"] != "open":
        return render_closed(
            "Checkout closed", f"This checkout session is {session['status']}.", 410
        )
    return render_pay_page(session, lines)


@pay.post("/<session_id>")
def pay_action(session_id: str):
    """Pay (now, or later for a bank transfer), or have the card declined."""
    action = request.form.get("action", "pay")
    state = stripe_state()
    outbox: list[Webhook] = []
    was_open = False
    with state.lock:
        account = state.owner(session_id)
        session = account and account.sessions.get(session_id)
        if session is not None:
            state.refresh_session(account, session, outbox)
            was_open = session["status"] == "open"
            if was_open and action in ("pay", "pay_async"):
                outbox += state.pay_session(account, session, settled=action == "pay")
            session = copy.deepcopy(session)
            lines = list(account.session_lines[session_id])
    delivery_log().send_all(outbox)
    if session is None:
        return render_closed("Checkout not found", "This checkout link is not valid.", 404)
    if not was_open:
        return render_closed(
            "Checkout closed", f"This checkout session is {session['status']}.", 410
        )
    if action == "decline":
        return render_pay_page(session, lines, "Your card was declined. Try a different card.", 402)
    if action not in ("pay", "pay_async"):
        return render_pay_page(session, lines, f"Unknown action: {action}.", 400)
    return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), 303)


# -- admin: what the buyer's bank and the card networks do later --------------------------

admin = Blueprint("gatewaysim_stripe_admin", __name__, url_prefix="/__sim/stripe")


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@admin.errorhandler(AdminError)
def admin_error(error: AdminError):
    return jsonify(error=str(error)), error.status


def admin_action(find: Callable[[StripeState, str], tuple[StripeAccount, dict]]):
    """Run an admin action on the object `find` locates, then send the webhooks it queued;
    the reply is the object the action returns."""

    def decorate(action: Callable[..., tuple[dict, list]]):
        @wraps(action)
        def wrapper(object_id: str):
            state = stripe_state()
            body = request.get_json(silent=True) or {}
            outbox: list[Webhook] = []
            with state.lock:
                account, obj = find(state, object_id)
                try:
                    result, webhooks = action(state, account, obj, body)
                except ValueError as error:
                    raise AdminError(str(error)) from None
                outbox += webhooks
                reply = copy.deepcopy(result)
            delivery_log().send_all(outbox)
            return jsonify(reply)

        return wrapper

    return decorate


def find_session(state: StripeState, session_id: str) -> tuple[StripeAccount, dict]:
    account = state.owner(session_id)
    if account is None or session_id not in account.sessions:
        raise AdminError(f"no session {session_id}", 404)
    return account, account.sessions[session_id]


def find_intent(state: StripeState, intent_id: str) -> tuple[StripeAccount, dict]:
    account = state.owner(intent_id)
    if account is None or intent_id not in account.payment_intents:
        raise AdminError(f"no payment intent {intent_id}", 404)
    return account, account.payment_intents[intent_id]


def find_dispute(state: StripeState, dispute_id: str) -> tuple[StripeAccount, dict]:
    account = state.owner(dispute_id)
    if account is None or dispute_id not in account.disputes:
        raise AdminError(f"no dispute {dispute_id}", 404)
    return account, account.disputes[dispute_id]


@admin.post("/sessions/<object_id>/settle")
@admin_action(find_session)
def settle_session(state, account, session, body):
    """Settle a bank-transfer payment: {"succeeded": true|false}."""
    succeeded = body.get("succeeded", True)
    if not isinstance(succeeded, bool):
        raise ValueError("succeeded must be true or false")
    return session, state.settle_session(account, session, succeeded)


@admin.post("/sessions/<object_id>/expire")
@admin_action(find_session)
def expire_session_now(state, account, session, body):
    """Expire an open session now."""
    if session["status"] != "open":
        raise ValueError(f"session {session['id']} is {session['status']}, not open")
    outbox: list[Webhook] = []
    state.expire_session(account, session, outbox)
    return session, outbox


@admin.post("/payment_intents/<object_id>/dispute")
@admin_action(find_intent)
def dispute_payment(state, account, intent, body):
    """The buyer disputes the payment: a dispute needing a response."""
    reason = body.get("reason", "fraudulent")
    return state.open_dispute(account, intent, str(reason))


@admin.post("/disputes/<object_id>/close")
@admin_action(find_dispute)
def close_dispute(state, account, dispute, body):
    """The card network decides: {"status": "won"|"lost"}."""
    status = body.get("status")
    if status not in ("won", "lost"):
        raise ValueError('status must be "won" or "lost"')
    if dispute["status"] in ("won", "lost"):
        raise ValueError(f"dispute {dispute['id']} is already {dispute['status']}")
    dispute["status"] = status
    return dispute, state.event_webhooks(account, "charge.dispute.closed", dispute)
