"""``oddsforge sql "select count(*) from games"`` over all real history, as a new user runs it.

Imports every real history file (``<repo>/../shared/data/real``) with ``oddsforge import-history``
into a fresh lake, which writes one object per month and rebuilds the analyst database. The same
rows are then laid out one object per day (the layout before month objects) in a second lake, the
baseline. Each command runs as its own process, start-up included; median of 5 runs, with the CPU
time (user + system) of the process, the steadier measure on a shared machine.

    daily objects       the baseline: views over one object per day
    month objects       views over the month objects (no analyst database: the fallback)
    analyst database    the default after an import: the current analyst database, read-only

Target: under 1 s including start-up. Run: ``python bench/lake_bench.py``.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stores.lake import Lake  # noqa: E402
from stores.layout import RAW, TABLES, parse_period_key, table_prefix  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "real"
FILES = {
    "kaggle-nba": "nba_kaggle_odds_2008_2025/nba_2008-2025.csv",
    "sbr-nba": "nba_sbr_open_close_2016_2022/nba_sbr_games_2016_2022.csv",
    "nba-team-box": "nba_team_box_2018_2025/nba_team_box_2018_2025.csv",
    "nba-player-logs": "nba_player_gamelogs_2024_25/nba_player_gamelogs_2024_25.csv",
    "nfl-lines": "nfl_spreadspoke_nfelo/nfl_games_scores_lines_1999_2022.csv",
}
QUERY = "select count(*) from games"
RUNS = 5
ODDSFORGE = [sys.executable, "-m", "cli.main"]


def run(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one ``oddsforge`` process, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([*ODDSFORGE, *args], env=env, capture_output=True, text=True, check=True, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def environment(lake: Path, warehouse: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ODDSFORGE_LAKE": str(lake),
        "ODDSFORGE_WAREHOUSE_DIR": str(warehouse),
    }


def daily_copy(source: Lake, target: Lake) -> int:
    """``source``'s month objects written one object per day into ``target`` (other objects copied);
    the objects written."""
    written = 0
    for prefix in (RAW, TABLES):
        for key in source.list_keys(prefix):
            period = parse_period_key(key)
            if period is None or period.day is not None:
                target.put_bytes(key, source.get_bytes(key))
                written += 1
                continue
            df = source.read_parquet([key])
            days = sorted(set(df.get_column(period.date_column).to_list()))
            target.write_daily(
                df, lambda d, p=period: p.family.replace("*", d.isoformat(), 1), days, period.date_column
            )
            written += len(days)
    return written


def objects(lake: Lake, prefix: str) -> int:
    return sum(1 for _ in lake.list_keys(prefix))


def measure(label: str, env: dict[str, str]) -> tuple[str, float, float, str]:
    runs = [run(env, "sql", QUERY, "--json") for _ in range(RUNS)]
    count = runs[0][2].split('"count_star()":')[1].split("}")[0].strip()
    return label, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), count


def main() -> int:
    if not REAL.is_dir():
        print(f"lake_bench: skipped, the real history files are not at {REAL} (see bench/README.md)")
        return 0
    root = Path(tempfile.mkdtemp(prefix="lake_bench-"))
    try:
        compact, daily = root / "compact", root / "daily"
        env = environment(compact / "lake", compact / "warehouse")
        started = time.perf_counter()
        for fmt, rel in FILES.items():
            run(env, "import-history", "--format", fmt, str(REAL / rel), "--json")
        imported = time.perf_counter() - started
        lake = Lake(root=str(compact / "lake"))
        days = daily_copy(lake, Lake(root=str(daily / "lake")))
        rows = [measure("daily objects (baseline)", environment(daily / "lake", daily / "warehouse"))]
        analyst = measure("analyst database (default)", env)
        shutil.rmtree(compact / "warehouse")
        rows += [measure("month objects, no analyst database", env), analyst]
        print(f"imported every real history file in {imported:.1f} s")
        print(
            f"games objects: {objects(Lake(root=str(daily / 'lake')), table_prefix('games')):,} daily, "
            f"{objects(lake, table_prefix('games')):,} monthly; lake objects {days:,} daily, "
            f"{objects(lake, RAW) + objects(lake, TABLES):,} monthly"
        )
        print(f'\noddsforge sql "{QUERY}", median of {RUNS} processes, start-up included\n')
        print(f"| {'layout':<36} | {'wall s':>6} | {'CPU s':>5} | {'vs baseline':>11} | {'rows':>6} |")
        print(f"|{'-' * 38}|{'-' * 8}:|{'-' * 6}:|{'-' * 12}:|{'-' * 7}:|")
        base = rows[0][1]
        for label, wall, cpu, count in rows:
            print(f"| {label:<36} | {wall:>6.2f} | {cpu:>5.2f} | {base / wall:>10.1f}x | {count:>6} |")
        counts = {count for *_, count in rows}
        if len(counts) != 1:
            print(f"lake_bench: the layouts disagree on the count: {counts}")
            return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
