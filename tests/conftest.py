"""Fixtures: a migrated database (PostgreSQL when PASOK_TEST_DATABASE_URL is set, else SQLite),
Redis (PASOK_TEST_REDIS_URL, else in-process fakeredis), an app, and factories for tenants,
users and hosts. With PASOK_REQUIRE_SERVICES=1 a missing service fails the run."""

from __future__ import annotations

import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis
from sqlalchemy import create_engine, make_url, select, text

from app import create_app
from app.accounts.models import CUSTOMER, OPERATOR, STAFF
from app.config import database_url
from app.extensions import db

REQUIRE_SERVICES = os.environ.get("PASOK_REQUIRE_SERVICES") == "1"
TEST_DATABASE_URL = os.environ.get("PASOK_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("PASOK_TEST_REDIS_URL")
PASSWORD = "correct-horse-7"


def service_missing(reason: str):
    """Skip locally; fail when the run requires its services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"PASOK_REQUIRE_SERVICES=1: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items):
    """Tests built on a `postgres_*` fixture carry the `postgres` marker, so a run on SQLite can
    leave them out (`-m "not postgres"`) instead of skipping them."""
    for item in items:
        if any(name.startswith("postgres_") for name in item.fixturenames):
            item.add_marker(pytest.mark.postgres)


def pytest_sessionstart(session):
    if REQUIRE_SERVICES and not (TEST_DATABASE_URL and TEST_REDIS_URL):
        raise pytest.UsageError(
            "PASOK_REQUIRE_SERVICES=1 needs PASOK_TEST_DATABASE_URL and PASOK_TEST_REDIS_URL"
        )


def create_postgres_database(server_url: str) -> tuple[str, callable]:
    """A fresh database with a unique name on the server of `server_url`, and its dropper."""
    url = make_url(database_url(server_url))
    name = f"pasok_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    if TEST_DATABASE_URL:
        uri, drop = create_postgres_database(TEST_DATABASE_URL)
        yield uri
        drop()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'pasok.sqlite3'}"


@pytest.fixture(scope="session")
def redis_url():
    if not TEST_REDIS_URL:
        return "fakeredis://"

    try:
        with redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"PASOK_TEST_REDIS_URL {TEST_REDIS_URL} does not answer: {exc}", pytrace=False)
    return TEST_REDIS_URL


@pytest.fixture
def real_redis():
    """The real Redis: RQ's workers, unique job ids and rate limits need one (fakeredis
    cannot serve them)."""
    if not TEST_REDIS_URL:
        service_missing("PASOK_TEST_REDIS_URL is not set (RQ needs a real Redis)")
    return TEST_REDIS_URL


@pytest.fixture
def worker_env(real_redis, database_uri, base_config) -> dict:
    """What a `pasok` process (worker, cron) needs: the test database, the real Redis and the
    tests' secret (providers' keys are encrypted with it), with retries due at once and none
    of this machine's own deployment settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PASOK_ENV", "DATABASE_URL", "REDIS_URL", "PASOK_PLATFORM_DOMAIN",
                       "SECRET_KEY", "PASOK_SECRET_KEYS")
    }  # fmt: skip
    env.update(
        DATABASE_URL=database_uri,
        REDIS_URL=real_redis,
        SECRET_KEY=base_config["SECRET_KEY"],
        PASOK_FORWARD_BACKOFF_SECONDS="0",
    )
    return env


@pytest.fixture(scope="session")
def base_config(database_uri, redis_url, tmp_path_factory):
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "REDIS_URL": redis_url,
        "PASOK_PLATFORM_DOMAIN": "localhost",
        "PASOK_MAIL_BACKEND": "file",
        "PASOK_MAIL_DIR": str(tmp_path_factory.mktemp("mail")),
        "PASOK_AUTH_RATE_LIMIT": "1000 per minute",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture(scope="session")
def migrated(base_config):
    """Run the migrations once per test session: the schema the tests see is the migrated one."""
    from flask_migrate import upgrade

    app = create_app(base_config)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return True


@pytest.fixture
def make_app(migrated, base_config):
    """Build an app on the test database with extra settings."""
    apps = []

    def factory(**overrides):
        app = create_app({**base_config, **overrides})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        # Closed now, not whenever the collector finds the app: a socket finalized before its
        # connection is an "unclosed socket" warning, which -W error turns into a failure.
        client = app.extensions["pasok_redis"]
        if isinstance(client, redis.Redis):  # some tests put a stand-in there
            client.connection_pool.disconnect()


def empty_database(app) -> None:
    with app.app_context():
        tables = list(reversed(db.metadata.sorted_tables))
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(table.delete())
        app.extensions["pasok_redis"].flushdb()
        app.extensions["pasok_resolver"].invalidate()


@pytest.fixture
def app(make_app):
    app = make_app()
    empty_database(app)
    return app


