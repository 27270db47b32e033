"""Long lists on any page: `?page=N` kept within the pages there are, URLs that keep a page's
filters, and row ids typed by people (the console, the back office and the storefront)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import request, url_for

MAX_ID = 2**31 - 1  # the largest id an INTEGER column holds


def as_id(value: str | int | None) -> int | None:
    """A row id typed or sent by a person ("42", "#42"), or None: never a number the database
    cannot hold."""
    if isinstance(value, str):
        value = value.strip().lstrip("#")
        value = int(value) if value.isdigit() and len(value) < 10 else None
    if isinstance(value, bool):
        return None
    return value if isinstance(value, int) and 0 < value <= MAX_ID else None


def int_arg(name: str) -> int | None:
    """The query argument `name` as a row id, or None."""
    return as_id(request.args.get(name, ""))


def url_with(**changes) -> str:
    """This page's URL with some query arguments changed (None drops one)."""
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        args.pop(key, None)
    args = {k: v for k, v in args.items() if v not in ("", None)}
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def page_url(number: int) -> str:
    """This page's URL, with its filters, at page `number`."""
    return url_with(page=number if number > 1 else None)


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.size)


def page_of(total: int, size: int) -> Page:
    """The page asked for in `?page=`; a bad or out-of-range number gives the nearest page."""
    number = int_arg("page") or 1
    return Page(min(number, max(1, math.ceil(total / size))), size, total)
