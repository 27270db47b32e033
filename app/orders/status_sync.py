"""Status sync: asking providers how the orders they hold are doing, and applying the answer
(DESIGN.md, "Orders and the pipeline").

Planning. An order is polled while it is upstream and not final (`in_progress` or `processing`,
with its provider and upstream id) and due: its `next_poll_at` is unset or past. `due_batches`
groups the due orders per provider into batches of at most 100, one multi-status call each.

Cadence. A young order is asked about every minute; the older it gets, the less often (every 5
minutes after its first hour, every 30 after its first day), so a backlog of slow orders does
not crowd out the fresh ones customers are watching.

Applying. `sync_batch` makes one `status` call for its batch, with no transaction held across
it, then writes each order's start_count, remains and status with a conditional UPDATE on the
status it read: of two syncs applying the same answer at once, one writes and the other finds
the order moved on. The final step runs in the same transaction as its write, so it happens
exactly once: `Partial` refunds the undelivered remainder pro rata to both wallets, `Canceled`
refunds in full (the ledger is idempotent by order as well), `Completed` feeds the service's
average time. An upstream status we do not know, or a per-order error ("Incorrect order ID"),
is logged and kept on the order as its last error; its status is never coerced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Row, case, select, update

from app.audit.services import record_audit
from app.catalog.models import Service
from app.extensions import db
from app.ledger import LedgerError, refund_order, refund_remainder
from app.orders.models import CANCELED, COMPLETED, IN_PROGRESS, PARTIAL, PROCESSING, Order
from app.providers.client import MAX_IDS_PER_CALL, UpstreamStatus
from app.providers.models import Provider
from app.types import utcnow
from tenants.context import tenant_scope

T = TypeVar("T")

log = logging.getLogger(__name__)

ACTIVE = (IN_PROGRESS, PROCESSING)
EARLY = timedelta(seconds=1)  # a worker's clock may run a little ahead of the database's
SYSTEM = "system"

# (age below which, poll every): the first hour every minute, the first day every 5 minutes,
# then every 30.
CADENCE = (
    (timedelta(hours=1), timedelta(minutes=1)),
    (timedelta(days=1), timedelta(minutes=5)),
)
SLOWEST = timedelta(minutes=30)
# A service's average time is an exponential average in which each completion weighs
# 1/AVERAGE_WEIGHT: cheap (one UPDATE), and it follows a provider that gets slower or faster.
AVERAGE_WEIGHT = 10

# API v2 status names → ours. An upstream "Pending" is an order it has not started: ours.
UPSTREAM_STATUS = {
    "Pending": IN_PROGRESS,
    "In progress": IN_PROGRESS,
    "Processing": PROCESSING,
    "Completed": COMPLETED,
    "Partial": PARTIAL,
    "Canceled": CANCELED,
}
FINAL = (COMPLETED, PARTIAL, CANCELED)


def poll_interval(age: timedelta) -> timedelta:
    """How long an order of this age waits before it is asked about again."""
    for below, every in CADENCE:
        if age < below:
            return every
    return SLOWEST


def next_poll(created_at: datetime, now: datetime) -> datetime:
    return now + poll_interval(now - created_at)


@dataclass
class SyncReport:
    batches: int = 0
    calls: int = 0  # multi-status calls made upstream
    orders: int = 0  # orders asked about
    updated: int = 0  # orders whose answer was written
    completed: int = 0
    partial: int = 0
    canceled: int = 0
    kept: int = 0  # unknown status or a per-order error: left as they were
    failed_batches: int = 0  # the call itself failed (unreachable, an error, an odd reply)
    errors: list[str] = field(default_factory=list)

    def add(self, other: SyncReport) -> None:
        for name, value in asdict(other).items():
            if name == "errors":
                self.errors.extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.orders} orders in {self.batches} batches ({self.calls} status calls): "
            f"{self.completed} completed, {self.partial} partial, {self.canceled} canceled, "
            f"{self.kept} kept as they were, {self.failed_batches} failed batches"
        )


# --- planning --------------------------------------------------------------------------------


def due_batches(
    provider_id: int | None = None, now: datetime | None = None
) -> Iterator[tuple[int, list[int]]]:
    """(provider id, order ids) for every due order upstream, at most 100 per batch, each
    provider's orders in id order. Runs across tenants."""
    now = now or utcnow()
    query = (
        select(Order.provider_id, Order.id)
        .where(
            Order.status.in_(ACTIVE),
            Order.provider_id.is_not(None),
            Order.external_id.is_not(None),
            (Order.next_poll_at.is_(None)) | (Order.next_poll_at <= now + EARLY),
        )
        .order_by(Order.provider_id, Order.id)
    )
    if provider_id is not None:
        query = query.where(Order.provider_id == provider_id)
    rows = db.session.execute(query).all()
    db.session.rollback()
    yield from in_provider_batches(rows, lambda row: row.id)


