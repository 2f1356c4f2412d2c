"""One model's rows of the lake's daily tables (analyses, settled picks, performance), for the API.

These tables hold every model of a sport in one object per day, far too big for the serving
snapshot at 100,000 models. The snapshot carries their manifest instead (``lake_partitions``, see
``stores/warehouse.py``): which daily objects existed at publication. A request takes its days
and keys from that manifest, never from a lake listing, so every API worker serves the same days as
the rest of the snapshot (leaderboard, calibration), and reads only those objects, filtered to the
model while the Parquet is scanned.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

import polars as pl

from api.serving import ServingStore
from api.snapshot_cache import SnapshotCache
from api.visibility import snapshot_rows
from domain.models.engine import ANALYSIS_WEIGHTS, SOURCE_SCORES, Scored
from domain.tables.schemas import ODDS_SNAPSHOTS
from stores.lake import Lake
from stores.layout import table_key
from stores.warehouse import PARTITIONS_TABLE


@dataclass(frozen=True)
class Partitions:
    """The daily objects of one table and sport in a snapshot's manifest, oldest first."""

    days: tuple[dt.date, ...]
    keys: tuple[str, ...]

    def latest(self, on_or_before: dt.date) -> dt.date | None:
        """The newest day on or before ``on_or_before``; None if there is none."""
        i = bisect.bisect_right(self.days, on_or_before)
        return self.days[i - 1] if i else None

    def between(self, first: dt.date, last: dt.date) -> list[str]:
        """Keys of the days ``first..last`` (inclusive)."""
        return list(self.keys[bisect.bisect_left(self.days, first) : bisect.bisect_right(self.days, last)])


_PARTITIONS: SnapshotCache[Partitions] = SnapshotCache(max_entries=256)


def partitions(store: ServingStore, table: str, sport: str) -> Partitions:
    """``table``'s daily objects for ``sport`` as of the current snapshot (none before the first
    publication, or in a snapshot that predates the manifest), read once per snapshot."""

    def load() -> Partitions:
        rows = snapshot_rows(
            store,
            f'SELECT day, key FROM "{PARTITIONS_TABLE}" WHERE table_name = ? AND sport = ? ORDER BY day',
            [table, sport],
        )
        return Partitions(tuple(r["day"] for r in rows), tuple(r["key"] for r in rows))

    return _PARTITIONS.lookup(store, (table, sport), load)


def model_rows(lake: Lake, keys: list[str], model_id: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The model's rows of the daily objects ``keys``, in ``schema``."""
    return rows_where(lake, keys, pl.col("model_id") == model_id, schema)


def rows_where(
    lake: Lake, keys: list[str], predicate: pl.Expr, schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """The rows of the daily objects ``keys`` that satisfy ``predicate`` (filtered while the Parquet
    is scanned: row groups whose statistics exclude it are skipped), in ``schema``.

    A day re-run since the publication may have left no rows, and so no object: it is skipped, as the
    next snapshot's manifest will."""
    try:
        return _scan(lake, keys, predicate, schema)
    except (FileNotFoundError, pl.exceptions.ComputeError):
        return _scan(lake, [k for k in keys if lake.exists(k)], predicate, schema)


def _scan(lake: Lake, keys: list[str], predicate: pl.Expr, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if not keys:
        return pl.DataFrame(schema=schema)
    scan = pl.scan_parquet(
        [lake.uri(k) for k in keys],
        storage_options=lake.polars_storage_options(),
        missing_columns="insert",
        extra_columns="ignore",
    )
    return scan.filter(predicate).collect().select(list(schema)).cast(schema)


def explained(lake: Lake, store: ServingStore, sport: str, model_id: str, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (the model's analyses, any extra columns) with their sources' names, scores and
    weights (``domain.models.engine.Scored.explained``), joined from the days' ``analysis_weights``
    and ``source_scores`` of the snapshot: only the sources and games of ``rows`` are read."""
    if rows.is_empty():
        return Scored(
            rows, pl.DataFrame(schema=SOURCE_SCORES), pl.DataFrame(schema=ANALYSIS_WEIGHTS)
        ).explained()
    first, last = rows["game_date"].min(), rows["game_date"].max()
    weights = model_rows(
        lake, partitions(store, "analysis_weights", sport).between(first, last), model_id, ANALYSIS_WEIGHTS
    ).join(rows.select("version", "game_date").unique(), on=["version", "game_date"], how="semi")
    wanted = pl.col("source").is_in(weights["source"].unique().implode()) & pl.col("game_id").is_in(
        rows["game_id"].unique().implode()
    )
    scores = rows_where(
        lake, partitions(store, "source_scores", sport).between(first, last), wanted, SOURCE_SCORES
    )
    return Scored(rows, scores, weights).explained()


def game_snapshots(lake: Lake, sport: str, games: pl.DataFrame) -> pl.DataFrame:
    """Every bookmaker's odds snapshots (``ODDS_SNAPSHOTS``) of the games in ``games`` (``game_id``,
    ``game_date``), read from their days' objects of the tidy ``odds_snapshots`` table: what a pick's
    best price and fair probability are taken from. A day without an object has none."""
    keys = [table_key("odds_snapshots", sport, day) for day in sorted(set(games["game_date"].to_list()))]
    found = [k for k in keys if lake.exists(k)]
    if not found:
        return pl.DataFrame(schema=ODDS_SNAPSHOTS)
    ids = games["game_id"].unique().implode()
    return lake.read_parquet(found, ODDS_SNAPSHOTS).filter(pl.col("game_id").is_in(ids))
