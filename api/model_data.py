"""One model's rows of the lake's daily tables (analyses, settled picks, performance), for the API.

These tables hold every model of a sport in one object per day, or per month once compacted, far
too big for the serving snapshot at 100,000 models. The snapshot carries their manifest instead
(``lake_partitions``, see ``stores/warehouse.py``): which days had rows at publication, and the
object holding each. A request takes its days and keys from that manifest, never from a lake
listing, so every API worker serves the same days as the rest of the snapshot (leaderboard,
calibration), and reads only those objects, filtered to the model and the days while the Parquet is
scanned (objects are stored model by model, so the scan skips the other models' row groups).
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
from stores.layout import month_of, month_table_key, parse_period_key, table_key
from stores.warehouse import PARTITIONS_TABLE


@dataclass(frozen=True)
class Partitions:
    """The days of one table and sport in a snapshot's manifest, oldest first, with the object
    holding each (a month object holds many; a sharded day has several)."""

    days: tuple[dt.date, ...]
    keys: tuple[str, ...]

    def latest(self, on_or_before: dt.date) -> dt.date | None:
        """The newest day on or before ``on_or_before``; None if there is none."""
        i = bisect.bisect_right(self.days, on_or_before)
        return self.days[i - 1] if i else None

    def between(self, first: dt.date, last: dt.date) -> Partitions:
        """The days ``first..last`` (inclusive)."""
        span = slice(bisect.bisect_left(self.days, first), bisect.bisect_right(self.days, last))
        return Partitions(self.days[span], self.keys[span])


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


def model_rows(lake: Lake, parts: Partitions, model_id: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The model's rows of the days of ``parts``, in ``schema``."""
    return rows_where(lake, parts, pl.col("model_id") == model_id, schema)


def rows_where(
    lake: Lake, parts: Partitions, predicate: pl.Expr, schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """The rows of the days of ``parts`` that satisfy ``predicate`` (filtered while the Parquet is
    scanned: row groups whose statistics exclude it are skipped), in ``schema``.

    A day object the manifest names may since have been compacted into its month object (its day
    objects go an hour later) or re-run into it (its day object goes at once): the month object,
    which replaces every day object of its month for every reader, is read for the month's days. A
    day re-run since the publication may have left no rows, and so no object: it is skipped, as the
    next snapshot's manifest will."""
    keys = list(dict.fromkeys(parts.keys))
    try:
        return _scan(lake, keys, parts.days, predicate, schema)
    except (FileNotFoundError, pl.exceptions.ComputeError):
        return _scan(lake, _present(lake, keys), parts.days, predicate, schema)


def _present(lake: Lake, keys: list[str]) -> list[str]:
    """``keys`` as they are now: absent ones dropped, and every day object of a month whose month
    object replaced one of them read from that month object instead (each day from one object)."""
    months = {k: p.month_key for k in keys if (p := parse_period_key(k)) is not None and p.day is not None}
    missing = {k for k in keys if not lake.exists(k)}
    folded = {months[k] for k in missing if k in months and lake.exists(months[k])}
    found = [
        months[k] if months.get(k) in folded else k
        for k in keys
        if k not in missing or months.get(k) in folded
    ]
    return list(dict.fromkeys(found))


def _scan(
    lake: Lake, keys: list[str], days: tuple[dt.date, ...], predicate: pl.Expr, schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    period = parse_period_key(keys[0]) if keys else None
    if period is None:
        return pl.DataFrame(schema=schema)
    wanted = predicate & pl.col(period.date_column).is_in(pl.Series(days, dtype=pl.Date))
    return lake.scan_parquet(keys).filter(wanted).collect().select(list(schema)).cast(schema)


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
    ``game_date``), read from their days' objects of the tidy ``odds_snapshots`` table, or the month
    objects that replaced them: what a pick's best price and fair probability are taken from. A day
    without an object has none."""
    found: dict[str, None] = {}
    months: dict[str, bool] = {}
    for day in sorted(set(games["game_date"].to_list())):
        month = month_table_key("odds_snapshots", sport, month_of(day))
        if months.setdefault(month, lake.exists(month)):
            found[month] = None
        elif lake.exists(key := table_key("odds_snapshots", sport, day)):
            found[key] = None
    if not found:
        return pl.DataFrame(schema=ODDS_SNAPSHOTS)
    ids = games["game_id"].unique().implode()
    return lake.scan_parquet(list(found)).filter(pl.col("game_id").is_in(ids)).collect()
