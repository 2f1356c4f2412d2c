"""Settlement, daily and rolling performance, the leaderboard and the marketplace rules (SPEC 5, 6).

One implementation of every figure: picks are graded by the backtester's :func:`grade_analyses`, and
daily and rolling figures are :func:`domain.models.engine.backtest.metrics` of additive tallies, so a
backtest and the live record of the same picks agree to the last digit.

- :func:`settle` grades the analyses of completed games and adds closing line value;
- :func:`daily_performance` gives one ``model_performance`` row per model version and game date,
  with the rolling 30-day figures that feed the leaderboard;
- :func:`leaderboard` ranks the listed models by :func:`edge_lower_bound` of the rolling window;
- :func:`suspension_decisions`, :func:`can_publish` and :func:`needs_review` are the marketplace's
  rules; :func:`calibration` is the reliability table.

The *settle day* of a pick is its game date (the daily partition): a game is final on its date.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from domain.markets.odds import no_vig_first_expr
from domain.models.engine.backtest import KEYS, SIDES, grade_analyses, metrics, performance
from domain.models.engine.scoring import ANALYSES
from domain.models.registry import MODEL_VERSIONS
from domain.tables.schemas import conform

ROLLING_DAYS = 30
MIN_GRADED = 50
"""The seed's minimum sample: a backtest needs this many graded picks before a model goes public;
suspension looks only at rolling windows at least this large, and the leaderboard ranks models
below it after every model that reaches it."""
SUSPEND_BELOW = 0.5
GRACE_EVALUATIONS = 3
WILSON_Z = 1.96
"""95% two-sided normal quantile; the dbt macros ``wilson_lower_bound`` and ``mean_interval`` use the
same value."""

SETTLED_PICKS: dict[str, pl.DataType] = {
    **ANALYSES,
    "result": pl.String(),
    "profit": pl.Float64(),
    "pick_no_vig": pl.Float64(),
    "closing_line": pl.Float64(),
    "closing_no_vig": pl.Float64(),
    "clv": pl.Float64(),
}
"""Every analysis of a completed game (qualifying or not: dynamic weighting reads them all), with
``result`` won/lost/push at its own line, ``profit`` of one unit (qualifying picks only), the no-vig
probability of the picked side at pick time and at the close, and ``clv = closing_no_vig -
pick_no_vig``: positive when the market closed further towards the pick than the price taken (the
pick beat the close). Null where the game x bookmaker x market has no closing line. For spreads and
totals the two probabilities may belong to different lines; ``closing_line`` shows the move."""

DAILY: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "sport": pl.String(),
    "market": pl.String(),
    "date": pl.Date(),
    "analyses": pl.Int64(),
    "total_predictions": pl.Int64(),
    "correct_predictions": pl.Int64(),
    "losses": pl.Int64(),
    "pushes": pl.Int64(),
    "graded": pl.Int64(),
    "accuracy": pl.Float64(),
    "avg_confidence": pl.Float64(),
    "units": pl.Float64(),
    "profit": pl.Float64(),
    "roi": pl.Float64(),
    "brier_score": pl.Float64(),
    "log_loss": pl.Float64(),
    "clv": pl.Float64(),
    "clv_picks": pl.Int64(),
    "clv_sq": pl.Float64(),
    "breakeven": pl.Float64(),
    **{f"picks_{side}": pl.Int64() for side in SIDES},
}
"""A model version's figures over the picks settled on one day (SPEC 5): ``total_predictions`` are
its qualifying picks (pushes included), ``correct_predictions`` the wins; accuracy, ROI (profit per
unit risked, one unit per win or loss: pushes are refunded), Brier score and log loss are over wins
and losses; ``avg_confidence`` and ``clv`` over qualifying picks (``clv`` where a close exists);
``clv_sq`` is the mean of ``clv²`` over the same picks and ``breakeven`` the mean of ``1 / price`` over
wins and losses, kept so that rolling windows sum them (CLV interval, edge)."""

ROLLING: dict[str, pl.DataType] = {
    "rolling_graded": pl.Int64(),
    "rolling_wins": pl.Int64(),
    "rolling_accuracy": pl.Float64(),
    "rolling_units": pl.Float64(),
    "rolling_profit": pl.Float64(),
    "rolling_roi": pl.Float64(),
    "rolling_brier": pl.Float64(),
    "rolling_breakeven": pl.Float64(),
    "rolling_clv": pl.Float64(),
    "rolling_clv_low": pl.Float64(),
    "rolling_clv_high": pl.Float64(),
    "rolling_clv_picks": pl.Int64(),
    "performance_score": pl.Float64(),
}
"""Figures over the 30 days ending on a day, summed from daily rows (counts and sums, never means of
means); ``rolling_clv_low``/``_high`` bound the 95% interval of the mean CLV (null under two picks
with a close); ``performance_score`` = :func:`edge_lower_bound` of the window."""

MODEL_PERFORMANCE: dict[str, pl.DataType] = {**DAILY, **ROLLING}
"""The ``model_performance`` table: one row per model version and day it had settled analyses."""

_SPEC_NAMES = {"qualifying": "total_predictions", "wins": "correct_predictions", "brier": "brier_score"}
_FIRST_SIDES = ["home", "over"]


# ---- settlement ---------------------------------------------------------------------------------


def settle(analyses: pl.DataFrame, games: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """:data:`SETTLED_PICKS` of ``analyses`` whose game is completed and gradable.

    ``games`` are ``GAMES`` rows (only completed ones settle); ``lines`` are ``LINES`` rows, one per
    game x bookmaker x market, whose closing prices give the closing no-vig probability.
    """
    closing = lines.select(
        "game_id",
        "bookmaker",
        "market",
        "closing_line",
        no_vig_first_expr(pl.col("closing_price_first"), pl.col("closing_price_second")).alias("_close"),
    )
    first = pl.col("pick").is_in(_FIRST_SIDES)

    def picked(first_side: pl.Expr) -> pl.Expr:
        return pl.when(first).then(first_side).otherwise(1 - first_side)

    settled = (
        grade_analyses(analyses, games)
        .filter(pl.col("result").is_not_null())
        .join(closing, on=["game_id", "bookmaker", "market"], how="left", validate="m:1")
        .with_columns(
            picked(no_vig_first_expr(pl.col("price_first"), pl.col("price_second"))).alias("pick_no_vig"),
            picked(pl.col("_close")).alias("closing_no_vig"),
        )
        .with_columns((pl.col("closing_no_vig") - pl.col("pick_no_vig")).alias("clv"))
    )
    return conform(settled, SETTLED_PICKS)


# ---- daily and rolling figures ------------------------------------------------------------------


def daily_performance(
    settled: pl.DataFrame, day: dt.date, history: pl.DataFrame | None = None
) -> pl.DataFrame:
    """:data:`MODEL_PERFORMANCE` rows of ``day``: the figures of the picks settled that day and the
    rolling figures over ``history`` (earlier ``model_performance`` rows; rows of ``day`` itself are
    replaced) plus today's. A model version without settled analyses that day gets no row."""
    today = performance(settled.filter(pl.col("game_date") == day), [*KEYS, "sport", "market"])
    today = conform(today.rename(_SPEC_NAMES).with_columns(date=pl.lit(day)), DAILY)
    earlier = [] if history is None else [conform(history.filter(pl.col("date") != day), DAILY)]
    rolling = rolling_performance(pl.concat([*earlier, today]), day)
    joined = today.join(rolling.select(*KEYS, *ROLLING), on=KEYS, how="left")
    return conform(joined, MODEL_PERFORMANCE).sort(KEYS)


