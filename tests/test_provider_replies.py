"""How the provider client reads upstream replies: tolerant parsing, and every outcome kind."""

import json
from decimal import Decimal

import pytest

from app.providers import client as api
from app.providers.client import Outcome, interpret, loopback_for_localhost


def body(data) -> bytes:
    return json.dumps(data).encode() if not isinstance(data, bytes) else data


@pytest.mark.parametrize(
    "status, raw, outcome, error",
    [
        (200, {"error": "Incorrect service ID"}, Outcome.REJECTED, "Incorrect service ID"),
        (200, {"errors": ["Link is invalid", "Quantity too low"]}, Outcome.REJECTED,
         "Link is invalid; Quantity too low"),
        (200, {"errors": {"link": "bad"}}, Outcome.REJECTED, "link: bad"),
        (400, {"error": "Invalid API key"}, Outcome.REJECTED, "Invalid API key"),
        (502, b"<html>Bad gateway</html>", Outcome.AMBIGUOUS, "HTTP 502"),
        (500, {"error": "oops"}, Outcome.AMBIGUOUS, "HTTP 500"),
        (200, b"<!DOCTYPE html><h1>Cloudflare</h1>", Outcome.AMBIGUOUS, "unreadable reply"),
        (200, b"", Outcome.AMBIGUOUS, "unreadable reply"),
        (404, b"not found", Outcome.AMBIGUOUS, "unreadable reply"),
        (404, {"message": "no route"}, Outcome.AMBIGUOUS, "HTTP 404"),
        (200, {"order": None}, Outcome.AMBIGUOUS, "unexpected reply shape"),
        (200, {"unexpected": 1}, Outcome.AMBIGUOUS, "unexpected reply shape"),
    ],
)  # fmt: skip
def test_outcomes_of_an_add(status, raw, outcome, error):
    reply = interpret(status, body(raw), lambda d: api._order_id(api._field(d, "order")))
    assert reply.outcome is outcome
    assert error in reply.error


@pytest.mark.parametrize("order", [23501, "23501", " 23501 "])
def test_order_ids_as_numbers_or_strings(order):
    reply = interpret(200, body({"order": order}), lambda d: api._order_id(api._field(d, "order")))
    assert reply.ok and reply.data == "23501"


def test_a_bom_is_ignored():
    raw = "\ufeff" + json.dumps({"balance": "100.84292", "currency": "USD"})
    reply = interpret(200, raw.encode("utf-8"), api._parse_balance)
    assert reply.ok and reply.data.amount == Decimal("100.84292")


def test_numbers_are_read_exactly_whether_strings_or_numbers():
    raw = b'{"balance": 100.84292000000001, "currency": "USD"}'
    assert interpret(200, raw, api._parse_balance).data.amount == Decimal("100.84292000000001")
    services = [
        {"service": 1, "name": "A", "type": "Default", "category": "C", "rate": "0.90",
         "min": "50", "max": 10000, "refill": True, "cancel": "1", "dripfeed": 0},
        {"service": "2", "name": "B", "category": "C", "rate": 1.2, "min": 10, "max": "5000",
         "refill": "false", "cancel": False, "dripfeed": "true"},
    ]  # fmt: skip
    reply = interpret(200, body(services), api._parse_services)
    first, second = reply.data
    assert (first.external_id, first.rate, first.min_quantity, first.max_quantity) == (
        "1",
        Decimal("0.90"),
        50,
        10000,
    )
    assert first.refill and first.cancel and not first.dripfeed
    assert second.type == "Default" and second.rate == Decimal("1.2")
    assert not second.refill and second.dripfeed


@pytest.mark.parametrize(
    "word, name, known",
    [
        ("Pending", "Pending", True),
        ("In progress", "In progress", True),
        ("Inprogress", "In progress", True),
        ("Processing", "Processing", True),
        ("Completed", "Completed", True),
        ("Complete", "Completed", True),
        ("Partial", "Partial", True),
        ("Canceled", "Canceled", True),
        ("Cancelled", "Canceled", True),
        ("CANCELLED", "Canceled", True),
        ("Refunded", "Refunded", False),
    ],
)
def test_status_spellings(word, name, known):
    reply = interpret(
        200,
        body({"charge": 0.27819, "start_count": "3572", "status": word, "remains": 157,
              "currency": "USD"}),
        api._parse_status,
    )  # fmt: skip
    assert reply.ok
    assert (reply.data.status, reply.data.known) == (name, known)
    assert reply.data.charge == Decimal("0.27819")
    assert (reply.data.start_count, reply.data.remains) == (3572, 157)


def test_multi_status_keeps_per_order_errors():
    raw = {"1": {"status": "Completed", "charge": "1", "remains": "0"},
           "9": {"error": "Incorrect order ID"}}  # fmt: skip
    reply = interpret(200, body(raw), api._parse_status_map)
    assert reply.ok
    assert reply.data["1"].status == "Completed"
    assert reply.data["9"] == "Incorrect order ID"


def test_multi_refill_and_cancel_replies():
    raw = [{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": "Refill not allowed"}}]
    assert interpret(200, body(raw), api._parse_per_order("refill")).data == {
        "1": "1",
        "3": "error: Refill not allowed",
    }
    raw = [{"order": 9, "cancel": {"error": "Cannot cancel"}}, {"order": 2, "cancel": 1}]
    assert interpret(200, body(raw), api._parse_per_order("cancel")).data == {
        "9": "error: Cannot cancel",
        "2": "1",
    }


@pytest.mark.parametrize(
    "url, target, host",
    [
        ("http://acme.localhost:5000/api/v2", "http://127.0.0.1:5000/api/v2",
         "acme.localhost:5000"),
        ("http://localhost/api/v2", "http://127.0.0.1/api/v2", "localhost"),
        ("https://panel.example.com/api/v2", "https://panel.example.com/api/v2", None),
    ],
)  # fmt: skip
def test_localhost_names_reach_loopback(url, target, host):
    new_url, headers = loopback_for_localhost(url)
    assert new_url == target
    assert headers.get("Host") == host


def test_more_than_a_hundred_ids_per_call_is_refused():
    client = api.ProviderClient("http://127.0.0.1:9/api/v2", "k")
    with pytest.raises(ValueError, match="between 1 and 100"):
        client.statuses(range(101))
    batches = [len(batch) for batch, _ in client.statuses_in_batches([])]
    assert batches == []


def test_connection_refused_is_not_sent():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reply = api.ProviderClient(f"http://127.0.0.1:{port}/api/v2", "k", timeout=2).balance()
    assert reply.outcome is Outcome.NOT_SENT


def test_an_unknown_host_is_not_sent():
    reply = api.ProviderClient("http://no-such-host.invalid/api/v2", "k", timeout=2).balance()
    assert reply.outcome is Outcome.NOT_SENT
