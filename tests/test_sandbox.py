"""The sandbox provider: an upstream SMM panel (API v2) for the demo, tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.catalog.order_types import ORDER_TYPES, order_type
from app.sandbox import ManualClock, SandboxOptions, SandboxPanel, create_sandbox_app
from app.sandbox import cli as sandbox_cli
from app.sandbox.cli import sandbox_provider_command

KEY = "sandbox-key"
LINK = "https://instagram.com/p/sandbox"
ACTIVE_ORDER = "You have active order with this link. Please wait until order being completed."


@dataclass
class Sandbox:
    client: FlaskClient
    clock: ManualClock
    panel: SandboxPanel

    def post(self, action: str, **params: Any) -> TestResponse:
        """An API call as a form POST."""
        return self.client.post("/api/v2", data={"key": KEY, "action": action, **params})

    def call(self, action: str, **params: Any) -> Any:
        """An API call's JSON reply (always HTTP 200)."""
        response = self.post(action, **params)
        assert response.status_code == 200, response.data
        return response.get_json()

    def services(self) -> list[dict[str, Any]]:
        return self.call("services")

    def service(self, type: str = "Default", **flags: bool) -> dict[str, Any]:
        """The first service of `type` whose flags match."""
        return next(
            s
            for s in self.services()
            if s["type"] == type and all(s[k] == v for k, v in flags.items())
        )

    def add(self, service: dict[str, Any], /, **params: Any) -> Any:
        return self.call("add", **{**valid_add(service), **params})

    def balance(self) -> Decimal:
        return Decimal(self.call("balance")["balance"])

    def orders(self, **filters: str) -> dict[str, Any]:
        return self.client.get("/__sandbox/orders", query_string=filters).get_json()

    def admin(self, path: str, body: dict[str, Any]):
        return self.client.post(f"/__sandbox/{path}", json=body)


def valid_add(service: dict[str, Any]) -> dict[str, Any]:
    """The smallest valid `add` for a service of any order type."""
    low = int(service["min"])
    lines = "\n".join(f"line {n}" for n in range(max(low, 1)))
    values = {
        "link": LINK,
        "quantity": str(low),
        "comments": lines,
        "usernames": lines,
        "hashtags": "#one\n#two",
        "hashtag": "#sandbox",
        "username": "sandbox_user",
        "media": "https://instagram.com/p/media",
        "answer_number": "1",
        "groups": "group_one\ngroup_two",
        "keywords": "buy followers",
        "min": str(low),
        "max": str(low),
        "delay": "0",
    }
    kind = order_type(service["type"])
    return {"service": service["service"], **{name: values[name] for name in kind.required}}


def expected_charge(rate: str, quantity: int) -> Decimal:
    exact = Decimal(rate) * quantity / 1000
    return exact.quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)


@pytest.fixture
def make_sandbox():
    def factory(**overrides: Any) -> Sandbox:
        clock = ManualClock()
        app = create_sandbox_app(SandboxOptions(**overrides), clock=clock)
        return Sandbox(app.test_client(), clock, app.extensions["sandbox"])

    return factory


@pytest.fixture
def sandbox(make_sandbox) -> Sandbox:
    """Every order completes in full, 30 seconds after it is placed."""
    return make_sandbox(partial_rate=0.0)


# The catalog


def test_services_follow_the_reference_types(sandbox):
    services = sandbox.services()
    assert len(services) == 50
    for service in services:
        assert list(service) == [
            "service", "name", "type", "category", "rate", "min", "max",
            "refill", "cancel", "dripfeed",
        ]  # fmt: skip
        assert type(service["service"]) is int
        assert all(type(service[k]) is str for k in ("name", "type", "category", "rate"))
        assert all(type(service[k]) is str for k in ("min", "max"))
        assert all(type(service[k]) is bool for k in ("refill", "cancel", "dripfeed"))
        rate = Decimal(service["rate"])
        assert rate > 0 and -rate.as_tuple().exponent <= 6
        assert 1 <= int(service["min"]) <= int(service["max"])
        assert service["name"].startswith("[SBX] ")
        assert service["type"] in ORDER_TYPES
        assert not service["dripfeed"] or service["type"] == "Default"


def test_the_catalog_spans_categories_and_every_order_type_mostly_default(sandbox):
    services = sandbox.services()
    categories = {s["category"] for s in services}
    assert {"Instagram Followers", "Instagram Likes", "TikTok Views", "YouTube Views"} <= categories
    assert "Telegram Members" in categories
    assert {s["type"] for s in services} == set(ORDER_TYPES)
    assert sum(s["type"] == "Default" for s in services) > len(services) / 2
    assert len({s["service"] for s in services}) == 50


