"""Housekeeping: what crashes leave behind, removed on a schedule.

A killed API leaves a half-received upload's temporary file in the inbox, a killed run a partition's,
a killed publication or dbt build a temporary DuckDB build, and idempotency keys expire after 24
hours. Readers never see any of it (temporary names start with a dot, ``stores.layout.temp_name``),
and nothing else removes it. The hourly ``housekeeping_schedule``, on by default, removes temporary
files untouched for ``stores.lake.STALE_TEMP_SECONDS`` (so never a live writer's), prunes the
serving snapshots, marts builds and analyst databases to the newest complete ones, and drops expired
idempotency keys; the run's metadata says what went and how many bytes it freed.

No ``from __future__ import annotations`` here: Dagster reads the op's annotations unevaluated.
"""

import datetime as dt

import dagster as dg

from stores.idempotency import IdempotencyStore
from stores.lake import Lake
from stores.warehouse import Warehouse


@dg.op(description="Remove stale temporary files and builds, old snapshots and expired idempotency keys.")
def sweep_residue(
    context: dg.OpExecutionContext, lake: dg.ResourceParam[Lake], warehouse: dg.ResourceParam[Warehouse]
) -> dg.Output[None]:
    now = dt.datetime.now(dt.UTC)
    temp = lake.sweep_temp_files(now.timestamp())
    builds = warehouse.sweep(now.timestamp())
    keys = IdempotencyStore(lake).prune(now)
    for name, size in [*temp, *((str(path), size) for path, size in builds)]:
        context.log.info("removed %s (%d bytes)", name, size)
    return dg.Output(
        None,
        metadata={
            "lake_temp_files": len(temp),
            "warehouse_files": len(builds),
            "bytes_freed": sum(size for _, size in temp) + sum(size for _, size in builds),
            "idempotency_keys_expired": keys,
        },
    )


@dg.job(description="Remove what crashed writers left behind (pipelines/housekeeping.py).")
def housekeeping_job() -> None:
    sweep_residue()


housekeeping_schedule = dg.ScheduleDefinition(
    name="housekeeping_schedule",
    job=housekeeping_job,
    cron_schedule="17 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: stale temporary files and builds, old snapshots, expired idempotency keys.",
)
