"""Benchmark: reading a full-size dataset (100,000 rows x 50 fields) vs. reading, validating and scoring it.

Run: ``python bench/dataset_bench.py``. Prints the median of a few runs of polars merely reading the
CSV bytes (``pl.read_csv``) and of the upload fast path in steps: ``read_dataset`` (every guard),
then ``quality_report``, then pandera ``validate``; each with its ratio to the plain read (target:
within 3x). Then one great-expectations run, for information (it is not on the upload path).
"""

from __future__ import annotations

import datetime as dt
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from domain.datasets.files import read_dataset
from domain.datasets.validation import quality_report, typed_rows, validate
from services.dataset_quality import validate_with_ge

ROWS = 100_000
VALUE_FIELDS = 48  # + game_id + date = 50 fields
RUNS = 5


def make_csv(rows: int = ROWS, seed: int = 7) -> bytes:
    """A game-level dataset at the upload limits: NBA-season dates, normal values, a few empty cells."""
    rng = np.random.default_rng(seed)
    days = np.datetime64("2023-10-24") + rng.integers(0, 170, rows).astype("timedelta64[D]")
    columns: dict[str, object] = {
        "game_id": [f"nba_g{i:06d}" for i in range(rows)],
        "date": days.astype(str),
    }
    for j in range(VALUE_FIELDS):
        values = rng.normal(50, 10, rows).round(3)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"field_{j:02d}"] = values
    frame = pl.DataFrame(columns).with_columns(pl.col(pl.Float64).fill_nan(None))
    return frame.write_csv().encode()


def median_seconds(run: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    """Median wall-clock and CPU seconds (CPU time of all threads is steadier on a shared machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def read_and_score(data: bytes) -> None:
    parsed = read_dataset(data, "bench.csv")
    quality_report(parsed.frame, parsed.schema, "basketball_nba", "game_level", dt.date(2024, 6, 30))


def read_validate_and_score(data: bytes) -> None:
    parsed = read_dataset(data, "bench.csv")
    validate(parsed.frame, parsed.schema, "game_level")
    quality_report(parsed.frame, parsed.schema, "basketball_nba", "game_level", dt.date(2024, 6, 30))


def main() -> None:
    data = make_csv()
    size = f"{ROWS:,} rows x {VALUE_FIELDS + 2} fields, {len(data) / 1e6:.1f} MB CSV"
    print(f"dataset: {size}; median of {RUNS} runs")
    base_wall, base_cpu = median_seconds(lambda: pl.read_csv(io.BytesIO(data)))
    print(f"{'':50s}{'wall ms':>9s}{'cpu ms':>9s}{'ratio (wall/cpu)':>19s}")
    for label, run in [
        ("polars read_csv only", lambda: pl.read_csv(io.BytesIO(data))),
        ("read_dataset (every guard, schema inference)", lambda: read_dataset(data, "bench.csv")),
        ("read_dataset + quality_report", lambda: read_and_score(data)),
        ("read_dataset + pandera validate + quality_report", lambda: read_validate_and_score(data)),
    ]:
        wall, cpu = median_seconds(run)
        print(
            f"{label:50s}{wall * 1000:9.0f}{cpu * 1000:9.0f}{wall / base_wall:10.2f}x /{cpu / base_cpu:5.2f}x"
        )
    parsed = read_dataset(data, "bench.csv")
    rows = typed_rows(parsed.frame, parsed.schema)  # as the pipeline stores the version
    start = time.perf_counter()
    validate_with_ge(rows, parsed.schema, "basketball_nba", "game_level", dt.date(2024, 6, 30))
    print(f"great-expectations suite + Data Docs, once (information): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
