"""Benchmark: the scoring engine against the seed's scalar loop and a numpy lower bound (SPEC 4, 5).

Run: ``.venv/bin/python bench/engine_bench.py [--models N] [--quick]``. Figures go to stdout,
progress to stderr. The league is the embedded sample season (``domain.formats.sample_league``); the models
are N random valid configs (default 100,000: every source kind, random fields, lookbacks, markets,
thresholds, custom sources with dataset scores, dynamic weighting with multipliers on some). The
day scored is the season's busiest. In one run, each measurement in a fresh subprocess (so that its
peak RSS is its own):

(a) ``score_day`` of every model on every game and bookmaker of the day: cold (first call, builds
    the indexes) and warm (best of a few), rows/s, peak RSS above the process's RSS before the call;
(b) the scalar reference (``domain/models/engine/reference.py``, the seed's loop) on random (model, game,
    bookmaker) triples of the same models for a time budget, checked against the engine to 1e-9
    and extrapolated per analysis: the speed-up (target >= 100x);
(c) the numpy lower bound: per sport and market, the weighted sum as ONE sparse matrix product
    ``W @ [S | present(S)]`` over the precomputed distinct-source scores ``S`` (models x distinct
    sources weights, distinct sources x lines scores), renormalised by the weight mass of the
    sources that are not missing: engine / bound (target within 3x, issue 14);
(d) a backtest over ``--seasons`` seasons (default 5: the sample season and the four before it,
    other seeds, dates a year apart) of the first ``--backtest-models`` configs (default 100), with
    dynamic weighting fed by the backtest's own analyses.

Verdicts use CPU seconds (every thread counted): on a shared machine wall-clock time mostly measures
the other jobs. ``scipy`` (installed with great-expectations) provides the sparse product.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.formats.sample_league import SEASON_END, SEASON_START, generate_season
from domain.models.catalogue import fields_of
from domain.models.config import parse_model_config
from domain.models.engine import (
    ModelBatch,
    SourceMatrix,
    Tables,
    run_backtest,
    score_day,
    score_day_explained,
    source_matrices,
)
from domain.models.engine.reference import ReferenceData, reference_analysis
from domain.models.engine.scoring import weighed_blocks

SPORT = "basketball_nba"
SEED = 2026
TARGET_SPEED_UP = 100.0
TARGET_BOUND_RATIO = 3.0
TOLERANCE = 1e-9
BOUND_REPEATS = 10
"""The bound takes a tenth of a second: it is run more often than the engine, best kept."""

MARKETS = ("spreads", "totals", "h2h")
MARKET_SHARE = (0.5, 0.25, 0.25)
SOURCE_SHARE = {
    "team_stats": 0.75,
    "player_stats": 0.4,
    "odds_movement": 0.5,
    "historical_performance": 0.35,
    "custom": 0.2,
}
"""Share of models that configure each source kind (a model gets at least one)."""
CUSTOM_NAMES = ("elo_rating", "injury_index", "travel_fatigue", "sharp_money")
ROUND_LOOKBACKS = (5, 10, 15, 20, 30)
WEIGHTS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)
MIN_CONFIDENCE = (0.5, 0.52, 0.55, 0.58, 0.6)
MAX_CONFIDENCE = (0.75, 0.85, 1.0)


def log(message: str) -> None:
    print(f"[engine-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- inputs --------------------------------------------------------------------------------------


def league(seasons: int = 1) -> Tables:
    """The sample league as engine tables: the default season, or ``seasons`` seasons ending with it
    (other seeds, dates shifted by whole years, so game ids stay distinct)."""
    parts = []
    for back in range(seasons - 1, -1, -1):
        start = SEASON_START.replace(year=SEASON_START.year - back)
        end = SEASON_END.replace(year=SEASON_END.year - back)
        parts.append(generate_season(7 + back, start, end))
    return Tables(
        games=pl.concat([s.game_results for s in parts]),
        team_box=pl.concat([s.team_box for s in parts]),
        player_box=pl.concat([s.player_box for s in parts]),
        snapshots=pl.concat([s.odds_snapshots for s in parts]),
    )


def busiest_day(tables: Tables) -> dt.date:
    """The day with the most games (the earliest of equals)."""
    counts = tables.games.group_by("game_date").len().sort(["len", "game_date"], descending=[True, False])
    return counts["game_date"][0]


def random_payloads(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``n`` valid config payloads; draws are vectorised, only the dicts are assembled in a loop."""
    rng = np.random.default_rng(seed)
    team_fields = np.array(sorted(fields_of(SPORT, "team")))
    player_fields = np.array(sorted(fields_of(SPORT, "player")))
    kinds = list(SOURCE_SHARE)
    has = rng.random((n, len(kinds))) < np.array(list(SOURCE_SHARE.values()))
    has[~has.any(axis=1), 0] = True
    enabled = rng.random((n, len(kinds))) >= 0.05
    enabled[~(has & enabled).any(axis=1)] = True  # at least one configured source stays enabled
    weight = rng.choice(WEIGHTS, (n, len(kinds)))
    override = rng.random((n, len(kinds))) < 0.1
    override_value = rng.random((n, len(kinds))) < 0.5
    lookback = np.where(
        rng.random((n, 2)) < 0.8, rng.choice(ROUND_LOOKBACKS, (n, 2)), rng.integers(1, 83, (n, 2))
    )
    team_pick = np.argsort(rng.random((n, len(team_fields))), axis=1)[:, :4]
    player_pick = np.argsort(rng.random((n, len(player_fields))), axis=1)[:, :3]
    n_team, n_player = rng.integers(1, 5, n), rng.integers(1, 4, n)
    min_minutes = rng.choice([10.0, 15.0, 20.0, 24.5, 30.0], n)
    window = rng.choice([3, 6, 12, 24, 48, 72, 168], n)
    lookback_days = rng.choice([7, 14, 30, 60, 90], n)
    custom = rng.integers(0, len(CUSTOM_NAMES), n)
    transformation = rng.choice(["linear", "threshold", "percentile"], n)
    market = rng.choice(MARKETS, n, p=MARKET_SHARE)
    dynamic = rng.random(n) < 0.25
    low = rng.choice(MIN_CONFIDENCE, n)
    high = rng.choice(MAX_CONFIDENCE, n)
    version = rng.integers(1, 4, n)
    payloads = []
    for m in range(n):
        params = {
            "team_stats": {
                "fields": team_fields[team_pick[m, : n_team[m]]].tolist(),
                "lookback_games": int(lookback[m, 0]),
            },
            "player_stats": {
                "fields": player_fields[player_pick[m, : n_player[m]]].tolist(),
                "lookback_games": int(lookback[m, 1]),
                "min_minutes": float(min_minutes[m]),
            },
            "odds_movement": {"time_window_hours": int(window[m])},
            "historical_performance": {"lookback_days": int(lookback_days[m])},
            "custom": {
                "dataset_id": f"ds_{CUSTOM_NAMES[custom[m]]}",
                "field": "value",
                "transformation": str(transformation[m]),
                **({"min_value": 0.0, "max_value": 100.0} if transformation[m] == "linear" else {}),
                **({"threshold": 50.0} if transformation[m] == "threshold" else {}),
            },
        }
        sources = {}
        for j, kind in enumerate(kinds):
            if not has[m, j]:
                continue
            source = {"weight": float(weight[m, j]), "enabled": bool(enabled[m, j]), **params[kind]}
            if override[m, j]:
                source["dynamic_weighting"] = bool(override_value[m, j])
            sources[CUSTOM_NAMES[custom[m]] if kind == "custom" else kind] = source
        payloads.append(
            {
                "model_id": f"bench_{m:06d}",
                "name": f"bench model {m}",
                "creator_user_id": f"user_{m % 5000:04d}",
                "version": int(version[m]),
                "sport": SPORT,
                "market": str(market[m]),
                "data_sources": sources,
                "dynamic_weighting": bool(dynamic[m]),
                "min_confidence": float(low[m]),
                "max_confidence": float(high[m]),
            }
        )
    return payloads


