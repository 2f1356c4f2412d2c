"""Helpers every asset module shares: partition windows and metadata a person wants to see."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from domain.sports import SPORTS

START_DATE = "2007-10-01"
"""First game date of the oldest history file (NBA 2007-08); partitions begin here."""

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
"""Game-date partitions (US local dates). ``end_offset=1`` makes today's slate a partition."""


class SportsConfig(dg.Config):
    sports: list[str] = Field(default_factory=lambda: list(SPORTS))
    """Sport keys to process; every supported sport by default."""


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date, list[dt.date]]:
    """``[start, end)`` and the list of game dates a (possibly multi-day) run covers."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return start, end, [start + dt.timedelta(days=i) for i in range((end - start).days)]


def markdown_table(df: pl.DataFrame, rows: int = 5) -> str:
    """A small markdown preview of ``df`` for asset metadata."""
    head = df.head(rows)
    if head.is_empty():
        return "_no rows_"
    cells = [
        [("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row]
        for row in head.iter_rows()
    ]
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def table_metadata(df: pl.DataFrame, days: list[dt.date], written: dict[dt.date, int]) -> dict:
    """Row count, partitions touched and a preview: what an operator checks first."""
    return {
        "dagster/row_count": df.height,
        "days": len(days),
        "days_with_rows": sum(1 for n in written.values() if n),
        "preview": dg.MetadataValue.md(markdown_table(df)),
    }
