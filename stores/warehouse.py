"""DuckDB over the lake: views for analysts, immutable serving snapshots for the API, dbt's marts.

DuckDB allows one writer per file: a write fails while anyone holds the file open, even read-only,
and a read-only open fails while another process writes it. So nothing here ever writes a file that
someone else reads: analysts' views live in connections of their own (in memory, over the lake's
Parquet), and the API's *serving snapshots* and dbt's *marts* are :class:`BuildFolder` s: a new
DuckDB file per publication or build, renamed into place when complete, then an atomic swap of the
folder's ``CURRENT`` pointer. Old builds are kept a while so readers that still hold them finish
undisturbed, and an analyst holding the marts open never blocks the next build.

Each publication attaches its new file to one DuckDB connection that holds the lake's views; in the
pipeline that connection comes from dagster-duckdb's ``DuckDBResource`` (``resources/warehouse.py``),
so its DuckDB settings are configured like any other resource. A plain class: the API imports this
module's table names without importing Dagster.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from domain.compliance.audit import AUDIT
from domain.datasets.registry import DATASETS
from domain.marketplace.listing import MODEL_STATUS, NOTIFICATIONS
from domain.marketplace.performance import CALIBRATION, MODEL_PERFORMANCE, SETTLED_PICKS
from domain.marketplace.ratings import USER_REVIEWS
from domain.models.engine import ANALYSES, ANALYSIS_WEIGHTS, SOURCE_SCORES
from domain.models.engine.feature_tables import LINE_HISTORY, PLAYER_FORM, TEAM_FORM, TEAM_RATES
from domain.models.registry import MODEL_VERSIONS
from domain.money.earnings import CREATOR_BALANCES, PAYOUT_RECORDS
from domain.money.ledger import LEDGER
from domain.money.subscriptions import SUBSCRIPTIONS
from domain.tables.schemas import GAMES, LINES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX
from stores.analyst import ANALYST_BUILD_TABLE, DEFAULT_DIR, directory_from_env
from stores.lake import Lake, delete_path, remove_stale_temp
from stores.layout import (
    ANALYST_DATABASE,
    ANALYST_DIR,
    ANALYST_POINTER,
    BACKTESTS_INBOX,
    MARTS_DATABASE,
    MARTS_DIR,
    MARTS_POINTER,
    SERVING_DIR,
    SERVING_POINTER,
    TUNING_INBOX,
    analyst_build_name,
    effective_keys,
    is_analyst_build,
    is_marts_build,
    is_serving_snapshot,
    marts_build_name,
    parse_backtest_key,
    parse_draft_backtest_key,
    parse_period_key,
    parse_tuning_key,
    serving_snapshot_name,
    table_key,
    table_prefix,
    temp_name,
)
from stores.ledger import LEDGER_INBOX

KEEP_SNAPSHOTS = 3

LAKE_TABLES: dict[str, dict[str, pl.DataType]] = {
    "games": GAMES,
    "lines": LINES,
    "odds_snapshots": ODDS_SNAPSHOTS,
    "team_box_scores": TEAM_BOX,
    "player_box_scores": PLAYER_BOX,
    "model_versions": MODEL_VERSIONS,
    "datasets": DATASETS,
    "analyses": ANALYSES,
    "source_scores": SOURCE_SCORES,
    "analysis_weights": ANALYSIS_WEIGHTS,
    "team_form": TEAM_FORM,
    "player_form": PLAYER_FORM,
    "line_history": LINE_HISTORY,
    "team_rates": TEAM_RATES,
    "settled_picks": SETTLED_PICKS,
    "model_performance": MODEL_PERFORMANCE,
    "model_calibration": CALIBRATION,
    "subscriptions": SUBSCRIPTIONS,
    "model_status": MODEL_STATUS,
    "notifications": NOTIFICATIONS,
    "user_reviews": USER_REVIEWS,
    "ledger": LEDGER,
    "ledger_inbox": LEDGER_INBOX,
    "creator_balances": CREATOR_BALANCES,
    "payouts": PAYOUT_RECORDS,
    "audit": AUDIT,
}
"""Table (and view) name -> schema: every lake table analysts, the API and dbt read."""

SERVING_TABLES = [
    "games",
    "lines",
    "model_versions",
    "model_calibration",
    "model_status",
    "subscriptions",
    "notifications",
]
"""Lake tables copied into each serving snapshot (what the API reads)."""

EXPLANATION_TABLES = ["source_scores", "analysis_weights"]
"""What went into each analysis (``domain.models.engine.Scored``): written by the ``analyses`` asset
beside its analyses, so they have no asset of their own."""

DAILY_SERVED = ["analyses", *EXPLANATION_TABLES, "settled_picks", "model_performance"]
"""Daily lake tables the API reads per model, straight from the lake (at 100,000 models a day of
analyses is millions of rows: too much to copy into every snapshot)."""

DAILY_SERVED_ASSETS = [t for t in DAILY_SERVED if t not in EXPLANATION_TABLES]
"""The assets that write :data:`DAILY_SERVED`."""

PARTITIONS_TABLE = "lake_partitions"
PARTITIONS: dict[str, pl.DataType] = {
    "table_name": pl.String,
    "sport": pl.String,
    "day": pl.Date,
    "key": pl.String,
    "modified": pl.Float64,
}
"""The manifest of :data:`DAILY_SERVED` at publication: one row per day and the object holding its
rows (its day object, each shard object of the day, ``{table}/{sport}/{day}/shard-k.parquet``, or
the month object it was compacted into), with the object's modification time (POSIX seconds). The
API takes its days and keys from here, so it never lists the lake per request and every table it
serves is as of the same publication."""

BACKTESTS_TABLE = "model_backtests"
BACKTESTS: dict[str, pl.DataType] = {"model_id": pl.String, "backtests": pl.Int64}
"""Per model, the backtests its creator recorded across its versions and drafts (one per version or
draft and span: a rerun of the same span replaces the report), plus the configurations its tuning
runs tried. The listing shows it (SPEC 5): a record found after
many tries means less than one found after two."""

MART_TABLES = ["leaderboard", "creator_summary", "model_subscribers", "monthly_revenue", "model_ratings"]
"""dbt marts every marts build must hold, copied into each serving snapshot once one exists."""

LISTING_TABLE = "marketplace_listing"
LISTING_SQL = """
WITH listed AS (
    SELECT s.model_id, s.version, s.name, v.description, s.owner_user_id AS creator_id, s.sport,
           s.bet_type, s.market, s.price_cents, v.trial_days,
           coalesce(l.established, false) AS established, coalesce(l.graded, 0) AS graded,
           coalesce(l.wins, 0) AS wins, l.accuracy, l.roi, coalesce(l.units, 0) AS units,
           coalesce(l.profit, 0) AS profit, l.brier, l.breakeven, l.clv, l.clv_low, l.clv_high,
           coalesce(l.clv_picks, 0) AS clv_picks, coalesce(l.performance_score, 0) AS performance_score,
           l.as_of, coalesce(m.subscribers, 0) AS subscribers, coalesce(b.backtests, 0) AS backtests,
           r.rating_mean, coalesce(r.ratings, 0) AS ratings, s.since AS listed_since
    FROM model_status s
    JOIN model_versions v ON v.model_id = s.model_id AND v.version = s.version
    LEFT JOIN leaderboard l ON l.model_id = s.model_id AND l.version = s.version
    LEFT JOIN model_subscribers m ON m.model_id = s.model_id
    LEFT JOIN model_backtests b ON b.model_id = s.model_id
    LEFT JOIN model_ratings r ON r.model_id = s.model_id
    WHERE s.status = 'listed'
)
SELECT *, row_number() OVER (
    PARTITION BY sport, bet_type
    ORDER BY established DESC, graded > 0 DESC, performance_score DESC, roi DESC NULLS LAST, model_id
) AS rank
FROM listed
"""
"""Listed models with figures and a rank among listed models (the mart ranks every public model,
so its own rank would count unlisted ones). Computed once per snapshot: the marketplace's hottest
request then filters and pages one small table instead of joining four per request."""


_DUCK_TYPES = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.UInt32: "UINTEGER",
    pl.UInt64: "UBIGINT",
    pl.Float32: "FLOAT",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
}


def _duck_type(dtype: pl.DataType) -> str:
    """The DuckDB type of a polars dtype (for typed empty views)."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.List):
        return f"{_duck_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Array):
        return f"{_duck_type(dtype.inner)}[{dtype.size}]"
    return _DUCK_TYPES[type(dtype)]