def in_provider_batches(
    rows: Sequence[Row], item: Callable[[Row], T]
) -> Iterator[tuple[int, list[T]]]:
    """`rows` (ordered by `provider_id`) as (provider id, items) batches of at most one multi
    call each."""
    batch: list[T] = []
    current: int | None = None
    for row in rows:
        if batch and (row.provider_id != current or len(batch) == MAX_IDS_PER_CALL):
            yield current, batch
            batch = []
        current = row.provider_id
        batch.append(item(row))
    if batch:
        yield current, batch


def lease(order_ids: list[int], until: datetime) -> None:
    """Put these orders' next poll at `until`, so the next planning run leaves them to the
    batch job they were given to (should it be lost, they are due again then)."""
    db.session.execute(
        update(Order)
        .where(Order.id.in_(order_ids), Order.status.in_(ACTIVE))
        .values(next_poll_at=until)
        .execution_options(synchronize_session=False)
    )


def sync_statuses(provider_id: int | None = None) -> SyncReport:
    """Sync every due order upstream (of one provider, or all), batch by batch, in this
    process. Runs across tenants."""
    report = SyncReport()
    for batch_provider, order_ids in due_batches(provider_id):
        report.add(sync_batch(batch_provider, order_ids))
    if report.orders:
        log.info("status sync: %s", report.summary())
    return report


# --- one batch -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """An order as it was when its batch was read: what its answer is written against."""

    id: int
    tenant_id: int
    service_id: int
    status: str
    external_id: str
    quantity: int
    created_at: datetime


def sync_batch(provider_id: int, order_ids: list[int]) -> SyncReport:
    """Ask `provider_id` about these orders in one multi-status call and apply the answers.
    Orders no longer active or no longer with this provider are left out. Runs across
    tenants."""
    report = SyncReport(batches=1)
    provider = db.session.get(Provider, provider_id)
    rows = db.session.execute(
        select(
            Order.id, Order.tenant_id, Order.service_id, Order.status, Order.external_id,
            Order.quantity, Order.created_at,
        )
        .where(
            Order.id.in_(order_ids[:MAX_IDS_PER_CALL]),
            Order.provider_id == provider_id,
            Order.status.in_(ACTIVE),
            Order.external_id.is_not(None),
        )
        .order_by(Order.id)
    ).all()  # fmt: skip
    asked = {row.external_id: Asked(**row._asdict()) for row in rows}
    if provider is None or not asked:
        db.session.rollback()
        return report
    client, name = provider.client(), provider.name
    db.session.rollback()  # no transaction held across the HTTP call
    try:
        reply = client.statuses(list(asked))
    finally:
        client.session.close()
    report.calls, report.orders = 1, len(asked)
    now = utcnow()
    if not reply.ok:
        message = f"{name}: status of {len(asked)} orders: {reply.outcome.value}: "
        message += reply.error or ""
        log.warning("status sync: %s", message)
        report.failed_batches, report.errors = 1, [message[:500]]
        for order in asked.values():
            _write(order, {"next_poll_at": next_poll(order.created_at, now)})
        db.session.commit()
        return report
    for external_id, order in asked.items():
        answer = reply.data.get(external_id)
        with tenant_scope(order.tenant_id):
            _apply(order, answer, now, report, name)
    db.session.commit()
    return report


