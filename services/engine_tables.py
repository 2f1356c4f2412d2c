"""Loading the engine's inputs from the lake, once for the pipeline, the CLI and the API."""

from __future__ import annotations

import datetime as dt

import polars as pl

from domain.models.engine import ANALYSES, ANALYSIS_WEIGHTS, EXPLAINED, SOURCE_SCORES, Scored, Tables
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform
from stores.lake import Lake
from stores.layout import parse_period_key, table_prefix

HISTORY_DAYS = 400
"""How far back stats are loaded: 82 games (the longest lookback) span a season plus an off-season."""


def load_tables(
    lake: Lake, sport: str, start: dt.date, end: dt.date, history_days: int = HISTORY_DAYS
) -> Tables:
    """The tidy tables the engine needs to score game dates ``[start, end)``.

    Stats, results and odds snapshots reach back ``history_days`` before ``start`` (historical
    performance grades past games at their closing lines, so a day scored alone sees the same
    history as inside a season-long run). Rows after a cut-off may be present: the engine enforces
    point in time itself.
    """
    since = start - dt.timedelta(days=history_days)
    return Tables(
        games=lake.read_table("games", sport, since, end, GAMES),
        team_box=lake.read_table("team_box_scores", sport, since, end, TEAM_BOX),
        player_box=lake.read_table("player_box_scores", sport, since, end, PLAYER_BOX),
        snapshots=lake.read_table("odds_snapshots", sport, since, end, ODDS_SNAPSHOTS),
    )


SCORED_LAKE_TABLES = {
    "analyses": ANALYSES,
    "source_scores": SOURCE_SCORES,
    "analysis_weights": ANALYSIS_WEIGHTS,
}
"""The lake tables of :class:`Scored` (its fields, in order): the analyses and what went into them,
one object of each per sport and game date."""


def load_scored(lake: Lake, sport: str, start: dt.date, end: dt.date) -> Scored:
    """The stored analyses of game dates ``[start, end)`` with their source scores and weights."""
    return Scored(
        *(lake.read_table(table, sport, start, end, schema) for table, schema in SCORED_LAKE_TABLES.items())
    )


def split_legacy_analyses(lake: Lake) -> int:
    """Split analyses objects written before ``source_scores`` and ``analysis_weights`` existed (with
    the list columns ``source_names``, ``source_scores`` and ``weights``) into the three tables, so
    that dynamic weighting and explanations read them as they read new days; the objects split.

    Crash-safe and idempotent: the two new objects are written before the analyses object loses its
    lists, so a run stopped half-way splits the object again."""
    options = lake.polars_storage_options()
    split = 0
    for key in lake.list_keys(table_prefix("analyses")):
        period = parse_period_key(key)
        if period is None or period.day is None:  # month objects are compacted from split days
            continue
        if "source_names" not in pl.scan_parquet(lake.uri(key), storage_options=options).collect_schema():
            continue
        scored = Scored.from_explained(conform(lake.read_parquet([key]), EXPLAINED))
        for table, frame in (("source_scores", scored.source_scores), ("analysis_weights", scored.weights)):
            lake.write_parquet(key.replace(table_prefix("analyses"), table_prefix(table), 1), frame)
        lake.write_parquet(key, scored.analyses)
        split += 1
    return split
