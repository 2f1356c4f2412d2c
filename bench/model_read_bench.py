"""Benchmark: reading one model's rows of a day of analyses, stored in engine order or clustered by
model (``domain.models.engine.clustered``), at 100,000 models; then one model's analyses over a
season as the API reads them (``api.model_data.model_rows`` over a serving manifest), from day
objects and from the month objects compaction folds them into.

Run: ``.venv/bin/python bench/model_read_bench.py [--models 100000] [--reads 20] [--season-models
2000]``. Figures go to stdout, progress to stderr; about 30 s for the day, 2 minutes for the season.

A day of analyses holds every model: 100,000 models x 14 games x 5 bookmakers = 7 M rows. The API
reads one model's rows of the days it serves on a cache miss (``api/model_data.py``), with the
``model_id`` filter pushed into the Parquet scan. The engine emits rows game by game, so each row
group holds every model and the scan reads the whole object; clustered, a model's rows sit in one
row group and the scan skips the others by their statistics. The baseline is the same frame written
in engine order, in the same run.

The season: :data:`SEASON_DAYS` game days (a regular season, October to April) of ``--season-models``
models x :data:`SEASON_GAMES` games x 5 bookmakers, each day written clustered as the analyses asset
writes it, then compacted month by month by ``Lake.compact_month`` (the ``lake_compaction`` asset's
step). One model's season is read three ways, each the median over ``--reads`` models: from the day
objects a manifest names (the baseline), from the month objects a manifest published after
compaction names, and from a manifest published before compaction once its day objects are gone
(each month object read once for the days it names).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.model_data import Partitions, model_rows
from domain.models.engine import clustered
from stores.lake import SHADOW_GRACE_SECONDS, Lake
from stores.layout import month_of, month_table_key, table_key, table_prefix
from stores.warehouse import partition_manifest

GAMES, BOOKMAKERS = 14, ["draftkings", "fanduel", "betmgm", "caesars", "pointsbetus"]
SPORT, SEASON_GAMES = "basketball_nba", 8
SEASON_DAYS = [dt.date(2024, 10, 22) + dt.timedelta(days=i) for i in range(170)]
SEASON_SCHEMA = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "bookmaker": pl.String(),
    "p": pl.Float64(),
    "qualifies": pl.Boolean(),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def day_of_analyses(models: int, seed: int = 0, games: int = GAMES) -> pl.DataFrame:
    """A day in engine order: game-major, then bookmaker, then model version."""
    rng = np.random.default_rng(seed)
    per_game = models * len(BOOKMAKERS)
    n = per_game * games
    ids = np.array([f"user{i % 9000:04d}--model-{i:06x}" for i in range(models)])
    p = rng.random(n)
    return pl.DataFrame(
        {
            "model_id": np.tile(ids, games * len(BOOKMAKERS)),
            "version": np.ones(n, dtype=np.int32),
            "market": ["spreads"] * n,
            "game_id": np.repeat([f"game-{g:02d}" for g in range(games)], per_game),
            "bookmaker": np.tile(np.repeat(BOOKMAKERS, models), games),
            "line": rng.normal(0, 6, n).round() / 2,
            "p": p,
            "confidence": np.maximum(p, 1 - p),
            "qualifies": p > 0.55,
        }
    ).with_columns(source_scores=pl.concat_list(pl.col("p"), 1 - pl.col("p")))


def write(frame: pl.DataFrame, path: Path) -> tuple[float, int]:
    """Seconds to encode and write ``frame`` as the lake does (zstd, statistics), and its bytes."""
    started = time.perf_counter()
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    path.write_bytes(buf.getvalue())
    return time.perf_counter() - started, path.stat().st_size


def read_ms(path: Path, model_ids: list[str]) -> float:
    """Median milliseconds to read one model's rows, over ``model_ids``."""
    times = []
    for model_id in model_ids:
        started = time.perf_counter()
        rows = pl.scan_parquet(path).filter(pl.col("model_id") == model_id).collect()
        times.append((time.perf_counter() - started) * 1000)
        assert rows.height == GAMES * len(BOOKMAKERS), rows.height
    return statistics.median(times)


def season_read_ms(lake: Lake, parts: Partitions, model_ids: list[str]) -> float:
    """Median milliseconds for the API's read of one model's season over the manifest ``parts``."""
    times = []
    for model_id in model_ids:
        started = time.perf_counter()
        rows = model_rows(lake, parts, model_id, SEASON_SCHEMA)
        times.append((time.perf_counter() - started) * 1000)
        assert rows.height == len(parts.days) * SEASON_GAMES * len(BOOKMAKERS), rows.height
    return statistics.median(times)


