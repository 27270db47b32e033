"""The console's order pipeline page and rq-dashboard: which orders each list shows across
tenants, the review actions (each once, audited, with form errors for bad input), and who may
see any of it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import rq_dashboard.web
from sqlalchemy import func, select, update

from app.audit.models import AuditEntry
from app.extensions import db
from app.ledger import JournalEntry, verify_ledger
from app.orders.models import Order
from app.orders.services import place_order
from app.providers.models import Provider
from app.types import utcnow
from tenants.context import across_tenants
from tests.conftest import Factories, empty_database, sign_in
from tests.ordering import LINK, build_shop, fund, fund_tenant

EVIDENCE = {
    "at": "2026-01-01T00:00:00+00:00",
    "reason": "the provider does not honour ref",
    "seen": "HTTP 502 from the provider after sending",
    "http_status": 502,
    "link": LINK,
    "quantity": 100,
    "params": {},
    "provider": "up",
    "upstream_service": "likes",
    "attempt": 1,
    "ref_sent": False,
    "external_id": None,
}


@pytest.fixture
def shop(app, make):
    ids = build_shop(app, make)
    for customer in ("alice", "bob"):
        fund(app, ids[customer], "100")
    fund(app, ids["budi"], "1000000")
    fund_tenant(app, ids["acme"], "100")
    fund_tenant(app, ids["nusa"], "100")
    ids["up"] = provider_id(app)
    return ids


@pytest.fixture
def operator(make, browser_for):
    make.operator("op@example.com")
    root = browser_for("localhost")
    assert sign_in(root, "/console/login", "op@example.com").status_code == 302
    return root


def provider_id(app) -> int:
    """The shop's one provider ("up"), which every route of tests.ordering goes to."""
    with app.app_context():
        return db.session.scalar(select(Provider.id).where(Provider.name == "up"))


def order_in(app, ids, customer="alice", tenant="acme", **values) -> int:
    """An order placed the normal way, then put in the state a test needs."""
    with app.app_context(), across_tenants():
        placed = place_order(
            tenant_id=ids[tenant],
            customer_id=ids[customer],
            service_id=ids["likes"],
            fields={"link": LINK, "quantity": "100"},
            actor="test",
        )
        db.session.commit()
        order_id = placed.order.id
        if values:
            db.session.execute(update(Order).where(Order.id == order_id).values(**values))
            db.session.commit()
        return order_id


def in_review(app, ids, **values) -> int:
    return order_in(
        app, ids, status="unknown", review_at=utcnow(), review=EVIDENCE, provider_id=ids["up"],
        attempts=1, **values,
    )  # fmt: skip


