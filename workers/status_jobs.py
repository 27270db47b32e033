"""The status sync's jobs: a fan-out every minute, and one job per batch of up to 100 orders.

`sync_statuses` (scheduled on `status`) plans the due orders into batches per provider, leases
them (their next poll moves to `LEASE` from now, committed before anything is enqueued, so the
next fan-out does not plan them again while their job waits) and enqueues one
`sync_status_batch` job per batch. A lost job costs nothing but time: its orders fall due again
when the lease runs out.

Concurrency per provider is RQ's `RateLimit`, keyed by provider: however many workers serve
`status`, at most `PASOK_STATUS_CONCURRENCY` batch jobs of one provider are queued or running
at once, and the rest wait in RQ's rate-limit registry. rq 3.0 refuses `unique=True` with a
rate limit, so batch jobs get rq's own random ids: the lease, not the job id, keeps a batch from
being enqueued twice, and the conditional writes make a second copy harmless anyway.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import redis
from flask import current_app
from rq import RateLimit

from workers.context import across_tenants_job
from workers.queues import STATUS, get_queue

log = logging.getLogger(__name__)

CONCURRENCY = "PASOK_STATUS_CONCURRENCY"
DEFAULT_CONCURRENCY = 4
# A batch is one HTTP call and up to 100 conditional writes; RQ stops it after this long.
JOB_TIMEOUT = 120
RESULT_TTL = 300
FAILURE_TTL = 7 * 24 * 3600
# How long a planned batch has to run before its orders are planned again.
LEASE = timedelta(minutes=5)


def concurrency() -> int:
    """Batch jobs of one provider that may be queued or running at once."""
    value = current_app.config.get(CONCURRENCY) or os.environ.get(CONCURRENCY)
    return max(int(value), 1) if value else DEFAULT_CONCURRENCY


def provider_limit(provider_id: int) -> RateLimit:
    return RateLimit(f"pasok-status-provider-{provider_id}", concurrency())


@across_tenants_job
def sync_statuses() -> dict[str, int]:
    """Plan the due orders into batches, lease them, enqueue one job per batch."""
    from app.extensions import db
    from app.orders.status_sync import due_batches, lease
    from app.types import utcnow

    batches = list(due_batches())
    until = utcnow() + LEASE
    for _, order_ids in batches:
        lease(order_ids, until)
    db.session.commit()
    enqueued = 0
    try:
        for provider_id, order_ids in batches:
            enqueue_status_batch(provider_id, order_ids)
            enqueued += 1
    except redis.RedisError as error:
        log.error("status sync: %s batches left to their lease: %s", len(batches) - enqueued, error)
    if batches:
        log.info(
            "status sync: %s batches of %s orders enqueued",
            enqueued,
            sum(len(ids) for _, ids in batches),
        )
    return {"batches": enqueued, "orders": sum(len(ids) for _, ids in batches[:enqueued])}


@across_tenants_job
def sync_status_batch(provider_id: int, order_ids: list[int]) -> dict:
    """One multi-status call for up to 100 orders of one provider, and its answers applied."""
    from app.orders.status_sync import sync_batch

    return sync_batch(provider_id, order_ids).as_dict()


def enqueue_status_batch(
    provider_id: int, order_ids: list[int], connection: redis.Redis | None = None
) -> None:
    queue = get_queue(STATUS, connection)
    queue.enqueue(
        sync_status_batch,
        provider_id,
        order_ids,
        rate_limit=provider_limit(provider_id),
        job_timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        description=f"status of {len(order_ids)} orders at provider {provider_id}",
    )


@across_tenants_job
def sync_refills() -> dict:
    """Follow the refills upstream to their final state: one multi `refill_status` call per
    provider and 100 refills, in this job."""
    from app.orders.upstream_requests import sync_refills as sync

    return sync().as_dict()
