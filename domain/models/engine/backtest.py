"""Backtests: replay a date range exactly as the live pipeline would have run it, day by day (SPEC 5).

Each day is scored as :func:`score_day` would with the backtest cut-off (``commence_time``), dynamic
weighting fed only by the backtest's own earlier analyses, then every analysis is graded against the
final score at its own line and price. The report carries, per model version, the whole span and
each month: analyses, qualifying picks, wins / losses / pushes, accuracy, units, profit, ROI, Brier
score, log loss and picks per side, and the same units, profit and ROI at fractional-Kelly stakes
(``kelly_*``). Pushes are refunded and left out of accuracy, units and ROI.

Ensembles (model sources) are scored after their members, span by span: the batch's dependency
layers in order, each over the span's analyses of the layers before it.

The days are not scored one by one: a span of up to :data:`SPAN_DAYS` game days is scored in one pass
(:func:`span_matrices`: every game as of its own date). Dynamic weighting does not force a loop over
days either: a source's calls and hits depend on its scores and the results, never on a model's
weights, so each span's calls are counted per day first and every day's multipliers (over the 30
days before it) are differences of running sums (:class:`DynamicWeights`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from domain.markets.grading import FIRST_SIDE, SECOND_SIDE, first_side_margin, grade, profit
from domain.markets.value import KELLY_FRACTION, KELLY_UNIT, check_fraction, kelly_stakes
from domain.models.engine.scoring import (
    ANALYSES,
    DYNAMIC_PRIOR_CALLS,
    DYNAMIC_PRIOR_HITS,
    DYNAMIC_WINDOW_DAYS,
    MULTIPLIER_MAX,
    MULTIPLIER_MIN,
    SLOTS,
    ModelBatch,
    Scored,
    SourceMatrix,
    Weigh,
    Weighed,
    analyses_frame,
    member_analyses,
    settled_games,
    source_score_rows,
    span_matrices,
    weighed_blocks,
    weight_rows,
)
from domain.models.features import Tables, day_number

Progress = Callable[[dt.date, int, int], None]
"""``progress(day, days_done, days_total)`` after each scored span of days."""

SIDES = ("home", "away", "over", "under")
KEYS = ["model_id", "version"]
LOG_LOSS_EPS = 1e-15
"""Confidences are clipped to ``[eps, 1 - eps]`` before the log: a certain miss costs ~34.5, not inf."""
SPAN_DAYS = 64
"""Game days scored in one pass: bounds the span's score matrices (lines x distinct sources) and the
source kinds' per-date arrays; a season is three spans."""


@dataclass(frozen=True)
class BacktestResult:
    summary: pl.DataFrame
    """One row per model version over the whole span (columns of :func:`performance`)."""
    monthly: pl.DataFrame
    """One row per model version and month (``YYYY-MM``) that has analyses."""
    analyses: pl.DataFrame | None
    """Every analysis (:data:`ANALYSES`) with ``result`` and ``profit`` (see :func:`grade_analyses`),
    when asked for; None otherwise."""
    explanations: Scored | None = None
    """With ``analyses``: the same analyses (ungraded) with their source scores and weights."""


