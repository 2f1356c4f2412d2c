"""Daily analyses: every due model version x game x bookmaker of a day, in one vectorised pass.

A run covering several days (a backfill) scores them in order, so dynamic weighting on day D sees
the analyses of the days before D written by the same run, exactly as a backtest does. Past days
are scored with the backtest cut-off (``commence_time``); today's slate with the run's clock.
Ensembles are scored after their members within each day (``score_day``'s layers); a run of some
models scores the members they use along with them (at the same cut-off) but stores only its own.
"""

import datetime as dt
import time
from dataclasses import replace

import dagster as dg
import polars as pl
from pydantic import Field

from assets.common import daily_partitions, partition_days, table_metadata
from domain.models.engine import (
    ANALYSES,
    ANALYSIS_WEIGHTS,
    SOURCE_SCORES,
    ModelBatch,
    Scored,
    clustered,
    multipliers_from_history,
    score_day_explained,
)
from domain.models.engine.scoring import DYNAMIC_WINDOW_DAYS, SOURCE_SCORE_KEY
from domain.models.registry import MODEL_VERSIONS
from domain.models.sources.model import member_versions
from domain.sports import SPORTS
from domain.tables.schemas import conform
from services.commitments import commit_run
from services.custom_scores import load_custom_scores
from services.engine_tables import load_scored, load_tables
from stores.lake import Lake
from stores.layout import table_key


class AnalysesConfig(dg.Config):
    sports: list[str] = Field(default_factory=lambda: list(SPORTS))
    model_ids: list[str] = Field(default_factory=list)
    """Score only these models (empty: every active model). Their rows replace theirs in each day's
    partition and the other models' rows stay (the popular models' scheduled run)."""
    missing_only: bool = False
    """Per day, score only the due models without analyses that day yet and keep every existing row:
    the record run for models that otherwise run on demand (cut-off at each game's start)."""


def due_versions(model_versions: pl.DataFrame, model_ids: list[str]) -> pl.DataFrame:
    """The latest version of every active model (or of the given ones): what a daily run scores."""
    latest = (
        model_versions.sort("version")
        .group_by("model_id", maintain_order=True)
        .last()
        .filter(pl.col("status") == "active")
    )
    return latest.filter(pl.col("model_id").is_in(model_ids)) if model_ids else latest


def read_model_versions(lake: Lake) -> pl.DataFrame:
    key = table_key("model_versions")
    return lake.read_parquet([key]) if lake.exists(key) else pl.DataFrame(schema=MODEL_VERSIONS)


def _merged(
    lake: Lake, sport: str, day: dt.date, out: Scored, scored: pl.Series | None, kept: bool
) -> Scored:
    """What to store for ``day``: ``out``, plus the stored analyses and weights of the models not in
    ``scored`` (None: every model was scored), plus the stored source scores that they read and
    that the run did not reproduce; with ``kept`` (committed picks kept as stored, perhaps at an
    earlier cut-off), every stored source score the run did not reproduce."""
    if scored is None and not kept:
        return Scored(clustered(out.analyses), out.source_scores, clustered(out.weights))
    stored = load_scored(lake, sport, day, day + dt.timedelta(days=1))
    others = pl.col("model_id").is_in(scored.implode()).not_() if scored is not None else pl.lit(False)
    weights = pl.concat([conform(stored.weights.filter(others), ANALYSIS_WEIGHTS), out.weights])
    earlier = conform(stored.source_scores, SOURCE_SCORES).join(
        out.source_scores, on=SOURCE_SCORE_KEY, how="anti"
    )
    scores = pl.concat([earlier, out.source_scores]).join(
        weights.select("source").unique(), on="source", how="semi", maintain_order="left"
    )
    return Scored(
        clustered(
            pl.concat([conform(stored.analyses.filter(others), ANALYSES), conform(out.analyses, ANALYSES)])
        ),
        scores.sort("market", "source", maintain_order=True),
        clustered(weights),
    )


def _write(lake: Lake, sport: str, day: dt.date, day_tables: Scored) -> dict[dt.date, int]:
    """Write a day's three tables, the analyses last: a reader that sees the new analyses finds
    what went into them."""
    for table, frame in (
        ("source_scores", day_tables.source_scores),
        ("analysis_weights", day_tables.weights),
        ("analyses", day_tables.analyses),
    ):
        written = lake.write_daily(frame, lambda d, t=table: table_key(t, sport, d), [day])
    return written


