"""Canonical identifiers shared by every source, so games from different feeds join."""

from __future__ import annotations

import datetime as dt

import polars as pl

from domain.sports import sport_info


def game_id(sport: str, game_date: dt.date, away: str, home: str) -> str:
    """``nba_20181016_PHI_BOS``: sport prefix, local game date, away code, home code."""
    return f"{sport_info(sport).prefix}_{game_date:%Y%m%d}_{away}_{home}"


def game_id_expr(sport: str, game_date: pl.Expr, away: pl.Expr, home: pl.Expr) -> pl.Expr:
    """Vectorised :func:`game_id` over columns."""
    return pl.concat_str(
        [pl.lit(sport_info(sport).prefix), game_date.dt.strftime("%Y%m%d"), away, home], separator="_"
    )
