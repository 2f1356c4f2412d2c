"""Month objects: import-history writes them, compaction folds closed months of daily objects into
them, and every reader (polars, the analysts' views, the API over a serving manifest of either age)
sees the same rows before, during and after."""

from __future__ import annotations

import datetime as dt
import threading
import time

import polars as pl
import pytest

from api.model_data import Partitions, model_rows
from assets.common import daily_partitions
from assets.ingest import RAW_ASSETS
from assets.lake import COMPACTED_TABLES, compaction_prefixes
from pipelines.definitions import defs
from stores import layout
from stores.lake import SHADOW_GRACE_SECONDS, Lake
from stores.layout import month_table_key, raw_key, raw_month_key, table_key
from stores.warehouse import DAILY_SERVED, EXPLANATION_TABLES, lake_connection, partition_manifest

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


# ---- the model tables the API reads by day: analyses, settled picks, performance ---------------

MODELS = ["alice--m-000001", "bob--m-000002", "carol--m-000003"]
SERVED_SCHEMA = {"model_id": pl.String, "version": pl.Int32, "game_id": pl.String, "p": pl.Float64}


def _model_frame(table: str, days: list[dt.date], p: float = 0.0) -> pl.DataFrame:
    """Rows of several model versions per day, each day's rows model by model as the daily writers
    store them (``domain.models.engine.clustered``); ``p`` shifts every value (a changed re-run)."""
    rows = [
        (m, v, f"g{d:%m%d}{i}", d, p + i / 7 + v / 3 + j / 11)
        for d in days
        for j, m in enumerate(MODELS)
        for v in (1, 2)
        for i in range(3)
    ]
    col = layout.partition_column(table)
    schema = {"model_id": pl.String, "version": pl.Int32, "game_id": pl.String, col: pl.Date, "p": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _served(lake: Lake, table: str) -> tuple[Partitions, dict[str, str]]:
    """The table's days as a snapshot published now names them, and the object of each day."""
    manifest = partition_manifest(lake).filter(pl.col("table_name") == table, pl.col("sport") == SPORT)
    parts = Partitions(tuple(manifest["day"]), tuple(manifest["key"]))
    return parts, dict(zip(manifest["day"].cast(pl.String), manifest["key"], strict=True))


def _per_model(lake: Lake, parts: Partitions, table: str) -> dict[str, pl.DataFrame]:
    col = layout.partition_column(table)
    schema = {**SERVED_SCHEMA, col: pl.Date}
    return {m: model_rows(lake, parts, m, schema).sort(col, "version", "game_id") for m in MODELS}


def _expected(rows: pl.DataFrame, table: str, parts: Partitions) -> dict[str, pl.DataFrame]:
    col = layout.partition_column(table)
    named = rows.filter(pl.col(col).is_in(pl.Series(parts.days, dtype=pl.Date)))
    return {
        m: named.filter(pl.col("model_id") == m).select(*SERVED_SCHEMA, col).sort(col, "version", "game_id")
        for m in MODELS
    }


def _same(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> bool:
    return all(got[m].height and got[m].equals(want[m].select(got[m].columns)) for m in MODELS)


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize("table", ["analyses", "settled_picks", "model_performance"])
def test_compacted_model_tables_read_the_same_for_the_pipeline_analysts_and_the_api(
    table: str, where: str, tmp_path, request
) -> None:
    lake = Lake(root=str(tmp_path)) if where == "local" else request.getfixturevalue("s3_lake")
    col = layout.partition_column(table)

    def key(day: dt.date) -> str:
        return table_key(table, SPORT, day)

    def read(start: dt.date = DAYS[0], end: dt.date = DAYS[-1] + dt.timedelta(days=1)) -> pl.DataFrame:
        return lake.read_table(table, SPORT, start, end, {})

    def sql() -> pl.DataFrame:
        with lake_connection(lake) as con:
            return con.sql(f'SELECT model_id, version, game_id, "{col}", p FROM {table} ORDER BY ALL').pl()

    lake.write_daily(_model_frame(table, DAYS), key, DAYS, date_col=col)
    before, sql_before = read(), sql()
    old, old_objects = _served(lake, table)  # a snapshot published before compaction: day keys
    assert before.height == 18 * len(DAYS) and set(old_objects.values()) == {key(d) for d in DAYS}
    assert _same(_per_model(lake, old, table), _expected(before, table, old))

    month = month_table_key(table, SPORT, "2019-01")
    january = [d for d in DAYS if d.month == 1]
    assert lake.compact_month(month, time.time()) == (0, 18 * len(january))
    # The month object keeps each model's rows together and names its days in its footer.
    stored = lake.read_parquet([month])
    assert stored.select("model_id", "version").equals(stored.select("model_id", "version").sort(pl.all()))
    assert lake.month_days(month) == january
    new, new_objects = _served(lake, table)
    assert new.days == old.days and {new_objects[str(d)] for d in january} == {month}
    for phase in ("during", "after"):  # the month object beside its days, then alone
        # Exactly the same frame, row order included, so a reader's sums come out bit for bit.
        assert read().equals(before), phase
        assert sql().equals(sql_before), phase
        want = _expected(before, table, old)
        assert _same(_per_model(lake, old, table), want) and _same(_per_model(lake, new, table), want), phase
        span = old.between(DAYS[2], DAYS[4])  # a month object read for some of its days only
        assert _same(_per_model(lake, span, table), _expected(before, table, span)), phase
        assert _same(_per_model(lake, new.between(DAYS[2], DAYS[4]), table), _expected(before, table, span))
        assert lake.compact_month(month, _later()) == ((11, 0) if phase == "during" else (0, 0))
    assert not any(lake.exists(key(d)) for d in january)

    # A day re-run after compaction (changed rows, fewer models) replaces that day's rows in the
    # month object, for every reader, and leaves no day object.
    rerun = _model_frame(table, [DAYS[1]], p=1.0).filter(pl.col("model_id") != MODELS[2])
    assert lake.write_daily(rerun, key, [DAYS[1]], date_col=col) == {DAYS[1]: 12}
    assert not lake.exists(key(DAYS[1])) and lake.month_days(month) == january
    after = pl.concat([before.filter(pl.col(col) != DAYS[1]), rerun]).sort(col, maintain_order=True)
    assert read().sort(pl.all()).equals(after.sort(pl.all()))
    assert read(DAYS[1], DAYS[2]).equals(rerun)  # that day as the daily writer ordered it
    assert sql().equals(after.sort(pl.all()).select(sql_before.columns))
    for parts in (old, new, _served(lake, table)[0]):
        assert _same(_per_model(lake, parts, table), _expected(after, table, parts))


def test_every_daily_table_of_the_pipeline_is_compacted() -> None:
    """A new daily table (one object per sport and day) is compacted once its name is in
    ``COMPACTED_TABLES``: this fails until it is."""
    graph = defs.resolve_asset_graph()
    daily = {
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if graph.get(k).partitions_def == daily_partitions
    }
    raw = {f"raw_{table}" for table in RAW_ASSETS}
    # pick_digests: one object a day for every sport (tables/pick_digests/{day}.parquet), appended to.
    # source_scores and analysis_weights: written by the analyses asset beside its analyses.
    assert daily - raw - {"pick_digests"} | set(EXPLANATION_TABLES) == set(COMPACTED_TABLES)
    assert {"analyses", "settled_picks", "model_performance"} <= set(COMPACTED_TABLES)
    prefixes = compaction_prefixes([SPORT])
    assert all(layout.table_prefix(t, SPORT) in prefixes for t in DAILY_SERVED)