def manifest(lake: Lake) -> Partitions:
    """The season's days and objects as a serving snapshot published now names them."""
    found = partition_manifest(lake).filter(pl.col("table_name") == "analyses")
    return Partitions(tuple(found["day"]), tuple(found["key"]))


def season(models: int, reads: int) -> None:
    """One model's season of analyses read from day objects, then from month objects."""
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(root=tmp)
        log(f"writing a season of analyses: {len(SEASON_DAYS)} days x {models:,} models ...")
        for i, day in enumerate(SEASON_DAYS):
            frame = day_of_analyses(models, seed=i, games=SEASON_GAMES).with_columns(game_date=pl.lit(day))
            lake.write_parquet(table_key("analyses", SPORT, day), clustered(frame))
        picks = [f"user{i % 9000:04d}--model-{i:06x}" for i in np.random.default_rng(1).choice(models, reads)]

        def size() -> tuple[int, float]:
            keys = list(lake.list_keys(table_prefix("analyses", SPORT)))
            return len(keys), sum((Path(tmp) / k).stat().st_size for k in keys) / 1e6

        daily = manifest(lake)
        figures = {"day objects (baseline)": (*size(), season_read_ms(lake, daily, picks))}
        log("compacting month by month ...")
        months = sorted({month_table_key("analyses", SPORT, month_of(d)) for d in SEASON_DAYS})
        started = time.perf_counter()
        for month in months:
            lake.compact_month(month, time.time())
        compact_s = time.perf_counter() - started
        later = time.time() + SHADOW_GRACE_SECONDS + 1
        removed = sum(lake.compact_month(month, later)[0] for month in months)
        monthly = manifest(lake)
        figures["month objects"] = (*size(), season_read_ms(lake, monthly, picks))
        figures["old manifest, days gone"] = (*size(), season_read_ms(lake, daily, picks))

    rows = len(SEASON_DAYS) * models * SEASON_GAMES * len(BOOKMAKERS)
    print(
        f"\none model's season of analyses: {len(SEASON_DAYS)} days, {rows:,} rows "
        f"({models:,} models x {SEASON_GAMES} games x 5 bookmakers a day)"
    )
    print(
        f"compaction: {len(months)} month objects written in {compact_s:.1f} s, {removed} day objects removed"
    )
    print(f"{'read over':<26} {'objects':>8} {'MB':>7} {'one model ms':>13}")
    for name, (objects, mb, ms) in figures.items():
        print(f"{name:<26} {objects:>8} {mb:>7.1f} {ms:>13.1f}")
    base, ours = figures["day objects (baseline)"][2], figures["month objects"][2]
    print(f"one model's season: month objects are {base / ours:.1f}x faster than day objects")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=20, help="models read from each object")
    parser.add_argument("--season-models", type=int, default=2000, help="models of the season (0: skip)")
    args = parser.parse_args(argv)

    log(f"building a day of analyses for {args.models:,} models ...")
    day = day_of_analyses(args.models)
    started = time.perf_counter()
    grouped = clustered(day)
    sort_s = time.perf_counter() - started
    picks = day["model_id"].unique().sample(args.reads, seed=1).to_list()
    with tempfile.TemporaryDirectory() as tmp:
        figures = {}
        for name, frame in (("engine order", day), ("clustered", grouped)):
            log(f"writing and reading {name} ...")
            path = Path(tmp) / f"{name.replace(' ', '_')}.parquet"
            write_s, size = write(frame, path)
            figures[name] = (write_s, size, read_ms(path, picks))

    print(f"one day of analyses: {day.height:,} rows ({args.models:,} models x {GAMES} games x 5 bookmakers)")
    print(f"clustering (stable sort by model_id, version): {sort_s:.2f} s")
    print(f"{'layout':<14} {'write s':>8} {'MB':>6} {'one model ms':>13}")
    for name, (write_s, size, ms) in figures.items():
        print(f"{name:<14} {write_s:>8.2f} {size / 1e6:>6.1f} {ms:>13.1f}")
    base, ours = figures["engine order"][2], figures["clustered"][2]
    print(f"one-model read: clustered is {base / ours:.1f}x faster than engine order")
    if args.season_models:
        season(args.season_models, args.reads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
