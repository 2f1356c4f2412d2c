"""Opening the analyst database for ``oddsforge sql`` when it is as current as the lake.

Kept apart from ``stores.warehouse`` (which imports every table's schema, over a second of start-up)
so that a query on a current analyst database costs little more than DuckDB's own start.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from stores.lake import Lake
from stores.layout import ANALYST_DATABASE, MARTS_DIR, MARTS_POINTER, TABLES

DEFAULT_DIR = "data/warehouse"
ANALYST_BUILD_TABLE = "analyst_build"
"""One row in each analyst database: the lake root its views read and when the lake was listed."""


def directory_from_env() -> str:
    """The warehouse folder in ``ODDSFORGE_WAREHOUSE_DIR`` (default ``./data/warehouse``)."""
    return os.environ.get("ODDSFORGE_WAREHOUSE_DIR", DEFAULT_DIR)


def open_current_analyst(lake: Lake, warehouse_dir: str) -> duckdb.DuckDBPyConnection | None:
    """A read-only connection to the warehouse's analyst database if its views cover ``lake`` as it
    is now: built over this lake, and no table folder nor the marts pointer changed since it listed
    them (a folder's time moves whenever an object is added, replaced or removed). None otherwise,
    and always for an S3 lake (no cheap way to tell)."""
    path = Path(warehouse_dir) / ANALYST_DATABASE
    if lake.is_s3 or not path.is_file():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
        root, listed_at = con.execute(f"SELECT lake_root, listed_at FROM {ANALYST_BUILD_TABLE}").fetchone()
    except (duckdb.Error, TypeError):
        return None
    if root != lake.uri("") or _changed_since(Path(lake.root) / TABLES, listed_at):
        con.close()
        return None
    pointer = Path(warehouse_dir) / MARTS_DIR / MARTS_POINTER
    if pointer.exists() and pointer.stat().st_mtime >= listed_at:
        con.close()
        return None
    return con


def _changed_since(folder: Path, since: float) -> bool:
    """Whether ``folder`` or a folder under it was modified at or after ``since`` (POSIX seconds)."""
    return any(os.stat(current).st_mtime >= since for current, _, _ in os.walk(folder))
