"""The order pipeline: forwarding to an upstream with latency, the status sync, worker memory.

    .venv/bin/python bench/pipeline.py [--orders 10000] [--fork-orders 1000] [--active 100000]
                                       [--workers 4] [--latency-ms 100] [--profile 200]
                                       [--scan 1,2,8] [--scan-orders 400] [--check]
    .venv/bin/python bench/pipeline.py --orders 500 --fork-orders 100 --active 2000   # smoke

Everything runs as it is deployed, in separate processes: the sandbox provider (`pasok
sandbox-provider`, a threaded server that delays every API reply by `--latency-ms`), C worker
processes (`pasok worker forward` / `pasok worker status`), PostgreSQL (a scratch database on
PASOK_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres, dropped
afterwards) and Redis (PASOK_BENCH_REDIS_URL, default db 12 on the local server, emptied
before and after).

C, the upstream requests in flight at once, is workers x 1: a worker runs one job at a time and
a forward job makes one blocking HTTP call (RQ has no way to run several jobs at once in one
worker). The default, 4 workers, is chosen for this 2-core machine: a forward job costs about
20 ms of worker CPU (the table's `cpu ms/job`) plus the sandbox's, PostgreSQL's and Redis's
share, so the machine cannot forward much more than 60 orders a second however many requests
are in flight. C / latency is the ideal's rate: C = 4 asks for 40 a second (most of one core
of pipeline work, on a machine shared with others), C = 8 for 80, more than the CPU delivers
(`--scan 8` reached about 45), so the ratio would measure CPU saturation rather than the
pipeline. C = 4 is also `PASOK_STATUS_CONCURRENCY`'s default, the status sync's own cap per
provider. `--workers` changes it; `--scan` adds smaller runs at other worker counts, to show
how the ratio moves with C.

(a) Forwarding. One order is placed through `place_order` (validation, pricing, both wallets
charged); the other N - 1 are copies of it made in SQL, each with its own two journal entries
and postings and the cached balances recomputed, because `place_order` runs at about 100 orders
a second (bench/orders.py) and would take minutes to place 10,000. Their forward jobs are then
enqueued as the app enqueues them (`enqueue_forwarding`, after the commit) while C warm workers
wait, and the clock runs from the first enqueue until no order is `pending` or `submitting`.
The ideal is N x latency / C. Then the same with the forking worker (`pasok worker --fork`,
`--fork-orders`, default 1,000), which pays a fork and a new database connection per job. The
workers' CPU (their own and their waited-for children's) and page faults per job are read
from /proc. `--profile N` then times N jobs in this process with one worker, the HTTP call,
the job's own work, SQL, Redis and RQ's bookkeeping apart (and N/2, at most 100, with the
forking worker, whose job runs out of reach in its child: its CPU and faults only). After
the run the sandbox must hold exactly one order per Pasok order, each with Pasok's order id as
its `ref` and matching the upstream id Pasok stored.

(b) Status sync. A second scratch database and sandbox: `--active` orders are added to the
sandbox (at 0 ms latency; then its latency is set), and as many `in_progress` orders with those
upstream ids are made in Pasok (one placed, the rest copied as above). The `orders.sync`
fan-out (what `pasok cron` enqueues every minute) goes on the `status` queue, C status workers
run it and its batch jobs, with `PASOK_STATUS_CONCURRENCY` set to C (its default is 4: more
workers than that would not raise C). The clock runs from the enqueue until every batch job
has ended. Upstream calls are counted by the sandbox (its request log) and must be
ceil(N/100); the ideal is calls x latency / C. Sandbox orders stay "In progress" (they finish
after an hour), the steady state of a sync. One batch is also timed in-process (`sync_batch`,
its HTTP call and SQL apart).

(c) Memory. VmRSS (/proc/<pid>/status) of each `pasok worker` idle after start-up and after
its jobs, against a bare `rq worker` (from the same virtualenv) idle on the same Redis.

A run whose ledger (`verify_ledger`) is not clean, or whose order counts do not match, is not
a result. Results go to bench/results/pipeline.json; `--check` exits 1 if (a) misses its goal
(<= 1.3x ideal).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from harness import (
    LOOPBACK,
    PROJECT_ROOT,
    RESULTS_DIR,
    VENV_BIN,
    BenchmarkError,
    SandboxProvider,
    run_on_postgres,
    run_pasok,
    sandbox_provider,
    temporary_database,
    write_results,
)

GOAL_RATIO = 1.3
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
OPENING_BALANCE = Decimal("100000000")  # far more than any run can spend
SANDBOX_BALANCE = "1000000000"
COMPLETE_AFTER = "3600"  # sandbox orders stay active for the whole run
LINK = "https://instagram.com/p/bench-pipeline"
POLL_SECONDS = 0.2
API_CALL = re.compile(rb'"(?:GET|POST) /api/v2')
TABLE_ROW = "{:<44} {:>8} {:>4} {:>9} {:>9} {:>7} {:>12}"


# --- arguments ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000, help="(a) orders (default 10000)")
    parser.add_argument(
        "--fork-orders",
        type=int,
        default=1_000,
        help="(a) orders for the forking worker, 0 to skip (default 1000)",
    )
    parser.add_argument(
        "--active", type=int, default=100_000, help="(b) active orders, 0 to skip (default 100000)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes = C (default 4)")
    parser.add_argument(
        "--latency-ms", type=int, default=100, help="sandbox reply latency (default 100)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=200,
        metavar="N",
        help="(a) also time N forward jobs in-process, one worker, step by step (default 200)",
    )
    parser.add_argument(
        "--scan",
        default="",
        metavar="C,C,...",
        help="(a) also forward --scan-orders orders at each of these worker counts",
    )
    parser.add_argument(
        "--scan-orders", type=int, default=400, help="orders per --scan run (default 400)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "pipeline.json", help="results JSON"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.fork_orders < 0 or args.active < 0:
        parser.error("--orders must be positive, --fork-orders and --active not negative")
    if not 1 <= args.workers <= 64 or args.latency_ms < 1:
        parser.error("--workers must be 1-64 and --latency-ms positive")
    try:
        args.scan = [int(n) for n in args.scan.split(",") if n.strip()]
    except ValueError:
        parser.error("--scan must be worker counts separated by commas")
    if any(not 1 <= n <= 64 for n in args.scan) or args.scan_orders < 1 or args.profile < 0:
        parser.error("--scan counts must be 1-64, --scan-orders positive, --profile >= 0")
    return args


# --- the app, its shop, its orders -------------------------------------------------------------


def bench_app(database_url: str, redis_url: str):
    from app import create_app
    from app.config import database_url as normalised_url

    logging.disable(logging.WARNING)  # the app's own logging is not what is measured
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalised_url(database_url),
            "REDIS_URL": redis_url,
            "PASOK_PLATFORM_DOMAIN": "localhost",
            "PASOK_ENV": "development",
        }
    )


@dataclass(frozen=True)
class Shop:
    tenant_id: int
    customer_id: int
    service_id: int
    provider_id: int
    provider_service_id: int
    upstream_service: int  # the sandbox's service id
    quantity: int


def build_shop(app, sandbox: SandboxProvider) -> Shop:
    """One USD tenant selling one Default service routed to the sandbox (which honours `ref`),
    one customer, both wallets funded with OPENING_BALANCE."""
    from app.accounts.models import CUSTOMER
    from app.accounts.services import create_user
    from app.catalog.models import PUBLISHED, Category, Service, ServiceRoute
    from app.extensions import db
    from app.ledger import adjust_customer, topup_tenant
    from app.providers.models import Provider, ProviderService
    from tenants.context import across_tenants
    from tenants.provisioning import create_tenant

    catalog = json.loads(sandbox.call("services"))
    upstream = next(s for s in catalog if s["type"] == "Default" and not s["dripfeed"])
    low, high = int(upstream["min"]), int(upstream["max"])
    quantity = min(max(100, low), high)
    with app.app_context(), across_tenants():
        tenant = create_tenant(
            slug="pipeline",
            name="Pipeline Bench",
            owner_email="owner@pipeline.example.com",
            owner_password="correct-horse-7",
            currency="USD",
        )
        db.session.flush()
        customer = create_user(
            kind=CUSTOMER,
            tenant_id=tenant.id,
            email="customer@pipeline.example.com",
            password="correct-horse-7",
        )
        provider = Provider(
            name="sandbox",
            api_url=sandbox.api_url,
            api_key=sandbox.key,
            currency="USD",
            honours_ref=True,
            timeout_seconds=15.0,
        )
        offer = ProviderService(
            provider=provider,
            external_id=str(upstream["service"]),
            name=upstream["name"],
            category=upstream["category"],
            type="Default",
            rate=Decimal(upstream["rate"]),
            min_quantity=low,
            max_quantity=high,
        )
        service = Service(
            category=Category(name="Instagram", position=1),
            name="Instagram followers",
            type="Default",
            min_quantity=low,
            max_quantity=high,
            step=1,
            dripfeed=False,
            status=PUBLISHED,
        )
        db.session.add_all([service, offer, ServiceRoute(service=service, provider_service=offer)])
        db.session.flush()
        adjust_customer(customer, OPENING_BALANCE, "bench opening credit", "bench")
        topup_tenant(tenant, OPENING_BALANCE, "bench opening", "bench")
        shop = Shop(
            tenant.id,
            customer.id,
            service.id,
            provider.id,
            offer.id,
            int(upstream["service"]),
            quantity,
        )
        db.session.commit()
        return shop


def place_template(app, shop: Shop) -> int:
    """One order through `place_order` and committed, as a storefront request places it."""
    from app.accounts.models import User
    from app.extensions import db
    from app.orders.models import PENDING
    from app.orders.services import place_order
    from tenants.context import tenant_scope

    with app.app_context(), tenant_scope(shop.tenant_id):
        customer = db.session.get(User, shop.customer_id)
        placed = place_order(
            tenant_id=shop.tenant_id,
            customer_id=shop.customer_id,
            service_id=shop.service_id,
            fields={"link": LINK, "quantity": str(shop.quantity)},
            form_token="bench-template",
            actor=customer,
        )
        order_id, status = placed.order.id, placed.order.status
        db.session.commit()
    if status != PENDING:
        raise BenchmarkError(f"the template order is {status}, not pending")
    return order_id


def copy_orders(app, template_id: int, count: int, values: dict[str, str]) -> list[int]:
    """`count` copies of order `template_id`, made in SQL, each charged like the original: its
    own two journal entries (`order-<id>`, `wholesale-<id>`) and their postings, then every
    cached balance recomputed from the postings. `values` maps a column to an SQL expression
    of `g`, the copy's number (1..count); the template itself gets them with g = 0."""
    from sqlalchemy import text

    from app.extensions import db
    from app.ledger.models import JournalEntry, Posting
    from app.orders.models import Order

    def columns(table, overrides: dict[str, str], alias: str) -> tuple[str, str]:
        names = [c.name for c in table.columns if c.name != "id"]
        exprs = [overrides.get(name, f"{alias}.{name}") for name in names]
        return ", ".join(names), ", ".join(exprs)

    order_values = {"form_token": "'bench-copy-' || g"} | values
    order_cols, order_exprs = columns(Order.__table__, order_values, "o")
    entry_cols, entry_exprs = columns(
        JournalEntry.__table__,
        {
            "idempotency_key": "split_part(je.idempotency_key, '-', 1) || '-' || o.id",
            "memo": r"regexp_replace(je.memo, '\d+$', o.id::text)",
            "order_id": "o.id",
        },
        "je",
    )
    posting_cols, posting_exprs = columns(Posting.__table__, {"entry_id": "ne.id"}, "p")
    with app.app_context():
        ids = db.session.scalars(
            text(
                f"INSERT INTO orders ({order_cols}) SELECT {order_exprs} FROM orders o "
                "CROSS JOIN generate_series(1, :count) AS g WHERE o.id = :template RETURNING id"
            ),
            {"count": count, "template": template_id},
        ).all()
        db.session.execute(
            text(
                f"INSERT INTO journal_entries ({entry_cols}) SELECT {entry_exprs} "
                "FROM journal_entries je CROSS JOIN orders o "
                "WHERE je.order_id = :template AND o.id = ANY(:ids)"
            ),
            {"template": template_id, "ids": list(ids)},
        )
        db.session.execute(
            text(
                f"INSERT INTO postings ({posting_cols}) SELECT {posting_exprs} FROM postings p "
                "JOIN journal_entries te ON te.id = p.entry_id AND te.order_id = :template "
                "JOIN journal_entries ne ON ne.kind = te.kind AND ne.order_id = ANY(:ids)"
            ),
            {"template": template_id, "ids": list(ids)},
        )
        db.session.execute(
            text(
                "UPDATE ledger_accounts a SET balance = s.total FROM (SELECT account_id, "
                "sum(amount) AS total FROM postings GROUP BY account_id) s "
                "WHERE a.id = s.account_id"
            )
        )
        if values:
            assignments = ", ".join(f"{name} = {expr}" for name, expr in values.items())
            db.session.execute(
                text(f"UPDATE orders o SET {assignments} FROM (SELECT 0 AS g) s WHERE o.id = :t"),
                {"t": template_id},
            )
        db.session.commit()
        for table in ("orders", "journal_entries", "postings"):
            db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()
    return sorted([template_id, *ids])


