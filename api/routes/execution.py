"""Model execution: on-demand runs, recent analyses and performance of one model (the seed's
"Model Execution" endpoints).

Shared models with more than 10 subscribers are analysed on the daily schedule; any model the
caller may read is analysed on demand here (the seed's hybrid). An on-demand run scores the model's
latest version for one slate with the daily pipeline's engine, and its result is reused for an hour
per (model version, slate date) by every API worker (``services/on_demand.py``). Uncached runs are
limited per user (30 an hour by default); a cached answer is free.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import current_user
from api.clock import Now
from api.compliance import (
    ELIGIBILITY_RESPONSES,
    PICKS_RESPONSES,
    Disclaimed,
    DisclaimedPage,
    EligibleUser,
    PicksUser,
)
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail
from api.model_data import Partitions, explained, game_snapshots, model_rows, partitions
from api.pagination import Pagination, decode_cursor, page_of
from api.routes.games import SportKey, UtcDatetime
from api.snapshot_cache import SnapshotCache
from api.types import IsoDate
from api.visibility import ModelView, browsable, readable, snapshot_rows
from domain.marketplace.performance import MODEL_PERFORMANCE, ROLLING_DAYS, SETTLED_PICKS, rolling_performance
from domain.markets.value import KELLY_FRACTION, pick_values
from domain.models.config import ModelConfig
from domain.models.engine import ANALYSES, ANALYSIS_KEY, EXPLAINED
from domain.models.registry import UnusableUserIdError
from domain.sports import sport_info
from services.on_demand import ExecutionLimits, RunLimiter, cached_analyses, run_on_demand
from stores.lake import Lake

router = APIRouter(
    prefix="/models",
    tags=["execution"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 422, 500)},
)

KellyFraction = Annotated[
    float, Query(gt=0, le=1, description="Share of the Kelly stake to suggest (default a quarter).")
]
_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such model, or not one the caller may see."}}
ModelId = Annotated[str, Path(max_length=128, description="Model id, e.g. `user123--momentum-3fa9c1`.")]
MAX_DAYS = 366


# ---- response shapes ----------------------------------------------------------------------------


class SourceScore(BaseModel):
    name: str
    score: float | None = Field(description="Directional score in [0, 1] for the first side; null = missing.")
    weight: float | None = Field(description="Weight used, with any dynamic multiplier.")


class Analysis(BaseModel):
    """One model version's analysis of one game, market and bookmaker (SPEC 2)."""

    model_id: str
    version: int
    game_id: str
    game_date: dt.date
    market: str
    bookmaker: str
    cutoff_time: UtcDatetime | None
    snapshot_time: UtcDatetime | None
    line: float | None
    price_first: float | None
    price_second: float | None
    p: float | None = Field(description="Weighted probability of the first side (home or over).")
    pick: str | None
    raw_confidence: float | None
    confidence: float | None
    qualifies: bool | None = Field(description="Published to subscribers and counted in performance.")
    pick_price: float | None
    sources: list[SourceScore]


class PickValue(BaseModel):
    """The pick at the prices on offer at its cut-off, over every bookmaker's latest snapshot of its
    line (``domain.markets.value``); null without a pick or a price."""

    best_bookmaker: str | None = Field(description="Where the picked side's best price was.")
    best_price: float | None = Field(description="The picked side's best decimal price.")
    fair_probability: float | None = Field(
        description="No-vig probability of the picked side, multiplicative method, averaged over bookmakers."
    )
    fair_probability_power: float | None = Field(description="The same by the power method.")
    expected_value: float | None = Field(
        description="Expected profit per unit staked at the best price, with the model's confidence."
    )
    kelly_stake: float | None = Field(
        description="Suggested stake as a share of a bankroll: `kelly_fraction` of Kelly, at most 5%."
    )


class ValuedAnalysis(Analysis, PickValue):
    """An analysis with what its pick is worth at the prices on offer at its cut-off."""


class SettledAnalysis(ValuedAnalysis):
    result: str | None = Field(description="`won`, `lost` or `push` once the game is final; null before.")
    profit: float | None = Field(description="Units won or lost on a one-unit stake (qualifying picks).")
    clv: float | None = Field(description="Closing line value: closing minus pick-time no-vig probability.")


def _analyses(rows: list[dict[str, Any]], shape: type[Analysis] = Analysis) -> list[Any]:
    out = []
    for row in rows:
        names = row.pop("source_names") or []
        scores = row.pop("source_scores") or [None] * len(names)
        weights = row.pop("weights") or [None] * len(names)
        sources = [
            SourceScore(name=n, score=s, weight=w) for n, s, w in zip(names, scores, weights, strict=True)
        ]
        out.append(shape(**row, sources=sources))
    return out


