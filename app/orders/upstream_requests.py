"""Refills and cancels of orders that are upstream (DESIGN.md, "Orders and the pipeline"):
asked for by a customer or staff, sent by a job, and followed to their own final state.

Who may ask. A refill: the order is `completed`, its service offers refills, and its refill
window (the service's `refill_days`, else `DEFAULT_REFILL_DAYS`, counted from the order's
completion) is still open. A cancel: the order is upstream and not final (`in_progress` or
`processing`) and its service offers cancels. An order has at most one open refill and one open
cancel (`UpstreamRequest.open_kind` under a unique constraint, so two clicks at once make one
request). An order not yet sent upstream is canceled locally instead (`cancel_unsent_order`).

The outbox. The request row is written `requested` in the caller's transaction; its send job
(`upstream-request-<id>-<attempts>`, workers/order_jobs.py) is enqueued only after the
outermost commit. If Redis is down the request still stands, and `sweep_requests` (every minute)
enqueues every due `requested` row whose job is missing or stale.

Sending. The job claims the row (`requested → sending`, a conditional UPDATE on the attempt it
read, committed) before the HTTP call, so two copies of a job send once; every outcome is then
written only if the row is still at that claim. A refusal is kept with the upstream's words
(`refused`); not sent (connection refused, DNS) → `requested` again after a backoff, at most
`PASOK_FORWARD_MAX_TRIES` times; an ambiguous answer (timeout, 5xx, HTML) → `error`, never
blindly resent (the customer or staff may ask again). A `sending` row past its deadline (the
worker died) is also `error`.

Following. A cancel that the upstream accepted is final as a request; the order itself is then
due for the status sync at once, which takes it to Canceled (full refund) or Partial (the
remainder refunded), each exactly once, as for any order (app/orders/status_sync.py). A refill
keeps the upstream's refill id and is polled with `refill_status`, up to 100 refill ids per call
per provider, until Completed, Rejected or Error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from flask_babel import lazy_gettext as _l
from sqlalchemy import Row, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit.services import record_audit
from app.catalog.models import Service
from app.errors import NotFound, PasokError
from app.extensions import db
from app.orders.forwarding import DEADLINE, MAX_TRIES, backoff, setting
from app.orders.models import (
    ACCEPTED,
    CANCEL,
    COMPLETED,
    IN_PROGRESS,
    PROCESSING,
    REFILL,
    REFILL_COMPLETED,
    REFILL_IN_PROGRESS,
    REFILL_PENDING,
    REFILL_POLLED,
    REFILL_REJECTED,
    REFUSED,
    REQUEST_ERROR,
    REQUESTED,
    SENDING,
    Order,
    UpstreamRequest,
)
from app.orders.services import all_or_nothing
from app.orders.status_sync import in_provider_batches, next_poll
from app.providers.client import Outcome, Reply
from app.providers.models import Provider
from app.types import utcnow
from tenants.context import tenant_scope

log = logging.getLogger(__name__)

DEFAULT_REFILL_DAYS = 30
# Orders upstream and not final: what a cancel can still stop.
CANCELABLE = (IN_PROGRESS, PROCESSING)
EARLY = timedelta(seconds=1)  # a worker's clock may run a little ahead of the database's
SWEEP_BATCH = 500
SYSTEM = "system"
SEND_AFTER_COMMIT = "upstream_requests_after_commit"

# The upstream's refill statuses (as the client names them) → ours. "Error" is no API v2
# status word, so the client passes it on as the upstream spelled it.
REFILL_STATUS = {
    "Pending": REFILL_PENDING,
    "In progress": REFILL_IN_PROGRESS,
    "Processing": REFILL_IN_PROGRESS,
    "Completed": REFILL_COMPLETED,
    "Rejected": REFILL_REJECTED,
    "Canceled": REFILL_REJECTED,
    "Error": REQUEST_ERROR,
    "error": REQUEST_ERROR,
}


# --- why a request is refused ----------------------------------------------------------------


class RequestRefused(PasokError):
    """A refill or cancel this order cannot have now; the message says why."""


class RefillNotOffered(RequestRefused):
    def __init__(self):
        super().__init__(_l("This service does not offer refills."))


class CancelNotOffered(RequestRefused):
    def __init__(self):
        super().__init__(_l("This service does not allow canceling an order once it has started."))


class RefillWindowClosed(RequestRefused):
    def __init__(self, days: int):
        super().__init__(
            _l(
                "The refill period of this order (%(days)s days after completion) is over.",
                days=days,
            )
        )


class RefillNotApplicable(RequestRefused):
    def __init__(self):
        super().__init__(_l("Only a completed order can be refilled."))


class CancelNotApplicable(RequestRefused):
    def __init__(self):
        super().__init__(_l("This order can no longer be canceled."))


class RefillAlreadyRequested(RequestRefused):
    def __init__(self):
        super().__init__(_l("A refill of this order is already under way."))


class CancelAlreadyRequested(RequestRefused):
    def __init__(self):
        super().__init__(_l("A cancel of this order has already been requested."))


# --- what an order allows --------------------------------------------------------------------


def refill_days(service: Service | None) -> int:
    """The service's refill window in days (counted from the order's completion)."""
    if service is None or not service.refill_days or service.refill_days < 0:
        return DEFAULT_REFILL_DAYS
    return service.refill_days


def refill_until(order: Order, service: Service | None) -> datetime | None:
    """When the order's refill window closes, if it is a completed order whose service refills."""
    if service is None or not service.refill or order.status != COMPLETED:
        return None
    done = order.finished_at or order.updated_at or order.created_at
    return done + timedelta(days=refill_days(service))


