"""The one Definitions object: every asset described, grouped and typed; the schedule's runs."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipelines.definitions import defs
from pipelines.jobs import INGEST_OPS, ingest_schedules


def test_every_asset_has_description_group_and_kinds() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key} has no description"
        assert node.group_name and node.group_name != "default", f"{key} has no group"
        assert node.kinds, f"{key} has no kinds"


def test_nba_schedule_ingests_yesterday_and_today_in_one_run_for_nba_only() -> None:
    (nba,) = [s for s in ingest_schedules if s.name == "nba_ingest_schedule"]
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 10, 11, tzinfo=dt.UTC))
    (request,) = nba.evaluate_tick(ctx).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-01-09"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-01-10"
    assert request.run_key == "ingest:basketball_nba:2026-01-09:2026-01-10"
    assert request.run_config["ops"] == {op: {"config": {"sports": ["basketball_nba"]}} for op in INGEST_OPS}


STARTS_RUNNING = {
    # The API's write path: a model version, a dataset, a payment, a subscription, a review or an
    # audit record reaches the tables only through these, so nothing the API accepts waits for an operator.
    "model_inbox_sensor": True,
    "dataset_inbox_sensor": True,
    "stripe_inbox_sensor": True,
    "subscriptions_inbox_sensor": True,
    "review_inbox_sensor": True,
    "ratings_inbox_sensor": True,
    "audit_inbox_sensor": True,
    "follows_inbox_sensor": True,
    # Delivers notifications (and their retries) to users' webhooks and email.
    "notification_delivery_sensor": True,
    # Alerting and the automation from new analyses to the leaderboard.
    "alert_on_run_failure": True,
    "results_to_leaderboard": True,
    # Removes what crashed writers leave (temporary files, partial builds, expired idempotency keys).
    "housekeeping_schedule": True,
    # Publishes the day roots of pick commitments once a day's last game has started (SPEC 9).
    "day_roots_schedule": True,
    # Compacts closed months of the lake and rebuilds the analyst database.
    "lake_upkeep_schedule": True,
    # A demo or test lake is never fresh: turned on in production.
    "freshness_checks_sensor": False,
    # They spend The Odds API's quota, score the slates the ingest brings, or move money.
    "nba_ingest_schedule": False,
    "nfl_ingest_schedule": False,
    "popular_models_schedule": False,
    "daily_record_schedule": False,
    "monthly_payouts_schedule": False,
}
"""Every sensor and schedule, and whether it runs on a fresh instance (docs/operations.md)."""


def test_every_sensor_and_schedule_starts_as_listed() -> None:
    repository = defs.get_repository_def()
    automations = [*repository.sensor_defs, *repository.schedule_defs]
    assert {a.name: a.default_status.value == "RUNNING" for a in automations} == STARTS_RUNNING