def analyse_days(
    lake: Lake,
    versions: pl.DataFrame,
    sport: str,
    days: list[dt.date],
    now: dt.datetime,
    keep_others: bool = False,
    stored: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, dict[dt.date, int]]:
    """Score ``days`` for the model versions of ``sport`` and write one partition per day of each
    of the three tables (``SCORED_LAKE_TABLES``); with ``keep_others`` the stored rows of other
    models stay in each partition. The members that ensembles among them use are scored too (from
    ``stored``, the ``model_versions`` rows), not written."""
    versions = versions.filter(pl.col("sport") == sport)
    if versions.is_empty():
        if keep_others:
            return pl.DataFrame(schema=ANALYSES), {}
        written: dict[dt.date, int] = {}
        for day in days:
            written.update(_write(lake, sport, day, Scored.empty()))
        return pl.DataFrame(schema=ANALYSES), written
    helpers = member_versions(versions, versions if stored is None else stored)
    scored = pl.concat([versions, helpers])
    models = ModelBatch.from_frame(scored)
    start, end = days[0], days[-1] + dt.timedelta(days=1)
    tables = load_tables(lake, sport, start, end)
    past = load_scored(lake, sport, start - dt.timedelta(days=DYNAMIC_WINDOW_DAYS), start)
    custom = load_custom_scores(
        lake, scored, tables.games.filter(pl.col("game_date").is_between(start, days[-1]))
    )
    written, frames = {}, []
    own = versions.select("model_id", "version")
    for day in days:
        as_of = now if day >= now.date() else None
        multipliers = (
            multipliers_from_history(past, tables.games, day) if models.uses_dynamic_weighting else None
        )
        out = score_day_explained(models, tables, day, as_of, multipliers, custom)
        if not helpers.is_empty():
            out = out.of_models(own)
        done = commit_run(lake, versions, sport, day, out.analyses)
        out = replace(out, analyses=done.analyses)
        written.update(
            _write(
                lake,
                sport,
                day,
                _merged(
                    lake, sport, day, out, own["model_id"] if keep_others else None, bool(done.conflicts)
                ),
            )
        )
        frames.append(out.analyses)
        if models.uses_dynamic_weighting:
            past = Scored.concat([past.between(day - dt.timedelta(days=DYNAMIC_WINDOW_DAYS - 1), end), out])
    return pl.concat(frames), written


ANALYSES_POOL = "analyses_writes"
"""Concurrency pool of the analyses step (limit 1 in deploy/dagster.yaml): runs for a subset of
models merge into a day's object, so two writers at once could lose one's rows."""


@dg.asset(
    deps=["games", "team_box_scores", "player_box_scores", "odds_snapshots", "model_versions"],
    group_name="analyses",
    kinds={"polars", "parquet"},
    description="One row per model version x game x bookmaker: p, pick, confidence, qualifies, and "
    "the line and price at pick time (point in time); what went into p is written beside it, once "
    "per distinct source and line (source_scores) and per model, day and source (analysis_weights).",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=ANALYSES_POOL,
)
def analyses(
    context: dg.AssetExecutionContext, config: AnalysesConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    _, _, days = partition_days(context)
    stored = read_model_versions(lake)
    versions = due_versions(stored, config.model_ids)
    started, now = time.monotonic(), dt.datetime.now(dt.UTC)
    frames, written, scored = [], {}, 0
    for sport in config.sports:
        if config.missing_only:
            for day in days:
                present = lake.read_table("analyses", sport, day, day + dt.timedelta(days=1), ANALYSES)
                todo = versions.filter(~pl.col("model_id").is_in(present["model_id"].unique().implode()))
                out, counts = analyse_days(lake, todo, sport, [day], now, keep_others=True, stored=stored)
                frames.append(out)
                written.update(counts)
                scored += todo.filter(pl.col("sport") == sport).height
        else:
            out, counts = analyse_days(
                lake, versions, sport, days, now, keep_others=bool(config.model_ids), stored=stored
            )
            frames.append(out)
            written.update(counts)
            scored += versions.filter(pl.col("sport") == sport).height
    out = pl.concat(frames)
    return dg.MaterializeResult(
        metadata={
            **table_metadata(out, days, written),
            "models_scored": scored,
            "mode": "missing only" if config.missing_only else "models" if config.model_ids else "all",
            "qualifying_picks": int(out.get_column("qualifies").sum()) if out.height else 0,
            "seconds": round(time.monotonic() - started, 2),
        }
    )


analysis_assets = [analyses]
