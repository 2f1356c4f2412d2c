"""Money rules shared by model configs, the marketplace and payouts. Amounts are integer cents."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

CREATOR_SHARE_PERCENT = 70
"""Creators receive 70% of subscription revenue, the platform 30% (seed "Revenue Model")."""


@dataclass(frozen=True)
class PriceTier:
    name: str
    min_cents: int
    max_cents: int


PRICE_TIERS: tuple[PriceTier, ...] = (
    PriceTier("basic", 499, 999),
    PriceTier("premium", 1000, 2499),
    PriceTier("pro", 2500, 99_999),
)
"""The seed's paid tiers (Basic $4.99-9.99, Premium $10-24.99, Pro $25+). The seed leaves Pro open;
it is capped at $999.99 so a typo (99999 for 9.99) cannot list a model at a thousand dollars."""


def dollars_to_cents(amount: Decimal) -> int:
    """Exact conversion; amounts with fractions of a cent raise instead of being rounded."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def price_tier(cents: int) -> str | None:
    """``"free"`` for 0, the tier's name for a price inside a tier, None for a price outside all."""
    if cents == 0:
        return "free"
    return next((t.name for t in PRICE_TIERS if t.min_cents <= cents <= t.max_cents), None)


def describe_price_tiers() -> str:
    """``0 (free), 4.99-9.99 (basic), ...``: the allowed prices, for error messages and docs."""
    tiers = ", ".join(f"{t.min_cents / 100:.2f}-{t.max_cents / 100:.2f} ({t.name})" for t in PRICE_TIERS)
    return f"0 (free), {tiers}"
