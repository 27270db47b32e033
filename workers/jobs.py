"""Jobs that keep the platform honest; the order pipeline's jobs live with the orders.

A job receives ids, never ORM objects, and calls the same services the web does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.extensions import get_redis
from workers.context import across_tenants_job

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "pasok:workers:heartbeat"


def heartbeat() -> float:
    """Record that a worker took a scheduled job: the scheduler and a worker are both alive."""
    beat = time.time()
    get_redis().set(HEARTBEAT_KEY, repr(beat))
    return beat


def last_heartbeat() -> float | None:
    """When a worker last ran `heartbeat` (a Unix time), if ever."""
    value = get_redis().get(HEARTBEAT_KEY)
    return float(value) if value is not None else None


@across_tenants_job
def verify_ledger() -> dict[str, Any]:
    """`pasok ledger verify` on a schedule: log any drift loudly, return the counts."""
    from app.ledger.verify import verify_ledger as check

    report = check()
    summary = {
        "ok": report.ok,
        "accounts": report.accounts,
        "drift": len(report.drift),
        "unbalanced": len(report.unbalanced),
        "mismatched": len(report.mismatched),
        "topups": len(report.topups),
        "flagged": len(report.flagged),
    }
    if report.ok:
        log.info("Ledger verified: %(accounts)s accounts, no drift", summary)
    else:
        log.error(
            "Ledger verification failed: %(drift)s drifting accounts, %(unbalanced)s unbalanced "
            "entries, %(mismatched)s mismatched postings, %(topups)s top-ups not matching their "
            "entries; run `pasok ledger verify`",
            summary,
        )
    return summary
