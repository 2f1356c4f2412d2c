"""The one Definitions object of the OddsForge code location (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets.analyses import analysis_assets
from assets.datasets import dataset_assets, dataset_checks, dataset_sensors
from assets.features import feature_assets
from assets.ingest import ingest_assets
from assets.marts import dbt_resource, mart_assets
from assets.models import model_assets, model_sensors
from assets.performance import performance_assets
from assets.serving import serving_snapshot
from pipelines.jobs import (
    analyses_job,
    daily_ingest_schedule,
    ingest_job,
    marts_job,
    models_job,
    performance_job,
    serving_job,
    tables_job,
)
from resources.settings import build_resources

defs = dg.Definitions(
    assets=[
        *ingest_assets,
        *model_assets,
        *dataset_assets,
        *feature_assets,
        *analysis_assets,
        *performance_assets,
        *mart_assets,
        serving_snapshot,
    ],
    jobs=[ingest_job, tables_job, models_job, analyses_job, performance_job, marts_job, serving_job],
    schedules=[daily_ingest_schedule],
    asset_checks=dataset_checks,
    sensors=[*model_sensors, *dataset_sensors],
    resources={**build_resources(), "dbt": dbt_resource()},
)
