"""The sandbox's state: catalog, balance, orders, refills and refs, behind one lock.

Every outcome that looks random is drawn from a `random.Random` seeded with the sandbox seed
and a stable name for the thing decided ("order:10001", "fault:add:7"), never from the time
of a call or a shared generator, so the same seed and the same calls give the same answers
however requests interleave in between.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from app.catalog.order_types import order_type
from app.sandbox.catalog import (
    MAX_RATE_PLACES,
    SandboxService,
    generate_catalog,
    generate_service,
)
from app.sandbox.clock import Clock
from app.sandbox.options import FAULT_KINDS, SandboxOptions, adjusted
from app.sandbox.orders import (
    CANCELED,
    COMPLETED,
    FINAL,
    PARTIAL,
    PENDING_SHARE,
    REFILL_FINAL,
    REJECTED,
    Order,
    OrderRequest,
    Refill,
    SandboxError,
    read_order_request,
)

FIRST_ORDER_ID = 10_001
FIRST_REFILL_ID = 501
MAX_RATE = Decimal(1_000_000)
# Which faults make sense for which call: only `add` can collide with an active order.
FAULTS_FOR_EVERY_ACTION = ("timeout", "5xx", "html")
FAULT_HTTP_STATUSES = {"5xx": (502, 503), "html": (200, 500)}


@dataclass(frozen=True)
class Fault:
    kind: str
    http_status: int


class SandboxPanel:
    """One upstream panel's worth of state. Public methods are thread-safe."""

    def __init__(self, options: SandboxOptions, clock: Clock) -> None:
        self.initial_options = options
        self.clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to how it started: options, catalog, balance; no orders. The clock runs on."""
        with self._lock:
            self.options = self.initial_options
            self.catalog = generate_catalog(self.options.services)
            self._next_service_id = self.options.services + 1
            self._services_json: bytes | None = None
            self.balance = self._money(self.options.balance)
            self.orders: dict[int, Order] = {}
            self.refills: dict[int, Refill] = {}
            self._refs: dict[str, int] = {}
            self._unsettled: list[tuple[float, int]] = []
            self._calls: dict[str, int] = {}

    # The API's actions

    def services_json(self) -> bytes:
        with self._lock:
            if self._services_json is None:
                services = [s.api_reply() for s in self.catalog.values()]
                self._services_json = json.dumps(services, separators=(",", ":")).encode()
            return self._services_json

    def add_order(self, params: Mapping[str, str]) -> int:
        """Place an order (or find the one its `ref` already placed) and return its id."""
        ref = params.get("ref", "").strip() or None
        with self._lock:
            now = self._settle()
            if ref is not None and self.options.honour_ref and ref in self._refs:
                return self._refs[ref]
            service = self.catalog.get(parse_id(params.get("service", "")) or 0)
            if service is None:
                raise SandboxError("Incorrect service ID")
            request = read_order_request(service, params)
            charge = request.charge(service.rate, self.options.money_places)
            if charge > self.balance:
                raise SandboxError("Not enough funds on balance")
            self.balance -= charge
            order = self._new_order(service, request, charge, ref, now)
            self.orders[order.id] = order
            if ref is not None:
                self._refs.setdefault(ref, order.id)
            heapq.heappush(self._unsettled, (order.ends_at, order.id))
            return order.id

    def order_status(self, order_id: str) -> dict[str, str]:
        with self._lock:
            now = self._settle()
            return self._order(order_id).status_reply(now, self.options.currency)

    def request_refill(self, order_id: str) -> int:
        with self._lock:
            now = self._settle()
            order = self._order(order_id)
            if not order.refill_allowed:
                raise SandboxError("Refill is disabled for this service")
            if order.status(now) not in (COMPLETED, PARTIAL):
                raise SandboxError("Refill is available only for completed or partial orders")
            refills = (r for r in self.refills.values() if r.order == order.id)
            if any(r.status(now) not in REFILL_FINAL for r in refills):
                raise SandboxError("Refill is already in progress for this order")
            refill_id = FIRST_REFILL_ID + len(self.refills)
            rng = self._rng("refill", refill_id)
            outcome = REJECTED if rng.random() < self.options.fail_rate else COMPLETED
            starts, ends = self._timeline(now)
            self.refills[refill_id] = Refill(refill_id, order.id, now, starts, ends, outcome)
            return refill_id

    def refill_status(self, refill_id: str) -> str:
        with self._lock:
            now = self._settle()
            refill = self.refills.get(parse_id(refill_id) or 0)
            if refill is None:
                raise SandboxError("Incorrect refill ID")
            return refill.status(now)

    def cancel_order(self, order_id: str) -> None:
        """Stop an unfinished order: nothing delivered → Canceled, some → Partial; the
        undelivered share goes back to the balance at once."""
        with self._lock:
            now = self._settle()
            order = self._order(order_id)
            if not order.cancel_allowed:
                raise SandboxError("Cancel is disabled for this service")
            status = order.status(now)
            if status in FINAL:
                raise SandboxError(f"Order is already {status.lower()}")
            remains = order.remains(now)
            order.outcome = PARTIAL if remains < order.quantity else CANCELED
            order.final_remains = remains
            order.ends_at = now
            heapq.heappush(self._unsettled, (now, order.id))
            self._settle()

    def balance_reply(self) -> dict[str, str]:
        with self._lock:
            self._settle()
            return {"balance": str(self.balance), "currency": self.options.currency}

    def draw_fault(self, action: str) -> Fault | None:
        """Whether this call of `action` fails, and how. The n-th call of an action always
        draws the same number; the kinds share it in a fixed order, each taking its rate."""
        with self._lock:
            call = self._calls[action] = self._calls.get(action, 0) + 1
            faults = self.options.faults
        if not faults:
            return None
        rng = self._rng("fault", action, call)
        draw, threshold = rng.random(), 0.0
        for kind in FAULT_KINDS:
            threshold += faults.get(kind, 0.0)
            if draw < threshold:
                if kind not in FAULTS_FOR_EVERY_ACTION and action != "add":
                    return None
                return Fault(kind, rng.choice(FAULT_HTTP_STATUSES.get(kind, (200,))))
        return None

    # Test hooks (the /__sandbox/ endpoints)

    def listed_orders(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            now = self._settle()
            listed = [
                {
                    "id": o.id,
                    "service": o.service,
                    "link": o.link,
                    "quantity": o.quantity,
                    "ref": o.ref,
                    "status": o.status(now),
                    "charge": str(o.charge),
                    "remains": str(o.remains(now)),
                }
                for o in self.orders.values()
            ]
        for name in ("link", "ref", "service", "status"):
            if name in filters:
                listed = [o for o in listed if str(o[name]) == filters[name]]
        return listed

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self.clock.advance(seconds)
            return self._settle()

    def set_balance(self, amount: Decimal) -> dict[str, str]:
        with self._lock:
            self.balance = self._money(amount)
        return self.balance_reply()

    def adjust(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change settings while running (faults, outcome rates, timing); ValueError if bad."""
        with self._lock:
            self.options = adjusted(self.options, changes)
            return self.options.adjustable()

    def change_catalog(
        self,
        reprice: Mapping[int, Decimal],
        update: Mapping[int, Mapping[str, Any]],
        remove: Iterable[int],
        add: int,
    ) -> dict[str, Any]:
        """Reprice, edit, remove and add services in one step, all or nothing."""
        with self._lock:
            catalog = dict(self.catalog)
            for service_id, rate in reprice.items():
                catalog[service_id] = replace(existing(catalog, service_id), rate=rate)
            for service_id, changes in update.items():
                catalog[service_id] = edited_service(existing(catalog, service_id), changes)
            removed = [existing(catalog, service_id).id for service_id in remove]
            for service_id in removed:
                del catalog[service_id]
            added = list(range(self._next_service_id, self._next_service_id + add))
            catalog.update((n, generate_service(n)) for n in added)
            self.catalog = catalog
            self._next_service_id += add
            self._services_json = None
            return {
                "repriced": sorted(reprice),
                "updated": sorted(update),
                "removed": removed,
                "added": added,
                "services": len(catalog),
            }

    # Internals

    def _new_order(
        self,
        service: SandboxService,
        request: OrderRequest,
        charge: Decimal,
        ref: str | None,
        now: float,
    ) -> Order:
        """An order with its whole future fixed at birth by the seed and its id: when it
        starts, how it ends, and what it leaves undelivered."""
        order_id = FIRST_ORDER_ID + len(self.orders)
        quantity = request.quantity
        rng = self._rng("order", order_id)
        draw = rng.random()
        start_count = rng.randint(0, 50_000)
        starts, ends = self._timeline(now)
        outcome, remains = COMPLETED, 0
        if draw < self.options.fail_rate:
            outcome, remains, ends = CANCELED, quantity, starts
        elif draw < self.options.fail_rate + self.options.partial_rate and quantity > 1:
            outcome, remains = PARTIAL, rng.randint(1, quantity - 1)
        return Order(
            id=order_id,
            service=service.id,
            type=service.type,
            link=request.link,
            quantity=quantity,
            charge=charge,
            ref=ref,
            details=request.details,
            refill_allowed=service.refill,
            cancel_allowed=service.cancel,
            created_at=now,
            starts_at=starts,
            ends_at=ends,
            outcome=outcome,
            start_count=start_count,
            final_remains=remains,
        )

    def _timeline(self, now: float) -> tuple[float, float]:
        complete_after = self.options.complete_after
        return now + complete_after * PENDING_SHARE, now + complete_after

    def _settle(self) -> float:
        """Pay back refunds of orders that have reached their end; return the time now."""
        now = self.clock.now()
        while self._unsettled and self._unsettled[0][0] <= now:
            ends_at, order_id = heapq.heappop(self._unsettled)
            order = self.orders[order_id]
            if order.settled or order.ends_at != ends_at:
                continue
            order.settled = True
            order.refunded = order.refund(self.options.money_places)
            self.balance += order.refunded
        return now

    def _money(self, amount: Decimal) -> Decimal:
        return amount.quantize(Decimal(1).scaleb(-self.options.money_places))

    def _order(self, order_id: str) -> Order:
        order = self.orders.get(parse_id(order_id) or 0)
        if order is None:
            raise SandboxError("Incorrect order ID")
        return order

    def _rng(self, *name: object) -> random.Random:
        return random.Random(":".join(map(str, (self.options.seed, *name))))