def _apply(
    order: Asked, answer: UpstreamStatus | str | None, now: datetime, report: SyncReport, name: str
) -> None:
    later = next_poll(order.created_at, now)
    if not isinstance(answer, UpstreamStatus) or not answer.known:
        if answer is None:
            seen = f"{name} left order {order.external_id} out of its status reply"
        elif isinstance(answer, str):
            seen = f"{name} on order {order.external_id}: {answer}"
        else:
            seen = f"{name} reports an unknown status {answer.status!r}"
        log.warning("status sync: order %s kept as %s: %s", order.id, order.status, seen)
        report.kept += _write(order, {"next_poll_at": later, "last_error": seen[:500]})
        return
    status = UPSTREAM_STATUS.get(answer.status)
    remains = answer.remains
    if status is None or (status == PARTIAL and remains is None):
        # A status we know by name but cannot act on (a refill's "Rejected"; a Partial that
        # does not say what is left): kept, never guessed at.
        seen = f"{name} reports {answer.status!r} with remains {remains!r}"
        log.warning("status sync: order %s kept as %s: %s", order.id, order.status, seen)
        report.kept += _write(order, {"next_poll_at": later, "last_error": seen[:500]})
        return
    if remains is not None:
        remains = min(max(remains, 0), order.quantity)  # a provider's odd remains, clamped
    values: dict[str, Any] = {"status": status, "last_error": None}
    if answer.start_count is not None:
        values["start_count"] = answer.start_count
    if status == CANCELED:
        remains = order.quantity
    elif status == COMPLETED:
        remains = 0
    if remains is not None:
        values["remains"] = remains
    if status not in FINAL:
        report.updated += _write(order, values | {"next_poll_at": later})
        return
    # The write and its money move together: a refund that fails leaves the order as it was,
    # to be asked about again.
    savepoint = db.session.begin_nested()
    try:
        if not _write(order, values | {"next_poll_at": None, "finished_at": now}):
            savepoint.rollback()
            return  # another sync applied it first
        _settle(order, status, remains, now)
        savepoint.commit()
        if status in (PARTIAL, CANCELED):
            # A refund holds the rows every order of the tenant and of the platform updates
            # (their sales, the tenant's wallet): commit it now rather than through the rest of
            # the batch, whose next refund would take another customer's wallet after them,
            # against the ledger's lock order, and could deadlock with an order being placed.
            db.session.commit()
    except LedgerError as error:
        savepoint.rollback()
        message = f"order {order.id}: {answer.status} not applied: {error}"
        log.error("status sync: %s", message)
        report.errors.append(message[:500])
        _write(order, {"next_poll_at": later, "last_error": message[:500]})
        return
    report.updated += 1
    setattr(report, status, getattr(report, status) + 1)


def _settle(order: Asked, status: str, remains: int | None, now: datetime) -> None:
    """What a final status does, once: refund the undelivered part, or learn the time taken."""
    if status == PARTIAL:
        entry = refund_remainder(order.id, order.quantity, remains, actor=SYSTEM)
        details = {"remains": remains, "quantity": order.quantity, "refund": "pro rata"}
    elif status == CANCELED:
        entry = refund_order(order.id, actor=SYSTEM)
        details = {"refund": "full"}
    else:
        _learn_average(order.service_id, int((now - order.created_at).total_seconds()))
        return
    record_audit(
        f"order.{status}", actor=SYSTEM, tenant_id=order.tenant_id, target=f"order:{order.id}",
        details=details | {"journal_entry": entry.id},
    )  # fmt: skip


def _learn_average(service_id: int, seconds: int) -> None:
    """Fold one completion into the service's average time, in the database (no read-modify-
    write race between two syncs)."""
    seconds = max(seconds, 0)
    current = Service.average_seconds
    db.session.execute(
        update(Service)
        .where(Service.id == service_id)
        .values(
            average_seconds=case(
                (current.is_(None), seconds),
                else_=(current * (AVERAGE_WEIGHT - 1) + seconds) // AVERAGE_WEIGHT,
            )
        )
        .execution_options(synchronize_session=False)
    )


def _write(order: Asked, values: dict[str, Any]) -> int:
    """Write `values` if the order is still in the status its batch read; 1 if written."""
    return db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == order.status)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
