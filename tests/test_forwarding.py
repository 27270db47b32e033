"""Forwarding orders upstream exactly once, against the sandbox provider: the claim, every
outcome, unknown orders and operator review, the sweeper, and the outbox on real Redis with
real worker processes (a worker SIGKILLed mid-submit, Redis restarted mid-run)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from rq.job import JobStatus
from sqlalchemy import event, func, select, update

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.catalog.models import PUBLISHED, Category, Service, ServiceRoute
from app.config import PROJECT_ROOT
from app.extensions import db
from app.ledger import JournalEntry, balance, verify_ledger, wallet_of, wholesale_wallet_of
from app.orders import forwarding
from app.orders.forwarding import Rejection, classify_rejection
from app.orders.models import Order
from app.orders.review import NotInReview, mark_delivered, refund_reviewed, resend_reviewed
from app.orders.services import OrderNotCancelable, cancel_unsent_order, place_order
from app.panels.models import Tenant
from app.providers.models import Provider, ProviderService
from app.types import utcnow
from tenants.context import across_tenants
from tests.conftest import TEST_DATABASE_URL, empty_database, service_missing
from tests.test_workers import PASOK, free_port, killed_on_failure, stop
from workers.order_jobs import enqueue_forward, forward_job_id
from workers.queues import FORWARD, get_queue

D = Decimal
LINK = "https://instagram.com/p/forwarding"
FUNDS = D("100.00")
# Sandbox service 1: Default, 10..50000, drip-feed; service 5: Default, 100..10000, no drip-feed.
DRIP = "1"
NO_DRIP = "5"


# --- the shop --------------------------------------------------------------------------------


@pytest.fixture
def app(make_app):
    """Retries due at once and three tries per route, so a test can walk every step."""
    app = make_app(PASOK_FORWARD_BACKOFF_SECONDS=0, PASOK_FORWARD_MAX_TRIES=3)
    empty_database(app)
    return app


@dataclass
class Route:
    provider: str
    url: str
    upstream: str = DRIP
    honours_ref: bool = True
    timeout: float = 5.0
    dripfeed: bool = True
    min_quantity: int = 10


@dataclass
class Shop:
    """acme (USD) with alice (100.00) and a wholesale wallet of 100.00, selling one service
    whose routes are given in priority order."""

    app: object
    tenant_id: int
    customer_id: int
    service_id: int
    providers: dict[str, int] = field(default_factory=dict)

    def place(self, **fields) -> int:
        with self.app.app_context(), across_tenants():
            placed = place_order(
                tenant_id=self.tenant_id,
                customer_id=self.customer_id,
                service_id=self.service_id,
                fields=fields or {"link": LINK, "quantity": "100"},
                actor="test",
            )
            db.session.commit()
            return placed.order.id

    def forward(self, order_id: int) -> str:
        with self.app.app_context(), across_tenants():
            return forwarding.forward_order(order_id)

    def sweep(self) -> forwarding.SweepReport:
        with self.app.app_context(), across_tenants():
            return forwarding.sweep_orders()

    def order(self, order_id: int) -> Order:
        with self.app.app_context(), across_tenants():
            order = db.session.get(Order, order_id)
            db.session.expunge(order)
            return order

    def set(self, order_id: int, **values) -> None:
        with self.app.app_context(), across_tenants():
            db.session.execute(update(Order).where(Order.id == order_id).values(**values))
            db.session.commit()

    def wallets(self) -> tuple[Decimal, Decimal]:
        with self.app.app_context(), across_tenants():
            customer = db.session.get(User, self.customer_id)
            tenant = db.session.get(Tenant, self.tenant_id)
            return balance(wallet_of(customer)), balance(wholesale_wallet_of(tenant))

    def refunds(self, order_id: int) -> int:
        with self.app.app_context(), across_tenants():
            return db.session.scalar(
                select(func.count(JournalEntry.id)).where(
                    JournalEntry.idempotency_key == f"refund-{order_id}"
                )
            )

    def audits(self, action: str) -> list[AuditEntry]:
        with self.app.app_context(), across_tenants():
            return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()

    def assert_ledger_clean(self) -> None:
        with self.app.app_context(), across_tenants():
            report = verify_ledger()
            assert report.ok, report


def build_shop(app, make, *routes: Route) -> Shop:
    from app.ledger import adjust_customer, topup_tenant

    tenant_id = make.tenant("acme")
    customer_id = make.customer(tenant_id, "alice@example.com")
    with app.app_context(), across_tenants():
        service = Service(
            category=Category(name="Instagram", position=1), name="Likes", type="Default",
            min_quantity=10, max_quantity=50_000, dripfeed=True, status=PUBLISHED,
        )  # fmt: skip
        providers: dict[str, Provider] = {}
        for priority, route in enumerate(routes, start=1):
            provider = providers.get(route.provider) or Provider(
                name=route.provider, api_url=route.url, api_key="sandbox-key",
                honours_ref=route.honours_ref, timeout_seconds=route.timeout,
            )  # fmt: skip
            providers[route.provider] = provider
            upstream = ProviderService(
                provider=provider, external_id=route.upstream, name="likes", category="x",
                type="Default", rate=D("1.00"), min_quantity=route.min_quantity,
                max_quantity=50_000, dripfeed=route.dripfeed,
            )  # fmt: skip
            route_row = ServiceRoute(service=service, provider_service=upstream, priority=priority)
            db.session.add(route_row)
        db.session.add(service)
        db.session.flush()
        adjust_customer(db.session.get(User, customer_id), FUNDS, "opening credit", "test")
        topup_tenant(db.session.get(Tenant, tenant_id), FUNDS, "opening", "test")
        db.session.commit()
        ids = {name: provider.id for name, provider in providers.items()}
        return Shop(app, tenant_id, customer_id, service.id, ids)


@pytest.fixture
def shop(app, make, sandbox) -> Shop:
    """One ref-honouring provider, the sandbox."""
    return build_shop(app, make, Route("sandbox", sandbox.url))


def upstream_orders(sandbox, order_id: int) -> list[dict]:
    """The sandbox's orders that carry this order's ref."""
    return sandbox.orders(ref=str(order_id))


# --- the happy path --------------------------------------------------------------------------


def test_an_order_is_sent_once_and_goes_in_progress_with_its_upstream_id(shop, sandbox):
    order_id = shop.place()
    assert shop.forward(order_id) == "in_progress"
    [upstream] = upstream_orders(sandbox, order_id)
    order = shop.order(order_id)
    assert (order.status, order.external_id, order.attempts) == (
        "in_progress",
        str(upstream["id"]),
        1,
    )
    assert (upstream["link"], upstream["quantity"]) == (LINK, 100)
    assert shop.forward(order_id) == "nothing to do: in_progress"
    assert len(sandbox.orders()) == 1


def test_a_forward_reads_the_order_once_and_writes_it_twice(shop, sandbox):
    """The order with its service, routes and providers in one statement, then the claim and
    the outcome: no lazy loads, no second read."""
    order_id = shop.place()
    statements = []

    def note(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split(None, 1)[0].upper())

    with shop.app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        assert shop.forward(order_id) == "in_progress"
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert statements == ["SELECT", "UPDATE", "UPDATE"]


def test_a_drip_feed_order_goes_as_runs_and_interval_to_a_route_that_takes_drip_feed(
    app, make, sandbox
):
    shop = build_shop(
        app,
        make,
        Route("plain", sandbox.url, upstream=NO_DRIP, dripfeed=False, min_quantity=100),
        Route("drip", sandbox.url, upstream=DRIP),
    )
    order_id = shop.place(link=LINK, quantity="100", runs="3", interval="15")
    assert shop.forward(order_id) == "in_progress"
    [upstream] = sandbox.orders()
    assert (upstream["service"], upstream["quantity"]) == (1, 300)  # 100 per run, 3 runs
    assert shop.order(order_id).provider_id == shop.providers["drip"]


def test_a_drip_feed_order_no_route_can_take_fails_and_is_refunded(app, make, sandbox):
    shop = build_shop(app, make, Route("plain", sandbox.url, upstream=NO_DRIP, dripfeed=False))
    order_id = shop.place(link=LINK, quantity="100", runs="2", interval="15")
    assert shop.forward(order_id) == "failed"
    assert sandbox.orders() == []
    assert shop.wallets() == (FUNDS, FUNDS)
    shop.assert_ledger_clean()


# --- ambiguous outcomes ----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["5xx", "html"])
def test_a_5xx_or_html_reply_from_a_provider_without_ref_goes_to_review_and_is_never_resent(
    app, make, sandbox, fault
):
    shop = build_shop(app, make, Route("no-ref", sandbox.url, honours_ref=False))
    sandbox.admin("settings", {"faults": {fault: 1.0}})
    order_id = shop.place()
    assert shop.forward(order_id) == "unknown: operator review"
    sandbox.admin("settings", {"faults": {}})
    for _ in range(3):
        assert shop.forward(order_id) == "waiting for review"
    assert shop.sweep().enqueued == 0  # the sweeper leaves it alone too
    order = shop.order(order_id)
    assert (order.status, order.attempts) == ("unknown", 1)
    assert order.review["reason"].startswith("the provider does not honour ref")
    assert order.review["link"] == LINK and order.review["quantity"] == 100
    assert "HTTP" in order.review["seen"] or "unreadable" in order.review["seen"]
    assert order.api_status == "In progress"
    assert sandbox.orders() == []


@pytest.mark.parametrize("fault", ["5xx", "html"])
def test_a_5xx_or_html_reply_from_a_ref_provider_is_resent_with_the_same_ref(shop, sandbox, fault):
    sandbox.admin("settings", {"faults": {fault: 1.0}})
    order_id = shop.place()
    assert shop.forward(order_id).startswith("unknown: resend with the same ref")
    sandbox.admin("settings", {"faults": {}})
    assert shop.forward(order_id) == "in_progress"
    assert len(upstream_orders(sandbox, order_id)) == 1
    assert shop.order(order_id).attempts == 2


def test_a_timeout_after_accepting_is_resent_with_the_same_ref_and_placed_once(
    app, make, real_time_sandbox
):
    sandbox = real_time_sandbox
    shop = build_shop(app, make, Route("sandbox", sandbox.url, timeout=0.5))
    sandbox.admin("settings", {"faults": {"timeout": 1.0}})
    order_id = shop.place()
    assert shop.forward(order_id).startswith("unknown: resend with the same ref")
    assert shop.order(order_id).status == "unknown"
    [placed] = upstream_orders(sandbox, order_id)  # the provider did accept it
    sandbox.admin("settings", {"faults": {}})
    assert shop.forward(order_id) == "in_progress"
    assert upstream_orders(sandbox, order_id) == [placed]
    assert shop.order(order_id).external_id == str(placed["id"])
    assert [a.details["next"] for a in shop.audits("order.unknown")] == ["resend with the same ref"]


def test_a_timeout_after_accepting_without_ref_waits_in_review_with_its_evidence(
    app, make, real_time_sandbox
):
    sandbox = real_time_sandbox
    sandbox.admin("settings", {"honour_ref": False, "faults": {"timeout": 1.0}})
    shop = build_shop(app, make, Route("no-ref", sandbox.url, honours_ref=False, timeout=0.5))
    order_id = shop.place()
    assert shop.forward(order_id) == "unknown: operator review"
    sandbox.admin("settings", {"faults": {}})
    assert shop.forward(order_id) == "waiting for review"
    assert len(sandbox.orders(link=LINK)) == 1  # placed once, and never again
    review = shop.order(order_id).review
    assert review["provider"] == "no-ref" and review["upstream_service"] == DRIP
    assert review["ref_sent"] is False and review["attempt"] == 1
    assert "timed out" in review["seen"].lower()
    assert review["at"] and review["submitted_at"]
    [audited] = shop.audits("order.review")
    assert audited.target == f"order:{order_id}"


def test_resends_with_the_same_ref_stop_at_the_cap_and_wait_for_review(shop, sandbox):
    sandbox.admin("settings", {"faults": {"5xx": 1.0}})
    order_id = shop.place()
    results = [shop.forward(order_id) for _ in range(3)]
    assert results[-1] == "unknown: operator review"
    assert shop.order(order_id).review["reason"].startswith("no definite answer after 3")
    assert shop.forward(order_id) == "waiting for review"


def test_an_unknown_order_with_an_upstream_id_is_reconciled_by_its_status(app, make, sandbox):
    shop = build_shop(app, make, Route("no-ref", sandbox.url, honours_ref=False))
    order_id = shop.place()
    shop.forward(order_id)
    shop.set(order_id, status="unknown", next_attempt_at=None)
    assert shop.forward(order_id) == "in_progress: reconciled"
    assert len(sandbox.orders()) == 1


# --- definite outcomes -----------------------------------------------------------------------


def test_an_unreachable_provider_is_retried_with_backoff_then_the_next_route(app, make, sandbox):
    closed = f"http://127.0.0.1:{free_port()}/api/v2"
    shop = build_shop(app, make, Route("down", closed), Route("backup", sandbox.url))
    order_id = shop.place()
    assert shop.forward(order_id) == "pending: not sent, try 2 in 0s"
    assert shop.forward(order_id) == "pending: not sent, try 3 in 0s"
    order = shop.order(order_id)
    assert (order.status, order.route_tries, order.provider_id) == (
        "pending",
        2,
        shop.providers["down"],
    )
    assert "NewConnectionError" in order.last_error or "refused" in order.last_error.lower()
    assert shop.forward(order_id) == "pending: next route"
    assert shop.forward(order_id) == "in_progress"
    order = shop.order(order_id)
    assert (order.provider_id, order.attempts) == (shop.providers["backup"], 4)
    assert len(upstream_orders(sandbox, order_id)) == 1


def test_pre_send_retries_back_off_to_about_an_hour_over_ten_tries(make_app):
    app = make_app()
    with app.app_context():
        # The waits between the tries one route gets by default.
        tries = forwarding.setting(forwarding.MAX_TRIES)
        waits = [forwarding.backoff(t).total_seconds() for t in range(1, tries)]
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600, 600]
    assert 50 * 60 <= sum(waits) <= 70 * 60


def test_a_retry_is_not_sent_before_it_is_due(app, make, sandbox):
    shop = build_shop(app, make, Route("sandbox", sandbox.url))
    order_id = shop.place()
    shop.set(order_id, next_attempt_at=utcnow() + timedelta(minutes=5))
    assert shop.forward(order_id) == "not due yet"
    assert sandbox.orders() == []


def test_a_provider_that_rejects_the_service_falls_back_to_the_next_route(app, make, sandbox):
    shop = build_shop(
        app, make, Route("first", sandbox.url, upstream="9999"), Route("second", sandbox.url)
    )
    order_id = shop.place()
    assert shop.forward(order_id) == "pending: next route"
    assert shop.order(order_id).skipped_routes != []
    assert shop.forward(order_id) == "in_progress"
    assert shop.order(order_id).provider_id == shop.providers["second"]
    assert len(upstream_orders(sandbox, order_id)) == 1
    [fallback] = shop.audits("order.fallback")
    assert "Incorrect service ID" in fallback.details["reason"]


def test_a_service_rejection_with_no_other_route_fails_and_refunds_once(app, make, sandbox):
    shop = build_shop(app, make, Route("only", sandbox.url, upstream="9999"))
    order_id = shop.place()
    assert shop.wallets() != (FUNDS, FUNDS)
    assert shop.forward(order_id) == "failed"
    assert shop.forward(order_id) == "nothing to do: failed"
    order = shop.order(order_id)
    assert (order.status, order.api_status, order.remains) == ("failed", "Canceled", 100)
    assert "no other provider" in order.last_error
    assert shop.wallets() == (FUNDS, FUNDS)
    assert shop.refunds(order_id) == 1
    shop.assert_ledger_clean()


def test_an_order_the_provider_rejects_fails_and_is_refunded_once(app, make, sandbox):
    # Our record of the upstream's minimum is stale: it now asks for at least 10.
    shop = build_shop(
        app, make, Route("first", sandbox.url, min_quantity=1), Route("second", sandbox.url)
    )
    with app.app_context(), across_tenants():
        db.session.execute(update(Service).values(min_quantity=1))
        db.session.commit()
    order_id = shop.place(link=LINK, quantity="5")
    assert shop.forward(order_id) == "failed"  # never the fallback: no provider would take it
    assert "less than minimal" in shop.order(order_id).last_error
    assert sandbox.orders() == []
    assert shop.wallets() == (FUNDS, FUNDS)
    assert shop.refunds(order_id) == 1
    [failed] = shop.audits("order.failed")
    assert failed.details["refund"] == "full"
    shop.assert_ledger_clean()


def test_an_active_order_with_the_link_waits_for_the_same_provider(app, make, sandbox):
    shop = build_shop(app, make, Route("first", sandbox.url), Route("second", sandbox.url))
    sandbox.admin("settings", {"faults": {"active_order": 1.0}})
    order_id = shop.place()
    assert shop.forward(order_id).startswith("pending: active order with this link")
    order = shop.order(order_id)
    assert (order.status, order.skipped_routes) == ("pending", None)
    sandbox.admin("settings", {"faults": {}})
    assert shop.forward(order_id) == "in_progress"
    assert shop.order(order_id).provider_id == shop.providers["first"]


@pytest.mark.parametrize(
    ("message", "rejection"),
    [
        ("You have active order with this link. Please wait until order being completed.",
         Rejection.ACTIVE_ORDER),
        ("Incorrect service ID", Rejection.PROVIDER),
        ("Service disabled", Rejection.PROVIDER),
        ("Not enough funds on balance", Rejection.PROVIDER),
        ("Invalid API key", Rejection.PROVIDER),
        ("Drip-feed is not available for this service", Rejection.PROVIDER),
        ("Incorrect link", Rejection.ORDER),
        ("Quantity less than minimal 10", Rejection.ORDER),
        ("Quantity more than maximal for this service", Rejection.ORDER),
        ("Missing parameter: comments", Rejection.ORDER),
        ("Something odd happened", Rejection.ORDER),
        ("", Rejection.ORDER),
    ],
)  # fmt: skip
def test_rejections_are_read_conservatively(message, rejection):
    assert classify_rejection(message) is rejection


# --- claims ----------------------------------------------------------------------------------


def test_a_canceled_order_is_not_sent(shop, sandbox):
    order_id = shop.place()
    with shop.app.app_context(), across_tenants():
        cancel_unsent_order(order_id, shop.customer_id, actor="test")
        db.session.commit()
    assert shop.forward(order_id) == "nothing to do: canceled"
    assert sandbox.orders() == []


def test_a_claimed_order_cannot_be_canceled(shop, sandbox):
    order_id = shop.place()
    shop.forward(order_id)
    with shop.app.app_context(), across_tenants(), pytest.raises(OrderNotCancelable):
        cancel_unsent_order(order_id, shop.customer_id, actor="test")


@pytest.fixture
def postgres_app(make_app):
    if not TEST_DATABASE_URL:
        service_missing("PASOK_TEST_DATABASE_URL is not set")
    app = make_app(PASOK_FORWARD_BACKOFF_SECONDS=0)
    empty_database(app)
    return app


def test_a_cancel_racing_a_claim_lets_exactly_one_win(postgres_app, make, sandbox):
    shop = build_shop(postgres_app, make, Route("sandbox", sandbox.url))
    wins = {"canceled": 0, "sent": 0}
    jitter = random.Random(5)
    for _ in range(25):
        order_id = shop.place()
        # The forwarder reads more before its claim; a little jitter lets either arrive first.
        delay = jitter.uniform(0, 0.03)
        start = threading.Barrier(2)
        outcome: dict[str, object] = {}

        def cancel(order_id=order_id, start=start, outcome=outcome, delay=delay) -> None:
            with shop.app.app_context(), across_tenants():
                start.wait(timeout=10)
                time.sleep(delay)
                try:
                    cancel_unsent_order(order_id, shop.customer_id, actor="test")
                    db.session.commit()
                    outcome["cancel"] = True
                except OrderNotCancelable:
                    db.session.rollback()
                    outcome["cancel"] = False

        def claim(order_id=order_id, start=start, outcome=outcome) -> None:
            with shop.app.app_context(), across_tenants():
                start.wait(timeout=10)
                outcome["forward"] = forwarding.forward_order(order_id)

        threads = [threading.Thread(target=cancel), threading.Thread(target=claim)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        upstream = upstream_orders(sandbox, order_id)
        status = shop.order(order_id).status
        if outcome["cancel"]:
            assert (status, upstream, shop.refunds(order_id)) == ("canceled", [], 1)
            assert outcome["forward"] in ("claimed elsewhere", "nothing to do: canceled")
            wins["canceled"] += 1
        else:
            assert (status, len(upstream), shop.refunds(order_id)) == ("in_progress", 1, 0)
            assert outcome["forward"] == "in_progress"
            wins["sent"] += 1
    assert sum(wins.values()) == 25
    shop.assert_ledger_clean()


# --- the sweeper -----------------------------------------------------------------------------


def claimed_and_abandoned(shop: Shop, order_id: int, *, ref_sent: bool) -> None:
    """The state a worker leaves when it dies after the claim, before any reply."""
    now = utcnow()
    shop.set(
        order_id,
        status="submitting",
        attempts=1,
        provider_id=next(iter(shop.providers.values())),
        ref_sent=ref_sent,
        submitted_at=now - timedelta(minutes=3),
        next_attempt_at=now - timedelta(minutes=1),
    )
    with shop.app.app_context(), across_tenants():
        route = db.session.scalar(select(ServiceRoute.provider_service_id))
    shop.set(order_id, provider_service_id=route)


def test_the_sweeper_moves_a_stuck_submission_to_unknown_and_a_ref_resend_places_it_once(
    shop, sandbox
):
    order_id = shop.place()
    claimed_and_abandoned(shop, order_id, ref_sent=True)
    report = shop.sweep()
    assert (report.unknown, report.review) == (1, 0)
    assert shop.order(order_id).status == "unknown"
    assert shop.forward(order_id) == "in_progress"
    assert len(upstream_orders(sandbox, order_id)) == 1


def test_the_sweeper_sends_a_stuck_submission_without_ref_to_review(app, make, sandbox):
    shop = build_shop(app, make, Route("no-ref", sandbox.url, honours_ref=False))
    order_id = shop.place()
    claimed_and_abandoned(shop, order_id, ref_sent=False)
    first = shop.sweep()
    assert (first.unknown, first.review) == (1, 1)
    assert shop.sweep().unknown == 0
    order = shop.order(order_id)
    assert (order.status, order.review_at is not None) == ("unknown", True)
    assert "the worker stopped" in order.review["seen"]
    assert shop.forward(order_id) == "waiting for review"
    assert sandbox.orders() == []


def test_a_reply_that_comes_after_the_sweeper_gave_up_on_its_worker_is_still_written(
    shop, sandbox, monkeypatch
):
    """The sweeper moved the submission to unknown while its reply was on the way: the reply
    is written against the order as it is now (the same attempt), not dropped."""
    order_id = shop.place()
    send = forwarding.Submission.send

    def send_late(submission):
        reply = send(submission)
        shop.set(order_id, status="unknown", last_error="no outcome: the worker stopped")
        return reply

    monkeypatch.setattr(forwarding.Submission, "send", send_late)
    assert shop.forward(order_id) == "in_progress"
    order = shop.order(order_id)
    [upstream] = upstream_orders(sandbox, order_id)
    assert (order.status, order.attempts, order.external_id) == (
        "in_progress",
        1,
        str(upstream["id"]),
    )


def test_a_submission_within_its_deadline_is_left_alone(shop):
    order_id = shop.place()
    claimed_and_abandoned(shop, order_id, ref_sent=True)
    shop.set(order_id, next_attempt_at=utcnow() + timedelta(minutes=1))
    assert shop.sweep().unknown == 0
    assert shop.order(order_id).status == "submitting"


def test_the_sweep_command_reports_what_it_did(app, shop):
    result = app.test_cli_runner().invoke(args=["orders", "sweep"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Swept: ")


def test_the_cron_schedule_sweeps_every_minute_on_the_forward_queue():
    import fakeredis
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=fakeredis.FakeRedis())
    scheduler.load_config_from_file(str(PROJECT_ROOT / "workers" / "schedule.py"))
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert (jobs["orders.sweep"].queue_name, jobs["orders.sweep"].interval) == (FORWARD, 60)


# --- operator review -------------------------------------------------------------------------


@pytest.fixture
def reviewed(app, make, sandbox):
    """A shop whose provider ignores ref, and a way to put an order in review."""
    shop = build_shop(app, make, Route("no-ref", sandbox.url, honours_ref=False))

    def in_review() -> int:
        sandbox.admin("settings", {"faults": {"5xx": 1.0}})
        order_id = shop.place()
        assert shop.forward(order_id) == "unknown: operator review"
        sandbox.admin("settings", {"faults": {}})
        return order_id

    return shop, in_review


def test_an_operator_marks_a_reviewed_order_delivered(reviewed):
    shop, in_review = reviewed
    order_id = in_review()
    with shop.app.app_context(), across_tenants():
        mark_delivered(order_id, "777", actor="operator")
        db.session.commit()
    order = shop.order(order_id)
    assert (order.status, order.external_id, order.review_at) == ("in_progress", "777", None)
    assert shop.audits("order.review.delivered")[0].details["external_id"] == "777"


def test_an_operator_refunds_a_reviewed_order_once(reviewed):
    shop, in_review = reviewed
    order_id = in_review()
    with shop.app.app_context(), across_tenants():
        refund_reviewed(order_id, actor="operator")
        db.session.commit()
        with pytest.raises(NotInReview):
            refund_reviewed(order_id, actor="operator")
    assert shop.order(order_id).status == "canceled"
    assert shop.wallets() == (FUNDS, FUNDS) and shop.refunds(order_id) == 1
    shop.assert_ledger_clean()


def test_only_an_operators_word_sends_a_reviewed_order_again(reviewed, sandbox):
    shop, in_review = reviewed
    order_id = in_review()
    assert shop.forward(order_id) == "waiting for review"
    with shop.app.app_context(), across_tenants():
        resend_reviewed(order_id, actor="operator")
        db.session.commit()
    assert shop.forward(order_id) == "in_progress"
    assert len(sandbox.orders()) == 1


# --- the outbox ------------------------------------------------------------------------------


def test_an_order_placed_while_redis_is_down_stays_pending_and_the_request_succeeds(
    make_app, make, sandbox, caplog
):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # the database: `make`'s
    shop = build_shop(app, make, Route("sandbox", sandbox.url))
    order_id = shop.place()
    assert shop.order(order_id).status == "pending"
    assert "stay pending for the sweeper" in caplog.text


def test_a_placed_order_gets_one_job_keyed_by_order_and_attempt(real_redis, shop):
    order_id = shop.place()
    with shop.app.app_context():
        queue = get_queue(FORWARD)
        assert queue.job_ids == [forward_job_id(order_id, 0)]
        assert enqueue_forward(order_id, 0) is False  # one is waiting already
        assert shop.sweep().enqueued == 0
        assert queue.job_ids == [f"forward-{order_id}-0"]


def test_a_job_that_ended_without_claiming_its_order_is_replaced(real_redis, shop):
    order_id = shop.place()
    with shop.app.app_context():
        queue = get_queue(FORWARD)
        job = queue.fetch_job(forward_job_id(order_id, 0))
        queue.remove(job)
        job.set_status(JobStatus.FINISHED)  # it ran while the order was not due, say
        assert shop.sweep().enqueued == 1
        assert queue.job_ids == [forward_job_id(order_id, 0)]
        assert queue.fetch_job(job.id).get_status() == JobStatus.QUEUED


# --- real workers ----------------------------------------------------------------------------


@pytest.fixture
def worker_env(worker_env):
    """Short submission deadlines, so a killed worker's order is found stuck quickly."""
    return {**worker_env, "PASOK_SUBMIT_DEADLINE_SECONDS": "1"}