def existing(catalog: dict[int, SandboxService], service_id: int) -> SandboxService:
    if service_id not in catalog:
        raise ValueError(f"no service {service_id}")
    return catalog[service_id]


EDITABLE = {
    "name": str,
    "category": str,
    "type": str,
    "min": int,
    "max": int,
    "refill": bool,
    "cancel": bool,
    "dripfeed": bool,
}


def edited_service(service: SandboxService, changes: Mapping[str, Any]) -> SandboxService:
    """`service` with `changes` applied; ValueError for a field or value it cannot take."""
    for name, value in changes.items():
        if name == "rate":
            continue
        wanted = EDITABLE.get(name)
        if wanted is None:
            raise ValueError(f"{name!r} is not a service field")
        if type(value) is not wanted:
            raise ValueError(f"{name} must be a {wanted.__name__}")
    edited = replace(service, **{k: v for k, v in changes.items() if k != "rate"})
    if "rate" in changes:
        edited = replace(edited, rate=parse_rate(changes["rate"]))
    kind = order_type(edited.type)
    if kind is None or kind.name != edited.type:
        raise ValueError(f"unknown order type {edited.type!r}")
    if not 1 <= edited.min <= edited.max:
        raise ValueError("min and max must satisfy 1 <= min <= max")
    if not edited.name.strip() or not edited.category.strip():
        raise ValueError("name and category must not be empty")
    return edited


def parse_rate(value: Any) -> Decimal:
    """A price per 1000: a positive decimal with at most 6 places, from a string or number."""
    if isinstance(value, bool | float):
        raise ValueError('a rate must be a decimal string such as "0.45"')
    try:
        rate = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{value!r} is not a rate") from None
    if not rate.is_finite() or not 0 < rate < MAX_RATE:
        raise ValueError(f"{value!r} is not a rate between 0 and {MAX_RATE}")
    if rate != rate.quantize(Decimal(1).scaleb(-MAX_RATE_PLACES)):
        raise ValueError(f"{value!r} has more than {MAX_RATE_PLACES} decimals")
    return rate


def parse_id(text: str) -> int | None:
    """An id the way clients send one ("12", " 12 "), or None for anything else."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None
