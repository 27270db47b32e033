"""Forwarding orders upstream exactly once: the outbox, the claim, the outcomes, unknown orders
and the sweeper (DESIGN.md, "Orders and the pipeline").

The outbox. An order is committed `pending` before anything is enqueued. After that commit
`enqueue_forwarding` puts a forward job on the `forward` queue under a deterministic id,
`forward-<order>-<attempts>`, unique in rq (workers/order_jobs.py), so however often a
placement, a retry or the sweeper asks, one job per order and attempt waits. When Redis is down
the order simply stays `pending`, and the customer's request goes on: `sweep_orders`, every
minute, enqueues each due `pending` or `unknown` order whose job is missing or stale, and moves
each `submitting` order past its deadline (its worker died mid-submit) to `unknown`.

The claim. `forward_order` first moves the order `pending → submitting` with a conditional
UPDATE (attempts + 1, the route it takes, the deadline in `next_attempt_at`) and commits; only
then does it call the provider's `add`. A customer's cancel claims `pending` the same way, so
exactly one of the two wins. A job that finds its order claimed, canceled or not yet due does
nothing. Every outcome is written conditionally on the attempt it answers, so a reply that comes
after the order moved on changes nothing.

Outcomes:
- success → `in_progress` with the upstream's order id;
- not sent (connection refused, DNS) → `pending` again after a backoff (30 s doubling up to
  10 min: ten tries take about an hour), then the next route;
- a rejection about the provider or the service → the next route, else `failed` and refunded;
- a rejection about the order, or one we do not recognise → `failed` and refunded in full;
- "active order with this link" → `pending`, the same route, later (never a fallback);
- ambiguous (timeout, reset, 5xx, HTML) → `unknown`, never blindly resent.

Unknown orders. A submission that carried Pasok's order id as `ref` to a provider that honours
it is resent with the same `ref`: the provider answers with the order it already has, so the
order is placed once. Otherwise the order is reconciled by its upstream id where one is known,
or waits for an operator with its evidence (app/orders/review.py); no path resends it.

Drip-feed orders go only to routes whose upstream service takes drip-feed, as `runs` and
`interval` with the per-run quantity. The platform service's `dripfeed` flag follows its primary
route, so the order form refuses drip-feed where the upstream does not offer it.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import redis
from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import joinedload

from app.audit.services import record_audit
from app.catalog.models import Service, ServiceRoute
from app.catalog.order_types import OrderType, order_type
from app.extensions import db
from app.ledger import refund_order
from app.orders.models import FAILED, IN_PROGRESS, PENDING, SUBMITTING, UNKNOWN, Order
from app.orders.review import review_evidence
from app.providers.client import Outcome, ProviderClient, Reply
from app.providers.models import Provider, ProviderService
from app.types import utcnow
from tenants.context import tenant_scope

log = logging.getLogger(__name__)

DEADLINE = "PASOK_SUBMIT_DEADLINE_SECONDS"
BACKOFF = "PASOK_FORWARD_BACKOFF_SECONDS"
MAX_BACKOFF = "PASOK_FORWARD_MAX_BACKOFF_SECONDS"
MAX_TRIES = "PASOK_FORWARD_MAX_TRIES"
SETTINGS: dict[str, float | int] = {
    # How long a claimed submission may take before the sweeper takes its worker for dead.
    # Keep it above every provider's timeout plus the client's 5 s connect timeout (a reply
    # that comes later is still applied, but the order will have been marked unknown).
    DEADLINE: 120.0,
    # The first retry waits this long, doubling up to MAX_BACKOFF.
    BACKOFF: 30.0,
    MAX_BACKOFF: 600.0,
    # Tries on one route without a definite answer, before the next route (or review).
    MAX_TRIES: 10,
}
SWEEP_BATCH = 500
EARLY = timedelta(seconds=1)  # a worker's clock may run a little ahead of the database's
SYSTEM = "system"


def setting(name: str) -> Any:
    """A pipeline setting: the app's config, else the environment, else the default."""
    default = SETTINGS[name]
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(name)
    return default if value in (None, "") else type(default)(value)


def backoff(tries: int) -> timedelta:
    """The wait before try `tries + 1`: BACKOFF doubling per try, at most MAX_BACKOFF."""
    seconds = setting(BACKOFF) * 2 ** max(tries - 1, 0)
    return timedelta(seconds=min(seconds, setting(MAX_BACKOFF)))


