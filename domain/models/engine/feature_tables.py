"""The engine's point-in-time features as tables, for operators and analysts.

The scoring engine computes these in memory from :mod:`domain.models.features` (cheaper than reading
them back); the functions here lay the very same computations out as rows per game date, so what an
analyst queries is what the models saw. Every value for date D uses games strictly before D.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from domain.markets.odds import no_vig_first_expr
from domain.models.catalogue import fields_of
from domain.models.features import (
    RESULT_MARKETS,
    Tables,
    day_number,
    player_history,
    results_history,
    team_history,
)
from domain.models.sources.fields import z_scores
from domain.tables.schemas import LINES
from domain.tables.tidy import build_lines

TEAM_FORM: dict[str, pl.DataType] = {
    "sport": pl.String(),
    "game_date": pl.Date(),
    "team": pl.String(),
    "field": pl.String(),
    "lookback_games": pl.Int32(),
    "games_used": pl.Int32(),
    "value": pl.Float64(),
    "league_mean": pl.Float64(),
    "league_std": pl.Float64(),
    "z": pl.Float64(),
}

PLAYER_FORM: dict[str, pl.DataType] = {
    "sport": pl.String(),
    "game_date": pl.Date(),
    "player_id": pl.String(),
    "team": pl.String(),
    "lookback_games": pl.Int32(),
    "games_used": pl.Int32(),
    "minutes": pl.Float64(),
    "field": pl.String(),
    "value": pl.Float64(),
}

TEAM_RATES: dict[str, pl.DataType] = {
    "sport": pl.String(),
    "game_date": pl.Date(),
    "team": pl.String(),
    "market": pl.String(),
    "lookback_days": pl.Int32(),
    "hits": pl.Float64(),
    "games": pl.Float64(),
    "rate": pl.Float64(),
}

LINE_HISTORY: dict[str, pl.DataType] = {
    **LINES,
    "opening_no_vig_first": pl.Float64(),
    "closing_no_vig_first": pl.Float64(),
    "line_move": pl.Float64(),
}


def _slate_days(tables: Tables, sport: str, days: list[dt.date]) -> list[dt.date]:
    """The given days that have games of ``sport`` (features exist for slates, not empty days)."""
    played = set(tables.games.filter(pl.col("sport") == sport)["game_date"].to_list())
    return [d for d in days if d in played]


def _window_means(history, fields: list[str], entities: np.ndarray, day: int, lookback: int):
    played = history.played_before(entities, day)
    lo = np.maximum(played - lookback, 0)
    means = {}
    for fld in fields:
        total, count = history.window(fld, entities, lo, played)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[fld] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return played - lo, means


def team_form(tables: Tables, sport: str, days: list[dt.date], lookback: int = 10) -> pl.DataFrame:
    """Per slate date, team and catalogue field: the mean over the team's last ``lookback`` games
    before the date, with the league's population mean and standard deviation of that value (the
    team_stats source's z-score inputs)."""
    history = team_history(tables, sport)
    fields = [f for f in fields_of(sport, "team") if f in history.sums]
    teams = np.arange(len(history.names))
    frames = []
    for day in _slate_days(tables, sport, days):
        used, means = _window_means(history, fields, teams, day_number(day), lookback)
        for fld in fields:
            value = means[fld]
            valid = ~np.isnan(value)
            mean = value[valid].mean() if valid.any() else np.nan
            std = value[valid].std() if valid.any() else np.nan
            z = z_scores(value[None, :])[0]  # the team_stats source's own z-scores
            frames.append(
                pl.DataFrame(
                    {"team": history.names, "games_used": used, "value": value, "z": z}
                ).with_columns(
                    game_date=pl.lit(day), field=pl.lit(fld), league_mean=pl.lit(mean), league_std=pl.lit(std)
                )
            )
    return _finish(frames, TEAM_FORM, sport, lookback_games=lookback)


