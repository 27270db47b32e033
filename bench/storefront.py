"""Storefront throughput: a tenant's home page against a bare Flask endpoint on the same server.

    .venv/bin/python bench/storefront.py [--rounds 5] [--duration 5] [--connections 8]

One gunicorn (sync workers) serves `bench.servers:app`: Pasok, plus a bare Flask app at
`/__bare`. wrk loads the bare endpoint and acme's home page (`Host: acme.localhost`: tenant
resolution, session, themed render) in alternating rounds, and the medians are compared. The goal
is a tenant page at no less than half the bare endpoint's throughput.

Throughput on a shared machine moves with everything else running on it, so each round also
records the server's CPU time per request (master and workers, from /proc): a steadier figure
for what a request costs, shown beside the throughput.

The database is a throwaway one: an SQLite file, or, with PASOK_BENCH_DATABASE_URL set to a
PostgreSQL server URL, a new database on that server that is dropped afterwards. Redis is
PASOK_BENCH_REDIS_URL (default db 11 on the local server). Results go to
bench/results/storefront.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from harness import (
    RESULTS_DIR,
    BenchmarkError,
    Gunicorn,
    WrkRound,
    add_wrk_options,
    check_wrk_options,
    database_backend,
    exit_cleanly_on_sigterm,
    fetch,
    gunicorn,
    print_round_progress,
    run_pasok,
    run_wrk,
    temporary_database,
    write_results,
    wrk_available,
    wrk_medians,
    wrk_round,
    wrk_version,
)

TENANT_HOST = "acme.localhost"  # seeded by `pasok seed-demo`
GOAL_RATIO = 0.5
DEFAULT_APP = "bench.servers:app"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
TABLE_ROW = "{:<36} {:>8} {:>7} {:>7} {:>6} {:>10}"


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str
    expected_text: str  # a 200 without it means we measured the wrong page


BARE = Endpoint("bare", "bare Flask  GET /__bare", "/__bare", "ok")
TENANT = Endpoint("tenant", f"tenant home GET / ({TENANT_HOST})", "/", "Acme Social")
# For context, not the goal: a page rendered for every request (theme, CSRF token, new session).
RENDERED = Endpoint("rendered", "tenant sign-in GET /login (rendered)", "/login", "Acme Social")
ENDPOINTS = (BARE, TENANT, RENDERED)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_wrk_options(parser, warmup=3)
    parser.add_argument(
        "--app",
        default=DEFAULT_APP,
        help=f"WSGI app serving Pasok and {BARE.path}, to try out a change (default {DEFAULT_APP})",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "storefront.json", help="results JSON"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the tenant page misses the goal"
    )
    args = parser.parse_args(argv)
    check_wrk_options(parser, args)
    return args


def bench_environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=os.environ.get("PASOK_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        PASOK_PLATFORM_DOMAIN="localhost",
        PASOK_ENV="development",
    )
    return env


def check_endpoint(server: Gunicorn, endpoint: Endpoint) -> None:
    """A 200 with the expected page, before we trust wrk's numbers for it."""
    response = fetch(server.port, endpoint.path, TENANT_HOST)
    if response.status != 200 or endpoint.expected_text not in response.body:
        raise BenchmarkError(
            f"{endpoint.label} answered {response.status} without {endpoint.expected_text!r}:\n"
            f"{response.body[:500]}"
        )


def measure(
    server: Gunicorn, endpoint: Endpoint, args: argparse.Namespace, seconds: int
) -> WrkRound:
    cpu_before = server.cpu_seconds()
    result = run_wrk(
        server.port, endpoint.path, TENANT_HOST, connections=args.connections, duration=seconds
    )
    cpu = server.cpu_seconds() - cpu_before
    return wrk_round(endpoint.label, result, cpu)


def run_rounds(server: Gunicorn, args: argparse.Namespace) -> dict[str, list[WrkRound]]:
    """Warm both endpoints up, then alternate them, swapping the order every round so that
    drift in the machine's load hits both alike."""
    for endpoint in ENDPOINTS:
        check_endpoint(server, endpoint)
        if args.warmup:
            measure(server, endpoint, args, args.warmup)
    rounds: dict[str, list[WrkRound]] = {e.key: [] for e in ENDPOINTS}
    for number in range(1, args.rounds + 1):
        order = ENDPOINTS if number % 2 else ENDPOINTS[::-1]
        for endpoint in order:
            rounds[endpoint.key].append(measure(server, endpoint, args, args.duration))
        print_round_progress(number, args.rounds, rounds)
    return rounds


def print_table(report: dict) -> None:
    config, medians = report["config"], report["medians"]
    print(
        f"\nPasok storefront: {config['database']}, gunicorn -w {config['workers']} (sync), "
        f"wrk -t1 -c{config['connections']}, {config['rounds']} rounds x "
        f"{config['duration_s']}s each, medians; load average {config['load_average'][0]:.1f} "
        f"on {config['cpus']} CPUs at the start"
    )
    header = TABLE_ROW.format("endpoint", "req/s", "p50 ms", "p99 ms", "ratio", "cpu-us/req")
    print(header)
    print("-" * len(header))
    bare_rps = medians[BARE.key]["requests_per_sec"]
    for endpoint in ENDPOINTS:
        m = medians[endpoint.key]
        print(
            TABLE_ROW.format(
                endpoint.label,
                f"{m['requests_per_sec']:.1f}",
                f"{m['p50_ms']:.2f}",
                f"{m['p99_ms']:.2f}",
                f"{m['requests_per_sec'] / bare_rps:.1%}",
                f"{m['server_cpu_us_per_request']:.0f}",
            )
        )
    verdict = "met" if report["goal_met"] else "NOT met"
    print(f"\ntenant/bare throughput = {report['ratio']:.1%} (goal >= {GOAL_RATIO:.0%}): {verdict}")
    print(f"bare/tenant server CPU per request = {report['cpu_ratio']:.1%}")


def build_report(
    args: argparse.Namespace,
    database_url: str,
    load_average: float,
    rounds: dict[str, list[WrkRound]],
) -> dict:
    medians = wrk_medians(rounds)
    bare, tenant = medians[BARE.key], medians[TENANT.key]
    ratio = tenant["requests_per_sec"] / bare["requests_per_sec"]
    return {
        "benchmark": "storefront",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "database": database_backend(database_url),
            "app": args.app,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "workers": args.workers,
            "wrk_threads": 1,
            "gunicorn": version("gunicorn"),
            "wrk": wrk_version(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [load_average, os.getloadavg()[0]],  # 1-minute, at start and end
        },
        "endpoints": {
            e.key: {"label": e.label, "path": e.path, "host": TENANT_HOST} for e in ENDPOINTS
        },
        "medians": medians,
        "ratio": round(ratio, 4),
        "cpu_ratio": round(
            bare["server_cpu_us_per_request"] / tenant["server_cpu_us_per_request"], 4
        ),
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "rounds": {key: [asdict(r) for r in results] for key, results in rounds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not wrk_available():
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    exit_cleanly_on_sigterm()
    load_average = os.getloadavg()[0]
    try:
        with temporary_database(os.environ.get("PASOK_BENCH_DATABASE_URL")) as database_url:
            env = bench_environment(database_url)
            run_pasok(env, "db", "upgrade")
            run_pasok(env, "seed-demo")
            with gunicorn(args.app, env, workers=args.workers, ready_path=BARE.path) as server:
                rounds = run_rounds(server, args)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        return 130

    report = build_report(args, database_url, load_average, rounds)
    print_table(report)
    write_results(args.output, report)
    return 1 if args.check and not report["goal_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
