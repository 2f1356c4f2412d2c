"""One model's rows of the lake's daily tables (analyses, settled picks, performance), for the API.

These tables hold every model of a sport in one object per day, far too big for the serving
snapshot at 100,000 models; a request reads only the days it needs, filtered to the model while the
Parquet is scanned.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from resources.lake import Lake


def _day_of(key: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(key.rsplit("/", 1)[-1].removesuffix(".parquet"))
    except ValueError:
        return None


def latest_day(lake: Lake, table: str, sport: str, on_or_before: dt.date) -> dt.date | None:
    """The newest partition of ``table`` for ``sport`` on or before a day; None if there is none."""
    days = [d for k in lake.list_keys(f"tables/{table}/{sport}/") if (d := _day_of(k)) and d <= on_or_before]
    return max(days, default=None)


def model_rows(
    lake: Lake,
    table: str,
    sport: str,
    model_id: str,
    first: dt.date,
    last: dt.date,
    schema: dict[str, pl.DataType],
) -> pl.DataFrame:
    """The model's rows of a daily table for the days ``first..last`` (inclusive)."""
    keys = lake.partition_keys(f"tables/{table}/{sport}/", first, last + dt.timedelta(days=1))
    if not keys:
        return pl.DataFrame(schema=schema)
    scan = pl.scan_parquet(
        [lake.uri(k) for k in keys],
        storage_options=lake.polars_storage_options(),
        missing_columns="insert",
        extra_columns="ignore",
    )
    return scan.filter(pl.col("model_id") == model_id).collect().select(list(schema)).cast(schema)
