"""Month objects: import-history writes them, compaction folds closed months of daily objects into
them, and every reader (polars, the analysts' views) sees the same rows before, during and after."""

from __future__ import annotations

import datetime as dt
import threading
import time

import polars as pl
import pytest

from stores import layout
from stores.lake import SHADOW_GRACE_SECONDS, Lake
from stores.layout import month_table_key, raw_key, raw_month_key, table_key
from stores.warehouse import lake_connection

SPORT = "basketball_nba"
DAYS = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(0, 45, 3)]  # January and February


def _games(days: list[dt.date], tag: str = "a") -> pl.DataFrame:
    rows = [(f"nba_{d:%Y%m%d}_{tag}{i}", d, i) for d in days for i in range(2)]
    return pl.DataFrame(
        rows, schema={"game_id": pl.String, "game_date": pl.Date, "home_score": pl.Int64}, orient="row"
    )


def _key(day: dt.date) -> str:
    return table_key("games", SPORT, day)


def _rows(lake: Lake) -> pl.DataFrame:
    return lake.read_table("games", SPORT, dt.date(2018, 1, 1), dt.date(2020, 1, 1), {}).sort("game_id")


def _later() -> float:
    return time.time() + SHADOW_GRACE_SECONDS + 1


def _sql_rows(lake: Lake) -> pl.DataFrame:
    with lake_connection(lake) as con:
        return con.sql("SELECT game_id, game_date, home_score FROM games ORDER BY game_id").pl()


def test_month_keys_read_back_and_replace_their_days() -> None:
    day = dt.date(2019, 1, 7)
    month = layout.parse_period_key(month_table_key("games", SPORT, "2019-01"))
    assert (
        month is not None and month.day is None and month.span == (dt.date(2019, 1, 1), dt.date(2019, 2, 1))
    )
    assert layout.parse_period_key(_key(day)).month_key == month_table_key("games", SPORT, "2019-01")
    raw_day = layout.parse_period_key(raw_key("games", SPORT, day, "kaggle-nba"))
    assert raw_day.month_key == raw_month_key("games", SPORT, "2019-01", "kaggle-nba")
    keys = [
        _key(day),
        month_table_key("games", SPORT, "2019-01"),
        _key(dt.date(2019, 2, 1)),
        raw_key("games", SPORT, day, "x"),
    ]
    # A month object replaces the days of its own family and month only.
    assert layout.effective_keys(keys) == keys[1:]
    for other in [
        "tables/ledger/2019-01.parquet",
        "tables/model_versions.parquet",
        "tables/games/s/2019-13.parquet",
    ]:
        assert layout.parse_period_key(other) is None


@pytest.mark.parametrize("where", ["local", "s3"])
def test_compaction_keeps_every_reader_on_the_same_rows(where: str, tmp_path, request) -> None:
    lake = Lake(root=str(tmp_path)) if where == "local" else request.getfixturevalue("s3_lake")
    lake.write_daily(_games(DAYS), _key, DAYS)
    before, sql_before = _rows(lake), _sql_rows(lake)
    assert before.height == 2 * len(DAYS) and sql_before.equals(before.select(sql_before.columns))

    month = month_table_key("games", SPORT, "2019-01")
    assert lake.compact_month(month, time.time()) == (0, 22)  # the month object, its days kept
    assert _rows(lake).equals(before) and _sql_rows(lake).equals(sql_before)
    assert lake.compact_month(month, time.time()) == (0, 0)  # days replaced only a moment ago stay
    assert lake.compact_month(month, _later()) == (11, 0)
    assert [k for k in lake.list_keys(layout.table_prefix("games", SPORT)) if "2019-01" in k] == [
        month_table_key("games", SPORT, "2019-01")
    ]
    assert _rows(lake).equals(before) and _sql_rows(lake).equals(sql_before)
    # A range inside the month reads only its days.
    assert lake.read_table("games", SPORT, DAYS[1], DAYS[2], {}).height == 2
    # A compacted month stays compacted: a day re-run (with a changed score, and a day left without
    # rows) is merged into the month object.
    changed = _games([DAYS[0]]).with_columns(pl.lit(9, pl.Int64).alias("home_score"))
    assert lake.write_daily(changed, _key, [DAYS[0], DAYS[1]]) == {DAYS[0]: 2, DAYS[1]: 0}
    assert not lake.exists(_key(DAYS[0]))
    after = _rows(lake)
    assert after.height == before.height - 2 and after.filter(pl.col("game_date") == DAYS[0])[
        "home_score"
    ].to_list() == [9, 9]
    assert _sql_rows(lake).equals(after.select(sql_before.columns))


def test_a_reader_between_the_month_write_and_the_day_deletes_counts_each_row_once(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    lake.write_daily(_games(DAYS), _key, DAYS)
    before = _rows(lake)
    # The state an interrupted compaction leaves: the month object written, its days still there.
    january = [d for d in DAYS if d.month == 1]
    lake.write_parquet(month_table_key("games", SPORT, "2019-01"), _games(january))
    assert _rows(lake).equals(before)
    assert _sql_rows(lake).equals(before.select("game_id", "game_date", "home_score"))
    assert lake.compact_month(month_table_key("games", SPORT, "2019-01"), _later()) == (11, 0)
    assert _rows(lake).equals(before)


def test_a_day_written_after_its_month_was_compacted_is_folded_in_next_time(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    lake.write_daily(_games(DAYS), _key, DAYS)
    month = month_table_key("games", SPORT, "2019-01")
    lake.compact_month(month, time.time())
    # A backfill that checked for the month object just before it appeared writes a plain day.
    late = _games([DAYS[2]], tag="late")
    time.sleep(0.01)
    lake.write_parquet(_key(DAYS[2]), late)
    assert lake.compact_month(month, _later()) == (0, 22)
    assert lake.compact_month(month, _later()) == (11, 0)
    got = lake.read_table("games", SPORT, DAYS[2], DAYS[2] + dt.timedelta(days=1), {})
    assert sorted(got["game_id"]) == sorted(late["game_id"])


@pytest.mark.parametrize("where", ["local", "s3"])
def test_readers_racing_the_compaction_see_the_same_rows(where: str, tmp_path, request) -> None:
    lake = Lake(root=str(tmp_path)) if where == "local" else request.getfixturevalue("s3_lake")
    days = [dt.date(2019, 1, 1) + dt.timedelta(days=i) for i in range(31)]
    lake.write_daily(_games(days), _key, days)
    expected = _rows(lake)
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not done.is_set():  # each query as `oddsforge sql` runs it: views made afresh
                seen.append(("polars", _rows(lake).height))
                with lake_connection(lake) as con:
                    seen.append(("sql", con.sql("SELECT count(*) FROM games").fetchone()[0]))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(seen) < n and not errors and time.monotonic() < deadline:
            time.sleep(0.01)

    delete = lake.delete

    def slow_delete(key: str) -> None:  # widen the window between the deletes
        time.sleep(0.02)
        delete(key)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    wait_for(4)
    month = month_table_key("games", SPORT, "2019-01")
    lake.compact_month(month, time.time())
    wait_for(len(seen) + 8)  # every reader has listed since the month object appeared
    lake.delete = slow_delete  # type: ignore[method-assign]
    assert lake.compact_month(month, _later()) == (31, 0)
    wait_for(len(seen) + 4)
    done.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert seen and {n for _, n in seen} == {expected.height}, seen
    assert _rows(lake).equals(expected)
