"""The one Definitions object of the OddsForge code location (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets.analyses import analysis_assets
from assets.ingest import ingest_assets
from assets.models import model_assets, model_sensors
from assets.serving import serving_snapshot
from pipelines.jobs import (
    analyses_job,
    daily_ingest_schedule,
    ingest_job,
    models_job,
    serving_job,
    tables_job,
)
from resources.settings import build_resources

defs = dg.Definitions(
    assets=[*ingest_assets, *model_assets, *analysis_assets, serving_snapshot],
    jobs=[ingest_job, tables_job, models_job, analyses_job, serving_job],
    schedules=[daily_ingest_schedule],
    sensors=model_sensors,
    resources=build_resources(),
)
