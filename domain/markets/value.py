"""What a pick is worth at the prices on offer (issue 16 item 5): the best available price and its
bookmaker, the no-vig fair probability, the expected value at the best price and a fractional-Kelly
stake. Pure: prices in, figures out.

- Prices are decimal odds of the picked side and of the other side, one pair per bookmaker, each
  bookmaker's latest snapshot at the pick's cut-off (:func:`latest_at_cutoff`); for spreads and totals
  only bookmakers offering the pick's line compare.
- The fair probability shown is the *multiplicative* one (each bookmaker's implied probabilities
  scaled to sum to one), averaged over the bookmakers; the *power* method (implied probabilities
  raised to the power k that makes them sum to one, which puts more of the margin on the longshot)
  is given beside it.
- Expected value per unit staked at the best price uses the model's confidence as the probability:
  ``confidence * price - 1``.
- The stake is a fraction (default 1/4) of the Kelly fraction ``(p * price - 1) / (price - 1)`` of a
  bankroll, never below 0 and never above 5% of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

KELLY_FRACTION = 0.25
"""The share of the Kelly stake suggested by default (quarter Kelly)."""
MAX_STAKE = 0.05
"""No suggestion exceeds this share of a bankroll, whatever the edge."""
_POWER_STEPS = 200


@dataclass(frozen=True)
class BookPrice:
    """One bookmaker's prices for a pick: the picked side's and the other side's (decimal)."""

    bookmaker: str
    price: float
    other: float


@dataclass(frozen=True)
class PickValue:
    best_bookmaker: str
    best_price: float
    fair_probability: float
    """Multiplicative no-vig probability of the picked side, averaged over the bookmakers."""
    fair_probability_power: float
    expected_value: float
    """Per unit staked at the best price, with the model's confidence as the probability."""
    kelly_stake: float
    """Suggested stake as a share of a bankroll (fractional Kelly, 0 to :data:`MAX_STAKE`)."""


def fair_multiplicative(price: float, other: float) -> float:
    """No-vig probability of the side priced ``price``: implied probabilities scaled to sum to one."""
    implied, implied_other = 1 / price, 1 / other
    return implied / (implied + implied_other)


def fair_power(price: float, other: float) -> float:
    """No-vig probability of the side priced ``price`` by the power method: ``(1/price)^k`` with the
    k > 0 that makes both sides' powered implied probabilities sum to one (bisection; the sum falls
    as k grows, since each implied probability is below one)."""
    implied, implied_other = 1 / price, 1 / other
    low, high = 1e-9, 1.0
    while implied**high + implied_other**high > 1:
        high *= 2
    for _ in range(_POWER_STEPS):
        mid = (low + high) / 2
        if implied**mid + implied_other**mid > 1:
            low = mid
        else:
            high = mid
    return implied ** ((low + high) / 2)


def expected_value(probability: float, price: float) -> float:
    """Expected profit per unit staked at decimal ``price`` when the side wins with ``probability``."""
    return probability * price - 1


def kelly_stake(
    probability: float, price: float, fraction: float = KELLY_FRACTION, cap: float = MAX_STAKE
) -> float:
    """``fraction`` of the Kelly share of a bankroll to stake at ``price``, within ``[0, cap]``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"the Kelly fraction must be in (0, 1], not {fraction}")
    full = expected_value(probability, price) / (price - 1)
    return min(cap, max(0.0, fraction * full))


def value_of_pick(
    books: Sequence[BookPrice], confidence: float, fraction: float = KELLY_FRACTION
) -> PickValue | None:
    """The figures of a pick the model backs with ``confidence`` over ``books``; None without any.
    The best price is the highest (ties to the bookmaker first by name)."""
    if not books:
        return None
    best = min(books, key=lambda b: (-b.price, b.bookmaker))
    return PickValue(
        best_bookmaker=best.bookmaker,
        best_price=best.price,
        fair_probability=sum(fair_multiplicative(b.price, b.other) for b in books) / len(books),
        fair_probability_power=sum(fair_power(b.price, b.other) for b in books) / len(books),
        expected_value=expected_value(confidence, best.price),
        kelly_stake=kelly_stake(confidence, best.price, fraction),
    )


def latest_at_cutoff(snapshots: pl.DataFrame, cutoff: dt.datetime) -> pl.DataFrame:
    """Each bookmaker's latest snapshot of each game and market taken at or before ``cutoff`` (rows
    of ``domain.tables.schemas.ODDS_SNAPSHOTS``): the prices a pick made at the cut-off could take."""
    keys = ["game_id", "market", "bookmaker"]
    seen = snapshots.filter(pl.col("snapshot_time") <= cutoff)
    return seen.sort([*keys, "snapshot_time"]).unique(keys, keep="last", maintain_order=True)