def custom_sources(payloads: list[dict[str, Any]]) -> pl.DataFrame:
    """(model_id, version, source_name) of every custom source."""
    rows = [
        (p["model_id"], p["version"], name)
        for p in payloads
        for name in p["data_sources"]
        if name in CUSTOM_NAMES
    ]
    return pl.DataFrame(
        rows, schema={"model_id": pl.String, "version": pl.Int32, "source_name": pl.String}, orient="row"
    )


def custom_scores(payloads: list[dict[str, Any]], game_ids: pl.Series, seed: int = SEED) -> pl.DataFrame:
    """A score in [0, 1] per custom source and game, 5% missing (what the datasets stage delivers)."""
    rng = np.random.default_rng(seed + 1)
    frame = custom_sources(payloads).join(game_ids.rename("game_id").to_frame(), how="cross")
    score = rng.random(frame.height)
    score[rng.random(frame.height) < 0.05] = np.nan
    return frame.with_columns(pl.Series("score", score).fill_nan(None))


def multipliers(payloads: list[dict[str, Any]], seed: int = SEED) -> pl.DataFrame:
    """A dynamic-weighting multiplier in [0.5, 1.5] for every source of every model that has one."""
    keys = [
        (p["model_id"], p["version"], name)
        for p in payloads
        for name, source in p["data_sources"].items()
        if source.get("dynamic_weighting", p["dynamic_weighting"])
    ]
    rng = np.random.default_rng(seed + 2)
    frame = pl.DataFrame(
        keys, schema={"model_id": pl.String, "version": pl.Int32, "source_name": pl.String}, orient="row"
    )
    return frame.with_columns(pl.Series("multiplier", rng.uniform(0.5, 1.5, frame.height)))


