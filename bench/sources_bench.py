"""Benchmark: ``source_matrices`` alone (the first half of ``score_day``), A/B between checkouts.

Run: ``.venv/bin/python bench/sources_bench.py [CHECKOUT ...] [--models N] [--rounds R] [--repeats K]``
(default: this checkout only; each one's own ``domain`` and ``bench/engine_bench.py`` are imported,
this script need not be in it). The inputs are ``engine_bench.py``'s: the sample league's busiest
day, N random configs (default 100,000) with their custom scores and dynamic multipliers. Each
checkout runs in its own subprocess, the checkouts alternating for R rounds (default 3), so that
a shared machine's load falls on all of them alike; each run keeps the best CPU time (every thread)
of K warm calls (default 7), in total and per source kind (its ``score`` calls). Prints one line
per run, then the best per checkout. Each checkout builds its inputs with its own
``engine_bench.py``, so the checkouts compared must draw them alike (same seeds).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]


def measure(root: str, models: int, repeats: int) -> dict[str, Any]:
    """Best CPU seconds of checkout ``root``'s ``source_matrices``, total and per kind."""
    sys.path.insert(0, root)
    import polars as pl

    from bench.engine_bench import busiest_day, custom_scores, league, multipliers, random_payloads
    from domain.models.engine import ModelBatch, source_matrices
    from domain.models.sources import KINDS

    tables = league()
    day = busiest_day(tables)
    payloads = random_payloads(models)
    custom = custom_scores(payloads, tables.games.filter(pl.col("game_date") == day)["game_id"])
    mult = multipliers(payloads)
    batch = ModelBatch.from_payloads(payloads)
    del payloads
    spent: dict[str, float] = {}

    def timed_kind(kind: Any) -> Any:
        score = kind.score

        def run(prepared: Any, used: Any, source_day: Any) -> Any:
            start = time.process_time()
            out = score(prepared, used, source_day)
            spent[kind.name] = spent.get(kind.name, 0.0) + time.process_time() - start
            return out

        return run

    for kind in KINDS:  # frozen dataclasses: the bench swaps in a timed scorer
        object.__setattr__(kind, "score", timed_kind(kind))
    source_matrices(batch, tables, day, None, mult, custom)  # cold: builds the tables' indexes
    best: dict[str, float] = {}
    for _ in range(repeats):
        gc.collect()
        spent.clear()
        start = time.process_time()
        matrices = source_matrices(batch, tables, day, None, mult, custom)
        for name, seconds in {"total": time.process_time() - start, **spent}.items():
            best[name] = min(best.get(name, seconds), seconds)
    return {"sources": sum(m.scores.shape[1] for m in matrices), **best}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("checkouts", nargs="*", default=[str(HERE)], help="repository roots to compare")
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.models, args.repeats)))
        return
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for checkout in args.checkouts:
            root = Path(checkout).resolve()
            options = ["--models", str(args.models), "--repeats", str(args.repeats)]
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(root), *options],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            kinds = ", ".join(
                f"{k} {v * 1000:.1f}" for k, v in result.items() if k not in ("sources", "total")
            )
            print(f"{root}: {result['total'] * 1000:.1f} ms CPU ({result['sources']:,} sources; {kinds})")
            mine = best.setdefault(str(root), {})
            for name, seconds in result.items():
                if name != "sources":
                    mine[name] = min(mine.get(name, seconds), seconds)
    print("best of all rounds, ms CPU:")
    for root, figures in best.items():
        print(f"  {root}: " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
