"""The sandbox's service catalog, generated rather than written out so it scales to thousands.

Service `n` is a pure function of `n`: the same id always has the same name, type and price,
whatever the seed or the catalog size, so the first 50 services of `--services 5000` are the
default catalog, and services added at run time are as predictable as the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import cycle
from typing import Any

from app.catalog.order_types import DEFAULT_TYPE

BRAND = "[SBX]"
MAX_RATE_PLACES = 6


@dataclass(frozen=True)
class SandboxService:
    id: int
    name: str
    type: str
    category: str
    rate: Decimal  # USD (the sandbox's currency) per 1000, or per package for package types
    min: int
    max: int
    refill: bool
    cancel: bool
    dripfeed: bool

    def api_reply(self) -> dict[str, Any]:
        """The service as the `services` action lists it: numbers as strings, flags as bools."""
        return {
            "service": self.id,
            "name": self.name,
            "type": self.type,
            "category": self.category,
            "rate": str(self.rate),
            "min": str(self.min),
            "max": str(self.max),
            "refill": self.refill,
            "cancel": self.cancel,
            "dripfeed": self.dripfeed,
        }


@dataclass(frozen=True)
class Template:
    category: str
    type: str
    rate: tuple[str, str]  # the range a generated rate falls in
    mins: tuple[int, ...] = (10, 50, 100)
    maxes: tuple[int, ...] = (5_000, 10_000, 50_000, 100_000)
    refill: float = 0.5  # chance a generated service offers refills
    cancel: float = 0.5


DEFAULT_TEMPLATES = (
    Template("Instagram Followers", DEFAULT_TYPE, ("0.30", "4.50"), refill=0.8),
    Template("Instagram Likes", DEFAULT_TYPE, ("0.02", "1.20")),
    Template("TikTok Views", DEFAULT_TYPE, ("0.001", "0.05"), (100, 500, 1000), refill=0.1),
    Template("YouTube Views", DEFAULT_TYPE, ("0.80", "6.00"), (100, 500, 1000)),
    Template("Telegram Members", DEFAULT_TYPE, ("0.40", "3.00"), refill=0.7),
    Template("TikTok Followers", DEFAULT_TYPE, ("0.90", "5.50"), refill=0.7),
    Template("YouTube Subscribers", DEFAULT_TYPE, ("8.00", "40.00"), (20, 50), (5_000, 20_000)),
    Template("Instagram Views", DEFAULT_TYPE, ("0.003", "0.20"), (100, 500), refill=0.1),
    Template("Twitter Followers", DEFAULT_TYPE, ("1.00", "12.00"), refill=0.6),
    Template("Facebook Page Likes", DEFAULT_TYPE, ("1.20", "9.00"), refill=0.6),
    Template("TikTok Likes", DEFAULT_TYPE, ("0.05", "1.80")),
    Template("Telegram Post Views", DEFAULT_TYPE, ("0.002", "0.08"), (100, 500), refill=0.1),
    Template("Spotify Plays", DEFAULT_TYPE, ("0.20", "1.50"), (500, 1000), refill=0.3),
    Template("YouTube Likes", DEFAULT_TYPE, ("0.60", "4.00")),
    Template("Twitch Followers", DEFAULT_TYPE, ("0.50", "3.50"), refill=0.5),
    Template("Threads Followers", DEFAULT_TYPE, ("1.10", "6.50"), refill=0.5),
)
SPECIAL_TEMPLATES = (
    Template("Instagram Packages", "Package", ("1.50", "30.00"), (1,), (1,), 0.3, 0.0),
    Template("Instagram Comments", "Custom Comments", ("2.00", "15.00"), (5, 10), (500, 1_000)),
    Template("Instagram Story Polls", "Poll", ("0.50", "3.00")),
    Template("Instagram Auto Likes", "Subscriptions", ("0.05", "1.20"), (10, 20, 50), cancel=0.8),
    Template("Instagram Mentions", "Mentions Custom List", ("1.00", "6.00"), (10,), (1_000,)),
    Template("YouTube Comment Packages", "Custom Comments Package", ("3.00", "25.00"), (1,), (1,)),
    Template("Instagram Comment Likes", "Comment Likes", ("0.50", "4.00")),
    Template("Instagram Mentions Hashtags", "Mentions with Hashtags", ("1.50", "7.00")),
    Template("Instagram Hashtag Mentions", "Mentions Hashtag", ("1.20", "5.00")),
    Template("Instagram Follower Mentions", "Mentions User Followers", ("1.20", "5.00")),
    Template("Instagram Likers Mentions", "Mentions Media Likers", ("1.20", "5.00")),
    Template("Instagram Comment Replies", "Comment Replies", ("3.00", "18.00"), (5,), (500,)),
    Template("Telegram Group Invites", "Invites from Groups", ("2.00", "9.00"), refill=0.2),
    Template("Google Keyword Traffic", "SEO", ("0.50", "3.00"), (100, 500), refill=0.0),
)


def _template_cycle() -> tuple[Template, ...]:
    """Two Default services, then a special one, around the catalog: mostly Default, and
    every order type within the first 42 ids."""
    defaults = cycle(DEFAULT_TEMPLATES)
    order: list[Template] = []
    for special in SPECIAL_TEMPLATES:
        order += [next(defaults), next(defaults), special]
    return tuple(order)


TEMPLATE_CYCLE = _template_cycle()
QUALITIES = ("Real", "HQ", "Mixed", "Premium", "Bots", "Real Active", "Non Drop", "Targeted USA")
SPEEDS = ("1K/Day", "5K/Day", "10K/Day", "20K/Day", "50K/Day", "Instant", "Slow")
REFILL_LABELS = ("R30", "R60", "R365", "Lifetime Refill")


def generate_service(service_id: int) -> SandboxService:
    """Service `service_id` of the generated catalog."""
    template = TEMPLATE_CYCLE[(service_id - 1) % len(TEMPLATE_CYCLE)]
    rng = random.Random(f"sandbox-service:{service_id}")
    refill = rng.random() < template.refill
    minimum = rng.choice(template.mins)
    maximum = max(rng.choice(template.maxes), minimum)
    label = rng.choice(REFILL_LABELS) if refill else "No Refill"
    name = f"{BRAND} {template.category} | {rng.choice(QUALITIES)} | {rng.choice(SPEEDS)}"
    return SandboxService(
        id=service_id,
        name=f"{name} | {label}",
        type=template.type,
        category=template.category,
        rate=generate_rate(rng, *template.rate),
        min=minimum,
        max=maximum,
        refill=refill,
        cancel=rng.random() < template.cancel,
        dripfeed=template.type == DEFAULT_TYPE and rng.random() < 0.3,
    )


def generate_rate(rng: random.Random, low: str, high: str) -> Decimal:
    """A price in [low, high], shown the way panels show them: mostly cents ("0.45", "1.20"),
    with more decimals where the price is tiny or the panel likes precision."""
    micro = Decimal(rng.randint(int(Decimal(low) * 10**6), int(Decimal(high) * 10**6)))
    raw = micro.scaleb(-MAX_RATE_PLACES)
    places = rng.choice((2, 2, 2, 3, 4, 6))
    while True:
        rate = raw.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if rate >= Decimal(low) or places == MAX_RATE_PLACES:
            return rate
        places += 1


def generate_catalog(count: int, first_id: int = 1) -> dict[int, SandboxService]:
    """`count` generated services with consecutive ids from `first_id`."""
    return {n: generate_service(n) for n in range(first_id, first_id + count)}
