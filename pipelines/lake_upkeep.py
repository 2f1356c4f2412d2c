"""The lake's upkeep on a schedule: compact closed months daily, then rebuild the analyst database.

The analyst database also follows its upstream tables and marts (``eager``, pipelines/execution.py);
housekeeping (pipelines/housekeeping.py) prunes its old builds with the snapshots and marts.
"""

import dagster as dg

lake_upkeep_job = dg.define_asset_job(
    "lake_upkeep_job",
    selection=dg.AssetSelection.assets("lake_compaction", "analyst_database"),
    description="Compact closed months of the lake's daily tables, then rebuild the analyst database.",
)

lake_upkeep_schedule = dg.ScheduleDefinition(
    name="lake_upkeep_schedule",
    job=lake_upkeep_job,
    cron_schedule="41 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: compact the lake's closed months and rebuild the analyst database.",
)