# --- what a rejection is about ---------------------------------------------------------------


class Rejection(enum.Enum):
    ACTIVE_ORDER = "active_order"  # wait, same provider
    PROVIDER = "provider"  # the provider or its service: the next route may take it
    ORDER = "order"  # the order itself: no provider will take it


ACTIVE_ORDER_WORDS = re.compile(
    r"active order|order (is )?(already )?(in progress|running|pending) (for|with) (this|the) "
    r"(link|url)|wait until (the )?(previous )?order",
    re.IGNORECASE,
)
PROVIDER_WORDS = re.compile(
    r"\b(funds|balance|api ?key|key|maintenance|suspended|banned|blocked|account)\b",
    re.IGNORECASE,
)
ORDER_WORDS = re.compile(
    r"\b(link|url|quantity|minimal|maximal|minimum|maximum|min|max|usernames?|comments?|"
    r"hashtags?|runs|interval|answer|media|keywords?|groups?|posts|delay|expiry|parameter)\b",
    re.IGNORECASE,
)
SERVICE_WORDS = re.compile(r"\bservices?\b", re.IGNORECASE)


def classify_rejection(message: str | None) -> Rejection:
    """What an upstream's `{"error": …}` is about, read conservatively: a fallback only for a
    recognisable provider or service problem (funds, key, an unknown or disabled service);
    anything unrecognised fails the order (refunded) rather than risk sending it elsewhere."""
    text = message or ""
    if ACTIVE_ORDER_WORDS.search(text):
        return Rejection.ACTIVE_ORDER
    if PROVIDER_WORDS.search(text):
        return Rejection.PROVIDER
    if ORDER_WORDS.search(text):
        return Rejection.ORDER
    if SERVICE_WORDS.search(text):
        return Rejection.PROVIDER
    return Rejection.ORDER


# --- routes ----------------------------------------------------------------------------------


def runs_of(order: Order) -> int:
    runs = (order.params or {}).get("runs")
    return int(runs) if runs else 1


def eligible_routes(
    order: Order, service: Service, skipped: set[int] | None = None
) -> list[ProviderService]:
    """The upstream services that may take the order, in the service's priority order: listed,
    provider enabled, the same order type, the (per-run) quantity within their limits, drip-feed
    where the order is one, and not given up on for this order."""
    skipped = set(order.skipped_routes or []) if skipped is None else skipped
    kind = order_type(service.type)
    if kind is None:
        return []
    drip = runs_of(order) > 1
    per_run = order.quantity // runs_of(order)
    found = []
    for route in service.routes:
        upstream = route.provider_service
        if upstream.id in skipped or not upstream.available or not upstream.provider.enabled:
            continue
        if order_type(upstream.type) != kind or (drip and not upstream.dripfeed):
            continue
        if kind.has_quantity and not _takes(upstream, per_run):
            continue
        found.append(upstream)
    return found


def _takes(upstream: ProviderService, quantity: int) -> bool:
    low, high = upstream.min_quantity, upstream.max_quantity
    return (not low or quantity >= low) and (not high or quantity <= high)


def add_fields(order: Order, kind: OrderType) -> dict[str, Any]:
    """The `add` parameters of an order, as its type spells them; a drip-feed sends the
    per-run quantity with its runs and interval."""
    fields: dict[str, Any] = {}
    if "link" in kind.params:
        fields["link"] = order.link
    if kind.has_quantity:
        fields["quantity"] = order.quantity // runs_of(order)
    fields.update(order.params or {})
    return fields


# --- one submission --------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """A claimed attempt, in plain values: what is sent, to whom, and what may be resent."""

    order_id: int
    tenant_id: int
    attempt: int
    provider_id: int
    provider_name: str
    provider_service_id: int
    upstream_service: str
    ref: str
    ref_sent: bool
    resend: bool  # an `unknown` order sent again with the same ref
    fields: dict[str, Any]
    client: ProviderClient

    def send(self) -> Reply:
        # The client's session is this process's for the provider: it stays open for the next.
        return self.client.add(self.upstream_service, ref=self.ref, **self.fields)


