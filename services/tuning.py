"""Tuning a model over the lake's history (``oddsforge tune``, ``POST /models/{model_id}/tune``).

The model is replayed once by the backtester with every enabled source at weight 1 (the engine
scores each source once per line of the span); :mod:`domain.models.tuning` then evaluates every
trial on that replay at once. A run through the API is recorded on the model
(``stores.layout.tuning_key``): the listing's backtest count grows by the configurations it tried.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from domain.models.config import ModelConfig, parse_model_config
from domain.models.engine import ModelBatch, run_backtest
from domain.models.tuning import TuneSettings, TuningError, replay_arrays, tune, unit_weights
from services.backtests import span_report
from services.custom_scores import load_custom_scores
from services.engine_tables import load_tables
from services.ensembles import own_rows, with_members
from stores.lake import Lake
from stores.layout import tuning_key

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``replay`` game days, then ``trials`` once evaluated."""


def tune_model(
    lake: Lake,
    config: ModelConfig,
    start: dt.date,
    end: dt.date,
    settings: TuneSettings,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Walk-forward tuning of ``config`` over game dates ``start..end`` (inclusive): the report."""
    if end < start:
        raise TuningError(f"the span ends ({end}) before it starts ({start})")
    unit = parse_model_config(unit_weights(config))
    tables = load_tables(lake, config.sport, start, end + dt.timedelta(days=1))
    span = tables.games.filter(pl.col("game_date").is_between(start, end))
    configs = with_members(lake, unit)  # an ensemble is replayed over its members' analyses
    custom = load_custom_scores(lake, configs, span)

    def replayed(day: dt.date, done: int, total: int) -> None:
        if progress is not None:
            progress("replay", done, total)

    replay = run_backtest(
        ModelBatch.from_configs(configs), tables, start, end, custom, progress=replayed, keep_analyses=True
    )
    assert replay.explanations is not None  # kept: keep_analyses=True
    analyses = own_rows(replay.explanations.explained(), unit)
    report = tune(replay_arrays(analyses, tables.games, config.market), config, settings)
    if progress is not None:
        progress("trials", report["configurations"], report["configurations"])
    return span_report(config, start, end, span.height) | report


def run_tuning_job(
    lake: Lake, job_id: str, params: Mapping[str, Any], progress: Callable[[int, int], None]
) -> dict[str, Any]:
    """The job handler of ``POST /models/{model_id}/tune`` (``services/jobs.py``): tune the stored
    version in ``params`` and record the run on its model."""
    config = parse_model_config(params["config"])
    report = tune_model(
        lake,
        config,
        dt.date.fromisoformat(params["from"]),
        dt.date.fromisoformat(params["to"]),
        TuneSettings(**params["settings"]),
        lambda _stage, done, total: progress(done, total),
    )
    key = tuning_key(config.model_id, job_id, report["configurations"])
    report["recorded_as"] = key
    lake.put_bytes(key, json.dumps(report, sort_keys=True).encode())
    return report
