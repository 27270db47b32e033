"""Order throughput: `place_order` + commit on PostgreSQL, beside pgbench's simple-update
transactions on the same server in the same run.

    .venv/bin/python bench/orders.py [--seconds 8] [--rounds 3] [--clients 1,4]
                                     [--warmup 2] [--profile N] [--check]

Two scratch databases are created on the PostgreSQL server (PASOK_BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards: one migrated for Pasok,
one initialised by `pgbench -i` (scale `--scale`, default 1). Pasok's database gets a tenant
that sells one Default-type service, a customer per client plus one shared customer, and
wallets funded for far more orders than a run can place.

Clients are separate processes (spawned), each with its own app, engine and connection, as
gunicorn workers have. Each order is what a storefront request does with one: an app context,
the tenant's scope, the customer loaded, `place_order` with a unique `form_token`, then
`db.session.commit()`, so every order is one committed transaction (two wallets charged, one
order row, two journal entries), followed, as in a request, by the enqueue of its forward job
(RQ, after the commit; no worker runs). Logging is silenced. Redis (the price cache and the
queue) is PASOK_BENCH_REDIS_URL, default db 14 on the local server: the benchmark's own
database, emptied before and after the run so that no forward job outlives it.

Each round runs, for every client count: pgbench's builtin "simple update" script (`pgbench -N
-c C -j C -T seconds`: one UPDATE, one SELECT and one INSERT per transaction; TPS without the
initial connection time), then place_order with one customer per client, and, at the largest
client count, place_order with every client charging one shared customer wallet (the contended
case, for information), and the floor: the least a request that takes an order can do on this
stack (the same app context, scope and login loader, one INSERT of one row, the commit and the
forward job's enqueue), which shows how much of an order's time is place_order's own work and
how much the stack costs whatever the order does. The order of the runs is reversed every
other round so that drift in the machine's load hits all alike; the table shows medians.
pgbench's TPS is the physical limit of this server for a small committed write transaction,
and the goal is place_order at no less than 20% of it at the same client count.

Latencies are per order (client side, app context to commit) and per pgbench transaction (its
`--log`). Client CPU per order is the clients' own CPU time (steadier than throughput on a busy
machine). Lock wait is the share of the clients' database sessions that pg_stat_activity,
sampled every 50 ms, shows waiting for a lock: a row that another order holds until it commits.
SQL statements per order are counted once, in the parent, before the rounds. After the run the
ledger of the scratch database is verified (`verify_ledger`) and the orders counted: a run that
lost or corrupted money is not a result. `--profile N` also runs N orders in one process under
cProfile and prints where the time goes. Results go to bench/results/orders.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import multiprocessing
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from harness import (
    PROJECT_ROOT,
    RESULTS_DIR,
    BenchmarkError,
    StatementCounter,
    run_on_postgres,
    run_pasok,
    temporary_database,
    write_results,
)

GOAL_RATIO = 0.20
ORDER_RUNS = ("orders", "contended")  # the runs that place orders ("floor" places none)
RUN_LABELS = {
    "orders": "place_order, own customers",
    "contended": "place_order, one customer",
    "floor": "floor: least request",
}
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
LINK = "https://instagram.com/p/bench123"
QUANTITY = "100"  # 1.00 per 1000 wholesale, 1.30 retail (the default 30% markup): 0.13 an order
OPENING_BALANCE = Decimal("10000000")  # far more than any run can spend
STATEMENT_SAMPLE = 50  # orders placed in the parent to count SQL statements per order
PGBENCH_TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE)
PGBENCH_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)
TABLE_ROW = "{:<28} {:>7} {:>11} {:>10} {:>7} {:>15} {:>15} {:>11} {:>9}"


@dataclass(frozen=True)
class Shop:
    tenant_id: int
    service_id: int
    customer_ids: tuple[int, ...]  # one per client
    shared_customer_id: int


@dataclass(frozen=True)
class Run:
    """One measured run: pgbench or place_order, at a client count."""

    kind: str  # "pgbench", "orders" or "contended"
    clients: int
    transactions: int
    per_second: float
    p50_ms: float
    p99_ms: float
    client_cpu_us: float | None = None  # place_order only: the clients' CPU per order
    # place_order only: the share of the clients' database sessions seen waiting for a lock
    lock_wait: float | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.clients}"


# --- arguments ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="seconds per run (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--clients", default="1,4", help="client counts, comma separated (default 1,4)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="warm-up seconds per run kind (default 2)"
    )
    parser.add_argument("--scale", type=int, default=1, help="pgbench scale (default 1)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also place N orders in one process under cProfile and print the top entries",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "orders.json", help="results JSON"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args(argv)
    try:
        args.clients = sorted({int(n) for n in args.clients.split(",") if n.strip()})
    except ValueError:
        parser.error("--clients must be client counts separated by commas")
    if not args.clients or any(not 1 <= n <= 32 for n in args.clients):
        parser.error("--clients must be 1-32 each")
    if args.seconds < 1 or args.rounds < 1 or args.warmup < 0 or args.scale < 1:
        parser.error("--seconds, --rounds and --scale must be positive, --warmup not negative")
    if args.profile < 0:
        parser.error("--profile must not be negative")
    return args


# --- the app and its shop ----------------------------------------------------------------------


def bench_config(database_url: str, redis_url: str) -> dict:
    from app.config import database_url as normalised_url

    return {
        "SQLALCHEMY_DATABASE_URI": normalised_url(database_url),
        "REDIS_URL": redis_url,
        "PASOK_PLATFORM_DOMAIN": "localhost",
        "PASOK_ENV": "development",
    }


def bench_app(database_url: str, redis_url: str):
    from app import create_app

    logging.disable(logging.WARNING)  # the orders' own logging is not what is measured
    return create_app(bench_config(database_url, redis_url))


def build_shop(app, customers: int) -> Shop:
    """One USD tenant selling one Default service (1.00 per 1000 upstream), `customers`
    customers plus a shared one, every wallet funded with OPENING_BALANCE."""
    from app.accounts.models import CUSTOMER
    from app.accounts.services import create_user
    from app.catalog.models import PUBLISHED, Category, Service, ServiceRoute
    from app.extensions import db
    from app.ledger import adjust_customer, topup_tenant
    from app.providers.models import Provider, ProviderService
    from tenants.context import across_tenants
    from tenants.provisioning import create_tenant

    with app.app_context(), across_tenants():
        tenant = create_tenant(
            slug="bench",
            name="Bench Panel",
            owner_email="owner@bench.example.com",
            owner_password="correct-horse-7",
            currency="USD",
        )
        db.session.flush()
        users = [
            create_user(
                kind=CUSTOMER,
                tenant_id=tenant.id,
                email=f"client-{n}@bench.example.com",
                password="correct-horse-7",
            )
            for n in range(customers + 1)
        ]
        provider = Provider(name="upstream", api_url="http://upstream.example/api/v2", api_key="k")
        category = Category(name="Instagram", position=1)
        service = Service(
            category=category,
            name="Instagram likes",
            type="Default",
            min_quantity=10,
            max_quantity=100_000,
            step=1,
            dripfeed=False,
            status=PUBLISHED,
        )
        upstream = ProviderService(
            provider=provider,
            external_id="likes",
            name="likes",
            category="Instagram",
            type="Default",
            rate=Decimal("1.00"),
            min_quantity=10,
            max_quantity=100_000,
        )
        db.session.add_all(
            [service, upstream, ServiceRoute(service=service, provider_service=upstream)]
        )
        db.session.flush()
        for user in users:
            adjust_customer(user, OPENING_BALANCE, "bench opening credit", "bench")
        topup_tenant(tenant, OPENING_BALANCE, "bench opening", "bench")
        shop = Shop(tenant.id, service.id, tuple(user.id for user in users[:-1]), users[-1].id)
        db.session.commit()
        return shop


def place_one(app, shop: Shop, customer_id: int, form_token: str) -> None:
    """What a storefront request does with one order: its own app context (so its own session,
    connection checkout and commit), the tenant's scope, the customer loaded, the order placed
    and committed."""
    from app.accounts.models import User
    from app.extensions import db
    from app.orders.models import PENDING
    from app.orders.services import place_order
    from tenants.context import tenant_scope

    with app.app_context(), tenant_scope(shop.tenant_id):
        customer = db.session.get(User, customer_id)  # what the login user loader does
        placed = place_order(
            tenant_id=shop.tenant_id,
            customer_id=customer_id,
            service_id=shop.service_id,
            fields={"link": LINK, "quantity": QUANTITY},
            form_token=form_token,
            actor=customer,
        )
        created, status = placed.created, placed.status
        db.session.commit()
    if not created or status != PENDING:
        raise BenchmarkError(f"order {form_token}: created={created}, status {status}")


FLOOR_TABLE = "bench_floor"
FLOOR_JOB_IDS = 10**12  # far above any order id, so the floor's forward jobs never collide


def floor_one(app, shop: Shop, customer_id: int, sequence: int) -> None:
    """The least a request that takes an order can do: the same app context, scope and login
    loader, one INSERT of one row, the commit, and the forward job's enqueue (RQ, after the
    commit, the same call as an order's). What is left of an order's time above this is
    place_order's own work."""
    from sqlalchemy import text

    from app.accounts.models import User
    from app.extensions import db
    from app.orders.services import enqueue_forwarding
    from tenants.context import tenant_scope

    with app.app_context(), tenant_scope(shop.tenant_id):
        db.session.get(User, customer_id)
        db.session.execute(
            text(f"INSERT INTO {FLOOR_TABLE} (customer_id) VALUES (:c)"), {"c": customer_id}
        )
        db.session.commit()
        enqueue_forwarding([FLOOR_JOB_IDS + sequence])  # where an order's after-commit hook does


