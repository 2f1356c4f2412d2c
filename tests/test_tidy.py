"""Merging sources into tidy tables (domain/tables/tidy.py), numbers checked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl

from domain.tables import tidy
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS, conform

UTC = dt.UTC
DAY = dt.date(2025, 11, 2)
TIP = dt.datetime(2025, 11, 3, 0, 30, tzinfo=UTC)


def _results(rows: list[dict]) -> pl.DataFrame:
    base = {
        "sport": "basketball_nba",
        "season": "2025-26",
        "game_date": DAY,
        "commence_time": TIP,
        "home_team": "BOS",
        "away_team": "NYK",
        "neutral": False,
    }
    return conform(pl.DataFrame([{**base, **r} for r in rows]), GAME_RESULTS)


def test_completed_row_beats_scheduled_row_from_any_source() -> None:
    raw = _results(
        [
            {"game_id": "g1", "completed": False, "home_score": None, "away_score": None, "source": "aaa"},
            {"game_id": "g1", "completed": True, "home_score": 110, "away_score": 101, "source": "zzz"},
            {"game_id": "g2", "completed": True, "home_score": 99, "away_score": 98, "source": "b"},
            {"game_id": "g2", "completed": True, "home_score": 99, "away_score": 98, "source": "a"},
        ]
    )
    games = tidy.build_games(raw).sort("game_id")
    assert games["game_id"].to_list() == ["g1", "g2"]
    assert games.row(0, named=True)["home_score"] == 110
    assert games["source"].to_list() == ["zzz", "a"]


def _snap(t: dt.datetime, line: float, p1: float, p2: float, book: str = "fd") -> dict:
    return {
        "game_id": "g1",
        "sport": "basketball_nba",
        "game_date": DAY,
        "bookmaker": book,
        "market": "spreads",
        "snapshot_time": t,
        "line": line,
        "price_first": p1,
        "price_second": p2,
        "priced_by_assumption": False,
        "source": "s",
    }


def test_lines_open_first_close_last_before_tip_and_ignore_in_play() -> None:
    snaps = conform(
        pl.DataFrame(
            [
                _snap(TIP - dt.timedelta(hours=40), -3.0, 1.91, 1.91),
                _snap(TIP - dt.timedelta(hours=6), -4.0, 1.87, 1.95),
                _snap(TIP - dt.timedelta(hours=6), -4.0, 1.87, 1.95),  # the same snapshot delivered twice
                _snap(TIP - dt.timedelta(minutes=5), -4.5, 1.91, 1.91),
                _snap(TIP + dt.timedelta(minutes=20), -9.5, 1.80, 2.00),  # in-play: never the closing line
            ]
        ),
        ODDS_SNAPSHOTS,
    )
    snapshots = tidy.build_snapshots(snaps)
    assert snapshots.height == 4
    games = tidy.build_games(
        _results([{"game_id": "g1", "completed": True, "home_score": 1, "away_score": 0, "source": "s"}])
    )
    line = tidy.build_lines(snapshots, games).row(0, named=True)
    assert line["n_snapshots"] == 3
    assert (line["opening_line"], line["closing_line"]) == (-3.0, -4.5)
    assert line["opening_time"] == TIP - dt.timedelta(hours=40)
    assert line["closing_time"] == TIP - dt.timedelta(minutes=5)
    assert (line["closing_price_first"], line["closing_price_second"]) == (1.91, 1.91)
