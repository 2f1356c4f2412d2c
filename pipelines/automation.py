"""Automation an operator relies on: freshness, the Odds API quota check and alerting sensors.

- Freshness of ingest: today's partition of the ingest assets must exist by 12:00 UTC, an hour after
  the NBA ingest schedule. Dagster's newer ``FreshnessPolicy`` looks at an asset's last update, not
  at partitions (a backfill of 2019 would count as fresh), so these stay time-partition freshness
  checks, evaluated by a sensor every 10 minutes (turn it on in production; a demo lake is never
  fresh).
- Freshness of performance: ``model_performance`` must have been updated within 26 hours: a
  ``FreshnessPolicy`` on the asset, evaluated by the daemon (``with_freshness_policies``).
- Quota: The Odds API reports the requests left on every response; ``raw_feeds`` stores them as
  ``{sport}/requests_remaining``. A check after each ingest warns below ``ODDSFORGE_QUOTA_MIN``.
- Failures: a run-failure sensor records every failed run as an alert and posts it to the webhook.

No ``from __future__ import annotations`` here: Dagster reads the ``config`` annotation unevaluated.
"""

import datetime as dt
import os
import warnings
from functools import partial

import dagster as dg

from assets.common import SportsConfig, daily_partitions
from stores.alerts import Alert, raise_alert
from stores.lake import Lake

QUOTA_ENV = "ODDSFORGE_QUOTA_MIN"
DEFAULT_QUOTA_MIN = 500
"""Requests left below which the quota check fails (a day of one sport costs ~10-40 requests)."""

INGEST_DEADLINE_CRON = "0 12 * * *"
PERFORMANCE_POLICY = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)
)
FRESH_DAILY_ASSETS = ["model_performance"]
MAX_CAUSE_CHARS = 500

with warnings.catch_warnings():
    # Superseded by FreshnessPolicy for assets, which has no partition-aware form (see above).
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    freshness_checks = dg.build_time_partition_freshness_checks(
        assets=["raw_odds_snapshots", "raw_game_results", "games", "lines"],
        deadline_cron=INGEST_DEADLINE_CRON,
        severity=dg.AssetCheckSeverity.WARN,
    )
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks, minimum_interval_seconds=600, name="freshness_checks_sensor"
    )


def with_freshness_policies(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with the daily freshness policy on the assets the leaderboard depends on."""
    return defs.map_resolved_asset_specs(
        func=partial(dg.apply_freshness_policy, policy=PERFORMANCE_POLICY), selection=FRESH_DAILY_ASSETS
    )


def quota_minimum() -> int:
    """The quota threshold from ``ODDSFORGE_QUOTA_MIN`` (read when the check runs)."""
    return int(os.environ.get(QUOTA_ENV, DEFAULT_QUOTA_MIN))


def remaining_by_sport(metadata: dict[str, object], sports: list[str]) -> dict[str, int]:
    """``{sport: requests left}`` from ``raw_feeds``'s metadata (sports whose feed reported a quota)."""
    out = {}
    for sport in sports:
        value = metadata.get(f"{sport}/requests_remaining")
        if value is not None:
            out[sport] = int(getattr(value, "value", value))
    return out


@dg.asset_check(
    asset="raw_odds_snapshots",
    name="odds_api_quota",
    partitions_def=daily_partitions,
    description="The Odds API requests left after the latest ingest stay above ODDSFORGE_QUOTA_MIN "
    "(default 500); below it the check warns and an alert is raised.",
)
def odds_api_quota(
    context: dg.AssetCheckExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]
) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("raw_odds_snapshots"))
    metadata = dict(event.asset_materialization.metadata) if event and event.asset_materialization else {}
    remaining = remaining_by_sport(metadata, config.sports)
    minimum = quota_minimum()
    low = {sport: n for sport, n in remaining.items() if n < minimum}
    if low:
        summary = ", ".join(f"{sport} {n:,}" for sport, n in sorted(low.items()))
        raise_alert(
            lake,
            Alert(
                alert_id=f"quota-{context.run.run_id}",
                kind="odds_api_quota",
                summary=f"The Odds API quota is low: {summary} requests left (minimum {minimum:,})",
                raised_at=dt.datetime.now(dt.UTC),
                details={"remaining": remaining, "minimum": minimum, "run_id": context.run.run_id},
            ),
        )
    return dg.AssetCheckResult(
        passed=not low,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "minimum": minimum,
            **{f"{sport}/requests_remaining": n for sport, n in remaining.items()},
            "quota_reported": bool(remaining),
        },
    )


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run as an alert in the lake (tables/alerts/{run_id}.json) and "
    "posts it to ODDSFORGE_ALERT_WEBHOOK when set.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, lake: dg.ResourceParam[Lake]) -> None:
    run = context.dagster_run
    errors = {
        e.step_key: e.step_failure_data.error.message.strip() if e.step_failure_data.error else "no message"
        for e in context.get_step_failure_events()
        if e.step_key
    }
    tags = run.tags
    partition = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else None
    )
    cause = next(iter(errors.values()), None) or context.failure_event.message or "no message"
    where = (f" for {partition}" if partition else "") + (
        f" in {', '.join(sorted(errors))}" if errors else ""
    )
    raise_alert(
        lake,
        Alert(
            alert_id=run.run_id,
            kind="run_failure",
            summary=f"{run.job_name} failed{where}: {cause[:MAX_CAUSE_CHARS]}",
            raised_at=dt.datetime.now(dt.UTC),
            details={
                "run_id": run.run_id,
                "job": run.job_name,
                "partition": partition,
                "failed_steps": sorted(errors),
                "errors": errors,
                "tags": dict(tags),
            },
        ),
    )


asset_checks = [odds_api_quota, *freshness_checks]
sensors = [freshness_sensor, alert_on_run_failure]