def order_requests(order_id: int) -> list[UpstreamRequest]:
    """The order's refills and cancels, newest first (in the caller's scope)."""
    return list(
        db.session.scalars(
            select(UpstreamRequest)
            .where(UpstreamRequest.order_id == order_id)
            .order_by(UpstreamRequest.id.desc())
        )
    )


def refill_refusal(
    order: Order, service: Service | None, requests: list[UpstreamRequest], now: datetime
) -> RequestRefused | None:
    """Why the order cannot be refilled now, or None if it can."""
    if service is None or not service.refill:
        return RefillNotOffered()
    if order.status != COMPLETED or order.external_id is None or order.provider_id is None:
        return RefillNotApplicable()
    until = refill_until(order, service)
    if until is not None and until < now:
        return RefillWindowClosed(refill_days(service))
    if any(r.kind == REFILL and r.open_kind is not None for r in requests):
        return RefillAlreadyRequested()
    return None


def cancel_refusal(
    order: Order, service: Service | None, requests: list[UpstreamRequest]
) -> RequestRefused | None:
    """Why the order (upstream) cannot be canceled now, or None if it can."""
    if service is None or not service.cancel:
        return CancelNotOffered()
    if order.status not in CANCELABLE or order.external_id is None or order.provider_id is None:
        return CancelNotApplicable()
    # An accepted cancel is final as a request, but the order waits for the status sync.
    if any(r.kind == CANCEL and (r.open_kind is not None or r.state == ACCEPTED) for r in requests):
        return CancelAlreadyRequested()
    return None


@dataclass(frozen=True)
class OrderActions:
    """What the order page offers, and the order's refills and cancels."""

    can_refill: bool
    can_cancel: bool
    refill_until: datetime | None
    requests: list[UpstreamRequest]


def order_actions(order: Order, now: datetime | None = None) -> OrderActions:
    now = now or utcnow()
    service = db.session.get(Service, order.service_id)
    requests = order_requests(order.id)
    return OrderActions(
        can_refill=refill_refusal(order, service, requests, now) is None,
        can_cancel=cancel_refusal(order, service, requests) is None,
        refill_until=refill_until(order, service),
        requests=requests,
    )


# --- asking ----------------------------------------------------------------------------------


def request_refill(
    order_id: int, *, actor: User | str, customer_id: int | None = None
) -> UpstreamRequest:
    """Record a refill of the order, to be sent after the caller commits. Runs in the caller's
    scope; with `customer_id`, only that customer's order. `RequestRefused` says why not."""
    return _request(REFILL, order_id, actor, customer_id)