@contextmanager
def watch_balance(app, account_id: int):
    """Sample a ledger account's cached balance from another connection while the block runs;
    yields the list of balances seen."""
    from app.ledger.models import LedgerAccount
    from tenants.context import across_tenants

    seen: list = []
    done = threading.Event()

    def watch() -> None:
        with app.app_context(), across_tenants():
            while not done.is_set():
                seen.append(
                    db.session.scalar(
                        select(LedgerAccount.balance).where(LedgerAccount.id == account_id)
                    )
                )
                db.session.rollback()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join(timeout=30)


@dataclass
class HostClient:
    """A test client bound to one host, as a browser on that site is."""

    client: object
    host: str

    def get(self, path, **kwargs):
        return self.client.get(path, base_url=f"http://{self.host}", **kwargs)

    def post(self, path, **kwargs):
        return self.client.post(path, base_url=f"http://{self.host}", **kwargs)

    def cookie(self, name, path="/"):
        return self.client.get_cookie(name, domain=self.host, path=path)


@pytest.fixture
def browser_for(app):
    """`browser_for("acme.localhost")`: a fresh cookie jar visiting that host."""

    def factory(host: str, client=None) -> HostClient:
        return HostClient(client or app.test_client(), host)

    return factory


@dataclass
class Factories:
    app: object

    def tenant(self, slug="acme", *, theme="base", currency="USD", locale=None, owner_email=None):
        from tenants.context import across_tenants
        from tenants.provisioning import create_tenant

        with self.app.app_context(), across_tenants():
            tenant = create_tenant(
                slug=slug,
                name=slug.title() + " Panel",
                owner_email=owner_email or f"owner@{slug}.example.com",
                owner_password=PASSWORD,
                theme=theme,
                currency=currency,
                locale=locale,
            )
            db.session.commit()
            return tenant.id

    def user(self, kind, tenant_id=None, email=None, role=None, password=PASSWORD):
        from app.accounts.services import create_user
        from tenants.context import across_tenants

        with self.app.app_context(), across_tenants():
            user = create_user(
                kind=kind,
                tenant_id=tenant_id,
                email=email or f"{kind}-{uuid.uuid4().hex[:6]}@example.com",
                password=password,
                role=role,
            )
            db.session.commit()
            return user.id

    def customer(self, tenant_id, email="alice@example.com"):
        return self.user(CUSTOMER, tenant_id, email)

    def staff(self, tenant_id, email="staff@example.com", role="admin"):
        return self.user(STAFF, tenant_id, email, role=role)

    def operator(self, email="op@example.com"):
        return self.user(OPERATOR, None, email)


@pytest.fixture
def make(app):
    return Factories(app)


def sign_in(client: HostClient, path: str, email: str, password: str = PASSWORD):
    return client.post(path, data={"email": email, "password": password})


@dataclass
class LiveSandbox:
    """A sandbox provider served over real HTTP on 127.0.0.1, with a hand-driven clock."""

    url: str
    key: str
    clock: object

    def admin(self, path: str, payload: dict | None = None):
        import requests

        base = self.url.removesuffix("/api/v2")
        if payload is None:
            return requests.get(f"{base}/__sandbox/{path}", timeout=5).json()
        return requests.post(f"{base}/__sandbox/{path}", json=payload, timeout=5).json()

    def orders(self, **filters) -> list[dict]:
        import requests

        base = self.url.removesuffix("/api/v2")
        return requests.get(f"{base}/__sandbox/orders", params=filters, timeout=5).json()["orders"]


def serve_sandbox(clock):
    """Serve a sandbox provider on a free port until the generator is closed."""
    import threading

    from werkzeug.serving import make_server

    from app.sandbox import SandboxOptions, create_sandbox_app

    server = make_server(
        "127.0.0.1",
        0,
        create_sandbox_app(SandboxOptions(seed=7, timeout_sleep_s=3.0), clock=clock),
        threaded=True,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveSandbox(f"http://127.0.0.1:{server.server_port}/api/v2", "sandbox-key", clock)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sandbox():
    """A sandbox provider whose clock moves only when told (`admin("clock", …)`)."""
    from app.sandbox import ManualClock

    yield from serve_sandbox(ManualClock())


@pytest.fixture
def real_time_sandbox():
    """A sandbox provider on real time: its latency and timeouts really wait."""
    from app.sandbox.clock import SystemClock

    yield from serve_sandbox(SystemClock())


def serve_in_thread(wsgi_app, name: str):
    """Serve a WSGI app on a free port of 127.0.0.1 until the generator is closed; yields
    the port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    """Serve `app` on a free port for the length of one test (webhooks and browsers reach
    it as `<slug>.localhost:<port>`); yields the port."""
    yield from serve_in_thread(app, "live-server")


@pytest.fixture
def gateway_simulator():
    """The Stripe and Midtrans simulators over real HTTP (see app/gatewaysim)."""
    from app.gatewaysim import create_simulator_app
    from tests.payments_support import Simulator

    for port in serve_in_thread(create_simulator_app(), "gateway-simulator"):
        yield Simulator(f"http://127.0.0.1:{port}")
