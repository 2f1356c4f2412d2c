"""Point-in-time features as tables: team form, player form, line history and team rates.

They are the engine's own computations (``domain.models.engine.feature_tables``) laid out per game date, so
that an analyst's SQL shows exactly what the models saw before each slate.
"""

import datetime as dt
import time
from collections.abc import Callable

import dagster as dg
import polars as pl

from assets.common import SportsConfig, daily_partitions, partition_days, table_metadata
from domain.models.engine import Tables
from domain.models.engine import feature_tables as ft
from services.engine_tables import load_tables
from stores.lake import Lake
from stores.layout import table_key

FEATURES: dict[str, tuple[Callable[[Tables, str, list[dt.date]], pl.DataFrame], str]] = {
    "team_form": (
        ft.team_form,
        "Per slate date, team and catalogue field: the mean over the last 10 games before the date, "
        "with the league mean, standard deviation and the team's z-score as of that date.",
    ),
    "player_form": (
        ft.player_form,
        "Per slate date and player: mean minutes and per-game field means over the last 10 games "
        "before the date, and the team of the player's latest game.",
    ),
    "line_history": (
        ft.line_history,
        "Per game x bookmaker x market: opening and closing line and prices, their no-vig "
        "probabilities of the first side, and the move.",
    ),
    "team_rates": (
        ft.team_rates,
        "Per slate date, team and market: cover / win / over hits and games over the 30 days before "
        "the date, and the shrunk rate (hits + 2) / (games + 4).",
    ),
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            name,
            description=description,
            group_name="features",
            kinds={"polars", "parquet"},
            deps=["games", "team_box_scores", "player_box_scores", "odds_snapshots"],
        )
        for name, (_, description) in FEATURES.items()
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def features(context: dg.AssetExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]):
    """All four feature tables from one load of the tidy tables per sport."""
    start, end, days = partition_days(context)
    outputs: dict[str, list[pl.DataFrame]] = {name: [] for name in FEATURES}
    written: dict[str, dict[dt.date, int]] = {name: {} for name in FEATURES}
    started = time.monotonic()
    for sport in config.sports:
        tables = load_tables(lake, sport, start, end)
        for name, (build, _) in FEATURES.items():
            out = build(tables, sport, days)
            outputs[name].append(out)
            written[name].update(lake.write_daily(out, lambda d, n=name, s=sport: table_key(n, s, d), days))
    seconds = round(time.monotonic() - started, 2)
    for name in FEATURES:
        out = pl.concat(outputs[name]) if outputs[name] else pl.DataFrame()
        yield dg.MaterializeResult(
            asset_key=name, metadata={**table_metadata(out, days, written[name]), "seconds": seconds}
        )


feature_assets = [features]
