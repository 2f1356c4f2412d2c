"""The scoring engine on a tiny league with numbers worked by hand (SPEC sections 4 and 5).

The league (all times UTC, tip-off T = 00:30 the next calendar day, so the US game date is the day):

    D1 2024-01-01  G1  LAL @ BOS  110-100   spreads closing: book_a -4, book_b -6 (consensus -5)
    D2 2024-01-02  G2  BOS @ MIA  104-100   spreads closing: book_a +2, book_b +5 (consensus +3.5)
    D3 2024-01-03  G3  BOS @ LAL  105-99    the day scored below
    D3 2024-01-03  G4  NYK @ MIA  99-101    NYK has never played

Team box scores before D3 (points are the final scores; turnovers):
    G1: BOS 110 pts 10 tov, LAL 100 pts 14 tov;   G2: MIA 100 pts 12 tov, BOS 104 pts 8 tov.
G3 and G4 have box scores too (played on D3) with wild numbers that no D3 analysis may see.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from domain.formats.sample_league import generate_season
from domain.markets.grading import grade, profit
from domain.markets.value import KELLY_FRACTION
from domain.models.config import parse_model_config
from domain.models.engine import (
    ANALYSIS_KEY,
    EXPLAINED,
    SOURCE_CALLS,
    ModelBatch,
    Scored,
    Tables,
    grade_analyses,
    multipliers_from_calls,
    multipliers_from_history,
    performance,
    run_backtest,
    score_day,
    score_day_explained,
    source_calls,
)
from domain.models.engine.scoring import SOURCE_SCORE_KEY, WEIGHTS_KEY
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform
from tests.synthetic_league import START, synthetic_league

SPORT = "basketball_nba"
D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
G1, G2, G3, G4 = (
    "nba_20240101_LAL_BOS",
    "nba_20240102_BOS_MIA",
    "nba_20240103_BOS_LAL",
    "nba_20240103_NYK_MIA",
)
H = dt.timedelta(hours=1)


def explained_day(*args: Any, **kw: Any) -> pl.DataFrame:
    """:func:`score_day`'s analyses with their sources as lists (``Scored.explained``)."""
    return score_day_explained(*args, **kw).explained()


def tip(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1, minutes=30)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _snap(
    game: str,
    day: dt.date,
    book: str,
    at: dt.datetime,
    line: float | None,
    first: float = 1.91,
    second: float = 1.91,
    public: float | None = None,
    market: str = "spreads",
) -> dict:
    return {
        "game_id": game,
        "sport": SPORT,
        "game_date": day,
        "bookmaker": book,
        "market": market,
        "snapshot_time": at,
        "line": line,
        "price_first": first,
        "price_second": second,
        "priced_by_assumption": False,
        "public_first_pct": public,
        "source": "test",
    }


def tiny_league() -> Tables:
    games = [
        (G1, D1, "BOS", "LAL", 110, 100),
        (G2, D2, "MIA", "BOS", 100, 104),
        (G3, D3, "LAL", "BOS", 99, 105),
        (G4, D3, "MIA", "NYK", 101, 99),
    ]
    team_box = [
        (G1, D1, "BOS", "LAL", 110, 10),
        (G1, D1, "LAL", "BOS", 100, 14),
        (G2, D2, "MIA", "BOS", 100, 12),
        (G2, D2, "BOS", "MIA", 104, 8),
        (G3, D3, "LAL", "BOS", 999, 99),
        (G3, D3, "BOS", "LAL", 1, 0),
        (G4, D3, "MIA", "NYK", 999, 99),
        (G4, D3, "NYK", "MIA", 1, 0),
    ]
    players = [  # (game, day, team, opponent, player, minutes, points)
        (G1, D1, "BOS", "LAL", "b1", 30, 20),
        (G1, D1, "BOS", "LAL", "b2", 10, 5),
        (G1, D1, "LAL", "BOS", "l1", 35, 18),
        (G1, D1, "LAL", "BOS", "l2", 25, 10),
        (G2, D2, "BOS", "MIA", "b1", 32, 24),
        (G2, D2, "BOS", "MIA", "b2", 12, 3),
        (G2, D2, "MIA", "BOS", "m1", 30, 30),
        (G3, D3, "LAL", "BOS", "l1", 48, 99),
    ]
    t3 = tip(D3)
    snapshots = [
        _snap(G1, D1, "book_a", tip(D1) - 20 * H, -4.0),
        _snap(G1, D1, "book_a", tip(D1) - H, -4.0),
        _snap(G1, D1, "book_b", tip(D1) - H, -6.0),
        _snap(G2, D2, "book_a", tip(D2) - H, 2.0),
        _snap(G2, D2, "book_b", tip(D2) - H, 5.0, second=2.05),
        # G3: the home line falls -3 -> -4 -> -4.5 (towards LAL); the in-play -7 is after the cut-off.
        *[
            _snap(G3, D3, book, t3 - hours * H, line, public=public if hours == 1 else None)
            for book, public in (("book_a", 0.3), ("book_b", 0.7))
            for hours, line in ((30, -3.0), (10, -4.0), (1, -4.5), (-1, -7.0))
        ],
        _snap(G3, D3, "book_a", t3 - 30 * H, None, 2.0, 2.0, market="h2h"),
        _snap(G3, D3, "book_a", t3 - H, None, 1.8, 2.2, market="h2h"),
        _snap(G3, D3, "book_a", t3 - H, 210.5, market="totals"),
        _snap(G4, D3, "book_a", tip(D3) - 5 * H, -2.0),
    ]
    return Tables(
        games=conform(
            pl.DataFrame(
                [
                    {
                        "game_id": g,
                        "sport": SPORT,
                        "season": "2023-24",
                        "game_date": d,
                        "commence_time": tip(d),
                        "home_team": h,
                        "away_team": a,
                        "home_score": hs,
                        "away_score": as_,
                        "completed": True,
                    }
                    for g, d, h, a, hs, as_ in games
                ]
            ),
            GAMES,
        ),
        team_box=conform(
            pl.DataFrame(
                [
                    {
                        "game_id": g,
                        "sport": SPORT,
                        "game_date": d,
                        "team": t,
                        "opponent": o,
                        "pts": float(p),
                        "tov": float(tov),
                    }
                    for g, d, t, o, p, tov in team_box
                ]
            ),
            TEAM_BOX,
        ),
        player_box=conform(
            pl.DataFrame(
                [
                    {
                        "game_id": g,
                        "sport": SPORT,
                        "game_date": d,
                        "team": t,
                        "opponent": o,
                        "player_id": pid,
                        "minutes": float(m),
                        "pts": float(p),
                    }
                    for g, d, t, o, pid, m, p in players
                ]
            ),
            PLAYER_BOX,
        ),
        snapshots=conform(pl.DataFrame(snapshots), ODDS_SNAPSHOTS),
    )


