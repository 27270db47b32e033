"""Chaining: a Pasok panel's API v2 as another panel's upstream, so panels sit on panels.

One app and one database hold two panels. beta sells a service delivered by the sandbox
provider; beta's API (as one of beta's customers) is registered as a provider that honours
`ref`, and alpha sells a service routed to it. Between alpha and beta sits a hop that keeps the
reply to the first `add` to itself: beta has placed the order, alpha hears nothing, times out,
marks the order `unknown` and sends it again with the same `ref`, and beta answers with the
order it already has. Real `pasok worker` processes forward both panels' orders and run both
status syncs; the order ends Completed everywhere, placed once at each hop and charged once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.wrappers import Request, Response

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.catalog.models import PUBLISHED, Category, Service, ServiceRoute
from app.config import PROJECT_ROOT
from app.extensions import db
from app.ledger import JournalEntry, balance, verify_ledger, wallet_of
from app.orders.models import COMPLETED, IN_PROGRESS, Order
from app.providers.models import Provider, ProviderService
from tenants.context import across_tenants
from tests.api_support import new_key
from tests.conftest import serve_in_thread
from tests.ordering import fund, fund_tenant
from tests.test_forwarding import wait_for
from tests.test_workers import PASOK
from workers.queues import FORWARD, STATUS
from workers.status_jobs import enqueue_status_batch

D = Decimal
LINK = "https://instagram.com/p/chained"
SANDBOX_SERVICE = "5"  # Default, 100..10000
FUNDS = "100"
# alpha's wait for beta's answer: short, so the swallowed reply times out quickly.
HOP_TIMEOUT = 1.0


def serve(wsgi_app) -> tuple[int, callable]:
    """Serve `wsgi_app` on a free port of 127.0.0.1; returns the port and a stopper."""
    served = serve_in_thread(wsgi_app, "chained")
    return next(served), lambda: next(served, None)


class SwallowFirstAdd:
    """A hop between two panels: every call goes through and every reply comes back, except
    the reply to the first `add`, which it keeps until released. The panel behind it has placed
    the order; the caller sees a timeout after sending, the ambiguous outcome."""

    def __init__(self, target_port: int):
        self.target = f"http://127.0.0.1:{target_port}"
        self.lock = threading.Lock()
        self.adds: list[bytes] = []
        self.swallowed = threading.Event()
        self.released = threading.Event()

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with requests.Session() as session:
            reply = session.request(
                request.method,
                self.target + request.full_path.rstrip("?"),
                data=body,
                headers={"Host": request.host, "Content-Type": request.content_type or ""},
                timeout=30,
            )
        swallow = False
        if parse_qs(body.decode()).get("action") == ["add"]:
            with self.lock:
                self.adds.append(reply.content)
                swallow = len(self.adds) == 1
        if swallow:
            self.swallowed.set()
            self.released.wait(timeout=60)
            response = Response("gateway timeout", status=504)
        else:
            response = Response(
                reply.content, status=reply.status_code, content_type=reply.headers["Content-Type"]
            )
        return response(environ, start_response)


def api(port: int, host: str, key: str, **params) -> dict:
    """A call to a panel's API v2, as a script would make it."""
    reply = requests.post(
        f"http://127.0.0.1:{port}/api/v2",
        data={"key": key, **params},
        headers={"Host": host},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text[:300]
    return reply.json()


@pytest.fixture
def worker(app, worker_env) -> Iterator[subprocess.Popen]:
    """One `pasok worker forward status`, for both panels' forwarding and status syncs; started
    after `app` has emptied the database and Redis."""
    process = subprocess.Popen(
        [*PASOK, "worker", FORWARD, STATUS],
        cwd=PROJECT_ROOT,
        env=worker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


@dataclass
class Chain:
    """alpha on beta on the sandbox, served over HTTP with the hop between alpha and beta."""

    app: object
    port: int  # the panels' own server
    hop: SwallowFirstAdd
    alpha: int
    beta: int
    anna: int  # alpha's customer
    reseller: int  # alpha's account at beta
    anna_key: str
    sandbox_provider: int
    beta_provider: int
    beta_service: int  # sold by beta, delivered by the sandbox
    alpha_service: int  # sold by alpha, delivered by beta

    def order(self, order_id: int) -> Order:
        with self.app.app_context(), across_tenants():
            order = db.session.get(Order, order_id)
            db.session.expunge(order)
            return order

    def orders_of(self, tenant_id: int) -> list[Order]:
        with self.app.app_context(), across_tenants():
            orders = db.session.scalars(select(Order).where(Order.tenant_id == tenant_id)).all()
            db.session.expunge_all()
            return list(orders)

    def status(self, order_id: int) -> str:
        return self.order(order_id).status

    def wallet(self, customer_id: int) -> Decimal:
        with self.app.app_context(), across_tenants():
            return balance(wallet_of(db.session.get(User, customer_id)))

    def charges(self, order_id: int) -> int:
        with self.app.app_context(), across_tenants():
            return db.session.scalar(
                select(func.count(JournalEntry.id)).where(
                    JournalEntry.idempotency_key == f"order-{order_id}"
                )
            )

    def audits(self, action: str, order_id: int) -> list[AuditEntry]:
        with self.app.app_context(), across_tenants():
            return db.session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == action, AuditEntry.target == f"order:{order_id}"
                )
            ).all()


