"""Benchmark: auto-tuning and draft backtests on real NBA history (issue 14 items 2 and 6).

Run: ``.venv/bin/python bench/tune_bench.py [--trials 1000] [--lake DIR]``. Figures go to stdout,
progress to stderr. The real files (``../shared/data/real``: Kaggle's lines, SBR's opening and
closing lines, the team box scores) are imported into a temporary lake with ``oddsforge
import-history`` (or ``--lake`` names a lake that holds them already); without them the benchmark
says so and exits 0. The model is the README's ``docs/examples/form_and_steam.json``. In one run:

(a) ``oddsforge tune``'s work (``services.tuning.tune_model``): ``--trials`` configurations over
    three seasons (2018-19 to 2020-21) with four walk-forward folds: the replay that scores the
    sources once, then every trial at once. Target: under 60 s.
(b) the baseline, same run: one plain backtest (``services.backtests.backtest_model``) of the model
    over the same span, times ``--trials``: what tuning by re-running the backtester would cost.
(c) ``POST /backtests`` of the model as a draft over the 2018-19 season, through real HTTP to the
    API (uvicorn on loopback) over the same lake: the answer's time, best of three. Target: under 2 s.

Wall-clock and CPU seconds (every thread) are both printed; on a shared machine the CPU time is the
steadier measure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REAL = REPO.parent / "shared" / "data" / "real"
FILES = {
    "kaggle-nba": "nba_kaggle_odds_2008_2025/nba_2008-2025.csv",
    "sbr-nba": "nba_sbr_open_close_2016_2022/nba_sbr_games_2016_2022.csv",
    "nba-team-box": "nba_team_box_2018_2025/nba_team_box_2018_2025.csv",
}
MODEL = REPO / "docs" / "examples" / "form_and_steam.json"
SPORT = "basketball_nba"
THREE_SEASONS = (dt.date(2018, 10, 16), dt.date(2021, 5, 16))
ONE_SEASON = (dt.date(2018, 10, 16), dt.date(2019, 4, 10))
TUNE_TARGET_S, POST_TARGET_S = 60.0, 2.0


def log(message: str) -> None:
    print(f"[tune_bench] {message}", file=sys.stderr, flush=True)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, used = time.perf_counter(), cpu()
    result = run()
    return result, time.perf_counter() - wall, cpu() - used


def import_history(lake_dir: Path) -> None:
    from cli.main import main

    os.environ["ODDSFORGE_LAKE"] = str(lake_dir)
    for fmt, rel in FILES.items():
        log(f"importing {rel}")
        with contextlib.redirect_stdout(io.StringIO()):
            if main(["import-history", "--format", fmt, str(REAL / rel), "--json"]) != 0:
                raise SystemExit(f"import of {rel} failed")


def model() -> Any:
    from domain.models.config import parse_model_config

    payload = json.loads(MODEL.read_text())
    server = {"model_id": "bench--form-and-steam", "creator_user_id": "bench", "sport": SPORT}
    return parse_model_config(payload | server)


@contextlib.contextmanager
def api(lake_dir: Path, warehouse: Path) -> Iterator[str]:
    """The API over ``lake_dir`` on a free loopback port (as the tests serve it)."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from stores.lake import Lake

    app = create_app(ApiSettings(warehouse_dir=warehouse, jwt_secret="b" * 40), lake=Lake(root=str(lake_dir)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def measure(args: argparse.Namespace, lake_dir: Path, warehouse: Path) -> dict[str, Any]:
    import httpx

    from api.auth import mint_token
    from domain.models.tuning import TuneSettings
    from services.backtests import backtest_model
    from services.tuning import tune_model
    from stores.lake import Lake

    lake, config = Lake(root=str(lake_dir)), model()
    stages: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        stages[stage] = time.perf_counter()  # the replay's last day, then the trials' end
        stages[f"{stage}_cpu"] = cpu()

    log(f"tuning {args.trials} configurations over {THREE_SEASONS[0]} .. {THREE_SEASONS[1]}")
    settings = TuneSettings(folds=4, trials=args.trials, seed=0)
    report, tune_wall, tune_cpu = timed(lambda: tune_model(lake, config, *THREE_SEASONS, settings, progress))
    evaluate = stages["trials"] - stages["replay"], stages["trials_cpu"] - stages["replay_cpu"]
    log("one plain backtest over the same span (the baseline)")
    plain, plain_wall, plain_cpu = timed(lambda: backtest_model(lake, config, *THREE_SEASONS))
    log("POST /backtests over one season, through HTTP")
    body = {
        "config": {k: v for k, v in json.loads(MODEL.read_text()).items() if k != "sport"},
        "sport": SPORT,
        "from": ONE_SEASON[0].isoformat(),
        "to": ONE_SEASON[1].isoformat(),
    }
    posts = []
    with api(lake_dir, warehouse) as url:
        headers = {"Authorization": f"Bearer {mint_token('bench', 'b' * 40)}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            for _ in range(3):
                answer, wall, used = timed(lambda: client.post("/backtests", json=body))
                assert answer.status_code == 200, answer.text
                posts.append((wall, used))
    return {
        "trials": report["configurations"],
        "analyses": report["baseline"]["analyses"],
        "tune_wall": tune_wall,
        "tune_cpu": tune_cpu,
        "evaluate": evaluate,
        "plain_wall": plain_wall,
        "plain_cpu": plain_cpu,
        "plain_graded": plain["summary"]["graded"],
        "tuned": report,
        "post": min(posts),
        "post_graded": answer.json()["summary"]["graded"],
    }


def report(r: dict[str, Any]) -> None:
    n = r["trials"]
    cores, load = os.cpu_count(), os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, load {load:.1f}")
    print(f"model: {MODEL.name}; span {THREE_SEASONS[0]} .. {THREE_SEASONS[1]} ({r['analyses']:,} analyses)")
    print(f"\n(a) tune, {n:,} configurations, 4 walk-forward folds")
    print(
        f"    wall {r['tune_wall']:.1f} s  CPU {r['tune_cpu']:.1f} s  "
        f"(of which every trial evaluated: wall {r['evaluate'][0]:.2f} s, CPU {r['evaluate'][1]:.2f} s)"
    )
    verdict = "PASS" if r["tune_cpu"] < TUNE_TARGET_S else "FAIL"
    print(f"    target < {TUNE_TARGET_S:.0f} s (CPU): {verdict}")
    print(f"(b) baseline: one plain backtest wall {r['plain_wall']:.1f} s  CPU {r['plain_cpu']:.1f} s")
    print(
        f"    x {n:,} = {n * r['plain_wall'] / 60:.0f} min wall, {n * r['plain_cpu'] / 60:.0f} min CPU; "
        f"tuning is {n * r['plain_cpu'] / r['tune_cpu']:.0f}x faster (CPU)"
    )
    t = r["tuned"]
    for label, key in (
        ("as configured", "baseline"),
        ("best, in sample", "in_sample"),
        ("walk-forward, out", "out_of_sample"),
    ):
        f = t[key]
        print(
            f"    {label:<18} graded {f['graded']:>6,}  accuracy {f['accuracy']:.1%}  "
            f"ROI {f['roi']:+.1%}  Brier {f['brier']:.4f}"
        )
    wall, used = r["post"]
    print(f"(c) POST /backtests, {ONE_SEASON[0]} .. {ONE_SEASON[1]} (graded {r['post_graded']:,}), best of 3")
    verdict = "PASS" if wall < POST_TARGET_S else "FAIL"
    print(f"    wall {wall:.2f} s  CPU {used:.2f} s  target < {POST_TARGET_S:.0f} s (wall): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--lake", type=Path, help="a lake that holds the real NBA history already")
    args = parser.parse_args()
    if args.lake is None and not REAL.is_dir():
        print(f"tune_bench: the real history files are not at {REAL}; nothing measured")
        return
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as tmp:
        os.environ.setdefault("DAGSTER_HOME", str(Path(tmp) / "dagster"))
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        lake_dir = args.lake or Path(tmp) / "lake"
        if args.lake is None:
            import_history(lake_dir)
        report(measure(args, lake_dir, Path(tmp) / "warehouse"))


if __name__ == "__main__":
    main()