def rolling_performance(history: pl.DataFrame, day: dt.date, days: int = ROLLING_DAYS) -> pl.DataFrame:
    """Per model version with daily rows in the ``days`` days ending on ``day`` (inclusive): keys,
    sport, market, ``date`` = ``day`` and the :data:`ROLLING` figures, from the daily rows' counts."""
    window = history.filter(pl.col("date").is_between(day - dt.timedelta(days=days - 1), day))
    graded = pl.col("graded")
    sums = window.select(
        *KEYS,
        "sport",
        "market",
        "analyses",
        pl.col("total_predictions").alias("qualifying"),
        pl.col("correct_predictions").alias("wins"),
        "losses",
        "pushes",
        "profit",
        (pl.col("brier_score").fill_null(0.0) * graded).alias("brier_sum"),
        (pl.col("log_loss").fill_null(0.0) * graded).alias("log_loss_sum"),
        (pl.col("breakeven").fill_null(0.0) * graded).alias("breakeven_sum"),
        (pl.col("clv").fill_null(0.0) * pl.col("clv_picks")).alias("clv_sum"),
        pl.col("clv_picks").fill_null(0),
        (pl.col("clv_sq").fill_null(0.0) * pl.col("clv_picks")).alias("clv_sq_sum"),
        (pl.col("avg_confidence").fill_null(0.0) * pl.col("total_predictions")).alias("confidence_sum"),
        *[f"picks_{side}" for side in SIDES],
    )
    figures = metrics(sums.group_by(*KEYS, "sport", "market").agg(pl.all().sum()))
    clv_low, clv_high = mean_interval(pl.col("clv"), pl.col("clv_sq"), pl.col("clv_picks"))
    return figures.select(
        *KEYS,
        "sport",
        "market",
        pl.lit(day).alias("date"),
        pl.col("graded").alias("rolling_graded"),
        pl.col("wins").alias("rolling_wins"),
        pl.col("accuracy").alias("rolling_accuracy"),
        pl.col("units").alias("rolling_units"),
        pl.col("profit").alias("rolling_profit"),
        pl.col("roi").alias("rolling_roi"),
        pl.col("brier").alias("rolling_brier"),
        pl.col("breakeven").alias("rolling_breakeven"),
        pl.col("clv").alias("rolling_clv"),
        clv_low.alias("rolling_clv_low"),
        clv_high.alias("rolling_clv_high"),
        pl.col("clv_picks").alias("rolling_clv_picks"),
        edge_lower_bound(pl.col("wins"), pl.col("graded"), pl.col("breakeven")).alias("performance_score"),
    ).sort(KEYS)