@dataclass
class Step:
    """What an outcome does to an order: the values written, and what follows the write."""

    values: dict[str, Any]
    result: str
    refund: bool = False
    audit: tuple[str, dict[str, Any]] | None = None
    enqueue: bool = False


def forward_order(order_id: int) -> str:
    """Send a `pending` order upstream, or settle an `unknown` one; says what happened. Runs
    across tenants (the job) or in the order's tenant."""
    found = _order_and_routes(order_id)
    if found is None:
        db.session.rollback()
        return "no such order"
    order, service = found
    with tenant_scope(order.tenant_id):
        if order.status == PENDING:
            return _forward_pending(order, service)
        if order.status == UNKNOWN:
            return _settle_unknown(order)
    db.session.rollback()
    return f"nothing to do: {order.status}"


def _forward_pending(order: Order, service: Service) -> str:
    now = utcnow()
    if not _due(order):
        db.session.rollback()
        return "not due yet"
    routes = eligible_routes(order, service)
    route = next((r for r in routes if r.id == order.provider_service_id), None)
    route = route or (routes[0] if routes else None)
    if route is None:
        return _commit(order, _fail_step(order, "no provider can take this order"))
    claimed = _claim(order, route, order_type(service.type), resend=False, now=now)
    if claimed is None:
        db.session.rollback()
        return "claimed elsewhere"
    db.session.commit()
    return _submit(*claimed)