def listed(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/console/pipeline/orders/(\d+)"', page)}


def order(app, order_id: int) -> Order:
    with app.app_context(), across_tenants():
        found = db.session.get(Order, order_id)
        db.session.expunge(found)
        return found


def refunds(app, order_id: int) -> int:
    with app.app_context(), across_tenants():
        return db.session.scalar(
            select(func.count(JournalEntry.id)).where(
                JournalEntry.idempotency_key == f"refund-{order_id}"
            )
        )


def audits(app, action: str) -> list[AuditEntry]:
    with app.app_context(), across_tenants():
        return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def assert_ledger_clean(app) -> None:
    with app.app_context(), across_tenants():
        report = verify_ledger()
        assert report.ok, report


# --- the lists -------------------------------------------------------------------------------


def test_the_stuck_list_shows_overdue_submissions_and_long_pending_orders(app, shop, operator):
    now = utcnow()
    dead_worker = order_in(
        app, shop, status="submitting", next_attempt_at=now - timedelta(minutes=1)
    )
    working = order_in(app, shop, status="submitting", next_attempt_at=now + timedelta(hours=1))
    forgotten = order_in(app, shop, created_at=now - timedelta(minutes=10))
    backing_off = order_in(app, shop, next_attempt_at=now - timedelta(minutes=2))
    fresh = order_in(app, shop)
    page = operator.get("/console/pipeline").get_data(as_text=True)
    assert 'href="/console/pipeline" aria-current="page">Pipeline</a>' in page
    assert listed(page) == {dead_worker, forgotten}
    assert {working, backing_off, fresh}.isdisjoint(listed(page))


def test_the_unknown_list_flags_the_orders_waiting_for_review(app, shop, operator):
    waiting = in_review(app, shop)
    reconciling = order_in(app, shop, status="unknown")
    order_in(app, shop, status="failed")
    response = operator.get("/console/pipeline?tab=unknown")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert listed(page) == {waiting, reconciling}
    assert page.count('badge--warning">needs review') == 1


def test_the_failed_list_spans_every_tenant_with_each_orders_details(app, shop, operator):
    acme = order_in(app, shop, status="failed", last_error="Incorrect link", attempts=2)
    nusa = order_in(app, shop, customer="budi", tenant="nusa", status="failed")
    order_in(app, shop, status="completed")
    page = operator.get("/console/pipeline?tab=failed").get_data(as_text=True)
    assert listed(page) == {acme, nusa}
    for shown in ("acme", "nusa", "Likes service", "Incorrect link", LINK):
        assert shown in page


def test_the_lists_filter_by_panel_and_order_number(app, shop, operator):
    acme = order_in(app, shop, status="failed")
    nusa = order_in(app, shop, customer="budi", tenant="nusa", status="failed")
    by_panel = operator.get(f"/console/pipeline?tab=failed&tenant={shop['nusa']}")
    assert listed(by_panel.get_data(as_text=True)) == {nusa}
    by_number = operator.get(f"/console/pipeline?tab=failed&q=%23{acme}")
    assert listed(by_number.get_data(as_text=True)) == {acme}


@pytest.mark.parametrize("query", ["tab=nonsense", "tab=failed&page=-3&tenant=x", "q=99999999999"])
def test_odd_list_arguments_give_a_page(shop, operator, query):
    assert operator.get(f"/console/pipeline?{query}").status_code == 200


# --- one order and its actions ---------------------------------------------------------------


def test_an_order_in_review_shows_its_evidence_readably(app, shop, operator):
    order_id = in_review(app, shop)
    page = operator.get(f"/console/pipeline/orders/{order_id}").get_data(as_text=True)
    assert "HTTP 502 from the provider after sending" in page
    assert "What was seen" in page and "the provider does not honour ref" in page
    assert '"seen"' not in page  # labelled rows, not a JSON dump
    assert "2026-01-01 00:00 UTC" in page  # when it went to review, as the console shows times
    for action in ("deliver", "refund", "resend"):
        assert f"/console/pipeline/orders/{order_id}/{action}" in page


def test_an_order_not_in_review_offers_no_actions(app, shop, operator):
    order_id = order_in(app, shop, status="failed")
    page = operator.get(f"/console/pipeline/orders/{order_id}").get_data(as_text=True)
    assert f"/console/pipeline/orders/{order_id}/refund" not in page


@pytest.mark.parametrize("order_id", ["424242", "0", "99999999999"])
def test_an_unknown_order_is_not_found(shop, operator, order_id):
    path = f"/console/pipeline/orders/{order_id}"
    assert operator.get(path).status_code == 404
    assert operator.post(f"{path}/deliver", data={"external_id": "1"}).status_code == 404
    resend = operator.post(f"{path}/resend", data={"confirmed": "y"}, follow_redirects=True)
    assert resend.status_code == 404
    assert operator.post(f"{path}/refund", follow_redirects=True).status_code == 404


def test_mark_delivered_moves_the_order_on_once_and_is_audited(app, shop, operator):
    order_id = in_review(app, shop)
    path = f"/console/pipeline/orders/{order_id}/deliver"
    response = operator.post(path, data={"external_id": " 777 "}, follow_redirects=True)
    assert "marked delivered under provider order 777" in response.get_data(as_text=True)
    found = order(app, order_id)
    assert (found.status, found.external_id, found.review_at) == ("in_progress", "777", None)
    again = operator.post(path, data={"external_id": "778"}, follow_redirects=True)
    assert "is not waiting for review" in again.get_data(as_text=True)
    assert order(app, order_id).external_id == "777"
    [audited] = audits(app, "order.review.delivered")
    assert audited.actor_label == "op@example.com" and audited.details["external_id"] == "777"
    page = operator.get(f"/console/pipeline/orders/{order_id}").get_data(as_text=True)
    assert "Marked delivered" in page


@pytest.mark.parametrize(
    ("external_id", "error"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("12 34", "Enter the id as the provider shows it"),
        ("<script>", "Enter the id as the provider shows it"),
        ("9" * 65, "Use at most 64 characters."),
    ],
)
def test_a_bad_upstream_id_is_a_form_error(app, shop, operator, external_id, error):
    order_id = in_review(app, shop)
    response = operator.post(
        f"/console/pipeline/orders/{order_id}/deliver", data={"external_id": external_id}
    )
    assert response.status_code == 200
    assert error in response.get_data(as_text=True)
    assert order(app, order_id).status == "unknown"
    assert audits(app, "order.review.delivered") == []


def test_an_upstream_id_another_order_has_at_the_provider_is_a_form_error(app, shop, operator):
    other = order_in(app, shop, status="in_progress", provider_id=shop["up"], external_id="777")
    order_id = in_review(app, shop)
    response = operator.post(
        f"/console/pipeline/orders/{order_id}/deliver", data={"external_id": "777"}
    )
    assert response.status_code == 200
    assert f"Order #{other} already has this id" in response.get_data(as_text=True)
    assert order(app, order_id).status == "unknown"


def test_refund_cancels_and_refunds_once_even_when_posted_twice(app, shop, operator):
    order_id = in_review(app, shop)
    path = f"/console/pipeline/orders/{order_id}/refund"
    first = operator.post(path, follow_redirects=True).get_data(as_text=True)
    assert "canceled and refunded in full" in first
    second = operator.post(path, follow_redirects=True).get_data(as_text=True)
    assert "is not waiting for review" in second
    assert order(app, order_id).status == "canceled"
    assert refunds(app, order_id) == 1
    assert len(audits(app, "order.review.refunded")) == 1
    assert_ledger_clean(app)
    page = operator.get(f"/console/pipeline/orders/{order_id}").get_data(as_text=True)
    assert "Refunded after review" in page


def test_resend_needs_the_operators_confirmation(app, shop, operator):
    order_id = in_review(app, shop)
    response = operator.post(f"/console/pipeline/orders/{order_id}/resend", data={})
    assert "Tick the box to confirm" in response.get_data(as_text=True)
    assert order(app, order_id).status == "unknown"
    assert audits(app, "order.review.resent") == []


def test_resend_after_confirmation_makes_the_order_pending_once(app, shop, operator):
    order_id = in_review(app, shop)
    path = f"/console/pipeline/orders/{order_id}/resend"
    first = operator.post(path, data={"confirmed": "y"}, follow_redirects=True)
    assert "pending again and will be sent" in first.get_data(as_text=True)
    found = order(app, order_id)
    assert (found.status, found.review_at) == ("pending", None)
    second = operator.post(path, data={"confirmed": "y"}, follow_redirects=True)
    assert "is not waiting for review" in second.get_data(as_text=True)
    assert len(audits(app, "order.review.resent")) == 1
    assert_ledger_clean(app)


def test_actions_need_a_csrf_token(make_app, make, browser_for):
    app = make_app(WTF_CSRF_ENABLED=True)
    empty_database(app)
    ids = {**build_shop(app, Factories(app)), "up": provider_id(app)}
    fund(app, ids["alice"], "100")
    order_id = in_review(app, ids)
    Factories(app).operator("op@example.com")
    root = browser_for("localhost", app.test_client())
    login = root.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    root.post("/console/login", data={"email": "op@example.com", "password": "correct-horse-7",
                                      "csrf_token": token})  # fmt: skip
    response = root.post(f"/console/pipeline/orders/{order_id}/refund")
    assert response.status_code == 400
    assert order(app, order_id).status == "unknown"


# --- who may see it --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/console/pipeline", "/console/pipeline/orders/1", "/console/rq/"]
)
def test_anonymous_visitors_are_sent_to_the_console_login(shop, browser_for, path):
    response = browser_for("localhost").get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")