def request_cancel(
    order_id: int, *, actor: User | str, customer_id: int | None = None
) -> UpstreamRequest:
    """Record a cancel of an order that is upstream, to be sent after the caller commits."""
    return _request(CANCEL, order_id, actor, customer_id)


def _request(
    kind: str, order_id: int, actor: User | str, customer_id: int | None
) -> UpstreamRequest:
    query = select(Order).where(Order.id == order_id)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    order = db.session.scalar(query)
    if order is None:
        raise NotFound(_l("Incorrect order ID"))
    with tenant_scope(order.tenant_id):
        service = db.session.get(Service, order.service_id)
        requests = order_requests(order.id)
        if kind == REFILL:
            refusal = refill_refusal(order, service, requests, utcnow())
        else:
            refusal = cancel_refusal(order, service, requests)
        if refusal is not None:
            raise refusal
        request = UpstreamRequest(
            tenant_id=order.tenant_id,
            order_id=order.id,
            kind=kind,
            state=REQUESTED,
            open_kind=kind,
            requested_by=actor.email if isinstance(actor, User) else actor,
            provider_id=order.provider_id,
        )
        try:
            with all_or_nothing():
                db.session.add(request)
                db.session.flush()
        except IntegrityError:
            # Someone asked for the same at the same moment: theirs is the one request.
            duplicate = RefillAlreadyRequested() if kind == REFILL else CancelAlreadyRequested()
            raise duplicate from None
        record_audit(
            f"order.{kind}.requested",
            actor=actor,
            tenant_id=order.tenant_id,
            target=f"order:{order.id}",
            details={"request": request.id, "status": order.status},
        )
    db.session.info.setdefault(SEND_AFTER_COMMIT, []).append((order.tenant_id, request.id))
    return request


