"""Workers: real `pasok worker` and `pasok cron` processes on a real Redis and the test database.

The job functions below are enqueued by the tests and imported by the worker processes
(`tests.test_workers.<name>`), which run from the project root.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import current_app
from rq import Queue
from rq.cron import CronScheduler
from rq.job import JobStatus
from sqlalchemy import select

from app.accounts.models import CUSTOMER, User
from app.audit.models import AuditEntry
from app.audit.services import record_audit
from app.config import PROJECT_ROOT
from app.extensions import db, get_redis
from tenants.context import across_tenants
from workers.context import AppJob, across_tenants_job, tenant_job
from workers.jobs import last_heartbeat
from workers.queues import DEFAULT, FORWARD, UnknownQueue, get_queue

# --- jobs the worker processes run -------------------------------------------------------------


@tenant_job
def record_visit(tenant_id: int, note: str) -> dict:
    """Write an audit row for the tenant and say what the job could see."""
    record_audit("test.visit", actor="worker", tenant_id=tenant_id, target=note)
    db.session.commit()
    customers = db.session.scalars(select(User.email).where(User.kind == CUSTOMER)).all()
    return {"app": current_app.import_name, "pid": os.getpid(), "customers": sorted(customers)}


@tenant_job
def leave_uncommitted(tenant_id: int) -> int:
    """Write without committing; report the connections in use while the transaction is open."""
    record_audit("test.uncommitted", actor="worker", tenant_id=tenant_id)
    db.session.flush()
    return db.engine.pool.checkedout()


@across_tenants_job
def connections_in_use() -> int:
    return db.engine.pool.checkedout()


def session_identity() -> int:
    return id(db.session())


def explode() -> None:
    raise RuntimeError("boom")


def read_customers_undeclared() -> list:
    return db.session.scalars(select(User.email)).all()


def overrun() -> None:
    time.sleep(30)


# --- helpers -----------------------------------------------------------------------------------


PASOK = [sys.executable, "-c", "from app.cli import main; main()"]


def run_pasok(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PASOK, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_pasok(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*PASOK, *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen) -> str:
    """SIGTERM, as a supervisor would; the process must exit 0."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


@contextmanager
def killed_on_failure(process: subprocess.Popen) -> Iterator[None]:
    try:
        yield
    except BaseException:
        process.kill()
        process.communicate()
        raise


def wait_until(condition, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process exited: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"not within {timeout}s: {process.communicate()[0]}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def burst(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = run_pasok(env, "worker", "--burst", *args)
    assert done.returncode == 0, done.stderr
    return done


# --- a job's context ---------------------------------------------------------------------------


def test_a_job_runs_in_the_app_in_its_tenants_scope(worker_env, app, make):
    acme, toko = make.tenant("acme"), make.tenant("toko")
    make.customer(acme, "alice@example.com")
    make.customer(toko, "budi@example.com")
    with app.app_context():
        job = get_queue(DEFAULT).enqueue(record_visit, acme, "hello")

    burst(worker_env)

    with app.app_context(), across_tenants():
        assert job.get_status(refresh=True) == JobStatus.FINISHED
        assert job.return_value()["customers"] == ["alice@example.com"]
        assert job.return_value()["app"] == "app"
        visit = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "test.visit")
        ).one()
        assert (visit.tenant_id, visit.target) == (acme, "hello")


def test_a_job_run_synchronously_gets_an_app_context_and_session_of_its_own(app, make):
    acme = make.tenant("acme")
    make.customer(acme, "alice@example.com")
    with app.app_context():
        queue = Queue(DEFAULT, connection=get_redis(), is_async=False, job_class=AppJob)
        assert queue.enqueue(session_identity).return_value() != id(db.session())
        assert queue.enqueue(record_visit, acme, "sync").return_value()["customers"] == [
            "alice@example.com"
        ]


def test_the_worker_runs_jobs_in_its_own_process(worker_env, app, make):
    acme = make.tenant("acme")
    with app.app_context():
        job = get_queue(DEFAULT).enqueue(record_visit, acme, "in-process")
    worker = start_pasok(worker_env, "worker", "--burst")
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    with app.app_context():
        assert job.return_value()["pid"] == worker.pid


def test_a_forking_worker_runs_each_job_in_a_child_process(worker_env, app, make):
    acme = make.tenant("acme")
    with app.app_context():
        queue = get_queue(DEFAULT)
        jobs = [queue.enqueue(record_visit, acme, f"forked {n}") for n in range(2)]
    worker = start_pasok(worker_env, "worker", "--burst", "--fork")
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    with app.app_context(), across_tenants():
        pids = {job.return_value()["pid"] for job in jobs}
        assert len(pids) == 2 and worker.pid not in pids
        targets = db.session.scalars(
            select(AuditEntry.target).where(AuditEntry.action == "test.visit")
        ).all()
        assert sorted(targets) == ["forked 0", "forked 1"]


