"""What an order must carry, per order type (`app.catalog.order_types.ORDER_TYPES`), checked
before anything is priced or charged.

Rules, the same for the storefront and the API:
- `link`: an http:// or https:// URL with a host name (a dot in it, as upstreams require), no
  spaces, at most 2048 characters. Subscriptions have no link: they take `username`.
- `quantity`: a whole number within the service's min and max and a multiple of its `step`.
- Drip-feed (`runs` and `interval`, Default type only): only on a service that allows it; both
  whole numbers, at least 2 runs and an interval of at least 1 minute. `quantity` is per run,
  within min/max as above, and the total (`quantity * runs`) must not exceed the service's max.
  The order's quantity and charge are the total.
- Line lists (`comments`, `usernames`, `hashtags`, `groups`, `keywords`): one item per line,
  no empty line between items (blank lines around the list are dropped). Where the list *is* the
  quantity (Custom Comments, Comment Replies, Mentions Custom List) its count must be within
  min/max, and a `quantity` sent with it must equal the count.
- Packages (Package, Custom Comments Package) are billed per package: quantity 1 (or the number
  of comments, which the package delivers) and the charge is the rate itself.
- Poll: `answer_number` is a whole number of at least 1.
- Subscriptions: `username` (a handle: letters, digits, `.`, `_`, `-`, an optional leading @);
  `min` ≤ `max`, both within the service's min/max; `delay` in minutes, one of
  `SUBSCRIPTION_DELAYS`; optional `posts` (≥ 1), `old_posts` (≥ 0) and `expiry` (a date, today
  or later, given as d/m/Y or Y-m-d, stored as d/m/Y as the API spells it). A subscription is
  billed `max` units for each post it covers (one when `posts` is not given).

Errors are `OrderRejected`, naming the field, with an English message marked for translation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l

from app.catalog.order_types import OrderType, order_type
from app.errors import ValidationError
from app.orders.models import MAX_LINK

SUBSCRIPTION_DELAYS = (0, 5, 10, 15, 30, 60, 90)
PACKAGE_TYPES = ("Package", "Custom Comments Package")
# Types whose quantity is the number of lines of one list.
COUNTED_LISTS = {
    "Custom Comments": "comments",
    "Custom Comments Package": "comments",
    "Comment Replies": "comments",
    "Mentions Custom List": "usernames",
}
LIST_PARAMS = ("comments", "usernames", "hashtags", "groups", "keywords")
MAX_NUMBER = 10**12
MAX_TEXT = 100_000  # a list of comments or usernames, in characters
MAX_WORD = 255  # a single username, hashtag or media link
WHOLE_NUMBER = re.compile(r"\d{1,13}")
HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z0-9-]{2,}", re.IGNORECASE)
HANDLE = re.compile(r"@?[A-Za-z0-9._-]{1,100}")
PACKAGE_UNITS = 1000  # a package's charge is its rate: `charge(rate, 1000)`


class OrderRejected(ValidationError):
    """An order's input is wrong; `field` names the input and the message says why."""


@dataclass(frozen=True)
class OrderRequest:
    """A valid order's shape: its target, the quantity the status reports against, the units the
    charge is computed on (`charge(rate, billed_units)`), and the type's other parameters."""

    link: str
    quantity: int
    billed_units: int
    params: dict[str, str] = field(default_factory=dict)


