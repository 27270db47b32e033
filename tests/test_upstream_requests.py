"""Refills and cancels of orders that are upstream, against the sandbox provider: who may ask
(the service's flags, the refill window, one open request at a time, the order's state), the
outbox (recorded before the job, swept when Redis was down), the job's outcomes, refills
followed to their final state, an accepted cancel ending Canceled or Partial with exactly one
refund, and the pages of customers, staff and operators in every theme and in Indonesian."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from sqlalchemy import func, select, update

from app.catalog.models import Service
from app.extensions import db, get_redis
from app.ledger import JournalEntry
from app.orders import upstream_requests
from app.orders.models import UpstreamRequest
from app.orders.status_sync import sync_statuses
from app.orders.upstream_requests import (
    CancelAlreadyRequested,
    CancelNotApplicable,
    CancelNotOffered,
    RefillAlreadyRequested,
    RefillNotApplicable,
    RefillNotOffered,
    RefillWindowClosed,
    request_cancel,
    request_refill,
    send_request,
    sweep_requests,
    sync_refills,
)
from app.panels.models import Tenant
from app.providers.models import Provider
from app.types import utcnow
from tenants.context import across_tenants, tenant_scope
from tests.conftest import empty_database, sign_in
from tests.test_forwarding import FUNDS, Route, Shop, build_shop
from workers.context import AppWorker
from workers.order_jobs import upstream_request_job_id
from workers.queues import FORWARD, get_queue

D = Decimal
LINK = "https://instagram.com/p/refill-and-cancel"
# Sandbox services: 2 offers refill and cancel, 1 neither (and takes drip-feed), 10 cancel only.
BOTH = "2"
NEITHER = "1"
# The sandbox starts an order at 20% of `complete_after` (30 s) and ends it at 30 s; a refill
# runs on the same timeline from when it was asked for.
STARTED = 10
ENDED = 31


@pytest.fixture
def app(make_app):
    app = make_app(PASOK_FORWARD_BACKOFF_SECONDS=0, PASOK_FORWARD_MAX_TRIES=3)
    empty_database(app)
    return app


def shop_for(
    app, make, sandbox, *, upstream: str = BOTH, refill: bool = True, cancel: bool = True, days=None
) -> Shop:
    sandbox.admin("settings", {"partial_rate": 0.0, "fail_rate": 0.0})
    shop = build_shop(app, make, Route("sandbox", sandbox.url, upstream=upstream, min_quantity=100))
    with app.app_context():
        db.session.execute(
            update(Service)
            .where(Service.id == shop.service_id)
            .values(refill=refill, cancel=cancel, refill_days=days)
        )
        db.session.commit()
    return shop


@pytest.fixture
def shop(app, make, sandbox) -> Shop:
    """acme sells a service whose route (sandbox service 2) offers refills and cancels."""
    return shop_for(app, make, sandbox)


def forwarded(shop: Shop) -> int:
    order_id = shop.place(link=LINK, quantity="100")
    assert shop.forward(order_id) == "in_progress"
    return order_id


def synced(shop: Shop, *order_ids: int):
    for order_id in order_ids:
        shop.set(order_id, next_poll_at=None)
    with shop.app.app_context(), across_tenants():
        return sync_statuses()


def completed(shop: Shop, sandbox) -> int:
    order_id = forwarded(shop)
    sandbox.admin("clock", {"advance": ENDED})
    assert synced(shop, order_id).completed == 1
    return order_id


def ask(shop: Shop, order_id: int, kind: str = "refill", actor="test", customer_id=None) -> int:
    ask_for = request_refill if kind == "refill" else request_cancel
    with shop.app.app_context(), across_tenants():
        request = ask_for(order_id, actor=actor, customer_id=customer_id)
        db.session.commit()
        return request.id


def refused(shop: Shop, order_id: int, kind: str = "refill") -> Exception:
    with pytest.raises(upstream_requests.RequestRefused) as caught:
        ask(shop, order_id, kind)
    return caught.value


def send(shop: Shop, request_id: int) -> str:
    with shop.app.app_context(), across_tenants():
        return send_request(request_id)


def request_row(shop: Shop, request_id: int) -> UpstreamRequest:
    with shop.app.app_context(), across_tenants():
        row = db.session.get(UpstreamRequest, request_id)
        db.session.expunge(row)
        return row


def set_request(shop: Shop, request_id: int, **values) -> None:
    with shop.app.app_context(), across_tenants():
        db.session.execute(
            update(UpstreamRequest).where(UpstreamRequest.id == request_id).values(**values)
        )
        db.session.commit()


def refills(shop: Shop):
    with shop.app.app_context(), across_tenants():
        return sync_refills()


def entries(shop: Shop, key: str) -> int:
    with shop.app.app_context(), across_tenants():
        return db.session.scalar(
            select(func.count(JournalEntry.id)).where(JournalEntry.idempotency_key == key)
        )


def run_forward_jobs(app) -> None:
    """A burst worker in this process, on real Redis (rq's unique job ids run Lua)."""
    with app.app_context():
        worker = AppWorker([get_queue(FORWARD)], connection=get_redis())
        worker.work(burst=True)


def send_requested(shop: Shop) -> list[str]:
    """What the send jobs do, for every request waiting to be sent."""
    with shop.app.app_context(), across_tenants():
        waiting = db.session.scalars(
            select(UpstreamRequest.id).where(UpstreamRequest.state == "requested")
        ).all()
    return [send(shop, request_id) for request_id in waiting]


# --- refills ---------------------------------------------------------------------------------


def test_a_refill_is_sent_upstream_and_followed_to_completed(shop, sandbox):
    order_id = completed(shop, sandbox)
    request_id = ask(shop, order_id)
    assert request_row(shop, request_id).state == "requested"

    result = send(shop, request_id)
    row = request_row(shop, request_id)
    assert result == f"refill {row.external_id}: pending"
    assert (row.state, row.open_kind, row.attempts) == ("pending", "refill", 1)

    sandbox.admin("clock", {"advance": STARTED})
    report = refills(shop)
    assert (report.calls, report.refills, report.updated) == (1, 1, 1)
    assert request_row(shop, request_id).state == "in_progress"

    sandbox.admin("clock", {"advance": ENDED})
    set_request(shop, request_id, next_attempt_at=None)
    assert refills(shop).completed == 1
    row = request_row(shop, request_id)
    assert (row.state, row.open_kind) == ("completed", None)
    assert row.finished_at is not None
    assert [a.details["request"] for a in shop.audits("order.refill.completed")] == [request_id]
    order = shop.order(order_id)
    assert shop.wallets() == (FUNDS - order.charge, FUNDS - order.wholesale_charge)
    shop.assert_ledger_clean()


def test_a_refill_the_provider_rejects_ends_rejected(shop, sandbox):
    order_id = completed(shop, sandbox)
    sandbox.admin("settings", {"fail_rate": 1.0})  # the sandbox rejects every refill it takes
    request_id = ask(shop, order_id)
    send(shop, request_id)
    sandbox.admin("clock", {"advance": ENDED})
    assert refills(shop).rejected == 1
    assert request_row(shop, request_id).state == "rejected"
    # A rejected refill is final: the customer may ask again.
    assert ask(shop, order_id) != request_id


def test_refill_statuses_go_up_in_one_call_per_provider(shop, sandbox, monkeypatch):
    from app.providers.client import ProviderClient

    calls = []
    real = ProviderClient.refill_statuses

    def counted(self, ids):
        ids = list(ids)
        calls.append(len(ids))
        return real(self, ids)

    monkeypatch.setattr(ProviderClient, "refill_statuses", counted)
    orders = [forwarded(shop) for _ in range(3)]
    sandbox.admin("clock", {"advance": ENDED})
    assert synced(shop, *orders).completed == 3
    for order_id in orders:
        send(shop, ask(shop, order_id))
    assert refills(shop).refills == 3
    assert calls == [3]


def test_a_refill_the_provider_reports_as_error_ends_error_and_an_odd_word_is_kept(
    shop, sandbox, monkeypatch
):
    from app.providers.client import Outcome, ProviderClient, Reply

    first, second = completed(shop, sandbox), completed(shop, sandbox)
    ids = [ask(shop, order_id) for order_id in (first, second)]
    for request_id in ids:
        send(shop, request_id)
    error_id, odd_id = (request_row(shop, i).external_id for i in ids)
    answers = {error_id: "Error", odd_id: "Refilling"}
    monkeypatch.setattr(
        ProviderClient, "refill_statuses", lambda self, refills: Reply(Outcome.SUCCESS, answers)
    )
    report = refills(shop)
    assert (report.refills, report.updated, report.kept) == (2, 1, 1)
    failed, odd = (request_row(shop, i) for i in ids)
    assert (failed.state, failed.open_kind) == ("error", None)
    assert (odd.state, odd.open_kind) == ("pending", "refill")
    assert "Refilling" in odd.error and odd.next_attempt_at is not None


def test_a_service_without_refills_refuses_a_refill(app, make, sandbox):
    shop = shop_for(app, make, sandbox, refill=False)
    order_id = completed(shop, sandbox)
    assert isinstance(refused(shop, order_id), RefillNotOffered)
    assert shop.audits("order.refill.requested") == []


def test_an_order_that_is_not_completed_cannot_be_refilled(shop):
    order_id = forwarded(shop)
    assert isinstance(refused(shop, order_id), RefillNotApplicable)


def test_a_refill_after_the_window_is_refused(shop, sandbox):
    order_id = completed(shop, sandbox)
    shop.set(order_id, finished_at=utcnow() - timedelta(days=31))  # the default is 30 days
    error = refused(shop, order_id)
    assert isinstance(error, RefillWindowClosed)
    assert "30 days" in str(error)


def test_the_services_own_refill_window_counts(app, make, sandbox):
    shop = shop_for(app, make, sandbox, days=60)
    order_id = completed(shop, sandbox)
    shop.set(order_id, finished_at=utcnow() - timedelta(days=59))
    assert ask(shop, order_id)
    shop.set(order_id, finished_at=utcnow() - timedelta(days=61))
    with shop.app.app_context(), across_tenants():
        db.session.execute(update(UpstreamRequest).values(state="completed", open_kind=None))
        db.session.commit()
    error = refused(shop, order_id)
    assert isinstance(error, RefillWindowClosed) and "60 days" in str(error)


def test_a_second_refill_while_one_is_open_is_refused(shop, sandbox):
    order_id = completed(shop, sandbox)
    first = ask(shop, order_id)
    assert isinstance(refused(shop, order_id), RefillAlreadyRequested)
    send(shop, first)  # now pending upstream: still open
    assert isinstance(refused(shop, order_id), RefillAlreadyRequested)


def test_two_refills_asked_at_once_make_one_request(shop, sandbox, monkeypatch):
    """The unique (order, open kind) decides a race the check before it cannot see."""
    order_id = completed(shop, sandbox)
    ask(shop, order_id)
    monkeypatch.setattr(upstream_requests, "refill_refusal", lambda *args: None)
    assert isinstance(refused(shop, order_id), RefillAlreadyRequested)
    with shop.app.app_context(), across_tenants():
        assert db.session.scalar(select(func.count(UpstreamRequest.id))) == 1


# --- cancels ---------------------------------------------------------------------------------


def test_a_cancel_accepted_upstream_ends_canceled_with_exactly_one_full_refund(shop, sandbox):
    order_id = forwarded(shop)
    shop.set(order_id, next_poll_at=utcnow() + timedelta(minutes=5))
    request_id = ask(shop, order_id, "cancel")
    assert send(shop, request_id) == "accepted"
    row = request_row(shop, request_id)
    assert (row.state, row.open_kind, row.error) == ("accepted", None, None)
    assert shop.order(order_id).next_poll_at is None  # due for the status sync at once
    assert isinstance(refused(shop, order_id, "cancel"), CancelAlreadyRequested)

    with shop.app.app_context(), across_tenants():
        assert sync_statuses().canceled == 1
    order = shop.order(order_id)
    assert (order.status, order.remains) == ("canceled", 100)
    assert shop.refunds(order_id) == 1
    assert shop.wallets() == (FUNDS, FUNDS)
    assert synced(shop, order_id).orders == 0  # final: never asked about (or refunded) again
    assert shop.refunds(order_id) == 1
    assert [a.details["request"] for a in shop.audits("order.cancel.accepted")] == [request_id]
    shop.assert_ledger_clean()


def test_a_cancel_after_some_delivery_ends_partial_with_the_remainder_refunded(shop, sandbox):
    order_id = forwarded(shop)
    sandbox.admin("clock", {"advance": STARTED + 5})
    request_id = ask(shop, order_id, "cancel")
    assert send(shop, request_id) == "accepted"
    assert synced(shop, order_id).partial == 1
    order = shop.order(order_id)
    assert order.status == "partial" and 0 < order.remains < 100
    assert entries(shop, f"partial-{order_id}") == 1 and shop.refunds(order_id) == 0
    customer, _wholesale = shop.wallets()
    assert FUNDS - order.charge < customer < FUNDS
    shop.assert_ledger_clean()


def test_a_cancel_the_provider_refuses_is_kept_with_its_reason(app, make, sandbox):
    # The panel's service says cancel, but its route (sandbox service 1) does not.
    shop = shop_for(app, make, sandbox, upstream=NEITHER)
    order_id = forwarded(shop)
    request_id = ask(shop, order_id, "cancel")
    assert send(shop, request_id) == "refused"
    row = request_row(shop, request_id)
    assert (row.state, row.open_kind) == ("refused", None)
    assert row.error == "Cancel is disabled for this service"
    assert shop.order(order_id).status == "in_progress"
    assert shop.refunds(order_id) == 0
    assert shop.audits("order.cancel.refused")[0].details["error"] == row.error


def test_a_service_without_cancels_refuses_a_cancel(app, make, sandbox):
    shop = shop_for(app, make, sandbox, cancel=False)
    order_id = forwarded(shop)
    assert isinstance(refused(shop, order_id, "cancel"), CancelNotOffered)


def test_a_final_order_cannot_be_canceled_upstream(shop, sandbox):
    order_id = completed(shop, sandbox)
    assert isinstance(refused(shop, order_id, "cancel"), CancelNotApplicable)


def test_an_order_that_finished_before_its_cancel_went_out_is_refused_without_a_call(shop, sandbox):
    order_id = forwarded(shop)
    request_id = ask(shop, order_id, "cancel")
    shop.set(order_id, status="completed")
    assert send(shop, request_id) == "refused"
    assert "completed" in request_row(shop, request_id).error


# --- the outbox, the job and the sweeper -----------------------------------------------------


def test_a_request_is_committed_before_its_job_and_the_job_sends_it(real_redis, shop, sandbox):
    order_id = forwarded(shop)
    request_id = ask(shop, order_id, "cancel")
    with shop.app.app_context():
        assert get_queue(FORWARD).fetch_job(upstream_request_job_id(request_id, 0)) is not None
    run_forward_jobs(shop.app)
    assert request_row(shop, request_id).state == "accepted"


def test_a_request_made_while_redis_is_down_is_sent_after_the_sweep(
    real_redis, shop, sandbox, monkeypatch
):
    order_id = forwarded(shop)

    def down(*args, **kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr("workers.order_jobs.enqueue_upstream_request", down)
    request_id = ask(shop, order_id, "cancel")  # the customer's request still succeeds
    assert request_row(shop, request_id).state == "requested"
    monkeypatch.undo()
    with shop.app.app_context():
        assert get_queue(FORWARD).fetch_job(upstream_request_job_id(request_id, 0)) is None
    with shop.app.app_context(), across_tenants():
        assert sweep_requests().enqueued == 1
        assert sweep_requests().enqueued == 0  # its job waits: not enqueued twice
    run_forward_jobs(shop.app)
    assert request_row(shop, request_id).state == "accepted"


def test_a_request_that_never_reached_the_provider_is_tried_again(shop, sandbox):
    order_id = forwarded(shop)
    request_id = ask(shop, order_id, "cancel")
    with shop.app.app_context(), across_tenants():
        provider = db.session.get(Provider, shop.providers["sandbox"])
        real_url, provider.api_url = provider.api_url, "http://127.0.0.1:9/api/v2"
        db.session.commit()
    assert send(shop, request_id) == "not sent: try again later"
    row = request_row(shop, request_id)
    assert (row.state, row.attempts) == ("requested", 1)
    assert "not sent" in row.error
    with shop.app.app_context(), across_tenants():
        db.session.get(Provider, shop.providers["sandbox"]).api_url = real_url
        db.session.commit()
    assert send(shop, request_id) == "accepted"
    assert request_row(shop, request_id).attempts == 2


def test_an_ambiguous_answer_is_an_error_and_never_resent(shop, sandbox):
    order_id = completed(shop, sandbox)
    request_id = ask(shop, order_id)
    sandbox.admin("settings", {"faults": {"5xx": 1.0}})
    assert send(shop, request_id) == "error"
    assert send(shop, request_id) == "nothing to do: error"
    row = request_row(shop, request_id)
    assert row.open_kind is None and "no clear answer" in row.error


def test_a_second_copy_of_the_job_sends_nothing(shop, sandbox):
    order_id = forwarded(shop)
    request_id = ask(shop, order_id, "cancel")
    assert send(shop, request_id) == "accepted"
    assert send(shop, request_id) == "nothing to do: accepted"


def test_the_scheduled_jobs_sweep_requests_and_follow_refills(shop, sandbox):
    from workers.order_jobs import sweep_upstream_requests
    from workers.status_jobs import sync_refills as sync_refills_job

    order_id = completed(shop, sandbox)
    request_id = ask(shop, order_id)
    send(shop, request_id)
    sandbox.admin("clock", {"advance": ENDED})
    with shop.app.app_context():
        assert sync_refills_job()["completed"] == 1
        assert sweep_upstream_requests()["lost"] == 0
    assert request_row(shop, request_id).state == "completed"


def test_the_sweeper_gives_up_on_a_request_whose_worker_died(shop, sandbox):
    order_id = forwarded(shop)
    request_id = ask(shop, order_id, "cancel")
    set_request(shop, request_id, state="sending", attempts=1, next_attempt_at=utcnow())
    with shop.app.app_context(), across_tenants():
        assert sweep_requests().lost == 1
    row = request_row(shop, request_id)
    assert (row.state, row.open_kind) == ("error", None)
    assert "worker stopped" in row.error


# --- the pages -------------------------------------------------------------------------------


def signed_in_customer(browser_for):
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/login", "alice@example.com").status_code == 302
    return acme


def set_theme(app, tenant_id: int, theme: str, locale: str = "en") -> None:
    with app.app_context(), across_tenants():
        tenant = db.session.get(Tenant, tenant_id)
        tenant.theme, tenant.default_locale = theme, locale
        db.session.commit()


@pytest.mark.parametrize("theme", ["base", "aurora", "nusantara"])
def test_a_customer_refills_a_completed_order_from_its_page(shop, sandbox, browser_for, theme):
    set_theme(shop.app, shop.tenant_id, theme)
    order_id = completed(shop, sandbox)
    acme = signed_in_customer(browser_for)
    page = acme.get(f"/orders/{order_id}").get_data(as_text=True)
    assert f'action="/orders/{order_id}/refill"' in page
    assert "/request-cancel" not in page  # completed: nothing left to cancel

    response = acme.post(f"/orders/{order_id}/refill", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Refill of order #{order_id} requested" in page
    assert 'data-request-state="requested"' in page and "Refills and cancels" in page
    assert f'action="/orders/{order_id}/refill"' not in page  # one at a time
    [audit] = shop.audits("order.refill.requested")
    assert audit.actor_label == "alice@example.com"


@pytest.mark.parametrize("theme", ["base", "aurora", "nusantara"])
def test_a_customer_cancels_an_order_in_progress_and_sees_the_refund(
    shop, sandbox, browser_for, theme
):
    set_theme(shop.app, shop.tenant_id, theme)
    order_id = forwarded(shop)
    acme = signed_in_customer(browser_for)
    page = acme.get(f"/orders/{order_id}").get_data(as_text=True)
    assert f'action="/orders/{order_id}/request-cancel"' in page
    assert f'action="/orders/{order_id}/refill"' not in page

    response = acme.post(f"/orders/{order_id}/request-cancel", follow_redirects=True)
    assert f"Cancel of order #{order_id} requested" in response.get_data(as_text=True)
    send_requested(shop)
    with shop.app.app_context(), across_tenants():
        sync_statuses()
    page = acme.get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'data-request-state="accepted"' in page
    assert "status-badge--canceled" in page and "Refunded" in page
    assert shop.refunds(order_id) == 1
    shop.assert_ledger_clean()


def test_the_customer_sees_a_refused_cancel_without_the_providers_words(
    app, make, sandbox, browser_for
):
    shop = shop_for(app, make, sandbox, upstream=NEITHER)
    order_id = forwarded(shop)
    send(shop, ask(shop, order_id, "cancel"))
    page = signed_in_customer(browser_for).get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'data-request-state="refused"' in page
    assert "The provider declined this request." in page
    assert "Cancel is disabled" not in page


@pytest.mark.parametrize(
    "setup, path, message",
    [
        ("in_progress", "refill", "Only a completed order can be refilled."),
        ("completed", "request-cancel", "This order can no longer be canceled."),
        ("old", "refill", "The refill period of this order (30 days after completion) is over."),
        ("twice", "refill", "A refill of this order is already under way."),
    ],
)
def test_a_request_the_order_does_not_allow_is_a_clear_message(
    shop, sandbox, browser_for, setup, path, message
):
    order_id = forwarded(shop) if setup == "in_progress" else completed(shop, sandbox)
    if setup == "old":
        shop.set(order_id, finished_at=utcnow() - timedelta(days=40))
    if setup == "twice":
        ask(shop, order_id)
    acme = signed_in_customer(browser_for)
    response = acme.post(f"/orders/{order_id}/{path}")
    assert response.status_code == 302
    page = acme.get(response.headers["Location"]).get_data(as_text=True)
    assert message in page


def test_the_pages_speak_indonesian(shop, sandbox, browser_for):
    set_theme(shop.app, shop.tenant_id, "nusantara", "id")
    order_id = completed(shop, sandbox)
    acme = signed_in_customer(browser_for)
    page = acme.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Minta refill" in page
    acme.post(f"/orders/{order_id}/refill")
    page = acme.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "Refill dan pembatalan" in page and "Diminta" in page


@pytest.mark.parametrize("path", ["refill", "request-cancel"])
def test_another_customers_order_is_not_found(shop, sandbox, make, browser_for, path):
    order_id = forwarded(shop)
    make.customer(shop.tenant_id, "bob@example.com")
    bob = browser_for("acme.localhost")
    assert sign_in(bob, "/login", "bob@example.com").status_code == 302
    assert bob.post(f"/orders/{order_id}/{path}").status_code == 404
    assert shop.audits(f"order.{'refill' if path == 'refill' else 'cancel'}.requested") == []


def staff_browser(make, browser_for, shop: Shop, role: str = "admin"):
    make.staff(shop.tenant_id, f"{role}@acme.example.com", role=role)
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/admin/login", f"{role}@acme.example.com").status_code == 302
    return acme


def test_staff_ask_for_a_refill_and_see_it_followed(shop, sandbox, make, browser_for):
    order_id = completed(shop, sandbox)
    staff = staff_browser(make, browser_for, shop, role="support")
    page = staff.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert f'action="/admin/orders/{order_id}/refill"' in page
    response = staff.post(f"/admin/orders/{order_id}/refill", follow_redirects=True)
    assert f"Refill of order #{order_id} requested." in response.get_data(as_text=True)
    [audit] = shop.audits("order.refill.requested")
    assert (audit.actor_label, audit.target) == ("support@acme.example.com", f"order:{order_id}")
    send_requested(shop)
    page = staff.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert 'data-request-state="pending"' in page and "Refill requested" in page


def test_staff_see_the_providers_reason_for_a_refused_cancel(app, make, sandbox, browser_for):
    shop = shop_for(app, make, sandbox, upstream=NEITHER)
    order_id = forwarded(shop)
    staff = staff_browser(make, browser_for, shop)
    staff.post(f"/admin/orders/{order_id}/request-cancel")
    [audit] = shop.audits("order.cancel.requested")
    assert audit.actor_label == "admin@acme.example.com"
    send_requested(shop)
    page = staff.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert 'data-request-state="refused"' in page
    assert "Cancel is disabled for this service" in page


def test_support_staff_cannot_cancel_upstream(shop, make, browser_for):
    order_id = forwarded(shop)
    staff = staff_browser(make, browser_for, shop, role="support")
    assert "/request-cancel" not in staff.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert staff.post(f"/admin/orders/{order_id}/request-cancel").status_code == 403
    assert shop.audits("order.cancel.requested") == []


def test_a_refused_staff_request_is_a_flash_not_an_error_page(shop, make, browser_for):
    order_id = forwarded(shop)
    staff = staff_browser(make, browser_for, shop)
    response = staff.post(f"/admin/orders/{order_id}/refill", follow_redirects=True)
    assert response.status_code == 200
    assert "Only a completed order can be refilled." in response.get_data(as_text=True)


def test_an_operator_cancels_upstream_from_the_console(shop, sandbox, make, browser_for):
    order_id = forwarded(shop)
    make.operator("op@example.com")
    root = browser_for("localhost")
    assert sign_in(root, "/console/login", "op@example.com").status_code == 302
    page = root.get(f"/console/pipeline/orders/{order_id}").get_data(as_text=True)
    assert f'action="/console/pipeline/orders/{order_id}/request-cancel"' in page
    response = root.post(
        f"/console/pipeline/orders/{order_id}/request-cancel", follow_redirects=True
    )
    assert f"Cancel of order #{order_id} requested." in response.get_data(as_text=True)
    [audit] = shop.audits("order.cancel.requested")
    assert (audit.actor_label, audit.tenant_id) == ("op@example.com", shop.tenant_id)
    send_requested(shop)
    page = root.get(f"/console/pipeline/orders/{order_id}").get_data(as_text=True)
    assert 'data-request-state="accepted"' in page
    assert root.post("/console/pipeline/orders/999999/refill").status_code == 404


def test_requests_stay_in_their_tenant(shop, sandbox, make):
    order_id = completed(shop, sandbox)
    request_id = ask(shop, order_id)
    other = make.tenant("toko")
    with shop.app.app_context(), tenant_scope(other):
        assert db.session.get(UpstreamRequest, request_id) is None
        with pytest.raises(upstream_requests.NotFound):
            request_refill(order_id, actor="test")