def start_worker(env: dict) -> subprocess.Popen:
    """A long-running `pasok worker forward` in a process group of its own (with the
    scheduler process RQ forks), so a test can kill it whole, as a dying machine would."""
    return subprocess.Popen(
        [*PASOK, "worker", FORWARD],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def wait_for(condition, process: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            if process is not None:
                os.killpg(process.pid, signal.SIGKILL)
                pytest.fail(f"not within {timeout}s: {process.communicate()[0]}")
            pytest.fail(f"not within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def worker(worker_env) -> Iterator[callable]:
    """`worker()` starts one; whatever is still running at the end is stopped."""
    started: list[subprocess.Popen] = []

    def start(env: dict | None = None) -> subprocess.Popen:
        started.append(start_worker(env or worker_env))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)


def status_of(shop: Shop, order_id: int) -> str:
    return shop.order(order_id).status


def test_a_worker_forwards_placed_orders_once_each(worker, shop, sandbox):
    process = worker()
    with killed_on_failure(process):
        order_ids = [shop.place() for _ in range(3)]
        wait_for(lambda: all(status_of(shop, o) == "in_progress" for o in order_ids), process)
    stop(process)
    for order_id in order_ids:
        [upstream] = upstream_orders(sandbox, order_id)
        assert shop.order(order_id).external_id == str(upstream["id"])
    shop.assert_ledger_clean()


@pytest.mark.parametrize("honours_ref", [True, False], ids=["ref", "no-ref"])
def test_a_worker_killed_mid_submit(worker, app, make, real_time_sandbox, honours_ref):
    """SIGKILL lands while the `add` is in flight (the sandbox takes 2 s to answer); after the
    deadline the sweeper marks the order unknown. With ref it is resent and placed once; without,
    it waits for review and is never resent."""
    sandbox = real_time_sandbox
    sandbox.admin("settings", {"latency_ms": 2000, "honour_ref": honours_ref})
    shop = build_shop(app, make, Route("sandbox", sandbox.url, honours_ref=honours_ref))
    arrived = threading.Event()
    hold = sandbox.clock.wait  # the sandbox holds each reply for its latency on its clock

    def note_arrival(seconds: float) -> None:
        arrived.set()
        hold(seconds)

    sandbox.clock.wait = note_arrival
    process = worker()
    order_id = shop.place()
    wait_for(arrived.is_set, process)  # the `add` is in the sandbox's hands
    assert status_of(shop, order_id) == "submitting"
    kill_group(process)
    wait_for(lambda: len(sandbox.orders(link=LINK)) == 1, timeout=10)  # it reached upstream
    sandbox.admin("settings", {"latency_ms": 0})
    report = shop.sweep()  # the claim's 1 s deadline passed while the sandbox answered
    assert report.unknown == 1
    if honours_ref:
        assert shop.forward(order_id) == "in_progress"
        assert len(upstream_orders(sandbox, order_id)) == 1
    else:
        assert report.review == 1
        assert shop.forward(order_id) == "waiting for review"
        assert "the worker stopped" in shop.order(order_id).review["seen"]
    assert len(sandbox.orders(link=LINK)) == 1
    shop.assert_ledger_clean()


def test_orders_placed_while_redis_is_down_are_forwarded_once_it_is_back(
    make_app, make, sandbox, worker, worker_env, tmp_path
):
    from workers.embedded_redis import start_embedded_redis

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_server = start_embedded_redis(port, tmp_path / "redis")
    try:
        app = make_app(REDIS_URL=url, PASOK_FORWARD_BACKOFF_SECONDS=0)
        shop = build_shop(app, make, Route("sandbox", sandbox.url))
        process = worker({**worker_env, "REDIS_URL": url})
        first = shop.place()
        wait_for(lambda: status_of(shop, first) == "in_progress", process)

        redis_server.terminate()
        redis_server.wait(timeout=10)
        during = [shop.place() for _ in range(2)]
        assert [status_of(shop, o) for o in during] == ["pending", "pending"]

        redis_server = start_embedded_redis(port, tmp_path / "redis")
        if process.poll() is not None:  # RQ may give up on a lost Redis; a supervisor restarts it
            process = worker({**worker_env, "REDIS_URL": url})
        assert shop.sweep().enqueued == 2
        wait_for(lambda: all(status_of(shop, o) == "in_progress" for o in during), process)
        for order_id in [first, *during]:
            assert len(upstream_orders(sandbox, order_id)) == 1
        shop.assert_ledger_clean()
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)
