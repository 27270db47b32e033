"""The order types of the common SMM panel API v2, and the `add` parameters each takes.

Upstreams, Pasok's own API and the sandbox provider all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrderType:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def has_quantity(self) -> bool:
        return "quantity" in self.required


ORDER_TYPES: dict[str, OrderType] = {
    t.name: t
    for t in (
        OrderType("Default", ("link", "quantity"), ("runs", "interval")),
        OrderType("Package", ("link",)),
        OrderType("Custom Comments", ("link", "comments")),
        OrderType("Custom Comments Package", ("link", "comments")),
        OrderType("Mentions with Hashtags", ("link", "quantity", "usernames", "hashtags")),
        OrderType("Mentions Custom List", ("link", "usernames")),
        OrderType("Mentions Hashtag", ("link", "quantity", "hashtag")),
        OrderType("Mentions User Followers", ("link", "quantity", "username")),
        OrderType("Mentions Media Likers", ("link", "quantity", "media")),
        OrderType("Comment Likes", ("link", "quantity", "username")),
        OrderType("Comment Replies", ("link", "username", "comments")),
        OrderType("Poll", ("link", "quantity", "answer_number")),
        OrderType("Invites from Groups", ("link", "quantity", "groups")),
        OrderType("SEO", ("link", "quantity", "keywords")),
        OrderType(
            "Subscriptions",
            ("username", "min", "max", "delay"),
            ("posts", "old_posts", "expiry"),
        ),
    )
}
DEFAULT_TYPE = "Default"


def order_type(name: str | None) -> OrderType | None:
    """The order type called `name` (any letter case), or None for one we do not know."""
    if not name:
        return ORDER_TYPES[DEFAULT_TYPE]
    wanted = name.strip().casefold()
    return next((t for t in ORDER_TYPES.values() if t.name.casefold() == wanted), None)
