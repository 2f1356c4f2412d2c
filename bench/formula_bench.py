"""Benchmark: a custom formula over 100,000 rows, compiled to polars vs. asteval row by row.

Run: ``python bench/formula_bench.py``. For each formula it prints the median seconds of the bulk
path (:func:`services.sandbox.evaluate_rows_compiled`: check, compile, evaluate) and of the same
configured asteval interpreter the workers hold, run in-process row by row (the evaluator alone,
no worker round-trip), and their ratio (target: at least 100x). Then the per-row cost of the real
sandbox (each evaluation sent to a worker process, with its budgets) on a 1,000-row sample. Every
row's two values are compared: the run fails if they are not the same double.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import polars as pl

from domain.datasets.formula import check_formula
from services.sandbox import (
    default_pool,
    evaluate_checked,
    evaluate_rows_compiled,
    make_interpreter,
    try_evaluate_row,
)

FORMULAS = {
    "seed": "(temperature - 32) * 0.01 + (wind_speed / 20)",
    "rich": (
        "clip((temperature - 32) / 68, 0, 1) * 0.6 + (rest_days >= 2) * 0.3"
        " + log(1 + wind_speed) / 10 - sqrt(travel_km) / 100 + round(altitude_m / 1000, 1) * 0.05"
    ),
}
RUNS = 5
T = TypeVar("T")


def make_frame(rows: int, seed: int = 11) -> pl.DataFrame:
    """Game-level weather and travel values, 1% empty cells per field."""
    rng = np.random.default_rng(seed)
    columns = {
        "temperature": rng.normal(60, 15, rows).round(1),
        "wind_speed": rng.gamma(2.0, 5.0, rows).round(1),
        "rest_days": rng.integers(0, 5, rows).astype(float),
        "travel_km": rng.uniform(0, 4500, rows).round(0),
        "altitude_m": rng.choice([10.0, 200.0, 1600.0], rows),
    }
    for values in columns.values():
        values[rng.random(rows) < 0.01] = np.nan
    return pl.DataFrame(columns).with_columns(pl.all().fill_nan(None))


def timed(run: Callable[[], T]) -> tuple[T, float, float]:
    """The result, wall-clock and CPU seconds (CPU of all threads is steadier on a shared machine)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - start, time.process_time() - start_cpu


def same(left: float | None, right: float | None) -> bool:
    if left is None or right is None:
        return left is None and right is None
    return left == right


def bench(name: str, expr: str, frame: pl.DataFrame, sample: int) -> None:
    rows = frame.to_dicts()
    interpreter = make_interpreter()
    checked = check_formula(expr, frame.columns)
    runs = [timed(lambda: evaluate_rows_compiled(expr, frame)) for _ in range(RUNS)]
    vectorised = runs[0][0].to_list()
    compiled_wall, compiled_cpu = (statistics.median(r[i] for r in runs) for i in (1, 2))
    # one run: it takes seconds
    single, asteval_wall, asteval_cpu = timed(
        lambda: [evaluate_checked(interpreter, checked, r).value for r in rows]
    )
    mismatches = sum(not same(a, b) for a, b in zip(single, vectorised, strict=True))
    if mismatches:
        raise SystemExit(f"{name}: {mismatches} rows differ between asteval and polars")
    _, worker_wall, _ = timed(lambda: [try_evaluate_row(expr, row) for row in rows[:sample]])

    print(f"{name}: {expr}")
    print(f"  {'':34} {'wall s':>9} {'CPU s':>9}")
    print(f"  {f'polars, compiled, {len(rows):,} rows':34} {compiled_wall:9.4f} {compiled_cpu:9.4f}")
    print(f"  {'asteval in-process, row by row':34} {asteval_wall:9.4f} {asteval_cpu:9.4f}")
    print(
        f"  speed-up {asteval_wall / compiled_wall:.0f}x wall, {asteval_cpu / compiled_cpu:.0f}x CPU "
        f"(target >= 100x); asteval {asteval_cpu / len(rows) * 1e6:.0f} us/row CPU"
    )
    per_row = worker_wall / sample * 1e6
    print(f"  sandbox worker, {sample:,} rows: {per_row:.0f} us/row wall (check, pipe, asteval)")
    missing = sum(v is None for v in vectorised)
    print(f"  rows compared: {len(rows):,}, missing scores: {missing:,}, mismatches: 0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=1_000, help="rows sent through the sandbox workers")
    args = parser.parse_args()
    frame = make_frame(args.rows)
    try_evaluate_row("1", {})  # start the worker pool outside the timings
    for name, expr in FORMULAS.items():
        bench(name, expr, frame, args.sample)
    default_pool().close()


if __name__ == "__main__":  # workers start through a forkserver, which re-imports this module
    main()
