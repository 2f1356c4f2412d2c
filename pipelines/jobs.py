"""Jobs and schedules of the ingest stage."""

from __future__ import annotations

import dagster as dg

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

serving_job = dg.define_asset_job(
    "serving_job",
    selection=dg.AssetSelection.groups("serving"),
    description="Publish a new serving snapshot for the API.",
)

daily_ingest_schedule = dg.build_schedule_from_partitioned_job(
    ingest_job,
    hour_of_day=11,
    minute_of_hour=0,
    name="daily_ingest_schedule",
    description="Each morning (11:00 UTC, before any US slate) ingests the day's odds and results.",
)