class SlateRun(Disclaimed):
    """A model version's analyses of one slate, fresh or from the hour-long cache."""

    model_id: str
    version: int
    sport: str
    date: dt.date
    computed_at: UtcDatetime
    expires_at: UtcDatetime = Field(description="After this the next request computes afresh.")
    cached: bool = Field(description="Served from the cache (does not count against the run limit).")
    qualifying: int
    analyses: list[ValuedAnalysis] = Field(
        description="Every analysis; `qualifies` marks the published picks."
    )


class AnalyzeRequest(BaseModel):
    sport: SportKey | None = Field(default=None, description="Must be the model's sport when given.")
    date: IsoDate | None = Field(
        default=None, description="Game date of the slate (default: today, US time)."
    )


class EdgeFigures(BaseModel):
    """What ranks a model (SPEC 5): how far it beat the prices it took, and its closing line value."""

    breakeven: float | None = Field(
        description="Mean break-even probability (1 / decimal price) of the graded picks: the accuracy "
        "the prices taken need."
    )
    clv: float | None = Field(
        description="Mean closing line value (closing minus pick-time no-vig probability of the picked "
        "side) over picks with a closing line; null without one."
    )
    clv_low: float | None = Field(description="Lower end of the 95% interval of the mean CLV (2+ picks).")
    clv_high: float | None = Field(description="Upper end of the 95% interval of the mean CLV (2+ picks).")
    clv_picks: int = Field(description="Picks with a closing line (the CLV's sample).")
    performance_score: float = Field(
        description="Edge lower bound: the lower end of the 95% Wilson interval of accuracy minus the "
        "mean break-even probability; positive = beat its prices with 95% confidence."
    )


class Figures(EdgeFigures):
    """Figures of one model version over a window of days (summed from daily rows)."""

    version: int
    days: int
    through: dt.date
    graded: int = Field(description="Wins and losses (pushes are refunded and left out).")
    wins: int
    accuracy: float | None
    units: float
    profit: float
    roi: float | None
    brier: float | None


class DailyPerformance(BaseModel):
    """One ``model_performance`` row (SPEC 5): a model version's picks settled on one day, with the
    rolling 30-day figures of that day."""

    model_config = {"extra": "allow"}

    model_id: str
    version: int
    date: dt.date


class CalibrationBin(BaseModel):
    bin: int
    lower: float
    upper: float
    n: int
    mean_confidence: float
    win_rate: float


class PerformanceReport(Disclaimed):
    model_id: str
    version: int
    sport: str
    first: dt.date
    last: dt.date
    window: Figures | None = Field(description="The version's figures over the whole window.")
    rolling: Figures | None = Field(description="The version's rolling 30 days ending on `last`.")
    daily: list[DailyPerformance]
    calibration: list[CalibrationBin] = Field(description="Reliability table of the version.")


# ---- helpers ------------------------------------------------------------------------------------


def window(
    request: Request, view: ModelView, table: str, to: dt.date | None, days: int, now: dt.datetime
) -> tuple[dt.date, dt.date, Partitions]:
    """``first..last`` of a window of ``days`` ending at ``to``, or at the sport's newest partition
    of ``table`` up to today (so a finished season still shows its last days), and the partitions."""
    sport = view.latest.payload["sport"]
    parts = partitions(request.app.state.store, table, sport)
    today = sport_info(sport).local_date(now)
    last = to or parts.latest(today) or today
    return last - dt.timedelta(days=days - 1), last, parts


def figures(rows: pl.DataFrame, version: int, last: dt.date, days: int) -> Figures | None:
    """The version's :func:`domain.marketplace.performance.rolling_performance` over ``days``
    ending at ``last``."""
    found = rolling_performance(rows, last, days).filter(pl.col("version") == version)
    if found.is_empty():
        return None
    r = found.row(0, named=True)
    return Figures(
        version=version,
        days=days,
        through=last,
        graded=r["rolling_graded"],
        wins=r["rolling_wins"],
        accuracy=r["rolling_accuracy"],
        units=r["rolling_units"],
        profit=r["rolling_profit"],
        roi=r["rolling_roi"],
        brier=r["rolling_brier"],
        breakeven=r["rolling_breakeven"],
        clv=r["rolling_clv"],
        clv_low=r["rolling_clv_low"],
        clv_high=r["rolling_clv_high"],
        clv_picks=r["rolling_clv_picks"],
        performance_score=r["performance_score"],
    )


def calibration(request: Request, model_id: str, version: int) -> list[CalibrationBin]:
    rows = snapshot_rows(
        request.app.state.store,
        "SELECT * FROM model_calibration WHERE model_id = ? AND version = ? ORDER BY bin",
        [model_id, version],
    )
    return [CalibrationBin(**r) for r in rows]


