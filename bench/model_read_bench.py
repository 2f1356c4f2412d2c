"""Benchmark: reading one model's rows of a day of analyses, stored in engine order or clustered by
model (``domain.models.engine.clustered``), at 100,000 models.

Run: ``.venv/bin/python bench/model_read_bench.py [--models 100000] [--reads 20]``. Figures go to
stdout, progress to stderr; about 30 s.

A day of analyses holds every model: 100,000 models x 14 games x 5 bookmakers = 7 M rows. The API
reads one model's rows of the days it serves on a cache miss (``api/model_data.py``), with the
``model_id`` filter pushed into the Parquet scan. The engine emits rows game by game, so each row
group holds every model and the scan reads the whole object; clustered, a model's rows sit in one
row group and the scan skips the others by their statistics. The baseline is the same frame written
in engine order, in the same run.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.models.engine import clustered

GAMES, BOOKMAKERS = 14, ["draftkings", "fanduel", "betmgm", "caesars", "pointsbetus"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def day_of_analyses(models: int, seed: int = 0) -> pl.DataFrame:
    """A day in engine order: game-major, then bookmaker, then model version."""
    rng = np.random.default_rng(seed)
    per_game = models * len(BOOKMAKERS)
    n = per_game * GAMES
    ids = np.array([f"user{i % 9000:04d}--model-{i:06x}" for i in range(models)])
    p = rng.random(n)
    return pl.DataFrame(
        {
            "model_id": np.tile(ids, GAMES * len(BOOKMAKERS)),
            "version": np.ones(n, dtype=np.int32),
            "market": ["spreads"] * n,
            "game_id": np.repeat([f"game-{g:02d}" for g in range(GAMES)], per_game),
            "bookmaker": np.tile(np.repeat(BOOKMAKERS, models), GAMES),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=20, help="models read from each object")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
