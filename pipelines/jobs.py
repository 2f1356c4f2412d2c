"""Jobs and schedules of the ingest stage."""

import datetime as dt
from typing import Any

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.common import daily_partitions
from assets.ingest import TIDY_BUILDERS
from domain.sports import SPORTS, Sport
from pipelines.automation import freshness_checks, odds_api_quota

SENSOR_ONLY_CHECKS = dg.AssetSelection.checks(*freshness_checks)
"""Freshness checks run on the freshness sensor's ticks, never inside the jobs that materialise the
assets (they take no run config, and a check right after the materialisation tells nothing)."""

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("ingest", "tables") - SENSOR_ONLY_CHECKS,
    partitions_def=daily_partitions,
    description="Fetch odds and stats for game dates and rebuild the tidy tables.",
)

tables_job = dg.define_asset_job(
    "tables_job",
    selection=dg.AssetSelection.groups("tables") - SENSOR_ONLY_CHECKS,
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
    selection=dg.AssetSelection.assets("settled_picks", "model_performance") - SENSOR_ONLY_CHECKS,
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


INGEST_OPS = ("raw_feeds", *TIDY_BUILDERS, odds_api_quota.node_def.name)
"""Every op of ``ingest_job`` (the quota check included): each takes the ``sports`` of its run config."""


def sports_run_config(sports: list[str], ops: tuple[str, ...] = INGEST_OPS) -> dict[str, Any]:
    """Run config restricting every op of a job to ``sports``."""
    return {"ops": {op: {"config": {"sports": sports}} for op in ops}}


def days_since_previous_run(weekdays: tuple[int, ...], today: dt.date) -> int:
    """Days back to the previous scheduled weekday before ``today`` (1 for a daily schedule)."""
    cron_day = today.isoweekday() % 7
    return min((cron_day - d - 1) % 7 + 1 for d in weekdays)


def _ingest_schedule(sport: Sport) -> dg.ScheduleDefinition:
    """The sport's ingest cadence as a schedule. Each run covers the game dates since the previous
    scheduled day, up to today: final scores of the games played in between and today's odds."""
    hour, weekdays = sport.ingest.hour, sport.ingest.weekdays
    days = ",".join(str(d) for d in weekdays) if len(weekdays) < 7 else "*"

    @dg.schedule(
        job=ingest_job,
        cron_schedule=f"0 {hour} * * {days}",
        execution_timezone="UTC",
        name=f"{sport.prefix}_ingest_schedule",
        description=f"{sport.title} at {hour:02d}:00 UTC: final scores since the "
        "previous run and today's odds, in one run.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.date()
        first = today - dt.timedelta(days=days_since_previous_run(weekdays, today))
        return dg.RunRequest(
            run_key=f"ingest:{sport.key}:{first}:{today}",
            run_config=sports_run_config([sport.key]),
            tags=range_tags(first, today) | {"oddsforge/sport": sport.key},
        )

    return _schedule


ingest_schedules = [_ingest_schedule(sport) for sport in SPORTS.values()]


ledger_job = dg.define_asset_job(
    "ledger_job",
    selection=dg.AssetSelection.assets("ledger", "creator_balances"),
    description="Post new verified Stripe events and payout transfers onto the ledger; creators' balances.",
)

payouts_job = dg.define_asset_job(
    "payouts_job",
    selection=dg.AssetSelection.assets("payouts"),
    description="Pay the creators of a month (partition YYYY-MM) whose balance reaches $50.",
)

audit_job = dg.define_asset_job(
    "audit_job",
    selection=dg.AssetSelection.assets("audit"),
    description="Fold new audit records (operator and money actions) from the inbox into the audit table.",
)

commitments_job = dg.define_asset_job(
    "commitments_job",
    selection=dg.AssetSelection.assets("commitment_day_roots"),
    description="Publish the day roots of pick commitments whose day's last game has started.",
)

day_roots_schedule = dg.ScheduleDefinition(
    name="day_roots_schedule",
    job=commitments_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: publish each day root due (after the day's last game start).",
)

payouts_schedule = dg.build_schedule_from_partitioned_job(
    payouts_job,
    name="monthly_payouts_schedule",
    description="06:00 UTC on the 1st: the payouts of the month that just ended.",
    hour_of_day=6,
    day_of_month=1,
)
