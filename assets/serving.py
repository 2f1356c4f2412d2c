"""The serving snapshot: an immutable DuckDB file per publication that the API reads."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from resources.lake import Lake
from resources.warehouse import Warehouse


@dg.asset(
    deps=["games", "lines"],
    group_name="serving",
    kinds={"duckdb"},
    description="A new read-only DuckDB snapshot of the tables the API serves, swapped in atomically.",
)
def serving_snapshot(lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    path, counts = warehouse.publish(lake, dt.datetime.now(dt.UTC))
    return dg.MaterializeResult(
        metadata={"snapshot": path.name, **{f"rows/{t}": n for t, n in counts.items()}}
    )