def wilson_lower_bound(wins: pl.Expr | int, n: pl.Expr | int, z: float = WILSON_Z) -> pl.Expr:
    """Lower end of the Wilson score interval of ``wins / n`` (0 when ``n`` is 0), written as

        (wins + z²/2 - z * sqrt(wins * (n - wins) / n + z²/4)) / (n + z²)

    It rewards evidence: a short perfect run scores below a long good one only once the long one is
    long enough (5-0 gives 0.566, 60-40 gives 0.502, 600-400 gives 0.569), which is why
    :func:`leaderboard` also ranks windows under :data:`MIN_GRADED` picks last. The dbt macro
    ``wilson_lower_bound`` is this formula in SQL (tests check that the two agree).
    """
    w, total = pl.lit(wins) if isinstance(wins, int) else wins, pl.lit(n) if isinstance(n, int) else n
    w, total = w.cast(pl.Float64), total.cast(pl.Float64)
    bound = (w + z * z / 2 - z * (w * (total - w) / total + z * z / 4).sqrt()) / (total + z * z)
    return pl.when(total > 0).then(bound).otherwise(0.0)


def edge_lower_bound(wins: pl.Expr, n: pl.Expr, breakeven: pl.Expr) -> pl.Expr:
    """The performance score (SPEC 5): :func:`wilson_lower_bound` of accuracy minus the mean
    break-even probability (``1 / decimal price``) of the same graded picks; 0 without graded picks.

    Win rate alone is no ranking: favourites at 1.30 need 76.9% to break even, so 72-28 scores
    0.625 - 0.769 = -0.144 while 35-25 at -110 (break-even 0.524) scores 0.457 - 0.524 = -0.067.
    A positive score means the model beat its prices with 95% confidence. The dbt macro
    ``edge_lower_bound`` is this formula in SQL.
    """
    return wilson_lower_bound(wins, n) - pl.when(n > 0).then(breakeven.fill_null(0.0)).otherwise(0.0)


