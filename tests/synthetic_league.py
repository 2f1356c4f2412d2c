"""A synthetic league for engine tests: random, small, with the awkward cases a real one has."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from domain.models.engine import Tables
from domain.sports.ids import game_id
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform

SPORT = "basketball_nba"

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
