"""Benchmark: backtests in one pass (issue 14), each figure beside its day-by-day baseline.

Run: ``.venv/bin/python bench/backtest_bench.py [--lake DIR] [--real DIR] [--models N] [--seasons N]``.
Figures go to stdout, progress to stderr. Each measurement runs in a fresh subprocess (its peak RSS
is its own); verdicts use CPU seconds (every thread counted), as on a shared machine the wall clock
mostly measures the other jobs.

(e) one model, ``docs/examples/form_and_steam.json``, over the 2018-19 NBA regular season of the real
    files: the engine (``run_backtest`` as ``oddsforge backtest`` calls it, tables loaded) in one
    pass against the day-by-day path it replaced (``score_day`` per day, multipliers from the
    earlier days' calls, each day graded and tallied), the same counts required; then the whole
    ``oddsforge backtest`` command in a subprocess, and its start-up (imports) alone. The real
    history is imported with ``oddsforge import-history`` into a temporary lake unless ``--lake``
    names one that has it (``--real``: the folder of the real files, default ``../shared/data/real``).
(f) ``--models`` (default 1,000) random configs of ``bench/engine_bench.py`` over ``--seasons``
    (default 5) generated seasons, ``keep_analyses=False``: one pass against day by day.

Targets: (e) engine under 0.3 s and the command under 3 s; (f) under 15 s with bounded memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import PeakRss, custom_scores, league, log, machine, random_payloads, timed, verdict  # noqa: E402
from domain.markets.value import KELLY_FRACTION  # noqa: E402
from domain.models.config import ModelConfig, parse_model_config  # noqa: E402
from domain.models.engine import (  # noqa: E402
    SOURCE_CALLS,
    ModelBatch,
    Tables,
    grade_analyses,
    multipliers_from_calls,
    run_backtest,
    score_day_explained,
    source_calls,
)
from domain.models.engine.backtest import DYNAMIC_WINDOW_DAYS, KEYS, game_days, metrics, tally  # noqa: E402

SPORT = "basketball_nba"
SEASON = (dt.date(2018, 10, 16), dt.date(2019, 4, 10))
MODEL = ROOT / "docs" / "examples" / "form_and_steam.json"
REAL_FILES = (
    ("kaggle-nba", "nba_kaggle_odds_2008_2025/nba_2008-2025.csv"),
    ("sbr-nba", "nba_sbr_open_close_2016_2022/nba_sbr_games_2016_2022.csv"),
    ("nba-team-box", "nba_team_box_2018_2025/nba_team_box_2018_2025.csv"),
)
TARGET_ENGINE_S, TARGET_COMMAND_S, TARGET_MANY_S = 0.3, 3.0, 15.0
COUNTS = [
    "analyses",
    "qualifying",
    "wins",
    "losses",
    "pushes",
    "picks_home",
    "picks_away",
    "picks_over",
    "picks_under",
]


def day_by_day(
    models: ModelBatch, tables: Tables, start: dt.date, end: dt.date, custom: pl.DataFrame
) -> pl.DataFrame:
    """The baseline: the backtest as it ran before issue 14, one ``score_day`` per game day with
    multipliers from the earlier days' calls; returns the summary (columns of ``metrics``)."""
    days = game_days(models, tables, start, end)
    calls, tallies = pl.DataFrame(schema=SOURCE_CALLS), []
    for day in days:
        multipliers = multipliers_from_calls(calls, day) if models.uses_dynamic_weighting else None
        # With its sources, as score_day returned them then (as list columns).
        scored = score_day_explained(models, tables, day, None, multipliers, custom)
        tallies.append(tally(grade_analyses(scored.analyses, tables.games), KEYS, KELLY_FRACTION))
        if models.uses_dynamic_weighting:
            recent = calls.filter(pl.col("game_date") >= day - dt.timedelta(days=DYNAMIC_WINDOW_DAYS))
            calls = pl.concat([recent, source_calls(scored, tables.games)])
    return metrics(pl.concat(tallies).group_by(KEYS).agg(pl.all().sum()))


def compare(one_pass: pl.DataFrame, baseline: pl.DataFrame) -> dict[str, Any]:
    """Whether every count agrees, and the largest relative difference of the float figures."""
    a, b = one_pass.sort(KEYS), baseline.select(one_pass.columns).sort(KEYS)
    a = a.join(b.select(KEYS), on=KEYS)  # the baseline has no row for a model without analyses
    same_counts = a.select(COUNTS).equals(b.select(COUNTS))
    worst = 0.0
    for name in (
        "profit",
        "roi",
        "kelly_units",
        "kelly_profit",
        "kelly_roi",
        "brier",
        "log_loss",
        "avg_confidence",
    ):
        x, y = a[name].fill_null(0.0).to_numpy(), b[name].fill_null(0.0).to_numpy()
        scale = abs(y).clip(1e-300)
        worst = max(worst, float((abs(x - y) / scale).max(initial=0.0)))
    return {"same_counts": bool(same_counts), "max_rel_diff": worst, "models_compared": a.height}