def run_backtest(
    models: ModelBatch,
    tables: Tables,
    start: dt.date,
    end: dt.date,
    custom_scores: pl.DataFrame | None = None,
    progress: Progress | None = None,
    keep_analyses: bool = True,
    kelly_fraction: float = KELLY_FRACTION,
) -> BacktestResult:
    """Score every day from ``start`` to ``end`` (inclusive) that has games of the models' sports;
    ``kelly_fraction`` sizes the ``kelly_*`` figures' stakes.

    Each span's analyses are graded and folded into tallies per model version and month, so memory
    holds a chunk of analyses (plus all of them only with ``keep_analyses``, which a backtest of many
    models should leave off).
    """
    check_fraction(kelly_fraction)
    days = game_days(models, tables, start, end)
    dynamic = DynamicWeights(models, days, tables.games) if models.uses_dynamic_weighting else None
    kept: list[Scored] = []  # with keep_analyses
    empty = Scored.empty()
    tallies: list[pl.DataFrame] = []
    for first in range(0, len(days), SPAN_DAYS):
        span = days[first : first + SPAN_DAYS]
        scored: list[pl.DataFrame] = []  # the span's analyses of the layers so far, for ensembles
        for layer in range(models.layers):
            members = member_analyses(None, scored)
            for matrix in span_matrices(models, tables, span, None, custom_scores, members, layer):
                weigh = None if dynamic is None else dynamic.weigh(matrix)
                results = _line_results(matrix, tables.games)
                for block in weighed_blocks(models, matrix, weigh):
                    tallies.append(_block_tally(matrix, block, results, kelly_fraction))
                    if keep_analyses or layer + 1 < models.layers:
                        frame = analyses_frame(models, matrix, block)
                        scored.append(frame)
                        if keep_analyses:
                            kept.append(
                                Scored(frame, empty.source_scores, weight_rows(models, matrix, block))
                            )
                if keep_analyses:
                    kept.append(Scored(empty.analyses, source_score_rows(models, matrix), empty.weights))
        if progress is not None:
            progress(span[-1], first + len(span), len(days))
    if tallies:  # a month's sums from its spans (at most two), in date order
        spans = pl.concat(tallies).group_by("model", "month", maintain_order=True).agg(pl.all().sum())
        monthly = pl.concat(
            [models.frame.select(KEYS)[spans["model"]], spans.drop("model")], how="horizontal"
        )
    else:
        none = grade_analyses(pl.DataFrame(schema=ANALYSES), tables.games)
        monthly = tally(none, [*KEYS, "month"], kelly_fraction)
    totals = monthly.drop("month").group_by(*KEYS).agg(pl.all().sum())
    everyone = models.frame.select(*KEYS).unique(maintain_order=True)
    summary = everyone.join(totals, on=KEYS, how="left").with_columns(pl.exclude(KEYS).fill_null(0))
    explanations = Scored.concat(kept) if keep_analyses else None
    return BacktestResult(
        summary=metrics(summary),
        monthly=metrics(monthly).sort(*KEYS, "month"),
        analyses=None if explanations is None else grade_analyses(explanations.analyses, tables.games),
        explanations=explanations,
    )