def test_a_tenants_staff_cannot_reach_the_pipeline(app, shop, make, browser_for):
    make.staff(shop["acme"], "staff@example.com")
    root = browser_for("localhost")
    sign_in(root, "/console/login", "staff@example.com")
    assert root.get("/console/pipeline").status_code == 302
    assert root.get("/console/rq/").status_code == 302
    acme = browser_for("acme.localhost")
    assert sign_in(acme, "/admin/login", "staff@example.com").status_code == 302
    assert acme.get("/console/pipeline").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/console/pipeline",
        "/console/pipeline/orders/1",
        "/console/rq/",
        "/console/rq/0/view/workers",
    ],
)
def test_the_pages_do_not_exist_on_tenant_hosts(shop, browser_for, path):
    assert browser_for("acme.localhost").get(path).status_code == 404


# --- rq-dashboard ----------------------------------------------------------------------------


@pytest.fixture
def dashboard_redis(app, monkeypatch):
    """rq-dashboard connects by URL on each request; on in-process fakeredis (no URL to
    connect to) hand it the app's client instead."""
    if app.config["REDIS_URL"].startswith("fakeredis://"):
        client = app.extensions["pasok_redis"]
        monkeypatch.setattr(rq_dashboard.web, "from_url", lambda *a, **k: (None, client))


