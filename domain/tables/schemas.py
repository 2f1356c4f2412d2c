"""Column contracts of the lake's tables.

Every writer (sample league, Odds API feed, history importers) produces frames with exactly these
columns and dtypes, so readers (features, API, SQL views) never guess. Prices are decimal odds;
lines are the home team's spread (``spreads``) or the game total (``totals``); the *first side* of a
market is home for ``h2h``/``spreads`` and over for ``totals`` (SPEC section 4).
"""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

GAME_RESULTS: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "sport": pl.String(),
    "season": pl.String(),
    "game_date": pl.Date(),
    "commence_time": UTC_TS,
    "home_team": pl.String(),
    "away_team": pl.String(),
    "home_score": pl.Int32(),
    "away_score": pl.Int32(),
    "completed": pl.Boolean(),
    "neutral": pl.Boolean(),
    "source": pl.String(),
    "source_event_id": pl.String(),
}

ODDS_SNAPSHOTS: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "sport": pl.String(),
    "game_date": pl.Date(),
    "bookmaker": pl.String(),
    "market": pl.String(),
    "snapshot_time": UTC_TS,
    "line": pl.Float64(),
    "price_first": pl.Float64(),
    "price_second": pl.Float64(),
    "priced_by_assumption": pl.Boolean(),
    "public_first_pct": pl.Float64(),
    "source": pl.String(),
}

_BOX_STATS = [
    "minutes",
    "pts",
    "fgm",
    "fga",
    "fg3m",
    "fg3a",
    "ftm",
    "fta",
    "oreb",
    "dreb",
    "reb",
    "ast",
    "stl",
    "blk",
    "tov",
    "pf",
    "plus_minus",
]

TEAM_BOX: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "sport": pl.String(),
    "game_date": pl.Date(),
    "team": pl.String(),
    "opponent": pl.String(),
    "is_home": pl.Boolean(),
    **{c: pl.Float64() for c in _BOX_STATS},
    "source": pl.String(),
}

PLAYER_BOX: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "sport": pl.String(),
    "game_date": pl.Date(),
    "team": pl.String(),
    "opponent": pl.String(),
    "player_id": pl.String(),
    "player_name": pl.String(),
    **{c: pl.Float64() for c in _BOX_STATS},
    "source": pl.String(),
}

LINES: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "sport": pl.String(),
    "game_date": pl.Date(),
    "bookmaker": pl.String(),
    "market": pl.String(),
    "n_snapshots": pl.UInt32(),
    "opening_time": UTC_TS,
    "opening_line": pl.Float64(),
    "opening_price_first": pl.Float64(),
    "opening_price_second": pl.Float64(),
    "closing_time": UTC_TS,
    "closing_line": pl.Float64(),
    "closing_price_first": pl.Float64(),
    "closing_price_second": pl.Float64(),
    "priced_by_assumption": pl.Boolean(),
}

GAMES = GAME_RESULTS

RAW_TABLES: dict[str, dict[str, pl.DataType]] = {
    "game_results": GAME_RESULTS,
    "odds_snapshots": ODDS_SNAPSHOTS,
    "team_box": TEAM_BOX,
    "player_box": PLAYER_BOX,
}


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Return ``df`` with exactly ``schema``'s columns, in order and cast; absent columns become null.

    Extra columns are dropped. A cast that would lose data raises (``strict=True``), so a writer
    with a wrong type fails loudly instead of writing nulls.
    """
    return df.select(
        [
            (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype, strict=True).alias(name)
            for name, dtype in schema.items()
        ]
    )


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)
