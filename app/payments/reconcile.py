"""The reconciliation: top-ups left pending too long (a webhook lost, a customer who never
came back) are re-read from their gateway and settled or expired. Run by `pasok cron` through
workers/payment_jobs.py, and by `pasok gateway reconcile`."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.payments import midtrans_gateway, stripe_gateway
from app.payments.models import MIDTRANS, PENDING, STRIPE, Topup
from app.payments.services import GatewayUnavailable, lock_topup
from app.payments.settings import gateway_account
from app.types import utcnow
from tenants.context import across_tenants

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=15)
BATCH = 500
REREAD = {STRIPE: stripe_gateway.reread, MIDTRANS: midtrans_gateway.reread}


def reconcile_topups(*, older_than: timedelta = STALE_AFTER, limit: int = BATCH) -> Counter:
    """Re-read each Stripe or Midtrans top-up pending for longer than `older_than`; a count of
    what came of them ("credited", "expired", "waiting", "unreachable", …)."""
    outcomes: Counter = Counter()
    with across_tenants():
        due = db.session.scalars(
            select(Topup.id)
            .where(
                Topup.state == PENDING,
                Topup.gateway.in_(tuple(REREAD)),
                Topup.created_at < utcnow() - older_than,
            )
            .order_by(Topup.id)
            .limit(limit)
        ).all()
        db.session.rollback()
        for topup_id in due:
            outcomes[_reconcile_one(topup_id)] += 1
    return outcomes


def _reconcile_one(topup_id: int) -> str:
    topup = lock_topup(topup_id)
    if topup is None or topup.state != PENDING:
        db.session.rollback()
        return "settled meanwhile"
    account = gateway_account(None if topup.is_wholesale else topup.tenant_id, topup.gateway)
    if account is None or not account.secret_key:
        db.session.rollback()
        return "gateway not configured"
    try:
        outcome = REREAD[topup.gateway](account, topup)
    except GatewayUnavailable as exc:
        db.session.rollback()
        log.warning("top-up %s not reconciled: %s", topup_id, exc)
        return "unreachable"
    db.session.commit()
    return outcome