_REPORTS: SnapshotCache[PerformanceReport] = SnapshotCache(max_entries=256)
"""Performance reports of the current snapshot: its manifest fixes the days a report reads."""


def performance_report(
    request: Request, view: ModelView, to: dt.date | None, days: int, version: int | None, now: dt.datetime
) -> PerformanceReport:
    """The model's daily rows over the window, the figures of one version (default the latest)."""
    first, last, parts = window(request, view, "model_performance", to, days, now)
    sport, model_id = view.latest.payload["sport"], view.state.model_id
    chosen = version or view.state.latest

    def compute() -> PerformanceReport:
        rows = model_rows(
            request.app.state.lake, parts.between(first, last), model_id, MODEL_PERFORMANCE
        ).sort("date", "version")
        return PerformanceReport(
            model_id=model_id,
            version=chosen,
            sport=sport,
            first=first,
            last=last,
            window=figures(rows, chosen, last, days),
            rolling=figures(rows, chosen, last, ROLLING_DAYS),
            daily=[DailyPerformance(**r) for r in rows.to_dicts()],
            calibration=calibration(request, model_id, chosen),
        )

    return _REPORTS.lookup(request.app.state.store, (model_id, chosen, first, last), compute)


# ---- routes -------------------------------------------------------------------------------------


@router.post(
    "/{model_id}/analyze",
    summary="Run a model on a slate now (cached for an hour)",
    responses=_NOT_FOUND
    | PICKS_RESPONSES
    | {
        400: {"model": ErrorBody, "description": "The caller's user id cannot run models."},
        409: {"model": ErrorBody, "description": "The model is archived."},
        429: {"model": ErrorBody, "description": "Too many uncached runs; `Retry-After` says when to retry."},
    },
)
def analyze(
    model_id: ModelId,
    user: PicksUser,
    request: Request,
    now: Now,
    body: Annotated[AnalyzeRequest | None, Body()] = None,
    kelly_fraction: KellyFraction = KELLY_FRACTION,
) -> SlateRun:
    """Scores the model's latest version against every game and bookmaker of the slate, with the
    daily pipeline's engine and point-in-time rules (today's slate as of now, a past slate at each
    game's start). Owners run their models; others run free public models and paid models they
    subscribe to. A result computed within the hour for the same version and slate is returned as
    is (`cached: true`) and does not count against the caller's runs. Each pick carries what it is
    worth at the prices on offer at its cut-off (nothing later), as in the model's results: the best
    price and its bookmaker, the no-vig fair probability, the expected value at the best price and a
    fractional-Kelly stake."""
    view = readable(request, model_id, user, now)
    if view.state.archived:
        raise ApiError(409, "conflict", f"model {model_id!r} is archived; archived models do not run")
    config = ModelConfig.model_validate(view.latest.payload)
    body = body or AnalyzeRequest()
    if body.sport is not None and body.sport.value != config.sport:
        detail = ErrorDetail(field="body.sport", message=f"the model's sport is {config.sport}", type="sport")
        raise ApiError(422, "validation_error", "invalid request: body.sport", [detail])
    day = body.date or sport_info(config.sport).local_date(now)
    lake: Lake = request.app.state.lake
    limits: ExecutionLimits = request.app.state.execution
    result = cached_analyses(lake, config, day, now, limits)
    if result is None:
        try:
            wait = RunLimiter(lake, limits).acquire(user, now)
        except UnusableUserIdError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "too_many_requests",
                f"at most {limits.runs_per_window} uncached runs per {limits.window_seconds / 60:.0f} "
                f"minutes; retry in {seconds} s (cached results stay available)",
                headers={"Retry-After": str(seconds)},
            )
        result = run_on_demand(lake, config, day, now)
    frame = result.analyses.sort("game_id", "bookmaker").select(list(EXPLAINED))
    frame = pick_values(frame, game_snapshots(lake, config.sport, frame), kelly_fraction)
    return SlateRun(
        model_id=model_id,
        version=config.version,
        sport=config.sport,
        date=day,
        computed_at=result.computed_at,
        expires_at=result.computed_at + dt.timedelta(seconds=limits.cache_seconds),
        cached=result.cached,
        qualifying=int(frame["qualifies"].sum()) if frame.height else 0,
        analyses=_analyses(frame.to_dicts(), ValuedAnalysis),
    )


_RESULTS: SnapshotCache[bytes] = SnapshotCache(max_entries=512)
"""Results pages of the current snapshot as JSON: a page is the same for every reader (who may read
is checked per request), so the hottest model pages cost a dictionary lookup."""


