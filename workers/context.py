"""How a job runs: in an app context of its own, in the tenant scope its function declares.

`AppJob` pushes a fresh app context around each job, so each job gets its own database session,
and removes that session when the job ends, committed or not. The app is the one the process
already has (`pasok worker` is a Flask command, so its app is current); a process without one
(`rq worker --job-class workers.context.AppJob`) builds one app, once.

`AppWorker` runs jobs in the worker process itself (RQ's `SimpleWorker`): one app, one
connection pool and warm imports for every job. RQ's default forking worker pays a fork and a
new database connection per job, which the forwarding pipeline cannot afford; a job that runs
too long is still stopped, by the SIGALRM death penalty RQ sets around every job.
`ForkingAppWorker` (`pasok worker --fork`) isolates each job in a child instead, for jobs
that may leak memory or crash the interpreter.

Scoping fails closed in jobs as everywhere: a job function declares `@across_tenants_job` or
`@tenant_job`, or any query of tenant-owned data in it raises `TenantScopeError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue

from app.extensions import db
from tenants.context import across_tenants, tenant_scope

F = TypeVar("F", bound=Callable[..., Any])

_process_app: Flask | None = None


def job_app() -> Flask:
    """The app jobs of this process run in."""
    global _process_app
    if has_app_context():
        return current_app._get_current_object()
    if _process_app is None:
        from app import create_app

        _process_app = create_app()
    return _process_app


class AppJob(Job):
    """A job that runs in an app context of its own and leaves no database session behind."""

    def perform(self) -> Any:
        with job_app().app_context():
            try:
                return super().perform()
            finally:
                # Rolls back whatever the job did not commit and returns its connection.
                db.session.remove()


class AppWorker(SimpleWorker):
    """Runs each job in this process, as an `AppJob`."""

    job_class = AppJob


class ForkingAppWorker(Worker):
    """Runs each job in a forked child, as an `AppJob`."""

    job_class = AppJob

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # The child inherits the parent's pooled connections; two processes must never share a
        # socket, so it drops them (without closing the parent's) and opens its own.
        with job_app().app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        super().main_work_horse(job, queue)


def across_tenants_job(func: F) -> F:
    """Declare a job that works across every tenant (sweeps, syncs, checks)."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        with across_tenants():
            return func(*args, **kwargs)

    return run  # type: ignore[return-value]


def tenant_job(func: F) -> F:
    """Declare a job that works for one tenant, whose id is its first argument."""

    @functools.wraps(func)
    def run(tenant_id: int, *args, **kwargs):
        with tenant_scope(tenant_id):
            return func(tenant_id, *args, **kwargs)

    return run  # type: ignore[return-value]
