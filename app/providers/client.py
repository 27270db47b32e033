"""A client for the common SMM panel API v2, as spoken by upstream providers (and by Pasok).

Every call ends in one of four outcomes, because what the order pipeline may do next depends
on whether the upstream could have acted on the request:

- SUCCESS: a parsed reply.
- REJECTED: the upstream answered and said no; its message is kept.
- NOT_SENT: the request never reached the upstream (connection refused, DNS, connect
  timeout); sending it again is safe.
- AMBIGUOUS: the request may have been acted on (a timeout after sending, a reset, a 5xx, an
  HTML page or any body that is not the API's JSON); it must not be blindly resent.

Replies are read defensively: numbers as strings or numbers (floats are parsed as exact
decimals), "Complete"/"Cancelled"/"Inprogress" spellings, `error` or `errors`, a UTF-8 BOM.

Connections. A process keeps one HTTP session per provider (`shared_session`, what
`Provider.client()` uses), so consecutive calls reuse a kept-alive connection instead of paying a
TCP (and TLS) handshake each. A forked child starts with none of its parent's sessions, and a
connection idle for longer than `IDLE_SECONDS` is not reused (see `ProviderSession`).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

MAX_IDS_PER_CALL = 100
DEFAULT_TIMEOUT = 15.0
CONNECT_TIMEOUT = 5.0
# A kept-alive connection idle longer than this is closed rather than reused: below the idle
# timeouts servers commonly use (gunicorn 2 s; Apache, Node and uvicorn 5 s; nginx 75 s).
IDLE_SECONDS = 1.0


class Outcome(enum.Enum):
    SUCCESS = "success"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    data: Any = None
    error: str | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


# Upstream status spellings → the API v2 status names.
STATUSES = {
    "pending": "Pending",
    "in progress": "In progress",
    "inprogress": "In progress",
    "in_progress": "In progress",
    "processing": "Processing",
    "completed": "Completed",
    "complete": "Completed",
    "partial": "Partial",
    "canceled": "Canceled",
    "cancelled": "Canceled",
    "rejected": "Rejected",  # refills
}


@dataclass(frozen=True)
class UpstreamService:
    external_id: str
    name: str
    type: str
    category: str
    rate: Decimal
    min_quantity: int
    max_quantity: int
    refill: bool
    cancel: bool
    dripfeed: bool


@dataclass(frozen=True)
class UpstreamStatus:
    status: str  # an API v2 status name, or the upstream's own word when we do not know it
    known: bool
    charge: Decimal | None = None
    start_count: int | None = None
    remains: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    currency: str


class MalformedReply(ValueError):
    """A reply that is JSON but not the shape the action promises."""


@dataclass
class ProviderClient:
    api_url: str
    api_key: str
    timeout: float = DEFAULT_TIMEOUT
    honours_ref: bool = False
    session: requests.Session = field(default_factory=lambda: _session())

    # -- actions ---------------------------------------------------------------------------

    def services(self) -> Reply:
        return self._call("services", parse=_parse_services)

    def add(self, service: str | int, *, ref: str | None = None, **params: Any) -> Reply:
        """Place an order. `ref` (Pasok's order id) is sent only to upstreams that honour it."""
        fields = {"service": service, **{k: v for k, v in params.items() if v is not None}}
        if ref is not None and self.honours_ref:
            fields["ref"] = ref
        return self._call("add", parse=lambda data: _order_id(_field(data, "order")), **fields)

    def status(self, order: str | int) -> Reply:
        return self._call("status", parse=_parse_status, order=order)

    def statuses(self, orders: Iterable[str | int]) -> Reply:
        """Up to 100 orders in one call: `data` maps each id to an UpstreamStatus or an error."""
        ids = _id_list(orders)
        return self._call("status", parse=_parse_status_map, orders=",".join(ids))

    def statuses_in_batches(self, orders: Iterable[str | int]) -> Iterator[tuple[list[str], Reply]]:
        """Multi-status calls of at most 100 ids each."""
        ids = [str(o) for o in orders]
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            batch = ids[start : start + MAX_IDS_PER_CALL]
            yield batch, self.statuses(batch)

    def refill(self, order: str | int) -> Reply:
        return self._call("refill", parse=lambda d: str(_field(d, "refill")), order=order)

    def refills(self, orders: Iterable[str | int]) -> Reply:
        ids = _id_list(orders)
        return self._call("refill", parse=_parse_per_order("refill"), orders=",".join(ids))

    def refill_status(self, refill: str | int) -> Reply:
        return self._call(
            "refill_status", parse=lambda d: _status_name(_field(d, "status"))[0], refill=refill
        )

    def refill_statuses(self, refills: Iterable[str | int]) -> Reply:
        ids = _id_list(refills)
        return self._call("refill_status", parse=_parse_refill_statuses, refills=",".join(ids))

    def cancel(self, orders: Iterable[str | int]) -> Reply:
        ids = _id_list(orders)
        return self._call("cancel", parse=_parse_per_order("cancel"), orders=",".join(ids))

    def balance(self) -> Reply:
        return self._call("balance", parse=_parse_balance)

    # -- transport -------------------------------------------------------------------------

    def _call(self, action: str, *, parse, **params: Any) -> Reply:
        url, headers = loopback_for_localhost(self.api_url)
        form = {"key": self.api_key, "action": action, **{k: str(v) for k, v in params.items()}}
        try:
            response = self.session.post(
                url, data=form, headers=headers, timeout=(CONNECT_TIMEOUT, self.timeout)
            )
        except (requests.exceptions.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            return Reply(Outcome.NOT_SENT, error=_describe(exc))
        except requests.exceptions.ConnectionError as exc:
            if _failed_before_sending(exc):
                return Reply(Outcome.NOT_SENT, error=_describe(exc))
            return Reply(Outcome.AMBIGUOUS, error=_describe(exc))
        except requests.exceptions.RequestException as exc:  # read timeouts, broken streams
            return Reply(Outcome.AMBIGUOUS, error=_describe(exc))
        return interpret(response.status_code, response.content, parse)


def interpret(http_status: int, body: bytes, parse) -> Reply:
    """Sort an HTTP answer into an outcome (kept apart from the transport for testing)."""
    if http_status >= 500:
        return Reply(
            Outcome.AMBIGUOUS,
            error=f"HTTP {http_status} from the provider",
            http_status=http_status,
        )
    try:
        data = json.loads(body.decode("utf-8-sig"), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError):
        snippet = body[:120].decode("utf-8", "replace").strip().replace("\n", " ")
        return Reply(
            Outcome.AMBIGUOUS,
            error=f"unreadable reply (HTTP {http_status}): {snippet!r}",
            http_status=http_status,
        )
    message = _error_message(data)
    if message is not None:
        return Reply(Outcome.REJECTED, error=message, http_status=http_status)
    if http_status >= 400:
        return Reply(
            Outcome.AMBIGUOUS,
            error=f"HTTP {http_status} from the provider",
            http_status=http_status,
        )
    try:
        return Reply(Outcome.SUCCESS, data=parse(data), http_status=http_status)
    except (MalformedReply, KeyError, TypeError, ValueError, InvalidOperation) as exc:
        return Reply(
            Outcome.AMBIGUOUS, error=f"unexpected reply shape: {exc}", http_status=http_status
        )


def loopback_for_localhost(url: str) -> tuple[str, dict[str, str]]:
    """`*.localhost` names this machine (RFC 6761) as browsers treat it, which Python's
    resolver does not: connect to 127.0.0.1 and keep the name in the Host header."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
        host_header = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}
    return url, {}


class ProviderSession(requests.Session):
    """An HTTP session for API v2 calls: no automatic retries, no cookies kept between calls
    (each call carries its key and stands alone), and no reuse of a connection idle for longer
    than IDLE_SECONDS. A server closes an idle kept-alive connection when it likes; a request
    written to a connection the server is closing fails with a reset, which the client must
    read as ambiguous, where a fresh connection would have had a definite answer."""

    def __init__(self) -> None:
        super().__init__()
        # No automatic retries: a retry after sending could place an order twice.
        self.mount("http://", HTTPAdapter(max_retries=0, pool_maxsize=32))
        self.mount("https://", HTTPAdapter(max_retries=0, pool_maxsize=32))
        self.headers["User-Agent"] = "Pasok/1.0 (+SMM API v2 client)"
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.last_used = 0.0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if time.monotonic() - self.last_used > IDLE_SECONDS:
            self.close()  # idle connections go; the adapters stay, and connect afresh
        try:
            return super().request(*args, **kwargs)
        finally:
            self.last_used = time.monotonic()


def _session() -> requests.Session:
    return ProviderSession()


class _SessionPool:
    """This process's sessions, one per provider API URL."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.sessions: dict[str, ProviderSession] = {}


_pool = _SessionPool()


def shared_session(api_url: str) -> ProviderSession:
    """This process's session for the provider at `api_url`, made on first use. Threads may
    share it (urllib3's connection pool is thread-safe, and the session keeps no cookies); a
    forked child never does: two processes on one socket would read each other's replies."""
    global _pool
    pool = _pool
    if pool.pid != os.getpid():  # forked without the hook below (it runs only for os.fork)
        pool = _pool = _SessionPool()
    with pool.lock:
        session = pool.sessions.get(api_url)
        if session is None:
            session = pool.sessions[api_url] = ProviderSession()
        return session


def close_sessions() -> None:
    """Close and forget this process's shared sessions (their kept-alive connections)."""
    global _pool
    pool, _pool = _pool, _SessionPool()
    with pool.lock:
        for session in pool.sessions.values():
            session.close()


def _forget_sessions_in_child() -> None:
    # The parent's sessions (and a lock another thread may have held at the fork) stay behind;
    # their sockets are closed in this process when they are collected, the parent's copy lives.
    global _pool
    _pool = _SessionPool()


os.register_at_fork(after_in_child=_forget_sessions_in_child)


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """Connection refused and name resolution failures happen before a byte is sent."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _error_message(data: Any) -> str | None:
    """The upstream's error, whether it says `error` or `errors`, as a string, list or map."""
    if not isinstance(data, dict):
        return None
    for key in ("error", "errors"):
        if key in data and data[key] not in (None, "", [], {}):
            return _flatten(data[key])
    return None


def _flatten(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value)
    return str(value)


def _field(data: Any, name: str) -> Any:
    if not isinstance(data, dict) or name not in data:
        raise MalformedReply(f"no '{name}' in the reply")
    return data[name]


def _order_id(value: Any) -> str:
    text = str(value).strip()
    if not text or text.lower() in ("none", "null", "0"):
        raise MalformedReply(f"not an order id: {value!r}")
    return text


def _id_list(ids: Iterable[str | int]) -> list[str]:
    ids = [str(i).strip() for i in ids]
    if not ids or len(ids) > MAX_IDS_PER_CALL:
        raise ValueError(f"between 1 and {MAX_IDS_PER_CALL} ids per call, not {len(ids)}")
    return ids


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise MalformedReply(f"not a number: {value!r}")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    text = str(value).strip().replace(",", "")
    number = Decimal(text)
    if not number.is_finite():
        raise MalformedReply(f"not a finite number: {value!r}")
    return number


def _to_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return int(to_decimal(value))


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y")
    return bool(value)


def _status_name(value: Any) -> tuple[str, bool]:
    word = str(value).strip()
    name = STATUSES.get(word.lower())
    if name is None:
        log.warning("unknown upstream status %r kept as it is", word)
        return word, False
    return name, True


def _parse_services(data: Any) -> list[UpstreamService]:
    if not isinstance(data, list):
        raise MalformedReply("services is not a list")
    return [
        UpstreamService(
            external_id=str(item["service"]).strip(),
            name=str(item.get("name", "")).strip(),
            type=str(item.get("type") or "Default").strip(),
            category=str(item.get("category") or "Other").strip(),
            rate=to_decimal(item["rate"]),
            min_quantity=_to_int(item.get("min")) or 0,
            max_quantity=_to_int(item.get("max")) or 0,
            refill=_to_bool(item.get("refill", False)),
            cancel=_to_bool(item.get("cancel", False)),
            dripfeed=_to_bool(item.get("dripfeed", False)),
        )
        for item in data
    ]


def _parse_status(data: Any) -> UpstreamStatus:
    name, known = _status_name(_field(data, "status"))
    charge = data.get("charge")
    return UpstreamStatus(
        status=name,
        known=known,
        charge=None if charge in (None, "") else to_decimal(charge),
        start_count=_to_int(data.get("start_count")),
        remains=_to_int(data.get("remains")),
        currency=data.get("currency"),
    )


def _parse_status_map(data: Any) -> dict[str, UpstreamStatus | str]:
    if not isinstance(data, dict):
        raise MalformedReply("multi-status is not an object")
    result: dict[str, UpstreamStatus | str] = {}
    for order_id, item in data.items():
        error = _error_message(item)
        result[str(order_id)] = error if error is not None else _parse_status(item)
    return result


def _parse_per_order(key: str):
    """`[{"order": 1, "<key>": 1}, {"order": 2, "<key>": {"error": "…"}}]` → {id: value|error}."""

    def parse(data: Any) -> dict[str, str]:
        if not isinstance(data, list):
            raise MalformedReply(f"{key} reply is not a list")
        result = {}
        for item in data:
            value = _field(item, key)
            error = _error_message(value)
            result[str(_field(item, "order"))] = f"error: {error}" if error else str(value)
        return result

    return parse


def _parse_refill_statuses(data: Any) -> dict[str, str]:
    if not isinstance(data, list):
        raise MalformedReply("refill statuses are not a list")
    result = {}
    for item in data:
        status = _field(item, "status")
        error = _error_message(status)
        result[str(_field(item, "refill"))] = (
            f"error: {error}" if error else _status_name(status)[0]
        )
    return result


def _parse_balance(data: Any) -> Balance:
    return Balance(to_decimal(_field(data, "balance")), str(data.get("currency") or "USD"))