def _empty_select(schema: Mapping[str, pl.DataType]) -> str:
    cols = ", ".join(f'CAST(NULL AS {_duck_type(t)}) AS "{c}"' for c, t in schema.items())
    return f"SELECT {cols} WHERE false"


def view_sql(lake: Lake, name: str) -> str:
    """``CREATE VIEW`` over every Parquet object of a lake table (typed and empty if none yet).

    The view names the objects listed now, month objects instead of the days they replace
    (``stores.layout.effective_keys``), so no row counts twice and no query finds a listed object
    gone: compaction deletes replaced days only after ``SHADOW_GRACE_SECONDS``. Days written later
    appear in views created later (a new ``oddsforge sql``, the next analyst database)."""
    single, folder = table_key(name), table_prefix(name)
    if lake.exists(single):
        source = f"SELECT * FROM read_parquet('{lake.uri(single)}')"
    elif keys := [k for k in effective_keys(lake.list_keys(folder)) if k.endswith(".parquet")]:
        files = ", ".join(f"'{lake.uri(k)}'" for k in keys)
        source = f"SELECT * FROM read_parquet([{files}], union_by_name = true)"
    else:
        source = _empty_select(LAKE_TABLES[name])
    return f'CREATE OR REPLACE VIEW "{name}" AS {source}'


