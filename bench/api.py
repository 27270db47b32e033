"""API v2 throughput: `add` and 100-order multi-`status` calls per second under gunicorn on
PostgreSQL, beside a bare Flask endpoint on the same server in the same run.

    .venv/bin/python bench/api.py [--rounds 5] [--duration 5] [--connections 8] [--workers 2]
                                  [--warmup 2]

One gunicorn (sync workers) serves `bench.servers:app`: Pasok, plus a bare Flask app at
`/__bare`. wrk (1 thread) loads, in alternating rounds whose order flips every round:
- the bare endpoint (`GET /__bare`), the baseline;
- `add` (`POST /api/v2` on `bench.localhost`, form-encoded, a Default service, quantity 100):
  each request carries a `ref` of its own (a wrk Lua script numbers them under a prefix new to
  every round), so each one places a new order: `place_order`, both wallets charged, the
  commit and the forward job's enqueue (no worker runs);
- `status` with `orders` = 100 ids of orders the customer placed before the rounds.

Every API reply is read by the Lua script: a reply without `"order"` (add) or `"status"`
(status), or with an `"error"`, invalidates the run. The shop is bench/orders.py's (one USD
tenant, one service at 1.00 per 1000 upstream, wallets funded for far more orders than a run
places); one API key of one customer sends everything, so its per-key rate limit is lifted on
the served app (its `PASOK_API_RATE_LIMIT` set high in the config of the app gunicorn serves).
Each round also records the server's CPU time per request (master and workers, from /proc),
steadier than throughput on a shared machine. After the run the ledger is verified
(`verify_ledger`) and the orders counted: at least one per `add` wrk counted (a request still
in flight when wrk stopped may add one more per connection).

The database is a new one on the PostgreSQL server PASOK_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres), dropped afterwards; Redis is
PASOK_BENCH_REDIS_URL (default db 15 on the local server), emptied before and after. Results go
to bench/results/api.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlencode

from harness import (
    RESULTS_DIR,
    BenchmarkError,
    Gunicorn,
    WrkRound,
    add_wrk_options,
    check_wrk_options,
    fetch,
    gunicorn,
    parse_wrk,
    post_form,
    print_round_progress,
    run_on_postgres,
    run_pasok,
    temporary_database,
    write_results,
    wrk_available,
    wrk_medians,
    wrk_output,
    wrk_round,
    wrk_version,
)
from orders import (
    LINK,
    QUANTITY,
    bench_app,
    build_shop,
    empty_redis,
    place_one,
    verify,
)

HOST = "bench.localhost"  # bench/orders.py's tenant
API_PATH = "/api/v2"
STATUS_IDS = 100  # the most one multi-status call takes
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
SERVER_MODULE = "pasok_api_bench_server"
TABLE_ROW = "{:<40} {:>8} {:>7} {:>7} {:>7} {:>10}"
BAD_REPLIES = re.compile(r"^bad replies: (\d+)$", re.MULTILINE)
FIRST_BAD = re.compile(r"^first bad reply: (.*)$", re.MULTILINE)

# The app gunicorn serves: bench.servers' (Pasok and the bare app), the per-key limit lifted.
SERVER_SOURCE = '''"""Written by bench/api.py: bench.servers' app, the per-key rate limit lifted."""
from bench.servers import app, pasok