def model(sources: dict, market: str = "spreads", model_id: str = "m", **extra: object) -> ModelBatch:
    return ModelBatch.from_configs(
        [
            parse_model_config(
                {
                    "model_id": model_id,
                    "name": "test",
                    "creator_user_id": "u",
                    "sport": SPORT,
                    "market": market,
                    "data_sources": sources,
                    **extra,
                }
            )
        ]
    )


def only(analyses: pl.DataFrame, game: str, book: str = "book_a") -> dict:
    rows = analyses.filter((pl.col("game_id") == game) & (pl.col("bookmaker") == book))
    assert rows.height == 1
    return rows.row(0, named=True)


def source_score(
    sources: dict, game: str = G3, book: str = "book_a", market: str = "spreads", **kw: object
) -> float:
    return only(explained_day(model(sources, market), tiny_league(), D3, **kw), game, book)["source_scores"][
        0
    ]


# ---- team_stats ----------------------------------------------------------------------------------


def test_team_stats_field_scores_by_hand() -> None:
    # Lookback 2 on D3: BOS pts (110 + 104) / 2 = 107, LAL 100, MIA 100; NYK has no games. League mean
    # 307/3, deviations +14/3, -7/3, -7/3, population std sqrt(98/9) = 7*sqrt(2)/3, so
    # z_BOS = sqrt(2), z_LAL = -1/sqrt(2). G3 (LAL home): sigmoid(z_LAL - z_BOS) = sigmoid(-3/sqrt(2)).
    pts = source_score({"team_stats": {"weight": 1, "fields": ["pts"], "lookback_games": 2}})
    assert pts == pytest.approx(sigmoid(-3 / math.sqrt(2)), abs=1e-12)
    assert pts == pytest.approx(0.107042, abs=1e-6)
    # Turnovers (lower is better): BOS (10 + 8) / 2 = 9, LAL 14, MIA 12; mean 35/3, deviations -8/3,
    # +7/3, +1/3, std sqrt(38)/3: z_LAL = 7/sqrt(38), z_BOS = -8/sqrt(38), negated for lower-is-better:
    # sigmoid(-z_LAL + z_BOS) = sigmoid(-15/sqrt(38)).
    tov = source_score({"team_stats": {"weight": 1, "fields": ["turnovers"], "lookback_games": 2}})
    assert tov == pytest.approx(sigmoid(-15 / math.sqrt(38)), abs=1e-12)
    # Both fields: the seed's mean over fields.
    both = source_score({"team_stats": {"weight": 1, "fields": ["pts", "tov"], "lookback_games": 2}})
    assert both == pytest.approx((pts + tov) / 2, abs=1e-12)
    # Totals: raw z-scores times the catalogue's orientation (pts +1, tov -1).
    totals = source_score(
        {"team_stats": {"weight": 1, "fields": ["pts", "tov"], "lookback_games": 2}}, market="totals"
    )
    assert totals == pytest.approx((sigmoid(1 / math.sqrt(2)) + sigmoid(1 / math.sqrt(38))) / 2, abs=1e-12)