# --- clients -----------------------------------------------------------------------------------


def client_main(number: int, conn, database_url: str, redis_url: str, shop: Shop) -> None:
    """A client process: its own app and engine; runs what the parent sends until None."""
    try:
        app = bench_app(database_url, redis_url)
        sequence = 0
        conn.send(("ready", None))
        while (command := conn.recv()) is not None:
            kind, customer_id, start_at, seconds = command
            latencies: list[float] = []
            time.sleep(max(0.0, start_at - time.monotonic()))
            cpu_before = time.process_time()
            deadline = start_at + seconds
            while time.monotonic() < deadline:
                sequence += 1
                started = time.perf_counter()
                if kind == "floor":
                    floor_one(app, shop, customer_id, number * 10**8 + sequence)
                else:
                    place_one(app, shop, customer_id, f"bench-{number}-{sequence}")
                latencies.append(time.perf_counter() - started)
            finished = time.monotonic()
            conn.send(
                (
                    "done",
                    {
                        "latencies": latencies,
                        "finished": finished,
                        "cpu_s": time.process_time() - cpu_before,
                    },
                )
            )
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class Clients:
    """`count` spawned client processes, each with its own app and engine."""

    def __init__(self, count: int, database_url: str, redis_url: str, shop: Shop) -> None:
        context = multiprocessing.get_context("spawn")
        self.shop = shop
        self.database_url = database_url
        self.pipes = []
        self.processes = []
        try:
            for number in range(count):
                parent, child = context.Pipe()
                process = context.Process(
                    target=client_main,
                    args=(number, child, database_url, redis_url, shop),
                    daemon=True,
                )
                process.start()
                self.pipes.append(parent)
                self.processes.append(process)
            for pipe in self.pipes:
                self._receive(pipe, "ready", timeout=120)
        except BaseException:
            self.close()
            raise

    def _receive(self, pipe, expected: str, timeout: float):
        try:
            if not pipe.poll(timeout):
                raise BenchmarkError(f"a client did not answer within {timeout:.0f}s")
            kind, payload = pipe.recv()
        except (EOFError, OSError):
            raise BenchmarkError("a client exited without an answer") from None
        if kind == "error":
            raise BenchmarkError(f"a client failed:\n{payload}")
        if kind != expected:
            raise BenchmarkError(f"a client answered {kind!r}, expected {expected!r}")
        return payload

    def run(self, kind: str, clients: int, seconds: int) -> Run:
        """`clients` clients place orders for `seconds`, each charging its own customer, or,
        for "contended", all the shared one."""
        start_at = time.monotonic() + 0.5
        for number, pipe in enumerate(self.pipes[:clients]):
            customer = (
                self.shop.shared_customer_id
                if kind == "contended"
                else self.shop.customer_ids[number]
            )
            pipe.send((kind, customer, start_at, seconds))
        with LockSampler(self.database_url) as locks:
            results = [self._receive(p, "done", seconds + 120) for p in self.pipes[:clients]]
        latencies = sorted(value for r in results for value in r["latencies"])
        if not latencies:
            raise BenchmarkError(f"{kind} with {clients} clients placed no order")
        elapsed = max(r["finished"] for r in results) - start_at
        return Run(
            kind=kind,
            clients=clients,
            transactions=len(latencies),
            per_second=round(len(latencies) / elapsed, 1),
            p50_ms=round(percentile(latencies, 50) * 1000, 3),
            p99_ms=round(percentile(latencies, 99) * 1000, 3),
            client_cpu_us=round(sum(r["cpu_s"] for r in results) / len(latencies) * 1e6, 1),
            lock_wait=locks.share(),
        )

    def close(self) -> None:
        for pipe in self.pipes:
            with suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