def player_form(tables: Tables, sport: str, days: list[dt.date], lookback: int = 10) -> pl.DataFrame:
    """Per slate date and player: mean minutes and per-game means of each player field over the
    player's last ``lookback`` games before the date, with the team of the player's latest game
    (the player_stats source keeps those whose mean minutes reach the model's ``min_minutes``)."""
    history = player_history(tables, sport).players
    fields = [f for f in fields_of(sport, "player") if f in history.sums and f != "minutes"]
    players = np.arange(len(history.names))
    last_team = history.rows.group_by("entity", maintain_order=True).agg(pl.col("team", "game_date"))
    frames = []
    for day in _slate_days(tables, sport, days):
        used, means = _window_means(history, ["minutes", *fields], players, day_number(day), lookback)
        active = used > 0
        base = pl.DataFrame(
            {
                "entity": players[active],
                "player_id": history.names[active],
                "games_used": used[active],
                "minutes": means["minutes"][active],
            }
        )
        team = (
            last_team.explode("team", "game_date")
            .filter(pl.col("game_date") < day)
            .group_by("entity")
            .agg(pl.col("team").last())
        )
        base = base.join(team, on="entity", how="left")
        for fld in fields:
            frames.append(
                base.with_columns(
                    field=pl.lit(fld), value=pl.Series(means[fld][active]), game_date=pl.lit(day)
                )
            )
    return _finish(frames, PLAYER_FORM, sport, lookback_games=lookback)


def team_rates(tables: Tables, sport: str, days: list[dt.date], lookback_days: int = 30) -> pl.DataFrame:
    """Per slate date, team and market: hits and games over the ``lookback_days`` before the date and
    the shrunk rate ``(hits + 2) / (games + 4)`` of the historical_performance source."""
    history = results_history(tables, sport)
    teams = np.arange(len(history.names))
    frames = []
    for day in _slate_days(tables, sport, days):
        n = day_number(day)
        hi, lo = history.played_before(teams, n), history.played_before(teams, n - lookback_days)
        for market in RESULT_MARKETS:
            hits, _ = history.window(f"{market}_hit", teams, lo, hi)
            games, _ = history.window(f"{market}_game", teams, lo, hi)
            frames.append(
                pl.DataFrame(
                    {
                        "team": history.names,
                        "hits": hits,
                        "games": games,
                        "rate": (hits + 2.0) / (games + 4.0),
                    }
                ).with_columns(game_date=pl.lit(day), market=pl.lit(market))
            )
    return _finish(frames, TEAM_RATES, sport, lookback_days=lookback_days)


def line_history(tables: Tables, sport: str, days: list[dt.date]) -> pl.DataFrame:
    """Per game x bookmaker x market of the days: opening and closing line and prices (closing =
    the backtest's current line at ``commence_time``), their no-vig probabilities of the first side,
    and the move in points (or no-vig percentage points for h2h)."""
    games = tables.games.filter((pl.col("sport") == sport) & pl.col("game_date").is_in(days))
    lines = build_lines(tables.snapshots.filter(pl.col("sport") == sport), games)
    opening = no_vig_first_expr(pl.col("opening_price_first"), pl.col("opening_price_second"))
    closing = no_vig_first_expr(pl.col("closing_price_first"), pl.col("closing_price_second"))
    return lines.with_columns(
        opening.alias("opening_no_vig_first"),
        closing.alias("closing_no_vig_first"),
        pl.when(pl.col("market") == "h2h")
        .then(100 * (closing - opening))
        .otherwise(pl.col("closing_line") - pl.col("opening_line"))
        .alias("line_move"),
    ).select(list(LINE_HISTORY))


def _finish(
    frames: list[pl.DataFrame], schema: dict[str, pl.DataType], sport: str, **constants: int
) -> pl.DataFrame:
    if not frames:
        return pl.DataFrame(schema=schema)
    out = pl.concat(frames, how="diagonal_relaxed").with_columns(
        sport=pl.lit(sport), **{k: pl.lit(v) for k, v in constants.items()}
    )
    return out.select([pl.col(c).cast(t) for c, t in schema.items()])