def test_team_stats_lookback_takes_only_the_last_games() -> None:
    # Turnovers, lookback 1: BOS 8 (G2 only), LAL 14, MIA 12: mean 34/3, deviations -10/3, +8/3, +2/3,
    # std sqrt(56)/3; z_LAL = 8/sqrt(56), z_BOS = -10/sqrt(56), negated: sigmoid(-18/sqrt(56)).
    score = source_score({"team_stats": {"weight": 1, "fields": ["tov"], "lookback_games": 1}})
    assert score == pytest.approx(sigmoid(-18 / math.sqrt(56)), abs=1e-12)
    assert score != pytest.approx(sigmoid(-15 / math.sqrt(38)))  # what lookback 2 gives


def test_player_stats_sum_rotation_players_by_hand() -> None:
    # min_minutes 20, lookback 2: BOS b1 (30, 32 min; 20, 24 pts) -> 22, b2 averages 11 min (out);
    # LAL l1 18 + l2 10 = 28; MIA m1 30. Mean 80/3, deviations -14/3, +4/3, +10/3, std sqrt(104)/3:
    # z_LAL = 4/sqrt(104), z_BOS = -14/sqrt(104): sigmoid(18/sqrt(104)) = 0.85384.
    score = source_score(
        {"player_stats": {"weight": 1, "fields": ["PTS"], "min_minutes": 20, "lookback_games": 2}}
    )
    assert score == pytest.approx(sigmoid(18 / math.sqrt(104)), abs=1e-12)
    assert score == pytest.approx(0.853840, abs=1e-6)


# ---- odds_movement -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("book", "hours", "expected"),
    [
        # 48 h: opening -3 (T-30h), current -4.5 (T-1h): 1.5 points towards home, movement 0.5.
        ("book_b", 48, 0.75),  # 70% of bets on home, the line moved with them: no boost
        ("book_a", 48, 0.8),  # 70% on away, line moved towards home: reverse movement, 0.5 * 1.2 = 0.6
        # 24 h: opening is the first snapshot inside the window, -4 at T-10h: 0.5 points, movement 1/6.
        ("book_b", 24, 0.5 + 0.5 / 6),
        ("book_a", 24, 0.5 + 0.5 * 1.2 / 6),
        # 1 h: only the current snapshot lies in the window: no move.
        ("book_a", 1, 0.5),
    ],
)
def test_odds_movement_spreads_by_hand(book: str, hours: int, expected: float) -> None:
    assert source_score(
        {"odds_movement": {"weight": 1, "time_window_hours": hours}}, book=book
    ) == pytest.approx(expected, abs=1e-12)


def test_odds_movement_sees_nothing_after_the_cut_off() -> None:
    # Analysed at T-5h: current = -4 (T-10h, no public data), opening -3: 1 point towards home.
    as_of = tip(D3) - 5 * H
    assert source_score(
        {"odds_movement": {"weight": 1, "time_window_hours": 48}}, as_of=as_of
    ) == pytest.approx(0.5 + 0.5 / 3, abs=1e-12)
    row = only(score_day(model({"odds_movement": {"weight": 1}}), tiny_league(), D3, as_of), G3)
    assert (row["line"], row["snapshot_time"], row["cutoff_time"]) == (-4.0, tip(D3) - 10 * H, as_of)


def test_odds_movement_h2h_in_no_vig_points() -> None:
    # Prices 2.0/2.0 -> 1.8/2.2: no-vig home 0.5 -> 2.2 / (2.2 + 1.8) = 0.55, +5 points (= 1.5 spread
    # points): movement 0.5 towards home.
    assert source_score(
        {"odds_movement": {"weight": 1, "time_window_hours": 48}}, market="h2h"
    ) == pytest.approx(0.75, abs=1e-12)


# ---- historical_performance ----------------------------------------------------------------------


def test_historical_rates_with_shrinkage_by_hand() -> None:
    # Consensus closing spreads: G1 BOS -5 (110 - 5 > 100, BOS covered), G2 MIA +3.5 (BOS covered:
    # 104 - 3.5 > 100). BOS 2 of 2 -> (2 + 2) / (2 + 4) = 2/3; LAL 0 of 1 -> 2/5.
    # G3 (LAL home): 0.5 + (2/5 - 2/3) / 2 = 11/30.
    assert source_score({"historical_performance": {"weight": 1, "lookback_days": 7}}) == pytest.approx(
        11 / 30, abs=1e-12
    )
    # A 1-day window sees only D2: LAL has no games (0.5), BOS 1 of 1 -> 3/5: 0.5 + (0.5 - 0.6) / 2.
    assert source_score({"historical_performance": {"weight": 1, "lookback_days": 1}}) == pytest.approx(
        0.45, abs=1e-12
    )
    # h2h: BOS won both (2/3), LAL lost G1 (2/5): the same 11/30.
    assert source_score(
        {"historical_performance": {"weight": 1, "lookback_days": 7}}, market="h2h"
    ) == pytest.approx(11 / 30, abs=1e-12)


# ---- the whole model -----------------------------------------------------------------------------

