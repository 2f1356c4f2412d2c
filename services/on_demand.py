"""On-demand execution (the seed's hybrid model): score one model version on one slate, cache the
result for an hour, and limit how many uncached runs a user starts.

Both the cache and the run log live in the lake under ``cache/`` (``stores/layout.py``), so every
API worker (and a restarted one) shares them: one Parquet object of analyses per model version and
slate, with ``computed_at`` in its metadata, and one empty object per uncached run.

The run limit is checked, then the run recorded: two requests racing on the last slot may both
start (a soft limit). Scoring is the daily asset's: the same engine over the same tables, with the
model version's own stored analyses for dynamic weighting, so an on-demand run equals the daily
run of the same slate at the same cut-off.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass

import polars as pl

from domain.marketplace.listing import CACHE_SECONDS, cache_fresh, retry_after
from domain.models.config import ModelConfig
from domain.models.engine import ModelBatch, multipliers_from_history, score_day_explained
from domain.models.engine.scoring import DYNAMIC_WINDOW_DAYS
from services.commitments import commit_picks
from services.custom_scores import load_custom_scores
from services.engine_tables import load_scored, load_tables
from services.ensembles import own_rows, with_members
from stores.lake import Lake
from stores.layout import analyses_cache_key, analyze_run_key, analyze_runs_prefix, parse_analyze_run_key

_COMPUTED_AT = "oddsforge:computed_at"


@dataclass(frozen=True)
class ExecutionLimits:
    """How on-demand runs are cached and limited (the API keeps one in ``app.state.execution``)."""

    cache_seconds: float = CACHE_SECONDS
    runs_per_window: int = 30
    window_seconds: float = 3600.0


@dataclass(frozen=True)
class SlateAnalyses:
    analyses: pl.DataFrame
    computed_at: dt.datetime
    cached: bool


def score_model(lake: Lake, config: ModelConfig, day: dt.date, now: dt.datetime) -> pl.DataFrame:
    """The analyses of one model version for the games of ``day``, each with its sources
    (``domain.models.engine.EXPLAINED``): today's and later slates as of ``now``, past ones at the
    backtest cut-off (as the daily asset does)."""
    configs = with_members(lake, config)  # an ensemble is scored over its members' analyses
    models = ModelBatch.from_configs(configs)
    tables = load_tables(lake, config.sport, day, day + dt.timedelta(days=1))
    multipliers = None
    if models.uses_dynamic_weighting:
        past = load_scored(lake, config.sport, day - dt.timedelta(days=DYNAMIC_WINDOW_DAYS), day)
        multipliers = multipliers_from_history(past.of_models(models.frame), tables.games, day)
    custom = load_custom_scores(lake, configs, tables.games.filter(pl.col("game_date") == day))
    as_of = now if day >= now.date() else None
    scored = score_day_explained(models, tables, day, as_of, multipliers, custom)
    return own_rows(scored.explained(), config)


def read_cached(lake: Lake, key: str) -> tuple[pl.DataFrame, dt.datetime] | None:
    """A cached result and when it was computed; None if there is none."""
    if not lake.exists(key):
        return None
    data = lake.get_bytes(key)
    computed_at = pl.read_parquet_metadata(io.BytesIO(data))[_COMPUTED_AT]
    return pl.read_parquet(io.BytesIO(data)), dt.datetime.fromisoformat(computed_at)


def write_cached(lake: Lake, key: str, analyses: pl.DataFrame, computed_at: dt.datetime) -> None:
    buf = io.BytesIO()
    analyses.write_parquet(buf, metadata={_COMPUTED_AT: computed_at.isoformat()})
    lake.put_bytes(key, buf.getvalue())


def cached_analyses(
    lake: Lake, config: ModelConfig, day: dt.date, now: dt.datetime, limits: ExecutionLimits
) -> SlateAnalyses | None:
    """The cached analyses of the model version's slate if computed within the hour, else None."""
    found = read_cached(lake, analyses_cache_key(config.model_id, config.version, day))
    if found is None or not cache_fresh(found[1], now, limits.cache_seconds):
        return None
    return SlateAnalyses(found[0], found[1], cached=True)


def run_on_demand(lake: Lake, config: ModelConfig, day: dt.date, now: dt.datetime) -> SlateAnalyses:
    """Score the slate now, commit the picks of a public model (SPEC 9) and cache the result."""
    analyses = score_model(lake, config, day, now)
    shared = {config.model_id} if config.sharing.public else set()
    commit_picks(lake, config.sport, day, analyses, shared, lambda: now, run="on_demand")
    write_cached(lake, analyses_cache_key(config.model_id, config.version, day), analyses, now)
    return SlateAnalyses(analyses, now, cached=False)


class RunLimiter:
    """Uncached runs per user in a sliding window, recorded in the lake."""

    def __init__(self, lake: Lake, limits: ExecutionLimits) -> None:
        self.lake = lake
        self.limits = limits

    def acquire(self, user_id: str, now: dt.datetime) -> float | None:
        """Record a run for ``user_id`` and return None, or return the seconds to wait (nothing
        recorded) when the user already started the limit's number of runs in the window."""
        window = dt.timedelta(seconds=self.limits.window_seconds)
        runs = []
        for key in self.lake.list_keys(analyze_runs_prefix(user_id)):
            started = parse_analyze_run_key(key)
            if started is None:
                continue
            if started <= now - window:
                self.lake.delete(key)  # out of every future window
            else:
                runs.append(started)
        wait = retry_after(runs, now, self.limits.runs_per_window, window)
        if wait is None:
            self.lake.put_bytes(analyze_run_key(user_id, now, os.urandom(4).hex()), b"")
        return wait
