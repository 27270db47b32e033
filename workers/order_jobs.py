"""The order pipeline's jobs, and how they are put on the `forward` queue.

One job per order and attempt: `forward-<order>-<attempts>`, enqueued with rq's `unique=True`, so
a placement, a retry and the sweeper asking for the same order at the same attempt leave one job
waiting. rq 3.0 refuses a unique id while its previous job is still stored (a finished one for
`RESULT_TTL`, a failed one for `FAILURE_TTL`); a job that ended without claiming its order (it
was not due yet, or it failed before the claim) would then block that order's id. So a refusal
is inspected: a job that has ended, or that started longer ago than any job may run (its worker
died), is deleted and the order enqueued again. The claim inside the job makes a second copy
harmless anyway: only one job ever moves an order from `pending` to `submitting`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import redis
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from workers.context import AppJob, across_tenants_job, tenant_job
from workers.queues import FORWARD, get_queue

log = logging.getLogger(__name__)

# A forward job claims, makes one HTTP call (a connect timeout and the provider's timeout) and
# writes the outcome; RQ stops it after this long, leaving the order to the sweeper.
JOB_TIMEOUT = 180
RESULT_TTL = 600
FAILURE_TTL = 7 * 24 * 3600
ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


@across_tenants_job
def forward_order(order_id: int) -> str:
    """Send one order upstream (or settle an `unknown` one); says what happened."""
    from app.orders.forwarding import forward_order as forward

    return forward(order_id)


@across_tenants_job
def sweep_orders() -> dict[str, int]:
    """Re-enqueue due `pending`/`unknown` orders, move stuck `submitting` ones to `unknown`."""
    from app.orders.forwarding import sweep_orders as sweep

    return sweep().as_dict()


def forward_job_id(order_id: int, attempts: int) -> str:
    return f"forward-{order_id}-{attempts}"


def enqueue_forward(order_id: int, attempts: int, connection: redis.Redis | None = None) -> bool:
    """Put the forward job of `order_id` at `attempts` on the queue, unless one is already
    waiting or running; True if this call enqueued it. Redis errors propagate."""
    return _enqueue_unique(
        get_queue(FORWARD, connection),
        forward_job_id(order_id, attempts),
        forward_order,
        order_id,
        description=f"forward order {order_id} (attempt {attempts + 1})",
    )


def _enqueue_unique(queue, job_id: str, func, *args, description: str) -> bool:
    """Enqueue `func(*args)` as `job_id` unless a live job has that id; a stale one (ended, or
    abandoned by a dead worker) is replaced. rq refuses a unique id while its old job is still
    stored, so the stored job decides. True if this call enqueued it."""
    for _ in range(2):
        try:
            queue.enqueue(
                func,
                *args,
                job_id=job_id,
                unique=True,
                job_timeout=JOB_TIMEOUT,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                description=description,
            )
            return True
        except DuplicateJobError:
            try:
                job = AppJob.fetch(job_id, connection=queue.connection)
            except NoSuchJobError:
                continue  # it expired in between: try again
            if not is_stale(job):
                return False
            job.delete()
    return False


def ensure_forward_jobs(
    orders: Iterable[tuple[int, int]], connection: redis.Redis | None = None
) -> int:
    """For each (order id, attempts), enqueue the forward job if it is missing or stale (the
    sweeper's check: one round trip per batch for the jobs that are fine). Returns how many
    jobs were enqueued."""
    pairs = list(orders)
    if not pairs:
        return 0
    queue = get_queue(FORWARD, connection)
    jobs = AppJob.fetch_many(
        [forward_job_id(order_id, attempts) for order_id, attempts in pairs],
        connection=queue.connection,
    )
    enqueued = 0
    for (order_id, attempts), job in zip(pairs, jobs, strict=True):
        if job is None or is_stale(job):
            enqueued += enqueue_forward(order_id, attempts, queue.connection)
    return enqueued


def is_stale(job: Job) -> bool:
    """The job will not run its order again: it ended, or its worker died while running it."""
    try:
        status = job.get_status(refresh=False) or job.get_status()
    except InvalidJobOperation:  # a hash without a status is as good as gone
        return True
    if status in ENDED:
        return True
    if status == JobStatus.STARTED and job.started_at is not None:
        started = job.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        return datetime.now(UTC) - started > timedelta(seconds=JOB_TIMEOUT + 60)
    return False


# --- refills and cancels of orders that are upstream (app/orders/upstream_requests.py) --------


@tenant_job
def send_upstream_request(tenant_id: int, request_id: int) -> str:
    """Send one refill or cancel upstream; says what happened."""
    from app.orders.upstream_requests import send_request

    return send_request(request_id)


@across_tenants_job
def sweep_upstream_requests() -> dict:
    """Enqueue due refill/cancel requests whose job is missing or stale; give up on those
    whose worker died mid-send."""
    from app.orders.upstream_requests import sweep_requests

    return sweep_requests().as_dict()


def upstream_request_job_id(request_id: int, attempts: int) -> str:
    return f"upstream-request-{request_id}-{attempts}"


def enqueue_upstream_request(
    tenant_id: int, request_id: int, attempts: int, connection: redis.Redis | None = None
) -> bool:
    """Put the send job of a refill/cancel request at `attempts` on the `forward` queue,
    unless one is already waiting or running;
    True if this call enqueued it. Redis errors propagate."""
    return _enqueue_unique(
        get_queue(FORWARD, connection),
        upstream_request_job_id(request_id, attempts),
        send_upstream_request,
        tenant_id,
        request_id,
        description=f"upstream request {request_id} (attempt {attempts + 1})",
    )


def ensure_upstream_request_jobs(
    rows: Iterable[tuple[int, int, int]], connection: redis.Redis | None = None
) -> int:
    """For each (tenant id, request id, attempts), enqueue the send job if it is missing or
    stale. Returns how many jobs were enqueued."""
    rows = list(rows)
    if not rows:
        return 0
    queue = get_queue(FORWARD, connection)
    jobs = AppJob.fetch_many(
        [upstream_request_job_id(request_id, attempts) for _, request_id, attempts in rows],
        connection=queue.connection,
    )
    enqueued = 0
    for (tenant_id, request_id, attempts), job in zip(rows, jobs, strict=True):
        if job is None or is_stale(job):
            enqueued += enqueue_upstream_request(tenant_id, request_id, attempts, queue.connection)
    return enqueued
