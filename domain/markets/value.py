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
from typing import TypeVar

import numpy as np
import polars as pl

from domain.markets.grading import FIRST_SIDE

KELLY_FRACTION = 0.25
"""The share of the Kelly stake suggested by default (quarter Kelly)."""
MAX_STAKE = 0.05
"""No suggestion exceeds this share of a bankroll, whatever the edge."""
KELLY_UNIT = 0.01
"""A unit as a share of a bankroll, for stakes reported in units (a backtest's ``kelly_units``): a
flat pick stakes one unit, a Kelly pick ``stake / KELLY_UNIT`` (so at most 5), on a bankroll that
does not compound."""
_POWER_STEPS = 200
Stakes = TypeVar("Stakes", np.ndarray, pl.Expr)


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


def check_fraction(fraction: float) -> None:
    if not 0 < fraction <= 1:
        raise ValueError(f"the Kelly fraction must be in (0, 1], not {fraction}")


def kelly_stake(
    probability: float, price: float, fraction: float = KELLY_FRACTION, cap: float = MAX_STAKE
) -> float:
    """``fraction`` of the Kelly share of a bankroll to stake at ``price``, within ``[0, cap]``."""
    check_fraction(fraction)
    full = expected_value(probability, price) / (price - 1)
    return min(cap, max(0.0, fraction * full))


def kelly_stakes(probability: Stakes, price: Stakes, fraction: float = KELLY_FRACTION) -> Stakes:
    """:func:`kelly_stake` over numpy arrays or polars expressions (NaN or null where the price or
    probability is): the one formula that results, on-demand runs and backtests share."""
    return (fraction * (probability * price - 1) / (price - 1)).clip(0.0, MAX_STAKE)


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


PICK_VALUES: dict[str, pl.DataType] = {
    "best_bookmaker": pl.String(),
    "best_price": pl.Float64(),
    "fair_probability": pl.Float64(),
    "fair_probability_power": pl.Float64(),
    "expected_value": pl.Float64(),
    "kelly_stake": pl.Float64(),
}
"""The columns :func:`pick_values` adds (:class:`PickValue`'s fields)."""


def _fair_power_arrays(implied: np.ndarray, implied_other: np.ndarray) -> np.ndarray:
    """:func:`fair_power` over arrays (the same bisection, every row at once)."""
    low, high = np.full(implied.shape, 1e-9), np.ones(implied.shape)
    while (over := implied**high + implied_other**high > 1).any():
        high = np.where(over, high * 2, high)
    for _ in range(_POWER_STEPS):
        mid = (low + high) / 2
        above = implied**mid + implied_other**mid > 1
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    return implied ** ((low + high) / 2)


def pick_values(
    picks: pl.DataFrame, snapshots: pl.DataFrame, fraction: float = KELLY_FRACTION
) -> pl.DataFrame:
    """``picks`` (analyses: ``game_id``, ``market``, ``line``, ``pick``, ``confidence``,
    ``cutoff_time``) with the :data:`PICK_VALUES` columns of :func:`value_of_pick` over every
    bookmaker's latest snapshot (``ODDS_SNAPSHOTS`` rows) of the pick's game, market and line at its
    cut-off; null where there is no pick or no such price."""
    check_fraction(fraction)
    rows = picks.with_row_index("_row")
    first = pl.col("pick") == pl.col("market").replace_strict(FIRST_SIDE, default=None)
    offered = (
        rows.select("_row", "game_id", "market", "line", "pick", "cutoff_time")
        .filter(pl.col("pick").is_not_null())
        .join(
            snapshots.select(
                "game_id",
                "market",
                "bookmaker",
                "snapshot_time",
                pl.col("line").alias("_line"),
                "price_first",
                "price_second",
            ),
            on=["game_id", "market"],
        )
        .filter(
            (pl.col("snapshot_time") <= pl.col("cutoff_time"))
            & pl.col("line").eq_missing(pl.col("_line"))
            & pl.col("price_first").is_not_null()
            & pl.col("price_second").is_not_null()
        )
        .sort("_row", "bookmaker", "snapshot_time")
        .unique(["_row", "bookmaker"], keep="last", maintain_order=True)
        .with_columns(
            pl.when(first).then("price_first").otherwise("price_second").alias("_price"),
            pl.when(first).then("price_second").otherwise("price_first").alias("_other"),
        )
    )
    power = _fair_power_arrays(1 / offered["_price"].to_numpy(), 1 / offered["_other"].to_numpy())
    figures = (
        offered.with_columns(
            (pl.col("_other") / (pl.col("_price") + pl.col("_other"))).alias("fair_probability"),
            pl.Series("fair_probability_power", power, dtype=pl.Float64),
        )
        .sort("_row", pl.col("_price"), "bookmaker", descending=[False, True, False])
        .group_by("_row", maintain_order=True)
        .agg(
            pl.col("bookmaker").first().alias("best_bookmaker"),
            pl.col("_price").first().alias("best_price"),
            pl.col("fair_probability").mean(),
            pl.col("fair_probability_power").mean(),
        )
    )
    ev = pl.col("confidence") * pl.col("best_price") - 1
    stake = kelly_stakes(pl.col("confidence"), pl.col("best_price"), fraction)
    return (
        rows.join(figures, on="_row", how="left")
        .with_columns(ev.alias("expected_value"), stake.alias("kelly_stake"))
        .drop("_row")
    )
