"""The analyst database and the lake's upkeep: a view per lake table and the marts in one DuckDB
file, rebuilt aside and swapped in while an analyst holds the previous one open; closed months
compacted by the scheduled asset."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl

from assets.lake import compact_closed_months
from stores.analyst import open_current_analyst
from stores.lake import SHADOW_GRACE_SECONDS, Lake
from stores.layout import month_table_key, table_key
from stores.warehouse import MART_TABLES, Warehouse

SPORT = "basketball_nba"
NOW = dt.datetime(2025, 3, 20, 12, tzinfo=dt.UTC)


def _games(days: list[dt.date]) -> pl.DataFrame:
    return pl.DataFrame(
        {"game_id": [f"g{d:%Y%m%d}" for d in days], "game_date": days, "sport": [SPORT] * len(days)}
    )


def _write_games(lake: Lake, days: list[dt.date]) -> None:
    lake.write_daily(_games(days), lambda d: table_key("games", SPORT, d), days)


def _marts(warehouse: Warehouse, leaders: int) -> None:
    """A marts build as dbt leaves one (each mart table; the leaderboard with ``leaders`` rows)."""
    with warehouse.marts.build(NOW, MART_TABLES) as build, duckdb.connect(str(build.file)) as con:
        for table in MART_TABLES:
            con.execute(f"CREATE TABLE {table} AS SELECT range AS n FROM range({leaders})")


def test_closed_months_are_compacted_and_their_days_removed_a_run_later(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    january = [dt.date(2025, 1, d) for d in (3, 9, 30)]
    march = [dt.date(2025, 3, d) for d in (2, 15)]  # still open on 2025-03-20
    _write_games(lake, january + march)
    rows = lake.read_table("games", SPORT, dt.date(2025, 1, 1), dt.date(2025, 4, 1), {})

    assert compact_closed_months(lake, NOW.date(), time.time()) == {
        "months_written": 1,
        "day_objects_removed": 0,
    }
    assert compact_closed_months(lake, NOW.date(), time.time() + SHADOW_GRACE_SECONDS + 1) == {
        "months_written": 0,
        "day_objects_removed": 3,
    }
    assert list(lake.list_keys("tables/games/")) == [
        month_table_key("games", SPORT, "2025-01"),
        *(table_key("games", SPORT, d) for d in march),
    ]
    assert lake.read_table("games", SPORT, dt.date(2025, 1, 1), dt.date(2025, 4, 1), {}).equals(rows)


HOLD = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    before = con.sql("SELECT count(*) FROM games").fetchone()[0]
    print(before, flush=True)
    sys.stdin.readline()  # held open, read-only, while the pipeline rebuilds
    games = con.sql("SELECT count(*) FROM games").fetchone()[0]
    print(games, con.sql("SELECT count(*) FROM marts.leaderboard").fetchone()[0], flush=True)
    """
)


def test_an_analyst_holding_the_database_never_blocks_a_rebuild(tmp_path: Path) -> None:
    lake, warehouse = Lake(root=str(tmp_path / "lake")), Warehouse(str(tmp_path / "warehouse"))
    _write_games(lake, [dt.date(2025, 1, 3), dt.date(2025, 1, 9)])
    _marts(warehouse, 2)
    first, counts = warehouse.build_analyst(lake, NOW)
    assert counts["marts.leaderboard"] == 2 and warehouse.analyst_path.samefile(first)

    held = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse.analyst_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.stdout.readline().strip() == "2"
        _write_games(lake, [dt.date(2025, 1, 3), dt.date(2025, 1, 9), dt.date(2025, 2, 1)])
        _marts(warehouse, 5)
        second, _ = warehouse.build_analyst(lake, NOW + dt.timedelta(minutes=1))
        out, _ = held.communicate("\n", timeout=60)
    finally:
        held.kill()
    assert out.split() == ["2", "2"]  # the held connection keeps reading the build it opened
    assert second != first and warehouse.analyst_path.samefile(second)
    with duckdb.connect(str(warehouse.analyst_path), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM games").fetchone()[0] == 3
        assert con.sql("SELECT count(*) FROM marts.leaderboard").fetchone()[0] == 5
        assert con.sql("SELECT count(*) FROM analyses").fetchone()[0] == 0  # typed, empty
    # Housekeeping keeps the newest builds only, like serving snapshots.
    for minute in range(2, 6):
        warehouse.build_analyst(lake, NOW + dt.timedelta(minutes=minute))
    warehouse.sweep(time.time())
    builds = sorted(p.name for p in warehouse.analyst.path.iterdir() if warehouse.analyst.is_build(p.name))
    assert len(builds) == warehouse.analyst.keep and first.name not in builds
    assert warehouse.analyst_path.samefile(warehouse.analyst.current())


def test_oddsforge_sql_reads_the_analyst_database_only_while_it_is_current(tmp_path: Path) -> None:
    lake, warehouse = Lake(root=str(tmp_path / "lake")), Warehouse(str(tmp_path / "warehouse"))
    _write_games(lake, [dt.date(2025, 1, 3)])
    assert open_current_analyst(lake, warehouse.directory) is None  # none built yet
    warehouse.build_analyst(lake, NOW)
    con = open_current_analyst(lake, warehouse.directory)
    assert con is not None and con.sql("SELECT count(*) FROM games").fetchone()[0] == 1
    con.close()
    assert open_current_analyst(Lake(root=str(tmp_path / "other")), warehouse.directory) is None
    time.sleep(0.01)
    _write_games(lake, [dt.date(2025, 1, 3), dt.date(2025, 1, 4)])  # a new day: views would miss it
    assert open_current_analyst(lake, warehouse.directory) is None
    warehouse.build_analyst(lake, NOW + dt.timedelta(minutes=1))
    assert open_current_analyst(lake, warehouse.directory) is not None
