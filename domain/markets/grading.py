"""Grading a side of a game market against the final score, and the profit of one unit on it.

One implementation serves the engine's dynamic weighting, backtests and settlement (SPEC sections 4
and 5). Lines are the home spread (``spreads``) or the game total (``totals``); ``h2h`` has none.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

Result = Literal["won", "lost", "push"]
FIRST_SIDE = {"spreads": "home", "h2h": "home", "totals": "over"}
SECOND_SIDE = {"spreads": "away", "h2h": "away", "totals": "under"}


def first_side_margin(market: pl.Expr, line: pl.Expr, home_score: pl.Expr, away_score: pl.Expr) -> pl.Expr:
    """By how much the first side (home, or the over) beat the market: > 0 won, 0 push, < 0 lost.

    Spreads: home covers when ``home + line > away``; totals: over when ``home + away > line``;
    h2h: the home team won. Null when a score (or a needed line) is missing or the market unknown.
    """
    home, away = home_score.cast(pl.Float64), away_score.cast(pl.Float64)
    return (
        pl.when(market == "spreads")
        .then(home + line - away)
        .when(market == "totals")
        .then(home + away - line)
        .when(market == "h2h")
        .then(home - away)
        .otherwise(None)
    )


def grade(market: pl.Expr, line: pl.Expr, home_score: pl.Expr, away_score: pl.Expr, side: pl.Expr) -> pl.Expr:
    """``"won"`` / ``"lost"`` / ``"push"`` for ``side`` (home/away/over/under); null when ungradable."""
    first = side.is_in(["home", "over"])
    margin = pl.when(first).then(1.0).when(side.is_in(["away", "under"])).then(-1.0).otherwise(None) * (
        first_side_margin(market, line, home_score, away_score)
    )
    return (
        pl.when(margin > 0)
        .then(pl.lit("won"))
        .when(margin < 0)
        .then(pl.lit("lost"))
        .when(margin == 0)
        .then(pl.lit("push"))
    )


def profit(result: pl.Expr, decimal_price: pl.Expr) -> pl.Expr:
    """Profit of one unit staked: a win pays ``price - 1``, a loss costs 1, a push is refunded."""
    return (
        pl.when(result == "won")
        .then(decimal_price - 1.0)
        .when(result == "lost")
        .then(pl.lit(-1.0))
        .when(result == "push")
        .then(pl.lit(0.0))
    )