# Like the forwarding outbox: only the outermost transaction's end says whether the request is
# committed (a savepoint's release or rollback fires these too).
@event.listens_for(Session, "after_commit")
def _send_committed_requests(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending = session.info.pop(SEND_AFTER_COMMIT, None)
    if pending:
        enqueue_requests([(tenant_id, request_id, 0) for tenant_id, request_id in pending])


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_requests(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(SEND_AFTER_COMMIT, None)


def enqueue_requests(rows: list[tuple[int, int, int]]) -> None:
    """Enqueue send jobs for (tenant id, request id, attempts); never raises: the requests are
    committed, and the sweeper enqueues whatever is left."""
    from workers.order_jobs import enqueue_upstream_request

    for done, (tenant_id, request_id, attempts) in enumerate(rows):
        try:
            enqueue_upstream_request(tenant_id, request_id, attempts)
        except Exception as error:  # Redis down, or anything else: the sweeper will see to it
            left = [row[1] for row in rows[done:]]
            log.warning("requests %s wait for the sweeper: enqueue failed: %s", left, error)
            return


# --- sending ---------------------------------------------------------------------------------


def send_request(request_id: int) -> str:
    """Send one refill or cancel upstream (the job's work); says what happened. Runs in the
    request's tenant scope or across tenants."""
    request = _fresh(request_id)
    if request is None:
        return "no such request"
    if request.state != REQUESTED:
        return f"nothing to do: {request.state}"
    now = utcnow()
    if request.next_attempt_at is not None and request.next_attempt_at > now + EARLY:
        return "not due yet"
    with tenant_scope(request.tenant_id):
        order = db.session.get(Order, request.order_id)
        provider = db.session.get(Provider, request.provider_id) if request.provider_id else None
        kind, attempts, external_id = request.kind, request.attempts, order.external_id
        if provider is None or external_id is None:
            return _finish_unsent(request, "the order has no upstream order id")
        if kind == CANCEL and order.status not in CANCELABLE:
            return _finish_unsent(request, f"the order is already {order.status}", REFUSED)
        claimed = db.session.execute(
            update(UpstreamRequest)
            .where(
                UpstreamRequest.id == request.id,
                UpstreamRequest.state == REQUESTED,
                UpstreamRequest.attempts == attempts,
            )
            .values(
                state=SENDING,
                attempts=attempts + 1,
                next_attempt_at=now + timedelta(seconds=setting(DEADLINE)),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        client, name = provider.client(), provider.name
        db.session.commit()
        if claimed != 1:
            return "claimed by another job"
        try:
            reply = client.refill(external_id) if kind == REFILL else client.cancel([external_id])
        finally:
            client.session.close()
        return _outcome(request, attempts + 1, external_id, name, reply)


def _outcome(
    request: UpstreamRequest, attempt: int, external_id: str, name: str, reply: Reply
) -> str:
    now = utcnow()
    kind = request.kind
    if reply.outcome is Outcome.NOT_SENT and attempt < setting(MAX_TRIES):
        values = {"state": REQUESTED, "next_attempt_at": now + backoff(attempt)}
        values["error"] = f"{name}: not sent: {reply.error or ''}"[:500]
        _write(request, attempt, values)
        db.session.commit()
        _enqueue_retry(request, attempt)
        return "not sent: try again later"
    if not reply.ok:
        if reply.outcome is Outcome.REJECTED:
            state, error = REFUSED, reply.error or "refused"
        else:
            state, error = REQUEST_ERROR, f"{name}: no clear answer: {reply.error or ''}"
        return _final(request, attempt, state, error, now)
    if kind == REFILL:
        refill_id = str(reply.data).strip()
        if not refill_id or refill_id.lower() in ("0", "none", "null"):
            return _final(
                request, attempt, REQUEST_ERROR, f"{name}: no refill id: {reply.data!r}", now
            )
        try:
            with all_or_nothing():
                written = _write(
                    request,
                    attempt,
                    {"state": REFILL_PENDING, "external_id": refill_id, "next_attempt_at": None},
                )
        except IntegrityError:
            return _final(
                request, attempt, REQUEST_ERROR, f"{name}: refill id {refill_id} is taken", now
            )
        db.session.commit()
        return f"refill {refill_id}: pending" if written else "superseded"
    answer = reply.data.get(external_id) if isinstance(reply.data, dict) else None
    if answer is None:
        return _final(
            request, attempt, REQUEST_ERROR, f"{name} left the order out of its reply", now
        )
    if answer.startswith("error: "):
        return _final(request, attempt, REFUSED, answer.removeprefix("error: "), now)
    return _final(request, attempt, ACCEPTED, None, now)


def _final(
    request: UpstreamRequest, attempt: int, state: str, error: str | None, now: datetime
) -> str:
    """Write a final state (if the row is still at this attempt's claim), audit it, and for a
    cancel make the order due for the status sync at once."""
    values = {"state": state, "open_kind": None, "finished_at": now, "next_attempt_at": None}
    if error is not None:
        values["error"] = error[:500]
    if not _write(request, attempt, values):
        db.session.rollback()
        return "superseded"
    _after_final(request, state, error)
    db.session.commit()
    return state


def _after_final(request: UpstreamRequest, state: str, error: str | None) -> None:
    if request.kind == CANCEL:
        # The order's own status sync takes it to Canceled or Partial (and refunds) from here.
        db.session.execute(
            update(Order)
            .where(Order.id == request.order_id, Order.status.in_(CANCELABLE))
            .values(next_poll_at=None)
            .execution_options(synchronize_session=False)
        )
    details: dict[str, Any] = {"request": request.id}
    if error:
        details["error"] = error[:500]
    record_audit(
        f"order.{request.kind}.{state}",
        actor=SYSTEM,
        tenant_id=request.tenant_id,
        target=f"order:{request.order_id}",
        details=details,
    )


def _finish_unsent(request: UpstreamRequest, error: str, state: str = REQUEST_ERROR) -> str:
    now = utcnow()
    values = {"state": state, "open_kind": None, "finished_at": now, "next_attempt_at": None}
    written = db.session.execute(
        update(UpstreamRequest)
        .where(UpstreamRequest.id == request.id, UpstreamRequest.state == REQUESTED)
        .values(**values, error=error[:500], updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if written:
        _after_final(request, state, error)
    db.session.commit()
    return state if written else "superseded"


def _enqueue_retry(request: UpstreamRequest, attempts: int) -> None:
    enqueue_requests([(request.tenant_id, request.id, attempts)])


def _write(request: UpstreamRequest, attempt: int, values: dict[str, Any]) -> int:
    """Write `values` if the request is still at the claim of `attempt`; 1 if written."""
    return db.session.execute(
        update(UpstreamRequest)
        .where(
            UpstreamRequest.id == request.id,
            UpstreamRequest.state == SENDING,
            UpstreamRequest.attempts == attempt,
        )
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def _fresh(request_id: int) -> UpstreamRequest | None:
    return db.session.execute(
        select(UpstreamRequest)
        .where(UpstreamRequest.id == request_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


# --- the sweeper -----------------------------------------------------------------------------


@dataclass
class RequestSweepReport:
    enqueued: int = 0  # due `requested` rows whose job was missing or stale
    lost: int = 0  # `sending` rows past their deadline, now `error`
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_requests() -> RequestSweepReport:
    """Give up on `sending` requests past their deadline (their worker died: the upstream may
    or may not have them, so they are never resent), and make sure every due `requested` one
    has its job. Runs across tenants; safe to run any number of times at once."""
    from workers.order_jobs import ensure_upstream_request_jobs

    report = RequestSweepReport()
    now = utcnow()
    stuck = db.session.scalars(
        select(UpstreamRequest)
        .where(UpstreamRequest.state == SENDING, UpstreamRequest.next_attempt_at <= now)
        .order_by(UpstreamRequest.id)
        .limit(SWEEP_BATCH)
    ).all()
    for request in stuck:
        seen = "no answer within the deadline: the worker stopped"
        report.lost += _final(request, request.attempts, REQUEST_ERROR, seen, now) == REQUEST_ERROR
    db.session.rollback()
    last_id = 0
    while True:
        rows = db.session.execute(
            select(UpstreamRequest.id, UpstreamRequest.tenant_id, UpstreamRequest.attempts)
            .where(
                UpstreamRequest.state == REQUESTED,
                (UpstreamRequest.next_attempt_at.is_(None))
                | (UpstreamRequest.next_attempt_at <= now + EARLY),
                UpstreamRequest.id > last_id,
            )
            .order_by(UpstreamRequest.id)
            .limit(SWEEP_BATCH)
        ).all()
        db.session.rollback()  # no transaction held while talking to Redis
        if not rows:
            break
        try:
            report.enqueued += ensure_upstream_request_jobs(
                [(row.tenant_id, row.id, row.attempts) for row in rows]
            )
        except redis.RedisError as error:
            report.errors.append(f"could not enqueue: {error}")
            log.error("request sweep: could not enqueue: %s", error)
            break
        last_id = rows[-1].id
    if report.enqueued or report.lost:
        log.info(
            "request sweep: %s enqueued, %s lost to a stopped worker", report.enqueued, report.lost
        )
    return report


# --- following refills -----------------------------------------------------------------------


@dataclass
class RefillSyncReport:
    calls: int = 0  # refill_status calls made upstream
    refills: int = 0  # refills asked about
    updated: int = 0  # refills whose answer was written
    completed: int = 0
    rejected: int = 0
    kept: int = 0  # an unknown status or a per-refill error: left as they were
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolledRefill:
    id: int
    tenant_id: int
    order_id: int
    state: str
    external_id: str
    created_at: datetime


def due_refill_batches(
    provider_id: int | None = None, now: datetime | None = None
) -> Iterator[tuple[int, list[PolledRefill]]]:
    """(provider id, refills) for every due refill the upstream holds, at most 100 per batch.
    Runs across tenants."""
    now = now or utcnow()
    query = (
        select(
            UpstreamRequest.provider_id, UpstreamRequest.id, UpstreamRequest.tenant_id,
            UpstreamRequest.order_id, UpstreamRequest.state, UpstreamRequest.external_id,
            UpstreamRequest.created_at,
        )
        .where(
            UpstreamRequest.kind == REFILL,
            UpstreamRequest.state.in_(REFILL_POLLED),
            UpstreamRequest.provider_id.is_not(None),
            UpstreamRequest.external_id.is_not(None),
            (UpstreamRequest.next_attempt_at.is_(None))
            | (UpstreamRequest.next_attempt_at <= now + EARLY),
        )
        .order_by(UpstreamRequest.provider_id, UpstreamRequest.id)
    )  # fmt: skip
    if provider_id is not None:
        query = query.where(UpstreamRequest.provider_id == provider_id)
    rows = db.session.execute(query).all()
    db.session.rollback()
    yield from in_provider_batches(rows, _polled_refill)


def _polled_refill(row: Row) -> PolledRefill:
    values = row._asdict()
    values.pop("provider_id")
    return PolledRefill(**values)


def sync_refills(provider_id: int | None = None) -> RefillSyncReport:
    """Ask each provider about its due refills, one multi `refill_status` call per 100, and
    write what it says. Runs across tenants."""
    report = RefillSyncReport()
    for batch_provider, refills in due_refill_batches(provider_id):
        _sync_refill_batch(batch_provider, refills, report)
    if report.refills:
        log.info(
            "refill sync: %s refills (%s calls): %s completed, %s rejected, %s kept",
            report.refills, report.calls, report.completed, report.rejected, report.kept,
        )  # fmt: skip
    return report


def _sync_refill_batch(
    provider_id: int, refills: list[PolledRefill], report: RefillSyncReport
) -> None:
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        db.session.rollback()
        return
    client, name = provider.client(), provider.name
    db.session.rollback()  # no transaction held across the HTTP call
    try:
        reply = client.refill_statuses([r.external_id for r in refills])
    finally:
        client.session.close()
    report.calls += 1
    report.refills += len(refills)
    now = utcnow()
    if not reply.ok:
        message = f"{name}: refill status of {len(refills)} refills: {reply.outcome.value}: "
        message += reply.error or ""
        log.warning("refill sync: %s", message)
        report.errors.append(message[:500])
        for refill in refills:
            _write_refill(refill, {"next_attempt_at": next_poll(refill.created_at, now)})
        db.session.commit()
        return
    answers = reply.data if isinstance(reply.data, dict) else {}
    for refill in refills:
        with tenant_scope(refill.tenant_id):
            _apply_refill(refill, answers.get(refill.external_id), now, report, name)
    db.session.commit()


def _apply_refill(
    refill: PolledRefill, answer: str | None, now: datetime, report: RefillSyncReport, name: str
) -> None:
    later = next_poll(refill.created_at, now)
    state = REFILL_STATUS.get(answer) if answer is not None else None
    if state is None:
        if answer is None:
            seen = f"{name} left refill {refill.external_id} out of its reply"
        else:
            seen = f"{name} on refill {refill.external_id}: {answer}"
        log.warning("refill sync: refill %s kept as %s: %s", refill.id, refill.state, seen)
        report.kept += _write_refill(refill, {"next_attempt_at": later, "error": seen[:500]})
        return
    if state in REFILL_POLLED:
        report.updated += _write_refill(
            refill, {"state": state, "next_attempt_at": later, "error": None}
        )
        return
    values = {"state": state, "open_kind": None, "finished_at": now, "next_attempt_at": None}
    if state == REQUEST_ERROR:
        values["error"] = f"{name} reports the refill failed"
    if not _write_refill(refill, values):
        return  # another sync wrote it first
    record_audit(
        f"order.refill.{state}", actor=SYSTEM, tenant_id=refill.tenant_id,
        target=f"order:{refill.order_id}", details={"request": refill.id},
    )  # fmt: skip
    report.updated += 1
    if state == REFILL_COMPLETED:
        report.completed += 1
    elif state == REFILL_REJECTED:
        report.rejected += 1


def _write_refill(refill: PolledRefill, values: dict[str, Any]) -> int:
    """Write `values` if the refill is still in the state its batch read; 1 if written."""
    return db.session.execute(
        update(UpstreamRequest)
        .where(UpstreamRequest.id == refill.id, UpstreamRequest.state == refill.state)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