def test_a_job_that_does_not_commit_leaves_nothing_behind(worker_env, app, make):
    acme = make.tenant("acme")
    with app.app_context():
        queue = get_queue(DEFAULT)
        uncommitted = queue.enqueue(leave_uncommitted, acme)
        after = queue.enqueue(connections_in_use)

    burst(worker_env, DEFAULT)

    with app.app_context(), across_tenants():
        assert uncommitted.return_value() == 1  # its transaction held a connection
        assert after.return_value() == 0  # its session was removed: the connection went back
        written = select(AuditEntry).where(AuditEntry.action == "test.uncommitted")
        assert db.session.scalars(written).all() == []  # and rolled back


def test_a_job_that_declares_no_scope_cannot_read_tenant_data(worker_env, app):
    with app.app_context():
        job = get_queue(DEFAULT).enqueue(read_customers_undeclared)

    burst(worker_env)

    with app.app_context():
        assert job.get_status(refresh=True) == JobStatus.FAILED
        assert "TenantScopeError" in job.latest_result().exc_string


# --- failures ----------------------------------------------------------------------------------


def test_a_failing_job_leaves_the_worker_running_the_next(worker_env, app, make):
    acme = make.tenant("acme")
    with app.app_context():
        queue = get_queue(DEFAULT)
        failing = queue.enqueue(explode)
        following = queue.enqueue(record_visit, acme, "after the failure")

    burst(worker_env)

    with app.app_context():
        assert failing.get_status(refresh=True) == JobStatus.FAILED
        assert "RuntimeError: boom" in failing.latest_result().exc_string
        assert following.get_status(refresh=True) == JobStatus.FINISHED


def test_a_job_past_its_timeout_is_stopped_and_the_worker_goes_on(worker_env, app):
    with app.app_context():
        queue = get_queue(DEFAULT)
        slow = queue.enqueue(overrun, job_timeout=1)
        following = queue.enqueue(connections_in_use)

    started = time.monotonic()
    burst(worker_env)

    assert time.monotonic() - started < 20  # not the 30 s the job wanted
    with app.app_context():
        assert slow.get_status(refresh=True) == JobStatus.FAILED
        assert "JobTimeoutException" in slow.latest_result().exc_string
        assert following.get_status(refresh=True) == JobStatus.FINISHED


# --- the worker process ------------------------------------------------------------------------


def test_a_burst_worker_exits_zero_when_the_queues_are_empty(worker_env, app):
    done = burst(worker_env)
    assert "done, quitting" in done.stderr


def test_a_running_worker_takes_jobs_as_they_come_and_stops_on_sigterm(worker_env, app, make):
    acme = make.tenant("acme")
    worker = start_pasok(worker_env, "worker", FORWARD, DEFAULT)
    with killed_on_failure(worker), app.app_context():
        queue = get_queue(FORWARD)
        first = queue.enqueue(explode)
        wait_until(lambda: first.get_status(refresh=True) == JobStatus.FAILED, worker)
        second = queue.enqueue(record_visit, acme, "still here")
        wait_until(lambda: second.get_status(refresh=True) == JobStatus.FINISHED, worker)
    assert "Listening on forward, default" in stop(worker)


# --- the scheduler -----------------------------------------------------------------------------


def test_cron_registers_the_schedule_and_a_worker_runs_what_it_enqueues(worker_env, app):
    connection = app.extensions["pasok_redis"]
    cron = start_pasok(worker_env, "cron")
    with killed_on_failure(cron):
        wait_until(lambda: CronScheduler.all(connection), cron)
        [scheduler] = CronScheduler.all(connection)
        jobs = {job.name: job for job in scheduler.get_jobs()}
        assert {"workers.heartbeat", "ledger.verify", "payments.reconcile"} <= set(jobs)
        assert jobs["workers.heartbeat"].interval == 60
        assert jobs["workers.heartbeat"].queue_name == DEFAULT
        # Interval jobs are enqueued at start.
        wait_until(lambda: len(get_queue(DEFAULT, connection)) == 3, cron)
    stop(cron)
    assert CronScheduler.all(connection) == []  # it signed off

    burst(worker_env)

    with app.app_context():
        assert last_heartbeat() is not None
        [verify_id] = jobs["ledger.verify"].get_job_ids(connection)
        verify = AppJob.fetch(verify_id, connection=connection)
        assert verify.return_value()["ok"] is True
        [reconcile_id] = jobs["payments.reconcile"].get_job_ids(connection)
        reconcile = AppJob.fetch(reconcile_id, connection=connection)
        assert reconcile.return_value() == {}  # no top-up was pending


# --- one readable line -------------------------------------------------------------------------


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_an_unknown_queue_is_one_line(app):
    result = invoke(app, "worker", "--burst", "forward", "bogus")
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: Unknown queue 'bogus' (the queues are forward, status, default)\n"
    )


@pytest.mark.parametrize("command", ["worker", "cron"])
def test_an_unreachable_redis_is_one_line_without_its_password(command, make_app):
    port = free_port()
    app = make_app(REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0")
    result = invoke(app, command)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: Cannot reach Redis at redis://:***@127.0.0.1:{port}/0: "
    )
    assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr


def test_workers_refuse_the_in_process_fake_redis(make_app):
    result = invoke(make_app(REDIS_URL="fakeredis://"), "worker", "--burst")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Workers need a Redis server")


def test_get_queue_refuses_an_unknown_name(app):
    with app.app_context(), pytest.raises(UnknownQueue):
        get_queue("bogus")
