"""Settlement, daily and rolling performance, the leaderboard and the marketplace rules, on small
hand-made cases whose numbers are worked out in the comments."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

from domain.marketplace.performance import (
    DAILY,
    MODEL_PERFORMANCE,
    SETTLED_PICKS,
    calibration,
    calibration_plot_markdown,
    can_publish,
    daily_performance,
    edge_lower_bound,
    leaderboard,
    needs_review,
    rolling_performance,
    settle,
    suspension_decisions,
    wilson_lower_bound,
)
from domain.models.engine.backtest import performance
from domain.models.engine.scoring import ANALYSES
from domain.models.registry import MODEL_VERSIONS
from domain.tables.schemas import GAMES, LINES, conform

SPORT = "basketball_nba"
MON = dt.date(2024, 1, 1)


def day(n: int) -> dt.date:
    return MON + dt.timedelta(days=n)


def analysis(
    game: str, d: dt.date, pick: str, confidence: float, prices: tuple[float, float], **kw: Any
) -> dict:
    """One analysis row of model ``m`` v1 (spreads at book ``b`` unless given)."""
    first = pick in ("home", "over")
    return {
        "model_id": "m",
        "version": 1,
        "sport": SPORT,
        "market": "spreads",
        "game_id": game,
        "game_date": d,
        "bookmaker": "b",
        "line": -3.0,
        "price_first": prices[0],
        "price_second": prices[1],
        "pick": pick,
        "p": confidence if first else 1 - confidence,
        "raw_confidence": confidence,
        "confidence": confidence,
        "qualifies": True,
        "pick_price": prices[0] if first else prices[1],
    } | kw


def game(game_id: str, d: dt.date, home: int | None, away: int | None, completed: bool = True) -> dict:
    start = dt.datetime.combine(d, dt.time(23), tzinfo=dt.UTC)
    return {
        "game_id": game_id,
        "sport": SPORT,
        "game_date": d,
        "commence_time": start,
        "home_team": "H",
        "away_team": "A",
        "home_score": home,
        "away_score": away,
        "completed": completed,
    }


def frame(rows: list[dict], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return conform(
        pl.DataFrame(rows, schema_overrides={k: v for k, v in schema.items() if k in rows[0]}), schema
    )


NO_LINES = pl.DataFrame(schema=LINES)

# ---- a hand-worked week -------------------------------------------------------------------------
# Model m v1 bets spreads (home line shown), one unit per qualifying pick:
#   Mon G1 home -3 at 1.909, conf 0.60; 100-95: 100 - 3 - 95 = +2, won   profit +0.909
#   Mon G2 away (home -5) at 2.5, conf 0.70; 110-100: home covers by 5, lost   profit -1
#   Tue G3 home -4 at 1.5, conf 0.80; 104-100: 104 - 4 - 100 = 0, push   profit 0 (refunded)
#   Tue G4 home +2 at 2.5, conf 0.65; 99-100: 99 + 2 - 100 = +1, won    profit +1.5
#   Wed G5 home -1, conf 0.55 below min_confidence: settled (dynamic weighting reads it), not counted
#   Wed G6 not final yet: not settled
#   Thu G7 away (home -6) at 1.909, conf 0.60; 100-97: home 100 - 6 - 97 = -3, away won  +0.909
#   Fri G8 home -2 at 1.909, conf 0.75; 90-95: lost   -1
# Week: qualifying 6, wins 3, losses 2, pushes 1, units 5, accuracy 3/5 = 0.6,
#   profit 0.909 + 1.5 + 0.909 - 1 - 1 = 1.318, ROI 1.318 / 5 = 0.2636,
#   Brier ((0.6-1)^2 + 0.7^2 + (0.65-1)^2 + (0.6-1)^2 + 0.75^2) / 5
#     = (0.16 + 0.49 + 0.1225 + 0.16 + 0.5625) / 5 = 0.299,
#   log loss (-ln .6 - ln .3 - ln .65 - ln .6 - ln .25) / 5
#     = (0.5108 + 1.2040 + 0.4308 + 0.5108 + 1.3863) / 5 = 0.8085,
#   avg confidence (0.6 + 0.7 + 0.8 + 0.65 + 0.6 + 0.75) / 6 = 4.1 / 6,
#   break-even (1 / price of the graded picks) (3 / 1.909 + 2 / 2.5) / 5 = 0.474301,
#   performance score = Wilson lower bound of 3/5 (0.230720) - 0.474301 = -0.243581: 60% at
#   these prices is no proven edge.

WEEK = [
    analysis("G1", day(0), "home", 0.60, (1.909, 1.909)),
    analysis("G2", day(0), "away", 0.70, (1.5, 2.5), line=-5.0),
    analysis("G3", day(1), "home", 0.80, (1.5, 2.5), line=-4.0),
    analysis("G4", day(1), "home", 0.65, (2.5, 1.5), line=2.0),
    analysis("G5", day(2), "home", 0.55, (1.909, 1.909), line=-1.0, qualifies=False, raw_confidence=0.52),
    analysis("G6", day(2), "home", 0.70, (1.909, 1.909)),
    analysis("G7", day(3), "away", 0.60, (1.909, 1.909), line=-6.0),
    analysis("G8", day(4), "home", 0.75, (1.909, 1.909), line=-2.0),
]
WEEK_GAMES = [
    game("G1", day(0), 100, 95),
    game("G2", day(0), 110, 100),
    game("G3", day(1), 104, 100),
    game("G4", day(1), 99, 100),
    game("G5", day(2), 101, 99),
    game("G6", day(2), None, None, completed=False),
    game("G7", day(3), 100, 97),
    game("G8", day(4), 90, 95),
]


@pytest.fixture
def week() -> pl.DataFrame:
    return settle(frame(WEEK, ANALYSES), frame(WEEK_GAMES, GAMES), NO_LINES)


def test_settle_grades_completed_games_only(week: pl.DataFrame) -> None:
    assert week.schema == pl.Schema(SETTLED_PICKS)
    results = dict(zip(week["game_id"], week["result"], strict=True))
    assert results == {
        "G1": "won",
        "G2": "lost",
        "G3": "push",
        "G4": "won",
        "G5": "won",
        "G7": "won",
        "G8": "lost",
    }
    profits = dict(zip(week["game_id"], week["profit"], strict=True))
    assert profits["G1"] == pytest.approx(0.909)
    assert profits["G2"] == -1.0
    assert profits["G3"] == 0.0
    assert profits["G4"] == pytest.approx(1.5)
    assert profits["G5"] is None  # not qualifying: no unit risked
    assert week["clv"].null_count() == week.height  # no closing lines given


def test_hand_worked_week(week: pl.DataFrame) -> None:
    rows: list[pl.DataFrame] = []
    for d in [day(i) for i in range(5)]:
        history = pl.concat(rows) if rows else None
        rows.append(daily_performance(week, d, history))
    perf = pl.concat(rows)
    assert perf.schema == pl.Schema(MODEL_PERFORMANCE)
    by_day = {r["date"]: r for r in perf.iter_rows(named=True)}

    mon = by_day[day(0)]  # G1 won at 1.909, G2 lost
    counts = ("total_predictions", "correct_predictions", "losses", "pushes", "units")
    assert [mon[c] for c in counts] == [2, 1, 1, 0, 2.0]
    assert mon["accuracy"] == 0.5
    assert mon["roi"] == pytest.approx((0.909 - 1) / 2)
    assert mon["brier_score"] == pytest.approx((0.16 + 0.49) / 2)
    assert mon["log_loss"] == pytest.approx((-math.log(0.6) - math.log(0.3)) / 2)
    assert mon["breakeven"] == pytest.approx((1 / 1.909 + 1 / 2.5) / 2)

    tue = by_day[day(1)]  # G3 push (refunded), G4 won at 2.5: one unit risked
    assert [tue[c] for c in counts] == [2, 1, 0, 1, 1.0]
    assert (tue["accuracy"], tue["roi"]) == (1.0, pytest.approx(1.5))
    assert tue["avg_confidence"] == pytest.approx((0.8 + 0.65) / 2)

    wed = by_day[day(2)]  # only the non-qualifying G5 settled (G6 is not final)
    assert (wed["analyses"], wed["total_predictions"], wed["graded"]) == (1, 0, 0)
    assert wed["accuracy"] is None and wed["roi"] is None and wed["brier_score"] is None
    assert wed["breakeven"] is None

    fri = by_day[day(4)]  # the rolling window now holds the whole week
    assert (fri["rolling_graded"], fri["rolling_wins"], fri["rolling_units"]) == (5, 3, 5.0)
    assert fri["rolling_accuracy"] == pytest.approx(0.6)
    assert fri["rolling_profit"] == pytest.approx(1.318)
    assert fri["rolling_roi"] == pytest.approx(0.2636)
    assert fri["rolling_brier"] == pytest.approx(0.299)
    assert fri["rolling_breakeven"] == pytest.approx((3 / 1.909 + 2 / 2.5) / 5)
    assert pl.select(wilson_lower_bound(3, 5)).item() == pytest.approx(0.230720, abs=1e-6)
    assert fri["performance_score"] == pytest.approx(0.230720 - 0.474301, abs=1e-6)

    # The same picks as one backtest-style group: the shared metrics give the week's figures.
    whole = performance(week, ["model_id", "version"]).row(0, named=True)
    assert (whole["qualifying"], whole["wins"], whole["losses"], whole["pushes"]) == (6, 3, 2, 1)
    assert whole["accuracy"] == pytest.approx(0.6)
    assert whole["roi"] == pytest.approx(0.2636)
    assert whole["brier"] == pytest.approx(0.299)
    assert whole["log_loss"] == pytest.approx(4.0427 / 5, abs=1e-4)
    assert whole["avg_confidence"] == pytest.approx(4.1 / 6)
    assert whole["breakeven"] == pytest.approx(fri["rolling_breakeven"])


def test_daily_performance_replaces_its_own_day(week: pl.DataFrame) -> None:
    first = daily_performance(week, day(1))
    again = daily_performance(week, day(1), history=first)
    assert again.equals(first)  # re-running a day never counts it twice


def test_rolling_window_sums_counts_not_means() -> None:
    # Day 0: 1-0 (100%); day 10: 1-9 (10%). Mean of daily accuracies 55%; the window's is 2/11.
    # Day -30 is outside the 30 days ending on day 10 (day -19 .. day 10); day -19 is inside.
    def row(d: dt.date, wins: int, losses: int, brier: float, breakeven: float, clvs: list[float]) -> dict:
        return {
            "model_id": "m",
            "version": 1,
            "sport": SPORT,
            "market": "spreads",
            "date": d,
            "analyses": wins + losses,
            "total_predictions": wins + losses,
            "correct_predictions": wins,
            "losses": losses,
            "pushes": 0,
            "graded": wins + losses,
            "profit": wins * 0.9 - losses,
            "brier_score": brier,
            "log_loss": 0.5,
            "avg_confidence": 0.6,
            "breakeven": breakeven,
            "clv": sum(clvs) / len(clvs) if clvs else None,
            "clv_picks": len(clvs),
            "clv_sq": sum(c * c for c in clvs) / len(clvs) if clvs else None,
        }

    history = frame(
        [
            row(day(-30), 50, 0, 0.1, 0.9, [0.5]),
            row(day(-19), 0, 1, 0.5, 0.6, [0.02]),
            row(day(0), 1, 0, 0.2, 0.5, [-0.01]),
            row(day(10), 1, 9, 0.3, 0.55, [0.03, 0.01]),
        ],
        DAILY,
    )
    r = rolling_performance(history, day(10)).row(0, named=True)
    assert (r["rolling_graded"], r["rolling_wins"]) == (12, 2)
    assert r["rolling_accuracy"] == pytest.approx(2 / 12)
    assert r["rolling_profit"] == pytest.approx(2 * 0.9 - 10)
    # Brier weighted by graded picks: (0.5 * 1 + 0.2 * 1 + 0.3 * 10) / 12.
    assert r["rolling_brier"] == pytest.approx(3.7 / 12)
    # Break-even weighted by graded picks: (0.6 * 1 + 0.5 * 1 + 0.55 * 10) / 12 = 6.6 / 12 = 0.55.
    assert r["rolling_breakeven"] == pytest.approx(0.55)
    assert r["performance_score"] == pytest.approx(pl.select(wilson_lower_bound(2, 12)).item() - 0.55)
    # CLV of the window's picks 0.02, -0.01, 0.03, 0.01: mean 0.0125; squared deviations 0.0075²,
    # 0.0225², 0.0175², 0.0025² sum to 0.000875, sample variance 0.000875 / 3 = 0.00029167,
    # standard error sqrt(0.00029167 / 4) = 0.0085391, half-width 1.96 * 0.0085391 = 0.0167367.
    assert (r["rolling_clv"], r["rolling_clv_picks"]) == (pytest.approx(0.0125), 4)
    assert r["rolling_clv_low"] == pytest.approx(0.0125 - 0.0167367, abs=1e-7)
    assert r["rolling_clv_high"] == pytest.approx(0.0125 + 0.0167367, abs=1e-7)
    one = rolling_performance(history, day(0), days=1).row(0, named=True)
    assert (one["rolling_clv"], one["rolling_clv_picks"]) == (pytest.approx(-0.01), 1)
    assert one["rolling_clv_low"] is None and one["rolling_clv_high"] is None  # one value: no interval


def test_clv_sign_positive_when_the_pick_beats_the_close() -> None:
    # Pick time home 2.10 / away 1.80: no-vig home = (1/2.1) / (1/2.1 + 1/1.8) = 0.4615.
    # Close home 1.80 / away 2.10: no-vig home 0.5385. The home pick took a price the market later
    # shortened: clv = 0.5385 - 0.4615 = +0.0769; the away pick on the same prices gets -0.0769.
    # Book "c" has no closing line: clv is null and the daily mean ignores it.
    picks = frame(
        [
            analysis("G1", MON, "home", 0.6, (2.10, 1.80), market="h2h", line=None),
            analysis("G1", MON, "away", 0.6, (2.10, 1.80), market="h2h", line=None, model_id="n"),
            analysis("G1", MON, "home", 0.6, (2.10, 1.80), market="h2h", line=None, bookmaker="c"),
        ],
        ANALYSES,
    )
    lines = frame(
        [
            {
                "game_id": "G1",
                "sport": SPORT,
                "game_date": MON,
                "bookmaker": "b",
                "market": "h2h",
                "closing_price_first": 1.80,
                "closing_price_second": 2.10,
            }
        ],
        LINES,
    )
    settled = settle(picks, frame([game("G1", MON, 101, 99)], GAMES), lines).sort("model_id", "bookmaker")
    nv = (1 / 2.1) / (1 / 2.1 + 1 / 1.8)
    # Sorted (m, b), (m, c), (n, b): the home picks' no-vig probability, then the away pick's.
    assert settled["pick_no_vig"].to_list() == pytest.approx([nv, nv, 1 - nv])
    clv = dict(zip(zip(settled["model_id"], settled["bookmaker"], strict=True), settled["clv"], strict=True))
    assert clv[("m", "b")] == pytest.approx(1 - 2 * nv)
    assert clv[("m", "b")] > 0
    assert clv[("n", "b")] == pytest.approx(2 * nv - 1)
    assert clv[("m", "c")] is None
    daily = {r["model_id"]: r for r in daily_performance(settled, MON).iter_rows(named=True)}
    assert (daily["m"]["clv"], daily["m"]["clv_picks"]) == (pytest.approx(1 - 2 * nv), 1)
    assert daily["n"]["clv"] == pytest.approx(2 * nv - 1)


# ---- Wilson score and the leaderboard -----------------------------------------------------------


def test_wilson_lower_bound_by_hand() -> None:
    # z = 1.96, z^2 = 3.8416. 5-0: (5 + 1.9208 - 1.96 * sqrt(0 + 0.9604)) / 8.8416 = 5 / 8.8416 = 0.5655.
    # 60-40: (60 + 1.9208 - 1.96 * sqrt(24 + 0.9604)) / 103.8416 = 52.1286 / 103.8416 = 0.5020.
    got = pl.select(
        a=wilson_lower_bound(5, 5), b=wilson_lower_bound(60, 100), none=wilson_lower_bound(0, 0)
    ).row(0)
    assert got == (pytest.approx(0.565509, abs=1e-6), pytest.approx(0.502001, abs=1e-6), 0.0)


def versions(*rows: dict) -> pl.DataFrame:
    base = {
        "version": 1,
        "owner_user_id": "u",
        "name": "x",
        "sport": SPORT,
        "bet_type": "game",
        "market": "spreads",
        "public": True,
        "price_cents": 0,
        "status": "active",
    }
    return frame([base | r for r in rows], MODEL_VERSIONS)


MINUS_110 = 1 + 100 / 110
"""American -110 as a decimal price (1.90909): break-even 110 / 210 = 0.5238095."""


def rolling_rows(
    *rows: tuple[str, int, int, float], price: float = MINUS_110, market: str = "spreads"
) -> pl.DataFrame:
    """Rolling figures for (model_id, wins, losses, roi) at one decimal ``price`` through the real
    daily -> rolling path."""
    daily = frame(
        [
            {
                "model_id": m,
                "version": 1,
                "sport": SPORT,
                "market": market,
                "date": MON,
                "analyses": w + lo,
                "total_predictions": w + lo,
                "correct_predictions": w,
                "losses": lo,
                "pushes": 0,
                "graded": w + lo,
                "profit": roi * (w + lo),
                "breakeven": 1 / price,
            }
            for m, w, lo, roi in rows
        ],
        DAILY,
    )
    return rolling_performance(daily, MON)


def test_leaderboard_ranks_60_40_above_5_0_and_breaks_ties_by_roi() -> None:
    rolling = rolling_rows(("five-oh", 5, 0, 0.9), ("sixty", 60, 40, 0.10), ("twin", 60, 40, 0.15))
    board = leaderboard(
        rolling,
        versions(
            {"model_id": "five-oh"},
            {"model_id": "sixty"},
            {"model_id": "twin"},
            {"model_id": "private", "public": False},
            {"model_id": "idle"},  # listed, no picks in the window: shown last with zeros
        ),
    )
    assert board["model_id"].to_list() == ["twin", "sixty", "five-oh", "idle"]
    assert board["rank"].to_list() == [1, 2, 3, 4]
    scores = dict(zip(board["model_id"], board["performance_score"], strict=True))
    # At -110 the edge keeps the Wilson order: 5-0 scores 0.5655 - 0.5238 = 0.0417 above 60-40's
    # 0.5020 - 0.5238 = -0.0218, but a window under 50 graded picks is not established and ranks
    # after every established one.
    assert scores["five-oh"] > scores["sixty"] == scores["twin"]
    assert scores["sixty"] == pytest.approx(0.502001 - 110 / 210, abs=1e-6)
    assert board.filter(pl.col("model_id") == "idle")["rolling_graded"].item() == 0


def test_leaderboard_ranks_by_edge_not_win_rate() -> None:
    """SPEC 5's worked set. Favourites at 1.30 win 72 of 100 and lose money (72 * 0.3 - 28 = -6.4);
    a spreads model at -110 wins 35 of 60 (58%); a 5-0 model has too few picks.

    Wilson lower bounds (z = 1.96, z² = 3.8416):
      72/100: (72 + 1.9208 - 1.96 * sqrt(72 * 28 / 100 + 0.9604)) / 103.8416 = 64.91324 / 103.8416 = 0.625118
      35/60:  (35 + 1.9208 - 1.96 * sqrt(35 * 25 / 60 + 0.9604)) / 63.8416 = 29.19339 / 63.8416 = 0.457279
      5/5:    5 / 8.8416 = 0.565509
    Break-even: 1 / 1.30 = 0.769231; -110: 110 / 210 = 0.523810.
    Scores: favourites 0.625118 - 0.769231 = -0.144113; spreads 0.457279 - 0.523810 = -0.066531;
    5-0 0.565509 - 0.523810 = +0.041699 (highest, but not established).
    Win rate would rank favourites (72%) first; the edge ranks the spreads model first.
    """
    rolling = pl.concat(
        [
            rolling_rows(("favourites", 72, 28, -0.064), price=1.30, market="h2h"),
            rolling_rows(("spreads", 35, 25, (35 * 100 / 110 - 25) / 60), ("five-oh", 5, 0, 100 / 110)),
        ]
    )
    board = leaderboard(
        rolling,
        versions(
            {"model_id": "favourites", "market": "h2h"}, {"model_id": "spreads"}, {"model_id": "five-oh"}
        ),
    )
    assert board["model_id"].to_list() == ["spreads", "favourites", "five-oh"]
    assert board["established"].to_list() == [True, True, False]
    rows = {r["model_id"]: r for r in board.iter_rows(named=True)}
    assert rows["favourites"]["rolling_accuracy"] > rows["spreads"]["rolling_accuracy"]
    assert rows["favourites"]["rolling_roi"] == pytest.approx(-0.064)
    assert rows["favourites"]["performance_score"] == pytest.approx(-0.144113, abs=1e-6)
    assert rows["spreads"]["performance_score"] == pytest.approx(-0.066531, abs=1e-6)
    assert rows["five-oh"]["performance_score"] == pytest.approx(0.041699, abs=1e-6)


def test_edge_lower_bound_without_graded_picks_is_zero() -> None:
    got = pl.select(edge_lower_bound(pl.lit(0), pl.lit(0), pl.lit(None, pl.Float64))).item()
    assert got == 0.0


def test_leaderboard_puts_models_without_graded_picks_last() -> None:
    # A short losing record at 1.30 scores below 0 (0.0 - 0.769 for 0-3): still above a listed
    # model with no graded pick at all, whose score is 0 only for want of picks.
    board = leaderboard(
        rolling_rows(("short", 0, 3, -1.0), price=1.30),
        versions({"model_id": "short"}, {"model_id": "idle"}),
    )
    assert board["model_id"].to_list() == ["short", "idle"]
    assert board["performance_score"][0] < board["performance_score"][1] == 0.0


def test_leaderboard_uses_the_latest_version_and_ranks_per_sport() -> None:
    rolling = pl.concat(
        [
            rolling_rows(("a", 70, 30, 0.2)),
            rolling_rows(("a", 10, 90, -0.5)).with_columns(version=pl.lit(2, pl.Int32)),
            rolling_rows(("f", 55, 45, 0.1)).with_columns(sport=pl.lit("americanfootball_nfl")),
        ]
    )
    board = leaderboard(
        rolling,
        versions(
            {"model_id": "a"},
            {"model_id": "a", "version": 2},
            {"model_id": "f", "sport": "americanfootball_nfl"},
        ),
    )
    rows = {r["model_id"]: r for r in board.iter_rows(named=True)}
    assert rows["a"]["version"] == 2 and rows["a"]["rolling_wins"] == 10
    assert rows["a"]["rank"] == 1 and rows["f"]["rank"] == 1


# ---- marketplace rules --------------------------------------------------------------------------


def test_publishing_needs_fifty_graded_predictions() -> None:
    assert can_publish(50)[0] is True
    allowed, reason = can_publish(49)
    assert allowed is False and "at least 50" in reason and "49" in reason


def test_paid_models_need_review() -> None:
    assert needs_review(499) is True
    assert needs_review(0) is False


def evaluations(model_id: str, days: list[dt.date], accuracies: list[float], graded: int = 80) -> list[dict]:
    return [
        {
            "model_id": model_id,
            "version": 1,
            "sport": SPORT,
            "market": "spreads",
            "date": d,
            "rolling_graded": graded,
            "rolling_accuracy": acc,
        }
        for d, acc in zip(days, accuracies, strict=True)
    ]


def test_suspension_after_three_consecutive_failing_evaluations() -> None:
    d = [day(i) for i in range(4)]
    history = frame(
        evaluations("recovers", d[:3], [0.45, 0.48, 0.51])  # two failing days, then a pass
        + evaluations("sinks", d[:3], [0.55, 0.45, 0.48])  # only two failing so far
        + evaluations("gone", d[:3], [0.45, 0.48, 0.49])  # three in a row
        + evaluations("small", d[:3], [0.3, 0.3, 0.3], graded=49)  # too few picks to judge
        + evaluations("private", d[:3], [0.3, 0.3, 0.3])
        + evaluations("off-today", d[:2], [0.3, 0.3]),
        MODEL_PERFORMANCE,
    )
    listed = versions(
        *[{"model_id": m} for m in ("recovers", "sinks", "gone", "small", "off-today")],
        {"model_id": "private", "public": False},
    )
    decisions = suspension_decisions(history, listed, d[2])
    got = {r["model_id"]: (r["failing_evaluations"], r["suspend"]) for r in decisions.iter_rows(named=True)}
    assert got == {"recovers": (0, False), "sinks": (2, False), "gone": (3, True), "small": (0, False)}
    reason = decisions.filter(pl.col("suspend"))["reason"].item()
    assert reason.startswith("rolling 30-day accuracy 49.0% over 80 graded predictions")
    # The day before, "gone" had failed twice only: the grace period holds.
    earlier = suspension_decisions(history, listed, d[1]).filter(pl.col("model_id") == "gone")
    assert earlier["suspend"].to_list() == [False]


def test_evaluations_are_game_days_not_calendar_days() -> None:
    # An NFL model evaluated Thursday, Sunday and Monday, failing each time: three evaluations.
    thu, sun, mon = dt.date(2024, 1, 4), dt.date(2024, 1, 7), dt.date(2024, 1, 8)
    history = frame(evaluations("nfl", [thu, sun, mon], [0.45, 0.46, 0.47]), MODEL_PERFORMANCE)
    decisions = suspension_decisions(history, versions({"model_id": "nfl"}), mon)
    assert decisions["suspend"].to_list() == [True]


# ---- calibration --------------------------------------------------------------------------------


def test_calibration_bins() -> None:
    # Ten bins of width 0.05 over [0.5, 1]: 0.6 opens bin 2 (despite 0.6 - 0.5 < 0.1 in floats),
    # 1.0 falls in the last bin. Pushes and non-qualifying picks stay out.
    rows = [
        ("won", 0.6, True),
        ("lost", 0.62, True),
        ("won", 0.64, True),
        ("push", 0.61, True),
        ("won", 0.61, False),
        ("won", 1.0, True),
        ("lost", 0.97, True),
        ("won", 0.5, True),
    ]
    settled = frame(
        [
            analysis(f"G{i}", MON, "home", c, (1.9, 1.9), result=r, qualifies=q)
            for i, (r, c, q) in enumerate(rows)
        ],
        SETTLED_PICKS,
    )
    table = calibration(settled)
    got = {r["bin"]: (r["n"], r["lower"], r["upper"], r["win_rate"]) for r in table.iter_rows(named=True)}
    assert got == {
        0: (1, 0.5, 0.55, 1.0),
        2: (3, pytest.approx(0.6), pytest.approx(0.65), pytest.approx(2 / 3)),
        9: (2, pytest.approx(0.95), 1.0, 0.5),
    }
    assert table.filter(pl.col("bin") == 2)["mean_confidence"].item() == pytest.approx(0.62)
    chart = calibration_plot_markdown(table)
    assert "**m v1**" in chart
    assert "| 0.6–0.65 | 3 | 0.620 | 66.7% | +4.7 |" in chart
    assert calibration_plot_markdown(table.head(0)) == "_no graded picks_"