# ---- the measurements, one per subprocess --------------------------------------------------------


def _model() -> ModelConfig:
    payload = json.loads(MODEL.read_text())
    payload |= {"model_id": "local--backtest", "creator_user_id": "local", "name": MODEL.stem, "sport": SPORT}
    return parse_model_config(payload)


def measure_real(args: argparse.Namespace) -> dict[str, Any]:
    from services.custom_scores import load_custom_scores
    from services.engine_tables import load_tables
    from stores.lake import Lake

    config, (start, end) = _model(), SEASON
    lake = Lake.from_env()
    tables, load_wall, load_cpu = timed(load_tables, lake, SPORT, start, end + dt.timedelta(days=1))
    span = tables.games.filter(pl.col("game_date").is_between(start, end))
    custom = load_custom_scores(lake, [config], span)
    batch = ModelBatch.from_configs([config])
    runs = [timed(run_backtest, batch, tables, start, end, custom, None, False) for _ in range(args.repeats)]
    result, wall, cpu = min(runs, key=lambda r: r[2])
    baseline, base_wall, base_cpu = timed(day_by_day, batch, tables, start, end, custom)
    summary = result.summary.row(0, named=True)
    return {
        "games": span.height,
        "analyses": summary["analyses"],
        "graded": summary["graded"],
        "accuracy": summary["accuracy"],
        "load_wall_s": load_wall,
        "load_cpu_s": load_cpu,
        "engine_wall_s": wall,
        "engine_cpu_s": cpu,
        "baseline_wall_s": base_wall,
        "baseline_cpu_s": base_cpu,
        **compare(result.summary, baseline),
    }


def measure_many(args: argparse.Namespace) -> dict[str, Any]:
    tables = league(args.seasons)
    payloads = random_payloads(args.models)[: args.models]
    custom = custom_scores(payloads, tables.games["game_id"])
    batch = ModelBatch.from_payloads(payloads)
    start, end = tables.games["game_date"].min(), tables.games["game_date"].max()
    peak = PeakRss()
    result, wall, cpu = timed(run_backtest, batch, tables, start, end, custom, None, False)
    figures = {
        "models": len(batch),
        "dynamic_models": int(batch.dynamic.any(axis=1).sum()),
        "seasons": args.seasons,
        "days": tables.games["game_date"].n_unique(),
        "analyses": int(result.summary["analyses"].sum()),
        "wall_s": wall,
        "cpu_s": cpu,
        **{f"one_pass_{k}": v for k, v in peak.figures().items()},
    }
    if args.baseline:
        peak = PeakRss()
        baseline, base_wall, base_cpu = timed(day_by_day, batch, tables, start, end, custom)
        figures |= {
            "baseline_wall_s": base_wall,
            "baseline_cpu_s": base_cpu,
            **{f"baseline_{k}": v for k, v in peak.figures().items()},
            **compare(result.summary, baseline),
        }
    return figures


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "real": measure_real,
    "many": measure_many,
}