# ---- measuring -----------------------------------------------------------------------------------


def timed(run: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """``run(*args)``, its wall-clock and CPU seconds (CPU of all threads: steadier on a shared
    machine)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    out = run(*args)
    return out, time.perf_counter() - start, time.process_time() - start_cpu


def _status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


class PeakRss:
    """Peak resident memory of this process from now on, and the resident memory now.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``) so that the setup's own peak
    does not hide the measured step's; falls back to ``ru_maxrss`` where that is not allowed."""

    def __init__(self) -> None:
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.base_mb = _status_kb("VmRSS") / 1024

    def figures(self) -> dict[str, float]:
        peak_kb = _status_kb("VmHWM") if self.reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rss_before_mb": self.base_mb, "peak_rss_mb": peak_kb / 1024}


# ---- the measurements, one per subprocess --------------------------------------------------------


def warm_runs(repeats: int, name: str, run: Callable[[], Any]) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeats`` calls of ``run``, each result dropped before the next."""
    walls, cpus = [], []
    for i in range(repeats):
        gc.collect()
        _, wall, cpu = timed(run)
        walls.append(wall)
        cpus.append(cpu)
        log(f"{name}: warm run {i + 1}/{repeats}: {wall:.2f} s")
    return walls, cpus


def measure_score_day(args: argparse.Namespace) -> dict[str, Any]:
    tables = league()
    day = busiest_day(tables)
    payloads = random_payloads(args.models)
    games = tables.games.filter(pl.col("game_date") == day)
    custom = custom_scores(payloads, games["game_id"])
    mult = multipliers(payloads)
    log(f"score_day: {args.models:,} configs built; preparing the batch")
    batch, batch_wall, _ = timed(ModelBatch.from_payloads, payloads)
    del payloads
    peak = PeakRss()
    out, cold_wall, cold_cpu = timed(score_day, batch, tables, day, None, mult, custom)
    memory = peak.figures()
    rows, result_mb = out.height, out.estimated_size() / 1e6
    del out
    log(f"score_day: cold {cold_wall:.2f} s, {rows:,} rows")
    walls, cpus = warm_runs(
        args.repeats, "score_day", lambda: score_day(batch, tables, day, None, mult, custom)
    )
    matrices, sources_wall, sources_cpu = timed(source_matrices, batch, tables, day, None, mult, custom)
    gc.collect()
    _, weigh_wall, weigh_cpu = timed(weigh_only, batch, matrices)
    del matrices
    explained = score_day_explained(batch, tables, day, None, mult, custom)
    explanation_rows = (explained.source_scores.height, explained.weights.height)
    explanation_mb = (explained.source_scores.estimated_size() + explained.weights.estimated_size()) / 1e6
    del explained
    explained_walls, explained_cpus = warm_runs(
        args.repeats,
        "score_day_explained",
        lambda: score_day_explained(batch, tables, day, None, mult, custom),
    )
    explained_wall, explained_cpu = min(explained_walls), min(explained_cpus)
    day_snapshots = tables.snapshots.filter(pl.col("game_id").is_in(games["game_id"].implode()))
    return {
        "day": day.isoformat(),
        "games": games.height,
        "bookmakers": day_snapshots["bookmaker"].n_unique(),
        "models": len(batch),
        "rows": rows,
        "batch_s": batch_wall,
        "cold_wall_s": cold_wall,
        "cold_cpu_s": cold_cpu,
        "warm_wall_s": min(walls),
        "warm_wall_median_s": statistics.median(walls),
        "warm_cpu_s": min(cpus),
        "sources_wall_s": sources_wall,
        "sources_cpu_s": sources_cpu,
        "weigh_wall_s": weigh_wall,
        "weigh_cpu_s": weigh_cpu,
        "explained_wall_s": explained_wall,
        "explained_cpu_s": explained_cpu,
        "source_score_rows": explanation_rows[0],
        "weight_rows": explanation_rows[1],
        "explanation_mb": explanation_mb,
        "result_mb": result_mb,
        **memory,
    }


def weigh_only(batch: ModelBatch, matrices: list[SourceMatrix]) -> None:
    """The engine's weighting of every model on every line (p, confidence, qualifies), each block
    dropped once weighed: ``score_day`` without building rows."""
    for matrix in matrices:
        for _ in weighed_blocks(batch, matrix):
            pass


def bound_inputs(matrix: SourceMatrix) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The bound's precomputed inputs: the models x distinct sources weight matrix ``W`` and the
    distinct sources x (lines + lines) matrix ``[S with missing as 0 | 1 where S is not missing]``."""
    taken = matrix.sources >= 0
    scores = matrix.scores.T  # distinct source x line
    weights = scipy.sparse.csr_matrix(
        (matrix.weights[taken], matrix.sources[taken], np.concatenate([[0], np.cumsum(taken.sum(axis=1))])),
        shape=(len(matrix.group), len(scores)),
    )
    present = ~np.isnan(scores)
    return weights, np.hstack([np.where(present, scores, 0.0), present.astype(np.float64)])


