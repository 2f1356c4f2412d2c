"""Benchmark: ``oddsforge verify`` on a season of one model, over real HTTP to the API, against the
same checks on the same evidence assembled from the lake without HTTP (the baseline, same run).

Run after ``oddsforge demo`` (it reads the demo's lake and warehouse, ``ODDSFORGE_LAKE`` and
``ODDSFORGE_WAREHOUSE_DIR``): ``.venv/bin/python bench/verify_bench.py [--model ID] [--runs 3]``.
Without ``--model`` it takes the model with the most committed picks. Figures go to stdout.

Over the API the verifier makes one proofs request, one ``/commitments/{date}`` and one games request
per game date and one performance request per version (eight at a time), then recomputes every leaf,
path, root, day root and chain link and re-grades every pick. The baseline builds the same documents
with the API's own services (and JSON encoding), reading the lake directly, and runs the same
:func:`cli.verify.check`. Target: under 5 s for about 1,600 picks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from api.auth import mint_token
from api.routes.commitments import DayCommitments
from api.settings import ApiSettings
from cli.local_api import serve
from cli.verify import ApiSource, Evidence, check, verify
from domain.formats.sample_league import SEASON_END, SEASON_START, SPORT
from domain.marketplace.performance import MODEL_PERFORMANCE, rolling_performance
from domain.models.engine import ANALYSES
from domain.tables.schemas import GAMES
from services.proofs import day_commitments, days_between, model_proofs
from stores.commitments import day_batches, read_leaves
from stores.lake import Lake

READER = "dave"
T = TypeVar("T")


def busiest_model(lake: Lake) -> str:
    """The model with the most committed picks over the sample season."""
    counts: dict[str, int] = {}
    for day in days_between(SEASON_START, SEASON_END):
        for batch in day_batches(lake, day):
            for model_id, leaves in read_leaves(lake, day, batch.batch_id)["models"].items():
                counts[model_id] = counts.get(model_id, 0) + len(leaves)
    if not counts:
        raise SystemExit("no committed picks: run `oddsforge demo` first")
    return max(counts, key=lambda m: counts[m])


def local_evidence(lake: Lake, model_id: str, first: dt.date, last: dt.date) -> Evidence:
    """The documents the API would serve, built from the lake without HTTP."""
    end = last + dt.timedelta(days=1)
    analyses = lake.read_table("analyses", SPORT, first, end, ANALYSES).filter(pl.col("model_id") == model_id)
    games = lake.read_table("games", SPORT, first, end, GAMES)
    document = model_proofs(lake, model_id, SPORT, analyses, games, first, last)
    proof_doc = json.loads(json.dumps(document, default=dt.date.isoformat))  # as the route answers
    days = sorted(
        {b["day"] for b in document["batches"]}
        | {p["game_date"] for p in document["picks"]}
        | {dt.date.fromisoformat(link["day"]) for link in document["chain"]}
    )
    day_docs = {
        d.isoformat(): DayCommitments.model_validate(day_commitments(lake, d)).model_dump(mode="json")
        for d in days
    }
    game_docs = {
        r["game_id"]: r | {"commence_time": r["commence_time"].isoformat()}
        for r in games.iter_rows(named=True)
    }
    performance = lake.read_table("model_performance", SPORT, first, end, MODEL_PERFORMANCE).filter(
        pl.col("model_id") == model_id
    )
    span = (last - first).days + 1
    figures = {
        r["version"]: {
            "graded": r["rolling_graded"],
            "wins": r["rolling_wins"],
            "profit": r["rolling_profit"],
        }
        for r in rolling_performance(performance, last, span).iter_rows(named=True)
        if r["version"] in {p["pick"]["version"] for p in document["picks"]}
    }
    return Evidence(proof_doc, day_docs, game_docs, figures)


def timed(fn: Callable[[], T], runs: int) -> tuple[float, T]:
    """The median seconds of ``runs`` calls, and the last result."""
    seconds, results = [], []
    for _ in range(runs):
        started = time.perf_counter()
        results.append(fn())
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), results[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model id (default: the one with the most committed picks)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    lake = Lake.from_env()
    model_id = args.model or busiest_model(lake)
    settings = ApiSettings.from_env()
    baseline_s, baseline = timed(
        lambda: check(local_evidence(lake, model_id, SEASON_START, SEASON_END)), args.runs
    )
    with serve(create_app(settings, lake=lake)) as url:
        source = ApiSource(url, mint_token(READER, settings.jwt_secret))
        api_s, report = timed(
            lambda: verify(lambda: source.evidence(model_id, SEASON_START, SEASON_END), model_id), args.runs
        )
    assert report.ok, report.failure
    print(f"model {model_id}: {report.picks:,} picks, {report.batches} batches, {report.days} days")
    print(f"{'path':<34} {'median s':>9}")
    print(f"{'verify over the API (HTTP)':<34} {api_s:>9.2f}")
    print(f"{'same checks, local (no HTTP)':<34} {baseline_s:>9.2f}")
    verdict = "met" if api_s < 5 else "MISSED"
    print(f"HTTP costs {api_s / baseline_s:.1f}x the local checks; target under 5 s: {verdict}")
    return 0 if api_s < 5 and baseline.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