MODEL = {
    "team_stats": {"weight": 0.4, "fields": ["pts", "tov"], "lookback_games": 2},
    "odds_movement": {"weight": 0.2, "time_window_hours": 48},
    "historical_performance": {"weight": 0.1, "lookback_days": 7},
}


def test_final_p_confidence_and_qualifies_by_hand() -> None:
    analyses = explained_day(model(MODEL, min_confidence=0.6, max_confidence=0.65), tiny_league(), D3)
    row = only(analyses, G3)
    team = (sigmoid(-3 / math.sqrt(2)) + sigmoid(-15 / math.sqrt(38))) / 2  # 0.093854
    p = (0.4 * team + 0.2 * 0.8 + 0.1 * 11 / 30) / 0.7  # 0.334583
    assert row["source_names"] == ["team_stats", "odds_movement", "historical_performance"]
    assert row["source_scores"] == pytest.approx([team, 0.8, 11 / 30], abs=1e-12)
    assert row["weights"] == pytest.approx([0.4, 0.2, 0.1])
    assert row["p"] == pytest.approx(p, abs=1e-12)
    assert row["p"] == pytest.approx(0.334583, abs=1e-6)
    assert row["pick"] == "away"
    assert row["raw_confidence"] == pytest.approx(1 - p, abs=1e-12)
    assert row["confidence"] == 0.65  # clamped to max_confidence
    assert row["qualifies"] is True
    assert row["pick_price"] == 1.91
    assert (row["line"], row["snapshot_time"], row["cutoff_time"]) == (-4.5, tip(D3) - H, tip(D3))
    assert analyses.schema == pl.Schema(EXPLAINED)


def test_missing_source_renormalises_the_remaining_weights() -> None:
    # G4: NYK has never played, so team_stats is missing; odds (one snapshot) 0.5; history MIA 0 of 1
    # (100 + 3.5 < 104) -> 2/5, NYK 1/2: 0.5 + (0.4 - 0.5) / 2 = 0.45. p = (0.2*0.5 + 0.1*0.45) / 0.3.
    row = only(explained_day(model(MODEL, min_confidence=0.6), tiny_league(), D3), G4)
    assert row["source_scores"] == [None, 0.5, pytest.approx(0.45)]
    assert row["weights"] == [0.0, 0.2, 0.1]
    assert row["p"] == pytest.approx((0.2 * 0.5 + 0.1 * 0.45) / 0.3, abs=1e-12)
    assert row["pick"] == "away"
    assert row["qualifies"] is False
    assert row["confidence"] == 0.6  # raised to min_confidence, but not published


def test_all_sources_missing_gives_no_analysis_and_no_line_gives_no_row() -> None:
    analyses = score_day(model({"team_stats": {"weight": 1, "fields": ["pts"]}}), tiny_league(), D3)
    assert analyses["game_id"].unique().to_list() == [G3]  # G4 has no team_stats at all
    # h2h: only book_a prices G3; G4 has no h2h line, so nothing to grade and no row.
    h2h = score_day(model(MODEL, market="h2h"), tiny_league(), D3)
    assert h2h.select("game_id", "bookmaker").rows() == [(G3, "book_a")]


def test_dynamic_multiplier_scales_only_sources_with_dynamic_weighting() -> None:
    sources = {
        "odds_movement": {"weight": 0.2, "time_window_hours": 48},
        "historical_performance": {"weight": 0.1, "lookback_days": 7, "dynamic_weighting": False},
    }
    batch = model(sources, dynamic_weighting=True)
    multipliers = pl.DataFrame(
        {
            "model_id": ["m", "m"],
            "version": [1, 1],
            "source_name": ["odds_movement", "historical_performance"],
            "multiplier": [1.5, 0.5],
        }
    )
    row = only(explained_day(batch, tiny_league(), D3, multipliers=multipliers), G3)
    assert row["weights"] == pytest.approx([0.3, 0.1])
    assert row["p"] == pytest.approx((0.3 * 0.8 + 0.1 * 11 / 30) / 0.4, abs=1e-12)


def test_custom_scores_are_joined_per_model_version_and_game() -> None:
    sources = {
        "odds_movement": {"weight": 1, "time_window_hours": 48},
        "custom_edge": {
            "weight": 3,
            "dataset_id": "ds",
            "field": "x",
            "transformation": "threshold",
            "threshold": 0,
        },
    }
    custom = pl.DataFrame(
        {
            "model_id": ["m", "m", "other"],
            "version": [1, 1, 1],
            "source_name": ["custom_edge"] * 3,
            "game_id": [G3, G4, G4],
            "score": [0.2, None, 1.0],
        }
    )
    analyses = explained_day(model(sources), tiny_league(), D3, custom_scores=custom)
    assert only(analyses, G3)["p"] == pytest.approx((0.8 + 3 * 0.2) / 4, abs=1e-12)
    assert only(analyses, G4)["source_scores"] == [0.5, None]  # a null score is missing