def validate_order(service, fields: Mapping[str, Any]) -> OrderRequest:
    """Check `fields` (the `add` parameters, as text or numbers) against the service's order
    type and limits; `OrderRejected` on the first problem."""
    kind = order_type(service.type)
    if kind is None:
        raise OrderRejected(_l("This service cannot be ordered"), "service")
    values = {name: _text(fields.get(name), name) for name in (*kind.params, "quantity")}
    for name in kind.required:
        if not values[name]:
            raise OrderRejected(_l("%(field)s is required", field=_label(name)), name)
    params: dict[str, str] = {}

    if "link" in kind.required:
        link = _link(values["link"], "link")
    else:
        link = _handle(values["username"], "username")
        params["username"] = link

    for name in kind.params:
        if name in ("link", "quantity", "username", "runs", "interval"):
            continue
        if name in LIST_PARAMS:
            items = _lines(values[name], name)
            if items:
                params[name] = "\n".join(items)
        elif values[name]:
            params[name] = values[name]
    if "username" in kind.params and kind.name != "Subscriptions":
        params["username"] = _handle(values["username"], "username")
    for name in ("hashtag", "media"):
        if name in params:
            params[name] = _word(params[name], name)
    if "media" in params:
        params["media"] = _link(params["media"], "media")

    if kind.name == "Subscriptions":
        quantity, billed = _subscription(service, params)
    elif kind.has_quantity:
        quantity = _quantity(service, values["quantity"])
        runs = _drip_feed(service, kind, values, quantity, params)
        quantity = billed = quantity * runs
    elif kind.name in COUNTED_LISTS:
        count = len(params[COUNTED_LISTS[kind.name]].splitlines())
        if values["quantity"] and _whole(values["quantity"], "quantity") != count:
            raise OrderRejected(
                _l("The quantity must equal the number of lines (%(count)s)", count=count),
                COUNTED_LISTS[kind.name],
            )
        if kind.name in PACKAGE_TYPES:
            quantity, billed = count, PACKAGE_UNITS
        else:
            _within(service, count, COUNTED_LISTS[kind.name])
            quantity = billed = count
    else:
        quantity, billed = 1, PACKAGE_UNITS  # a Package

    if kind.name == "Poll" and _whole(params["answer_number"], "answer_number") < 1:
        raise OrderRejected(_l("Answer number must be 1 or more"), "answer_number")
    return OrderRequest(link=link, quantity=quantity, billed_units=billed, params=params)


# --- the pieces ------------------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise OrderRejected(_l("%(field)s is not valid", field=_label(name)), name)
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        raise OrderRejected(_l("%(field)s is too long", field=_label(name)), name)
    return text


def _link(value: str, name: str) -> str:
    if not value:
        raise OrderRejected(_l("%(field)s is required", field=_label(name)), name)
    invalid = OrderRejected(_l("Enter a valid link starting with http:// or https://"), name)
    if len(value) > MAX_LINK or any(c.isspace() for c in value):
        raise invalid
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise invalid from None
    if parts.scheme.lower() not in ("http", "https") or not host or not HOST.fullmatch(host):
        raise invalid
    return value


def _handle(value: str, name: str) -> str:
    if not value:
        raise OrderRejected(_l("%(field)s is required", field=_label(name)), name)
    if not HANDLE.fullmatch(value):
        raise OrderRejected(_l("Enter a username without spaces or a link"), name)
    return value


def _word(value: str, name: str) -> str:
    if len(value) > MAX_WORD or any(c.isspace() for c in value):
        raise OrderRejected(_l("%(field)s is not valid", field=_label(name)), name)
    return value


def _lines(value: str, name: str) -> list[str]:
    lines = [line.strip() for line in value.replace("\r\n", "\n").split("\n")]
    if any(not line for line in lines) and value:
        raise OrderRejected(_l("%(field)s must not have empty lines", field=_label(name)), name)
    return [line for line in lines if line]


def _whole(value: str, name: str) -> int:
    if not WHOLE_NUMBER.fullmatch(value) or int(value) > MAX_NUMBER:
        raise OrderRejected(_l("%(field)s must be a whole number", field=_label(name)), name)
    return int(value)


def _within(service, value: int, name: str) -> None:
    if value < service.min_quantity:
        raise OrderRejected(
            _l("%(field)s must be at least %(min)s", field=_label(name), min=service.min_quantity),
            name,
        )
    if value > service.max_quantity:
        raise OrderRejected(
            _l("%(field)s must be at most %(max)s", field=_label(name), max=service.max_quantity),
            name,
        )


