"""The lake on a local folder and on a real S3 API (moto's server on loopback)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl

from stores.lake import STALE_TEMP_SECONDS, Lake
from stores.layout import raw_key, table_key

DAY = dt.date(2025, 11, 2)


def _frame(n: int, day: dt.date = DAY) -> pl.DataFrame:
    return pl.DataFrame({"game_date": [day] * n, "x": list(range(n))})


def test_write_daily_replaces_and_removes(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    other = DAY + dt.timedelta(days=1)
    counts = lake.write_daily(
        pl.concat([_frame(3), _frame(2, other)]), lambda d: table_key("t", "s", d), [DAY, other]
    )
    assert counts == {DAY: 3, other: 2}
    # Re-running the range with no rows for `other` removes that partition: partitions are replaced exactly.
    lake.write_daily(_frame(1), lambda d: table_key("t", "s", d), [DAY, other])
    assert lake.read_parquet(lake.list_keys("tables/t/")).height == 1
    assert not lake.exists(table_key("t", "s", other))


def test_put_new_is_create_once(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    assert lake.put_new("inbox/e/1.json", b"first")
    assert not lake.put_new("inbox/e/1.json", b"second")
    assert lake.get_bytes("inbox/e/1.json") == b"first"
    assert [k for k in os.listdir(tmp_path / "inbox" / "e")] == ["1.json"]


def test_crash_mid_write_keeps_previous_version(tmp_path) -> None:
    """A process killed while writing a partition leaves the old object readable and no torn file."""
    lake = Lake(root=str(tmp_path))
    key = raw_key("odds_snapshots", "basketball_nba", DAY, "sample")
    lake.write_parquet(key, _frame(5))
    script = textwrap.dedent(
        f"""
        import os, polars as pl
        from stores import lake as lake_mod
        real_replace = os.replace
        def crash(*a, **k):
            os._exit(9)  # the process dies after writing the temp file, before the rename
        lake_mod.os.replace = crash
        lake = lake_mod.Lake(root={str(tmp_path)!r})
        lake.write_parquet({key!r}, pl.DataFrame({{"game_date": [None] * 7, "x": list(range(7))}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    assert lake.read_parquet([key]).height == 5
    assert list(lake.list_keys("raw/")) == [key]  # the temp file is hidden from readers

    # Housekeeping removes the crashed writer's temp file once it has been left for an hour, never
    # a younger one (a live writer's), nor an object.
    (temp,) = [p for p in (tmp_path / key).parent.iterdir() if p.name != Path(key).name]
    assert temp.name.startswith(".") and temp.name.endswith(".tmp")
    written = temp.stat()
    assert lake.sweep_temp_files(written.st_mtime + STALE_TEMP_SECONDS - 60) == []
    assert temp.exists()
    stale = written.st_mtime + STALE_TEMP_SECONDS + 1
    assert lake.sweep_temp_files(stale) == [(temp.relative_to(tmp_path).as_posix(), written.st_size)]
    assert not temp.exists() and lake.read_parquet([key]).height == 5


def test_s3_roundtrip_with_duckdb_and_polars(s3_lake: Lake) -> None:
    from stores.warehouse import lake_connection

    lake = s3_lake
    df = pl.DataFrame({"game_id": ["a", "b"], "game_date": [DAY, DAY], "v": [1.5, 2.5]})
    lake.write_daily(df, lambda d: table_key("games", "basketball_nba", d), [DAY])
    key = table_key("games", "basketball_nba", DAY)
    assert lake.exists(key) and lake.uri(key).startswith("s3://")
    back = pl.read_parquet(lake.uri(key), storage_options=lake.polars_storage_options())
    assert back.sort("game_id").equals(df)
    with lake_connection(lake) as con:
        total = con.execute("SELECT sum(v) FROM read_parquet(?)", [lake.uri(key)]).fetchone()[0]
    assert total == 4.0
    assert lake.put_new("inbox/x.json", b"1") and not lake.put_new("inbox/x.json", b"2")