def weighted_sum_bound(inputs: list[tuple[scipy.sparse.csr_matrix, np.ndarray]]) -> list[np.ndarray]:
    """p of every model on every line (NaN: no analysis), per market by ONE sparse product
    renormalised by the weight mass of the sources that are not missing."""
    out = []
    for weights, stacked in inputs:
        sums = weights @ stacked
        n_lines = stacked.shape[1] // 2
        mass = sums[:, n_lines:]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(mass > 0, sums[:, :n_lines] / mass, np.nan))
    return out


def measure_bound(args: argparse.Namespace) -> dict[str, Any]:
    tables = league()
    day = busiest_day(tables)
    payloads = random_payloads(args.models)
    custom = custom_scores(payloads, tables.games.filter(pl.col("game_date") == day)["game_id"])
    mult = multipliers(payloads)
    batch = ModelBatch.from_payloads(payloads)
    del payloads
    matrices = source_matrices(batch, tables, day, None, mult, custom)
    inputs = [bound_inputs(m) for m in matrices]
    peak = PeakRss()
    walls, cpus = [], []
    for _ in range(BOUND_REPEATS):
        ps, wall, cpu = timed(weighted_sum_bound, inputs)
        walls.append(wall)
        cpus.append(cpu)
    memory = peak.figures()
    # The bound must compute what the engine computes: the same p on every line of every model.
    got = np.concatenate([p.ravel() for p in ps])
    got = np.sort(got[~np.isnan(got)])
    want = np.sort(score_day(batch, tables, day, None, mult, custom)["p"].to_numpy())
    return {
        "bound_wall_s": min(walls),
        "bound_cpu_s": min(cpus),
        "distinct_sources": sum(m.scores.shape[1] for m in matrices),
        "nonzero_weights": sum(w.nnz for w, _ in inputs),
        "bound_agrees": len(got) == len(want) and bool(np.abs(got - want).max() <= TOLERANCE),
        **memory,
    }