def partition_manifest(lake: Lake) -> pl.DataFrame:
    """:data:`PARTITIONS` rows of every day of :data:`DAILY_SERVED` with rows (one listing per
    table, and the footer of each month object)."""
    rows = []
    for table in DAILY_SERVED:
        for day, key, modified in lake.held_days(table_prefix(table)):
            if (period := parse_period_key(key)) is not None:
                rows.append((table, period.sport, day, key, modified))
    return pl.DataFrame(rows, schema=PARTITIONS, orient="row")


def backtest_counts(lake: Lake) -> pl.DataFrame:
    """:data:`BACKTESTS` rows of every model with a recorded backtest or tuning run (one listing of
    each inbox): a version's or a draft's backtest counts once, a tuning run as the configurations
    it tried (each of them was a backtest of a variant)."""
    runs = [
        (b.model_id, 1)
        for k in lake.list_keys(BACKTESTS_INBOX)
        if (b := parse_backtest_key(k) or parse_draft_backtest_key(k)) is not None
    ]
    runs += [
        (t.model_id, t.trials) for k in lake.list_keys(TUNING_INBOX) if (t := parse_tuning_key(k)) is not None
    ]
    counts = pl.DataFrame(runs, schema={"model_id": pl.String, "n": pl.Int64}, orient="row")
    return (
        counts.group_by("model_id").agg(pl.col("n").sum().cast(pl.Int64).alias("backtests")).sort("model_id")
    )