pasok.config["PASOK_API_RATE_LIMIT"] = "1000000000 per minute"
'''

# wrk's Lua: a form POST, a ref of its own per request where UNIQUE_REF, every reply checked.
LUA = """-- Written by bench/api.py.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = [[@BODY@]]
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  bad, sample, sent = 0, "", 0
  prefix = "@PREFIX@-" .. id .. "-"
end

if @UNIQUE_REF@ then
  function request()
    sent = sent + 1
    return wrk.format(nil, nil, nil, wrk.body .. "&ref=" .. prefix .. sent)
  end
end

function response(status, headers, body)
  if status ~= 200 or not body:find([[@EXPECTED@]], 1, true) or body:find('"error"', 1, true) then
    bad = bad + 1
    if sample == "" then sample = body:sub(1, 300) end
  end
end

function done(summary, latency, requests)
  local total, first = 0, ""
  for _, thread in ipairs(threads) do
    total = total + thread:get("bad")
    if first == "" then first = thread:get("sample") end
  end
  io.write("bad replies: " .. total .. "\\n")
  if total > 0 then io.write("first bad reply: " .. first .. "\\n") end
end
"""


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str
    fields: dict[str, str] | None = None  # a form POST's (by wrk's Lua script); None: a GET
    expected: str = "ok"  # in every good reply
    unique_ref: bool = False

    def script(self, directory: Path) -> Path | None:
        """This endpoint's wrk script, under a ref prefix no other round has used."""
        if self.fields is None:
            return None
        text = (
            LUA.replace("@BODY@", urlencode(self.fields))
            .replace("@PREFIX@", f"{self.key}-{secrets.token_hex(4)}")
            .replace("@UNIQUE_REF@", "true" if self.unique_ref else "false")
            .replace("@EXPECTED@", self.expected)
        )
        path = directory / f"{self.key}.lua"
        path.write_text(text, encoding="utf-8")
        return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_wrk_options(parser, warmup=2)
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "api.json", help="results JSON"
    )
    args = parser.parse_args(argv)
    check_wrk_options(parser, args)
    return args


# --- the shop and the endpoints ------------------------------------------------------------------


def prepare(app) -> list[Endpoint]:
    """bench/orders.py's shop, STATUS_IDS orders of its customer to ask about and a key of
    theirs: the endpoints to load."""
    from app.api.keys import create_key
    from app.extensions import db
    from app.orders.models import Order
    from tenants.context import tenant_scope

    shop = build_shop(app, 1)
    customer_id = shop.customer_ids[0]
    for number in range(STATUS_IDS):
        place_one(app, shop, customer_id, f"status-{number}")
    with app.app_context(), tenant_scope(shop.tenant_id):
        key = create_key(shop.tenant_id, customer_id, "bench", actor="bench").token
        ids = db.session.scalars(
            db.select(Order.id).where(Order.customer_id == customer_id).order_by(Order.id)
        ).all()
        db.session.commit()
        db.engine.dispose()  # the server has its own connections; this one idles till the end
    add = {"key": key, "action": "add", "service": str(shop.service_id), "link": LINK,
           "quantity": QUANTITY}  # fmt: skip
    status = {"key": key, "action": "status", "orders": ",".join(map(str, ids))}
    endpoints = [
        Endpoint("bare", "bare Flask  GET /__bare", "/__bare"),
        Endpoint("add", "add        POST /api/v2", API_PATH, add, '"order"', unique_ref=True),
        Endpoint(
            "status", f"status     POST /api/v2 ({len(ids)} ids)", API_PATH, status, '"status"'
        ),
    ]
    return endpoints


def check_endpoints(server: Gunicorn, endpoints: list[Endpoint]) -> None:
    """Each endpoint answers as it should once, before wrk's numbers for it are trusted."""
    bare = fetch(server.port, "/__bare", HOST)
    if bare.status != 200 or bare.body != "ok":
        raise BenchmarkError(f"/__bare answered {bare.status}: {bare.body[:300]}")
    for endpoint in endpoints:
        if endpoint.fields is None:
            continue
        fields = dict(endpoint.fields)
        if endpoint.unique_ref:
            fields["ref"] = "check"
        reply = post_form(server.port, endpoint.path, HOST, fields)
        try:
            data = json.loads(reply.body)
        except ValueError:
            data = None
        good = reply.status == 200 and isinstance(data, dict) and "error" not in data
        if endpoint.key == "status":
            good = good and len(data) == STATUS_IDS and all("status" in v for v in data.values())
        if not good:
            raise BenchmarkError(f"{endpoint.label} answered {reply.status}: {reply.body[:300]}")


# --- the rounds --------------------------------------------------------------------------------


def measure(
    server: Gunicorn, endpoint: Endpoint, args: argparse.Namespace, seconds: int, scripts: Path
) -> WrkRound:
    script = endpoint.script(scripts)
    cpu_before = server.cpu_seconds()
    output = wrk_output(
        server.port,
        endpoint.path,
        HOST,
        connections=args.connections,
        duration=seconds,
        script=script,
    )
    cpu = server.cpu_seconds() - cpu_before
    result = parse_wrk(output)
    bad = BAD_REPLIES.search(output)
    if script is not None and (bad is None or int(bad.group(1))):
        first = FIRST_BAD.search(output)
        raise BenchmarkError(
            f"{endpoint.label}: {bad.group(1) if bad else 'unchecked'} bad replies of "
            f"{result.requests}; the first: {first.group(1) if first else output[-500:]}"
        )
    return wrk_round(endpoint.label, result, cpu)


def run_rounds(
    server: Gunicorn, endpoints: list[Endpoint], args: argparse.Namespace, scripts: Path
) -> tuple[dict[str, list[WrkRound]], int]:
    """Warm every endpoint up, then alternate them, flipping the order every round so that
    drift in the machine's load hits all alike; also the `add` requests wrk counted."""
    adds = 0
    if args.warmup:
        for endpoint in endpoints:
            warm = measure(server, endpoint, args, args.warmup, scripts)
            adds += warm.wrk.requests if endpoint.unique_ref else 0
    rounds: dict[str, list[WrkRound]] = {e.key: [] for e in endpoints}
    for number in range(1, args.rounds + 1):
        for endpoint in endpoints if number % 2 else endpoints[::-1]:
            result = measure(server, endpoint, args, args.duration, scripts)
            adds += result.wrk.requests if endpoint.unique_ref else 0
            rounds[endpoint.key].append(result)
        print_round_progress(number, args.rounds, rounds)
    return rounds, adds


def run_benchmark(args: argparse.Namespace, server_url: str, redis_url: str) -> dict:
    from app.extensions import db

    empty_redis(redis_url)
    scripts = Path(tempfile.mkdtemp(prefix="pasok-bench-api-"))
    try:
        with temporary_database(server_url) as database_url:
            env = dict(
                os.environ,
                DATABASE_URL=database_url,
                REDIS_URL=redis_url,
                PASOK_PLATFORM_DOMAIN="localhost",
                PASOK_ENV="development",
            )
            run_pasok(env, "db", "upgrade")
            app = bench_app(database_url, redis_url)
            endpoints = prepare(app)
            (scripts / f"{SERVER_MODULE}.py").write_text(SERVER_SOURCE, encoding="utf-8")
            served = dict(env, PYTHONPATH=str(scripts))
            with gunicorn(
                f"{SERVER_MODULE}:app", served, workers=args.workers, ready_path="/__bare"
            ) as server:
                check_endpoints(server, endpoints)
                rounds, adds = run_rounds(server, endpoints, args, scripts)
            expected = STATUS_IDS + 1 + adds  # the status run's orders, the check's, wrk's
            checks = verify(app, expected)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        shutil.rmtree(scripts, ignore_errors=True)
        empty_redis(redis_url)
    # A request in flight when wrk stopped is not counted by wrk but may have placed its order.
    allowance = args.connections * (args.rounds + (1 if args.warmup else 0))
    checks["orders_ok"] = expected <= checks["orders"] <= expected + allowance
    return {"endpoints": endpoints, "rounds": rounds, "verify": checks}


# --- the report --------------------------------------------------------------------------------


def build_report(args: argparse.Namespace, load_average: float, outcome: dict) -> dict:
    medians = wrk_medians(outcome["rounds"])
    bare = medians["bare"]["requests_per_sec"]
    return {
        "benchmark": "api",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "database": "postgresql",
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "workers": args.workers,
            "wrk_threads": 1,
            "status_ids": STATUS_IDS,
            "gunicorn": version("gunicorn"),
            "wrk": wrk_version(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [load_average, os.getloadavg()[0]],  # 1-minute, at start and end
        },
        "endpoints": {
            e.key: {"label": e.label, "path": e.path, "host": HOST} for e in outcome["endpoints"]
        },
        "medians": medians,
        "ratios": {key: round(m["requests_per_sec"] / bare, 4) for key, m in medians.items()},
        "verify": outcome["verify"],
        "rounds": {key: [asdict(r) for r in results] for key, results in outcome["rounds"].items()},
    }


def print_table(report: dict) -> None:
    config, medians = report["config"], report["medians"]
    print(
        f"\nPasok API v2: PostgreSQL, gunicorn -w {config['workers']} (sync), "
        f"wrk -t1 -c{config['connections']}, {config['rounds']} rounds x "
        f"{config['duration_s']}s each, medians; load average {config['load_average'][0]:.1f} "
        f"on {config['cpus']} CPUs at the start"
    )
    header = TABLE_ROW.format("run", "req/s", "p50 ms", "p99 ms", "vs bare", "cpu-us/req")
    print(header)
    print("-" * len(header))
    for key, endpoint in report["endpoints"].items():
        m = medians[key]
        print(
            TABLE_ROW.format(
                endpoint["label"],
                f"{m['requests_per_sec']:.1f}",
                f"{m['p50_ms']:.2f}",
                f"{m['p99_ms']:.2f}",
                f"{report['ratios'][key]:.1%}",
                f"{m['server_cpu_us_per_request']:.0f}",
            )
        )
    checks = report["verify"]
    ledger = "clean" if checks["ledger_ok"] else "NOT CLEAN"
    print(
        f"\nledger {ledger} ({checks['entries']} entries); {checks['orders']} orders for "
        f"{checks['orders_expected']} placements counted: "
        f"{'ok' if checks['orders_ok'] else 'MISMATCH'}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    load_average = os.getloadavg()[0]
    outcome = run_on_postgres(
        lambda server_url, redis_url: run_benchmark(args, server_url, redis_url),
        default_redis_url=DEFAULT_REDIS_URL,
        left_behind="server stopped and database dropped",
    )
    if isinstance(outcome, int):
        return outcome
    report = build_report(args, load_average, outcome)
    print_table(report)
    write_results(args.output, report)
    return 0 if report["verify"]["ledger_ok"] and report["verify"]["orders_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