def run_child(name: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    log(f"{name}: starting in a fresh process")
    options = ["--models", str(args.models), "--seasons", str(args.seasons), "--repeats", str(args.repeats)]
    options += [] if args.baseline else ["--no-baseline"]
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, *options],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of a subprocess."""
    before, started = children_cpu(), time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, children_cpu() - before


def real_lake(args: argparse.Namespace, env: dict[str, str], scratch: Path) -> None:
    """Point ``env`` at a lake holding the real history (imported into ``scratch`` unless given)."""
    if args.lake:
        env["ODDSFORGE_LAKE"] = str(Path(args.lake).resolve())
        return
    env |= {
        "ODDSFORGE_LAKE": str(scratch / "lake"),
        "ODDSFORGE_WAREHOUSE_DIR": str(scratch / "warehouse"),
        "DAGSTER_HOME": str(scratch / "dagster"),
    }
    for fmt, name in REAL_FILES:
        log(f"import-history --format {fmt} {name}")
        oddsforge = [sys.executable, "-m", "cli.main", "import-history", "--format", fmt]
        subprocess.run(
            [*oddsforge, str(Path(args.real) / name)], env=env, check=True, stdout=subprocess.DEVNULL
        )


def report(args: argparse.Namespace, real: dict[str, Any], many: dict[str, Any], cmd: dict[str, Any]) -> None:
    print(f"machine: {machine()}")
    print(f"load average (1/5/15 min) at the end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(f"{'measurement':58s}{'wall s':>9s}{'cpu s':>9s}  baseline (day by day) wall / cpu s")
    with_baseline = real["baseline_cpu_s"] - real["engine_cpu_s"] + cmd["cpu_s"]
    many_baseline = (
        f"{many['baseline_wall_s']:.1f} / {many['baseline_cpu_s']:.1f} "
        f"({many['baseline_cpu_s'] / many['cpu_s']:.1f}x cpu)"
        if "baseline_cpu_s" in many
        else ""
    )
    rows = [
        (f"(e) real 2018-19, one model: engine (best of {args.repeats})", real["engine_wall_s"],
         real["engine_cpu_s"], f"{real['baseline_wall_s']:.2f} / {real['baseline_cpu_s']:.2f} "
         f"({real['baseline_cpu_s'] / real['engine_cpu_s']:.0f}x cpu)"),
        ("    tables loaded from the lake", real["load_wall_s"], real["load_cpu_s"], ""),
        ("(e) `oddsforge backtest` command (subprocess)", cmd["wall_s"], cmd["cpu_s"],
         f"~{with_baseline:.2f} cpu with the day-by-day engine"),
        ("    of which start-up: `import cli.main, services.backtests`", cmd["import_wall_s"],
         cmd["import_cpu_s"], f"Dagster imported: {cmd['dagster_imported']}"),
        (f"(f) {many['models']:,} models x {many['seasons']} seasons, one pass", many["wall_s"],
         many["cpu_s"], many_baseline),
    ]  # fmt: skip
    for label, wall, cpu, note in rows:
        print(f"{label:58s}{wall:9.3f}{cpu:9.3f}  {note}")
    print()
    rise = many["one_pass_peak_rss_mb"] - many["one_pass_rss_before_mb"]
    base_rise = (
        f"; day by day +{many['baseline_peak_rss_mb'] - many['baseline_rss_before_mb']:,.0f} MB"
        if "baseline_peak_rss_mb" in many
        else ""
    )
    print(
        f"(e) {real['games']:,} games, {real['analyses']:,} analyses, {real['graded']:,} graded, accuracy "
        f"{real['accuracy']:.1%}; counts equal to day by day: {real['same_counts']}, float figures within "
        f"{real['max_rel_diff']:.1e} (relative)"
    )
    compared = (
        f"; counts equal to day by day: {many['same_counts']}, "
        f"float figures within {many['max_rel_diff']:.1e}"
        if "same_counts" in many
        else ""
    )
    print(
        f"(f) {many['days']} days, {many['analyses']:,} analyses, {many['dynamic_models']} models with "
        f"dynamic weighting; peak RSS +{rise:,.0f} MB above {many['one_pass_rss_before_mb']:,.0f} MB"
        f"{base_rise}{compared}"
    )
    print()
    engine_ok = real["engine_cpu_s"] < TARGET_ENGINE_S and real["same_counts"]
    verdicts = [
        (f"engine, one real season: {real['engine_cpu_s']:.3f} s cpu", TARGET_ENGINE_S, engine_ok),
        (f"whole command: {cmd['cpu_s']:.2f} s cpu, {cmd['wall_s']:.2f} s wall", TARGET_COMMAND_S,
         cmd["cpu_s"] < TARGET_COMMAND_S),
        (f"{many['models']:,} models x {many['seasons']} seasons: {many['cpu_s']:.1f} s cpu", TARGET_MANY_S,
         many["cpu_s"] < TARGET_MANY_S),
    ]  # fmt: skip
    for what, target, ok in verdicts:
        print(f"{what} (target < {target} s): {verdict(ok)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lake", help="a lake that already holds the real history (else imported)")
    parser.add_argument(
        "--real", default=str(ROOT.parent / "shared" / "data" / "real"), help="the real files"
    )
    parser.add_argument("--models", type=int, default=1_000, help="models in (f) (default 1,000)")
    parser.add_argument("--seasons", type=int, default=5, help="generated seasons in (f) (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="one-pass runs in (e), the best kept")
    parser.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="skip (f)'s day-by-day run"
    )
    parser.add_argument("--child", choices=list(MEASUREMENTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(MEASUREMENTS[args.child](args)))
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="backtest-bench-") as scratch:
        real_lake(args, env, Path(scratch))
        real = run_child("real", args, env)
        log("the oddsforge backtest command")
        start, end = SEASON
        backtest = [
            "backtest",
            str(MODEL),
            "--sport",
            SPORT,
            "--from",
            str(start),
            "--to",
            str(end),
            "--json",
        ]
        wall, cpu = command([sys.executable, "-m", "cli.main", *backtest], env)
        probe = "import sys, cli.main, services.backtests; sys.exit(1 if 'dagster' in sys.modules else 0)"
        before, started = children_cpu(), time.perf_counter()
        dagster = subprocess.run([sys.executable, "-c", probe], env=env).returncode == 1
        cmd = {
            "wall_s": wall,
            "cpu_s": cpu,
            "import_wall_s": time.perf_counter() - started,
            "import_cpu_s": children_cpu() - before,
            "dagster_imported": dagster,
        }
    many = run_child("many", args, env)
    report(args, real, many, cmd)


if __name__ == "__main__":
    main()
