"""Hybrid execution and the automation from new analyses to the leaderboard (SPEC 6, seed "Hybrid").

- *Scheduled*: at 15:00 UTC (morning in the US, after the 11:00 ingest, before any tip-off) shared
  models with more than 10 subscribers are analysed for today's slate, as of that time.
- *On demand*: every other model runs when a reader asks (``POST /models/{id}/analyze``).
- *The record*: at 13:00 UTC every active model without analyses on one of the last three game dates
  is scored for them at each game's start (the backtest cut-off; nothing after it is used), so every
  model has a settled track record whatever way it was run; the popular models keep the picks their
  subscribers saw.
- *Automation*: declarative conditions carry new analyses to settlement, daily performance, listing
  status, calibration, the dbt marts and a new serving snapshot, without a person clicking.
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from assets.common import daily_partitions
from assets.marketplace import MODEL_STATUS_KEY, SUBSCRIPTIONS_KEY, read_table
from domain.marketplace.listing import MODEL_STATUS, POPULAR_ABOVE, popular_models
from domain.money.subscriptions import SUBSCRIPTIONS
from pipelines.jobs import range_tags
from stores.lake import Lake

POPULAR_CRON = "0 15 * * *"
RECORD_CRON = "0 13 * * *"
RECORD_DAYS = 3
"""Game dates the record run looks back over: NFL results arrive up to two days after the games."""
EXECUTION_TAG = "oddsforge/execution"

scheduled_analyses_job = dg.define_asset_job(
    "scheduled_analyses_job",
    selection=dg.AssetSelection.assets("analyses"),
    partitions_def=daily_partitions,
    description="Analyses of some models or of the missing ones, kept alongside every other model's "
    "analyses of the same days (the schedules' run config says which).",
)


@dg.schedule(
    job=scheduled_analyses_job,
    cron_schedule=POPULAR_CRON,
    execution_timezone="UTC",
    name="popular_models_schedule",
    description=f"15:00 UTC: today's analyses of the listed models with more than {POPULAR_ABOVE} "
    "subscribers (the rest run on demand).",
)
def popular_models_schedule(
    context: dg.ScheduleEvaluationContext, lake: dg.ResourceParam[Lake]
) -> dg.RunRequest | dg.SkipReason:
    ids = popular_models(
        read_table(lake, SUBSCRIPTIONS_KEY, SUBSCRIPTIONS),
        read_table(lake, MODEL_STATUS_KEY, MODEL_STATUS),
        context.scheduled_execution_time,
    )
    today = context.scheduled_execution_time.date()
    if not ids:
        return dg.SkipReason(f"no listed model has more than {POPULAR_ABOVE} subscribers")
    return dg.RunRequest(
        run_key=f"popular:{today}",
        partition_key=today.isoformat(),
        run_config={"ops": {"analyses": {"config": {"model_ids": ids}}}},
        tags={EXECUTION_TAG: "scheduled", "oddsforge/popular_models": str(len(ids))},
    )


@dg.schedule(
    job=scheduled_analyses_job,
    cron_schedule=RECORD_CRON,
    execution_timezone="UTC",
    name="daily_record_schedule",
    description=f"13:00 UTC: the last {RECORD_DAYS} game dates' analyses of every active model that has "
    "none yet, at each game's start, so settlement and performance cover every model.",
)
def daily_record_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    today = context.scheduled_execution_time.date()
    first, last = today - dt.timedelta(days=RECORD_DAYS), today - dt.timedelta(days=1)
    return dg.RunRequest(
        run_key=f"record:{first}:{last}",
        run_config={"ops": {"analyses": {"config": {"missing_only": True}}}},
        tags=range_tags(first, last) | {EXECUTION_TAG: "record"},
    )


def recent_partitions() -> dg.AutomationCondition:
    """``eager`` over the daily partitions the record run and the ingest touch (``eager`` alone
    updates only the newest partition, today's, while yesterday's games are the ones that settle)."""
    lookback = dt.timedelta(days=RECORD_DAYS + 1)
    return (
        dg.AutomationCondition.eager()
        .replace("in_latest_time_window", dg.AutomationCondition.in_latest_time_window(lookback))
        .with_label(f"eager (last {RECORD_DAYS + 1} days)")
    )


def after_updates() -> dg.AutomationCondition:
    """``eager`` for whole tables built from daily partitions: any new partition upstream triggers a
    run, and old days without data (most days have no games) do not hold it back."""
    return (
        dg.AutomationCondition.eager()
        .without(~dg.AutomationCondition.any_deps_missing())
        .with_label("eager (any upstream update)")
    )


def condition_for(key: dg.AssetKey) -> dg.AutomationCondition | None:
    """The automation condition of an asset, or None for assets run by schedules and sensors."""
    name = key.to_user_string()
    if name in ("settled_picks", "model_performance", "pick_digests"):
        return recent_partitions()
    if name == "model_status":
        # Subscriber changes need no re-evaluation; the inbox sensor updates the table they feed.
        return after_updates().ignore(dg.AssetSelection.assets("subscriptions"))
    if name == "fair_cancellations":
        # A status change ends subscriptions; a payment booked late for one already ended is refunded.
        return after_updates().ignore(dg.AssetSelection.assets("subscriptions"))
    if name in ("model_calibration", "serving_snapshot", "analyst_database") or name.startswith("marts/"):
        return after_updates()
    return None


def automate(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """``assets`` with the conditions of :func:`condition_for` (kept here, with the schedules, so the
    asset modules stay free of orchestration)."""

    def with_condition(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = condition_for(spec.key)
        return spec if condition is None else spec.replace_attributes(automation_condition=condition)

    return [a.map_asset_specs(with_condition) if any(condition_for(k) for k in a.keys) else a for a in assets]


automation_sensor = dg.AutomationConditionSensorDefinition(
    "results_to_leaderboard",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Evaluates the automation conditions: new analyses flow to settled picks, daily "
    "performance, listing status, calibration, the marts and a new serving snapshot.",
)

execution_jobs = [scheduled_analyses_job]
execution_schedules = [popular_models_schedule, daily_record_schedule]
execution_sensors = [automation_sensor]
