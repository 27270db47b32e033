"""The provider client against the sandbox provider over real HTTP: every action, every fault."""

import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.providers import client as client_module
from app.providers.client import Outcome, ProviderClient, close_sessions, shared_session
from app.providers.models import Provider


@pytest.fixture
def client(sandbox):
    return ProviderClient(sandbox.url, sandbox.key, timeout=1.5, honours_ref=True)


def default_service(client) -> str:
    return next(s for s in client.services().data if s.type == "Default").external_id


def place(client, service, link="https://instagram.com/p/abc", quantity=100, **extra):
    return client.add(service, link=link, quantity=quantity, **extra)


def test_services(client):
    reply = client.services()
    assert reply.ok
    services = reply.data
    assert len(services) == 50
    assert {s.type for s in services} >= {"Default", "Package", "Custom Comments", "Poll"}
    assert all(isinstance(s.rate, Decimal) and s.rate > 0 for s in services)
    assert all(s.min_quantity <= s.max_quantity for s in services)


def test_add_status_and_completion(client, sandbox):
    service = default_service(client)
    reply = place(client, service)
    assert reply.ok, reply.error
    order = reply.data
    status = client.status(order)
    assert status.ok and status.data.status == "Pending" and status.data.known
    sandbox.admin("clock", {"advance": 3600})
    final = client.status(order).data
    assert final.status in ("Completed", "Partial", "Canceled")
    assert final.charge is not None and final.currency == "USD"


def test_every_order_type_can_be_placed(client):
    examples = {
        "Package": {"link": "https://t.me/chan"},
        "Custom Comments": {
            "link": "https://instagram.com/p/x",
            "comments": "\n".join(f"comment {n}" for n in range(20)),
        },
        "Poll": {"link": "https://t.me/chan/5", "quantity": 100, "answer_number": 2},
        "Subscriptions": {"username": "budi", "min": 100, "max": 200, "delay": 30},
    }
    services = client.services().data
    for type_name, params in examples.items():
        service = next(s for s in services if s.type == type_name)
        if "quantity" in params:
            params = {**params, "quantity": max(params["quantity"], service.min_quantity)}
        reply = client.add(service.external_id, **params)
        assert reply.ok, (type_name, reply.error)


def test_rejections_carry_the_upstream_message(client):
    service = default_service(client)
    bad_link = place(client, service, link="not a link")
    assert bad_link.outcome is Outcome.REJECTED and bad_link.error
    unknown = place(client, "999999")
    assert unknown.outcome is Outcome.REJECTED
    wrong_key = ProviderClient(client.api_url, "wrong-key", timeout=2).balance()
    assert wrong_key.outcome is Outcome.REJECTED and "key" in wrong_key.error.lower()


def test_ref_returns_the_same_order_when_honoured(client, sandbox):
    service = default_service(client)
    first = place(client, service, ref="pasok-42")
    again = place(client, service, ref="pasok-42")
    assert first.data == again.data
    assert len(sandbox.orders(ref="pasok-42")) == 1


def test_ref_is_not_sent_to_providers_that_do_not_honour_it(sandbox):
    client = ProviderClient(sandbox.url, sandbox.key, timeout=2, honours_ref=False)
    service = default_service(client)
    place(client, service, ref="pasok-43")
    assert sandbox.orders(ref="pasok-43") == []
    assert len(sandbox.orders()) == 1


def test_multi_status_in_batches_of_a_hundred(client):
    service = default_service(client)
    ids = [place(client, service, link=f"https://x.com/p/{n}").data for n in range(3)]
    reply = client.statuses([*ids, "424242"])
    assert reply.ok
    assert all(reply.data[i].status == "Pending" for i in ids)
    assert reply.data["424242"] == "Incorrect order ID"
    batches = list(client.statuses_in_batches([*ids] * 70))
    assert [len(batch) for batch, _ in batches] == [100, 100, 10]
    assert all(r.ok for _, r in batches)


def test_refill_and_cancel(client, sandbox):
    services = client.services().data
    refillable = next(s for s in services if s.type == "Default" and s.refill)
    cancellable = next(s for s in services if s.type == "Default" and s.cancel)
    order = place(client, refillable.external_id, quantity=refillable.min_quantity).data
    sandbox.admin("clock", {"advance": 3600})
    refill = client.refill(order)
    if refill.ok:
        status = client.refill_status(refill.data)
        assert status.ok and status.data in ("Pending", "In progress", "Completed", "Rejected")
        multi = client.refill_statuses([refill.data])
        assert multi.ok and refill.data in multi.data
    else:
        assert refill.outcome is Outcome.REJECTED
    multi_refill = client.refills([order, "424242"])
    assert multi_refill.ok and multi_refill.data["424242"].startswith("error")
    to_cancel = place(client, cancellable.external_id, quantity=cancellable.min_quantity).data
    cancel = client.cancel([to_cancel, "424242"])
    assert cancel.ok and cancel.data[to_cancel] == "1" and cancel.data["424242"].startswith("error")


