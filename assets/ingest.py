"""Ingest: what the feeds deliver (raw) and the tidy point-in-time tables built from it.

Raw partitions are one object per table, sport, game date and source, so a feed and a history
import never overwrite each other. Tidy tables merge every source of a day with the rules of
``domain.tables.tidy``. All assets take day ranges in one run (``BackfillPolicy.single_run``): a season's
backfill is one vectorised pass, not 180 runs.
"""

import datetime as dt
import time
from collections.abc import Callable

import dagster as dg
import polars as pl

from assets.common import SportsConfig, daily_partitions, partition_days, table_metadata
from domain.tables import tidy
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, RAW_TABLES, TEAM_BOX
from resources.feeds import FeedRejectedError, FeedResult, OddsFeed, StatsFeed
from stores.lake import Lake
from stores.layout import raw_key, table_key

RAW_ASSETS = {
    "odds_snapshots": "raw_odds_snapshots",
    "game_results": "raw_game_results",
    "team_box": "raw_team_box",
    "player_box": "raw_player_box",
}
_RAW_DESCRIPTIONS = {
    "odds_snapshots": "Odds snapshots (h2h, spreads, totals) per bookmaker as each feed delivered them.",
    "game_results": "Fixtures and final scores as each feed delivered them.",
    "team_box": "Team box scores per game as each feed delivered them.",
    "player_box": "Player box scores per game as each feed delivered them.",
}
_backfill = dg.BackfillPolicy.single_run()
_retry = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def write_raw(
    lake: Lake, table: str, sport: str, source: str, df: pl.DataFrame, days: list[dt.date]
) -> dict[dt.date, int]:
    """Replace ``source``'s raw objects of ``table`` for ``days`` (days without rows are removed)."""
    return lake.write_daily(df, lambda d: raw_key(table, sport, d, source), days)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            name, group_name="ingest", kinds={"polars", "parquet"}, description=_RAW_DESCRIPTIONS[table]
        )
        for table, name in RAW_ASSETS.items()
    ],
    partitions_def=daily_partitions,
    backfill_policy=_backfill,
    retry_policy=_retry,
)
def raw_feeds(
    context: dg.AssetExecutionContext,
    config: SportsConfig,
    lake: dg.ResourceParam[Lake],
    odds_feed: OddsFeed,
    stats_feed: StatsFeed,
):
    """Fetch each configured sport's odds and stats for the partition's game dates."""
    start, end, days = partition_days(context)
    started = time.monotonic()
    totals = dict.fromkeys(RAW_TABLES, 0)
    feed_meta: dict[str, object] = {}
    try:
        for sport in config.sports:
            for feed, result in (
                (odds_feed, odds_feed.fetch_odds(sport, start, end)),
                (stats_feed, stats_feed.fetch_stats(sport, start, end)),
            ):
                _write_feed_result(lake, sport, feed.source_name(), result, days, totals)
                feed_meta.update({f"{sport}/{k}": v for k, v in result.metadata.items()})
    except FeedRejectedError as exc:
        # Transient errors are retried by the client and then by _retry; a refusal never succeeds.
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    elapsed = round(time.monotonic() - started, 2)
    for table, name in RAW_ASSETS.items():
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={"dagster/row_count": totals[table], "seconds": elapsed, **feed_meta},
        )


def _write_feed_result(
    lake: Lake, sport: str, source: str, result: FeedResult, days: list[dt.date], totals: dict[str, int]
) -> None:
    for table, df in result.frames.items():
        written = write_raw(lake, table, sport, source, df, days)
        totals[table] += sum(written.values())


def _build_lines(lake: Lake, sport: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    return tidy.build_lines(
        lake.read_table("odds_snapshots", sport, start, end, ODDS_SNAPSHOTS),
        lake.read_table("games", sport, start, end, GAMES),
    )


TIDY_BUILDERS: dict[str, tuple[Callable[[Lake, str, dt.date, dt.date], pl.DataFrame], list[str], str]] = {
    "games": (
        lambda lake, s, a, b: tidy.build_games(lake.read_raw("game_results", s, a, b, GAMES)),
        ["raw_game_results"],
        "One row per game: teams, start time, final score.",
    ),
    "odds_snapshots": (
        lambda lake, s, a, b: tidy.build_snapshots(lake.read_raw("odds_snapshots", s, a, b, ODDS_SNAPSHOTS)),
        ["raw_odds_snapshots"],
        "Every odds snapshot per game x bookmaker x market, all sources merged.",
    ),
    "lines": (
        _build_lines,
        ["odds_snapshots", "games"],
        "Opening and closing line and prices per game x bookmaker x market.",
    ),
    "team_box_scores": (
        lambda lake, s, a, b: tidy.build_team_box(lake.read_raw("team_box", s, a, b, TEAM_BOX)),
        ["raw_team_box"],
        "Team box score per game and team.",
    ),
    "player_box_scores": (
        lambda lake, s, a, b: tidy.build_player_box(lake.read_raw("player_box", s, a, b, PLAYER_BOX)),
        ["raw_player_box"],
        "Player box score per game and player.",
    ),
}
"""Tidy table -> (builder over the lake for a sport and ``[start, end)``, upstream assets, description).

Listed in dependency order: ``lines`` reads the tidy ``games`` and ``odds_snapshots``.
"""


def rebuild_table(
    lake: Lake, table: str, sport: str, days: list[dt.date], monthly: bool = False
) -> tuple[pl.DataFrame, dict]:
    """Rebuild ``table``'s partitions of ``days`` for ``sport``; the assets and the importer share it.
    ``monthly`` writes one object per month (the importer: years of history in a few hundred objects)."""
    build = TIDY_BUILDERS[table][0]
    df = build(lake, sport, min(days), max(days) + dt.timedelta(days=1))
    write = lake.write_months if monthly else lake.write_daily
    return df, write(df, lambda d: table_key(table, sport, d), days)


def _tidy_asset(table: str) -> dg.AssetsDefinition:
    _, deps, description = TIDY_BUILDERS[table]

    @dg.asset(
        name=table,
        deps=deps,
        group_name="tables",
        kinds={"polars", "parquet"},
        description=description,
        partitions_def=daily_partitions,
        backfill_policy=_backfill,
    )
    def _asset(
        context: dg.AssetExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]
    ) -> dg.MaterializeResult:
        _, _, days = partition_days(context)
        frames, written = [], {}
        for sport in config.sports:
            df, counts = rebuild_table(lake, table, sport, days)
            frames.append(df)
            written.update(counts)
        out = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        return dg.MaterializeResult(metadata=table_metadata(out, days, written))

    return _asset


tidy_assets = [_tidy_asset(table) for table in TIDY_BUILDERS]


ingest_assets = [raw_feeds, *tidy_assets]
