"""Shared pieces for Pasok's benchmarks: a throwaway database, gunicorn on a free loopback
port, wrk with its output parsed, the sandbox provider as an upstream, and in-process meters
(wall time, tracemalloc peak, SQL statements) for code run inside an app context.

Everything stays on 127.0.0.1 and every step has a time limit. The context managers clean up
(stop gunicorn or the sandbox and their children, drop the database) on errors and Ctrl-C as
well.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


class BenchmarkError(RuntimeError):
    """The benchmark could not produce a trustworthy measurement."""


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop servers and drop databases."""

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


# Databases


@contextmanager
def temporary_database(server_url: str | None = None) -> Iterator[str]:
    """Yield a DATABASE_URL for an empty, throwaway database.

    Without `server_url`: an SQLite file in a temporary directory. With a PostgreSQL server URL
    (`postgresql://postgres@127.0.0.1:5432/postgres`): a uniquely named database on that server,
    dropped afterwards even if clients are still connected.
    """
    if not server_url:
        directory = tempfile.mkdtemp(prefix="pasok-bench-")
        try:
            yield f"sqlite:///{Path(directory) / 'pasok.sqlite3'}"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return

    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    server = make_url(server_url).set(drivername="postgresql")
    if server.get_backend_name() != "postgresql":
        raise BenchmarkError(f"not a PostgreSQL URL: {server_url}")
    name = f"pasok_bench_{secrets.token_hex(4)}"
    admin_url = server.render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise BenchmarkError(f"cannot create a database on {server_url}: {error}") from None
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_backend(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def run_pasok(env: dict[str, str], *args: str, timeout: float = 120) -> None:
    """Run a `pasok` CLI command (e.g. `db upgrade`, `seed-demo`) against `env`'s database."""
    command = [str(VENV_BIN / "pasok"), *args]
    result = subprocess.run(
        command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise BenchmarkError(f"`pasok {' '.join(args)}` failed:\n{result.stderr.strip()}")


# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Response:
    status: int
    body: str


def fetch(port: int, path: str, host: str, timeout: float = 5) -> Response:
    """One GET to the server on `port`, as if addressed to `host`."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return Response(response.status, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def post_form(
    port: int, path: str, host: str, fields: dict[str, Any], timeout: float = 30
) -> Response:
    """One form POST to the server on `port`, as if addressed to `host`."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=urlencode(fields),
            headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        return Response(response.status, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def post_json(port: int, path: str, body: dict[str, Any], timeout: float = 30) -> Any:
    """POST `body` as JSON to the local server on `port`; its JSON answer, or BenchmarkError."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if response.status != 200:
        raise BenchmarkError(f"POST {path} answered {response.status}: {text[:500]}")
    return json.loads(text)


@dataclass
class Gunicorn:
    process: subprocess.Popen
    port: int
    log_path: Path

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master and its workers."""
        return process_tree_cpu_seconds(self.process.pid)

    def log_head(self, lines: int = 40) -> str:
        """The start of gunicorn's log: where the first (root) error of a failed start is."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[:lines])


@contextmanager
def gunicorn(
    wsgi_app: str,
    env: dict[str, str],
    *,
    workers: int = 2,
    ready_path: str = "/",
    ready_host: str = "localhost",
    startup_timeout: float = 60,
) -> Iterator[Gunicorn]:
    """Serve `wsgi_app` ("module:callable", importable from the project root) with `workers`
    sync workers on a free loopback port; yield once `ready_path` answers."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="pasok-bench-gunicorn-"))
    log_path = log_dir / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(PROJECT_ROOT),
        "--bind",
        f"{LOOPBACK}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        # No control socket: it lives at one fixed path per user and other servers may run.
        "--no-control-socket",
        "--log-level",
        "warning",
        wsgi_app,
    ]
    with log_path.open("wb") as log:
        # Its own session: Ctrl-C reaches only us, and we stop the whole group ourselves.
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(process, port, log_path)
    try:
        _wait_until_ready(server, ready_path, ready_host, startup_timeout)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(log_dir, ignore_errors=True)


def _wait_until_ready(server: Gunicorn, path: str, host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(f"gunicorn exited at startup:\n{server.log_head()}")
        try:
            fetch(server.port, path, host, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise BenchmarkError(f"gunicorn not answering after {timeout:.0f}s:\n{server.log_head()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the master (it stops its workers), then SIGKILL whatever of its group is left."""
    pgid = process.pid  # the group was created for this process alone (start_new_session)
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout=5)


# The sandbox provider (app.sandbox) as an upstream panel


@dataclass
class SandboxProvider:
    process: subprocess.Popen
    port: int
    key: str
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/api/v2"

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to one of its admin endpoints: `admin("catalog", {"add": 2})`."""
        return post_json(self.port, f"/__sandbox/{path}", body or {})

    def call(self, action: str, timeout: float = 60, **params: str) -> bytes:
        """One API v2 call with the key; the raw reply body (say, to warm its cache)."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request(
                "POST",
                "/api/v2",
                body=urlencode({"key": self.key, "action": action, **params}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise BenchmarkError(f"sandbox {action} answered {response.status}: {body[:300]!r}")
        return body

    def log_head(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[:lines])


@contextmanager
def sandbox_provider(
    env: dict[str, str],
    *,
    services: int = 50,
    key: str = "sandbox-key",
    extra_args: tuple[str, ...] = (),
    startup_timeout: float = 60,
) -> Iterator[SandboxProvider]:
    """Run `pasok sandbox-provider --services N` on a free loopback port, in its own process
    (so its work and memory stay out of the measuring process); yield once it answers."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="pasok-bench-sandbox-"))
    log_path = log_dir / "sandbox.log"
    command = [
        str(VENV_BIN / "pasok"),
        "sandbox-provider",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--services",
        str(services),
        "--key",
        key,
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sandbox = SandboxProvider(process, port, key, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise BenchmarkError(f"the sandbox provider exited:\n{sandbox.log_head()}")
            try:
                if fetch(port, "/__sandbox/settings", LOOPBACK, timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"the sandbox provider is not answering after {startup_timeout:.0f}s:\n"
                    f"{sandbox.log_head()}"
                )
            time.sleep(0.1)
        yield sandbox
    finally:
        _stop(process)
        shutil.rmtree(log_dir, ignore_errors=True)


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a live process and its live descendants (Linux /proc).

    Unlike throughput, CPU per request hardly moves when other work shares the machine.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [root_pid]
    while pending:
        pid = pending.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                pending.extend(int(child) for child in children.read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # it just exited
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; comm may hold spaces
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


# Load generation

WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
WRK_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
WRK_REQUESTS = re.compile(r"^\s+(\d+) requests in ", re.MULTILINE)
WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
WRK_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def parse_wrk(output: str) -> WrkResult:
    """Read what `wrk --latency` prints."""
    rps = WRK_RPS.search(output)
    requests = WRK_REQUESTS.search(output)
    percentiles = {
        p: round(float(v) * TO_MS[unit], 3) for p, v, unit in WRK_PERCENTILE.findall(output)
    }
    if not (rps and requests and "50" in percentiles and "99" in percentiles):
        raise BenchmarkError(f"could not read wrk's output:\n{output}")
    non_2xx = WRK_NON_2XX.search(output)
    errors = WRK_SOCKET_ERRORS.search(output)
    kinds = ("connect", "read", "write", "timeout")
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_sec=float(rps.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(kinds, map(int, errors.groups()), strict=True))
        if errors
        else dict.fromkeys(kinds, 0),
    )


def run_wrk(
    port: int, path: str, host: str, *, connections: int, duration: int, threads: int = 1
) -> WrkResult:
    """Load `path` on the local server for `duration` whole seconds, as if addressed to
    `host`."""
    return parse_wrk(
        wrk_output(port, path, host, connections=connections, duration=duration, threads=threads)
    )


def wrk_output(
    port: int,
    path: str,
    host: str,
    *,
    connections: int,
    duration: int,
    threads: int = 1,
    script: Path | None = None,
) -> str:
    """What `wrk --latency` prints after loading `path` as `run_wrk` does; `script` is a wrk Lua
    script (requests with a body, checks of each reply), whose own lines follow wrk's."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-H",
        f"Host: {host}",
        *(["-s", str(script)] if script else []),
        f"http://{LOOPBACK}:{port}{path}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30)
    if result.returncode != 0:
        raise BenchmarkError(f"wrk failed ({result.returncode}):\n{result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class WrkRound:
    """One wrk run against a server, and the server's CPU time per request it cost."""

    wrk: WrkResult
    server_cpu_us_per_request: float


def add_wrk_options(parser: argparse.ArgumentParser, *, warmup: int) -> None:
    """The options every wrk benchmark takes (rounds, their length, the load, the server)."""
    parser.add_argument("--rounds", type=int, default=5, help="rounds per endpoint (default 5)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per round (default 5)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=warmup,
        help=f"warm-up seconds per endpoint (default {warmup})",
    )


def check_wrk_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("rounds", "connections", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")


def wrk_round(label: str, result: WrkResult, cpu_seconds: float) -> WrkRound:
    """The round, if every request got a 2xx/3xx answer; a run with errors is not valid."""
    if not result.requests or result.non_2xx_3xx or any(result.socket_errors.values()):
        raise BenchmarkError(
            f"{label}: {result.requests} requests, "
            f"{result.non_2xx_3xx} non-2xx/3xx responses, "
            f"socket errors {result.socket_errors}; the run is not valid"
        )
    return WrkRound(result, round(cpu_seconds / result.requests * 1e6, 1))


def print_round_progress(number: int, total: int, rounds: dict[str, list[WrkRound]]) -> None:
    progress = "  ".join(
        f"{key} {results[-1].wrk.requests_per_sec:7.1f} req/s "
        f"{results[-1].server_cpu_us_per_request:6.0f} cpu-us/req"
        for key, results in rounds.items()
    )
    print(f"round {number}/{total}  {progress}", file=sys.stderr, flush=True)


def wrk_medians(rounds: dict[str, list[WrkRound]]) -> dict[str, dict[str, float]]:
    """Per endpoint, the median of each figure over its rounds."""

    def median(values) -> float:
        return round(statistics.median(values), 3)

    return {
        key: {
            "requests_per_sec": median(r.wrk.requests_per_sec for r in results),
            "p50_ms": median(r.wrk.p50_ms for r in results),
            "p99_ms": median(r.wrk.p99_ms for r in results),
            "server_cpu_us_per_request": median(r.server_cpu_us_per_request for r in results),
        }
        for key, results in rounds.items()
    }


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    return (result.stdout or result.stderr).splitlines()[0].split(" Copyright")[0].strip()


# In-process meters


class StatementCounter:
    """Counts the SQL statements an engine sends (`before_cursor_execute`): an executemany or
    one insertmanyvalues batch counts once, which is what "batched, not N queries" is about."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.count += 1

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._seen)


@dataclass
class Measurement:
    seconds: float = 0.0
    statements: int = 0
    # tracemalloc: the most the block held at once above what was traced when it began.
    peak_bytes: int | None = None

    @property
    def peak_mib(self) -> float | None:
        return None if self.peak_bytes is None else self.peak_bytes / 2**20


@dataclass
class _TracedBlock:
    base: int  # traced bytes when the block began
    highest: int  # the highest traced bytes seen so far within the block


_open_blocks: list[Measurement] = []
_traced_blocks: list[_TracedBlock] = []
_tracing_started: list[bool] = []  # non-empty while tracemalloc runs because we started it


@contextmanager
def measured(
    counter: StatementCounter | None = None, *, trace_memory: bool = False
) -> Iterator[Measurement]:
    """Time a block, count its SQL statements and, with `trace_memory`, trace its allocations.

    Blocks nest: a sync measured whole, and its fetch and apply steps inside it. tracemalloc
    slows Python code down several times over, so a block is either timed or traced: measure
    time in some rounds and memory in another. The outermost traced block starts tracemalloc,
    so only what is allocated inside it counts, whatever was alive before; garbage is
    collected before the outermost block only, so inner blocks add nothing to the outer time.
    """
    result = Measurement()
    if not _open_blocks:
        gc.collect()
    traced = None
    if trace_memory:
        if not _traced_blocks and not tracemalloc.is_tracing():
            tracemalloc.start()
            _tracing_started.append(True)
        _fold_traced_peak()
        tracemalloc.reset_peak()
        current = tracemalloc.get_traced_memory()[0]
        traced = _TracedBlock(base=current, highest=current)
        _traced_blocks.append(traced)
    _open_blocks.append(result)
    statements_before = counter.count if counter else 0
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        result.statements = (counter.count if counter else 0) - statements_before
        _open_blocks.pop()
        if traced is not None:
            _fold_traced_peak()
            _traced_blocks.pop()
            result.peak_bytes = traced.highest - traced.base
            if not _traced_blocks and _tracing_started:
                _tracing_started.clear()
                tracemalloc.stop()


def _fold_traced_peak() -> None:
    """Credit the peak since tracemalloc's last reset to every open traced block."""
    if _traced_blocks:
        peak = tracemalloc.get_traced_memory()[1]
        for block in _traced_blocks:
            block.highest = max(block.highest, peak)


def max_rss_mib() -> float:
    """This process's highest resident set size so far (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


POSTGRES_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def write_results(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results: {path}")


def run_on_postgres(
    run: Callable[[str, str], dict], *, default_redis_url: str, left_behind: str
) -> dict | int:
    """Run a PostgreSQL benchmark on PASOK_BENCH_DATABASE_URL's server (default the local one)
    and PASOK_BENCH_REDIS_URL (default `default_redis_url`): its outcome, or the exit code after
    one readable line (2: no PostgreSQL; 1: it failed; 130: interrupted, `left_behind` says
    what was cleaned up)."""
    server_url = os.environ.get("PASOK_BENCH_DATABASE_URL", POSTGRES_SERVER_URL)
    if not server_url.startswith(("postgresql", "postgres:")):
        print(f"this benchmark needs PostgreSQL, not {server_url}", file=sys.stderr)
        return 2
    redis_url = os.environ.get("PASOK_BENCH_REDIS_URL", default_redis_url)
    exit_cleanly_on_sigterm()
    try:
        return run(server_url, redis_url)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; {left_behind}", file=sys.stderr)
        return 130