def measure_reference(args: argparse.Namespace) -> dict[str, Any]:
    tables = league()
    day = busiest_day(tables)
    payloads = random_payloads(args.models)
    rng = np.random.default_rng(SEED + 3)
    checked = rng.choice(len(payloads), min(args.validate, len(payloads)), replace=False)
    _, validate_wall, _ = timed(lambda: [parse_model_config(payloads[i]) for i in checked])
    sample = [payloads[i] for i in rng.choice(len(payloads), min(200, len(payloads)), replace=False)]
    games = tables.games.filter(pl.col("game_date") == day)["game_id"]
    custom = custom_scores(sample, games)
    mult = multipliers(sample)
    engine = score_day(ModelBatch.from_payloads(sample), tables, day, None, mult, custom)
    engine_p = {
        (model, game, book): p
        for model, game, book, p in engine.select("model_id", "game_id", "bookmaker", "p").iter_rows()
    }
    custom_of: dict[str, dict[tuple[str, str], float | None]] = {}
    for model, _, name, game, score in custom.iter_rows():
        custom_of.setdefault(model, {})[(name, game)] = score
    multipliers_of: dict[str, dict[str, float]] = {}
    for model, _, name, value in mult.iter_rows():
        multipliers_of.setdefault(model, {})[name] = value
    data = ReferenceData.from_tables(tables, SPORT)
    books = sorted(tables.snapshots.filter(pl.col("game_date") == day)["bookmaker"].unique())
    configs = [parse_model_config(p) for p in sample]
    triples = [(c, g, b) for c in configs for g in games for b in books]
    calls = analyses = mismatched = 0
    seconds = cpu_seconds = worst = 0.0
    for t in rng.permutation(len(triples)):
        config, game, book = triples[t]
        mult_of, custom_scores_of = (
            multipliers_of.get(config.model_id, {}),
            custom_of.get(config.model_id, {}),
        )
        ref, wall, cpu = timed(reference_analysis, config, data, game, book, None, mult_of, custom_scores_of)
        seconds += wall
        cpu_seconds += cpu
        calls += 1
        got = engine_p.get((config.model_id, game, book))
        if ref is not None:
            analyses += 1
        if (ref is None) != (got is None):
            mismatched += 1
        elif ref is not None and got is not None:
            worst = max(worst, abs(got - ref["p"]))
        if seconds >= args.reference_seconds and analyses >= 10:
            break
    log(f"reference: {calls} calls ({analyses} analyses) in {seconds:.1f} s")
    return {
        "validated_configs": len(checked),
        "validate_s": validate_wall,
        "reference_calls": calls,
        "reference_analyses": analyses,
        "reference_s": seconds,
        "reference_per_call_s": seconds / calls,
        "reference_per_call_cpu_s": cpu_seconds / calls,
        "max_abs_dp": worst,
        "mismatched": mismatched,
    }