def test_batch_from_stored_json_and_raw_payloads_equals_from_configs() -> None:
    # A raw payload relies on defaults (lookback_games 10, window 24 h, 30 days, spreads, 0.5..1);
    # the stored form (sorted keys, every default written out) and the pydantic config must agree.
    raw = {
        "model_id": "m",
        "name": "x",
        "creator_user_id": "u",
        "sport": SPORT,
        "data_sources": {
            "team_stats": {"weight": 1, "fields": ["PTS", "Turnovers"]},
            "historical_performance": {"weight": 1, "enabled": False},
            "odds_movement": {"weight": 2},
            "z_custom": {
                "weight": 1,
                "dataset_id": "d",
                "field": "x",
                "transformation": "threshold",
                "threshold": 1,
            },
        },
    }
    config = parse_model_config(raw)
    stored = pl.DataFrame({"config_json": [json.dumps(config.to_payload(), sort_keys=True)]})
    expected = score_day(ModelBatch.from_configs([config]), tiny_league(), D3)
    names = explained_day(ModelBatch.from_configs([config]), tiny_league(), D3)["source_names"]
    assert expected.height == 3 and names[0].to_list() == [
        "team_stats",
        "odds_movement",
        "z_custom",
    ]
    assert_frame_equal(score_day(ModelBatch.from_frame(stored), tiny_league(), D3), expected)
    assert_frame_equal(score_day(ModelBatch.from_payloads([raw]), tiny_league(), D3), expected)


def test_a_batch_mixing_sports_scores_each_model_on_its_own_sport() -> None:
    # One day's tables hold one sport; an NFL model in the batch (fields the NBA catalogue lacks)
    # must neither fail the batch nor change the NBA model's analyses.
    def config(model_id: str, sport: str, field: str) -> dict:
        sources = {"team_stats": {"weight": 1, "fields": [field], "lookback_games": 2}}
        return {"model_id": model_id, "name": "x", "creator_user_id": "u", "sport": sport} | {
            "data_sources": sources
        }

    nba, nfl = config("nba", SPORT, "pts"), config("nfl", "americanfootball_nfl", "margin")
    mixed = score_day(ModelBatch.from_payloads([nfl, nba]), tiny_league(), D3)
    alone = score_day(ModelBatch.from_payloads([nba]), tiny_league(), D3)
    assert mixed["model_id"].unique().to_list() == ["nba"] and alone.height == 2  # NYK has no games
    assert_frame_equal(mixed, alone)


# ---- dynamic weighting from history --------------------------------------------------------------


def _past(rows: list[tuple[str, dt.date, float | None, float | None]]) -> Scored:
    """Analyses of model m: (game, game date, spreads line, odds_movement score), each at a line of
    its own (another bookmaker)."""
    frame = pl.DataFrame(
        [
            {
                "model_id": "m",
                "version": 1,
                "sport": SPORT,
                "market": "spreads",
                "game_id": g,
                "game_date": d,
                "bookmaker": f"book_{i}",
                "cutoff_time": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                "line": line,
                "source_names": ["odds_movement"],
                "source_scores": [s],
                "weights": [1.0 if s is not None else 0.0],
            }
            for i, (g, d, line, s) in enumerate(rows)
        ]
    )
    return Scored.from_explained(conform(frame, EXPLAINED))


def test_multiplier_counts_hits_and_calls_by_hand() -> None:
    games = tiny_league().games
    past = _past(
        [
            (G1, D1, -4.0, 0.8),  # home side; BOS 110 - 4 > 100: hit
            (G1, D1, -10.0, 0.8),  # push at -10: neither hit nor call
            (G2, D2, 2.0, 0.3),  # away side; MIA 100 + 2 < 104: hit
            (G2, D2, 5.0, 0.3),  # away side; MIA 100 + 5 > 104: miss
            (G2, D2, 2.0, 0.5),  # abstains
            (G2, D2, 2.0, None),  # missing: no call
            (G3, D3, -4.5, 0.9),  # the day itself: never used
        ]
    )
    multipliers = multipliers_from_history(past, games, D3)
    # 2 hits of 3 calls: (2 + 10) / (3 + 20) = 12/23, m = 24/23.
    assert multipliers.rows() == [("m", 1, "odds_movement", pytest.approx(24 / 23, abs=1e-12))]
    # 30 days after D3 only G3 is left in the window: LAL 99 - 4.5 < 105, a miss: 2 * 10/21.
    assert multipliers_from_history(past, games, D3 + dt.timedelta(days=30))["multiplier"].to_list() == [
        pytest.approx(20 / 21, abs=1e-12)
    ]
    # A day later nothing is: no history, no multiplier (1 when scoring).
    assert multipliers_from_history(past, games, D3 + dt.timedelta(days=31)).is_empty()


def test_multiplier_is_clamped() -> None:
    games = tiny_league().games
    hits = _past([(G1, D1, -4.0, 0.9)] * 40)  # (40 + 10) / (40 + 20) = 5/6 -> 5/3, clamped to 1.5
    misses = _past([(G1, D1, -4.0, 0.1)] * 40)  # 10/60 -> 1/3, clamped to 0.5
    assert multipliers_from_history(hits, games, D3)["multiplier"].to_list() == [1.5]
    assert multipliers_from_history(misses, games, D3)["multiplier"].to_list() == [0.5]