class LockSampler:
    """Samples pg_stat_activity every 50 ms while a run goes on: the share of the database's
    client sessions seen waiting for a lock (a row another order holds until it commits)."""

    QUERY = (
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity "
        "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(drivername="postgresql")
        self.database = url.database
        self.url = url.render_as_string(hide_password=False)
        self.waiting = self.seen = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> LockSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            while not self.stop.wait(0.05):
                for (waiting,) in conn.execute(self.QUERY, (self.database,)):
                    self.seen += 1
                    self.waiting += bool(waiting)

    def share(self) -> float | None:
        return round(self.waiting / self.seen, 3) if self.seen else None


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --- pgbench -----------------------------------------------------------------------------------


def pgbench_connection(database_url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    args = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    return [*args, url.database]


def pgbench_env(database_url: str) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    env = dict(os.environ)
    password = make_url(database_url).password
    if password:
        env["PGPASSWORD"] = str(password)
    return env


def pgbench_init(database_url: str, scale: int) -> None:
    command = ["pgbench", "-i", "-q", "-s", str(scale), *pgbench_connection(database_url)]
    result = subprocess.run(
        command, env=pgbench_env(database_url), capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise BenchmarkError(f"pgbench -i failed:\n{result.stderr.strip()}")


def pgbench_run(database_url: str, clients: int, seconds: int) -> Run:
    """pgbench's "simple update" builtin for `seconds`; its TPS without connection time, and the
    latency percentiles of every transaction from its log."""
    log_dir = Path(tempfile.mkdtemp(prefix="pasok-bench-pgbench-"))
    try:
        command = [
            "pgbench",
            "-N",
            "-c",
            str(clients),
            "-j",
            str(clients),
            "-T",
            str(seconds),
            "-l",
            "--log-prefix",
            str(log_dir / "tx"),
            *pgbench_connection(database_url),
        ]
        result = subprocess.run(
            command,
            env=pgbench_env(database_url),
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        if result.returncode != 0:
            raise BenchmarkError(f"pgbench failed ({result.returncode}):\n{result.stderr.strip()}")
        tps = PGBENCH_TPS.search(result.stdout)
        failed = PGBENCH_FAILED.search(result.stdout)
        if not tps:
            raise BenchmarkError(f"could not read pgbench's output:\n{result.stdout}")
        if failed and int(failed.group(1)):
            raise BenchmarkError(f"pgbench had failed transactions:\n{result.stdout}")
        # Each log line: client, transaction, latency (µs), script, epoch seconds, µs.
        latencies = sorted(
            int(line.split()[2])
            for path in log_dir.iterdir()
            for line in path.read_text().splitlines()
            if line
        )
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    if not latencies:
        raise BenchmarkError("pgbench logged no transaction")
    return Run(
        kind="pgbench",
        clients=clients,
        transactions=len(latencies),
        per_second=float(tps.group(1)),
        p50_ms=round(percentile(latencies, 50) / 1000, 3),
        p99_ms=round(percentile(latencies, 99) / 1000, 3),
    )


def pgbench_version() -> str:
    result = subprocess.run(["pgbench", "--version"], capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


def server_version(database_url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=5) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


# --- statements, profile, verification ---------------------------------------------------------


def statements_per_order(app, shop: Shop) -> float:
    """SQL statements one order sends (as the engine sees them; the pool's pre-ping on checkout
    is not among them), over STATEMENT_SAMPLE orders placed here."""
    from app.extensions import db

    with app.app_context():
        counter = StatementCounter(db.engine)
    try:
        for n in range(STATEMENT_SAMPLE):
            place_one(app, shop, shop.customer_ids[0], f"bench-count-{n}")
    finally:
        counter.close()
    return counter.count / STATEMENT_SAMPLE


def profile_orders(app, shop: Shop, count: int) -> dict:
    """Place `count` orders in this process under cProfile: where a single client's time goes,
    with the time spent waiting in cursor.execute (the database's share) measured apart."""
    from sqlalchemy import event

    from app.extensions import db

    with app.app_context():
        engine = db.engine
    in_sql = [0.0]
    statements = [0]
    started: list[float] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        started.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        in_sql[0] += time.perf_counter() - started.pop()
        statements[0] += 1

    # Unprofiled first, for the split between SQL and the rest without cProfile's overhead.
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        begun = time.perf_counter()
        for n in range(count):
            place_one(app, shop, shop.customer_ids[0], f"bench-timed-{n}")
        wall = time.perf_counter() - begun
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)

    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(count):
        place_one(app, shop, shop.customer_ids[0], f"bench-profile-{n}")
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    # Pasok's own functions by cumulative time, then everything by time spent in itself.
    stats.sort_stats("cumulative").print_stats(r"/(app|tenants|workers)/", 25)
    stats.sort_stats("tottime").print_stats(15)
    text = re.sub(r"/\S*/site-packages/", "", stream.getvalue())
    text = text.replace(f"{PROJECT_ROOT}/", "")
    return {
        "orders": count,
        "us_per_order": round(wall / count * 1e6, 1),
        "sql_execute_us_per_order": round(in_sql[0] / count * 1e6, 1),
        "statements_per_order": round(statements[0] / count, 2),
        "stats": text,
    }


def verify(app, expected_orders: int) -> dict:
    """The scratch ledger verified and the orders counted after the run."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.ledger import verify_ledger
    from app.orders.models import Order
    from tenants.context import across_tenants

    with app.app_context(), across_tenants():
        report = verify_ledger()
        orders = db.session.scalar(select(func.count(Order.id)))
        queued = forward_jobs_queued()
    return {
        "ledger_ok": report.ok,
        "accounts": report.accounts,
        "entries": report.entries,
        "postings": report.postings,
        "drift": len(report.drift),
        "unbalanced": len(report.unbalanced),
        "mismatched": len(report.mismatched),
        "orders": orders,
        "orders_expected": expected_orders,
        "forward_jobs_queued": queued,
    }


def forward_jobs_queued() -> int | None:
    """Forward jobs waiting on the queue (one per order placed: a shortfall means an enqueue
    failed, and the run measured less than a request does); None where there is no queue."""
    try:
        from workers.queues import FORWARD, get_queue
    except ImportError:
        return None
    return get_queue(FORWARD).count


# --- the run -----------------------------------------------------------------------------------


def create_floor_table(app) -> None:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        db.session.execute(
            text(f"CREATE TABLE {FLOOR_TABLE} (id serial PRIMARY KEY, customer_id integer)")
        )
        db.session.commit()


def plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    """Every run of a round: pgbench, place_order and the floor per client count, then the
    contended place_order at the largest count (only when it is above one)."""
    runs = [(kind, c) for c in args.clients for kind in ("pgbench", "orders", "floor")]
    if args.clients[-1] > 1:
        runs.append(("contended", args.clients[-1]))
    return runs


def empty_redis(redis_url: str) -> None:
    """Empty the benchmark's Redis database: its forward jobs are keyed by order id, and a new
    scratch database numbers its orders from 1 again."""
    import redis

    if redis_url.startswith("fakeredis://"):
        return  # in-process, gone with each process
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).flushdb()
    except redis.RedisError as error:
        raise BenchmarkError(f"Redis at {redis_url} does not answer: {error}") from None


def run_benchmark(args: argparse.Namespace, server_url: str, redis_url: str) -> dict:
    empty_redis(redis_url)
    try:
        return _run_benchmark(args, server_url, redis_url)
    finally:
        empty_redis(redis_url)


def _run_benchmark(args: argparse.Namespace, server_url: str, redis_url: str) -> dict:
    from app.extensions import db

    with (
        temporary_database(server_url) as pasok_url,
        temporary_database(server_url) as pgbench_url,
    ):
        env = dict(os.environ, DATABASE_URL=pasok_url, REDIS_URL=redis_url)
        run_pasok(env, "db", "upgrade")
        pgbench_init(pgbench_url, args.scale)
        app = bench_app(pasok_url, redis_url)
        shop = build_shop(app, max(args.clients))
        create_floor_table(app)
        statements = statements_per_order(app, shop)
        placed, floors = STATEMENT_SAMPLE, 0
        with app.app_context():
            db.engine.dispose()  # the clients have their own; this one idles until the end

        runs = plan(args)
        rounds: list[list[Run]] = []
        clients = Clients(max(args.clients), pasok_url, redis_url, shop)
        try:
            if args.warmup:
                for kind, count in runs:
                    warm = measure(kind, count, args.warmup, clients, pgbench_url)
                    placed += warm.transactions if kind in ORDER_RUNS else 0
                    floors += warm.transactions if kind == "floor" else 0
            for number in range(1, args.rounds + 1):
                order = runs if number % 2 else runs[::-1]
                results = []
                for kind, count in order:
                    result = measure(kind, count, args.seconds, clients, pgbench_url)
                    placed += result.transactions if kind in ORDER_RUNS else 0
                    floors += result.transactions if kind == "floor" else 0
                    results.append(result)
                rounds.append(results)
                print(
                    f"round {number}/{args.rounds}  "
                    + "  ".join(
                        f"{r.kind} c{r.clients} {r.per_second:.0f}/s"
                        for r in sorted(results, key=lambda r: runs.index((r.kind, r.clients)))
                    ),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            clients.close()

        profile = None
        if args.profile:
            profile = profile_orders(app, shop, args.profile)
            placed += 2 * args.profile
        checks = verify(app, placed)
        checks["floor_requests"] = floors
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return {
            "server_version": server_version(server_url),
            "statements_per_order": statements,
            "rounds": rounds,
            "verify": checks,
            "profile": profile,
        }


def measure(kind: str, clients: int, seconds: int, pool: Clients, pgbench_url: str) -> Run:
    if kind == "pgbench":
        return pgbench_run(pgbench_url, clients, seconds)
    return pool.run(kind, clients, seconds)


# --- the report --------------------------------------------------------------------------------


def summarize(rounds: list[list[Run]]) -> dict[str, dict[str, float]]:
    by_key: dict[str, list[Run]] = {}
    for results in rounds:
        for run in results:
            by_key.setdefault(run.key, []).append(run)

    def median(values) -> float:
        return round(statistics.median(values), 3)

    return {
        key: {
            "per_second": median(r.per_second for r in runs),
            "p50_ms": median(r.p50_ms for r in runs),
            "p99_ms": median(r.p99_ms for r in runs),
            **(
                {
                    "client_cpu_us_per_order": median(r.client_cpu_us for r in runs),
                    "lock_wait": median(r.lock_wait or 0.0 for r in runs),
                }
                if runs[0].client_cpu_us is not None
                else {}
            ),
        }
        for key, runs in by_key.items()
    }


def build_report(args: argparse.Namespace, load_average: float, outcome: dict) -> dict:
    medians = summarize(outcome["rounds"])
    ratios = {}
    for key, m in medians.items():
        kind, clients = key.split(":")
        if kind != "pgbench":
            ratios[key] = round(m["per_second"] / medians[f"pgbench:{clients}"]["per_second"], 4)
    goal_ratios = [ratios[f"orders:{c}"] for c in args.clients]
    checks = outcome["verify"]
    clean = checks["ledger_ok"] and checks["orders"] == checks["orders_expected"]
    return {
        "benchmark": "orders",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "database": "postgresql",
            "server_version": outcome["server_version"],
            "pgbench": pgbench_version(),
            "pgbench_scale": args.scale,
            "pgbench_script": "simple-update (-N)",
            "clients": args.clients,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "order": f"Default service, quantity {QUANTITY}, a unique form_token each",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [load_average, os.getloadavg()[0]],  # 1-minute, at start and end
        },
        "statements_per_order": outcome["statements_per_order"],
        "medians": medians,
        "ratios": ratios,
        "goal_ratio": GOAL_RATIO,
        "goal_met": clean and all(r >= GOAL_RATIO for r in goal_ratios),
        "verify": checks,
        "rounds": [[{**asdict(r), "key": r.key} for r in results] for results in outcome["rounds"]],
        "profile": outcome["profile"],
    }


def print_tables(report: dict) -> None:
    config, medians, ratios = report["config"], report["medians"], report["ratios"]
    print(
        f"\nPasok place_order on PostgreSQL {config['server_version']} beside {config['pgbench']} "
        f"-N (scale {config['pgbench_scale']}); {config['rounds']} rounds x "
        f"{config['seconds']}s, medians; load average {config['load_average'][0]:.1f} on "
        f"{config['cpus']} CPUs at the start"
    )
    header = TABLE_ROW.format(
        "run",
        "clients",
        "pgbench TPS",
        "orders/s",
        "ratio",
        "p50/p99 ms",
        "pgbench p50/p99",
        "cpu-us/order",
        "lock wait",
    )
    print(header)
    print("-" * len(header))
    for key in ratios:
        kind, clients = key.split(":")
        m, base = medians[key], medians[f"pgbench:{clients}"]
        print(
            TABLE_ROW.format(
                RUN_LABELS[kind],
                clients,
                f"{base['per_second']:.0f}",
                f"{m['per_second']:.0f}",
                f"{ratios[key]:.1%}",
                f"{m['p50_ms']:.2f}/{m['p99_ms']:.2f}",
                f"{base['p50_ms']:.2f}/{base['p99_ms']:.2f}",
                f"{m['client_cpu_us_per_order']:.0f}",
                f"{m['lock_wait']:.0%}",
            )
        )
    statements = report["statements_per_order"]
    print(
        f"round trips: place_order {statements:.1f} statements + BEGIN, COMMIT and the pool's "
        f"pre-ping = {statements + 3:.0f}; pgbench -N 5 (BEGIN, UPDATE, SELECT, INSERT, END)"
    )
    checks = report["verify"]
    print(
        f"ledger verify: {'clean' if checks['ledger_ok'] else 'NOT clean'} "
        f"({checks['accounts']} accounts, {checks['entries']} entries, {checks['postings']} "
        f"postings; drift {checks['drift']}, unbalanced {checks['unbalanced']}, mismatched "
        f"{checks['mismatched']}); orders {checks['orders']} of {checks['orders_expected']} "
        f"placed; forward jobs queued: {checks['forward_jobs_queued']} (one per order and per "
        f"floor request: {checks['orders'] + checks['floor_requests']})"
    )
    profile = report["profile"]
    if profile:
        print(
            f"\nOne client, {profile['orders']} orders in-process: {profile['us_per_order']:.0f} "
            f"us per order, of which {profile['sql_execute_us_per_order']:.0f} us in "
            f"cursor.execute ({profile['statements_per_order']:.1f} statements)\n"
        )
        print(profile["stats"])
    worst = min(ratios[f"orders:{c}"] for c in config["clients"])
    verdict = "met" if report["goal_met"] else "NOT met"
    print(
        f"\nplace_order / pgbench -N at the same client count: lowest {worst:.1%} "
        f"(goal >= {GOAL_RATIO:.0%}, ledger clean): {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("pgbench") is None:
        print(
            "pgbench is not installed (Debian: apt-get install -y postgresql-client)",
            file=sys.stderr,
        )
        return 2
    load_average = os.getloadavg()[0]
    outcome = run_on_postgres(
        lambda server_url, redis_url: run_benchmark(args, server_url, redis_url),
        default_redis_url=DEFAULT_REDIS_URL,
        left_behind="clients stopped and databases dropped",
    )
    if isinstance(outcome, int):
        return outcome
    report = build_report(args, load_average, outcome)
    print_tables(report)
    write_results(args.output, report)
    if not report["verify"]["ledger_ok"]:
        return 1
    return 1 if args.check and not report["goal_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
