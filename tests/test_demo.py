"""`make run` (`pasok demo`) on a machine with no PostgreSQL or Redis configured."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    url: str, host: str, process: subprocess.Popen, timeout: float = 60
) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            return requests.get(url, headers={"Host": host}, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def test_demo_migrates_seeds_and_serves_with_an_embedded_redis(tmp_path):
    port, redis_port, sandbox_port = free_port(), free_port(), free_port()
    simulator_port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DATABASE_URL", "PASOK_PLATFORM_DOMAIN")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path}/demo.sqlite3",
        PASOK_EMBEDDED_REDIS_PORT=str(redis_port),
        PASOK_SANDBOX_PORT=str(sandbox_port),
        PASOK_SIMULATOR_PORT=str(simulator_port),
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        ready = wait_for(f"{base}/readyz", "localhost", process)
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        acme = requests.get(base, headers={"Host": f"acme.localhost:{port}"}, timeout=5)
        assert acme.status_code == 200 and "Acme Social" in acme.text
        toko = requests.get(base, headers={"Host": f"toko.localhost:{port}"}, timeout=5)
        assert 'lang="id"' in toko.text and "Toko Sosmed" in toko.text
        with socket.create_connection(("127.0.0.1", redis_port), timeout=2):
            pass  # the embedded Redis is up
        # acme's Stripe webhook endpoint is registered at the simulator, on acme's host.
        endpoints = requests.get(
            f"http://127.0.0.1:{simulator_port}/stripe/v1/webhook_endpoints",
            headers={"Authorization": "Bearer sk_test_demo_acme"},
            timeout=5,
        ).json()["data"]
        assert [e["url"] for e in endpoints] == [f"http://acme.localhost:{port}/webhooks/stripe"]
        # The scheduler enqueued its heartbeat at start and the worker ran it.
        wait_for_heartbeat(f"redis://127.0.0.1:{redis_port}/0", process)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "operator@pasok.example.com / operator-demo-1" in output
    assert "http://acme.localhost:" in output
    assert "provider sandbox" in output
    assert "50 added" in output and "fx USD/IDR = 16250" in output
    assert "gateways of toko on the simulator" in output
    assert "gateways of the platform on the simulator" in output
    assert re.search(r"Worker +pid \d+, queues forward, status, default", output)
    assert re.search(r"Scheduler +pid \d+", output)
    # The embedded Redis, the sandbox, the worker and the scheduler went away with the demo.
    for child_port in (redis_port, sandbox_port, simulator_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", child_port)) != 0
    for pid in re.findall(r"(?:Worker|Scheduler) +pid (\d+)", output):
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def wait_for_heartbeat(redis_url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    import redis

    from workers.jobs import HEARTBEAT_KEY

    connection = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while connection.get(HEARTBEAT_KEY) is None:
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"no worker heartbeat within {timeout}s"
        time.sleep(0.2)
    connection.close()
