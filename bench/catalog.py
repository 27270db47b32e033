"""Catalog sync: import a provider's catalog, then re-sync it with a share of it changed, beside
a bare SQLAlchemy Core bulk upsert of the same rows.

    .venv/bin/python bench/catalog.py [--services 5000] [--changed 0.10] [--rounds 3]
                                      [--scale 1000,5000,10000] [--check]

The sandbox provider (`pasok sandbox-provider --services N`, its own process on a free loopback
port) is the upstream. Each round empties the catalog, resets the sandbox and measures:
- import: `fetch_services(provider)` (one `services` call: HTTP and JSON parse), then
  `sync_provider(provider, upstream)` and the commit ("apply");
- re-sync, after the sandbox's admin endpoint has changed `--changed` of the services (mostly
  reprices, some limit updates, a few removals and as many additions): the same two steps;
- after each, the baseline: the same rows, shaped as `provider_services` rows, upserted into a
  scratch table of the same shape with INSERT … ON CONFLICT DO UPDATE, in batches of 500, by
  SQLAlchemy Core alone (no change log, no platform services, no routes).

Timed rounds give the medians; one more round per size runs under tracemalloc (which slows
Python several times over) for the peak memory of each step: the most it held at once beyond
what was alive when it began. SQL statements are counted on the engine (an executemany or an
insertmanyvalues batch counts once). `--scale` repeats the measurement at other catalog sizes
(one timed round each) to show how time, statements and memory grow with the catalog.

The goal: the re-sync of 5,000 services in under 5 s, its apply step within 3x the baseline,
and peak memory per service that does not grow with the catalog (the `services` reply alone is
proportional to the catalog, so the absolute peak cannot be constant).

The database is a throwaway one: an SQLite file, or, with PASOK_BENCH_DATABASE_URL set to a
PostgreSQL server URL, a new database on that server that is dropped afterwards. Results go to
bench/results/catalog.json.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import random
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from harness import (
    RESULTS_DIR,
    BenchmarkError,
    Measurement,
    SandboxProvider,
    StatementCounter,
    database_backend,
    exit_cleanly_on_sigterm,
    max_rss_mib,
    measured,
    run_pasok,
    sandbox_provider,
    temporary_database,
    write_results,
)

GOAL_SECONDS = 5.0
GOAL_RATIO = 3.0
GOAL_SERVICES = 5000
# Peak memory per upstream service may grow this much from the smallest --scale size to the
# largest: the reply and the known rows are O(N), but nothing may be worse than linear.
GOAL_MEMORY_GROWTH = 1.25
DEFAULT_SYNC = "app.catalog.sync"
SCRATCH_TABLE = "bench_provider_services"
# Children before parents, for SQLite's DELETEs.
CATALOG_TABLES = (
    "catalog_changes",
    "service_routes",
    "services",
    "categories",
    "provider_services",
)
PHASES = ("import", "resync")
STEPS = ("fetch", "apply", "total", "baseline")
PHASE_LABELS = {"import": "import", "resync": "re-sync"}
STEP_LABELS = {
    "fetch": "fetch (HTTP + JSON parse)",
    "apply": "apply (sync_provider + commit)",
    "total": "total (fetch + apply)",
    "baseline": "baseline Core upsert + commit",
}
TABLE_ROW = "{:<8} {:<31} {:>8} {:>8} {:>9} {:>10} {:>8}"
SCALE_ROW = "{:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>8}"


@dataclass(frozen=True)
class ChangePlan:
    """What the sandbox is told to change between the import and the re-sync."""

    reprice: dict[str, str]
    update: dict[str, dict[str, int]]
    remove: list[int]
    add: int

    def body(self) -> dict:
        return {
            "reprice": self.reprice,
            "update": self.update,
            "remove": self.remove,
            "add": self.add,
        }

    def expected(self) -> dict[str, int]:
        return {
            "added": self.add,
            "repriced": len(self.reprice),
            "updated": len(self.update),
            "removed": len(self.remove),
            "restored": 0,
        }

    def describe(self) -> str:
        e = self.expected()
        return (
            f"{e['repriced']} repriced, {e['updated']} limits updated, "
            f"{e['removed']} removed, {e['added']} added"
        )


@dataclass
class SizeResult:
    services: int
    plan: ChangePlan
    rounds: list[dict[str, Measurement]] = field(default_factory=list)
    traced: dict[str, Measurement] = field(default_factory=dict)

    def median_seconds(self, key: str) -> float:
        return statistics.median(r[key].seconds for r in self.rounds)

    def statements(self, key: str) -> int:
        """The most any round sent (they agree unless the code under test is not deterministic;
        every round's count is in the results file)."""
        return max(r[key].statements for r in [*self.rounds, self.traced])

    def peak_mib(self, key: str) -> float:
        return self.traced[key].peak_mib

    def ratio(self, phase: str, step: str) -> float | None:
        """apply vs the baseline upsert; the total vs the same fetch plus the baseline."""
        baseline = self.median_seconds(f"{phase}.baseline")
        if step == "apply":
            return self.median_seconds(f"{phase}.apply") / baseline
        if step == "total":
            fetch = self.median_seconds(f"{phase}.fetch")
            return self.median_seconds(f"{phase}.total") / (fetch + baseline)
        return None

    def summary(self) -> dict:
        return {
            "services": self.services,
            "changes": self.plan.expected(),
            "timed_rounds": len(self.rounds),
            "medians": {
                key: {
                    "seconds": round(self.median_seconds(key), 4),
                    "statements": self.statements(key),
                    "peak_mib": round(self.peak_mib(key), 2),
                    "ratio_vs_baseline": _rounded(self.ratio(*key.split("."))),
                }
                for key in measurement_keys()
            },
            "rounds": [{k: asdict(m) for k, m in r.items()} for r in self.rounds],
            "traced_round": {k: asdict(m) for k, m in self.traced.items()},
        }


def measurement_keys() -> list[str]:
    return [f"{phase}.{step}" for phase in PHASES for step in STEPS]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--services", type=int, default=GOAL_SERVICES, help="catalog size (default 5000)"
    )
    parser.add_argument(
        "--changed", type=float, default=0.10, help="share changed before the re-sync (0.10)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--scale",
        default="1000,5000,10000",
        help="other catalog sizes to re-sync, one timed round each ('' for none; "
        "default 1000,5000,10000)",
    )
    parser.add_argument(
        "--sync",
        default=DEFAULT_SYNC,
        help="module whose fetch_services and sync_provider are measured, to try out a change "
        f"(importable; default {DEFAULT_SYNC})",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "catalog.json", help="results JSON"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 100 <= args.services <= 100_000:
        parser.error("--services must be 100-100000")
    if not 0 < args.changed <= 0.5:
        parser.error("--changed must be above 0 and at most 0.5")
    try:
        args.scale = sorted({int(n) for n in args.scale.split(",") if n.strip()})
    except ValueError:
        parser.error("--scale must be catalog sizes separated by commas")
    if any(not 100 <= n <= 100_000 for n in args.scale):
        parser.error("--scale sizes must be 100-100000")
    return args


def plan_changes(upstream, share: float) -> ChangePlan:
    """`share` of the catalog changed: 80% reprices, 10% limit updates, 5% removals and as
    many additions; the same services for the same catalog in every round."""
    changed = max(4, round(len(upstream) * share))
    moved = max(1, round(changed * 0.05))
    updates = max(1, round(changed * 0.10))
    reprices = changed - 2 * moved - updates
    picked = random.Random(f"catalog-bench:{len(upstream)}").sample(
        list(upstream), reprices + updates + moved
    )
    return ChangePlan(
        reprice={item.external_id: _another_rate(item.rate) for item in picked[:reprices]},
        update={
            item.external_id: {"max": item.max_quantity + 1000}
            for item in picked[reprices : reprices + updates]
        },
        remove=[int(item.external_id) for item in picked[reprices + updates :]],
        add=moved,
    )


def _another_rate(rate: Decimal) -> str:
    """About 7% dearer, with at most 6 places, and never the same."""
    new = (rate * Decimal("1.07")).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    if new == rate:
        new += Decimal("0.000001")
    return format(new.normalize(), "f")


class CatalogBench:
    """One app, database and statement counter; the catalog is emptied before every round."""

    def __init__(self, sync_module: str) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        from app.extensions import db

        self.sync_module = importlib.import_module(sync_module)
        self.db = db
        self.counter = StatementCounter(db.engine)
        self.dialect = db.engine.dialect.name
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(self.dialect)
        if insert is None:
            raise BenchmarkError(f"no upsert baseline for {self.dialect}")
        self.scratch = scratch_table()
        self.scratch.metadata.create_all(db.engine)
        self.upsert = upsert_statement(self.scratch, insert)

    def close(self) -> None:
        self.counter.close()

    def bench_size(
        self, env: dict[str, str], services: int, share: float, rounds: int
    ) -> SizeResult:
        from app.providers.services import add_provider
        from tenants.context import across_tenants

        with sandbox_provider(env, services=services) as sandbox:
            name = f"bench-sandbox-{services}"
            with across_tenants():
                add_provider(name, sandbox.api_url, sandbox.key, honours_ref=True, actor="bench")
                self.db.session.commit()
            result: SizeResult | None = None
            for number in range(1, rounds + 2):
                trace = number == rounds + 1  # timed rounds first, then the traced one
                measurements, plan = self.run_round(sandbox, name, share, trace=trace)
                if result is None:
                    result = SizeResult(services, plan)
                if trace:
                    result.traced = measurements
                else:
                    result.rounds.append(measurements)
                label = "traced" if trace else f"{number}/{rounds}"
                print(
                    f"{services:>6} services, round {label}: "
                    + "  ".join(
                        f"{PHASE_LABELS[p]} {measurements[f'{p}.total'].seconds:.2f}s"
                        f" (baseline {measurements[f'{p}.baseline'].seconds:.2f}s)"
                        for p in PHASES
                    ),
                    file=sys.stderr,
                    flush=True,
                )
            return result

    def run_round(
        self, sandbox: SandboxProvider, provider_name: str, share: float, *, trace: bool
    ) -> tuple[dict[str, Measurement], ChangePlan]:
        self.empty_catalog()
        sandbox.admin("reset")
        sandbox.call("services")  # the sandbox builds its reply once per catalog: not ours
        measurements: dict[str, Measurement] = {}
        upstream, provider_id, report = self.sync(provider_name, "import", measurements, trace)
        check_report(report, "import", {"added": len(upstream)})
        self.baseline(provider_id, upstream, "import", measurements, trace)

        plan = plan_changes(upstream, share)
        changed = sandbox.admin("catalog", plan.body())
        if len(changed["removed"]) != len(plan.remove) or len(changed["added"]) != plan.add:
            raise BenchmarkError(f"the sandbox did not make the planned changes: {changed}")
        sandbox.call("services")
        upstream, provider_id, report = self.sync(provider_name, "resync", measurements, trace)
        check_report(report, "resync", plan.expected())
        self.baseline(provider_id, upstream, "resync", measurements, trace)
        return measurements, plan

    def sync(self, provider_name: str, phase: str, measurements: dict, trace: bool):
        """What `pasok provider sync NAME` does, with its two steps measured apart."""
        from app.providers.services import get_provider
        from tenants.context import across_tenants

        fetch_services = self.sync_module.fetch_services
        sync_provider = self.sync_module.sync_provider
        session = self.db.session
        with across_tenants():
            session.close()
            provider = get_provider(provider_name)  # loaded before the clock starts
            with measured(self.counter, trace_memory=trace) as total:
                with measured(self.counter, trace_memory=trace) as fetch:
                    upstream = fetch_services(provider)
                with measured(self.counter, trace_memory=trace) as apply:
                    report = sync_provider(provider, upstream, publish=False)
                    session.commit()
            provider_id = provider.id
        measurements.update({f"{phase}.fetch": fetch, f"{phase}.apply": apply})
        measurements[f"{phase}.total"] = total
        return upstream, provider_id, report

    def baseline(
        self, provider_id: int, upstream, phase: str, measurements: dict, trace: bool
    ) -> None:
        """The same rows through a bare Core upsert, in batches of the sync's size."""
        from app.catalog.sync import BATCH
        from app.types import utcnow

        with measured(self.counter, trace_memory=trace) as result:
            now = utcnow()
            rows = [baseline_row(provider_id, item, now) for item in upstream]
            with self.db.engine.begin() as conn:
                for start in range(0, len(rows), BATCH):
                    conn.execute(self.upsert, rows[start : start + BATCH])
        measurements[f"{phase}.baseline"] = result

    def empty_catalog(self) -> None:
        from sqlalchemy import text

        from tenants.context import across_tenants

        with across_tenants():
            self.db.session.close()
        tables = [*CATALOG_TABLES, SCRATCH_TABLE]
        with self.db.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))


