"""The serving snapshot: an immutable DuckDB file per publication that the API reads."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from stores.lake import Lake
from stores.warehouse import DAILY_SERVED_ASSETS, MART_TABLES, Warehouse


@dg.asset(
    deps=[
        "games",
        "lines",
        "model_versions",
        "model_calibration",
        "model_status",
        "subscriptions",
        *DAILY_SERVED_ASSETS,  # listed in the snapshot's manifest, read by the API from the lake
        *[dg.AssetKey(["marts", t]) for t in MART_TABLES],
    ],
    group_name="serving",
    kinds={"duckdb"},
    description="A new read-only DuckDB snapshot of the tables the API serves, swapped in atomically, "
    "with the manifest of the daily tables it reads from the lake.",
)
def serving_snapshot(
    lake: dg.ResourceParam[Lake], warehouse: dg.ResourceParam[Warehouse]
) -> dg.MaterializeResult:
    path, counts = warehouse.publish(lake, dt.datetime.now(dt.UTC))
    return dg.MaterializeResult(
        metadata={"snapshot": path.name, **{f"rows/{t}": n for t, n in counts.items()}}
    )
