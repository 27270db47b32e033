"""A tenant's rounding policy: how the retail rates it shows are rounded.

Policies, as stored and typed (case-insensitive):
- ``none``: keep the 6 places every rate keeps;
- ``0dp`` … ``6dp``: that many decimal places, half-up;
- ``nearest:STEP``: the nearest multiple of STEP, half-up (``nearest:100`` for IDR panels);
- ``up:STEP`` / ``down:STEP``: the next multiple of STEP above / below, unless already on one.

STEP is a positive plain decimal with at most 6 places. Every policy is monotonic (a higher rate
never shows lower) and idempotent (rounding a rounded rate changes nothing). A coarse step can
round a small rate to 0; pricing warns when retail falls below wholesale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.money.amounts import EXACT, RATE_PLACES, places_of, quantize, require_decimal

NEAREST = "nearest"
UP = "up"
DOWN = "down"
MAX_STEP = Decimal(10) ** 9

DECIMAL_PLACES_POLICY = re.compile(r"([0-6])dp")
STEP_POLICY = re.compile(r"(nearest|up|down):([0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class RoundingPolicy:
    mode: str
    step: Decimal
    text: str

    def __str__(self) -> str:
        return self.text


def parse_rounding_policy(text: str) -> RoundingPolicy:
    """The policy for its text form; its `text` is the canonical spelling to store."""
    if not isinstance(text, str):
        raise TypeError(f"a rounding policy is text, not {type(text).__name__}")
    canonical = text.strip().lower()
    if canonical == "none":
        return RoundingPolicy(NEAREST, Decimal(1).scaleb(-RATE_PLACES), canonical)
    if match := DECIMAL_PLACES_POLICY.fullmatch(canonical):
        return RoundingPolicy(NEAREST, Decimal(1).scaleb(-int(match.group(1))), canonical)
    if match := STEP_POLICY.fullmatch(canonical):
        step = Decimal(match.group(2))
        if 0 < step <= MAX_STEP and places_of(step) <= RATE_PLACES:
            return RoundingPolicy(match.group(1), step, f"{match.group(1)}:{step.normalize():f}")
    raise ValidationError(
        _l(
            "Unknown rounding policy '%(text)s': use none, 0dp to 6dp, nearest:STEP, up:STEP "
            "or down:STEP (e.g. nearest:100)",
            text=text.strip()[:30],
        ),
        "rounding",
    )


def apply_rounding(rate: Decimal, policy: RoundingPolicy | str) -> Decimal:
    """`rate` (any non-negative Decimal) rounded by the policy, with the step's places."""
    if isinstance(policy, str):
        policy = parse_rounding_policy(policy)
    rate = require_decimal(rate, "rate")
    if rate < 0:
        raise ValueError(f"a rate cannot be negative, got {rate}")
    # Fractions keep the division exact: a step such as 0.3 has no finite decimal inverse.
    steps = Fraction(rate) / Fraction(policy.step)
    whole, part = divmod(steps.numerator, steps.denominator)
    if policy.mode == UP:
        whole += part > 0
    elif policy.mode == NEAREST:
        whole += 2 * part >= steps.denominator
    result = EXACT.multiply(Decimal(whole), policy.step)
    return quantize(result, places_of(policy.step), ROUND_HALF_UP)
