"""Orders and refills held by the sandbox: what an `add` must carry per order type, what it
costs, and how an order moves from Pending to its final status as the clock runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from app.catalog.order_types import order_type
from app.sandbox.catalog import SandboxService

PENDING = "Pending"
IN_PROGRESS = "In progress"
COMPLETED = "Completed"
PARTIAL = "Partial"
CANCELED = "Canceled"
REJECTED = "Rejected"
FINAL = (COMPLETED, PARTIAL, CANCELED)
REFILL_FINAL = (COMPLETED, REJECTED)

# An order waits this share of `complete_after` before it starts, then delivers until the end.
PENDING_SHARE = 0.2

# Package types cost their rate per package; every other type costs its rate per 1000 units.
PACKAGE_TYPES = ("Package", "Custom Comments Package")
# Types whose quantity is the number of lines of one parameter (a comment or username each).
COUNTED_LINES = {
    "Custom Comments": "comments",
    "Custom Comments Package": "comments",
    "Comment Replies": "comments",
    "Mentions Custom List": "usernames",
}
LINK = re.compile(r"^https?://[^\s/?#:]+\.[^\s/?#:]{2,}(:\d{1,5})?([/?#]\S*)?$", re.IGNORECASE)
WHOLE_NUMBER = re.compile(r"^\d{1,12}$")


class SandboxError(Exception):
    """A request the sandbox refuses; the message is the API's `{"error": …}`."""


@dataclass(frozen=True)
class OrderRequest:
    """A valid `add`: the target (a link, or a username for Subscriptions), how many units the
    status reports against, how many units are billed, and the type's other parameters."""

    link: str
    quantity: int
    billed: int
    per_package: bool
    details: dict[str, str]

    def charge(self, rate: Decimal, places: int) -> Decimal:
        """rate * quantity / 1000 (or rate * packages), half-up to the ledger's precision."""
        exact = rate * self.billed if self.per_package else rate * self.billed / 1000
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass
class Order:
    id: int
    service: int
    type: str
    link: str
    quantity: int
    charge: Decimal
    ref: str | None
    details: dict[str, str]
    refill_allowed: bool
    cancel_allowed: bool
    created_at: float
    starts_at: float
    ends_at: float
    outcome: str  # the final status it reaches at ends_at
    start_count: int
    final_remains: int
    settled: bool = False  # final, and any refund paid back to the balance
    refunded: Decimal = field(default_factory=Decimal)

    def status(self, now: float) -> str:
        if now >= self.ends_at:
            return self.outcome
        return IN_PROGRESS if now >= self.starts_at else PENDING

    def remains(self, now: float) -> int:
        """Undelivered units: all of them while Pending, falling steadily while In progress
        towards what the outcome leaves undelivered."""
        if now >= self.ends_at:
            return self.final_remains
        if now < self.starts_at:
            return self.quantity
        share = (now - self.starts_at) / (self.ends_at - self.starts_at)
        return self.quantity - int((self.quantity - self.final_remains) * share)

    def shown_start_count(self, now: float) -> int:
        started = now >= self.starts_at and not (self.outcome == CANCELED and now >= self.ends_at)
        return self.start_count if started else 0

    def refund(self, places: int) -> Decimal:
        """What goes back to the balance at the end: the undelivered share, rounded toward zero
        so that no refund exceeds its charge."""
        if self.outcome == COMPLETED or self.quantity == 0:
            return Decimal(0)
        exact = self.charge * self.final_remains / self.quantity
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)

    def status_reply(self, now: float, currency: str) -> dict[str, str]:
        return {
            "charge": str(self.charge),
            "start_count": str(self.shown_start_count(now)),
            "status": self.status(now),
            "remains": str(self.remains(now)),
            "currency": currency,
        }


@dataclass
class Refill:
    id: int
    order: int
    created_at: float
    starts_at: float
    ends_at: float
    outcome: str  # Completed or Rejected

    def status(self, now: float) -> str:
        if now >= self.ends_at:
            return self.outcome
        return IN_PROGRESS if now >= self.starts_at else PENDING


def read_order_request(service: SandboxService, params: Mapping[str, str]) -> OrderRequest:
    """Check an `add` against its service's order type; SandboxError names what is wrong."""
    kind = order_type(service.type)
    if kind is None:
        raise SandboxError("Incorrect service ID")
    for name in kind.required:
        if not params.get(name, "").strip():
            raise SandboxError(f"Missing parameter: {name}")
    details = {
        name: params[name].strip()
        for name in kind.params
        if name not in ("link", "quantity") and params.get(name, "").strip()
    }
    if "link" in kind.required:
        link = params["link"].strip()
        if not LINK.match(link):
            raise SandboxError("Incorrect link")
    else:
        link = params["username"].strip()

    per_package = service.type in PACKAGE_TYPES
    if kind.has_quantity:
        per_run = whole_number(params["quantity"], "quantity")
        check_within(service, per_run, "Quantity")
        quantity = billed = per_run * drip_feed_runs(service, details)
    elif service.type in COUNTED_LINES:
        lines = [line for line in params[COUNTED_LINES[service.type]].splitlines() if line.strip()]
        quantity = billed = len(lines)
        if per_package:
            billed = 1
        else:
            check_within(service, quantity, "Quantity")
    elif service.type == "Subscriptions":
        quantity, billed = subscription_size(service, details)
    else:
        quantity = billed = 1
    if service.type == "Poll" and whole_number(details["answer_number"], "answer_number") < 1:
        raise SandboxError("Incorrect answer_number")
    return OrderRequest(link, quantity, billed, per_package, details)


def drip_feed_runs(service: SandboxService, details: dict[str, str]) -> int:
    """How many times a drip-feed order delivers its quantity (1 when it is not drip-fed)."""
    if "runs" not in details and "interval" not in details:
        return 1
    if not service.dripfeed:
        raise SandboxError("Drip-feed is not available for this service")
    if "runs" not in details or "interval" not in details:
        raise SandboxError("Drip-feed needs both runs and interval")
    runs = whole_number(details["runs"], "runs")
    if runs < 2 or whole_number(details["interval"], "interval") < 1:
        raise SandboxError("Drip-feed needs at least 2 runs and an interval of 1 minute or more")
    return runs


def subscription_size(service: SandboxService, details: dict[str, str]) -> tuple[int, int]:
    """A subscription delivers between min and max per post; it is billed for max on every
    post it covers (one when `posts` is not given)."""
    low = whole_number(details["min"], "min")
    high = whole_number(details["max"], "max")
    if low > high:
        raise SandboxError("Min must not be more than max")
    check_within(service, low, "Min")
    check_within(service, high, "Max")
    whole_number(details["delay"], "delay")
    posts = whole_number(details.get("posts", "1"), "posts")
    if posts < 1:
        raise SandboxError("Incorrect posts")
    if "old_posts" in details:
        whole_number(details["old_posts"], "old_posts")
    return high, high * posts


def whole_number(text: str, name: str) -> int:
    if not WHOLE_NUMBER.match(text.strip()):
        raise SandboxError(f"Incorrect {name}")
    return int(text)


def check_within(service: SandboxService, value: int, what: str) -> None:
    if value < service.min:
        raise SandboxError(f"{what} less than minimal {service.min}")
    if value > service.max:
        raise SandboxError(f"{what} more than maximal {service.max}")