def test_multiplier_ignores_results_on_or_after_the_day() -> None:
    tables = tiny_league()
    past = _past([(G1, D1, -4.0, 0.8), (G2, D2, 5.0, 0.3), (G3, D3, -4.5, 0.9), (G4, D3, -2.0, 0.1)])
    before = multipliers_from_history(past, tables.games, D3)
    changed = tables.games.with_columns(
        pl.when(pl.col("game_date") >= D3)
        .then(pl.col("away_score") + 50)
        .otherwise(pl.col("home_score"))
        .alias("home_score")
    )
    assert_frame_equal(multipliers_from_history(past, changed, D3), before)
    assert before["multiplier"].to_list() == [pytest.approx(2 * 11 / 22)]  # 1 hit of 2 calls


# ---- grading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "line", "home", "away", "side", "expected"),
    [
        ("spreads", -4.0, 110, 100, "home", "won"),
        ("spreads", -10.0, 110, 100, "home", "push"),
        ("spreads", -10.5, 110, 100, "away", "won"),
        ("spreads", 2.0, 100, 104, "home", "lost"),
        ("totals", 210.0, 110, 100, "over", "push"),
        ("totals", 209.5, 110, 100, "under", "lost"),
        ("h2h", None, 100, 101, "away", "won"),
        ("h2h", None, 100, 100, "home", "push"),
        ("spreads", -4.0, None, None, "home", None),
    ],
)
def test_grade(
    market: str, line: float | None, home: int | None, away: int | None, side: str, expected: str | None
) -> None:
    frame = pl.DataFrame(
        {"market": [market], "line": [line], "home": [home], "away": [away], "side": [side]},
        schema={
            "market": pl.String,
            "line": pl.Float64,
            "home": pl.Int32,
            "away": pl.Int32,
            "side": pl.String,
        },
    )
    result = frame.select(
        grade(pl.col("market"), pl.col("line"), pl.col("home"), pl.col("away"), pl.col("side"))
    )
    assert result.item() == expected


def test_profit() -> None:
    frame = pl.DataFrame({"result": ["won", "lost", "push", None], "price": [2.5, 2.5, 2.5, 2.5]})
    assert frame.select(profit(pl.col("result"), pl.col("price"))).to_series().to_list() == [
        1.5,
        -1.0,
        0.0,
        None,
    ]


# ---- backtest ------------------------------------------------------------------------------------


def test_backtest_report_by_hand() -> None:
    # One custom source with fixed scores per game makes every pick obvious:
    #   G1 0.7 -> home at -4 (won) and -6 (won, 110 - 6 > 100), both qualify at 0.7
    #   G2 0.2 -> away at +2 (won, 104 - 2 > 100) and +5 (lost, price 2.05), confidence 0.8
    #   G3 0.55 -> home twice, below min_confidence 0.6: analysed, not counted
    #   G4 0.9 -> home at -2: 101 - 2 = 99, a push; confidence clamped to 0.8
    sources = {
        "custom_edge": {
            "weight": 1,
            "dataset_id": "ds",
            "field": "x",
            "transformation": "threshold",
            "threshold": 0,
        }
    }
    custom = pl.DataFrame(
        {
            "model_id": "m",
            "version": 1,
            "source_name": "custom_edge",
            "game_id": [G1, G2, G3, G4],
            "score": [0.7, 0.2, 0.55, 0.9],
        }
    )
    batch = model(sources, min_confidence=0.6, max_confidence=0.8)
    seen: list[tuple[dt.date, int, int]] = []
    result = run_backtest(
        batch,
        tiny_league(),
        D1,
        D3,
        custom_scores=custom,
        progress=lambda day, done, total: seen.append((day, done, total)),
    )
    assert seen == [(D3, 3, 3)]  # three game days make one span, reported once
    summary = result.summary.row(0, named=True)
    assert {
        k: summary[k]
        for k in (
            "analyses",
            "qualifying",
            "graded",
            "wins",
            "losses",
            "pushes",
            "units",
            "picks_home",
            "picks_away",
            "picks_over",
            "picks_under",
        )
    } == {
        "analyses": 7,
        "qualifying": 5,
        "graded": 4,
        "wins": 3,
        "losses": 1,
        "pushes": 1,
        "units": 4.0,
        "picks_home": 3,
        "picks_away": 2,
        "picks_over": 0,
        "picks_under": 0,
    }
    assert summary["accuracy"] == 0.75
    assert summary["profit"] == pytest.approx(3 * 0.91 - 1)  # 1.73
    assert summary["roi"] == pytest.approx(1.73 / 4)
    # Brier over graded picks: (0.7 - 1)^2 twice, (0.8 - 1)^2, (0.8 - 0)^2 -> 0.86 / 4.
    assert summary["brier"] == pytest.approx(0.215)
    assert summary["avg_confidence"] == pytest.approx((0.7 * 2 + 0.8 * 3) / 5)
    # Quarter Kelly in units of 1% of the bankroll: 0.7 at 1.91 is (1.337 - 1) / 0.91 = 37.0% / 4,
    # 0.8 at 1.91 and at 2.05 more still: every graded pick is capped at 5% = 5 units.
    assert summary["kelly_units"] == pytest.approx(20)
    assert summary["kelly_profit"] == pytest.approx(3 * 5 * 0.91 - 5)  # 8.65
    assert summary["kelly_roi"] == pytest.approx(8.65 / 20)
    assert result.monthly.drop("month").to_dicts() == result.summary.to_dicts()
    # A twentieth of Kelly: 0.7 at 1.91 stakes 37.03% / 20 = 1.8516 units (twice, both won), 0.8 at
    # 1.91 (1.528 - 1) / 0.91 / 20 = 2.9011 units (won), 0.8 at 2.05 (1.64 - 1) / 1.05 / 20 = 3.0476 (lost).
    small = run_backtest(batch, tiny_league(), D1, D3, custom_scores=custom, kelly_fraction=0.05)
    twentieth = small.summary.row(0, named=True)
    assert twentieth["kelly_units"] == pytest.approx(2 * 1.85165 + 2.90110 + 3.04762, abs=1e-4)  # 9.6520
    assert twentieth["kelly_profit"] == pytest.approx(0.91 * (2 * 1.85165 + 2.90110) - 3.04762, abs=1e-4)
    assert twentieth["kelly_roi"] == pytest.approx(2.9624 / 9.6520, abs=1e-4)
    assert (twentieth["units"], twentieth["profit"]) == (summary["units"], summary["profit"])
    assert result.monthly["month"].to_list() == ["2024-01"]
    assert result.analyses is not None
    assert result.analyses.filter(pl.col("game_id") == G4)["result"].to_list() == ["push"]


