"""Running jobs in-process for the CLI: the demo and history imports.

Runs go through the Dagster instance in ``DAGSTER_HOME`` so that the UI shows what the command did.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from domain.sample_league import SEASON_END, SEASON_START
from resources.lake import Lake, raw_key
from resources.warehouse import LAKE_TABLES, lake_connection

Progress = Callable[[str], None]
QUIET = {"console": {"config": {"log_level": "WARNING"}}}
"""Run config for in-process runs of the CLI: the instance keeps every event; the terminal stays readable."""


def execute_range(
    job_name: str,
    start: dt.date,
    last: dt.date,
    sports: list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise ``job_name`` for game dates ``start..last`` (inclusive) in one run."""
    from pipelines.definitions import defs

    job = defs.resolve_job_def(job_name)
    run_config: dict[str, Any] = {"loggers": QUIET}
    if sports is not None:
        ops = {node.name for node in job.graph.node_defs}
        run_config["ops"] = {op: {"config": {"sports": sports}} for op in sorted(ops)}
    result = job.execute_in_process(
        instance=instance or dg.DagsterInstance.get(),
        run_config=run_config,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        raise_on_error=True,
    )
    return result


def _timed(stages: list[dict[str, Any]], name: str, progress: Progress, fn: Callable[[], Any]) -> Any:
    progress(f"{name} ...")
    started = time.monotonic()
    out = fn()
    seconds = time.monotonic() - started
    stages.append({"name": name, "seconds": round(seconds, 2)})
    progress(f"{name} done in {seconds:.1f} s")
    return out


def table_counts(lake: Lake) -> dict[str, int]:
    with lake_connection(lake) as con:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in LAKE_TABLES}


def run_demo(progress: Progress) -> dict[str, Any]:
    """The main job on the embedded default: a season of the sample league, ingested and served."""
    from pipelines.definitions import defs

    stages: list[dict[str, Any]] = []
    last = SEASON_END
    _timed(
        stages,
        f"ingest sample league {SEASON_START}..{last}",
        progress,
        lambda: execute_range("ingest_job", SEASON_START, last, sports=["basketball_nba"]),
    )
    _timed(
        stages,
        "publish serving snapshot",
        progress,
        lambda: defs.resolve_job_def("serving_job").execute_in_process(
            instance=dg.DagsterInstance.get(), run_config={"loggers": QUIET}
        ),
    )
    lake: Lake = defs.resources["lake"]
    warehouse = defs.resources["warehouse"]
    return {
        "stages": stages,
        "tables": table_counts(lake),
        "lake": lake.uri(""),
        "snapshot": str(warehouse.current()),
    }


def import_history(fmt: str, files: list[Path], progress: Progress) -> dict[str, Any]:
    """Parse history files, land them as raw partitions and rebuild the tidy tables they touch.

    Every file is parsed before anything is written, so a bad file leaves the lake untouched.
    """
    from resources.history_files import read_history

    progress(f"reading {len(files)} file(s) as {fmt}")
    batch = read_history(fmt, files)
    lake = Lake.from_env()
    dates: set[dt.date] = set()
    for table, df in batch.frames.items():
        if df.is_empty():
            continue
        days = sorted(df.get_column("game_date").unique().to_list())
        dates.update(days)
        progress(f"writing {df.height:,} {table} rows over {len(days):,} game dates")
        lake.write_daily(df, lambda d, t=table: raw_key(t, batch.sport, d, fmt), days)
    report: dict[str, Any] = {
        "format": fmt,
        "sport": batch.sport,
        "files": [str(f) for f in files],
        **batch.counts,
        "days": len(dates),
    }
    if dates:
        first, last = min(dates), max(dates)
        progress(f"rebuilding tidy tables {first}..{last}")
        execute_range("tables_job", first, last, sports=[batch.sport])
        report.update(first_date=first.isoformat(), last_date=last.isoformat())
    return report