def _claim(
    order: Order, route: ProviderService, kind: OrderType, *, resend: bool, now
) -> tuple[Submission, Order] | None:
    """`pending`/`unknown` → `submitting`, if the order is still as read: the submission, and
    the order as the claim left it (detached, so the caller's commit does not expire it). The
    caller commits before sending."""
    provider = route.provider
    values = {
        "status": SUBMITTING,
        "attempts": Order.attempts + 1,
        "provider_id": provider.id,
        "provider_service_id": route.id,
        "submitted_at": now,
        "next_attempt_at": now + timedelta(seconds=setting(DEADLINE)),
        "ref_sent": provider.honours_ref,
        "updated_at": now,
    }
    if route.id != order.provider_service_id:
        values["route_tries"] = 0
    conditions = [
        Order.id == order.id,
        Order.status == order.status,
        Order.attempts == order.attempts,
        or_(Order.next_attempt_at.is_(None), Order.next_attempt_at <= now + EARLY),
        Order.review_at.is_(None),
    ]
    claimed = db.session.execute(
        update(Order)
        .where(*conditions)
        .values(**values)
        .returning(Order)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    submission = Submission(
        order_id=claimed.id,
        tenant_id=claimed.tenant_id,
        attempt=claimed.attempts,
        provider_id=provider.id,
        provider_name=provider.name,
        provider_service_id=route.id,
        upstream_service=route.external_id,
        ref=str(claimed.id),
        ref_sent=provider.honours_ref,
        resend=resend,
        fields=add_fields(claimed, kind),
        client=provider.client(),
    )
    db.session.expunge(claimed)
    return submission, claimed


def _submit(submission: Submission, claimed: Order) -> str:
    """Send the claimed submission and write its outcome. The outcome is first written against
    the order as the claim left it: no one but the sweeper (→ `unknown`) changes a `submitting`
    order, and the write is conditional on status and attempt, so it either finds the order
    exactly so or changes nothing. Only then is the order read again."""
    reply = submission.send()
    # Logged before it is written: should the database fail now, the reply is not lost.
    log.info(
        "order %s attempt %s to %s (service %s): %s %s",
        submission.order_id,
        submission.attempt,
        submission.provider_name,
        submission.upstream_service,
        reply.outcome.value,
        reply.data if reply.ok else reply.error,
    )
    for tried in range(4):
        order = claimed if tried == 0 else _fresh(submission.order_id)
        if (
            order is None
            or order.attempts != submission.attempt
            or order.status not in (SUBMITTING, UNKNOWN)
        ):
            db.session.rollback()
            log.warning(
                "order %s moved on before the reply to attempt %s was written; dropped: %s",
                submission.order_id,
                submission.attempt,
                reply,
            )
            return "superseded"
        with tenant_scope(order.tenant_id):
            result = _commit(order, _outcome(order, submission, reply))
        if result != "superseded":
            return result
    return "superseded"


def _outcome(order: Order, submission: Submission, reply: Reply) -> Step:
    """The step for a reply, exactly as DESIGN.md lists the outcomes."""
    now = utcnow()
    error = (reply.error or "")[:500]
    if reply.outcome is Outcome.SUCCESS:
        return Step(
            {
                "status": IN_PROGRESS,
                "external_id": reply.data,
                "next_attempt_at": None,
                "last_error": None,
                "review_at": None,
            },
            "in_progress",
        )
    if reply.outcome is Outcome.AMBIGUOUS:
        return _unknown_step(order, error, reply.http_status)
    rejection = classify_rejection(error) if reply.outcome is Outcome.REJECTED else None
    if submission.resend and (
        reply.outcome is Outcome.NOT_SENT or rejection is Rejection.ACTIVE_ORDER
    ):
        # The first submission may still be the one that placed it: stay unknown.
        return _unknown_step(order, error, reply.http_status)
    if reply.outcome is Outcome.NOT_SENT:
        tries = order.route_tries + 1
        if tries >= setting(MAX_TRIES):
            return _next_route(order, submission, f"not reachable after {tries} tries: {error}")
        wait = backoff(tries)
        return Step(
            {
                "status": PENDING,
                "route_tries": tries,
                "next_attempt_at": now + wait,
                "last_error": error,
                "review_at": None,
            },
            f"pending: not sent, try {tries + 1} in {wait.total_seconds():g}s",
            enqueue=wait <= EARLY,
        )
    if rejection is Rejection.ACTIVE_ORDER:
        wait = backoff(order.attempts)
        return Step(
            {
                "status": PENDING,
                "next_attempt_at": now + wait,
                "last_error": error,
                "review_at": None,
            },
            f"pending: active order with this link, same provider in {wait.total_seconds():g}s",
            enqueue=wait <= EARLY,
        )
    reason = f"{submission.provider_name} rejected it: {error}"
    if rejection is Rejection.PROVIDER:
        return _next_route(order, submission, reason)
    return _fail_step(order, reason)


def _next_route(order: Order, submission: Submission, reason: str) -> Step:
    skipped = [*(order.skipped_routes or []), submission.provider_service_id]
    service = db.session.get(Service, order.service_id)
    if not eligible_routes(order, service, set(skipped)):
        return _fail_step(order, f"{reason}; no other provider", skipped_routes=skipped)
    return Step(
        {
            "status": PENDING,
            "skipped_routes": skipped,
            "route_tries": 0,
            "next_attempt_at": None,
            "last_error": reason[:500],
            "review_at": None,
        },
        "pending: next route",
        audit=("order.fallback", {"from": submission.provider_name, "reason": reason}),
        enqueue=True,
    )


def _fail_step(order: Order, reason: str, **values: Any) -> Step:
    return Step(
        {
            "status": FAILED,
            "remains": order.quantity,
            "next_attempt_at": None,
            "last_error": reason[:500],
            "review_at": None,
            **values,
        },
        "failed",
        refund=True,
        audit=("order.failed", {"reason": reason, "refund": "full"}),
    )


def _unknown_step(order: Order, seen: str, http_status: int | None = None) -> Step:
    """An ambiguous outcome: resend with the same ref where that is safe, reconcile by the
    upstream id where one is known, else operator review."""
    now = utcnow()
    seen = (seen or "no reply")[:500]
    values: dict[str, Any] = {"status": UNKNOWN, "last_error": seen}
    details = {"attempt": order.attempts, "seen": seen, "http_status": http_status}
    if order.ref_sent:
        tries = order.route_tries + 1
        if tries < setting(MAX_TRIES):
            wait = backoff(tries)
            return Step(
                values | {"route_tries": tries, "next_attempt_at": now + wait},
                f"unknown: resend with the same ref in {wait.total_seconds():g}s",
                audit=("order.unknown", details | {"next": "resend with the same ref"}),
                enqueue=wait <= EARLY,
            )
        reason = f"no definite answer after {tries} submissions with the same ref"
    elif order.external_id:
        return Step(
            values | {"next_attempt_at": now},
            "unknown: reconcile by its upstream id",
            audit=("order.unknown", details | {"next": "reconcile by upstream id"}),
            enqueue=True,
        )
    else:
        reason = "the provider does not honour ref: resending could place the order twice"
    return _review_step(order, values, reason, seen, http_status)


def _review_step(
    order: Order, values: dict[str, Any], reason: str, seen: str, http_status: int | None = None
) -> Step:
    evidence = review_evidence(order, reason=reason, seen=seen, http_status=http_status)
    return Step(
        values | {"next_attempt_at": None, "review_at": utcnow(), "review": evidence},
        "unknown: operator review",
        audit=("order.review", evidence),
    )


def _commit(order: Order, step: Step) -> str:
    """Write `step` if the order is still in the state and attempt it was read in, with its
    refund and audit in the same transaction; commit, then enqueue what comes next."""
    written = db.session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == order.status,
            Order.attempts == order.attempts,
        )
        .values(**step.values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if written != 1:
        db.session.rollback()
        return "superseded"
    if step.refund:
        refund_order(order.id, actor=SYSTEM)
    if step.audit:
        action, details = step.audit
        record_audit(
            action, actor=SYSTEM, tenant_id=order.tenant_id, target=f"order:{order.id}",
            details=details,
        )  # fmt: skip
    order_id, attempts = order.id, order.attempts
    db.session.commit()
    log.info("order %s: %s", order_id, step.result)
    if step.enqueue:
        _enqueue_quietly([(order_id, attempts)])
    return step.result


# --- unknown orders --------------------------------------------------------------------------


def _settle_unknown(order: Order) -> str:
    if order.review_at is not None:
        db.session.rollback()
        return "waiting for review"
    if not _due(order):
        db.session.rollback()
        return "not due yet"
    route = (
        db.session.get(ProviderService, order.provider_service_id)
        if order.provider_service_id
        else None
    )
    provider = route.provider if route else None
    if order.ref_sent:
        if provider is None or not (provider.honours_ref and provider.enabled):
            why = (
                "the provider no longer honours ref, or is disabled: resending could place "
                "the order twice"
            )
            return _commit(order, _review_step(order, {}, why, order.last_error or ""))
        service = db.session.get(Service, order.service_id)
        claimed = _claim(order, route, order_type(service.type), resend=True, now=utcnow())
        if claimed is None:
            db.session.rollback()
            return "claimed elsewhere"
        db.session.commit()
        return _submit(*claimed)
    if order.external_id and provider is not None:
        return _reconcile(order, provider)
    reason = "the provider does not honour ref: resending could place the order twice"
    return _commit(order, _review_step(order, {}, reason, order.last_error or ""))


def _reconcile(order: Order, provider: Provider) -> str:
    """Ask the upstream about the order id it gave: if it has the order, the order goes on."""
    client, external_id, attempts = provider.client(), order.external_id, order.attempts
    db.session.rollback()  # no transaction held across the HTTP call
    reply = client.status(external_id)
    order = _fresh(order.id)
    if order is None or order.status != UNKNOWN or order.attempts != attempts:
        db.session.rollback()
        return "superseded"
    with tenant_scope(order.tenant_id):
        if reply.ok:
            step = Step(
                {"status": IN_PROGRESS, "next_attempt_at": None, "last_error": None},
                "in_progress: reconciled",
                audit=("order.reconciled", {"external_id": external_id}),
            )
        elif reply.outcome is Outcome.REJECTED:
            reason = f"the upstream does not know order {external_id}"
            step = _review_step(order, {}, reason, reply.error or "")
        else:
            tries = order.route_tries + 1
            if tries >= setting(MAX_TRIES):
                reason = f"status of {external_id} unreadable after {tries} tries"
                step = _review_step(order, {}, reason, reply.error or "")
            else:
                step = Step(
                    {"route_tries": tries, "next_attempt_at": utcnow() + backoff(tries)},
                    "unknown: reconcile later",
                )
        return _commit(order, step)


# --- the sweeper -----------------------------------------------------------------------------


@dataclass
class SweepReport:
    enqueued: int = 0  # due pending/unknown orders whose job was missing or stale
    unknown: int = 0  # submitting orders past their deadline
    review: int = 0  # of those, sent to operator review
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"forward jobs enqueued: {self.enqueued}; stuck submissions moved to unknown: "
            f"{self.unknown} ({self.review} to operator review)"
        )