def mean_interval(
    mean: pl.Expr, mean_sq: pl.Expr, n: pl.Expr, z: float = WILSON_Z
) -> tuple[pl.Expr, pl.Expr]:
    """Normal 95% interval of a mean from its count, mean and mean of squares (sample variance,
    clipped at 0 against rounding); null under two values. Used for the mean CLV of a window; the
    leaderboard mart computes the same in SQL."""
    variance = ((mean_sq - mean * mean) * n / (n - 1)).clip(lower_bound=0.0)
    half = pl.when(n > 1).then(z * (variance / n).sqrt())
    return mean - half, mean + half


# ---- leaderboard --------------------------------------------------------------------------------


def latest_listed(model_versions: pl.DataFrame) -> pl.DataFrame:
    """The latest version of every model that is public and active: what the marketplace lists."""
    latest = conform(model_versions, MODEL_VERSIONS).sort("version").group_by("model_id").last()
    return latest.filter(pl.col("public") & (pl.col("status") == "active"))


def leaderboard(rolling: pl.DataFrame, model_versions: pl.DataFrame) -> pl.DataFrame:
    """Listed models ranked within sport and bet type (the seed's shared-models index).

    ``rolling`` is :func:`rolling_performance` of the day. Order: models with at least
    :data:`MIN_GRADED` graded picks in the window first (``established``), then models with any graded
    pick, then ``performance_score`` descending, ties by rolling ROI descending, then model id. A
    listed model without picks in the window is shown with zero figures, last (its score of 0 would
    otherwise rank it above a short record that trails its prices).
    """
    counts = {
        "rolling_graded": 0,
        "rolling_wins": 0,
        "rolling_units": 0.0,
        "rolling_profit": 0.0,
        "rolling_clv_picks": 0,
    }
    board = (
        latest_listed(model_versions)
        .select(*KEYS, "owner_user_id", "name", "sport", "bet_type", "market", "price_cents")
        .join(rolling.select(*KEYS, *ROLLING), on=KEYS, how="left")
        .with_columns(
            *[pl.col(c).fill_null(v) for c, v in counts.items()],
            pl.col("performance_score").fill_null(0.0),
        )
        .with_columns((pl.col("rolling_graded") >= MIN_GRADED).alias("established"))
        .sort(
            [
                "sport",
                "bet_type",
                "established",
                pl.col("rolling_graded") > 0,
                "performance_score",
                "rolling_roi",
                "model_id",
            ],
            descending=[False, False, True, True, True, True, False],
            nulls_last=True,
        )
    )
    rank = (pl.int_range(pl.len()) + 1).over("sport", "bet_type").cast(pl.Int64)
    return board.with_columns(rank.alias("rank"))


# ---- marketplace rules --------------------------------------------------------------------------


def can_publish(backtest_graded: int) -> tuple[bool, str]:
    """Whether a model whose best backtest graded ``backtest_graded`` picks may go public, and why."""
    if backtest_graded >= MIN_GRADED:
        return True, f"the backtest graded {backtest_graded} predictions (at least {MIN_GRADED} needed)"
    return False, (
        f"publishing needs a backtest with at least {MIN_GRADED} graded predictions "
        f"(wins and losses; pushes do not count); the backtest graded {backtest_graded}"
    )


def needs_review(price_cents: int) -> bool:
    """Paid models wait for an operator's review before they are listed (SPEC 6)."""
    return price_cents > 0


