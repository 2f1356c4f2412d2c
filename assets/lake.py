"""The lake's upkeep for readers: closed months compacted into one object each, and the analyst
database (a view per lake table and the dbt marts in one DuckDB file that any client opens).

No ``from __future__ import annotations`` here: Dagster reads resource annotations unevaluated.
"""

import datetime as dt
import time

import dagster as dg

from assets.features import FEATURES
from assets.ingest import RAW_ASSETS, TIDY_BUILDERS
from domain.sports import SPORTS
from services.engine_tables import split_legacy_analyses
from stores.lake import Lake
from stores.layout import month_of, parse_period_key, raw_prefix, table_prefix
from stores.warehouse import DAILY_SERVED_ASSETS, EXPLANATION_TABLES, MART_TABLES, Warehouse

CLOSED_AFTER_DAYS = 7
"""A month is compacted once it ended this many days ago (late scores and corrections land first; a
later write into it is merged into its month object anyway)."""

COMPACTED_TABLES = [
    *TIDY_BUILDERS,
    *FEATURES,
    "analyses",
    *EXPLANATION_TABLES,
    "settled_picks",
    "model_performance",
]
"""Every daily table of the pipeline (one object per sport and day), compacted by month with every
raw table: a new daily table is compacted once its name is here (tests/test_compaction.py fails until
it is). The API's serving manifest names the month object for the days it holds, and a manifest
published before still reads them (``api/model_data.py``)."""


def compaction_prefixes(sports: list[str]) -> list[str]:
    """The folders whose closed months are compacted: raw and daily tables of each sport."""
    raw = [raw_prefix(table, sport) for table in RAW_ASSETS for sport in sports]
    return raw + [table_prefix(table, sport) for table in COMPACTED_TABLES for sport in sports]


def compact_closed_months(lake: Lake, today: dt.date, now: float) -> dict[str, int]:
    """Compact every month of :func:`compaction_prefixes` that ended :data:`CLOSED_AFTER_DAYS`
    before ``today``; the month objects written and the day objects removed."""
    last_open = month_of(today - dt.timedelta(days=CLOSED_AFTER_DAYS))
    written = removed = 0
    for prefix in compaction_prefixes(list(SPORTS)):
        months = {
            p.month_key
            for key in lake.list_keys(prefix)
            if (p := parse_period_key(key)) is not None and p.day is not None and p.month < last_open
        }
        for month_key in sorted(months):
            gone, rows = lake.compact_month(month_key, now)
            written += rows > 0
            removed += gone
    return {"months_written": written, "day_objects_removed": removed}


@dg.asset(
    group_name="lake",
    kinds={"parquet"},
    description="Closed months of the raw, tidy, feature, analyses and performance tables compacted "
    "into one object each (the day objects they replace are removed a run later); analyses stored "
    "with their sources as lists (before source_scores) are split into the three tables first.",
)
def lake_compaction(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    started = time.monotonic()
    split = split_legacy_analyses(lake)  # before compaction, which then finds them in their final shape
    counts = compact_closed_months(lake, dt.datetime.now(dt.UTC).date(), time.time())
    return dg.MaterializeResult(
        metadata={**counts, "legacy_analyses_split": split, "seconds": round(time.monotonic() - started, 2)}
    )


@dg.asset(
    deps=[
        "lake_compaction",
        *TIDY_BUILDERS,
        *FEATURES,
        *DAILY_SERVED_ASSETS,
        *[dg.AssetKey(["marts", t]) for t in MART_TABLES],
    ],
    group_name="lake",
    kinds={"duckdb"},
    description="The analyst database (warehouse/analyst.duckdb): a view per lake table and the dbt "
    "marts, a new file swapped in atomically; open it read-only from any DuckDB client.",
)
def analyst_database(
    lake: dg.ResourceParam[Lake], warehouse: dg.ResourceParam[Warehouse]
) -> dg.MaterializeResult:
    path, counts = warehouse.build_analyst(lake, dt.datetime.now(dt.UTC))
    return dg.MaterializeResult(metadata={"build": path.name, **{f"rows/{t}": n for t, n in counts.items()}})


lake_assets = [lake_compaction, analyst_database]