def measure_backtest(args: argparse.Namespace) -> dict[str, Any]:
    tables = league(args.seasons)
    payloads = random_payloads(args.models)[: args.backtest_models]
    custom = custom_scores(payloads, tables.games["game_id"])
    batch = ModelBatch.from_payloads(payloads)
    start, end = tables.games["game_date"].min(), tables.games["game_date"].max()
    began = time.perf_counter()
    days: list[int] = []

    def progress(day: dt.date, done: int, total: int) -> None:
        days[:] = [total]
        if done % 100 == 0 or done == total:
            log(f"backtest: {day} ({done}/{total} days, {time.perf_counter() - began:.0f} s)")

    peak = PeakRss()
    result, wall, cpu = timed(
        lambda: run_backtest(batch, tables, start, end, custom, progress=progress, keep_analyses=False)
    )
    return {
        "backtest_models": len(batch),
        "seasons": args.seasons,
        "first_day": start.isoformat(),
        "last_day": end.isoformat(),
        "backtest_games": tables.games.height,
        "days": days[0],
        "backtest_analyses": int(result.summary["analyses"].sum()),
        "backtest_wall_s": wall,
        "backtest_cpu_s": cpu,
        "dynamic_models": int(batch.dynamic.any(axis=1).sum()),
        **peak.figures(),
    }


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "score_day": measure_score_day,
    "reference": measure_reference,
    "bound": measure_bound,
    "backtest": measure_backtest,
}
OPTIONS = ("models", "backtest_models", "seasons", "repeats", "reference_seconds", "validate")


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its last stdout line is the JSON result."""
    log(f"{name}: starting in a fresh process")
    options = [part for key in OPTIONS for part in (f"--{key.replace('_', '-')}", str(getattr(args, key)))]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, *options], stdout=subprocess.PIPE, text=True, check=True
    )
    log(f"{name}: done in {time.perf_counter() - started:.0f} s, setup included")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- report --------------------------------------------------------------------------------------


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    memory_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return (
        f"{os.cpu_count()} cores ({cpu or platform.processor()}), {memory_kb / 1024**2:.0f} GB RAM, "
        f"Python {platform.python_version()}, numpy {np.__version__}, polars {pl.__version__}"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(args: argparse.Namespace, r: dict[str, dict[str, Any]], loads: list[tuple[float, ...]]) -> None:
    s, b, ref, bt = r["score_day"], r["bound"], r["reference"], r["backtest"]
    nominal = s["models"] * s["games"] * s["bookmakers"]
    # Verdicts use CPU seconds: on a shared machine a starved process's wall clock says little, and
    # CPU time counts every polars thread, so the engine is not flattered.
    per_row, per_row_cpu = s["warm_wall_s"] / s["rows"], s["warm_cpu_s"] / s["rows"]
    speed_up = ref["reference_per_call_cpu_s"] / per_row_cpu
    speed_up_wall = ref["reference_per_call_s"] / per_row
    reference_ok = ref["mismatched"] == 0 and ref["max_abs_dp"] <= TOLERANCE
    ratio_wall, ratio_cpu = s["warm_wall_s"] / b["bound_wall_s"], s["warm_cpu_s"] / b["bound_cpu_s"]
    bound_ok = ratio_cpu <= TARGET_BOUND_RATIO and b["bound_agrees"]
    peak = {
        name: r[name]["peak_rss_mb"] - r[name]["rss_before_mb"] for name in ("score_day", "bound", "backtest")
    }
    load = ", ".join("/".join(f"{x:.2f}" for x in la) for la in loads)
    print(f"machine: {machine()}")
    print(f"load average (1/5/15 min) at start, end: {load}")
    print(
        f"day {s['day']}: {s['games']} games x {s['bookmakers']} bookmakers x {s['models']:,} model "
        f"versions = {nominal:,} possible analyses; {s['rows']:,} rows ({s['result_mb']:,.0f} MB)"
    )
    print(
        f"configs: {ref['validated_configs']:,} random ones validated with parse_model_config "
        f"({ref['validate_s']:.2f} s); ModelBatch.from_payloads of all: {s['batch_s']:.1f} s"
    )
    rows = [
        ("(a) score_day cold (first call, builds indexes)", s["cold_wall_s"], s["cold_cpu_s"],
         f"{s['rows'] / s['cold_wall_s'] / 1e6:.1f} M rows/s"),
        (f"(a) score_day warm (best of {args.repeats})", s["warm_wall_s"], s["warm_cpu_s"],
         f"{s['rows'] / s['warm_wall_s'] / 1e6:.1f} M rows/s; median {s['warm_wall_median_s']:.2f} s"),
        ("    of which source_matrices (distinct sources)", s["sources_wall_s"], s["sources_cpu_s"],
         "the rest is weighting and the output frame"),
        ("    of which weighting (no rows built)", s["weigh_wall_s"], s["weigh_cpu_s"],
         "p, confidence and qualifies of every model on every line"),
        (f"(a) score_day_explained (+ tables), best of {args.repeats}", s["explained_wall_s"],
         s["explained_cpu_s"],
         f"{s['source_score_rows']:,} source scores, {s['weight_rows']:,} weights "
         f"({s['explanation_mb']:,.0f} MB): what the pipeline stores"),
        ("(a) score_day peak RSS, MB above RSS before", peak["score_day"], None,
         f"{s['rss_before_mb']:,.0f} MB before the call"),
        ("(b) scalar reference, seconds per analysis", ref["reference_per_call_s"],
         ref["reference_per_call_cpu_s"],
         f"{ref['reference_calls']} calls; max |dp| vs engine {ref['max_abs_dp']:.1e}, "
         f"{ref['mismatched']} mismatched"),
        ("(b) reference extrapolated to the day, days", ref["reference_per_call_s"] * s["rows"] / 86400,
         ref["reference_per_call_cpu_s"] * s["rows"] / 86400,
         f"engine: {per_row * 1e9:.0f} ns ({per_row_cpu * 1e9:.0f} ns cpu) per analysis"),
        ("(c) numpy bound, one sparse product per market", b["bound_wall_s"], b["bound_cpu_s"],
         f"{b['distinct_sources']:,} distinct sources, {b['nonzero_weights']:,} weights; "
         f"same p as the engine: {b['bound_agrees']}"),
        ("(c) bound peak RSS, MB above RSS before", peak["bound"], None, ""),
        (f"(d) backtest, {bt['seasons']} seasons x {bt['backtest_models']:,} models", bt["backtest_wall_s"],
         bt["backtest_cpu_s"], f"{bt['days']} days {bt['first_day']}..{bt['last_day']}, "
         f"{bt['days'] / bt['backtest_wall_s']:.1f} days/s, {bt['backtest_analyses']:,} analyses"),
        ("(d) backtest peak RSS, MB above RSS before", peak["backtest"], None,
         f"{bt['dynamic_models']} models with dynamic weighting"),
    ]  # fmt: skip
    print()
    print(f"{'measurement':50s}{'wall s':>10s}{'cpu s':>9s}  notes")
    for label, wall, cpu, note in rows:
        print(f"{label:50s}{wall:10.3f}{'' if cpu is None else f'{cpu:9.3f}':>9s}  {note}")
    print()
    print(
        f"speed-up vs scalar reference: {speed_up:,.0f}x cpu, {speed_up_wall:,.0f}x wall "
        f"(target >= {TARGET_SPEED_UP:.0f}x): {verdict(speed_up >= TARGET_SPEED_UP and reference_ok)}"
    )
    print(
        f"engine / numpy bound: {ratio_cpu:.1f}x cpu, {ratio_wall:.1f}x wall "
        f"(target <= {TARGET_BOUND_RATIO:.0f}x): {verdict(bound_ok)}"
    )
    arithmetic = (s["sources_cpu_s"] + s["weigh_cpu_s"]) / b["bound_cpu_s"]
    print(
        f"engine arithmetic (distinct sources scored + weighting, no rows) / numpy bound: {arithmetic:.1f}x "
        f"cpu; building the {s['result_mb']:,.0f} MB of rows is the rest (the bound writes p only)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000, help="model versions scored (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="a short run: 10,000 models, small budgets")
    parser.add_argument("--backtest-models", type=int, help="models in the backtest (default 100)")
    parser.add_argument("--seasons", type=int, help="seasons in the backtest (default 5)")
    parser.add_argument("--repeats", type=int, help="warm score_day runs (the best is kept)")
    parser.add_argument("--reference-seconds", type=float, help="time budget of the scalar reference")
    parser.add_argument("--validate", type=int, help="random configs checked with parse_model_config")
    parser.add_argument("--child", choices=list(MEASUREMENTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick and args.models == parser.get_default("models"):
        args.models = 10_000
    defaults = (
        {"backtest_models": 100, "seasons": 1, "repeats": 2, "reference_seconds": 5.0, "validate": 1_000}
        if args.quick
        else {
            "backtest_models": 100,
            "seasons": 5,
            "repeats": 3,
            "reference_seconds": 20.0,
            "validate": 10_000,
        }
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.child:
        print(json.dumps(MEASUREMENTS[args.child](args)))
        return
    started, loads = time.perf_counter(), [os.getloadavg()]
    results = {name: run_child(name, args) for name in MEASUREMENTS}
    loads.append(os.getloadavg())
    report(args, results, loads)
    log(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