def test_the_catalog_depends_on_ids_only_not_on_seed_or_size(make_sandbox):
    default = make_sandbox(seed=1).services()
    assert make_sandbox(seed=99).services() == default
    assert make_sandbox(services=200).services()[:50] == default


def test_five_thousand_services_are_generated_in_under_a_second():
    started = time.perf_counter()
    app = create_sandbox_app(SandboxOptions(services=5000), clock=ManualClock())
    reply = app.test_client().post("/api/v2", data={"key": KEY, "action": "services"})
    assert time.perf_counter() - started < 1
    assert len(reply.get_json()) == 5000


# Calling the API


@pytest.mark.parametrize("key", [None, "", "wrong-key", "sandbox-key "])
@pytest.mark.parametrize("action", ["services", "add", "status", "balance", "nonsense"])
def test_a_bad_or_missing_key_is_refused(sandbox, key, action):
    data = {"action": action} if key is None else {"key": key, "action": action}
    reply = sandbox.client.post("/api/v2", data=data)
    assert reply.status_code == 200
    assert reply.get_json() == {"error": "Invalid API key"}
    assert sandbox.orders()["count"] == 0


@pytest.mark.parametrize("action", [None, "", "hack", "delete"])
def test_an_unknown_or_missing_action_is_an_incorrect_request(sandbox, action):
    data = {"key": KEY} if action is None else {"key": KEY, "action": action}
    reply = sandbox.client.post("/api/v2", data=data)
    assert reply.status_code == 200 and reply.get_json() == {"error": "Incorrect request"}


def test_calls_come_as_a_form_json_or_a_query_string(sandbox):
    service = sandbox.service("Default")
    params = {"key": KEY, "action": "add", **valid_add(service)}
    by_form = sandbox.client.post("/api/v2", data=params).get_json()
    by_query = sandbox.client.get("/api/v2", query_string=params).get_json()
    as_json = {**params, "service": service["service"], "quantity": int(params["quantity"])}
    by_json = sandbox.client.post("/api/v2", json=as_json).get_json()
    assert [by_form["order"], by_query["order"], by_json["order"]] == [10001, 10002, 10003]
    status = sandbox.client.post(
        "/api/v2", json={"key": KEY, "action": "status", "orders": [10001, 10003]}
    ).get_json()
    assert set(status) == {"10001", "10003"}


def test_errors_are_http_200_json_even_for_a_broken_json_body(sandbox):
    reply = sandbox.client.post("/api/v2", data="{not json", content_type="application/json")
    assert reply.status_code == 200 and reply.get_json() == {"error": "Invalid API key"}


# Placing orders


def test_add_charges_rate_times_quantity_over_1000_from_the_balance(sandbox):
    service = sandbox.service("Default")
    quantity = int(service["min"]) * 3 + 7
    reply = sandbox.add(service, quantity=quantity)
    assert reply == {"order": 10001}
    charge = expected_charge(service["rate"], quantity)
    assert sandbox.balance() == Decimal("10000") - charge
    status = sandbox.call("status", order=10001)
    assert status == {
        "charge": str(charge),
        "start_count": "0",
        "status": "Pending",
        "remains": str(quantity),
        "currency": "USD",
    }


def test_the_charge_rounds_half_up_to_five_decimals(sandbox):
    service = sandbox.service("Default")
    changes = {
        "reprice": {service["service"]: "0.00025"},
        "update": {service["service"]: {"min": 10}},
    }
    assert sandbox.admin("catalog", changes).status_code == 200
    sandbox.add(service, quantity=100)  # 0.000025 exactly: half-even would give 0.00002
    assert sandbox.call("status", order=10001)["charge"] == "0.00003"
    assert sandbox.balance() == Decimal("9999.99997")


def test_every_order_type_accepts_its_parameters(sandbox):
    placed = {}
    for service in sandbox.services():
        if service["type"] not in placed:
            reply = sandbox.add(service)
            assert set(reply) == {"order"} and type(reply["order"]) is int, service
            placed[service["type"]] = reply["order"]
    assert set(placed) == set(ORDER_TYPES)


def test_packages_cost_their_rate_and_counted_types_count_lines(sandbox):
    package = sandbox.service("Package")
    sandbox.add(package)
    assert sandbox.call("status", order=10001)["charge"] == str(
        Decimal(package["rate"]).quantize(Decimal("0.00001"))
    )
    comments = sandbox.service("Custom Comments")
    lines = int(comments["min"]) + 2
    sandbox.add(comments, comments="\n".join(f"great post {n}" for n in range(lines)) + "\n\n")
    status = sandbox.call("status", order=10002)
    assert status["remains"] == str(lines)
    assert status["charge"] == str(expected_charge(comments["rate"], lines))


