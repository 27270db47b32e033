"""Status sync against the sandbox provider: start_count, remains and status stored; Partial and
Canceled refunded exactly once (also with two syncs racing on PostgreSQL); one upstream call per
100 orders; a cadence that slows with age; unknown statuses and per-order errors kept; the
fan-out job's per-provider rate limit; a real worker taking an order to Completed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select

from app.catalog.models import Service
from app.config import PROJECT_ROOT
from app.extensions import db
from app.ledger import JournalEntry
from app.money import pro_rata_refund
from app.orders import status_sync
from app.orders.models import Order
from app.orders.status_sync import Asked, SyncReport, poll_interval, sync_batch, sync_statuses
from app.providers.client import ProviderClient, _parse_status_map, interpret
from app.types import utcnow
from tenants.context import across_tenants
from tests.conftest import TEST_DATABASE_URL, empty_database, service_missing
from tests.test_forwarding import FUNDS, Route, Shop, build_shop, upstream_orders
from tests.test_workers import PASOK
from workers.queues import STATUS, get_queue

D = Decimal
# The sandbox starts an order at 20% of `complete_after` (30 s) and ends it at 30 s.
STARTED = 10
ENDED = 31


@pytest.fixture
def app(make_app):
    app = make_app(PASOK_FORWARD_BACKOFF_SECONDS=0)
    empty_database(app)
    return app


@pytest.fixture
def shop(app, make, sandbox) -> Shop:
    sandbox.admin("settings", {"partial_rate": 0.0, "fail_rate": 0.0})
    return build_shop(app, make, Route("sandbox", sandbox.url))


def forwarded(shop: Shop, quantity: int = 100) -> int:
    order_id = shop.place(link="https://instagram.com/p/status-sync", quantity=str(quantity))
    assert shop.forward(order_id) == "in_progress"
    return order_id


def sync(shop: Shop, provider_id: int | None = None) -> SyncReport:
    with shop.app.app_context(), across_tenants():
        return sync_statuses(provider_id)


def due_now(shop: Shop, *order_ids: int) -> None:
    for order_id in order_ids:
        shop.set(order_id, next_poll_at=None)


def partial_refunds(shop: Shop, order_id: int) -> int:
    with shop.app.app_context(), across_tenants():
        return db.session.scalar(
            select(func.count(JournalEntry.id)).where(
                JournalEntry.idempotency_key == f"partial-{order_id}"
            )
        )


def upstream_status(sandbox, external_id: str) -> dict:
    return ProviderClient(sandbox.url, sandbox.key).status(external_id).data


@pytest.fixture
def status_calls(monkeypatch) -> list[int]:
    """The size of every multi-status call made."""
    calls: list[int] = []
    real = ProviderClient.statuses

    def counted(self, orders):
        orders = list(orders)
        calls.append(len(orders))
        return real(self, orders)

    monkeypatch.setattr(ProviderClient, "statuses", counted)
    return calls


# --- the happy path --------------------------------------------------------------------------


def test_an_order_is_followed_to_completed_with_start_count_and_remains_stored(shop, sandbox):
    order_id = forwarded(shop)
    sandbox.admin("clock", {"advance": STARTED})
    report = sync(shop)
    order = shop.order(order_id)
    upstream = upstream_status(sandbox, order.external_id)
    assert (report.calls, report.orders, report.updated) == (1, 1, 1)
    assert order.status == "in_progress"
    assert (order.start_count, order.remains) == (upstream.start_count, upstream.remains)
    assert 0 < order.remains < 100 and order.start_count > 0

    sandbox.admin("clock", {"advance": ENDED})
    assert sync(shop).orders == 0  # not due again for a minute
    due_now(shop, order_id)
    report = sync(shop)
    order = shop.order(order_id)
    assert (report.completed, order.status, order.remains) == (1, "completed", 0)
    assert order.finished_at is not None and order.next_poll_at is None
    assert order.api_status == "Completed"
    assert shop.wallets()[0] == FUNDS - order.charge  # nothing refunded
    shop.assert_ledger_clean()


def test_a_completion_feeds_the_services_average_time(shop, sandbox):
    first = forwarded(shop)
    second = forwarded(shop)
    hour_ago, minute_ago = utcnow() - timedelta(hours=1), utcnow() - timedelta(seconds=60)
    shop.set(first, created_at=hour_ago)
    shop.set(second, created_at=minute_ago)
    sandbox.admin("clock", {"advance": ENDED})
    assert sync(shop).completed == 2
    with shop.app.app_context():
        average = db.session.get(Service, shop.service_id).average_seconds
    # The first completion sets it (about 3600 s), the second moves it a tenth of the way.
    assert 3600 - (3600 - 60) // 10 - 5 <= average <= 3600 - (3600 - 60) // 10 + 5


# --- refunds ---------------------------------------------------------------------------------


def expected_partial_wallets(shop: Shop, order_id: int) -> tuple[Decimal, Decimal]:
    order = shop.order(order_id)
    retail = pro_rata_refund(order.charge, order.quantity, order.remains, order.currency)
    wholesale = pro_rata_refund(
        order.wholesale_charge, order.quantity, order.remains, order.platform_currency
    )
    assert retail > 0 and wholesale > 0
    return FUNDS - order.charge + retail, FUNDS - order.wholesale_charge + wholesale


def test_partial_refunds_the_remainder_pro_rata_to_both_wallets_exactly_once(shop, sandbox):
    sandbox.admin("settings", {"partial_rate": 1.0})
    order_id = forwarded(shop)
    sandbox.admin("clock", {"advance": ENDED})
    assert sync(shop).partial == 1
    order = shop.order(order_id)
    [upstream] = upstream_orders(sandbox, order_id)
    assert (order.status, order.remains) == ("partial", int(upstream["remains"]))
    assert shop.wallets() == expected_partial_wallets(shop, order_id)

    due_now(shop, order_id)
    assert sync(shop).orders == 0  # final: never asked about again
    with shop.app.app_context(), across_tenants():
        assert sync_batch(shop.providers["sandbox"], [order_id]).orders == 0
    assert partial_refunds(shop, order_id) == 1
    assert shop.wallets() == expected_partial_wallets(shop, order_id)
    shop.assert_ledger_clean()


def test_a_stale_answer_is_not_applied_twice(shop, sandbox):
    """Two syncs read the order in progress; the second writes against what it read, and the
    order has moved on: no second refund."""
    sandbox.admin("settings", {"partial_rate": 1.0})
    order_id = forwarded(shop)
    order = shop.order(order_id)
    asked = Asked(
        order.id, order.tenant_id, order.service_id, "in_progress", order.external_id,
        order.quantity, order.created_at,
    )  # fmt: skip
    sandbox.admin("clock", {"advance": ENDED})
    assert sync(shop).partial == 1
    answer = upstream_status(sandbox, order.external_id)
    report = SyncReport()
    with shop.app.app_context(), across_tenants():
        status_sync._apply(asked, answer, utcnow(), report, "sandbox")
        db.session.commit()
    assert (report.updated, report.partial) == (0, 0)
    assert partial_refunds(shop, order_id) == 1
    shop.assert_ledger_clean()


@pytest.fixture
def postgres_app(make_app):
    if not TEST_DATABASE_URL:
        service_missing("PASOK_TEST_DATABASE_URL is not set")
    app = make_app(PASOK_FORWARD_BACKOFF_SECONDS=0)
    empty_database(app)
    return app


def test_two_syncs_racing_on_postgres_refund_a_partial_order_once(postgres_app, make, sandbox):
    sandbox.admin("settings", {"partial_rate": 1.0, "fail_rate": 0.0})
    shop = build_shop(postgres_app, make, Route("sandbox", sandbox.url))
    order_ids = [forwarded(shop) for _ in range(5)]
    sandbox.admin("clock", {"advance": ENDED})
    start = threading.Barrier(2)
    reports: list[SyncReport] = []

    def run() -> None:
        with shop.app.app_context(), across_tenants():
            start.wait(timeout=10)
            reports.append(sync_batch(shop.providers["sandbox"], order_ids))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(reports) == 2 and sum(r.partial for r in reports) == 5
    for order_id in order_ids:
        assert (shop.order(order_id).status, partial_refunds(shop, order_id)) == ("partial", 1)
    shop.assert_ledger_clean()


def test_canceled_refunds_in_full_exactly_once(shop, sandbox):
    sandbox.admin("settings", {"fail_rate": 1.0})
    order_id = forwarded(shop)
    sandbox.admin("clock", {"advance": ENDED})
    assert sync(shop).canceled == 1
    order = shop.order(order_id)
    assert (order.status, order.remains) == ("canceled", 100)
    assert shop.wallets() == (FUNDS, FUNDS)
    due_now(shop, order_id)
    assert sync(shop).orders == 0
    assert shop.refunds(order_id) == 1
    assert shop.audits("order.canceled")[0].details["refund"] == "full"
    shop.assert_ledger_clean()


# --- batches and cadence ---------------------------------------------------------------------


def copies(shop: Shop, order_id: int, count: int) -> None:
    """`count` more in-progress orders like `order_id`, with upstream ids of their own."""
    with shop.app.app_context(), across_tenants():
        order = db.session.get(Order, order_id)
        row = {
            column.key: getattr(order, column.key)
            for column in Order.__table__.columns
            if column.key not in ("id", "ref", "form_token")
        }
        db.session.execute(
            insert(Order), [row | {"external_id": f"copy-{n}"} for n in range(count)]
        )
        db.session.commit()


def test_n_orders_take_one_status_call_per_hundred(shop, sandbox, status_calls):
    """201 orders: one placed for real, 200 copies the sandbox does not know (each answered
    with its own error in the same reply)."""
    order_id = forwarded(shop)
    copies(shop, order_id, 200)
    sandbox.admin("clock", {"advance": ENDED})
    report = sync(shop)
    assert status_calls == [100, 100, 1]
    assert (report.batches, report.calls, report.orders) == (3, 3, 201)
    assert (report.completed, report.kept) == (1, 200)
    assert shop.order(order_id).status == "completed"
    shop.assert_ledger_clean()


@pytest.mark.parametrize(
    ("age", "every"),
    [
        (timedelta(minutes=5), timedelta(minutes=1)),
        (timedelta(hours=3), timedelta(minutes=5)),
        (timedelta(days=2), timedelta(minutes=30)),
    ],
)
def test_the_poll_cadence_slows_for_older_orders(age, every):
    assert poll_interval(age) == every


def test_an_older_order_is_next_asked_about_later(shop, sandbox):
    young, old = forwarded(shop), forwarded(shop)
    shop.set(old, created_at=utcnow() - timedelta(days=2))
    sandbox.admin("clock", {"advance": STARTED})
    before = utcnow()
    assert sync(shop).updated == 2
    young_wait = shop.order(young).next_poll_at - before
    old_wait = shop.order(old).next_poll_at - before
    assert timedelta(seconds=55) < young_wait < timedelta(seconds=65)
    assert timedelta(minutes=29) < old_wait < timedelta(minutes=31)


def test_one_providers_orders_are_synced_alone(shop, sandbox, status_calls):
    forwarded(shop)
    assert sync(shop, provider_id=shop.providers["sandbox"] + 1000).orders == 0
    assert sync(shop, provider_id=shop.providers["sandbox"]).orders == 1
    assert status_calls == [1]


# --- answers kept as they are ----------------------------------------------------------------


def test_an_unknown_upstream_status_is_kept_not_coerced(shop, sandbox, monkeypatch, caplog):
    order_id = forwarded(shop)
    external_id = shop.order(order_id).external_id
    body = f'{{"{external_id}": {{"status": "Refilling", "remains": "0"}}}}'.encode()
    monkeypatch.setattr(
        ProviderClient, "statuses", lambda self, ids: interpret(200, body, _parse_status_map)
    )
    report = sync(shop)
    order = shop.order(order_id)
    assert (report.kept, order.status, order.remains) == (1, "in_progress", None)
    assert "Refilling" in order.last_error and "Refilling" in caplog.text
    assert order.next_poll_at is not None  # asked again later


def test_a_per_order_error_is_kept_and_the_rest_of_the_batch_applied(shop, sandbox):
    good, bad = forwarded(shop), forwarded(shop)
    shop.set(bad, external_id="999999")
    sandbox.admin("clock", {"advance": ENDED})
    report = sync(shop)
    assert (report.calls, report.completed, report.kept) == (1, 1, 1)
    assert shop.order(good).status == "completed"
    order = shop.order(bad)
    assert order.status == "in_progress" and "Incorrect order ID" in order.last_error


def test_a_failed_call_changes_nothing_and_is_reported(shop, sandbox):
    order_id = forwarded(shop)
    sandbox.admin("settings", {"faults": {"5xx": 1.0}})
    report = sync(shop)
    assert (report.failed_batches, report.updated) == (1, 0)
    assert "ambiguous" in report.errors[0]
    assert shop.order(order_id).status == "in_progress"


# --- the command -----------------------------------------------------------------------------


def test_the_sync_command_prints_a_one_line_summary(app, shop, sandbox):
    forwarded(shop)
    sandbox.admin("clock", {"advance": ENDED})
    result = app.test_cli_runner().invoke(args=["orders", "sync", "--provider", "sandbox"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Synced: 1 orders in 1 batches (1 status calls): 1 completed, 0 partial, 0 canceled, "
        "0 kept as they were, 0 failed batches; refills: 0 asked in 0 calls, 0 completed, "
        "0 rejected.\n"
    )


def test_the_sync_command_refuses_an_unknown_provider(app, shop):
    result = app.test_cli_runner().invoke(args=["orders", "sync", "--provider", "nope"])
    assert result.exit_code == 1
    assert result.output == "Error: No provider 'nope'\n"


def test_the_cron_schedule_syncs_statuses_every_minute_on_the_status_queue():
    import fakeredis
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=fakeredis.FakeRedis())
    scheduler.load_config_from_file(str(PROJECT_ROOT / "workers" / "schedule.py"))
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert (jobs["orders.sync"].queue_name, jobs["orders.sync"].interval) == (STATUS, 60)


# --- on real Redis ---------------------------------------------------------------------------


def test_the_fan_out_enqueues_one_job_per_batch_and_limits_each_provider(
    real_redis, make_app, make, sandbox
):
    from rq.rate_limit import RateLimitRegistry

    from workers.status_jobs import provider_limit, sync_statuses

    app = make_app(PASOK_STATUS_CONCURRENCY=1)
    empty_database(app)
    shop = build_shop(app, make, Route("sandbox", sandbox.url))
    copies(shop, forwarded(shop), 149)
    with app.app_context():
        assert sync_statuses() == {"batches": 2, "orders": 150}
        assert sync_statuses() == {"batches": 0, "orders": 0}  # leased to the jobs
        queue = get_queue(STATUS)
        registry = RateLimitRegistry(
            provider_limit(shop.providers["sandbox"]).key, queue.connection
        )
        assert (queue.count, registry.get_rate_limited_job_count()) == (1, 1)


def test_a_worker_syncs_an_order_to_completed(real_redis, shop, sandbox, database_uri, base_config):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PASOK_ENV", "DATABASE_URL", "REDIS_URL", "PASOK_PLATFORM_DOMAIN",
                       "SECRET_KEY", "PASOK_SECRET_KEYS")
    }  # fmt: skip
    env.update(
        DATABASE_URL=database_uri, REDIS_URL=real_redis, SECRET_KEY=base_config["SECRET_KEY"]
    )
    process = subprocess.Popen(
        [*PASOK, "worker", "forward", "status"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        order_id = shop.place(link="https://instagram.com/p/status-sync", quantity="100")
        wait_until(lambda: shop.order(order_id).status == "in_progress", process)
        sandbox.admin("clock", {"advance": ENDED})
        with shop.app.app_context():
            get_queue(STATUS).enqueue("workers.status_jobs.sync_statuses")
        wait_until(lambda: shop.order(order_id).status == "completed", process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    order = shop.order(order_id)
    assert order.remains == 0 and order.start_count > 0
    shop.assert_ledger_clean()


def wait_until(condition, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the worker exited: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"not within {timeout}s: {process.communicate()[0]}")
        time.sleep(0.05)
