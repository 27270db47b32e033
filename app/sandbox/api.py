"""`/api/v2`: the common SMM panel API v2, answered the way an upstream panel answers it,
faults included."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request

from app.sandbox.orders import SandboxError
from app.sandbox.panel import Fault, SandboxPanel, parse_id

api = Blueprint("sandbox_api", __name__)

MAX_IDS = 100
ACTIVE_ORDER = "You have active order with this link. Please wait until order being completed."
BAD_GATEWAY = """<html>
<head><title>{status} {reason}</title></head>
<body>
<center><h1>{status} {reason}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""
ERROR_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>Please try again in a few minutes.</p></body>
</html>
"""
REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}


@api.route("/api/v2", methods=["GET", "POST"])
def api_v2():
    """One URL for every action, like every upstream panel."""
    panel: SandboxPanel = current_app.extensions["sandbox"]
    options = panel.options
    if options.latency_ms:
        panel.clock.wait(options.latency_ms / 1000)
    params = request_params()
    if not hmac.compare_digest(
        params.get("key", "").encode("utf-8", "replace"), options.api_key.encode()
    ):
        return {"error": "Invalid API key"}
    action = params.get("action", "").strip().lower()
    answer = ACTIONS.get(action)
    if answer is None:
        return {"error": "Incorrect request"}
    fault = panel.draw_fault(action)
    if fault is not None and fault.kind != "timeout":
        return faulty_reply(fault)
    try:
        reply = answer(panel, params)
    except SandboxError as error:
        reply = {"error": str(error)}
    if fault is not None:
        # A timeout: the work is done (an order placed, say), only the reply comes too late.
        panel.clock.wait(options.timeout_sleep_s)
    return reply


def faulty_reply(fault: Fault) -> Response | dict[str, str]:
    """What a broken upstream sends instead of an answer; nothing has happened."""
    if fault.kind == "active_order":
        return {"error": ACTIVE_ORDER}
    if fault.kind == "5xx":
        page = BAD_GATEWAY.format(status=fault.http_status, reason=REASONS[fault.http_status])
    else:
        title = "Site under maintenance" if fault.http_status == 200 else "Internal Server Error"
        page = ERROR_PAGE.format(title=title)
    return Response(page, status=fault.http_status, mimetype="text/html")


def request_params() -> dict[str, str]:
    """The call's parameters from the query string, a form, or a JSON object, all as text."""
    params = dict(request.args.items())
    params.update(request.form.items())
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        params.update((str(k), as_text(v)) for k, v in body.items() if v is not None)
    return params


def as_text(value: Any) -> str:
    """A JSON value as a form would have sent it: 100 → "100", [1, 2] → "1,2"."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def listed_ids(text: str, what: str) -> list[str]:
    """A comma-separated list of at most 100 ids, each once, in the order given."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        raise SandboxError(f"Incorrect {what} ID")
    if len(ids) > MAX_IDS:
        raise SandboxError(f"Too many {what}s: at most {MAX_IDS} per request")
    return ids


def as_id(text: str) -> int | str:
    """How a reply names an id the client sent: as a number when it is one."""
    number = parse_id(text)
    return text if number is None else number


def each(ids: list[str], step: Callable[[str], Any]) -> list[tuple[str, Any]]:
    """`step` for every id, with a refused one answered by its own `{"error": …}`."""
    results = []
    for item in ids:
        try:
            results.append((item, step(item)))
        except SandboxError as error:
            results.append((item, {"error": str(error)}))
    return results


def services(panel: SandboxPanel, params: dict[str, str]) -> Response:
    return Response(panel.services_json(), mimetype="application/json")


def add(panel: SandboxPanel, params: dict[str, str]) -> dict[str, int]:
    return {"order": panel.add_order(params)}


def status(panel: SandboxPanel, params: dict[str, str]) -> dict[str, Any]:
    if params.get("orders"):
        return dict(each(listed_ids(params["orders"], "order"), panel.order_status))
    return panel.order_status(params.get("order", ""))


def refill(panel: SandboxPanel, params: dict[str, str]) -> Any:
    if params.get("orders"):
        ids = listed_ids(params["orders"], "order")
        return [{"order": as_id(i), "refill": r} for i, r in each(ids, panel.request_refill)]
    return {"refill": str(panel.request_refill(params.get("order", "")))}


def refill_status(panel: SandboxPanel, params: dict[str, str]) -> Any:
    if params.get("refills"):
        ids = listed_ids(params["refills"], "refill")
        return [{"refill": as_id(i), "status": s} for i, s in each(ids, panel.refill_status)]
    return {"status": panel.refill_status(params.get("refill", ""))}


def cancel(panel: SandboxPanel, params: dict[str, str]) -> list[dict[str, Any]]:
    ids = listed_ids(params.get("orders") or params.get("order", ""), "order")

    def accept(order_id: str) -> int:
        panel.cancel_order(order_id)
        return 1

    return [{"order": as_id(i), "cancel": c} for i, c in each(ids, accept)]


def balance(panel: SandboxPanel, params: dict[str, str]) -> dict[str, str]:
    return panel.balance_reply()


ACTIONS: dict[str, Callable[[SandboxPanel, dict[str, str]], Any]] = {
    "services": services,
    "add": add,
    "status": status,
    "refill": refill,
    "refill_status": refill_status,
    "cancel": cancel,
    "balance": balance,
}
