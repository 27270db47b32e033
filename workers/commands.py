"""`pasok worker` and `pasok cron`: RQ's worker and CronScheduler on the app's Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis
from flask import current_app
from flask.cli import with_appcontext

from app.errors import PasokError
from workers.queues import check_queue_names, shown_url, worker_redis

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def one_line_errors(redis_url: str) -> Iterator[None]:
    """Bad input and an unreachable Redis end the command with one readable line."""
    try:
        yield
    except PasokError as error:
        raise click.ClickException(str(error)) from None
    except (redis.ConnectionError, redis.TimeoutError) as error:
        reason = " ".join(str(error).split())
        raise click.ClickException(
            f"Cannot reach Redis at {shown_url(redis_url)}: {reason}"
        ) from None


def connect(redis_url: str) -> redis.Redis:
    connection = worker_redis(redis_url)
    connection.ping()
    return connection


@click.command("worker")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each job in a forked child (slower, isolated).")
@click.argument("queues", nargs=-1)
@with_appcontext
def worker_command(burst: bool, fork: bool, queues: tuple[str, ...]) -> None:
    """Run jobs from QUEUES (forward, status, default: all by default), first queue first."""
    from workers.context import AppWorker, ForkingAppWorker

    url = current_app.config["REDIS_URL"]
    with one_line_errors(url):
        names = check_queue_names(queues)
        connection = connect(url)
        worker_class = ForkingAppWorker if fork else AppWorker
        worker = worker_class(names, connection=connection)
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        # The scheduler moves jobs enqueued for later (`enqueue_in`, retries with a delay) onto
        # their queues when due; one worker at a time holds its lock.
        worker.work(burst=burst, with_scheduler=True)


@click.command("cron")
@with_appcontext
def cron_command() -> None:
    """Enqueue the jobs of workers/schedule.py on time, until stopped (run exactly one)."""
    from rq.cron import CronScheduler

    url = current_app.config["REDIS_URL"]
    with one_line_errors(url):
        connection = connect(url)
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        scheduler = CronScheduler(connection=connection, logging_level=logging.INFO)
        scheduler.load_config_from_file("workers.schedule")
        scheduler.start()
