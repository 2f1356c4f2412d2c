"""From raw deliveries of many sources to tidy point-in-time tables.

Several sources may describe the same game (a history file and a feed, two history files). The rules
here decide which row wins, once, for the pipeline and the importer alike.
"""

from __future__ import annotations

import polars as pl

from domain.tables.schemas import GAMES, LINES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform


def build_games(raw_results: pl.DataFrame) -> pl.DataFrame:
    """One row per ``game_id``: a completed row with scores beats a scheduled one; then the
    row from the source that sorts first, so the choice is deterministic."""
    if raw_results.is_empty():
        return conform(raw_results, GAMES)
    return conform(
        raw_results.sort(
            ["game_id", "completed", "home_score", "source"],
            descending=[False, True, False, False],
            nulls_last=True,
        ).unique(subset="game_id", keep="first", maintain_order=True),
        GAMES,
    )


def build_snapshots(raw_snapshots: pl.DataFrame) -> pl.DataFrame:
    """Odds snapshots without duplicates (the same feed fetched twice repeats snapshots)."""
    return conform(
        raw_snapshots.unique(
            subset=["game_id", "bookmaker", "market", "snapshot_time"], keep="last", maintain_order=True
        ).sort(["game_id", "bookmaker", "market", "snapshot_time"]),
        ODDS_SNAPSHOTS,
    )


def build_lines(snapshots: pl.DataFrame, games: pl.DataFrame) -> pl.DataFrame:
    """Opening and closing line per game x bookmaker x market.

    Opening is the first snapshot; closing is the last snapshot taken before ``commence_time``
    (SPEC section 2). Snapshots at or after the start are in-play and never close a line.
    """
    pre = snapshots.join(games.select("game_id", "commence_time"), on="game_id", how="inner").filter(
        pl.col("snapshot_time") < pl.col("commence_time")
    )
    keys = ["game_id", "sport", "game_date", "bookmaker", "market"]
    lines = (
        pre.sort("snapshot_time")
        .group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("n_snapshots"),
            pl.col("snapshot_time").first().alias("opening_time"),
            pl.col("line").first().alias("opening_line"),
            pl.col("price_first").first().alias("opening_price_first"),
            pl.col("price_second").first().alias("opening_price_second"),
            pl.col("snapshot_time").last().alias("closing_time"),
            pl.col("line").last().alias("closing_line"),
            pl.col("price_first").last().alias("closing_price_first"),
            pl.col("price_second").last().alias("closing_price_second"),
            pl.col("priced_by_assumption").any(),
        )
        .sort(["game_id", "bookmaker", "market"])
    )
    return conform(lines, LINES)


def build_team_box(raw: pl.DataFrame) -> pl.DataFrame:
    """One row per game and team; the first source in name order wins a tie."""
    return conform(
        raw.sort(["game_id", "team", "source"]).unique(
            ["game_id", "team"], keep="first", maintain_order=True
        ),
        TEAM_BOX,
    )


def build_player_box(raw: pl.DataFrame) -> pl.DataFrame:
    """One row per game and player; the first source in name order wins a tie."""
    return conform(
        raw.sort(["game_id", "player_id", "source"]).unique(
            ["game_id", "player_id"], keep="first", maintain_order=True
        ),
        PLAYER_BOX,
    )