def test_balance(client):
    reply = client.balance()
    assert reply.ok and reply.data.amount == Decimal("10000") and reply.data.currency == "USD"


def test_a_timeout_after_the_order_was_accepted_is_ambiguous(real_time_sandbox):
    sandbox = real_time_sandbox
    client = ProviderClient(sandbox.url, sandbox.key, timeout=1.0, honours_ref=True)
    service = default_service(client)
    sandbox.admin("settings", {"faults": {"timeout": 1.0}})
    reply = place(client, service, ref="pasok-77")
    assert reply.outcome is Outcome.AMBIGUOUS
    assert len(sandbox.orders(ref="pasok-77")) == 1  # it exists upstream nonetheless
    sandbox.admin("settings", {"faults": {}})
    again = place(client, service, ref="pasok-77")  # safe: the upstream honours ref
    assert again.ok and len(sandbox.orders(ref="pasok-77")) == 1


@pytest.mark.parametrize("fault", ["5xx", "html"])
def test_5xx_and_html_pages_are_ambiguous_and_place_nothing(client, sandbox, fault):
    service = default_service(client)
    sandbox.admin("settings", {"faults": {fault: 1.0}})
    reply = place(client, service)
    assert reply.outcome is Outcome.AMBIGUOUS
    assert sandbox.orders() == []


def test_active_order_with_this_link_is_a_rejection(client, sandbox):
    service = default_service(client)
    sandbox.admin("settings", {"faults": {"active_order": 1.0}})
    reply = place(client, service)
    assert reply.outcome is Outcome.REJECTED and "active order" in reply.error.lower()


def test_every_call_has_a_timeout(real_time_sandbox):
    real_time_sandbox.admin("settings", {"latency_ms": 2000})
    reply = ProviderClient(real_time_sandbox.url, real_time_sandbox.key, timeout=0.5).balance()
    assert reply.outcome is Outcome.AMBIGUOUS
    assert "Timeout" in reply.error


# --- one session per provider per process ----------------------------------------------------


@dataclass
class KeepAliveUpstream:
    """A minimal upstream that keeps connections alive (the sandbox's server closes each one):
    it answers `balance`, sets a cookie, and notes each connection and each Cookie header."""

    url: str
    connections: list = field(default_factory=list)
    cookies: list = field(default_factory=list)


@pytest.fixture
def keep_alive_upstream():
    upstream = KeepAliveUpstream("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            upstream.connections.append(self.client_address)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            upstream.cookies.append(self.headers.get("Cookie"))
            body = b'{"balance": "1.00", "currency": "USD"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Set-Cookie", "panel_session=abc; Path=/")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    upstream.url = f"http://127.0.0.1:{server.server_port}/api/v2"
    yield upstream
    close_sessions()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def provider_at(url: str) -> Provider:
    return Provider(name="p", api_url=url, api_key="k", timeout_seconds=2.0, honours_ref=False)


def test_a_providers_clients_share_one_session_per_process():
    first = provider_at("http://127.0.0.1:9/api/v2").client()
    again = provider_at("http://127.0.0.1:9/api/v2").client()
    other = provider_at("http://127.0.0.1:10/api/v2").client()
    assert first.session is again.session
    assert other.session is not first.session
    assert (first.timeout, first.honours_ref) == (2.0, False)
    close_sessions()


def test_calls_to_a_provider_reuse_one_kept_alive_connection(keep_alive_upstream, monkeypatch):
    monkeypatch.setattr(client_module, "IDLE_SECONDS", 60.0)
    for _ in range(3):
        assert provider_at(keep_alive_upstream.url).client().balance().ok
    assert len(keep_alive_upstream.connections) == 1


def test_a_connection_idle_too_long_is_not_reused(keep_alive_upstream, monkeypatch):
    monkeypatch.setattr(client_module, "IDLE_SECONDS", 0.0)
    for _ in range(3):
        assert provider_at(keep_alive_upstream.url).client().balance().ok
    assert len(keep_alive_upstream.connections) == 3


def test_a_shared_session_keeps_no_cookies(keep_alive_upstream):
    for _ in range(2):
        assert provider_at(keep_alive_upstream.url).client().balance().ok
    assert keep_alive_upstream.cookies == [None, None]


def test_a_forked_child_never_uses_its_parents_session():
    url = "http://127.0.0.1:9/api/v2"
    parents = shared_session(url)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running pytest's teardown
        try:
            mine = shared_session(url)
            os.write(write_end, b"%d%d" % (mine is not parents, mine is shared_session(url)))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as child:
        answer = child.read()
    os.waitpid(pid, 0)
    assert answer == b"11"  # a session of its own, then reused within the child
    assert shared_session(url) is parents
    close_sessions()


def test_a_process_that_forked_without_the_hook_also_starts_afresh(monkeypatch):
    url = "http://127.0.0.1:9/api/v2"
    parents = shared_session(url)
    monkeypatch.setattr(client_module._pool, "pid", -1)  # as seen from another process
    assert shared_session(url) is not parents
    close_sessions()