def sweep_orders() -> SweepReport:
    """Move `submitting` orders past their deadline to `unknown` (handled as any ambiguous
    outcome), then make sure every due `pending` or `unknown` order has its forward job.
    Safe to run anywhere, any number of times at once: every change is a conditional UPDATE
    and every job id is unique. Runs across tenants."""
    from workers.order_jobs import ensure_forward_jobs

    report = SweepReport()
    now = utcnow()
    stuck = db.session.scalars(
        select(Order.id)
        .where(Order.status == SUBMITTING, Order.next_attempt_at <= now)
        .order_by(Order.next_attempt_at, Order.id)
        .limit(SWEEP_BATCH)
    ).all()
    deadline = setting(DEADLINE)
    for order_id in stuck:
        order = _fresh(order_id)
        if order is None or order.status != SUBMITTING:
            continue
        with tenant_scope(order.tenant_id):
            seen = f"no outcome within {deadline:g}s of the submission: the worker stopped"
            step = _unknown_step(order, seen)
            result = _commit(order, step)
        if result != "superseded":
            report.unknown += 1
            report.review += "review" in result
    db.session.rollback()

    due = or_(
        and_(
            Order.status == PENDING,
            or_(Order.next_attempt_at.is_(None), Order.next_attempt_at <= now + EARLY),
        ),
        and_(
            Order.status == UNKNOWN,
            Order.review_at.is_(None),
            or_(Order.next_attempt_at.is_(None), Order.next_attempt_at <= now + EARLY),
        ),
    )
    last_id = 0
    while True:
        rows = db.session.execute(
            select(Order.id, Order.attempts)
            .where(due, Order.id > last_id)
            .order_by(Order.id)
            .limit(SWEEP_BATCH)
        ).all()
        db.session.rollback()  # no transaction held while talking to Redis
        if not rows:
            break
        try:
            report.enqueued += ensure_forward_jobs([(row.id, row.attempts) for row in rows])
        except redis.RedisError as error:
            report.errors.append(f"could not enqueue: {error}")
            log.error("sweep: could not enqueue forward jobs: %s", error)
            break
        last_id = rows[-1].id
    if report.enqueued or report.unknown:
        log.info("sweep: %s", report.summary())
    return report