def status_counts(app, first: int, last: int) -> dict[str, int]:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        rows = db.session.execute(
            text("SELECT status, count(*) FROM orders WHERE id BETWEEN :a AND :b GROUP BY status"),
            {"a": first, "b": last},
        ).all()
        db.session.rollback()
    return {status: count for status, count in rows}


def verify(app) -> dict:
    """The ledger verified and the orders counted; a run that fails this is not a result."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.ledger import verify_ledger
    from app.orders.models import Order
    from tenants.context import across_tenants

    with app.app_context(), across_tenants():
        report = verify_ledger()
        orders = db.session.scalar(select(func.count(Order.id)))
        db.session.remove()
        db.engine.dispose()
    return {
        "ledger_ok": report.ok,
        "accounts": report.accounts,
        "entries": report.entries,
        "postings": report.postings,
        "drift": len(report.drift),
        "unbalanced": len(report.unbalanced),
        "mismatched": len(report.mismatched),
        "orders": orders,
    }


# --- processes: workers and their memory -------------------------------------------------------


@dataclass
class Workers:
    processes: list[subprocess.Popen]
    log_path: Path

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def workers(
    env: dict[str, str], count: int, queue: str, *, fork: bool = False
) -> Iterator[Workers]:
    """`count` `pasok worker [--fork] QUEUE` processes; yield once all are registered."""
    from redis import Redis
    from rq import Queue, Worker

    log_dir = Path(tempfile.mkdtemp(prefix="pasok-bench-workers-"))
    log_path = log_dir / "workers.log"
    command = [str(VENV_BIN / "pasok"), "worker", *(["--fork"] if fork else []), queue]
    processes: list[subprocess.Popen] = []
    try:
        with log_path.open("wb") as log:
            for _ in range(count):
                processes.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        cwd=PROJECT_ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        group = Workers(processes, log_path)
        connection = Redis.from_url(env["REDIS_URL"])
        deadline = time.monotonic() + 120
        while Worker.count(queue=Queue(queue, connection=connection)) < count:
            if any(p.poll() is not None for p in processes):
                raise BenchmarkError(f"a worker exited at start-up:\n{group.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"workers not registered after 120s:\n{group.log_tail()}")
            time.sleep(0.1)
        yield group
    finally:
        stop_processes(processes)
        with suppress(OSError):
            log_path.unlink()
            log_dir.rmdir()


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each (RQ's warm shutdown), then SIGKILL whatever of its group is left."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its children it has waited for (a forking
    worker's work horses)."""
    fields = proc_stat(pid)
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid: int) -> int:
    """Minor page faults of a process and its waited-for children: after a fork, each first
    write to a page shared with the parent is one (copy-on-write)."""
    fields = proc_stat(pid)
    return int(fields[7]) + int(fields[8])


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after "pid (comm)" (comm may hold spaces): state is [0], minflt [7],
    cminflt [8], utime [11], stime [12], cutime [13], cstime [14]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def bare_rq_worker_rss(redis_url: str) -> float:
    """VmRSS of `rq worker` from the same virtualenv, idle on the same Redis."""
    from redis import Redis
    from rq import Queue, Worker

    process = subprocess.Popen(
        [str(VENV_BIN / "rq"), "worker", "--url", redis_url, "bench-bare"],
        cwd=tempfile.gettempdir(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        connection = Redis.from_url(redis_url)
        deadline = time.monotonic() + 60
        while Worker.count(queue=Queue("bench-bare", connection=connection)) < 1:
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError("the bare rq worker did not start")
            time.sleep(0.1)
        time.sleep(1)
        return rss_mib(process.pid)
    finally:
        stop_processes([process])


# --- (a) forwarding ----------------------------------------------------------------------------


def enqueue_all(app, order_ids: list[int]) -> None:
    """The forward jobs, enqueued the way the app enqueues them after a commit."""
    from app.orders.forwarding import enqueue_forwarding

    with app.app_context():
        for start in range(0, len(order_ids), 500):
            enqueue_forwarding(order_ids[start : start + 500])


def forward_run(app, env: dict[str, str], order_ids: list[int], count: int, fork: bool) -> dict:
    """C workers forward `order_ids`; the time until none is pending or submitting."""
    first, last = order_ids[0], order_ids[-1]
    with workers(env, count, "forward", fork=fork) as group:
        time.sleep(1)  # let start-up finish (imports, the scheduler lock) before reading RSS
        rss_idle = [rss_mib(pid) for pid in group.pids]
        cpu_before = [cpu_seconds(pid) for pid in group.pids]
        faults_before = [minor_faults(pid) for pid in group.pids]
        started = time.perf_counter()
        enqueuer = threading.Thread(target=enqueue_all, args=(app, order_ids))
        enqueuer.start()
        enqueued_s = None
        deadline = time.monotonic() + max(600, len(order_ids) * 0.1)
        while True:
            time.sleep(POLL_SECONDS)
            if enqueued_s is None and not enqueuer.is_alive():
                enqueued_s = time.perf_counter() - started
            counts = status_counts(app, first, last)
            if (
                not enqueuer.is_alive()
                and not counts.get("pending")
                and not counts.get("submitting")
            ):
                break
            if any(p.poll() is not None for p in group.processes):
                raise BenchmarkError(f"a worker died:\n{group.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"forwarding not done in time: {counts}")
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(p) - b for p, b in zip(group.pids, cpu_before, strict=True))
        faults = sum(minor_faults(p) - b for p, b in zip(group.pids, faults_before, strict=True))
        rss_after = [rss_mib(pid) for pid in group.pids]
    return {
        "worker": "forking (--fork)" if fork else "simple (default)",
        "orders": len(order_ids),
        "workers": count,
        "seconds": round(seconds, 3),
        "enqueue_seconds": round(enqueued_s or seconds, 3),
        "worker_cpu_ms_per_job": round(cpu / len(order_ids) * 1000, 2),
        "minor_faults_per_job": round(faults / len(order_ids)),
        "statuses": counts,
        "rss_idle_mib": rss_idle,
        "rss_after_mib": rss_after,
    }


def profile_forwarding(
    app, redis_url: str, order_ids: list[int], latency_ms: int, *, fork: bool = False
) -> dict:
    """Where a forward job's time goes: `order_ids` forwarded by one worker in this process
    (burst), with the HTTP call, the job (app context + `forward_order`), SQL and Redis timed
    apart. Without `fork`, wall per job = HTTP (latency + the rest of the call) + the job's
    other work + RQ's bookkeeping around the job. The forking worker's job runs in its child,
    out of reach of these timers: its CPU (with its children's) and page faults are read."""
    import resource
    from contextlib import redirect_stdout

    import redis
    from sqlalchemy import event

    from app.extensions import db
    from app.providers.client import ProviderClient
    from workers.context import AppJob, AppWorker, ForkingAppWorker
    from workers.queues import FORWARD, worker_redis

    totals = {"http": 0.0, "job": 0.0, "sql": 0.0, "redis": 0.0}
    counts = {"sql": 0, "redis": 0}
    started_sql: list[float] = []

    def timed(name: str, function):
        def run(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - began
                if name in counts:
                    counts[name] += 1

        return run

    def before(*_):
        started_sql.append(time.perf_counter())

    def after(*_):
        totals["sql"] += time.perf_counter() - started_sql.pop()
        counts["sql"] += 1

    patched = [
        (ProviderClient, "_call"),
        (AppJob, "perform"),
        (redis.Redis, "execute_command"),
        (redis.client.Pipeline, "execute"),
    ]
    originals = [getattr(owner, name) for owner, name in patched]
    names = ["http", "job", "redis", "redis"]
    enqueue_all(app, order_ids)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    handler = logging.StreamHandler(devnull)
    root = logging.getLogger()
    level = root.level
    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        for (owner, name), original, total in zip(patched, originals, names, strict=True):
            if owner is redis.Redis:
                # A pipeline queues its commands in execute_command: only execute() goes out.
                def command(self, *args, _original=original, **kwargs):
                    if isinstance(self, redis.client.Pipeline):
                        return _original(self, *args, **kwargs)
                    return timed("redis", _original)(self, *args, **kwargs)

                setattr(owner, name, command)
            else:
                setattr(owner, name, timed(total, original))
        # As `pasok worker` logs (INFO, one line per job start and end), but to nowhere.
        logging.disable(logging.NOTSET)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            worker_class = ForkingAppWorker if fork else AppWorker
            worker = worker_class([FORWARD], connection=worker_redis(redis_url))
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = time.process_time()
            began = time.perf_counter()
            with redirect_stdout(devnull):
                worker.work(burst=True, with_scheduler=False)
            wall = time.perf_counter() - began
            cpu = time.process_time() - cpu
            after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            for (owner, name), original in zip(patched, originals, strict=True):
                setattr(owner, name, original)
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            root.removeHandler(handler)
            root.setLevel(level)
            logging.disable(logging.WARNING)
            devnull.close()
    jobs = len(order_ids)
    statuses = status_counts(app, order_ids[0], order_ids[-1])
    if statuses != {"in_progress": jobs}:
        raise BenchmarkError(f"profiled orders ended {statuses}")

    def per_job(seconds: float) -> float:
        return round(seconds / jobs * 1000, 2)

    children_cpu = (after_children.ru_utime - children.ru_utime) + (
        after_children.ru_stime - children.ru_stime
    )
    result = {
        "worker": "forking (--fork)" if fork else "simple (default)",
        "jobs": jobs,
        "wall_ms_per_job": per_job(wall),
        "cpu_ms_per_job": per_job(cpu),
        "children_cpu_ms_per_job": per_job(children_cpu),
        "children_minor_faults_per_job": round(
            (after_children.ru_minflt - children.ru_minflt) / jobs
        ),
        "latency_ms": latency_ms,
    }
    if not fork:
        result |= {
            "http_ms_per_job": per_job(totals["http"]),
            "http_beyond_latency_ms": round(per_job(totals["http"]) - latency_ms, 2),
            "job_beyond_http_ms": per_job(totals["job"] - totals["http"]),
            "rq_around_job_ms": per_job(wall - totals["job"]),
            "sql_ms_per_job": per_job(totals["sql"]),
            "sql_statements_per_job": round(counts["sql"] / jobs, 1),
            # Worker bookkeeping included: heartbeats, registries, results, the dequeue.
            "redis_ms_per_job": per_job(totals["redis"]),
            "redis_round_trips_per_job": round(counts["redis"] / jobs, 1),
        }
    return result


def check_upstream(app, sandbox: SandboxProvider, order_ids: list[int]) -> dict:
    """Exactly once: one sandbox order per Pasok order, carrying its id as `ref`, and the
    upstream id Pasok stored is that order's."""
    from sqlalchemy import text

    from app.extensions import db

    held = sandbox_orders(sandbox)
    by_ref: dict[str, list[int]] = {}
    for order in held:
        by_ref.setdefault(order["ref"], []).append(order["id"])
    with app.app_context():
        stored = dict(
            db.session.execute(
                text("SELECT id, external_id FROM orders WHERE id BETWEEN :a AND :b"),
                {"a": order_ids[0], "b": order_ids[-1]},
            ).all()
        )
        db.session.rollback()
    matched = sum(
        1 for order_id, external in stored.items() if by_ref.get(str(order_id)) == [int(external)]
    )
    return {
        "sandbox_orders": len(held),
        "distinct_refs": len(by_ref),
        "matched": matched,
        "expected": len(order_ids),
    }


def sandbox_orders(sandbox: SandboxProvider) -> list[dict]:
    conn = http.client.HTTPConnection(LOOPBACK, sandbox.port, timeout=120)
    try:
        conn.request("GET", "/__sandbox/orders")
        return json.loads(conn.getresponse().read())["orders"]
    finally:
        conn.close()


def forwarding_part(args, server_url: str, redis_url: str) -> dict:
    with temporary_database(server_url) as database_url:
        env = worker_env(database_url, redis_url, args.workers)
        run_pasok(env, "db", "upgrade")
        extra = ("--latency-ms", str(args.latency_ms), "--balance", SANDBOX_BALANCE)
        extra += ("--complete-after", COMPLETE_AFTER)
        with sandbox_provider(env, extra_args=extra) as sandbox:
            app = bench_app(database_url, redis_url)
            shop = build_shop(app, sandbox)
            profiled = min(args.profile // 2, 100)  # forking: slower, and only CPU and faults
            sizes = [args.orders, args.fork_orders, args.profile, profiled]
            sizes += [args.scan_orders] * len(args.scan)
            total = sum(sizes)
            made = time.perf_counter()
            template = place_template(app, shop)
            ids = copy_orders(app, template, total - 1, {})
            made = time.perf_counter() - made
            empty_redis(redis_url)  # the template's own job: all are enqueued at the start
            print(f"(a) {total} pending orders made in {made:.1f}s", file=sys.stderr)
            slices, start = [], 0
            for size in sizes:
                slices.append(ids[start : start + size])
                start += size
            runs = [forward_run(app, env, slices[0], args.workers, fork=False)]
            print(f"(a) simple worker: {runs[0]['seconds']:.1f}s", file=sys.stderr)
            if args.fork_orders:
                runs.append(forward_run(app, env, slices[1], args.workers, fork=True))
                print(f"(a) forking worker: {runs[1]['seconds']:.1f}s", file=sys.stderr)
            scan = []
            for count, order_ids in zip(args.scan, slices[4:], strict=True):
                scan.append(forward_run(app, env, order_ids, count, fork=False))
                print(f"(a) scan, {count} workers: {scan[-1]['seconds']:.1f}s", file=sys.stderr)
            profiles = []
            if args.profile:
                profiles.append(profile_forwarding(app, redis_url, slices[2], args.latency_ms))
                if profiled:
                    profiles.append(
                        profile_forwarding(app, redis_url, slices[3], args.latency_ms, fork=True)
                    )
            upstream = check_upstream(app, sandbox, ids)
            statuses = status_counts(app, ids[0], ids[-1])
            bare_rss = bare_rq_worker_rss(redis_url)
            checks = verify(app)
    for run in runs + scan:
        run["ideal_seconds"] = round(run["orders"] * args.latency_ms / 1000 / run["workers"], 3)
        run["ratio"] = round(run["seconds"] / run["ideal_seconds"], 3)
    clean = (
        checks["ledger_ok"]
        and checks["orders"] == total
        and statuses == {"in_progress": total}
        and upstream["sandbox_orders"] == upstream["distinct_refs"] == total
        and upstream["matched"] == total
    )
    return {
        "orders_made_seconds": round(made, 1),
        "runs": runs,
        "scan": scan,
        "profiles": profiles,
        "bare_rq_worker_rss_mib": round(bare_rss, 1),
        "upstream": upstream,
        "statuses": statuses,
        "verify": checks,
        "clean": clean,
    }


# --- (b) status sync ---------------------------------------------------------------------------


def add_upstream_orders(sandbox: SandboxProvider, shop: Shop, count: int) -> list[int]:
    """`count` orders added to the sandbox over its API (4 threads, kept-alive connections)."""
    local = threading.local()

    def add(number: int) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(LOOPBACK, sandbox.port, timeout=60)
        body = urlencode(
            {
                "key": sandbox.key,
                "action": "add",
                "service": shop.upstream_service,
                "link": f"{LINK}-{number}",
                "quantity": shop.quantity,
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for attempt in range(2):
            try:
                conn.request("POST", "/api/v2", body=body, headers=headers)
                reply = json.loads(conn.getresponse().read())
                break
            except (OSError, http.client.HTTPException):
                conn.close()  # the server closed a kept-alive connection: open a new one
                if attempt:
                    raise
        if "order" not in reply:
            raise BenchmarkError(f"sandbox add refused: {reply}")
        return reply["order"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(add, range(count), chunksize=256))


def sandbox_api_calls(sandbox: SandboxProvider) -> int:
    """API v2 requests the sandbox has answered so far, from its request log."""
    return len(API_CALL.findall(sandbox.log_path.read_bytes()))


def sync_part(args, server_url: str, redis_url: str) -> dict:
    from redis import Redis
    from rq.registry import FailedJobRegistry

    from workers.queues import STATUS

    expected_calls = math.ceil(args.active / 100)
    with temporary_database(server_url) as database_url:
        env = worker_env(database_url, redis_url, args.workers)
        run_pasok(env, "db", "upgrade")
        extra = ("--balance", SANDBOX_BALANCE, "--complete-after", COMPLETE_AFTER)
        with sandbox_provider(env, extra_args=extra) as sandbox:
            app = bench_app(database_url, redis_url)
            shop = build_shop(app, sandbox)
            made = time.perf_counter()
            upstream_ids = sorted(add_upstream_orders(sandbox, shop, args.active))
            if upstream_ids != list(range(upstream_ids[0], upstream_ids[0] + args.active)):
                raise BenchmarkError("the sandbox's order ids are not consecutive")
            sandbox.admin("settings", {"latency_ms": args.latency_ms})
            added_s = time.perf_counter() - made
            template = place_template(app, shop)
            ids = copy_orders(
                app,
                template,
                args.active - 1,
                {
                    "status": "'in_progress'",
                    "provider_id": str(shop.provider_id),
                    "provider_service_id": str(shop.provider_service_id),
                    "external_id": f"({upstream_ids[0]} + g)::text",
                    "attempts": "1",
                    "submitted_at": "now()",
                    "ref_sent": "false",
                    "next_poll_at": "NULL",
                },
            )
            made = time.perf_counter() - made
            empty_redis(redis_url)  # the template's forward job
            print(
                f"(b) {args.active} active orders made in {made:.1f}s "
                f"(sandbox adds {added_s:.1f}s)",
                file=sys.stderr,
            )
            connection = Redis.from_url(redis_url)
            with workers(env, args.workers, STATUS) as group:
                time.sleep(1)
                calls_before = sandbox_api_calls(sandbox)
                cpu_before = [cpu_seconds(pid) for pid in group.pids]
                started = time.perf_counter()
                fan_out = enqueue_sync(app)
                queue = fan_out.origin
                failed = FailedJobRegistry(queue, connection=connection)
                deadline = time.monotonic() + max(600, expected_calls * 2)
                while True:
                    # Done when the last batch has committed: every order's answer written
                    # (finished jobs are not counted: their results expire after 5 minutes).
                    time.sleep(POLL_SECONDS)
                    if synced_orders(app, ids[0], ids[-1]) == args.active:
                        break
                    if failed.count:
                        raise BenchmarkError(f"a status job failed:\n{group.log_tail()}")
                    if time.monotonic() > deadline:
                        raise BenchmarkError(f"sync not done in time:\n{group.log_tail()}")
                seconds = time.perf_counter() - started
                cpu = sum(cpu_seconds(p) - b for p, b in zip(group.pids, cpu_before, strict=True))
                time.sleep(0.5)  # the log's last lines
                calls = sandbox_api_calls(sandbox) - calls_before
                fan_out.refresh()
                planning = (fan_out.ended_at - fan_out.started_at).total_seconds()
                failed_jobs = failed.count
            statuses = status_counts(app, ids[0], ids[-1])
            synced = synced_orders(app, ids[0], ids[-1])
            profile = profile_sync(app, shop.provider_id, ids[: min(len(ids), 2000)])
            checks = verify(app)
    ideal = expected_calls * args.latency_ms / 1000 / args.workers
    clean = (
        checks["ledger_ok"]
        and checks["orders"] == args.active
        and statuses == {"in_progress": args.active}
        and synced == args.active
        and failed_jobs == 0
    )
    return {
        "orders": args.active,
        "orders_made_seconds": round(made, 1),
        "workers": args.workers,
        "status_concurrency": args.workers,
        "calls": calls,
        "calls_expected": expected_calls,
        "seconds": round(seconds, 3),
        "ideal_seconds": round(ideal, 3),
        "ratio": round(seconds / ideal, 3),
        "fan_out_seconds": round(planning, 3),
        "worker_cpu_ms_per_batch": round(cpu / expected_calls * 1000, 2),
        "profile": profile,
        "synced_orders": synced,
        "failed_jobs": failed_jobs,
        "statuses": statuses,
        "verify": checks,
        "clean": clean and calls == expected_calls,
    }


def profile_sync(app, provider_id: int, order_ids: list[int]) -> dict:
    """Where a status batch's time goes: `sync_batch` on these orders (100 at a time) in this
    process, with its HTTP call and its SQL timed apart."""
    from sqlalchemy import event

    from app.extensions import db
    from app.orders.status_sync import sync_batch
    from app.providers.client import ProviderClient
    from tenants.context import across_tenants

    http = [0.0]
    sql = [0.0, 0]
    began_sql: list[float] = []
    original = ProviderClient._call

    def call(self, *args, **kwargs):
        began = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            http[0] += time.perf_counter() - began

    def before(*_):
        began_sql.append(time.perf_counter())

    def after(*_):
        sql[0] += time.perf_counter() - began_sql.pop()
        sql[1] += 1

    batches = [order_ids[i : i + 100] for i in range(0, len(order_ids), 100)]
    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        ProviderClient._call = call
        try:
            cpu, began = time.process_time(), time.perf_counter()
            for batch in batches:
                with across_tenants():
                    report = sync_batch(provider_id, batch)
                db.session.remove()
                if report.calls != 1 or report.updated != len(batch):
                    raise BenchmarkError(f"profiled batch: {report.summary()}")
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        finally:
            ProviderClient._call = original
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)

    def per_batch(seconds: float) -> float:
        return round(seconds / len(batches) * 1000, 2)

    return {
        "batches": len(batches),
        "wall_ms_per_batch": per_batch(wall),
        "cpu_ms_per_batch": per_batch(cpu),
        "http_ms_per_batch": per_batch(http[0]),
        "sql_ms_per_batch": per_batch(sql[0]),
        "sql_statements_per_batch": round(sql[1] / len(batches), 1),
    }


def enqueue_sync(app):
    """The `orders.sync` fan-out job, as `pasok cron` enqueues it every minute."""
    from workers.queues import STATUS, get_queue
    from workers.status_jobs import sync_statuses

    with app.app_context():
        return get_queue(STATUS).enqueue(sync_statuses, job_timeout=300, result_ttl=300)


def synced_orders(app, first: int, last: int) -> int:
    """Orders whose upstream answer was written (remains is set on every answer)."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        count = db.session.scalar(
            text("SELECT count(*) FROM orders WHERE id BETWEEN :a AND :b AND remains IS NOT NULL"),
            {"a": first, "b": last},
        )
        db.session.rollback()
    return count


# --- the run -----------------------------------------------------------------------------------


def worker_env(database_url: str, redis_url: str, concurrency: int) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PASOK_PLATFORM_DOMAIN="localhost",
        PASOK_STATUS_CONCURRENCY=str(concurrency),
    )


def empty_redis(redis_url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).flushdb()
    except redis.RedisError as error:
        raise BenchmarkError(f"Redis at {redis_url} does not answer: {error}") from None


def run_benchmark(args, server_url: str, redis_url: str) -> dict:
    empty_redis(redis_url)
    try:
        forwarding = forwarding_part(args, server_url, redis_url)
        empty_redis(redis_url)
        sync = sync_part(args, server_url, redis_url) if args.active else None
        return {"forwarding": forwarding, "sync": sync}
    finally:
        empty_redis(redis_url)


# --- the report --------------------------------------------------------------------------------


def build_report(args, load_average: float, outcome: dict) -> dict:
    forwarding, sync = outcome["forwarding"], outcome["sync"]
    simple = forwarding["runs"][0]
    clean = forwarding["clean"] and (sync is None or sync["clean"])
    return {
        "benchmark": "pipeline",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "orders": args.orders,
            "fork_orders": args.fork_orders,
            "active": args.active,
            "workers": args.workers,
            "in_flight_per_worker": 1,
            "c": args.workers,
            "latency_ms": args.latency_ms,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [load_average, os.getloadavg()[0]],
        },
        "forwarding": forwarding,
        "sync": sync,
        "memory": memory_summary(forwarding),
        "goal_ratio": GOAL_RATIO,
        "goal_met": clean and simple["ratio"] <= GOAL_RATIO,
        "clean": clean,
    }


def memory_summary(forwarding: dict) -> dict:
    def median(values: list[float]) -> float:
        return round(statistics.median(values), 1)

    summary = {"bare_rq_worker_mib": forwarding["bare_rq_worker_rss_mib"]}
    for run in forwarding["runs"]:
        kind = "fork" if run["worker"].startswith("forking") else "simple"
        summary[f"{kind}_idle_mib"] = median(run["rss_idle_mib"])
        summary[f"{kind}_after_mib"] = median(run["rss_after_mib"])
    return summary


def print_report(report: dict) -> None:
    config, forwarding, sync = report["config"], report["forwarding"], report["sync"]
    print(
        f"\nPasok pipeline: sandbox provider at {config['latency_ms']} ms, C = "
        f"{config['workers']} workers x 1 in flight; {config['cpus']} CPUs, load average "
        f"{config['load_average'][0]:.1f} at the start"
    )
    header = TABLE_ROW.format("step", "N", "C", "ideal s", "actual s", "ratio", "cpu ms/job")
    print(header)
    print("-" * len(header))
    for run in forwarding["runs"]:
        print(
            TABLE_ROW.format(
                f"(a) forward, {run['worker']} worker",
                f"{run['orders']:,}",
                run["workers"],
                f"{run['ideal_seconds']:.1f}",
                f"{run['seconds']:.1f}",
                f"{run['ratio']:.2f}x",
                f"{run['worker_cpu_ms_per_job']:.1f}",
            )
        )
    for run in forwarding["scan"]:
        print(
            TABLE_ROW.format(
                f"(a) scan: forward, {run['workers']} workers",
                f"{run['orders']:,}",
                run["workers"],
                f"{run['ideal_seconds']:.1f}",
                f"{run['seconds']:.1f}",
                f"{run['ratio']:.2f}x",
                f"{run['worker_cpu_ms_per_job']:.1f}",
            )
        )
    if sync:
        print(
            TABLE_ROW.format(
                f"(b) status sync, {sync['calls']:,} calls (need {sync['calls_expected']:,})",
                f"{sync['orders']:,}",
                sync["workers"],
                f"{sync['ideal_seconds']:.1f}",
                f"{sync['seconds']:.1f}",
                f"{sync['ratio']:.2f}x",
                f"{sync['worker_cpu_ms_per_batch']:.1f}",
            )
        )
        print(
            f"(b) fan-out (plan, lease, enqueue {sync['calls_expected']:,} batch jobs): "
            f"{sync['fan_out_seconds']:.1f}s; orders synced {sync['synced_orders']:,} of "
            f"{sync['orders']:,}; failed jobs {sync['failed_jobs']}"
        )
        profile = sync["profile"]
        print(
            f"(b) one batch in-process ({profile['batches']} batches of 100): "
            f"{profile['wall_ms_per_batch']:.1f} ms wall = HTTP {profile['http_ms_per_batch']:.1f}"
            f" + the rest (SQL {profile['sql_ms_per_batch']:.1f} in "
            f"{profile['sql_statements_per_batch']:.0f} statements); CPU "
            f"{profile['cpu_ms_per_batch']:.1f} ms"
        )
    for profile in forwarding["profiles"]:
        print(
            f"(a) one {profile['worker']} worker in-process, {profile['jobs']} jobs: "
            f"{profile['wall_ms_per_job']:.1f} ms/job wall, CPU {profile['cpu_ms_per_job']:.1f} "
            f"ms/job (+ {profile['children_cpu_ms_per_job']:.1f} in children, "
            f"{profile['children_minor_faults_per_job']:,} page faults)"
        )
        if "http_ms_per_job" in profile:
            print(
                f"    = HTTP {profile['http_ms_per_job']:.1f} ({profile['latency_ms']} latency + "
                f"{profile['http_beyond_latency_ms']:.1f}) + the job's other work "
                f"{profile['job_beyond_http_ms']:.1f} (SQL {profile['sql_ms_per_job']:.1f} in "
                f"{profile['sql_statements_per_job']:.0f} statements) + RQ around the job "
                f"{profile['rq_around_job_ms']:.1f}; Redis {profile['redis_ms_per_job']:.1f} ms "
                f"in {profile['redis_round_trips_per_job']:.0f} round trips per job"
            )
    memory = report["memory"]
    line = (
        f"(c) worker RSS MiB (median): pasok worker idle {memory['simple_idle_mib']:.1f}, after "
        f"jobs {memory['simple_after_mib']:.1f}"
    )
    if "fork_idle_mib" in memory:
        line += f"; pasok worker --fork idle {memory['fork_idle_mib']:.1f}"
    print(line + f"; bare rq worker idle {memory['bare_rq_worker_mib']:.1f}")
    upstream = forwarding["upstream"]
    print(
        f"upstream: {upstream['sandbox_orders']:,} sandbox orders, {upstream['distinct_refs']:,} "
        f"refs, {upstream['matched']:,} matched of {upstream['expected']:,} (exactly once)"
    )
    for name, part in (("(a)", forwarding), ("(b)", sync)):
        if part is None:
            continue
        checks = part["verify"]
        print(
            f"{name} ledger verify: {'clean' if checks['ledger_ok'] else 'NOT clean'} "
            f"({checks['accounts']} accounts, {checks['entries']:,} entries, "
            f"{checks['postings']:,} postings); orders {checks['orders']:,}, statuses "
            f"{part['statuses']}"
        )
    simple = forwarding["runs"][0]
    verdict = "met" if report["goal_met"] else "NOT met"
    print(
        f"\n(a) forwarding at {simple['ratio']:.2f}x ideal (goal <= {GOAL_RATIO}x, counts and "
        f"ledger clean: {'yes' if report['clean'] else 'NO'}): {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_average = os.getloadavg()[0]
    outcome = run_on_postgres(
        lambda server_url, redis_url: run_benchmark(args, server_url, redis_url),
        default_redis_url=DEFAULT_REDIS_URL,
        left_behind="workers stopped and databases dropped",
    )
    if isinstance(outcome, int):
        return outcome
    report = build_report(args, load_average, outcome)
    print_report(report)
    write_results(args.output, report)
    if not report["clean"]:
        return 1
    return 1 if args.check and not report["goal_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
