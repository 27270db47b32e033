"""The sandbox provider: a stand-in upstream SMM panel for the demo, tests and benchmarks.

A small Flask app of its own (not Pasok's: no database, no tenants), holding its state in
memory behind a lock. It serves the common SMM panel API v2 at `/api/v2` as a real upstream
would: `services`, `add` (with Pasok's optional `ref`), `status` / multi-status, `refill` /
multi-refill, `refill_status`, `cancel` and `balance`, in USD by default. Run it with
`pasok sandbox-provider --port P` (see `app.sandbox.cli`).

Behaviour
- Catalog: `options.services` generated services (see `app.sandbox.catalog`), mostly Default
  with every order type of `app.catalog.order_types` represented; names carry "[SBX]".
- `add` checks the service's order type: the required parameters, a link that is an http(s)
  URL, quantity within min/max (for Custom Comments and Mentions Custom List, the number of
  lines). The charge is rate * quantity / 1000 (rate * packages for package types; drip-feed
  bills quantity * runs; Subscriptions bill max * posts), half-up to 5 decimals for USD.
- An order is Pending for the first fifth of `complete_after`, In progress (start_count set,
  remains falling) until `complete_after`, then Completed, Partial (`partial_rate`, remains > 0)
  or Canceled (`fail_rate`, at the end of Pending). Partial and Canceled refund the undelivered
  share to the balance. Refills follow the same timeline and end Completed or Rejected.
- Faults (`options.faults`, kind → rate), drawn per call: `timeout` does the work then holds
  the reply for `timeout_sleep_s`; `5xx` is an nginx 502/503 page; `html` an HTML page with
  HTTP 200 or 500; `active_order` the panels' "You have active order with this link" error.
  Only `timeout`, `5xx` and `html` hit other actions; only `timeout` lets anything happen.
- Determinism: outcomes come from the seed and the order's id, faults from the seed and the
  action's call count (see `app.sandbox.panel`), so the same seed and calls give the same run.

Admin endpoints (JSON, no key; bad input → HTTP 400 `{"error": …}`)
- `GET /__sandbox/orders[?link=&ref=&service=&status=]` → `{"count": n, "orders": [{"id",
  "service", "link", "quantity", "ref", "status", "charge", "remains"}, …]}`
- `POST /__sandbox/clock` `{"advance": seconds}` → `{"advanced": s, "now": t}`
- `POST /__sandbox/reset` → orders, refills, refs, call counts, catalog, balance and settings
  back to the start (the clock keeps its time)
- `POST /__sandbox/catalog` `{"reprice": {"3": "0.55"}, "update": {"4": {"min": 100}},
  "remove": [5], "add": 2}` → `{"repriced", "updated", "removed", "added", "services"}`
- `GET|POST /__sandbox/settings` → `latency_ms`, `fail_rate`, `partial_rate`, `faults`,
  `complete_after`, `honour_ref`, `timeout_sleep_s`; POST any of them to change them
- `POST /__sandbox/balance` `{"balance": "12.50"}` → `{"balance", "currency"}`
"""

from __future__ import annotations

from flask import Flask

from app.sandbox.admin import admin
from app.sandbox.api import api
from app.sandbox.clock import Clock, ManualClock, SystemClock
from app.sandbox.options import SandboxOptions
from app.sandbox.panel import SandboxPanel

__all__ = ["ManualClock", "SandboxOptions", "SandboxPanel", "create_sandbox_app"]


def create_sandbox_app(
    options: SandboxOptions | None = None, *, clock: Clock | None = None
) -> Flask:
    """A sandbox provider app; `clock` replaces real time (tests pass a ManualClock)."""
    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions["sandbox"] = SandboxPanel(options or SandboxOptions(), clock or SystemClock())
    app.register_blueprint(api)
    app.register_blueprint(admin)
    return app