def test_drip_feed_bills_quantity_times_runs(sandbox):
    service = sandbox.service("Default", dripfeed=True)
    quantity = int(service["min"])
    assert sandbox.add(service, runs=3, interval=10) == {"order": 10001}
    status = sandbox.call("status", order=10001)
    assert status["charge"] == str(expected_charge(service["rate"], quantity * 3))
    assert status["remains"] == str(quantity * 3)
    no_drip = sandbox.service("Default", dripfeed=False)
    assert sandbox.add(no_drip, runs=3, interval=10) == {
        "error": "Drip-feed is not available for this service"
    }
    assert sandbox.add(service, runs=3) == {"error": "Drip-feed needs both runs and interval"}


@pytest.mark.parametrize(
    "type, params, error",
    [
        ("Default", {"link": ""}, "Missing parameter: link"),
        ("Default", {"quantity": ""}, "Missing parameter: quantity"),
        ("Default", {"link": "instagram"}, "Incorrect link"),
        ("Default", {"link": "ftp://instagram.com/x"}, "Incorrect link"),
        ("Default", {"link": "https://insta gram.com/x"}, "Incorrect link"),
        ("Default", {"quantity": "ten"}, "Incorrect quantity"),
        ("Default", {"quantity": "-5"}, "Incorrect quantity"),
        ("Default", {"quantity": "1.5"}, "Incorrect quantity"),
        ("Default", {"quantity": "9" * 40}, "Incorrect quantity"),
        ("Default", {"quantity": "1"}, "Quantity less than minimal"),
        ("Default", {"quantity": "99999999"}, "Quantity more than maximal"),
        ("Default", {"service": "999999"}, "Incorrect service ID"),
        ("Default", {"service": "abc"}, "Incorrect service ID"),
        ("Custom Comments", {"comments": ""}, "Missing parameter: comments"),
        ("Custom Comments", {"comments": "just one"}, "Quantity less than minimal"),
        ("Mentions Custom List", {"usernames": "\n \n"}, "Missing parameter: usernames"),
        ("Poll", {"answer_number": "0"}, "Incorrect answer_number"),
        ("Poll", {"answer_number": ""}, "Missing parameter: answer_number"),
        ("Subscriptions", {"username": ""}, "Missing parameter: username"),
        ("Subscriptions", {"delay": "soon"}, "Incorrect delay"),
        ("Subscriptions", {"min": "1"}, "Min less than minimal"),
        ("Subscriptions", {"max": "99999999"}, "Max more than maximal"),
        ("Mentions Hashtag", {"hashtag": " "}, "Missing parameter: hashtag"),
        ("SEO", {"keywords": ""}, "Missing parameter: keywords"),
    ],
)
def test_add_refuses_what_the_order_type_does_not_allow(sandbox, type, params, error):
    reply = sandbox.add(sandbox.service(type), **params)
    assert set(reply) == {"error"} and reply["error"].startswith(error)
    assert sandbox.orders()["count"] == 0
    assert sandbox.balance() == Decimal("10000")


def test_subscriptions_need_min_not_above_max(sandbox):
    service = sandbox.service("Subscriptions")
    low = int(service["min"])
    reply = sandbox.add(service, min=low + 1, max=low)
    assert reply == {"error": "Min must not be more than max"}


def test_an_order_the_balance_cannot_cover_is_refused(sandbox):
    service = sandbox.service("Default")
    assert sandbox.admin("balance", {"balance": "0.00001"}).get_json()["balance"] == "0.00001"
    assert sandbox.add(service) == {"error": "Not enough funds on balance"}
    assert sandbox.orders()["count"] == 0
    assert sandbox.balance() == Decimal("0.00001")


def test_the_same_ref_returns_the_same_order_and_charges_once(sandbox):
    service = sandbox.service("Default")
    first = sandbox.add(service, ref="pasok-1")
    after_first = sandbox.balance()
    assert sandbox.add(service, ref="pasok-1") == first
    assert sandbox.add(service, ref="pasok-2") == {"order": first["order"] + 1}
    assert sandbox.orders(ref="pasok-1")["count"] == 1
    assert sandbox.balance() == after_first - expected_charge(service["rate"], int(service["min"]))


def test_with_no_ref_a_repeated_add_is_a_second_order(make_sandbox):
    sandbox = make_sandbox(honour_ref=False)
    service = sandbox.service("Default")
    assert sandbox.add(service, ref="pasok-1") == {"order": 10001}
    assert sandbox.add(service, ref="pasok-1") == {"order": 10002}
    assert [o["ref"] for o in sandbox.orders(ref="pasok-1")["orders"]] == ["pasok-1"] * 2
    charge = expected_charge(service["rate"], int(service["min"]))
    assert sandbox.balance() == Decimal("10000") - 2 * charge