def _quantity(service, value: str) -> int:
    quantity = _whole(value, "quantity")
    _within(service, quantity, "quantity")
    step = max(service.step or 1, 1)
    if quantity % step:
        raise OrderRejected(_l("Quantity must be a multiple of %(step)s", step=step), "quantity")
    return quantity


def _drip_feed(
    service, kind: OrderType, values: dict[str, str], quantity: int, params: dict[str, str]
) -> int:
    """The number of runs (1 without drip-feed); records runs and interval in `params`."""
    if "runs" not in kind.params or not (values.get("runs") or values.get("interval")):
        return 1
    if not service.dripfeed:
        raise OrderRejected(_l("This service does not support drip-feed"), "runs")
    if not (values["runs"] and values["interval"]):
        raise OrderRejected(_l("Drip-feed needs both runs and interval"), "runs")
    runs = _whole(values["runs"], "runs")
    interval = _whole(values["interval"], "interval")
    if runs < 2:
        raise OrderRejected(_l("Drip-feed needs at least 2 runs"), "runs")
    if interval < 1:
        raise OrderRejected(_l("The interval must be at least 1 minute"), "interval")
    if quantity * runs > service.max_quantity:
        raise OrderRejected(
            _l("Quantity times runs must be at most %(max)s", max=service.max_quantity),
            "runs",
        )
    params["runs"], params["interval"] = str(runs), str(interval)
    return runs


def _subscription(service, params: dict[str, str]) -> tuple[int, int]:
    low = _whole(params.get("min", ""), "min")
    high = _whole(params.get("max", ""), "max")
    _within(service, low, "min")
    _within(service, high, "max")
    if low > high:
        raise OrderRejected(_l("Min must not be more than max"), "min")
    delay = _whole(params.get("delay", ""), "delay")
    if delay not in SUBSCRIPTION_DELAYS:
        allowed = ", ".join(str(d) for d in SUBSCRIPTION_DELAYS)
        raise OrderRejected(
            _l("Delay must be one of %(allowed)s minutes", allowed=allowed), "delay"
        )
    params["min"], params["max"], params["delay"] = str(low), str(high), str(delay)
    posts = 1
    if "posts" in params:
        posts = _whole(params["posts"], "posts")
        if posts < 1:
            raise OrderRejected(_l("Posts must be 1 or more"), "posts")
        params["posts"] = str(posts)
    if "old_posts" in params:
        params["old_posts"] = str(_whole(params["old_posts"], "old_posts"))
    if "expiry" in params:
        params["expiry"] = _expiry(params["expiry"]).strftime("%d/%m/%Y")
    return high, high * posts


def _expiry(value: str) -> date:
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            day = datetime.strptime(value, pattern).date()
            break
        except ValueError:
            continue
    else:
        raise OrderRejected(_l("Enter the expiry date as dd/mm/yyyy"), "expiry")
    if day < datetime.now(UTC).date():
        raise OrderRejected(_l("The expiry date is in the past"), "expiry")
    return day


_LABELS = {
    "link": _l("Link"),
    "quantity": _l("Quantity"),
    "runs": _l("Runs"),
    "interval": _l("Interval"),
    "comments": _l("Comments"),
    "usernames": _l("Usernames"),
    "hashtags": _l("Hashtags"),
    "hashtag": _l("Hashtag"),
    "username": _l("Username"),
    "media": _l("Media link"),
    "answer_number": _l("Answer number"),
    "groups": _l("Groups"),
    "keywords": _l("Keywords"),
    "min": _l("Min"),
    "max": _l("Max"),
    "delay": _l("Delay"),
    "posts": _l("Posts"),
    "old_posts": _l("Old posts"),
    "expiry": _l("Expiry"),
}


def _label(name: str):
    return _LABELS.get(name, name)
