"""Backtests of one model over the lake's history, shared by ``oddsforge backtest`` and the API.

Each completed backtest is recorded in the inbox (``stores.layout.backtest_key``):
publishing a model needs one with at least 50 graded predictions (SPEC 6). A draft config's
backtest (``POST /backtests``) is recorded against the model its author names
(``stores.layout.draft_backtest_key``), so it counts for publishing and in the listing's disclosure
like any other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from domain.markets.value import KELLY_FRACTION, KELLY_UNIT, MAX_STAKE
from domain.models.config import ModelConfig, parse_model_config
from domain.models.engine import ModelBatch, run_backtest
from domain.models.registry import SERVER_FIELDS
from services.custom_scores import load_custom_scores
from services.engine_tables import load_tables
from services.ensembles import own_rows, with_members
from stores.lake import Lake
from stores.layout import backtest_key, backtests_prefix, draft_backtest_key

MAX_SPAN_DAYS = 366 * 6
"""Longest backtest the API runs synchronously (six seasons)."""

Progress = Callable[[dt.date, int, int], None]


def _records(df: pl.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.write_json())


def backtest_model(
    lake: Lake,
    config: ModelConfig,
    start: dt.date,
    end: dt.date,
    progress: Progress | None = None,
    kelly_fraction: float = KELLY_FRACTION,
) -> dict[str, Any]:
    """Replay ``config`` over game dates ``start..end`` (inclusive) as if live; return the report,
    whose ``kelly_*`` figures stake ``kelly_fraction`` of Kelly (stated in its ``kelly``)."""
    if end < start:
        raise ValueError(f"the backtest ends ({end}) before it starts ({start})")
    tables = load_tables(lake, config.sport, start, end + dt.timedelta(days=1))
    span = tables.games.filter(pl.col("game_date").is_between(start, end))
    configs = with_members(lake, config)  # an ensemble is replayed over its members' analyses
    custom = load_custom_scores(lake, configs, span)
    result = run_backtest(
        ModelBatch.from_configs(configs),
        tables,
        start,
        end,
        custom,
        progress=progress,
        keep_analyses=False,
        kelly_fraction=kelly_fraction,
    )
    summary = _records(own_rows(result.summary, config).drop("model_id", "version"))[0]
    return span_report(config, start, end, span.height) | {
        "kelly": {"fraction": kelly_fraction, "max_stake": MAX_STAKE, "unit": KELLY_UNIT},
        "summary": summary,
        "monthly": _records(own_rows(result.monthly, config).drop("model_id", "version")),
    }


def span_report(config: ModelConfig, start: dt.date, end: dt.date, games_in_span: int) -> dict[str, Any]:
    """The head every report of a replay shares (a backtest's, a tuning run's): which model, which
    span, how many games it held."""
    return {
        "model_id": config.model_id,
        "version": config.version,
        "sport": config.sport,
        "market": config.market,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "games_in_span": games_in_span,
    }


def record_backtest(lake: Lake, report: dict[str, Any]) -> str:
    """Store a backtest report in the inbox (the latest run of the same span replaces the previous):
    a version's, or with ``draft`` (:func:`draft_digest`) a draft's."""
    span = dt.date.fromisoformat(report["from"]), dt.date.fromisoformat(report["to"])
    if report.get("draft"):
        key = draft_backtest_key(report["model_id"], report["draft"], *span)
    else:
        key = backtest_key(report["model_id"], report["version"], *span)
    lake.put_bytes(key, json.dumps(report, sort_keys=True).encode())
    return key


def draft_digest(config: ModelConfig) -> str:
    """16 hex digits naming a draft by its content (the server's fields left out)."""
    payload = {k: v for k, v in config.to_payload().items() if k not in SERVER_FIELDS}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[
        :16
    ]


def backtest_draft(
    lake: Lake,
    config: ModelConfig,
    start: dt.date,
    end: dt.date,
    record_as: str | None,
    progress: Progress | None = None,
    kelly_fraction: float = KELLY_FRACTION,
) -> dict[str, Any]:
    """The backtest of a draft config, recorded against model ``record_as`` when given (the caller
    checked that its author owns it): the report names that model (or none) and no version."""
    report = backtest_model(lake, config, start, end, progress, kelly_fraction)
    report |= {"model_id": record_as, "version": None, "draft": draft_digest(config)}
    report["recorded_as"] = None if record_as is None else record_backtest(lake, report)
    return report


def run_draft_job(
    lake: Lake, _job_id: str, params: Mapping[str, Any], progress: Callable[[int, int], None]
) -> dict[str, Any]:
    """The job handler of a long draft backtest (``services/jobs.py``); ``params`` as the API wrote
    them: the validated config payload, ``from``, ``to``, ``model_id`` (or null) and
    ``kelly_fraction`` (absent from jobs queued before it existed)."""
    return backtest_draft(
        lake,
        parse_model_config(params["config"]),
        dt.date.fromisoformat(params["from"]),
        dt.date.fromisoformat(params["to"]),
        params["model_id"],
        lambda _day, done, total: progress(done, total),
        params.get("kelly_fraction", KELLY_FRACTION),
    )


def recorded_backtests(lake: Lake, model_id: str) -> list[dict[str, Any]]:
    """Every recorded backtest report of ``model_id``, of any of its versions."""
    keys = [k for k in lake.list_keys(backtests_prefix(model_id)) if k.endswith(".json")]
    return [json.loads(lake.get_bytes(key)) for key in keys]


def best_backtest_graded(lake: Lake, model_id: str) -> int:
    """The most graded predictions of any recorded backtest of the model (0 if none): what the
    publishing rule (``domain.marketplace.performance.can_publish``) is checked against."""
    return max((int(r["summary"]["graded"]) for r in recorded_backtests(lake, model_id)), default=0)