@pytest.fixture
def chain(app, make, sandbox) -> Iterator[Chain]:
    alpha, beta = make.tenant("alpha"), make.tenant("beta")
    anna = make.customer(alpha, "anna@example.com")
    reseller = make.customer(beta, "reseller@alpha.example.com")
    with app.app_context(), across_tenants():
        upstream = Provider(
            name="sandbox", api_url=sandbox.url, api_key=sandbox.key, honours_ref=True,
            timeout_seconds=5,
        )  # fmt: skip
        service = Service(
            category=Category(name="Instagram", position=1), name="Views", type="Default",
            min_quantity=100, max_quantity=10_000, status=PUBLISHED,
        )  # fmt: skip
        route = ProviderService(
            provider=upstream, external_id=SANDBOX_SERVICE, name="views", category="x",
            type="Default", rate=D("1.00"), min_quantity=100, max_quantity=10_000,
        )  # fmt: skip
        db.session.add(ServiceRoute(service=service, provider_service=route))
        db.session.commit()
        sandbox_provider, beta_service = upstream.id, service.id
    for customer in (anna, reseller):
        fund(app, customer, FUNDS)
    for tenant in (alpha, beta):
        fund_tenant(app, tenant, FUNDS)
    sandbox.admin("settings", {"partial_rate": 0})  # every order ends Completed

    port, stop_panels = serve(app)
    hop = SwallowFirstAdd(port)
    hop_port, stop_hop = serve(hop)
    try:
        # Registered as an operator would: beta's API, through the hop, honouring ref.
        cli = app.test_cli_runner()
        added = cli.invoke(
            args=["provider", "add", "beta-panel",
                  "--url", f"http://beta.localhost:{hop_port}/api/v2",
                  "--key", new_key(app, beta, reseller, "alpha's supply"),
                  "--honours-ref", "--timeout", str(HOP_TIMEOUT)]
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        synced = cli.invoke(args=["provider", "sync", "beta-panel", "--publish"])
        assert synced.exit_code == 0, synced.output
        assert "1 added" in synced.output, synced.output
        with app.app_context(), across_tenants():
            beta_provider = db.session.scalar(
                select(Provider.id).where(Provider.name == "beta-panel")
            )
            [(alpha_service, external_id)] = db.session.execute(
                select(ServiceRoute.service_id, ProviderService.external_id)
                .join(ProviderService, ServiceRoute.provider_service_id == ProviderService.id)
                .where(ProviderService.provider_id == beta_provider)
            ).all()
            assert external_id == str(beta_service)
        yield Chain(
            app=app, port=port, hop=hop, alpha=alpha, beta=beta, anna=anna, reseller=reseller,
            anna_key=new_key(app, alpha, anna), sandbox_provider=sandbox_provider,
            beta_provider=beta_provider, beta_service=beta_service, alpha_service=alpha_service,
        )  # fmt: skip
    finally:
        hop.released.set()
        stop_hop()
        stop_panels()


def test_an_order_through_two_panels_with_a_timeout_between_them_is_placed_once(
    chain, worker, sandbox
):
    placed = api(
        chain.port, "alpha.localhost", chain.anna_key,
        action="add", service=chain.alpha_service, link=LINK, quantity=1000,
    )  # fmt: skip
    assert "order" in placed, placed
    order_id = placed["order"]

    # alpha's first `add` reached beta, whose reply never came back: unknown, then sent again
    # with the same ref; beta answered with the order it already had.
    wait_for(lambda: chain.status(order_id) == IN_PROGRESS, worker)
    assert chain.hop.swallowed.is_set()
    [beta_order] = chain.orders_of(chain.beta)
    assert [a.details["next"] for a in chain.audits("order.unknown", order_id)] == [
        "resend with the same ref"
    ]
    assert [json.loads(reply) for reply in chain.hop.adds] == [{"order": beta_order.id}] * 2
    order = chain.order(order_id)
    assert (order.attempts, order.provider_id, order.external_id) == (
        2,
        chain.beta_provider,
        str(beta_order.id),
    )
    assert (beta_order.customer_id, beta_order.ref, beta_order.quantity) == (
        chain.reseller,
        str(order_id),
        1000,
    )

    # beta forwards its order to the sandbox once, with its own id as ref.
    wait_for(lambda: chain.status(beta_order.id) == IN_PROGRESS, worker)
    [upstream] = sandbox.orders()
    assert (upstream["ref"], upstream["link"], upstream["quantity"]) == (
        str(beta_order.id),
        LINK,
        1000,
    )
    assert chain.order(beta_order.id).external_id == str(upstream["id"])

    # The sandbox delivers; beta's status sync sees it, then alpha's sees it at beta.
    sandbox.admin("clock", {"advance": 3600})
    with chain.app.app_context():
        enqueue_status_batch(chain.sandbox_provider, [beta_order.id])
    wait_for(lambda: chain.status(beta_order.id) == COMPLETED, worker)
    with chain.app.app_context():
        enqueue_status_batch(chain.beta_provider, [order_id])
    wait_for(lambda: chain.status(order_id) == COMPLETED, worker)

    assert (
        api(chain.port, "alpha.localhost", chain.anna_key, action="status", order=order_id)[
            "status"
        ]
        == "Completed"
    )
    assert len(chain.orders_of(chain.beta)) == 1
    assert len(chain.orders_of(chain.alpha)) == 1
    assert len(sandbox.orders()) == 1
    with chain.app.app_context(), across_tenants():
        report = verify_ledger()
        assert report.ok, report
    # Each panel's customer was charged once, the price its panel quoted.
    order, beta_order = chain.order(order_id), chain.order(beta_order.id)
    assert (chain.charges(order_id), chain.charges(beta_order.id)) == (1, 1)
    assert chain.wallet(chain.anna) == D(FUNDS) - order.charge
    assert chain.wallet(chain.reseller) == D(FUNDS) - beta_order.charge
    assert (order.remains, beta_order.remains) == (0, 0)
