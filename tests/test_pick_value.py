"""A pick's worth at the prices on offer, against prices worked by hand: fair (no-vig) probability
by the multiplicative and power methods, expected value, fractional Kelly, best price at the cut-off."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from domain.markets.value import (
    BookPrice,
    expected_value,
    fair_multiplicative,
    fair_power,
    kelly_stake,
    latest_at_cutoff,
    pick_values,
    value_of_pick,
)
from domain.tables.schemas import ODDS_SNAPSHOTS, conform


def test_fair_probability_by_hand() -> None:
    # -110 on both sides: 52.4% implied each, 50% fair by either method.
    assert fair_multiplicative(1.909, 1.909) == pytest.approx(0.5)
    assert fair_power(1.909, 1.909) == pytest.approx(0.5)
    # 1.50 / 2.60: implied 0.6667 + 0.3846 = 1.0513; scaled, 0.6667 / 1.0513 = 2.6 / 4.1 = 0.6341.
    assert fair_multiplicative(1.5, 2.6) == pytest.approx(2.6 / 4.1)
    # Power: k = 1.0828 gives 0.6667^k = 0.6446 and 0.3846^k = 0.3554, summing to one; the favourite
    # keeps more of its implied probability than the multiplicative method leaves it.
    favourite, longshot = fair_power(1.5, 2.6), fair_power(2.6, 1.5)
    assert favourite == pytest.approx(0.6446, abs=1e-4) and favourite + longshot == pytest.approx(1)
    k = math.log(favourite) / math.log(1 / 1.5)
    assert k == pytest.approx(1.0828, abs=1e-4) and (1 / 2.6) ** k == pytest.approx(longshot)
    # Without a margin (2.10 both ways sums below one) the fair probability is still one half.
    assert fair_power(2.1, 2.1) == pytest.approx(0.5)


def test_expected_value_and_fractional_kelly_by_hand() -> None:
    # 55% at evens: EV 0.55 * 2 - 1 = +0.10; Kelly (0.10) / (2 - 1) = 10%, a quarter of it 2.5%.
    assert expected_value(0.55, 2.0) == pytest.approx(0.10)
    assert kelly_stake(0.55, 2.0) == pytest.approx(0.025)
    assert kelly_stake(0.55, 2.0, fraction=0.5) == pytest.approx(0.05)
    # 60% at 1.909: EV 0.1454; Kelly 0.1454 / 0.909 = 16.0%, a quarter 4.0%.
    assert expected_value(0.6, 1.909) == pytest.approx(0.1454)
    assert kelly_stake(0.6, 1.909) == pytest.approx(0.1454 / 0.909 / 4)
    # 70% at evens: Kelly 40%, a quarter 10%, capped at 5% of the bankroll.
    assert kelly_stake(0.7, 2.0) == pytest.approx(0.05)
    # No edge, no stake.
    assert expected_value(0.45, 2.0) == pytest.approx(-0.10) and kelly_stake(0.45, 2.0) == 0
    with pytest.raises(ValueError):
        kelly_stake(0.6, 2.0, fraction=0)


def test_a_pick_takes_the_best_price_and_the_books_consensus() -> None:
    books = [
        BookPrice("pinnacle", 1.95, 1.95),
        BookPrice("draftkings", 2.05, 1.80),
        BookPrice("fanduel", 2.05, 1.8),
    ]
    value = value_of_pick(books, confidence=0.55)
    assert value is not None
    assert (value.best_bookmaker, value.best_price) == ("draftkings", 2.05)  # a tie goes to the first name
    # Fair: pinnacle 0.5; draftkings and fanduel 1.8 / 3.85 = 0.4675 each; mean 0.4784.
    assert value.fair_probability == pytest.approx((0.5 + 2 * 1.8 / 3.85) / 3)
    assert value.expected_value == pytest.approx(0.55 * 2.05 - 1)
    assert value.kelly_stake == pytest.approx((0.55 * 2.05 - 1) / 1.05 / 4)
    assert value_of_pick([], confidence=0.6) is None


def test_only_snapshots_taken_by_the_cut_off_count() -> None:
    at = dt.datetime(2025, 11, 1, 12, tzinfo=dt.UTC)
    rows = [
        ("pinnacle", at - dt.timedelta(hours=3), 1.91),
        ("pinnacle", at - dt.timedelta(hours=1), 1.95),
        ("pinnacle", at + dt.timedelta(minutes=5), 2.20),  # after the cut-off
        ("draftkings", at, 1.87),
    ]
    snapshots = conform(
        pl.DataFrame(
            [
                {"game_id": "g", "market": "h2h", "bookmaker": b, "snapshot_time": t, "price_first": p}
                for b, t, p in rows
            ]
        ),
        ODDS_SNAPSHOTS,
    )
    latest = latest_at_cutoff(snapshots, at).sort("bookmaker")
    assert latest.select("bookmaker", "price_first").rows() == [("draftkings", 1.87), ("pinnacle", 1.95)]


def test_every_pick_of_a_frame_is_valued_as_the_scalar_rules_value_it() -> None:
    at = dt.datetime(2025, 11, 1, 23, tzinfo=dt.UTC)
    snaps = [
        # game, market, book, minutes before the cut-off, line, first price, second price
        ("g1", "spreads", "pinnacle", 60, -4.5, 1.95, 1.87),
        ("g1", "spreads", "pinnacle", 10, -4.5, 1.91, 1.91),
        ("g1", "spreads", "draftkings", 30, -4.5, 1.87, 1.95),
        ("g1", "spreads", "fanduel", 30, -5.0, 2.10, 1.75),  # another line: not comparable
        ("g1", "spreads", "betmgm", -5, -4.5, 2.50, 1.50),  # after the cut-off
        ("g2", "totals", "pinnacle", 20, 210.5, 1.80, 2.05),
        ("g2", "h2h", "pinnacle", 20, None, 1.40, 3.10),
        ("g2", "h2h", "draftkings", 20, None, 1.45, 2.90),
    ]
    snapshots = conform(
        pl.DataFrame(
            [
                {
                    "game_id": g,
                    "market": m,
                    "bookmaker": b,
                    "snapshot_time": at - dt.timedelta(minutes=before),
                    "line": line,
                    "price_first": first,
                    "price_second": second,
                }
                for g, m, b, before, line, first, second in snaps
            ]
        ),
        ODDS_SNAPSHOTS,
    )
    picks = pl.DataFrame(
        {
            "game_id": ["g1", "g1", "g2", "g2", "g2"],
            "market": ["spreads", "spreads", "totals", "h2h", "h2h"],
            "line": [-4.5, -4.5, 210.5, None, None],
            "pick": ["home", "away", "under", "home", None],
            "confidence": [0.56, 0.58, 0.6, 0.75, 0.5],
            "cutoff_time": [at] * 5,
        }
    )
    valued = pick_values(picks, snapshots, fraction=0.5).to_dicts()
    books = {
        0: [BookPrice("pinnacle", 1.91, 1.91), BookPrice("draftkings", 1.87, 1.95)],
        1: [BookPrice("pinnacle", 1.91, 1.91), BookPrice("draftkings", 1.95, 1.87)],
        2: [BookPrice("pinnacle", 2.05, 1.80)],
        3: [BookPrice("pinnacle", 1.40, 3.10), BookPrice("draftkings", 1.45, 2.90)],
    }
    for row, prices in books.items():
        expected = value_of_pick(prices, valued[row]["confidence"], fraction=0.5)
        assert expected is not None
        got = valued[row]
        assert (got["best_bookmaker"], got["best_price"]) == (expected.best_bookmaker, expected.best_price), (
            row
        )
        for figure in ("fair_probability", "fair_probability_power", "expected_value", "kelly_stake"):
            assert got[figure] == pytest.approx(getattr(expected, figure)), (row, figure)
    assert valued[1]["best_bookmaker"] == "draftkings" and valued[0]["best_bookmaker"] == "pinnacle"
    assert valued[4]["best_price"] is None and valued[4]["kelly_stake"] is None  # no pick, no price