def test_concurrent_adds_neither_lose_nor_overspend(sandbox):
    service = sandbox.service("Default")
    app = sandbox.client.application
    charge = expected_charge(service["rate"], int(service["min"]))
    sandbox.admin("balance", {"balance": str(charge * 150)})
    replies: list[Any] = []

    def place(worker: int) -> None:
        client = app.test_client()
        for n in range(25):
            params = {"key": KEY, "action": "add", **valid_add(service)}
            replies.append(client.post("/api/v2", data={**params, "ref": f"{worker}-{n}"}).json)
            replies.append(client.post("/api/v2", data={**params, "ref": "shared"}).json)

    threads = [threading.Thread(target=place, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    placed = {r["order"] for r in replies if "order" in r}
    refused = [r for r in replies if "error" in r]
    assert len(placed) == 150 == sandbox.orders()["count"]
    assert refused and all(r == {"error": "Not enough funds on balance"} for r in refused)
    assert sandbox.orders(ref="shared")["count"] == 1
    assert sandbox.balance() == 0


# Orders over time


def test_an_order_goes_pending_then_in_progress_then_completed(sandbox):
    service = sandbox.service("Default")
    quantity = int(service["min"]) * 10
    sandbox.add(service, quantity=quantity)

    def status() -> dict[str, str]:
        return sandbox.call("status", order="10001")

    assert status()["status"] == "Pending" and status()["start_count"] == "0"
    sandbox.clock.advance(6)  # a fifth of complete_after
    started = status()
    assert started["status"] == "In progress" and int(started["start_count"]) > 0
    assert started["remains"] == str(quantity)
    sandbox.clock.advance(12)
    halfway = status()
    assert halfway["status"] == "In progress" and int(halfway["remains"]) == quantity // 2
    assert halfway["start_count"] == started["start_count"]
    sandbox.clock.advance(12)
    done = status()
    assert done == {**started, "status": "Completed", "remains": "0"}


def test_complete_after_sets_the_pace(make_sandbox):
    sandbox = make_sandbox(complete_after=0, partial_rate=0)
    sandbox.add(sandbox.service("Default"))
    assert sandbox.call("status", order=10001)["status"] == "Completed"


def test_partial_orders_leave_remains_and_refund_the_undelivered_share(make_sandbox):
    sandbox = make_sandbox(partial_rate=1.0)
    service = sandbox.service("Default")
    quantity = int(service["min"]) * 7 + 3
    sandbox.add(service, quantity=quantity)
    charge = expected_charge(service["rate"], quantity)
    sandbox.clock.advance(30)
    status = sandbox.call("status", order=10001)
    remains = int(status["remains"])
    assert status["status"] == "Partial" and 0 < remains < quantity
    assert status["charge"] == str(charge)  # what was debited, as panels show it
    refund = (charge * remains / quantity).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    assert sandbox.balance() == Decimal("10000") - charge + refund


def test_failed_orders_are_canceled_and_refunded_in_full(make_sandbox):
    sandbox = make_sandbox(fail_rate=1.0, partial_rate=0.0)
    service = sandbox.service("Default")
    sandbox.add(service)
    assert sandbox.balance() < Decimal("10000")
    sandbox.clock.advance(6)
    status = sandbox.call("status", order=10001)
    assert status["status"] == "Canceled" and status["remains"] == service["min"]
    assert status["start_count"] == "0"
    assert sandbox.balance() == Decimal("10000")


def test_outcomes_follow_their_rates(make_sandbox):
    sandbox = make_sandbox(fail_rate=0.2, partial_rate=0.3)
    service = sandbox.service("Default")
    for _ in range(300):
        sandbox.add(service, quantity=int(service["min"]) * 2)
    sandbox.clock.advance(30)
    statuses = [o["status"] for o in sandbox.orders()["orders"]]
    assert 40 <= statuses.count("Canceled") <= 80
    assert 70 <= statuses.count("Partial") <= 110
    assert statuses.count("Completed") == 300 - statuses.count("Canceled") - statuses.count(
        "Partial"
    )


def run_a_session(sandbox: Sandbox) -> list[Any]:
    """A fixed sequence of calls, and everything the sandbox answered."""
    service = sandbox.service("Default")
    replies = [sandbox.add(service, quantity=int(service["min"]) * 5) for _ in range(30)]
    replies.append(sandbox.call("status", orders=",".join(str(10001 + n) for n in range(30))))
    sandbox.clock.advance(30)
    replies.append(sandbox.call("status", orders=",".join(str(10001 + n) for n in range(30))))
    replies.append(sandbox.call("balance"))
    return replies


def test_the_same_seed_and_calls_give_the_same_run(make_sandbox):
    options = {"seed": 7, "partial_rate": 0.3, "fail_rate": 0.2, "faults": {"active_order": 0.2}}
    first = run_a_session(make_sandbox(**options))
    assert first == run_a_session(make_sandbox(**options))
    assert first != run_a_session(make_sandbox(**{**options, "seed": 8}))


def test_a_reset_replays_the_same_run(make_sandbox):
    sandbox = make_sandbox(partial_rate=0.5, faults={"active_order": 0.3})
    first = run_a_session(sandbox)
    assert sandbox.client.post("/__sandbox/reset").get_json() == {"reset": True}
    assert run_a_session(sandbox) == first


# Faults


def test_a_timeout_places_the_order_then_holds_the_reply(make_sandbox):
    sandbox = make_sandbox(faults={"timeout": 1.0}, timeout_sleep_s=45)
    service = sandbox.service("Default")
    assert sandbox.clock.waits == [45]  # even `services` is slow to answer
    assert sandbox.add(service, ref="pasok-9") == {"order": 10001}
    assert sandbox.clock.waits == [45, 45]
    assert sandbox.orders()["count"] == 1
    assert sandbox.add(service, ref="pasok-9") == {"order": 10001}  # a resend is safe


@pytest.mark.parametrize("kind, statuses", [("5xx", {502, 503}), ("html", {200, 500})])
def test_5xx_and_html_faults_answer_an_html_page_and_place_nothing(make_sandbox, kind, statuses):
    sandbox = make_sandbox(faults={kind: 1.0})
    order = valid_add(sandbox.panel.catalog[1].api_reply())
    seen = set()
    for _ in range(20):
        reply = sandbox.post("add", **order)
        seen.add(reply.status_code)
        assert reply.mimetype == "text/html" and b"<html" in reply.data.lower()
    assert seen == statuses
    assert sandbox.orders()["count"] == 0
    assert sandbox.panel.balance == Decimal("10000")


def test_an_active_order_fault_refuses_the_add(make_sandbox):
    sandbox = make_sandbox(faults={"active_order": 1.0})
    service = sandbox.panel.catalog[1].api_reply()
    assert sandbox.add(service) == {"error": ACTIVE_ORDER}
    assert sandbox.orders()["count"] == 0
    assert sandbox.call("balance") == {"balance": "10000.00000", "currency": "USD"}


def test_faults_hit_about_their_rate_deterministically(make_sandbox):
    def outcomes(seed: int) -> list[str]:
        sandbox = make_sandbox(seed=seed, faults={"5xx": 0.1, "active_order": 0.2})
        order = valid_add(sandbox.panel.catalog[1].api_reply())
        results = []
        for _ in range(400):
            reply = sandbox.post("add", **order)
            if reply.status_code != 200:
                results.append("5xx")
            else:
                results.append("active_order" if "error" in reply.json else "placed")
        return results

    first = outcomes(seed=3)
    assert 20 <= first.count("5xx") <= 60
    assert 50 <= first.count("active_order") <= 110
    assert outcomes(seed=3) == first
    assert outcomes(seed=4) != first


def test_latency_delays_every_api_reply_but_not_the_admin_endpoints(make_sandbox):
    sandbox = make_sandbox(latency_ms=250)
    sandbox.call("balance")
    sandbox.client.post("/api/v2", data={"key": "wrong", "action": "balance"})
    sandbox.orders()
    assert sandbox.clock.waits == [0.25, 0.25]


def test_other_actions_meet_server_faults_but_never_an_active_order(make_sandbox):
    sandbox = make_sandbox(faults={"active_order": 1.0})
    assert sandbox.call("balance")["currency"] == "USD"
    sandbox.admin("settings", {"faults": {"5xx": 1.0}})
    assert sandbox.post("status", order=10001).status_code in {502, 503}


# Status, refill, cancel


def test_multi_status_answers_each_id_and_refuses_more_than_100(sandbox):
    service = sandbox.service("Default")
    sandbox.add(service)
    sandbox.add(service)
    reply = sandbox.call("status", orders="10001, 10002,10002,424242,abc")
    assert list(reply) == ["10001", "10002", "424242", "abc"]
    assert reply["10002"]["status"] == "Pending"
    assert reply["424242"] == reply["abc"] == {"error": "Incorrect order ID"}
    hundred = ",".join(str(10001 + n) for n in range(100))
    assert len(sandbox.call("status", orders=hundred)) == 100
    too_many = sandbox.call("status", orders=hundred + ",99999")
    assert too_many == {"error": "Too many orders: at most 100 per request"}


@pytest.mark.parametrize("order", ["", "0", "424242", "x1", "10001.0"])
def test_status_of_an_unknown_order_is_an_incorrect_order_id(sandbox, order):
    assert sandbox.call("status", order=order) == {"error": "Incorrect order ID"}


def test_refill_honours_the_service_flag_and_tracks_the_refill(sandbox):
    refillable = sandbox.service("Default", refill=True)
    not_refillable = sandbox.service("Default", refill=False)
    sandbox.add(refillable)
    sandbox.add(not_refillable)
    assert sandbox.call("refill", order=10001) == {
        "error": "Refill is available only for completed or partial orders"
    }
    sandbox.clock.advance(30)
    assert sandbox.call("refill", order=10002) == {"error": "Refill is disabled for this service"}
    assert sandbox.call("refill", order=10001) == {"refill": "501"}
    assert sandbox.call("refill", order=10001) == {
        "error": "Refill is already in progress for this order"
    }
    assert sandbox.call("refill_status", refill=501) == {"status": "Pending"}
    sandbox.clock.advance(6)
    assert sandbox.call("refill_status", refill=501) == {"status": "In progress"}
    sandbox.clock.advance(24)
    assert sandbox.call("refill_status", refill="501") == {"status": "Completed"}
    assert sandbox.call("refill_status", refill=999) == {"error": "Incorrect refill ID"}


def test_multi_refill_and_multi_refill_status(sandbox):
    refillable = sandbox.service("Default", refill=True)
    sandbox.add(refillable)
    sandbox.add(sandbox.service("Default", refill=False))
    sandbox.clock.advance(30)
    assert sandbox.call("refill", orders="10001,10002,77") == [
        {"order": 10001, "refill": 501},
        {"order": 10002, "refill": {"error": "Refill is disabled for this service"}},
        {"order": 77, "refill": {"error": "Incorrect order ID"}},
    ]
    assert sandbox.call("refill_status", refills="501,502") == [
        {"refill": 501, "status": "Pending"},
        {"refill": 502, "status": {"error": "Incorrect refill ID"}},
    ]


def test_failed_refills_are_rejected(make_sandbox):
    sandbox = make_sandbox(fail_rate=0.0, partial_rate=0.0)
    sandbox.add(sandbox.service("Default", refill=True))
    sandbox.clock.advance(30)
    sandbox.admin("settings", {"fail_rate": 1.0})
    sandbox.call("refill", order=10001)
    sandbox.clock.advance(30)
    assert sandbox.call("refill_status", refill=501) == {"status": "Rejected"}


def test_cancel_honours_the_service_flag_and_refunds(sandbox):
    cancelable = sandbox.service("Default", cancel=True)
    not_cancelable = sandbox.service("Default", cancel=False)
    quantity = int(cancelable["min"]) * 10
    sandbox.add(cancelable, quantity=quantity)
    sandbox.add(cancelable, quantity=quantity)
    sandbox.add(not_cancelable)
    charge = expected_charge(cancelable["rate"], quantity)
    sandbox.clock.advance(18)  # halfway through the in-progress order
    assert sandbox.call("cancel", orders="10001,10003,555") == [
        {"order": 10001, "cancel": 1},
        {"order": 10003, "cancel": {"error": "Cancel is disabled for this service"}},
        {"order": 555, "cancel": {"error": "Incorrect order ID"}},
    ]
    canceled = sandbox.call("status", order=10001)
    assert canceled["status"] == "Partial" and canceled["remains"] == str(quantity // 2)
    sandbox.clock.advance(12)
    assert sandbox.call("cancel", orders="10001,10002") == [
        {"order": 10001, "cancel": {"error": "Order is already partial"}},
        {"order": 10002, "cancel": {"error": "Order is already completed"}},
    ]
    half_refund = (charge / 2).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    third = expected_charge(not_cancelable["rate"], int(not_cancelable["min"]))
    assert Decimal("10000") - sandbox.balance() == 2 * charge - half_refund + third


def test_canceling_a_pending_order_refunds_it_in_full(sandbox):
    service = sandbox.service("Default", cancel=True)
    sandbox.add(service)
    assert sandbox.call("cancel", order=10001) == [{"order": 10001, "cancel": 1}]
    status = sandbox.call("status", order=10001)
    assert status["status"] == "Canceled" and status["remains"] == service["min"]
    assert sandbox.balance() == Decimal("10000")


def test_balance_is_a_string_in_the_sandbox_currency(make_sandbox):
    sandbox = make_sandbox(balance=Decimal("12.5"), currency="IDR")
    assert sandbox.call("balance") == {"balance": "12.50", "currency": "IDR"}


# The admin endpoints


def test_the_orders_listing_counts_what_was_placed_and_filters_by_link(sandbox):
    service = sandbox.service("Default")
    sandbox.add(service, link="https://instagram.com/a")
    sandbox.add(service, link="https://instagram.com/b", ref="r-2")
    listing = sandbox.orders()
    assert listing["count"] == 2
    assert listing["orders"][1] == {
        "id": 10002,
        "service": service["service"],
        "link": "https://instagram.com/b",
        "quantity": int(service["min"]),
        "ref": "r-2",
        "status": "Pending",
        "charge": str(expected_charge(service["rate"], int(service["min"]))),
        "remains": service["min"],
    }
    assert sandbox.orders(link="https://instagram.com/a")["count"] == 1
    assert sandbox.orders(status="Completed")["count"] == 0


def test_the_clock_endpoint_moves_orders_on(sandbox):
    sandbox.add(sandbox.service("Default"))
    reply = sandbox.admin("clock", {"advance": 30})
    assert reply.status_code == 200 and reply.get_json() == {"advanced": 30.0, "now": 30.0}
    assert sandbox.orders()["orders"][0]["status"] == "Completed"
    for bad in ({"advance": -1}, {"advance": "soon"}, {}, {"advance": True}):
        assert sandbox.admin("clock", bad).status_code == 400


def test_reset_forgets_orders_and_restores_catalog_balance_and_settings(sandbox):
    service = sandbox.service("Default")
    original = sandbox.services()
    sandbox.add(service, ref="r-1")
    sandbox.admin("catalog", {"remove": [service["service"]]})
    sandbox.admin("settings", {"faults": {"active_order": 0.5}})
    sandbox.client.post("/__sandbox/reset")
    assert sandbox.orders() == {"count": 0, "orders": []}
    assert sandbox.services() == original
    assert sandbox.balance() == Decimal("10000")
    assert sandbox.client.get("/__sandbox/settings").json["faults"] == {}
    assert sandbox.add(service, ref="r-1") == {"order": 10001}


def test_the_catalog_endpoint_reprices_updates_removes_and_adds(sandbox):
    reply = sandbox.admin(
        "catalog",
        {"reprice": {"1": "0.55"}, "update": {"2": {"name": "Renamed", "max": 777}},
         "remove": [3, 4], "add": 2},
    )  # fmt: skip
    assert reply.status_code == 200
    assert reply.get_json() == {
        "repriced": [1],
        "updated": [2],
        "removed": [3, 4],
        "added": [51, 52],
        "services": 50,
    }
    services = {s["service"]: s for s in sandbox.services()}
    assert services[1]["rate"] == "0.55"
    assert services[2]["name"] == "Renamed" and services[2]["max"] == "777"
    assert 3 not in services and 4 not in services
    assert services[51]["name"].startswith("[SBX]")
    assert sandbox.add(services[1] | {"service": 3}) == {"error": "Incorrect service ID"}
    sandbox.admin("catalog", {"add": 1})
    assert max(s["service"] for s in sandbox.services()) == 53  # removed ids are never reused


@pytest.mark.parametrize(
    "body",
    [
        {"reprice": {"1": "0"}},
        {"reprice": {"1": "-1"}},
        {"reprice": {"1": "0.1234567"}},
        {"reprice": {"1": True}},
        {"reprice": {"999": "1.00"}},
        {"reprice": {"one": "1.00"}},
        {"update": {"1": {"min": 10, "max": 5}}},
        {"update": {"1": {"type": "Nope"}}},
        {"update": {"1": {"colour": "red"}}},
        {"update": {"1": {"refill": "yes"}}},
        {"remove": [1, 999]},
        {"remove": "1"},
        {"add": -1},
        {"add": "2"},
        {"rename": {}},
    ],
)
def test_a_bad_catalog_change_changes_nothing(sandbox, body):
    before = sandbox.services()
    reply = sandbox.admin("catalog", body)
    assert reply.status_code == 400 and reply.get_json()["error"]
    assert sandbox.services() == before


def test_settings_can_be_read_and_changed_while_running(sandbox):
    settings = sandbox.client.get("/__sandbox/settings").get_json()
    assert settings == {
        "latency_ms": 0,
        "fail_rate": 0.0,
        "partial_rate": 0.0,
        "faults": {},
        "complete_after": 30.0,
        "honour_ref": True,
        "timeout_sleep_s": 30.0,
    }
    changed = sandbox.admin("settings", {"faults": {"timeout": 0.5}, "complete_after": 5})
    assert changed.get_json()["faults"] == {"timeout": 0.5}
    assert changed.get_json()["complete_after"] == 5.0
    for bad in (
        {"faults": {"meteor": 0.1}},
        {"faults": {"timeout": 1.5}},
        {"faults": {"timeout": 0.6, "5xx": 0.6}},
        {"fail_rate": 0.7, "partial_rate": 0.7},
        {"seed": 3},
        {"colour": "red"},
    ):
        reply = sandbox.admin("settings", bad)
        assert reply.status_code == 400 and reply.get_json()["error"], bad
    assert sandbox.client.get("/__sandbox/settings").get_json()["faults"] == {"timeout": 0.5}


def test_the_balance_endpoint_sets_the_balance(sandbox):
    assert sandbox.admin("balance", {"balance": "25.5"}).get_json() == {
        "balance": "25.50000",
        "currency": "USD",
    }
    assert sandbox.admin("balance", {"balance": "-1"}).status_code == 400
    assert sandbox.admin("balance", {"balance": "lots"}).status_code == 400


# The command


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Missing option '--port'"),
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
        (["--port", "8000", "--services", "0"], "--services"),
        (["--port", "8000", "--fault", "meteor:0.1"], "unknown fault kind 'meteor'"),
        (["--port", "8000", "--fault", "timeout"], "is not KIND:RATE"),
        (["--port", "8000", "--fault", "timeout:"], "is not KIND:RATE"),
        (["--port", "8000", "--fault", "timeout:2"], "must be a rate from 0 to 1"),
        (["--port", "8000", "--fault", "timeout:nan"], "must be a rate from 0 to 1"),
        (["--port", "8000", "--fault", "timeout:lots"], "must be a number"),
        (["--port", "8000", "--fault", "5xx:0.1", "--fault", "5xx:0.2"], "more than once"),
        (["--port", "8000", "--fault", "5xx:0.6", "--fault", "html:0.6"], "add up to more"),
        (["--port", "8000", "--fail-rate", "1.5"], "must be a rate from 0 to 1"),
        (["--port", "8000", "--fail-rate", "0.6", "--partial-rate", "0.6"], "add up to more"),
        (["--port", "8000", "--complete-after", "-1"], "0 or more"),
        (["--port", "8000", "--complete-after", "inf"], "0 or more"),
        (["--port", "8000", "--latency-ms", "-5"], "--latency-ms"),
        (["--port", "8000", "--balance", "plenty"], "must be a decimal amount"),
        (["--port", "8000", "--currency", "dollars"], "three-letter code"),
        (["--port", "8000", "--key", " "], "api_key must not be empty"),
    ],
)
def test_bad_arguments_fail_with_one_readable_line(monkeypatch, args, message):
    monkeypatch.setattr(sandbox_cli, "run_simple", pytest.fail)
    result = CliRunner().invoke(sandbox_provider_command, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]


def test_the_command_prints_its_address_and_key_and_serves(monkeypatch):
    served = {}

    def run_simple(host, port, app, threaded):
        served.update(host=host, port=port, app=app, threaded=threaded)

    monkeypatch.setattr(sandbox_cli, "run_simple", run_simple)
    args = ["--port", "8123", "--services", "120", "--fault", "timeout:0.05", "--fault", "5XX:0.1",
            "--no-ref", "--seed", "9", "--complete-after", "2.5", "--latency-ms", "40"]  # fmt: skip
    result = CliRunner().invoke(sandbox_provider_command, args)
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/api/v2" in result.output
    assert "sandbox-key" in result.output
    assert served["threaded"] is True and served["port"] == 8123
    options = served["app"].extensions["sandbox"].options
    assert options == SandboxOptions(
        services=120,
        latency_ms=40,
        faults={"timeout": 0.05, "5xx": 0.1},
        complete_after=2.5,
        honour_ref=False,
        seed=9,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_it_serves_over_http_for_real():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-c",
        "from app.sandbox.cli import sandbox_provider_command; sandbox_provider_command()",
        "--port", str(port), "--complete-after", "0", "--partial-rate", "0",
        "--timeout-sleep", "3",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, process.communicate()
                try:
                    services = requests.get(
                        f"{base}/api/v2", params={"key": KEY, "action": "services"}, timeout=2
                    ).json()
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline, "the sandbox did not start"
                    time.sleep(0.1)
            service = next(s for s in services if s["type"] == "Default")
            order = {"key": KEY, "action": "add", "service": service["service"], "link": LINK,
                     "quantity": service["min"], "ref": "http-1"}  # fmt: skip
            placed = requests.post(f"{base}/api/v2", data=order, timeout=5).json()
            assert placed == {"order": 10001}
            status = requests.post(
                f"{base}/api/v2",
                json={"key": KEY, "action": "status", "order": placed["order"]},
                timeout=5,
            ).json()
            assert status["status"] == "Completed" and status["currency"] == "USD"

            requests.post(f"{base}/__sandbox/settings", json={"faults": {"timeout": 1}}, timeout=5)
            with pytest.raises(requests.Timeout):
                requests.post(f"{base}/api/v2", data={**order, "ref": "http-2"}, timeout=0.5)
            requests.post(f"{base}/__sandbox/settings", json={"faults": {}}, timeout=5)
            listing = requests.get(f"{base}/__sandbox/orders", timeout=5).json()
            assert listing["count"] == 2  # the timed-out order exists all the same
            resent = requests.post(f"{base}/api/v2", data={**order, "ref": "http-2"}, timeout=5)
            assert resent.json() == {"order": 10002}
        finally:
            process.terminate()
            stdout, _ = process.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/api/v2" in stdout
    assert "API key: sandbox-key" in stdout