def test_rq_dashboard_answers_an_operator_on_the_apps_redis(app, operator, dashboard_redis):
    from workers.queues import FORWARD, get_queue

    real_redis = not app.config["REDIS_URL"].startswith("fakeredis://")
    if real_redis:  # fakeredis has no Lua, which RQ 3's enqueue needs
        with app.app_context():
            job = get_queue(FORWARD).enqueue("builtins.print", "hello")
    page = operator.get("/console/rq/")
    assert page.status_code == 200 and "rq-dashboard" in page.get_data(as_text=True).lower()
    queues = operator.get("/console/rq/0/data/queues.json")
    assert queues.status_code == 200
    if real_redis:
        assert FORWARD in {q["name"] for q in queues.get_json()["queues"]}
        jobs = operator.get(f"/console/rq/0/data/jobs/{FORWARD}/queued/8/asc/1.json").get_json()
        assert job.id in {j["id"] for j in jobs["jobs"]}
        assert operator.get(f"/console/rq/0/data/job/{job.id}.json").get_json()["status"]
        assert operator.get(f"/console/rq/0/view/job/{job.id}").status_code == 200
        assert operator.get(f"/console/rq/0/view/jobs/{FORWARD}/queued/8/asc/1").status_code == 200
    assert operator.get("/console/rq/0/view/workers").status_code == 200
    assert operator.get("/console/rq/0/data/workers.json").status_code == 200


def test_rq_dashboard_hands_its_script_the_csrf_token(make_app, make, browser_for, monkeypatch):
    app = make_app(WTF_CSRF_ENABLED=True)
    empty_database(app)
    if app.config["REDIS_URL"].startswith("fakeredis://"):
        client = app.extensions["pasok_redis"]
        monkeypatch.setattr(rq_dashboard.web, "from_url", lambda *a, **k: (None, client))
    Factories(app).operator("op@example.com")
    root = browser_for("localhost", app.test_client())
    login = root.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    root.post("/console/login", data={"email": "op@example.com", "password": "correct-horse-7",
                                      "csrf_token": token})  # fmt: skip
    assert root.get("/console/rq/").status_code == 200
    cookie = root.cookie("_csrf_token", path="/console/rq")
    assert cookie is not None
    assert root.post("/console/rq/job/no-such-job/delete").status_code == 400
    sent = root.post("/console/rq/job/no-such-job/delete", headers={"X-CSRFToken": cookie.value})
    assert sent.status_code == 200 and sent.get_json() == {"status": "ERROR"}  # no such job


def test_rq_dashboards_requeue_all_is_post_only(operator, dashboard_redis):
    assert operator.get("/console/rq/requeue/forward").status_code == 405
    assert operator.post("/console/rq/requeue/forward").get_json()["status"] == "OK"
