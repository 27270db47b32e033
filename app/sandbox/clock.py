"""The sandbox's sense of time: orders progress by it, and faults and latency wait on it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def advance(self, seconds: float) -> None: ...

    def wait(self, seconds: float) -> None: ...


class SystemClock:
    """Real time, moved forward by whatever the admin endpoint adds, so a live demo can skip
    ahead without waiting for orders to finish."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """Time that moves only when told, for tests: `wait` records how long a reply was held
    instead of blocking."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.waits: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
