"""The payment reconciliation on a schedule (see app/payments/reconcile.py)."""

from __future__ import annotations

import logging

from workers.context import across_tenants_job

log = logging.getLogger(__name__)


@across_tenants_job
def reconcile_payments() -> dict[str, int]:
    """Settle or expire top-ups left pending too long; return what came of them."""
    from app.payments.reconcile import reconcile_topups

    outcomes = dict(reconcile_topups())
    if outcomes:
        log.info("payment reconciliation: %s", outcomes)
    return outcomes