def suspension_decisions(history: pl.DataFrame, model_versions: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """The listed models evaluated on ``today`` and whether each is suspended.

    An evaluation is a ``model_performance`` row of the model's latest version (a day it had settled
    picks, so every evaluation carries new results: an NFL model is evaluated on game days). It fails
    when the rolling accuracy is below 50% over at least :data:`MIN_GRADED` graded picks. A model is
    suspended when its last :data:`GRACE_EVALUATIONS` evaluations, today's included, all failed.
    Columns: keys, ``rolling_graded``, ``rolling_accuracy``, ``failing_evaluations`` (the current run
    of failures), ``suspend`` and a ``reason`` for suspended models.
    """
    failing = (pl.col("rolling_graded") >= MIN_GRADED) & (pl.col("rolling_accuracy") < SUSPEND_BELOW)
    evaluations = (
        history.join(latest_listed(model_versions).select(KEYS), on=KEYS)
        .filter(pl.col("date") <= today)
        .sort("date", descending=True)
    )
    decisions = (
        evaluations.group_by(KEYS)
        .agg(
            pl.col("date").first(),
            pl.col("rolling_graded").first(),
            pl.col("rolling_accuracy").first(),
            failing.fill_null(False).cast(pl.Int64).cum_min().sum().alias("failing_evaluations"),
        )
        .filter(pl.col("date") == today)
        .with_columns((pl.col("failing_evaluations") >= GRACE_EVALUATIONS).alias("suspend"))
    )
    reason = pl.format(
        "rolling {}-day accuracy {} over {} graded predictions, below {} on {} consecutive evaluations",
        pl.lit(ROLLING_DAYS),
        (pl.col("rolling_accuracy") * 100).round(1).cast(pl.String) + "%",
        pl.col("rolling_graded"),
        pl.lit(f"{SUSPEND_BELOW:.0%}"),
        pl.col("failing_evaluations"),
    )
    return (
        decisions.with_columns(pl.when(pl.col("suspend")).then(reason).alias("reason"))
        .drop("date")
        .sort(KEYS)
    )


# ---- calibration --------------------------------------------------------------------------------

CALIBRATION: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "bin": pl.Int32(),
    "lower": pl.Float64(),
    "upper": pl.Float64(),
    "n": pl.Int64(),
    "mean_confidence": pl.Float64(),
    "win_rate": pl.Float64(),
}


def calibration(settled: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """Reliability table per model version: qualifying won/lost picks in ``bins`` equal confidence
    bins over [0.5, 1] (confidences never fall below 0.5), with the mean confidence and the observed
    win rate of each non-empty bin. A well-calibrated model has ``win_rate`` close to
    ``mean_confidence`` in every bin."""
    width = 0.5 / bins
    # The tiny nudge keeps bin edges such as 0.6 in the bin they open despite 0.6 - 0.5 < 0.1.
    index = ((pl.col("confidence") - 0.5) / width + 1e-9).floor().clip(0, bins - 1).cast(pl.Int32)
    graded = settled.filter(pl.col("qualifies") & pl.col("result").is_in(["won", "lost"]))
    return (
        graded.group_by(*KEYS, index.alias("bin"))
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.col("confidence").mean().alias("mean_confidence"),
            (pl.col("result") == "won").mean().alias("win_rate"),
        )
        .with_columns(
            (0.5 + pl.col("bin") * width).alias("lower"),
            (0.5 + (pl.col("bin") + 1) * width).alias("upper"),
        )
        .select(*KEYS, "bin", "lower", "upper", "n", "mean_confidence", "win_rate")
        .sort(*KEYS, "bin")
    )


def calibration_plot_markdown(table: pl.DataFrame, bar_width: int = 20) -> str:
    """A reliability chart in plain markdown (asset metadata renders it; no plotting library): per
    model version, one line per bin with the observed win rate as a bar and its gap to the mean
    confidence in percentage points."""
    if table.is_empty():
        return "_no graded picks_"
    rows = table.with_columns(
        pl.format("{}–{}", pl.col("lower").round(3), pl.col("upper").round(3)).alias("bin_range"),
        pl.lit("█")
        .repeat_by((pl.col("win_rate") * bar_width).round().cast(pl.Int64))
        .list.join("")
        .alias("bar"),
        ((pl.col("win_rate") - pl.col("mean_confidence")) * 100).alias("gap"),
    )
    sections = []
    for (model_id, version), part in rows.group_by(KEYS, maintain_order=True):
        lines = [
            f"**{model_id} v{version}**",
            "",
            "| confidence | picks | mean confidence | won | gap (pp) | win rate |",
            "|---|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['bin_range']} | {r['n']} | {r['mean_confidence']:.3f} | {r['win_rate']:.1%} "
            f"| {r['gap']:+.1f} | `{r['bar']}` |"
            for r in part.iter_rows(named=True)
        ]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)
