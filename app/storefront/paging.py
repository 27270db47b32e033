"""Pages of a long list in the customer area: `?page=N`, kept within the pages there are."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from flask import request, url_for

PAGE_NUMBER = re.compile(r"[0-9]{1,6}")


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


def page_of(total: int, size: int) -> Page:
    """The page asked for in `?page=`; a bad or out-of-range number gives the nearest page."""
    asked = request.args.get("page", "")
    number = int(asked) if PAGE_NUMBER.fullmatch(asked) else 1
    pages = max(1, math.ceil(total / size))
    return Page(min(max(number, 1), pages), size, total)


def page_url(number: int) -> str:
    """This page's URL, with its filters, at page `number`."""
    args = {key: value for key, value in request.args.items() if key != "page" and value}
    if number > 1:
        args["page"] = number
    return url_for(request.endpoint, **(request.view_args or {}), **args)