# --- enqueueing ------------------------------------------------------------------------------


def enqueue_forwarding(order_ids: list[int]) -> None:
    """After the commit that made these orders `pending`, enqueue their forward jobs; never
    raises. They are placed or resumed orders, never claimed, so their jobs are keyed at
    attempt 0. (An order an operator sends again after review has more attempts: its old
    attempt-0 job has ended, so it is replaced; the sweeper, which reads the attempts, covers
    any other case.)"""
    _enqueue_quietly([(order_id, 0) for order_id in order_ids])


def _enqueue_quietly(pairs: list[tuple[int, int]]) -> None:
    """Enqueue forward jobs; on any failure leave the rest to the sweeper. The orders are
    committed already, so a failure here must not reach the caller (a customer's request)."""
    from workers.order_jobs import enqueue_forward

    for done, (order_id, attempts) in enumerate(pairs):
        try:
            enqueue_forward(order_id, attempts)
        except Exception as error:  # Redis down, or anything else: the sweeper will see to it
            left = [pair[0] for pair in pairs[done:]]
            log.warning("orders %s stay pending for the sweeper: enqueue failed: %s", left, error)
            return  # one failure says Redis is unwell: do not wait on it once per order


# --- helpers ---------------------------------------------------------------------------------


def _order_and_routes(order_id: int) -> tuple[Order, Service] | None:
    """The order as the database has it now, with its service, the service's routes, their
    upstream services and providers: one statement where lazy loads would take one per
    object."""
    return (
        db.session.execute(
            select(Order, Service)
            .join(Service, Service.id == Order.service_id)
            .where(Order.id == order_id)
            .options(
                joinedload(Service.routes)
                .joinedload(ServiceRoute.provider_service)
                .joinedload(ProviderService.provider)
            )
            .execution_options(populate_existing=True)
        )
        .unique()
        .one_or_none()
    )


def _fresh(order_id: int) -> Order | None:
    """The order as the database has it now (not as this session last saw it)."""
    return db.session.execute(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _due(order: Order) -> bool:
    return order.next_attempt_at is None or order.next_attempt_at <= utcnow() + EARLY
