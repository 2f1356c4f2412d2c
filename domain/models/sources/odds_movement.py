"""odds_movement: how far the line moved towards a side inside a window before the cut-off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field

from domain.markets.odds import no_vig_first_expr
from domain.models.sources.base import SourceBase, SourceDay, SourceKind, default_of, integers

SPREAD_POINTS = 3.0
"""A move of this many spread (or total) points is full movement (seed: ``min(move / 3, 1)``)."""
H2H_POINTS_PER_SPREAD_POINT = 10.0 / 3.0
"""10 percentage points of no-vig home probability count like 3 spread points (SPEC section 4)."""
REVERSE_LINE_BOOST = 1.2


class OddsMovementSource(SourceBase):
    """Line movement between the opening and the current line inside the window."""

    kind: ClassVar[str] = "odds_movement"
    time_window_hours: Annotated[int, Field(ge=1, le=168)] = 24


_TIME_WINDOW_HOURS = default_of(OddsMovementSource, "time_window_hours")


def key(source: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> int:
    """The source's ``time_window_hours``, the one parameter that decides its scores."""
    return int(source.get("time_window_hours", _TIME_WINDOW_HOURS))


def odds_movement_scores(
    lines: pl.DataFrame, snapshots: pl.DataFrame, market: str, hours: np.ndarray
) -> np.ndarray:
    """odds_movement per current line x distinct time_window_hours.

    ``lines``: one row per game x bookmaker of ``market`` with its current snapshot (``line``,
    ``price_first``, ``price_second``, ``public_first_pct``) and ``cutoff_time``; ``snapshots``: the
    snapshots of those games. Opening = first snapshot at or after ``cutoff - window`` (and not after
    the cut-off); with none inside the window the line has not moved. Reverse line movement is read
    from the current snapshot's ``public_first_pct`` (share of bets on the first side).
    """
    keys = ["game_id", "bookmaker", "market"]
    windows = pl.DataFrame({"window": np.arange(len(hours)), "hours": hours})
    left = (
        lines.with_row_index("line_row")
        .join(windows, how="cross")
        .with_columns((pl.col("cutoff_time") - pl.duration(hours=pl.col("hours"))).alias("window_start"))
        .sort("window_start")
    )
    right = (
        snapshots.filter(pl.col("market") == market)
        .select(
            *keys,
            pl.col("snapshot_time").alias("opening_time"),
            pl.col("line").alias("opening_line"),
            pl.col("price_first").alias("opening_price_first"),
            pl.col("price_second").alias("opening_price_second"),
        )
        .sort("opening_time")
    )
    joined = left.join_asof(
        right,
        left_on="window_start",
        right_on="opening_time",
        by=keys,
        strategy="forward",
        check_sortedness=False,
    )
    inside = pl.col("opening_time").is_not_null() & (pl.col("opening_time") <= pl.col("cutoff_time"))
    if market == "h2h":
        current = 100.0 * no_vig_first_expr(pl.col("price_first"), pl.col("price_second"))
        opening = 100.0 * no_vig_first_expr(pl.col("opening_price_first"), pl.col("opening_price_second"))
        scale, towards_first = H2H_POINTS_PER_SPREAD_POINT * SPREAD_POINTS, 1.0
    else:
        current, opening = pl.col("line"), pl.col("opening_line")
        scale, towards_first = SPREAD_POINTS, -1.0 if market == "spreads" else 1.0
    move = current - pl.when(inside).then(opening).otherwise(current)
    direction = towards_first * move.sign()
    public = pl.col("public_first_pct")
    reverse = public.is_not_null() & (((public > 0.5) & (direction < 0)) | ((public < 0.5) & (direction > 0)))
    movement = pl.min_horizontal(move.abs() / scale, pl.lit(1.0))
    movement = (
        pl.when(reverse)
        .then(pl.min_horizontal(REVERSE_LINE_BOOST * movement, pl.lit(1.0)))
        .otherwise(movement)
    )
    scores = joined.select(
        "window", "line_row", (0.5 + 0.5 * direction * movement).cast(pl.Float64).alias("score")
    ).sort("line_row", "window")
    return scores["score"].fill_null(np.nan).to_numpy().reshape(len(lines), len(hours))


def score(hours: np.ndarray, used: np.ndarray, day: SourceDay) -> np.ndarray:
    return odds_movement_scores(day.lines, day.snapshots, day.market, hours[used])


KIND = SourceKind(OddsMovementSource, key, integers, score, by_line=True)
