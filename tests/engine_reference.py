"""A scalar reference of the scoring engine, and a synthetic league to run both on.

The reference follows the seed's functions (``calculate_model_score``, ``evaluate_team_stats``,
``evaluate_odds_movement``, ...) as adapted by SPEC section 4, one model, one game and one bookmaker
at a time, with plain loops over fields, teams, players and past games. It is slow and obvious on
purpose: the vectorised engine in ``domain.models.engine`` must agree with it (tests/test_engine_property.py).
Shared decisions are imported rather than restated where they are constants (the flat-league
tolerance) or row-level formulas owned elsewhere (derived box-score fields, closing lines).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from domain.models.catalogue import derive_team_fields, fields_of
from domain.models.config import (
    CustomDataSource,
    HistoricalPerformanceSource,
    ModelConfig,
    OddsMovementSource,
    PlayerStatsSource,
    TeamStatsSource,
    effective_dynamic_weighting,
    enabled_sources,
)
from domain.models.engine import Tables
from domain.models.engine.sources import FLAT_STD
from domain.sports.ids import game_id
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform
from domain.tables.tidy import build_lines

SPORT = "basketball_nba"


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _number(value: Any) -> float | None:
    """A usable number, or None for null and NaN (the engine's "no value")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


@dataclass
class ReferenceData:
    """The tables as Python rows, grouped the way the seed's helper functions look things up."""

    games: dict[str, dict[str, Any]]
    team_rows: dict[str, list[dict[str, Any]]]
    player_rows: dict[str, list[dict[str, Any]]]
    snapshots: dict[tuple[str, str, str], list[dict[str, Any]]]
    closing: dict[tuple[str, str], list[float | None]]

    @classmethod
    def from_tables(cls, tables: Tables) -> ReferenceData:
        games = {g["game_id"]: g for g in tables.games.filter(pl.col("sport") == SPORT).to_dicts()}
        team_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in derive_team_fields(tables.team_box.filter(pl.col("sport") == SPORT), SPORT).to_dicts():
            team_rows[row["team"]].append(row)
        player_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in tables.player_box.filter(pl.col("sport") == SPORT).to_dicts():
            player_rows[row["player_id"]].append(row)
        for rows in (*team_rows.values(), *player_rows.values()):
            rows.sort(key=lambda r: (r["game_date"], r["game_id"]))
        snapshots: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for snap in tables.snapshots.to_dicts():
            snapshots[(snap["game_id"], snap["bookmaker"], snap["market"])].append(snap)
        for snaps in snapshots.values():
            snaps.sort(key=lambda s: s["snapshot_time"])
        closing: dict[tuple[str, str], list[float | None]] = defaultdict(list)
        for line in build_lines(tables.snapshots, tables.games).to_dicts():
            closing[(line["game_id"], line["market"])].append(line["closing_line"])
        return cls(games, dict(team_rows), dict(player_rows), dict(snapshots), dict(closing))


# ---- team_stats ----------------------------------------------------------------------------------


def get_team_stat(
    data: ReferenceData, team: str, field: str, lookback_games: int, day: dt.date
) -> float | None:
    """Mean of the field over the team's last ``lookback_games`` games before ``day``."""
    games = [r for r in data.team_rows.get(team, []) if r["game_date"] < day]
    values = [_number(r.get(field)) for r in games[-lookback_games:]]
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def league_z(values: dict[str, float | None], team: str) -> float | None:
    """z-score of one team's value against every team's value (population std)."""
    if values.get(team) is None:
        return None
    present = [v for v in values.values() if v is not None]
    mean = sum(present) / len(present)
    std = math.sqrt(sum((v - mean) ** 2 for v in present) / len(present))
    if not std > FLAT_STD * abs(mean):
        return 0.0
    return (values[team] - mean) / std


def field_score(
    kind: str, field: str, z_home: float | None, z_away: float | None, market: str
) -> float | None:
    if z_home is None or z_away is None:
        return None
    spec = fields_of(SPORT, kind)[field]  # type: ignore[arg-type]
    if market == "totals":
        return sigmoid(spec.total_orientation * (z_home + z_away))
    sign = -1.0 if spec.lower_is_better else 1.0
    return sigmoid(sign * z_home - sign * z_away)


def _mean_of_fields(scores: list[float | None]) -> float | None:
    present = [s for s in scores if s is not None]
    return sum(present) / len(present) if present else None


def evaluate_team_stats(
    source: TeamStatsSource, game: dict[str, Any], data: ReferenceData, market: str
) -> float | None:
    day = game["game_date"]
    scores = []
    for field in source.fields:
        values = {
            team: get_team_stat(data, team, field, source.lookback_games, day) for team in data.team_rows
        }
        z_home = league_z(values, game["home_team"])
        z_away = league_z(values, game["away_team"])
        scores.append(field_score("team", field, z_home, z_away, market))
    return _mean_of_fields(scores)


# ---- player_stats --------------------------------------------------------------------------------


def team_player_value(
    data: ReferenceData, team: str, source: PlayerStatsSource, field: str, day: dt.date
) -> float | None:
    """Sum of the per-game means of the team's rotation players who reach ``min_minutes``."""
    n = source.lookback_games
    team_dates = sorted(
        {
            (r["game_date"], r["game_id"])
            for rows in data.player_rows.values()
            for r in rows
            if r["team"] == team and r["game_date"] < day
        }
    )
    if not team_dates:
        return None
    window_start = team_dates[-n:][0][0]
    total, found = 0.0, False
    for player in sorted(data.player_rows):
        games = [r for r in data.player_rows[player] if r["game_date"] < day]
        if not games or games[-1]["team"] != team or games[-1]["game_date"] < window_start:
            continue
        recent = games[-n:]
        minutes = [m for m in (_number(r["minutes"]) for r in recent) if m is not None]
        if not minutes or sum(minutes) / len(minutes) < source.min_minutes:
            continue
        values = [v for v in (_number(r[field]) for r in recent) if v is not None]
        if values:
            total += sum(values) / len(values)
            found = True
    return total if found else None


def evaluate_player_stats(
    source: PlayerStatsSource, game: dict[str, Any], data: ReferenceData, market: str
) -> float | None:
    day = game["game_date"]
    teams = sorted({r["team"] for rows in data.player_rows.values() for r in rows if r["team"] is not None})
    scores = []
    for field in source.fields:
        values = {team: team_player_value(data, team, source, field, day) for team in teams}
        z_home = league_z(values, game["home_team"])
        z_away = league_z(values, game["away_team"])
        scores.append(field_score("player", field, z_home, z_away, market))
    return _mean_of_fields(scores)


# ---- odds_movement -------------------------------------------------------------------------------


def no_vig_home(snap: dict[str, Any]) -> float | None:
    if snap["price_first"] is None or snap["price_second"] is None:
        return None
    a, b = 1 / snap["price_first"], 1 / snap["price_second"]
    return a / (a + b)


def evaluate_odds_movement(
    source: OddsMovementSource, snapshots: list[dict[str, Any]], cutoff: dt.datetime, market: str
) -> float | None:
    """Seed ``evaluate_odds_movement`` made directional (SPEC section 4)."""
    history = [s for s in snapshots if s["snapshot_time"] <= cutoff]
    current = history[-1]
    window_start = cutoff - dt.timedelta(hours=source.time_window_hours)
    inside = [s for s in history if s["snapshot_time"] >= window_start]
    opening = inside[0] if inside else current
    if market == "h2h":
        now, then = no_vig_home(current), no_vig_home(opening)
        if now is None or then is None:
            return None
        move = 100 * now - 100 * then
        points = abs(move) * 3 / 10
        direction = _sign(move)
    else:
        if current["line"] is None or opening["line"] is None:
            return None
        move = current["line"] - opening["line"]
        points = abs(move)
        direction = -_sign(move) if market == "spreads" else _sign(move)
    movement = min(points / 3.0, 1.0)
    public = current["public_first_pct"]
    if public is not None and ((public > 0.5 and direction < 0) or (public < 0.5 and direction > 0)):
        movement = min(movement * 1.2, 1.0)
    return 0.5 + 0.5 * direction * movement


# ---- historical_performance ----------------------------------------------------------------------


def consensus_line(data: ReferenceData, game_id_: str, market: str) -> float | None:
    lines = [x for x in data.closing.get((game_id_, market), []) if x is not None]
    return statistics.median(lines) if lines else None


def team_rate(data: ReferenceData, team: str, market: str, day: dt.date, lookback_days: int) -> float:
    hits = games = 0
    for g in data.games.values():
        if not (day - dt.timedelta(days=lookback_days) <= g["game_date"] < day):
            continue
        if not g["completed"] or g["home_score"] is None or g["away_score"] is None:
            continue
        if team not in (g["home_team"], g["away_team"]):
            continue
        home, away = g["home_score"], g["away_score"]
        if market == "h2h":
            margin = home - away if team == g["home_team"] else away - home
        else:
            line = consensus_line(data, g["game_id"], market)
            if line is None:
                continue
            if market == "totals":
                margin = home + away - line
            else:
                margin = home + line - away if team == g["home_team"] else away - line - home
        if margin == 0:
            continue
        games += 1
        hits += margin > 0
    return (hits + 2) / (games + 4)


def evaluate_historical(
    source: HistoricalPerformanceSource, game: dict[str, Any], data: ReferenceData, market: str
) -> float:
    r_home = team_rate(data, game["home_team"], market, game["game_date"], source.lookback_days)
    r_away = team_rate(data, game["away_team"], market, game["game_date"], source.lookback_days)
    if market == "totals":
        return (r_home + r_away) / 2
    return 0.5 + (r_home - r_away) / 2


# ---- calculate_model_score -----------------------------------------------------------------------


def reference_analysis(
    config: ModelConfig,
    data: ReferenceData,
    game_id_: str,
    bookmaker: str,
    as_of: dt.datetime | None = None,
    multipliers: dict[str, float] | None = None,
    custom: dict[tuple[str, str], float | None] | None = None,
) -> dict[str, Any] | None:
    """The analysis of one model on one game and bookmaker, or None when there is none.

    ``multipliers``: source name -> dynamic multiplier; ``custom``: (source name, game id) -> score.
    """
    game = data.games[game_id_]
    cutoff = game["commence_time"] if as_of is None else min(as_of, game["commence_time"])
    snapshots = data.snapshots.get((game_id_, bookmaker, config.market), [])
    if not any(s["snapshot_time"] <= cutoff for s in snapshots):
        return None
    current = [s for s in snapshots if s["snapshot_time"] <= cutoff][-1]
    total_score = total_weight = 0.0
    for name, source in enabled_sources(config).items():
        if isinstance(source, TeamStatsSource):
            score = evaluate_team_stats(source, game, data, config.market)
        elif isinstance(source, PlayerStatsSource):
            score = evaluate_player_stats(source, game, data, config.market)
        elif isinstance(source, OddsMovementSource):
            score = evaluate_odds_movement(source, snapshots, cutoff, config.market)
        elif isinstance(source, HistoricalPerformanceSource):
            score = evaluate_historical(source, game, data, config.market)
        else:
            assert isinstance(source, CustomDataSource)
            score = (custom or {}).get((name, game_id_))
        if score is None:
            continue
        weight = source.weight
        if effective_dynamic_weighting(config, name):
            weight *= (multipliers or {}).get(name, 1.0)
        total_score += score * weight
        total_weight += weight
    if total_weight <= 0:
        return None
    p = total_score / total_weight
    raw = max(p, 1 - p)
    first = p >= 0.5
    return {
        "p": p,
        "pick": ("over" if first else "under")
        if config.market == "totals"
        else ("home" if first else "away"),
        "raw_confidence": raw,
        "confidence": max(config.min_confidence, min(raw, config.max_confidence)),
        "qualifies": raw >= config.min_confidence,
        "line": current["line"],
        "snapshot_time": current["snapshot_time"],
    }


# ---- a synthetic league --------------------------------------------------------------------------

LEAGUE_TEAMS = ["ATL", "BOS", "CHI", "DAL", "DEN", "LAL", "MIA", "NYK"]
BOOKMAKERS = ["book_a", "book_b", "book_c"]
MARKETS = ["spreads", "h2h", "totals"]
START = dt.date(2024, 1, 1)


def synthetic_league(seed: int, n_teams: int = 6, n_days: int = 12, idle_teams: int = 1) -> Tables:
    """A small random league: games on most days among all but ``idle_teams`` teams (who never
    play), box scores with some missing values, rotations with a mid-season trade, and odds snapshots
    for some bookmakers, some taken after tip-off (which no analysis may see)."""
    rng = np.random.default_rng(seed)
    teams = LEAGUE_TEAMS[:n_teams]
    playing = teams[: n_teams - idle_teams]
    games, team_box, player_box, snapshots = [], [], [], []
    roster = {t: [f"{t}_{i}" for i in range(4)] for t in playing}
    for d in range(n_days):
        day = START + dt.timedelta(days=d)
        order = list(rng.permutation(playing))
        if d == n_days // 2 and len(playing) >= 2:  # a trade
            a, b = playing[0], playing[1]
            roster[a][0], roster[b][0] = roster[b][0], roster[a][0]
        for k in range(0, len(order) - 1, 2):
            if rng.random() < 0.1:
                continue
            home, away = order[k], order[k + 1]
            gid = game_id(SPORT, day, away, home)
            commence = dt.datetime(day.year, day.month, day.day, 23, 30, tzinfo=dt.UTC) + dt.timedelta(
                minutes=int(rng.integers(0, 120))
            )
            home_score, away_score = int(rng.integers(95, 125)), int(rng.integers(95, 125))
            games.append(
                {
                    "game_id": gid,
                    "sport": SPORT,
                    "season": "2023-24",
                    "game_date": day,
                    "commence_time": commence,
                    "home_team": home,
                    "away_team": away,
                    "home_score": home_score,
                    "away_score": away_score,
                    "completed": True,
                    "source": "synthetic",
                }
            )
            for team, opponent, pts, is_home in (
                (home, away, home_score, True),
                (away, home, away_score, False),
            ):
                team_box.append(_box_row(rng, gid, day, team, opponent, pts) | {"is_home": is_home})
                for player in roster[team]:
                    if rng.random() < 0.15:
                        continue
                    row = _box_row(rng, gid, day, team, opponent, float(rng.integers(0, 35)))
                    row["minutes"] = None if rng.random() < 0.1 else float(rng.integers(0, 40))
                    player_box.append(row | {"player_id": player, "player_name": player})
            snapshots.extend(_snapshots(rng, gid, day, commence, home_score - away_score))
    return Tables(
        games=conform(pl.DataFrame(games), GAMES),
        team_box=conform(pl.DataFrame(team_box), TEAM_BOX),
        player_box=conform(pl.DataFrame(player_box), PLAYER_BOX),
        snapshots=conform(pl.DataFrame(snapshots), ODDS_SNAPSHOTS),
    )


def _box_row(rng: np.random.Generator, gid: str, day: dt.date, team: str, opponent: str, pts: float) -> dict:
    stats = {
        c: float(rng.integers(0, 40))
        for c in (
            "fgm",
            "fga",
            "fg3m",
            "fg3a",
            "ftm",
            "fta",
            "dreb",
            "reb",
            "ast",
            "stl",
            "blk",
            "tov",
            "pf",
            "plus_minus",
        )
    }
    stats["fga"] += 60.0
    stats["oreb"] = None if rng.random() < 0.2 else float(rng.integers(0, 15))
    stats["stl"] = None if rng.random() < 0.1 else stats["stl"]
    return {
        "game_id": gid,
        "sport": SPORT,
        "game_date": day,
        "team": team,
        "opponent": opponent,
        "minutes": 240.0,
        "pts": pts,
        **stats,
        "source": "synthetic",
    }


def _snapshots(
    rng: np.random.Generator, gid: str, day: dt.date, commence: dt.datetime, margin: int
) -> list[dict]:
    rows = []
    for bookmaker in BOOKMAKERS:
        if rng.random() < 0.25:
            continue
        for market in MARKETS:
            if rng.random() < 0.15:
                continue
            base = {"spreads": float(-margin // 2), "totals": 215.0, "h2h": None}[market]
            for _ in range(int(rng.integers(1, 5))):
                hours = float(rng.choice([-2.0, 0.0, 1.0, 3.0, 10.0, 30.0, 60.0]))
                line = None if base is None else base + 0.5 * int(rng.integers(-6, 7))
                public = None if rng.random() < 0.3 else float(rng.choice([0.3, 0.5, 0.62, 0.8]))
                rows.append(
                    {
                        "game_id": gid,
                        "sport": SPORT,
                        "game_date": day,
                        "bookmaker": bookmaker,
                        "market": market,
                        "snapshot_time": commence - dt.timedelta(hours=hours),
                        "line": line,
                        "price_first": float(rng.choice([1.8, 1.87, 1.91, 2.0, 2.2])),
                        "price_second": float(rng.choice([1.8, 1.91, 1.95, 2.1])),
                        "priced_by_assumption": False,
                        "public_first_pct": public,
                        "source": "synthetic",
                    }
                )
    unique = {(r["bookmaker"], r["market"], r["snapshot_time"]): r for r in rows}
    return list(unique.values())
