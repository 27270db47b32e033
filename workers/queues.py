"""The queues, in the order a worker serves them, and how to reach them.

`forward` sends customers' orders upstream: small jobs whose latency a customer sees. `status`
holds the status sync, which for 100,000 active orders is a thousand batch jobs; on a queue of
its own, a forward job never waits behind them. `default` takes the rest (the ledger check, the
heartbeat, later catalog syncs and payment reconciliation). A worker that listens on several
queues always takes from the first non-empty one, so `pasok worker` with no arguments forwards
first; a deployment may also run workers dedicated to one queue (`pasok worker status`).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
from rq import Queue

from app.errors import PasokError

FORWARD = "forward"
STATUS = "status"
DEFAULT = "default"
QUEUES = (FORWARD, STATUS, DEFAULT)


class UnknownQueue(PasokError):
    def __init__(self, name: str):
        super().__init__(f"Unknown queue '{name}' (the queues are {', '.join(QUEUES)})")


def check_queue_names(names: tuple[str, ...] | list[str]) -> list[str]:
    """`names` in the order given, or every queue when empty; an unknown name raises."""
    for name in names:
        if name not in QUEUES:
            raise UnknownQueue(name)
    return list(names) or list(QUEUES)


def get_queue(name: str, connection: redis.Redis | None = None) -> Queue:
    """The queue `name` on the app's Redis (or `connection`), making `AppJob`s."""
    from app.extensions import get_redis
    from workers.context import AppJob

    check_queue_names([name])
    return Queue(name, connection=connection or get_redis(), job_class=AppJob)


def worker_redis(url: str) -> redis.Redis:
    """A Redis client of its own for a worker or the scheduler.

    Not the app's client: RQ raises the socket timeout of the client it is given above its
    blocking dequeue time, which the app's two-second timeout must keep for web requests. Like
    the app's client it returns bytes (no `decode_responses`), which RQ requires.
    """
    if url.startswith("fakeredis://"):
        raise PasokError("Workers need a Redis server; REDIS_URL is fakeredis://, in-process only")
    return redis.Redis.from_url(url, socket_connect_timeout=5)


def shown_url(url: str) -> str:
    """`url` with its password masked, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