@router.get(
    "/{model_id}/results",
    summary="A model's recent analyses and their results",
    response_model=DisclaimedPage[SettledAnalysis],
    responses=_NOT_FOUND | PICKS_RESPONSES,
)
def results(
    model_id: ModelId,
    user: PicksUser,
    request: Request,
    now: Now,
    page: Pagination,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days in the window.")] = 7,
    to: Annotated[
        IsoDate | None, Query(description="Last game date (default: the newest with analyses).")
    ] = None,
    include_all: Annotated[
        bool, Query(alias="all", description="Include analyses below the confidence threshold.")
    ] = False,
    kelly_fraction: KellyFraction = KELLY_FRACTION,
) -> Response:
    """The analyses the daily pipeline stored for the model over the window (every version), newest
    game date first, with `result`, `profit` and closing line value once settled, and what each pick
    is worth at the prices on offer at its cut-off: the best price and its bookmaker, the no-vig fair
    probability, the expected value at the best price and a fractional-Kelly stake. Qualifying picks
    only unless `all=true`. The same readers as the model's analyses may call it. Days are those of
    the latest publication (a day the pipeline is writing appears with the next one, minutes later)."""
    view = readable(request, model_id, user, now)
    first, last, parts = window(request, view, "analyses", to, days, now)
    sport, store = view.latest.payload["sport"], request.app.state.store

    def compute() -> bytes:
        lake = request.app.state.lake
        analyses = model_rows(lake, parts.between(first, last), model_id, ANALYSES)
        if not include_all:
            analyses = analyses.filter(pl.col("qualifies"))
        settled_keys = partitions(store, "settled_picks", sport).between(first, last)
        settled = model_rows(lake, settled_keys, model_id, SETTLED_PICKS)
        rows = analyses.join(
            settled.select(*ANALYSIS_KEY, "result", "profit", "clv"), on=ANALYSIS_KEY, how="left"
        ).with_columns(
            pl.col("game_date").cast(pl.String).alias("_day"), pl.col("version").cast(pl.String).alias("_v")
        )
        rows = rows.sort(["_day", "game_id", "bookmaker", "_v"], descending=[True, False, False, False])
        if page.cursor is not None:
            day, game, book, v = decode_cursor(page.cursor, arity=4)
            # Newest day first, then game, bookmaker and version ascending: strictly after the cursor.
            later = (
                (pl.col("_day") < day)
                | ((pl.col("_day") == day) & (pl.col("game_id") > game))
                | ((pl.col("_day") == day) & (pl.col("game_id") == game) & (pl.col("bookmaker") > book))
                | (
                    (pl.col("_day") == day)
                    & (pl.col("game_id") == game)
                    & (pl.col("bookmaker") == book)
                    & (pl.col("_v") > v)
                )
            )
            rows = rows.filter(later)
        head = explained(lake, store, sport, model_id, rows.head(page.limit + 1))
        head = pick_values(head, game_snapshots(lake, sport, head), kelly_fraction)
        items = _analyses(head.drop("_day", "_v").to_dicts(), SettledAnalysis)
        found = page_of(
            items, page.limit, key=lambda a: (a.game_date.isoformat(), a.game_id, a.bookmaker, str(a.version))
        )
        answer = DisclaimedPage[SettledAnalysis](
            items=found.items, next_cursor=found.next_cursor, limit=found.limit
        )
        return answer.model_dump_json(by_alias=True).encode()

    key = (model_id, first, last, include_all, page.cursor, page.limit, kelly_fraction)
    return Response(_RESULTS.lookup(store, key, compute), media_type="application/json")


@router.get(
    "/{model_id}/performance",
    summary="A model's daily and rolling performance",
    responses=_NOT_FOUND | ELIGIBILITY_RESPONSES,
)
def performance(
    model_id: ModelId,
    user: EligibleUser,
    request: Request,
    now: Now,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days in the window.")] = 90,
    to: Annotated[IsoDate | None, Query(description="Last day (default: the newest with results).")] = None,
    version: Annotated[
        int | None, Query(ge=1, description="Figures of this version (default: latest).")
    ] = None,
) -> PerformanceReport:
    """Daily `model_performance` rows of every version over the window (SPEC 5: predictions, wins,
    accuracy, average confidence, ROI, Brier score, pushes, units, log loss, closing line value and
    the rolling 30-day figures), the chosen version's figures over the window and its last 30 days,
    and its calibration table. Visible for listed models and to anyone who may read the model."""
    view = browsable(request, model_id, user, now)
    if version is not None and version not in view.state.versions:
        raise ApiError(404, "not_found", f"model {model_id!r} has no version {version}")
    return performance_report(request, view, to, days, version, now)