def create_lake_views(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """A view per lake table in ``con``'s current database."""
    lake.configure_duckdb(con)
    for name in LAKE_TABLES:
        con.execute(view_sql(lake, name))


def lake_connection(lake: Lake, marts: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per lake table, for analysts and builders; with
    ``marts`` (a marts build's file, see :attr:`Warehouse.marts`), that build attached read-only as
    the catalog ``marts`` (the name its views use)."""
    con = duckdb.connect()
    create_lake_views(con, lake)
    if marts is not None:
        con.execute(f"ATTACH '{marts}' AS marts (READ_ONLY)")
    return con


Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
"""Opens the connection a publication works in (``duckdb.connect`` or ``DuckDBResource.get_connection``)."""


@dataclass(frozen=True)
class Build:
    """A build in progress: the DuckDB file to write, and where it will be once published."""

    file: Path
    published: Path


class IncompleteBuildError(RuntimeError):
    """A build lacks a table it must hold: it is removed instead of published."""


@dataclass(frozen=True)
class BuildFolder:
    """A folder of immutable DuckDB builds and a ``CURRENT`` pointer naming the one to read.

    A build is written under a temporary name, checkpointed and checked (its required tables are
    there), renamed to its final name and only then pointed at. So a reader only ever opens a
    complete build, never one a writer holds, and keeps reading the one it opened while newer ones
    are swapped in; only complete builds count towards the ``keep`` newest kept for such readers,
    and a killed writer's temporary build is removed once stale. A build is a DuckDB file, or, with
    ``database`` set, a folder holding the DuckDB file ``database``.
    """

    path: Path
    name_of: Callable[[dt.datetime, str], str]
    """A new build's name from its time and 8 random hex digits."""
    is_build: Callable[[str], bool]
    pointer: str
    database: str | None = None
    keep: int = KEEP_SNAPSHOTS

    def file_of(self, entry: Path) -> Path:
        """The DuckDB file of a build (or of a temporary build)."""
        return entry if self.database is None else entry / self.database

    def current(self) -> Path | None:
        """The DuckDB file of the build the pointer names; None before the first build."""
        pointer = self.path / self.pointer
        name = pointer.read_text().strip() if pointer.exists() else ""
        return self.file_of(self.path / name) if self.is_build(name) else None

    @contextmanager
    def build(self, now: dt.datetime, tables: Iterable[str]) -> Iterator[Build]:
        """A new build to write inside the block; once the block has ended, the build is checked to
        hold ``tables`` and published (pointed at, older builds pruned). A failed block or check
        removes it."""
        self.path.mkdir(parents=True, exist_ok=True)
        name = self.name_of(now, uuid.uuid4().hex[:8])
        temp = self.path / temp_name(name, uuid.uuid4().hex[:8])
        if self.database is not None:
            temp.mkdir()
        try:
            yield Build(self.file_of(temp), self.file_of(self.path / name))
            _checkpoint_and_check(self.file_of(temp), tables)
        except BaseException:
            _remove(temp)
            raise
        os.replace(temp, self.path / name)
        pointer = self.path / temp_name(self.pointer, uuid.uuid4().hex)
        pointer.write_text(name)
        os.replace(pointer, self.path / self.pointer)
        self.prune(time.time())

    def prune(self, now: float) -> list[tuple[Path, int]]:
        """Remove the complete builds beyond the newest ``keep`` (never the current one) and the
        temporary ones a killed writer left; each removed path with its bytes."""
        if not self.path.is_dir():
            return []
        pointer = self.path / self.pointer
        current = pointer.read_text().strip() if pointer.exists() else None
        builds = sorted(p for p in self.path.iterdir() if self.is_build(p.name) and p.name != current)
        removed = [(p, _remove(p)) for p in builds[: max(0, len(builds) - (self.keep - 1))]]
        return removed + remove_stale_temp(self.path, now)


def _checkpoint_and_check(file: Path, tables: Iterable[str]) -> None:
    """Fold the write-ahead log into ``file`` (its name is about to change, and a log is found by
    name) and check that it holds ``tables``."""
    with duckdb.connect(str(file)) as con:
        con.execute("CHECKPOINT")
        present = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if missing := sorted(set(tables) - present):
        raise IncompleteBuildError(f"{file} lacks {', '.join(missing)}: not published")


def _remove(path: Path) -> int:
    """Delete a build (a file and its write-ahead log, or a folder); its bytes."""
    return delete_path(path) + delete_path(Path(f"{path}.wal"))


class Warehouse:
    """Where serving snapshots and dbt marts builds live (always a local directory: DuckDB files need
    a disk)."""

    def __init__(self, directory: str = DEFAULT_DIR, connect: Connect = duckdb.connect) -> None:
        """``connect()`` opens the connection each publication works in; its new snapshot file is
        attached to it, so the connection's own database (in memory by default) only holds the
        lake's views."""
        self.directory = directory
        self.connect = connect
        self.snapshots = BuildFolder(
            Path(directory) / SERVING_DIR, serving_snapshot_name, is_serving_snapshot, SERVING_POINTER
        )
        self.marts = BuildFolder(
            Path(directory) / MARTS_DIR, marts_build_name, is_marts_build, MARTS_POINTER, MARTS_DATABASE
        )
        """dbt's builds (``assets/marts.py``): readers open ``marts.current()``, which no build writes."""
        self.analyst = BuildFolder(
            Path(directory) / ANALYST_DIR, analyst_build_name, is_analyst_build, ANALYST_POINTER
        )
        """The analyst database's builds; analysts open :attr:`analyst_path`."""

    @classmethod
    def from_env(cls) -> Warehouse:
        return cls(directory=directory_from_env())

    @property
    def serving_dir(self) -> Path:
        return self.snapshots.path

    def publish(self, lake: Lake, now: dt.datetime) -> tuple[Path, dict[str, int]]:
        """Copy the serving tables (and the current dbt marts) into a new snapshot file, then point
        ``CURRENT`` at it."""
        counts: dict[str, int] = {}
        marts = self.marts.current()
        tables = [*SERVING_TABLES, PARTITIONS_TABLE, BACKTESTS_TABLE]
        with self.snapshots.build(now, tables) as build, self.connect() as con:
            create_lake_views(con, lake)
            home = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"ATTACH '{build.file}' AS snapshot")
            for table in SERVING_TABLES:
                counts[table] = _copy(con, table, f'SELECT * FROM "{table}"')
            manifest = partition_manifest(lake)
            con.register("_manifest", manifest.to_arrow())
            counts[PARTITIONS_TABLE] = _copy(con, PARTITIONS_TABLE, "SELECT * FROM _manifest ORDER BY ALL")
            con.unregister("_manifest")
            con.register("_backtests", backtest_counts(lake).to_arrow())
            counts[BACKTESTS_TABLE] = _copy(con, BACKTESTS_TABLE, "SELECT * FROM _backtests")
            con.unregister("_backtests")
            if marts is not None:
                con.execute(f"ATTACH '{marts}' AS marts (READ_ONLY)")
                for table in MART_TABLES:
                    counts[table] = _copy(con, table, f'SELECT * FROM marts.main."{table}"')
                con.execute("DETACH marts")
            con.execute("USE snapshot")  # the listing joins the snapshot's tables, not the lake's views
            with suppress(duckdb.CatalogException):  # no marts yet (a fresh lake): the API lists nothing
                counts[LISTING_TABLE] = _copy(con, LISTING_TABLE, LISTING_SQL)
            con.execute(f'USE "{home}"')
            con.execute("DETACH snapshot")
        return build.published, counts

    @property
    def analyst_path(self) -> Path:
        """The analyst database every client opens (read-only): the current build under one name."""
        return Path(self.directory) / ANALYST_DATABASE

    def build_analyst(self, lake: Lake, now: dt.datetime) -> tuple[Path, dict[str, int]]:
        """A new analyst database: a view per lake table (over the objects listed now) and a copy of
        the current dbt marts in schema ``marts``; then :attr:`analyst_path` is swapped to it.

        Like a serving snapshot it is a new file, so an analyst holding the previous one open never
        blocks the build and keeps reading it until they reconnect."""
        marts = self.marts.current()
        counts: dict[str, int] = {}
        required = [ANALYST_BUILD_TABLE, *(MART_TABLES if marts is not None else [])]
        with self.analyst.build(now, required) as build, self.connect() as con:
            home = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"ATTACH '{build.file}' AS analyst")
            con.execute("USE analyst")
            con.execute(f"CREATE TABLE {ANALYST_BUILD_TABLE} (lake_root VARCHAR, listed_at DOUBLE)")
            con.execute(f"INSERT INTO {ANALYST_BUILD_TABLE} VALUES (?, ?)", [lake.uri(""), time.time()])
            create_lake_views(con, lake)
            counts["views"] = len(LAKE_TABLES)
            if marts is not None:
                con.execute(f"ATTACH '{marts}' AS marts_build (READ_ONLY)")
                con.execute("CREATE SCHEMA marts")
                for table in MART_TABLES:
                    con.execute(f'CREATE TABLE marts."{table}" AS SELECT * FROM marts_build.main."{table}"')
                    counts[f"marts.{table}"] = con.execute(
                        f'SELECT count(*) FROM marts."{table}"'
                    ).fetchone()[0]
                con.execute("DETACH marts_build")
            con.execute(f'USE "{home}"')
            con.execute("DETACH analyst")
        link = self.analyst_path.with_name(temp_name(ANALYST_DATABASE, uuid.uuid4().hex[:8]))
        os.link(build.published, link)
        os.replace(link, self.analyst_path)
        return build.published, counts

    def current(self) -> Path | None:
        """The serving snapshot the API reads."""
        return self.snapshots.current()

    def sweep(self, now: float) -> list[tuple[Path, int]]:
        """Housekeeping: prune both build folders and remove every stale temporary file of the
        directory (a killed publication's, dbt build's or dataset store's); each path and its bytes."""
        removed = self.snapshots.prune(now) + self.marts.prune(now) + self.analyst.prune(now)
        return removed + remove_stale_temp(Path(self.directory), now)


def _copy(con: duckdb.DuckDBPyConnection, table: str, query: str) -> int:
    """Create ``table`` in the snapshot from ``query``; returns its row count."""
    con.execute(f'CREATE TABLE snapshot."{table}" AS {query}')
    return con.execute(f'SELECT count(*) FROM snapshot."{table}"').fetchone()[0]