def test_backtest_lists_models_without_analyses() -> None:
    result = run_backtest(
        model({"team_stats": {"weight": 1, "fields": ["pts"]}}, market="totals"),
        tiny_league(),
        D1,
        D2,
        keep_analyses=False,
    )
    assert result.analyses is None
    row = result.summary.row(0, named=True)
    assert (row["analyses"], row["graded"], row["accuracy"], row["roi"]) == (0, 0, None, None)


# ---- no look-ahead -------------------------------------------------------------------------------


def _scramble_after(tables: Tables, day: dt.date) -> Tables:
    """Every result, box score and snapshot the engine must not see when analysing up to ``day``:
    games after it, box scores from it on, and snapshots after each game's tip-off or of later games."""
    commence = tables.games.select("game_id", "commence_time")
    late_snapshot = (pl.col("snapshot_time") > pl.col("commence_time")) | (pl.col("game_date") > day)
    return Tables(
        games=tables.games.with_columns(
            pl.when(pl.col("game_date") > day).then(pl.col(c) * 2 + 7).otherwise(pl.col(c)).alias(c)
            for c in ("home_score", "away_score")
        ),
        team_box=tables.team_box.with_columns(
            pl.when(pl.col("game_date") >= day).then(pl.col(c) * 3 + 1).otherwise(pl.col(c)).alias(c)
            for c in ("pts", "fga", "tov", "oreb", "reb")
        ),
        player_box=tables.player_box.with_columns(
            pl.when(pl.col("game_date") >= day).then(pl.col(c) + 17).otherwise(pl.col(c)).alias(c)
            for c in ("pts", "minutes", "reb")
        ),
        snapshots=tables.snapshots.join(commence, on="game_id")
        .with_columns(
            pl.when(late_snapshot).then(pl.col("line") - 9).otherwise(pl.col("line")).alias("line"),
            pl.when(late_snapshot)
            .then(1 - pl.col("public_first_pct").fill_null(0.1))
            .otherwise(pl.col("public_first_pct"))
            .alias("public_first_pct"),
        )
        .drop("commence_time"),
    )


def test_no_look_ahead_backtest_up_to_a_day_ignores_everything_later() -> None:
    tables = synthetic_league(7, n_teams=8, n_days=16)
    configs = [
        {
            "team_stats": {
                "weight": 0.3,
                "fields": ["offensive_rating", "defensive_rating", "pace", "tov"],
                "lookback_games": 3,
            },
            "player_stats": {"weight": 0.2, "fields": ["pts", "reb"], "min_minutes": 10, "lookback_games": 3},
            "odds_movement": {"weight": 0.2, "time_window_hours": 24},
            "historical_performance": {"weight": 0.3, "lookback_days": 5},
        },
        {
            "odds_movement": {"weight": 1, "time_window_hours": 48},
            "historical_performance": {"weight": 1, "lookback_days": 10},
        },
    ]
    batch = ModelBatch.from_configs(
        [
            parse_model_config(
                {
                    "model_id": f"m{i}_{market}",
                    "name": "x",
                    "creator_user_id": "u",
                    "sport": SPORT,
                    "market": market,
                    "data_sources": sources,
                    "dynamic_weighting": True,
                    "min_confidence": 0.52,
                }
            )
            for i, sources in enumerate(configs)
            for market in ("spreads", "h2h", "totals")
        ]
    )
    day = START + dt.timedelta(days=10)
    first = run_backtest(batch, tables, START, day).explanations
    second = run_backtest(batch, _scramble_after(tables, day), START, day).explanations
    assert first is not None and second is not None
    assert first.analyses.height > 100 and first.analyses["game_date"].max() == day
    assert first.weights.group_by("model_id", "slot").agg(pl.col("weight").n_unique() > 1)["weight"].any()
    assert_frame_equal(first.explained(), second.explained())  # multipliers moved, the same way
    # And the scrambled data does change what comes after: the test can fail.
    later = START + dt.timedelta(days=12)
    assert not score_day(batch, tables, later).equals(score_day(batch, _scramble_after(tables, day), later))


