"""How a sandbox provider behaves: its catalog size, timing, outcomes, faults, key and wallet."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any

# The order matters: a fault draw walks these in turn (see SandboxPanel.draw_fault).
FAULT_KINDS = ("timeout", "5xx", "html", "active_order")
MAX_SERVICES = 100_000
MAX_MONEY = Decimal(10**12)

# What the admin endpoint may change while the sandbox runs; the rest is fixed at start.
ADJUSTABLE = (
    "latency_ms",
    "fail_rate",
    "partial_rate",
    "faults",
    "complete_after",
    "honour_ref",
    "timeout_sleep_s",
)


@dataclass(frozen=True)
class SandboxOptions:
    services: int = 50
    latency_ms: int = 0
    fail_rate: float = 0.0
    partial_rate: float = 0.1
    faults: dict[str, float] = field(default_factory=dict)
    complete_after: float = 30.0
    honour_ref: bool = True
    seed: int = 1
    api_key: str = "sandbox-key"
    balance: Decimal = Decimal("10000")
    currency: str = "USD"
    timeout_sleep_s: float = 30.0

    def __post_init__(self) -> None:
        check_count("services", self.services, 1, MAX_SERVICES)
        check_count("latency_ms", self.latency_ms, 0, 600_000)
        check_rate("fail_rate", self.fail_rate)
        check_rate("partial_rate", self.partial_rate)
        if self.fail_rate + self.partial_rate > 1:
            raise ValueError("fail_rate and partial_rate add up to more than 1")
        check_faults(self.faults)
        check_seconds("complete_after", self.complete_after)
        check_seconds("timeout_sleep_s", self.timeout_sleep_s)
        if not isinstance(self.honour_ref, bool):
            raise ValueError("honour_ref must be true or false")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer")
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise ValueError("api_key must not be empty")
        if not isinstance(self.currency, str) or not (
            len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()
        ):
            raise ValueError("currency must be a three-letter code such as USD")
        check_money("balance", self.balance)

    @property
    def money_places(self) -> int:
        """Ledger precision: panels show USD charges to 5 decimals, rupiah to 2."""
        return 2 if self.currency == "IDR" else 5

    def adjustable(self) -> dict[str, Any]:
        """The settings the admin endpoint shows and may change, JSON-ready."""
        return {name: getattr(self, name) for name in ADJUSTABLE}


def adjusted(options: SandboxOptions, changes: dict[str, Any]) -> SandboxOptions:
    """`options` with `changes` applied; ValueError for an unknown or bad setting."""
    known = {f.name for f in fields(SandboxOptions)}
    for name in changes:
        if name not in ADJUSTABLE:
            problem = "cannot change while running" if name in known else "is not a setting"
            raise ValueError(f"{name!r} {problem}")
    values = dict(changes)
    for name in ("fail_rate", "partial_rate", "complete_after", "timeout_sleep_s"):
        if name in values:
            values[name] = as_float(name, values[name])
    if "faults" in values:
        faults = values["faults"]
        if not isinstance(faults, dict):
            raise ValueError("faults must be an object of kind: rate")
        values["faults"] = {kind: as_float(kind, rate) for kind, rate in faults.items()}
    return replace(options, **values)


def parse_fault(text: str) -> tuple[str, float]:
    """`KIND:RATE` (say `timeout:0.05`) as a pair; ValueError with a readable reason."""
    kind, colon, rate = text.partition(":")
    kind = kind.strip().lower()
    if not colon or not kind or not rate.strip():
        raise ValueError(f"{text!r} is not KIND:RATE (say timeout:0.05)")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    value = as_float(kind, rate.strip())
    check_rate(kind, value)
    return kind, value


def as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def check_count(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")


def check_rate(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValueError(f"{name} must be a rate from 0 to 1, not {value!r}")


def check_seconds(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a number of seconds, 0 or more")


def check_faults(faults: Any) -> None:
    if not isinstance(faults, dict):
        raise ValueError("faults must map a kind to a rate")
    for kind, rate in faults.items():
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        check_rate(kind, rate)
    if sum(faults.values()) > 1:
        raise ValueError("fault rates add up to more than 1")


def check_money(name: str, value: Any) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value < MAX_MONEY:
        raise ValueError(f"{name} must be a decimal amount from 0 to {MAX_MONEY}")


def parse_money(name: str, value: Any) -> Decimal:
    """A decimal amount from a string or a JSON number (never through a float)."""
    if isinstance(value, bool | float):
        raise ValueError(f'{name} must be a decimal string such as "25.50"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal amount, not {value!r}") from None
    check_money(name, amount)
    return amount