def check_report(report, phase: str, expected: dict[str, int]) -> None:
    """The sync saw what the sandbox was told to change, or its timing means nothing."""
    seen = {
        kind: len(getattr(report, kind))
        for kind in ("added", "repriced", "updated", "removed", "restored")
    }
    wanted = {kind: expected.get(kind, 0) for kind in seen}
    if seen != wanted:
        raise BenchmarkError(f"{phase}: the sync reported {seen}, expected {wanted}")


def scratch_table():
    """A table shaped like provider_services: its columns, types and unique key, no foreign
    keys (the baseline writes rows only)."""
    from sqlalchemy import Column, MetaData, Table, UniqueConstraint

    from app.providers.models import ProviderService

    source = ProviderService.__table__
    return Table(
        SCRATCH_TABLE,
        MetaData(),
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in source.columns
        ),
        UniqueConstraint("provider_id", "external_id"),
    )


def upsert_statement(table, insert):
    from app.catalog.sync import TRACKED

    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.provider_id, table.c.external_id],
        set_={name: statement.excluded[name] for name in (*TRACKED, "available", "last_seen_at")},
    )


def baseline_row(provider_id: int, item, now) -> dict:
    return {
        "provider_id": provider_id,
        "external_id": item.external_id,
        "name": item.name,
        "category": item.category,
        "type": item.type,
        "rate": item.rate,
        "min_quantity": item.min_quantity,
        "max_quantity": item.max_quantity,
        "refill": item.refill,
        "cancel": item.cancel,
        "dripfeed": item.dripfeed,
        "available": True,
        "first_seen_at": now,
        "last_seen_at": now,
    }