# ---- one pass equals day by day ------------------------------------------------------------------


def day_by_day(
    batch: ModelBatch, tables: Tables, days: list[dt.date], custom: pl.DataFrame | None = None
) -> Scored:
    """What the live pipeline does: each day scored alone, with multipliers from the earlier days'
    own analyses (the backtest's definition before it scored spans of days at once)."""
    calls, out = pl.DataFrame(schema=SOURCE_CALLS), []
    for day in days:
        scored = score_day_explained(batch, tables, day, None, multipliers_from_calls(calls, day), custom)
        out.append(scored)
        calls = pl.concat([calls, source_calls(scored, tables.games)])
    return Scored.concat(out)


def test_one_pass_backtest_equals_scoring_alonewith_dynamic_weighting() -> None:
    season = generate_season()
    tables = Tables(season.game_results, season.team_box, season.player_box, season.odds_snapshots)
    start = tables.games["game_date"].min()
    end = start + dt.timedelta(days=100)  # two spans of game days, and the windows roll across them
    sources = [
        {
            "team_stats": {"weight": 0.3, "fields": ["offensive_rating", "pace", "tov"], "lookback_games": 5},
            "player_stats": {"weight": 0.2, "fields": ["pts", "reb"], "min_minutes": 15, "lookback_games": 5},
            "odds_movement": {"weight": 0.2, "time_window_hours": 24, "dynamic_weighting": False},
            "historical_performance": {"weight": 0.3, "lookback_days": 20},
            "edge": {
                "weight": 0.4,
                "dataset_id": "ds",
                "field": "x",
                "transformation": "threshold",
                "threshold": 0,
            },
        },
        {
            "odds_movement": {"weight": 1, "time_window_hours": 48},
            "historical_performance": {"weight": 0.5, "lookback_days": 10, "dynamic_weighting": False},
        },
        {"team_stats": {"weight": 1, "fields": ["pts", "defensive_rating"], "lookback_games": 10}},
    ]
    batch = ModelBatch.from_configs(
        [
            parse_model_config(
                {
                    "model_id": f"m{i}_{market}",
                    "name": "x",
                    "creator_user_id": "u",
                    "sport": SPORT,
                    "market": market,
                    "data_sources": config,
                    "dynamic_weighting": i != 2 or market == "totals",
                    "min_confidence": 0.52,
                }
            )
            for i, config in enumerate(sources)
            for market in ("spreads", "h2h", "totals")
        ]
    )
    span = tables.games.filter(pl.col("game_date").is_between(start, end))
    custom = pl.DataFrame(
        {
            "model_id": [
                f"m0_{market}" for market in ("spreads", "h2h", "totals") for _ in range(span.height)
            ],
            "version": 1,
            "source_name": "edge",
            "game_id": span["game_id"].to_list() * 3,
            "score": [((i * 37) % 100) / 100 if i % 13 else None for i in range(3 * span.height)],
        }
    )
    result = run_backtest(batch, tables, start, end, custom)
    days = span["game_date"].unique().sort().to_list()
    alone = day_by_day(batch, tables, days, custom)
    expected = alone.explained()
    assert result.analyses is not None and result.explanations is not None and len(days) > 64
    assert expected["weights"].list.eval(pl.element() != pl.element().first()).list.any().sum() > 1000
    one_pass = result.explanations.explained().sort(ANALYSIS_KEY)
    assert_frame_equal(one_pass, expected.sort(ANALYSIS_KEY), check_exact=True)
    for table in ("source_scores", "weights"):  # what is stored, row for row
        key = SOURCE_SCORE_KEY if table == "source_scores" else WEIGHTS_KEY
        got, want = getattr(result.explanations, table), getattr(alone, table)
        assert_frame_equal(got.sort(key), want.sort(key), check_exact=True)
    figures = performance(
        grade_analyses(alone.analyses, tables.games), ["model_id", "version"], KELLY_FRACTION
    )
    assert_frame_equal(result.summary.sort("model_id"), figures.sort("model_id"), rtol=1e-12, atol=1e-12)
    assert result.summary["kelly_units"].sum() > 0
