"""Jobs and schedules of the ingest stage."""

import datetime as dt

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets._common import daily_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest", "tables"),
    partitions_def=daily_partitions,
    description="Fetch odds and stats for game dates and rebuild the tidy tables.",
)

tables_job = dg.define_asset_job(
    "tables_job",
    selection=dg.AssetSelection.groups("tables"),
    partitions_def=daily_partitions,
    description="Rebuild the tidy tables from what is already in raw (after a history import).",
)

models_job = dg.define_asset_job(
    "models_job",
    selection=dg.AssetSelection.assets("model_versions"),
    description="Rebuild the model_versions table from the registry's inbox.",
)

analyses_job = dg.define_asset_job(
    "analyses_job",
    selection=dg.AssetSelection.groups("features", "analyses"),
    partitions_def=daily_partitions,
    description="Score every due model version against the slates of the given game dates.",
)

performance_job = dg.define_asset_job(
    "performance_job",
    selection=dg.AssetSelection.assets("settled_picks", "model_performance"),
    partitions_def=daily_partitions,
    description="Settle the analyses of the given game dates and compute daily and rolling performance.",
)

marts_job = dg.define_asset_job(
    "marts_job",
    selection=dg.AssetSelection.assets("model_calibration") | dg.AssetSelection.groups("marketplace"),
    description="Calibration tables and the dbt marts (leaderboard, creator summaries, subscribers).",
)

serving_job = dg.define_asset_job(
    "serving_job",
    selection=dg.AssetSelection.groups("serving"),
    description="Publish a new serving snapshot for the API.",
)


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make one run cover the game dates ``first..last`` (single-run backfill policy)."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


@dg.schedule(
    job=ingest_job,
    cron_schedule="0 11 * * *",
    execution_timezone="UTC",
    name="daily_ingest_schedule",
    description="11:00 UTC, before any US slate: yesterday's final scores and today's odds, in one run.",
)
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    today = context.scheduled_execution_time.date()
    yesterday = today - dt.timedelta(days=1)
    return dg.RunRequest(run_key=f"ingest:{yesterday}:{today}", tags=range_tags(yesterday, today))
