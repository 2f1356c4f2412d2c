"""The one Definitions object of the OddsForge code location (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets.analyses import analysis_assets
from assets.cancellations import cancellation_assets
from assets.compliance import compliance_assets
from assets.datasets import dataset_assets, dataset_checks
from assets.features import feature_assets
from assets.ingest import ingest_assets
from assets.lake import lake_assets
from assets.marketplace import marketplace_assets
from assets.marts import dbt_resource, mart_assets
from assets.models import model_assets
from assets.notify import notify_assets
from assets.payments import payment_assets
from assets.performance import performance_assets
from assets.serving import serving_snapshot
from pipelines.automation import asset_checks, sensors, with_freshness_policies
from pipelines.deliveries import notification_delivery_sensor
from pipelines.execution import automate, execution_jobs, execution_schedules, execution_sensors
from pipelines.housekeeping import housekeeping_job, housekeeping_schedule
from pipelines.jobs import (
    analyses_job,
    audit_job,
    commitments_job,
    day_roots_schedule,
    ingest_job,
    ingest_schedules,
    ledger_job,
    marts_job,
    models_job,
    payouts_job,
    payouts_schedule,
    performance_job,
    serving_job,
    tables_job,
)
from pipelines.lake_upkeep import lake_upkeep_job, lake_upkeep_schedule
from pipelines.sensors import inbox_sensors
from resources.settings import build_resources, executor_from_env, loggers_from_env

defs = with_freshness_policies(
    dg.Definitions(
        assets=automate(
            [
                *ingest_assets,
                *model_assets,
                *dataset_assets,
                *feature_assets,
                *analysis_assets,
                *performance_assets,
                *payment_assets,
                *marketplace_assets,
                *cancellation_assets,
                *mart_assets,
                serving_snapshot,
                *compliance_assets,
                *notify_assets,
                *lake_assets,
            ]
        ),
        jobs=[
            ingest_job,
            tables_job,
            models_job,
            analyses_job,
            performance_job,
            marts_job,
            serving_job,
            ledger_job,
            payouts_job,
            housekeeping_job,
            audit_job,
            commitments_job,
            lake_upkeep_job,
            *execution_jobs,
        ],
        schedules=[
            *ingest_schedules,
            payouts_schedule,
            housekeeping_schedule,
            day_roots_schedule,
            lake_upkeep_schedule,
            *execution_schedules,
        ],
        asset_checks=[*dataset_checks, *asset_checks],
        sensors=[
            *inbox_sensors,
            notification_delivery_sensor,
            *sensors,
            *execution_sensors,
        ],
        resources={**build_resources(), "dbt": dbt_resource()},
        executor=executor_from_env(),
        loggers=loggers_from_env(),
    )
)