def bench_environment(database_url: str) -> dict[str, str]:
    """For the `pasok` subprocesses (migrations, the sandbox)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL="fakeredis://",
        PASOK_PLATFORM_DOMAIN="localhost",
        PASOK_ENV="development",
    )
    return env


def run_benchmark(args: argparse.Namespace, database_url: str) -> dict[int, SizeResult]:
    from app import create_app
    from app.config import database_url as normalised_url
    from app.extensions import db

    env = bench_environment(database_url)
    run_pasok(env, "db", "upgrade")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalised_url(database_url),
            "REDIS_URL": "fakeredis://",
            "PASOK_PLATFORM_DOMAIN": "localhost",
            "PASOK_ENV": "development",
        }
    )
    with app.app_context():
        bench = CatalogBench(args.sync)
        try:
            results = {
                args.services: bench.bench_size(env, args.services, args.changed, args.rounds)
            }
            for size in args.scale:
                if size not in results:
                    results[size] = bench.bench_size(env, size, args.changed, 1)
        finally:
            bench.close()
            db.session.remove()
            db.engine.dispose()
    return results


def build_report(
    args: argparse.Namespace, database_url: str, load_average: float, results: dict
) -> dict:
    main = results[args.services]
    resync_seconds = main.median_seconds("resync.total")
    resync_ratio = main.ratio("resync", "apply")
    scale = [results[n] for n in sorted(results) if n in args.scale or n == args.services]
    per_service = [r.peak_mib("resync.total") * 1024 / r.services for r in scale]
    growth = per_service[-1] / per_service[0] if len(per_service) > 1 else None
    memory_flat = growth is None or growth <= GOAL_MEMORY_GROWTH
    return {
        "benchmark": "catalog",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "database": database_backend(database_url),
            "services": args.services,
            "changed": args.changed,
            "rounds": args.rounds,
            "scale": args.scale,
            "sync_module": args.sync,
            "batch": _sync_batch(),
            "python": platform.python_version(),
            "sqlalchemy": _version("sqlalchemy"),
            "cpus": os.cpu_count(),
            "load_average": [load_average, os.getloadavg()[0]],  # 1-minute, at start and end
            "max_rss_mib": round(max_rss_mib(), 1),
        },
        "sizes": {str(n): r.summary() for n, r in sorted(results.items())},
        "goal": {
            "resync_seconds_under": GOAL_SECONDS,
            "resync_apply_ratio_at_most": GOAL_RATIO,
            "resync_seconds": round(resync_seconds, 3),
            "resync_apply_ratio": round(resync_ratio, 3),
            "resync_peak_kib_per_service": {
                str(r.services): round(v, 2) for r, v in zip(scale, per_service, strict=True)
            },
            "memory_growth_per_service_at_most": GOAL_MEMORY_GROWTH,
            "memory_growth_per_service": _rounded(growth),
            "met": resync_seconds < GOAL_SECONDS and resync_ratio <= GOAL_RATIO and memory_flat,
        },
    }


def _sync_batch() -> int:
    from app.catalog.sync import BATCH

    return BATCH


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def print_tables(report: dict, results: dict[int, SizeResult], args: argparse.Namespace) -> None:
    config = report["config"]
    main = results[args.services]
    print(
        f"\nPasok catalog sync: {config['database']}, {main.services} services, re-sync after "
        f"{main.plan.describe()}; medians of {args.rounds} timed rounds; peak MiB from one "
        f"traced round (tracemalloc); load average {config['load_average'][0]:.1f} on "
        f"{config['cpus']} CPUs at the start"
    )
    header = TABLE_ROW.format(
        "phase", "step", "services", "seconds", "peak MiB", "statements", "vs base"
    )
    print(header)
    print("-" * len(header))
    for phase in PHASES:
        for step in STEPS:
            key = f"{phase}.{step}"
            ratio = main.ratio(phase, step)
            print(
                TABLE_ROW.format(
                    PHASE_LABELS[phase],
                    STEP_LABELS[step],
                    main.services,
                    f"{main.median_seconds(key):.3f}",
                    f"{main.peak_mib(key):.1f}",
                    main.statements(key),
                    "" if ratio is None else f"{ratio:.2f}x",
                )
            )
    print("vs base: apply / baseline upsert; total / (fetch + baseline upsert)")

    if args.scale:
        print(
            f"\nBy catalog size ({args.changed:.0%} changed before each re-sync; seconds are "
            f"the median at {args.services} services, one round elsewhere; MiB from a traced "
            "round)"
        )
        header = SCALE_ROW.format(
            "services",
            "import s",
            "re-sync s",
            "apply s",
            "base s",
            "ratio",
            "stmts",
            "base",
            "fetch MiB",
            "apply MiB",
            "total MiB",
            "KiB/svc",
        )
        print(header)
        print("-" * len(header))
        for size in sorted(results):
            r = results[size]
            print(
                SCALE_ROW.format(
                    size,
                    f"{r.median_seconds('import.total'):.3f}",
                    f"{r.median_seconds('resync.total'):.3f}",
                    f"{r.median_seconds('resync.apply'):.3f}",
                    f"{r.median_seconds('resync.baseline'):.3f}",
                    f"{r.ratio('resync', 'apply'):.2f}x",
                    r.statements("resync.apply"),
                    r.statements("resync.baseline"),
                    f"{r.peak_mib('resync.fetch'):.1f}",
                    f"{r.peak_mib('resync.apply'):.1f}",
                    f"{r.peak_mib('resync.total'):.1f}",
                    f"{r.peak_mib('resync.total') * 1024 / size:.1f}",
                )
            )
        print(
            "stmts/base: SQL statements of the re-sync's apply step / of the baseline; "
            "KiB/svc: re-sync total peak per upstream service"
        )

    goal = report["goal"]
    print(
        f"\nre-sync of {main.services}: {goal['resync_seconds']:.2f}s (goal < {GOAL_SECONDS:g}s), "
        f"apply {goal['resync_apply_ratio']:.2f}x the baseline (goal <= {GOAL_RATIO:g}x)"
    )
    if goal["memory_growth_per_service"] is not None:
        sizes = ", ".join(
            f"{n}: {kib:.1f}" for n, kib in goal["resync_peak_kib_per_service"].items()
        )
        print(
            f"re-sync peak KiB per service ({sizes}): x{goal['memory_growth_per_service']:.2f} "
            f"from the smallest catalog to the largest (goal <= x{GOAL_MEMORY_GROWTH:g})"
        )
    print(f"goal: {'met' if goal['met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    load_average = os.getloadavg()[0]
    try:
        with temporary_database(os.environ.get("PASOK_BENCH_DATABASE_URL")) as database_url:
            results = run_benchmark(args, database_url)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; sandbox stopped and database dropped", file=sys.stderr)
        return 130

    report = build_report(args, database_url, load_average, results)
    print_tables(report, results, args)
    write_results(args.output, report)
    return 1 if args.check and not report["goal"]["met"] else 0


if __name__ == "__main__":
    sys.exit(main())