def game_days(models: ModelBatch, tables: Tables, start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates from ``start`` to ``end`` (inclusive) with games of the models' sports, in order."""
    sports = sorted(set(models.sport.tolist()))
    return (
        tables.games.filter(pl.col("sport").is_in(sports) & pl.col("game_date").is_between(start, end))
        .get_column("game_date")
        .unique()
        .sort()
        .to_list()
    )


WON, LOST, PUSH, UNGRADED = range(4)
"""Result codes of :func:`_line_results`."""


def _line_results(matrix: SourceMatrix, games: pl.DataFrame) -> np.ndarray:
    """Per line of ``matrix``, the result code of its first and of its second side (line x 2), graded
    as :func:`grade_analyses` grades a pick."""
    lines = matrix.lines.select("game_id", "line").join(
        final_scores(games), on="game_id", how="left", maintain_order="left"
    )
    codes = [
        grade(pl.lit(matrix.market), pl.col("line"), pl.col("home_score"), pl.col("away_score"), pl.lit(side))
        .replace_strict(["won", "lost", "push"], [WON, LOST, PUSH], default=UNGRADED, return_dtype=pl.Int8)
        .alias(side)
        for side in (FIRST_SIDE[matrix.market], SECOND_SIDE[matrix.market])
    ]
    return lines.select(codes).to_numpy()


def _block_tally(
    matrix: SourceMatrix, block: Weighed, results: np.ndarray, kelly_fraction: float
) -> pl.DataFrame:
    """:func:`tally` per model (``model``: its index in the batch) and month of ``block``'s analyses,
    computed on the block's line x model arrays without building rows: a backtest of 1,000 models
    over five seasons grades 30 M analyses. Sums run over the month's lines in date order."""
    first, scored = block.first, block.scored
    q = block.qualifies & scored
    result = np.where(first, results[:, :1], results[:, 1:])
    won, lost = q & (result == WON), q & (result == LOST)
    counted = won | lost
    prices = matrix.lines.select("price_first", "price_second").to_numpy()
    price = np.where(first, prices[:, :1], prices[:, 1:])
    priced = counted & ~np.isnan(price)  # a pick without a price has no profit (a null in the rows)
    confidence = block.confidence
    clipped = np.clip(confidence, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        stake = np.where(priced, kelly_stakes(confidence, price, kelly_fraction) / KELLY_UNIT, 0.0)
        columns = {
            "analyses": scored,
            "qualifying": q,
            "wins": won,
            "losses": lost,
            "pushes": q & (result == PUSH),
            "profit": np.where(priced, np.where(won, price - 1.0, -1.0), 0.0),
            "brier_sum": np.where(counted, (confidence - won) ** 2, 0.0),
            "log_loss_sum": np.where(counted, -np.where(won, np.log(clipped), np.log(1 - clipped)), 0.0),
            "breakeven_sum": np.where(priced, 1 / price, 0.0),
            "confidence_sum": np.where(q, confidence, 0.0),
            "kelly_units": stake,
            "kelly_profit": np.where(won & priced, stake * (price - 1.0), -stake),
            **{f"picks_{side}": np.zeros_like(q) for side in SIDES},
        }
    columns[f"picks_{FIRST_SIDE[matrix.market]}"] = q & first
    columns[f"picks_{SECOND_SIDE[matrix.market]}"] = q & ~first
    line_month = matrix.lines["game_date"].to_numpy().astype("datetime64[M]")
    starts = np.flatnonzero(np.r_[True, line_month[1:] != line_month[:-1]])
    n_months, n_models = len(starts), first.shape[1]
    sums = {
        name: np.add.reduceat(
            values if values.dtype == np.float64 else values.astype(np.int64), starts, axis=0
        )
        for name, values in columns.items()
    }
    frame = pl.DataFrame(
        {
            "model": np.tile(matrix.group[block.part], n_months),
            "month": np.repeat(np.datetime_as_string(line_month[starts], unit="M"), n_models),
            **{name: values.ravel() for name, values in sums.items()},
        }
    )
    return frame.filter(pl.col("analyses") > 0)


class DynamicWeights:
    """SPEC section 4 "Dynamic weighting" over a backtest's own analyses, for every day at once.

    Per game day of the backtest, model and slot: the source's hits and calls on that day's settled
    analyses (what :func:`domain.models.engine.scoring.source_calls` counts). Spans are scored in date
    order, so when a span is weighed every earlier day's counts are in; a day's multiplier sums the
    30 days before it as a difference of running sums. Counts are integers, so the multipliers are
    exactly those :func:`domain.models.engine.scoring.multipliers_from_calls` gives day by day.
    """

    def __init__(self, models: ModelBatch, days: Sequence[dt.date], games: pl.DataFrame) -> None:
        self.models = models
        self.days = np.array([day_number(d) for d in days], dtype=np.int64)
        self.hits = np.zeros((len(days), len(models), SLOTS), dtype=np.int32)
        self.calls = np.zeros_like(self.hits)
        self.settled = settled_games(games)

    def weigh(self, matrix: SourceMatrix) -> Weigh:
        """The ``weigh`` of :func:`weighed_blocks` for ``matrix`` (one span of days): counts the
        span's calls of the models weighed, then weighs each line with its day's multipliers."""
        lines = matrix.lines.select("game_id", "line").join(
            self.settled, on="game_id", how="left", maintain_order="left"
        )
        margin = (
            lines.select(
                first_side_margin(
                    pl.lit(matrix.market), pl.col("line"), pl.col("home_score"), pl.col("away_score")
                )
            )
            .to_series()
            .fill_null(np.nan)
            .to_numpy()
        )
        line_day = np.searchsorted(self.days, matrix.lines["game_date"].cast(pl.Int64).to_numpy())
        span_days, starts, on_day = np.unique(line_day, return_index=True, return_inverse=True)
        window_start = np.searchsorted(self.days, self.days[span_days] - DYNAMIC_WINDOW_DAYS)

        def weigh(part: np.ndarray, k: int, source: np.ndarray) -> np.ndarray:
            batch = matrix.group[part]
            weight = self.models.weight[batch, :k]
            present = ~np.isnan(source)
            scored = (present & (weight > 0)).any(axis=2)  # the lines the models have analyses on
            counted = present & scored[..., None] & ~np.isnan(margin)[:, None, None]
            edge = np.sign(source - 0.5) * margin[:, None, None]
            for counts, seen in ((self.hits, counted & (edge > 0)), (self.calls, counted & (edge != 0))):
                counts[span_days[:, None], batch[None, :], :k] = np.add.reduceat(
                    seen.astype(np.int32), starts, axis=0
                )
            multiplier = _multipliers(
                _window_sums(self.hits[:, batch, :k], span_days, window_start),
                _window_sums(self.calls[:, batch, :k], span_days, window_start),
            )
            return weight * np.where(self.models.dynamic[batch, :k], multiplier[on_day.reshape(-1)], 1.0)

        return weigh


def _window_sums(daily: np.ndarray, days: np.ndarray, window_start: np.ndarray) -> np.ndarray:
    """Per day ``days[i]``, the sum of ``daily`` (day x ...) over days ``window_start[i] <= d < days[i]``."""
    running = np.concatenate([np.zeros_like(daily[:1]), np.cumsum(daily[: days.max()], axis=0)])
    return running[days] - running[window_start]


def _multipliers(hits: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """``clamp(2 * (hits + 10) / (calls + 20), 0.5, 1.5)``, computed as the polars rule computes it."""
    rate = (hits + DYNAMIC_PRIOR_HITS) / (calls + DYNAMIC_PRIOR_CALLS)
    return np.clip(2 * rate, MULTIPLIER_MIN, MULTIPLIER_MAX)


def final_scores(games: pl.DataFrame) -> pl.DataFrame:
    """``game_id``, ``home_score``, ``away_score`` of the completed games, which picks are graded on."""
    return games.filter(pl.col("completed").fill_null(False)).select("game_id", "home_score", "away_score")


def grade_analyses(analyses: pl.DataFrame, games: pl.DataFrame) -> pl.DataFrame:
    """Add ``result`` of each pick at its own line (null until the game has a final score) and the
    ``profit`` of one unit on qualifying graded picks at the picked price."""
    final = final_scores(games)
    result = grade(
        pl.col("market"), pl.col("line"), pl.col("home_score"), pl.col("away_score"), pl.col("pick")
    )
    return (
        analyses.join(final, on="game_id", how="left")
        .with_columns(result.alias("result"))
        .with_columns(
            pl.when(pl.col("qualifies")).then(profit(pl.col("result"), pl.col("pick_price"))).alias("profit")
        )
        .drop("home_score", "away_score")
    )


def performance(graded: pl.DataFrame, by: Sequence[str], kelly_fraction: float | None = None) -> pl.DataFrame:
    """Backtest figures per group of :func:`grade_analyses` output.

    ``analyses``, ``qualifying``; over qualifying picks: ``wins``, ``losses``, ``pushes``, ``graded``
    (wins + losses), ``accuracy``, ``units`` (one per graded pick; pushes are refunded), ``profit``,
    ``roi`` = profit / units, ``brier`` = mean of ``(confidence - won)^2`` and ``log_loss`` = mean of
    ``-log(confidence if won else 1 - confidence)`` over graded picks, ``avg_confidence``,
    ``breakeven`` = mean of ``1 / pick_price`` over graded picks (the accuracy the prices taken need
    to break even), and ``picks_<side>`` so that a lean to one side shows. Settled picks
    (``domain.marketplace.performance``) carry ``clv``; then ``clv`` (its mean over qualifying picks
    that have one), ``clv_picks`` and ``clv_sq`` (the mean of ``clv²`` over the same picks, so that
    windows summed from days get a variance) follow. With ``kelly_fraction`` (a backtest's figures),
    after ``roi``, ``kelly_units`` (stakes of the priced graded picks in :data:`KELLY_UNIT` units, at
    the pick's own price and confidence), ``kelly_profit`` and ``kelly_roi``.
    """
    return metrics(tally(graded, by, kelly_fraction))


def tally(graded: pl.DataFrame, by: Sequence[str], kelly_fraction: float | None = None) -> pl.DataFrame:
    """Additive counts and sums per group, so days, months and rolling windows are summed before
    dividing (:func:`metrics` turns a tally into figures); with ``kelly_fraction``, also the stakes
    and profit at that fraction of Kelly (a backtest's ``kelly_*`` figures)."""
    q = pl.col("qualifies")
    won, lost = q & (pl.col("result") == "won"), q & (pl.col("result") == "lost")
    counted = won | lost
    if "month" in by and "month" not in graded.columns:
        graded = graded.with_columns(pl.col("game_date").dt.strftime("%Y-%m").alias("month"))
    confidence = pl.col("confidence").clip(LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    log_loss = -pl.when(won).then(confidence.log()).otherwise((1 - confidence).log())
    kelly: list[pl.Expr] = []
    if kelly_fraction is not None:
        priced = counted & pl.col("pick_price").is_not_null()
        stake = kelly_stakes(pl.col("confidence"), pl.col("pick_price"), kelly_fraction) / KELLY_UNIT
        kelly = [
            stake.filter(priced).sum().alias("kelly_units"),
            pl.when(won)
            .then(stake * (pl.col("pick_price") - 1))
            .otherwise(-stake)
            .filter(priced)
            .sum()
            .alias("kelly_profit"),
        ]
    clv: list[pl.Expr] = []
    if "clv" in graded.columns:
        has_clv = q & pl.col("clv").is_not_null()
        clv = [
            pl.col("clv").filter(has_clv).sum().alias("clv_sum"),
            has_clv.sum().cast(pl.Int64).alias("clv_picks"),
            (pl.col("clv") ** 2).filter(has_clv).sum().alias("clv_sq_sum"),
        ]
    return graded.group_by(*by).agg(
        pl.len().cast(pl.Int64).alias("analyses"),
        q.sum().cast(pl.Int64).alias("qualifying"),
        won.sum().cast(pl.Int64).alias("wins"),
        lost.sum().cast(pl.Int64).alias("losses"),
        (q & (pl.col("result") == "push")).sum().cast(pl.Int64).alias("pushes"),
        pl.col("profit").filter(counted).sum().alias("profit"),
        ((pl.col("confidence") - won.cast(pl.Float64)) ** 2).filter(counted).sum().alias("brier_sum"),
        log_loss.filter(counted).sum().alias("log_loss_sum"),
        (1 / pl.col("pick_price")).filter(counted).sum().alias("breakeven_sum"),
        pl.col("confidence").filter(q).sum().alias("confidence_sum"),
        *kelly,
        *clv,
        *[(q & (pl.col("pick") == side)).sum().cast(pl.Int64).alias(f"picks_{side}") for side in SIDES],
    )


def metrics(sums: pl.DataFrame) -> pl.DataFrame:
    """Figures of a (possibly summed) :func:`tally`; see :func:`performance` for the columns."""
    graded = pl.col("wins") + pl.col("losses")
    per_graded = [
        pl.when(graded > 0).then(pl.col(f"{name}_sum") / graded).alias(name)
        for name in ("brier", "log_loss", "breakeven")
    ]
    clv: list[pl.Expr | str] = []
    if "clv_sum" in sums.columns:
        per_clv_pick = [
            pl.when(pl.col("clv_picks") > 0).then(pl.col(f"{name}_sum") / pl.col("clv_picks")).alias(name)
            for name in ("clv", "clv_sq")
        ]
        clv = [per_clv_pick[0], "clv_picks", per_clv_pick[1]]
    kelly: list[pl.Expr | str] = []
    if "kelly_units" in sums.columns:
        kelly = [
            "kelly_units",
            "kelly_profit",
            pl.when(pl.col("kelly_units") > 0)
            .then(pl.col("kelly_profit") / pl.col("kelly_units"))
            .alias("kelly_roi"),
        ]
    summed = [
        "profit",
        "brier_sum",
        "log_loss_sum",
        "breakeven_sum",
        "confidence_sum",
        "clv_sum",
        "clv_picks",
        "clv_sq_sum",
        "kelly_units",
        "kelly_profit",
    ]
    return sums.select(
        pl.exclude(*summed, *[f"picks_{s}" for s in SIDES]),
        graded.alias("graded"),
        pl.when(graded > 0).then(pl.col("wins") / graded).alias("accuracy"),
        graded.cast(pl.Float64).alias("units"),
        "profit",
        pl.when(graded > 0).then(pl.col("profit") / graded).alias("roi"),
        *kelly,
        *per_graded,
        pl.when(pl.col("qualifying") > 0)
        .then(pl.col("confidence_sum") / pl.col("qualifying"))
        .alias("avg_confidence"),
        *clv,
        *[f"picks_{s}" for s in SIDES],
    )
