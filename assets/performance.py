"""Verified records: settled picks and daily performance per model version, and calibration.

Settlement grades every analysis of a completed game at its own line and price
(``domain.marketplace.performance``, the backtests' own grading); daily performance sums the
qualifying picks settled that day and the rolling 30-day figures that feed the leaderboard. Both take
day ranges in one run, in date order, so a backfill's rolling windows see the days the same run wrote.
"""

import datetime as dt

import dagster as dg
import polars as pl

from assets.common import SportsConfig, daily_partitions, markdown_table, partition_days, table_metadata
from domain.marketplace.performance import (
    MODEL_PERFORMANCE,
    ROLLING_DAYS,
    SETTLED_PICKS,
    calibration,
    calibration_plot_markdown,
    daily_performance,
    settle,
)
from domain.models.engine import ANALYSES, clustered
from domain.tables.schemas import GAMES, LINES
from stores.lake import Lake
from stores.layout import table_key

CALIBRATION_KEY = table_key("model_calibration")
CALIBRATION_WINDOW_DAYS = 365


def _read(lake: Lake, table: str, sport: str, days: list[dt.date], schema: dict) -> pl.DataFrame:
    return lake.read_table(table, sport, days[0], days[-1] + dt.timedelta(days=1), schema)


@dg.asset(
    deps=["analyses", "games", "lines"],
    group_name="performance",
    kinds={"polars", "parquet"},
    description="Every analysis of a completed game graded at its own line and price (won / lost / "
    "push, profit of one unit, closing line value). Non-qualifying analyses are kept and flagged.",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def settled_picks(
    context: dg.AssetExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    _, _, days = partition_days(context)
    frames, written = [], {}
    for sport in config.sports:
        out = clustered(
            settle(
                _read(lake, "analyses", sport, days, ANALYSES),
                _read(lake, "games", sport, days, GAMES),
                _read(lake, "lines", sport, days, LINES),
            )
        )
        written.update(lake.write_daily(out, lambda d, s=sport: table_key("settled_picks", s, d), days))
        frames.append(out)
    out = pl.concat(frames)
    graded = out.filter(pl.col("qualifies") & pl.col("result").is_in(["won", "lost"]))
    return dg.MaterializeResult(
        metadata={
            **table_metadata(out, days, written),
            "qualifying_graded": graded.height,
            "qualifying_won": graded.filter(pl.col("result") == "won").height,
        }
    )


@dg.asset(
    deps=["settled_picks"],
    group_name="performance",
    kinds={"polars", "parquet"},
    description="Per model version and day: total and correct predictions, accuracy, average "
    "confidence, ROI, Brier score, pushes, units, log loss, closing line value, and rolling 30-day "
    "figures with the performance score (edge lower bound: Wilson lower bound of accuracy minus "
    "the mean break-even probability) the leaderboard ranks by.",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def model_performance(
    context: dg.AssetExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    _, _, days = partition_days(context)
    frames, written = [], {}
    for sport in config.sports:
        settled = _read(lake, "settled_picks", sport, days, SETTLED_PICKS)
        history = lake.read_table(
            "model_performance", sport, days[0] - dt.timedelta(days=ROLLING_DAYS), days[0], MODEL_PERFORMANCE
        )
        for day in days:
            out = daily_performance(settled, day, history)
            written.update(
                lake.write_daily(
                    out, lambda d, s=sport: table_key("model_performance", s, d), [day], date_col="date"
                )
            )
            history = pl.concat([history.filter(pl.col("date") > day - dt.timedelta(days=ROLLING_DAYS)), out])
            frames.append(out)
    out = pl.concat(frames) if frames else pl.DataFrame(schema=MODEL_PERFORMANCE)
    latest = out.filter(pl.col("date") == out["date"].max()) if out.height else out
    return dg.MaterializeResult(
        metadata={
            **table_metadata(out, days, written),
            "model_versions": out.select("model_id", "version").n_unique() if out.height else 0,
            "latest_day": dg.MetadataValue.md(
                markdown_table(
                    latest.sort("performance_score", descending=True, nulls_last=True).select(
                        "model_id",
                        "version",
                        "rolling_graded",
                        "rolling_accuracy",
                        "rolling_roi",
                        "performance_score",
                    ),
                    rows=10,
                )
            ),
        }
    )


@dg.asset(
    deps=["settled_picks"],
    group_name="performance",
    kinds={"polars", "parquet"},
    description="Reliability table per model version: confidence bins against the observed win rate "
    "of qualifying picks settled over the last year (plot in the metadata).",
)
def model_calibration(config: SportsConfig, lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    today = dt.datetime.now(dt.UTC).date()
    since = today - dt.timedelta(days=CALIBRATION_WINDOW_DAYS)
    settled = pl.concat(
        [
            lake.read_table("settled_picks", s, since, today + dt.timedelta(days=1), SETTLED_PICKS)
            for s in config.sports
        ]
    )
    table = calibration(settled)
    lake.write_parquet(CALIBRATION_KEY, table)
    busiest = table.group_by("model_id", "version").agg(pl.col("n").sum()).sort("n", descending=True).head(1)
    plot = "_no settled picks yet_"
    if busiest.height:
        model_id, version = busiest.row(0)[:2]
        mine = table.filter((pl.col("model_id") == model_id) & (pl.col("version") == version))
        plot = f"**{model_id} v{version}**\n\n" + calibration_plot_markdown(mine)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": table.height, "calibration (busiest model)": dg.MetadataValue.md(plot)}
    )


performance_assets = [settled_picks, model_performance, model_calibration]
