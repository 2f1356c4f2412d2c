"""The embedded sample league: a synthetic NBA season, the platform's data when nothing else is set up.

Why synthetic: the demo, the tests and the benchmarks must run offline on data shaped like the real
feeds (The Odds API v4 bodies, box scores) and with a betting market that is good but beatable, so that
a model using real box-score signal shows an edge and a model using noise does not.

How the season is made (numpy throughout; only the schedule and the market's slow errors step through
the ~170 calendar days, never through single games):

- **Teams**: latent offence and defence (points per 100 possessions against the league average) and
  pace, each a random walk over the season; home advantage :data:`HOME_EDGE` points; the second night
  of a back-to-back costs :data:`BACK_TO_BACK_COST`.
- **Schedule**: :data:`GAMES_PER_TEAM` games per team, 2-15 games a day (more mid-week and on
  Fridays), nobody twice a day, three games in three nights avoided, no games on Thanksgiving, Christmas
  Eve and the All-Star break (Friday to Wednesday around the Sunday before Presidents' Day). Home and
  away games balance, and pairings prefer teams that have met least.
- **Games**: possessions from both paces; points = possessions x efficiency + noise (a shared part
  moves the total, a per-team part the margin); ties go to five-minute overtimes.
- **Box scores**: team lines satisfy ``PTS = 2*FGM + FG3M + FTM`` and the possession formula
  ``FGA - OREB + TOV + 0.44*FTA``; ten players per team with stable roles split minutes, makes,
  misses, rebounds, assists and the rest multinomially, so every player sum equals the team line.
- **Market**: the market reads each team's strength with a slowly drifting error (AR(1)) and shrinks
  that reading towards the mean by its reliability, so its view is calibrated (favourites are not
  systematically overrated) and only independent information, such as a season of box scores, beats
  it. Lines open 36-48 h before tip with extra noise and leaning towards the public side; they move to
  the closing line at -24 h, -6 h and -1 h (the closing snapshot), which leans slightly against the
  public. A move against the public (reverse line movement) therefore means the opening was wrong.
  Moneylines follow the spread through a normal margin model. Five books differ by half points and
  price; margins are 4-5% per market (``q = p + v * (1 - p)``, so longshots carry more of it).
- **Public betting**: ``public_first_pct`` is the share of bets (0..1, not percent) on the first side
  (home for ``h2h``/``spreads``, over for ``totals``): the public likes favourites, popular teams and
  overs, and its share settles as tip-off nears. It is the same for every bookmaker of a game.

Every random stream comes from one ``numpy.random.SeedSequence``, so one seed gives identical frames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

import numpy as np
import polars as pl

from domain.markets.odds import american_to_decimal_expr
from domain.sports.ids import game_id_expr
from domain.sports.nba import NBA
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, UTC_TS, conform

SPORT = NBA.key
SOURCE = "sample"
"""``source`` of every row, and the raw partition name of the sample feed."""
SEASON_START = dt.date(2025, 10, 21)
SEASON_END = dt.date(2026, 4, 12)
"""First and last game date of the default season (2025-26 regular season)."""

GAMES_PER_TEAM = 82
MIN_GAMES_A_DAY, MAX_GAMES_A_DAY = 2, 15
PAIRING_TRIES = 200
"""Random pairings of a day's hosts and visitors scored by repeat meetings; the best one is kept."""
LEAGUE_EFFICIENCY = 114.0
"""League-average points per 100 possessions."""
HOME_EDGE = 2.5
"""Home advantage in points per game."""
BACK_TO_BACK_COST = 1.5
"""Points per 100 possessions a team loses on the second night of a back-to-back."""
REGULATION_MINUTES, OVERTIME_MINUTES = int(NBA.game_minutes), 5

BOOKMAKERS: dict[str, str] = {
    "draftkings": "DraftKings",
    "fanduel": "FanDuel",
    "betmgm": "BetMGM",
    "williamhill_us": "Caesars",
    "pointsbetus": "PointsBet (US)",
}
"""The Odds API v4 bookmaker keys and titles (Caesars keeps its William Hill key in v4)."""
_BOOK_MARGIN = np.array([0.047, 0.045, 0.050, 0.048, 0.043])
MARKETS = ("h2h", "spreads", "totals")
SNAPSHOT_HOURS = (24.0, 6.0, 1.0)
"""Hours before tip-off of the snapshots after the opening one; the last is the closing snapshot."""
OPENING_HOURS = (36, 48)
"""The opening snapshot is taken this many hours before tip-off (uniform, on a 5-minute grid)."""
_MOVE_SHARE = np.array([0.0, 0.45, 0.8, 1.0])
"""Share of the opening-to-closing move made by each snapshot."""
_PUBLIC_SETTLING = np.array([1.0, 0.6, 0.3, 0.0])
"""Scale of the public share's early noise per snapshot (bets accumulate towards the final share)."""

_MARGIN_SD, _TOTAL_SD = 12.0, 17.0
"""Spread of a final margin and total around the market's expectation (prices lines and moneylines)."""
_MARKET_TEAM_ERROR_SD, _MARKET_ERROR_DAYS = 2.8, 25.0
"""Market's per-team rating error (points) and its AR(1) time scale (days)."""
_OPENING_NOISE_SD, _TOTAL_OPENING_NOISE_SD = 2.5, 3.0
"""Extra error of the opening line and total, which the moves to the closing snapshot take out."""
_OPENING_PUBLIC_SHADE, _CLOSING_PUBLIC_SHADE = 4.0, 1.5
"""Points per unit of public share above one half: openings lean towards the public side (it bets
into them and moves the line), closings lean slightly against it."""

_POSITIONS = np.array(["G", "G", "F", "F", "C", "G", "F", "C", "G", "F"])
_BASE_MINUTES = np.array([35, 33, 32, 30, 28, 22, 19, 16, 14, 11], dtype=float)
"""Ten roster slots: five starters and a bench, with the minutes their role earns (sum 240)."""
_ABSENCE_RATE, _MAX_ABSENT = 0.03, 2
"""Chance a player misses a game (no box-score row that day); at most two miss one game."""
_FOUL_OUT = 6

_EASTERN_SLOTS = np.array([19 * 60, 19 * 60, 19 * 60 + 30, 19 * 60 + 30, 20 * 60])
_CENTRAL_SLOTS = np.array([19 * 60 + 30, 20 * 60, 20 * 60, 20 * 60 + 30])
_MOUNTAIN_SLOTS = np.array([21 * 60, 21 * 60, 21 * 60 + 30, 22 * 60])
_PACIFIC_SLOTS = np.array([22 * 60, 22 * 60, 22 * 60 + 30])
_HOME_ZONE = {
    **dict.fromkeys(["CHI", "DAL", "HOU", "MEM", "MIL", "MIN", "NOP", "OKC", "SAS"], "central"),
    **dict.fromkeys(["DEN", "PHX", "UTA"], "mountain"),
    **dict.fromkeys(["GSW", "LAC", "LAL", "POR", "SAC"], "pacific"),
}
"""Tip-off times (minutes after midnight US Eastern) by the home team's time zone: 19:00-22:30 ET."""

_WEEKDAY_WEIGHT = np.array([1.0, 0.85, 1.3, 0.75, 1.2, 1.0, 0.9])
"""Relative number of games Monday..Sunday."""

# fmt: off
_FIRST_NAMES = [
    "Aaron", "Andre", "Anthony", "Bennett", "Brandon", "Caleb", "Cameron", "Darius", "DeAndre", "Devin",
    "Dillon", "Elijah", "Evan", "Gabe", "Isaiah", "Jalen", "Jamal", "Jaylen", "Jordan", "Julian", "Keegan",
    "Kevin", "Kyle", "Lamar", "Luka", "Malik", "Marcus", "Miles", "Nate", "Nikola", "Omar", "Quentin",
    "Reggie", "Santiago", "Tariq", "Terrence", "Theo", "Tyrese", "Victor", "Xavier", "Zion",
]
_LAST_NAMES = [
    "Adams", "Allen", "Baker", "Banks", "Barnes", "Bell", "Bridges", "Brooks", "Carter", "Coleman",
    "Collins", "Cooper", "Cruz", "Daniels", "Davis", "Dixon", "Ellis", "Evans", "Fields", "Fleming",
    "Ford", "Foster", "Grant", "Green", "Hayes", "Hill", "Holmes", "Howard", "Hughes", "Jackson", "James",
    "Jenkins", "Johnson", "Jones", "Kelly", "Knight", "Lewis", "Long", "Mitchell", "Morgan", "Murray",
    "Nelson", "Owens", "Parker", "Porter", "Reed", "Robinson", "Ross", "Sanders", "Simmons", "Stewart",
    "Sullivan", "Thomas", "Turner", "Walker", "Warren", "Watson", "Wells", "White", "Williams", "Young",
]
# fmt: on

_TEAMS = np.array(list(NBA.teams))
_N_TEAMS = len(_TEAMS)


@dataclass(frozen=True, eq=False)
class SampleSeason:
    """One generated season. Frames conform to ``domain.tables.schemas``; ``eq=False``: frames do not compare.

    ``odds_api_events`` is the same odds as The Odds API v4 ``/odds`` bodies (American prices), one
    ``(snapshot_time, events)`` per distinct snapshot time, listing the games priced at that time.
    ``parse_odds`` of a body gives that time's ``odds_snapshots`` rows (v4 has no public betting share).
    """

    seed: int
    game_results: pl.DataFrame
    team_box: pl.DataFrame
    player_box: pl.DataFrame
    odds_snapshots: pl.DataFrame
    odds_api_events: list[tuple[dt.datetime, list[dict[str, Any]]]]


def generate_season(
    seed: int = 7, season_start: dt.date = SEASON_START, season_end: dt.date = SEASON_END
) -> SampleSeason:
    """A full regular season of the sample league for game dates ``season_start..season_end``."""
    days = np.arange(np.datetime64(season_start), np.datetime64(season_end) + 1)
    if len(days) < 2 * GAMES_PER_TEAM:
        raise ValueError(f"{season_start}..{season_end} is too short for {GAMES_PER_TEAM} games a team")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_plan, rng_sched, rng_teams, rng_play, rng_box, rng_players, rng_market, rng_ids = streams

    plan = _games_per_day(rng_plan, days)
    day, home, away, home_tired, away_tired = _schedule(rng_sched, plan)
    teams = _team_latents(rng_teams, len(days))
    game = _play(rng_play, teams, day, home, away, home_tired, away_tired)
    keys = _game_keys(rng_ids, days, day, home, away)
    box = _team_box(rng_box, game, teams["style"], home, away)
    players = _player_box(rng_players, box, np.concatenate([home, away]))
    box["pf"] = players["pf"].sum(axis=1)
    market = _market(rng_market, teams, game, day, home, away)

    results = conform(
        keys.with_columns(
            pl.Series("home_score", game["points"][0], pl.Int32),
            pl.Series("away_score", game["points"][1], pl.Int32),
            completed=pl.lit(True),
            neutral=pl.lit(False),
            source=pl.lit(SOURCE),
            source_event_id=pl.col("event_id"),
        ),
        GAME_RESULTS,
    )
    odds = _odds_frame(keys, market)
    return SampleSeason(
        seed=seed,
        game_results=results.sort("commence_time", "game_id"),
        team_box=_team_box_frame(keys, box).sort(
            "game_date", "game_id", "is_home", descending=[False, False, True]
        ),
        player_box=_player_box_frame(keys, box, players),
        odds_snapshots=conform(odds, ODDS_SNAPSHOTS).sort("snapshot_time", "game_id", "bookmaker", "market"),
        odds_api_events=_odds_api_events(odds),
    )


# --- schedule ------------------------------------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (Monday = 0) of a month."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def dark_days(season_start: dt.date, season_end: dt.date) -> set[dt.date]:
    """Days without games: Thanksgiving, Christmas Eve and the All-Star break (Friday to Wednesday
    around All-Star Sunday, the day before Presidents' Day)."""
    out: set[dt.date] = set()
    for year in range(season_start.year, season_end.year + 1):
        all_star_sunday = _nth_weekday(year, 2, 0, 3) - dt.timedelta(days=1)
        out |= {_nth_weekday(year, 11, 3, 4), dt.date(year, 12, 24)}
        out |= {all_star_sunday + dt.timedelta(days=k) for k in range(-2, 4)}
    return {d for d in out if season_start <= d <= season_end}


def _games_per_day(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Planned games per calendar day: weekday-weighted, 2-15 on game days, summing to the season."""
    total = _N_TEAMS * GAMES_PER_TEAM // 2
    dark = np.isin(days, np.array(sorted(dark_days(days[0].item(), days[-1].item())), dtype="datetime64[D]"))
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    weight = np.where(dark, 0.0, _WEEKDAY_WEIGHT[weekday] * rng.gamma(12.0, 1 / 12.0, len(days)))
    plan = np.where(
        dark, 0, np.clip(np.floor(total * weight / weight.sum()), MIN_GAMES_A_DAY, MAX_GAMES_A_DAY)
    )
    plan = plan.astype(np.int64)
    while (gap := total - int(plan.sum())) != 0:  # a few rounds of +-1 game on random days with room
        room = ~dark & ((plan < MAX_GAMES_A_DAY) if gap > 0 else (plan > MIN_GAMES_A_DAY))
        candidates = np.flatnonzero(room)
        picked = rng.choice(candidates, size=min(abs(gap), len(candidates)), replace=False)
        plan[picked] += np.sign(gap)
    return plan


def _schedule(
    rng: np.random.Generator, plan: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Games as arrays (day index, home, away, home on a back-to-back, away on a back-to-back).

    Each day takes the teams furthest behind their pace (remaining games / remaining game days) with
    some randomness, avoiding back-to-backs where it can and three nights in a row unless a team must
    play every remaining game day to reach its total; the teams owed most home games host, and of
    :data:`PAIRING_TRIES` random pairings the one with the fewest repeat meetings is kept.
    """
    need = np.full(_N_TEAMS, GAMES_PER_TEAM)
    home_games = np.zeros(_N_TEAMS)
    meetings = np.zeros((_N_TEAMS, _N_TEAMS))
    last, before_last = np.full(_N_TEAMS, -9), np.full(_N_TEAMS, -9)
    game_days_left = np.cumsum((plan > 0)[::-1])[::-1]
    carry = 0
    games: list[tuple[np.ndarray, ...]] = []
    for d in np.flatnonzero(plan):
        must = need >= game_days_left[d]  # must play every remaining game day to reach the total
        wanted = max(plan[d] + np.clip(carry, -2, 2), MIN_GAMES_A_DAY, -(-int(must.sum()) // 2))
        tired = last == d - 1
        third_night = tired & (before_last == d - 2)
        n = min(wanted, MAX_GAMES_A_DAY, int(((need > 0) & (~third_night | must)).sum()) // 2)
        carry += plan[d] - n
        priority = (
            need / game_days_left[d]
            + rng.uniform(0, 0.3, _N_TEAMS)
            - 0.6 * tired
            - 1.0 * third_night
            + 10.0 * must
        )
        playing = np.argsort(-np.where(need > 0, priority, -np.inf), kind="stable")[: 2 * n]
        owed_home = (GAMES_PER_TEAM - need[playing]) - 2 * home_games[playing] + rng.uniform(0, 0.9, 2 * n)
        by_owed = playing[np.argsort(-owed_home, kind="stable")]
        hosts, visitors = by_owed[:n], by_owed[n:]
        pairings = rng.permuted(np.tile(np.arange(n), (PAIRING_TRIES, 1)), axis=1)
        visitors = visitors[pairings[np.argmin((meetings[hosts, visitors[pairings]] ** 2).sum(axis=1))]]
        games.append((np.full(n, d), hosts, visitors, last[hosts] == d - 1, last[visitors] == d - 1))
        need[playing] -= 1
        home_games[hosts] += 1
        meetings[hosts, visitors] += 1
        meetings[visitors, hosts] += 1
        before_last[playing], last[playing] = last[playing], d
    day, home, away, home_tired, away_tired = (np.concatenate(col) for col in zip(*games, strict=True))
    return day, home, away, home_tired, away_tired


# --- teams and games -----------------------------------------------------------------------------------


def _random_walk(rng: np.random.Generator, start: np.ndarray, step_sd: float, n_days: int) -> np.ndarray:
    """``(n_days, teams)``: ``start`` plus a Gaussian random walk."""
    return start + np.cumsum(rng.normal(0, step_sd, (n_days, len(start))), axis=0)


def _ar1(rng: np.random.Generator, sd: float, days: float, n_days: int, width: int) -> np.ndarray:
    """``(n_days, width)`` stationary AR(1) paths with standard deviation ``sd`` and time scale ``days``."""
    rho = np.exp(-1 / days)
    shocks = rng.normal(0, sd * np.sqrt(1 - rho**2), (n_days, width))
    out = np.empty((n_days, width))
    out[0] = rng.normal(0, sd, width)
    for t in range(1, n_days):
        out[t] = rho * out[t - 1] + shocks[t]
    return out


def _team_latents(rng: np.random.Generator, n_days: int) -> dict[str, Any]:
    """True strengths per day and team, stable playing styles, and the market's slowly drifting errors."""
    size = _N_TEAMS
    return {
        "offence": _random_walk(rng, rng.normal(0, 3.6, size), 0.16, n_days),
        "defence": _random_walk(rng, rng.normal(0, 3.6, size), 0.16, n_days),
        "pace": _random_walk(rng, rng.normal(99.5, 2.0, size), 0.05, n_days),
        "style": {
            "tov": rng.normal(13.5, 1.0, size),  # turnovers per 100 possessions
            "fta": rng.normal(22.5, 2.5, size),  # free-throw attempts per 100 possessions
            "oreb": rng.normal(10.8, 1.3, size),  # offensive rebounds per 100 possessions
            "three_share": rng.normal(0.42, 0.04, size),  # share of field-goal attempts from three
            "assist_rate": rng.normal(0.62, 0.04, size),  # share of field goals assisted
        },
        "market_error": _ar1(rng, _MARKET_TEAM_ERROR_SD, _MARKET_ERROR_DAYS, n_days, size),
        "market_total_error": _ar1(rng, 1.5, _MARKET_ERROR_DAYS, n_days, size),
        "popularity": rng.normal(0, 0.25, size),
    }


def _play(
    rng: np.random.Generator,
    teams: dict[str, Any],
    day: np.ndarray,
    home: np.ndarray,
    away: np.ndarray,
    home_tired: np.ndarray,
    away_tired: np.ndarray,
) -> dict[str, np.ndarray]:
    """Final scores. Rows of the ``(2, games)`` arrays are home and away."""
    n = len(day)
    pace = (teams["pace"][day, home] + teams["pace"][day, away]) / 2
    edge = 100 * HOME_EDGE / 2 / pace
    efficiency = np.stack(
        [
            LEAGUE_EFFICIENCY + teams["offence"][day, home] - teams["defence"][day, away] + edge
            - BACK_TO_BACK_COST * home_tired,
            LEAGUE_EFFICIENCY + teams["offence"][day, away] - teams["defence"][day, home] - edge
            - BACK_TO_BACK_COST * away_tired,
        ]
    )  # fmt: skip
    possessions = pace + rng.normal(0, 3.0, n)
    shooting = efficiency + rng.normal(0, 5.5, n) + rng.normal(0, 8.5, (2, n))
    points = np.round(possessions * shooting / 100)
    overtimes = np.zeros(n, dtype=np.int64)
    while (tied := points[0] == points[1]).any():
        extra = possessions[tied] * OVERTIME_MINUTES / REGULATION_MINUTES
        overtimes[tied] += 1
        points[:, tied] += np.round(
            extra * (efficiency[:, tied] + rng.normal(0, 26.0, (2, tied.sum()))) / 100
        )
    total_possessions = possessions * (1 + overtimes * OVERTIME_MINUTES / REGULATION_MINUTES)
    return {
        "points": points.astype(np.int64),
        "possessions": total_possessions + rng.normal(0, 0.8, (2, n)),
        "overtimes": overtimes,
        "expected_margin": pace * (efficiency[0] - efficiency[1]) / 100,
        "expected_total": pace * efficiency.sum(axis=0) / 100,
    }


def _game_keys(
    rng: np.random.Generator, days: np.ndarray, day: np.ndarray, home: np.ndarray, away: np.ndarray
) -> pl.DataFrame:
    """Per game: ids, teams, local date, tip-off in UTC (19:00-22:30 US Eastern) and a v4 event id."""
    n = len(day)
    zone = np.array([_HOME_ZONE.get(t, "eastern") for t in _TEAMS])[home]
    slots = {"eastern": _EASTERN_SLOTS, "central": _CENTRAL_SLOTS, "mountain": _MOUNTAIN_SLOTS,
             "pacific": _PACIFIC_SLOTS}  # fmt: skip
    draw = rng.random(n)
    tip = np.zeros(n, dtype=np.int64)
    for name, choices in slots.items():
        tip = np.where(zone == name, choices[(draw * len(choices)).astype(np.int64)], tip)
    event_ids = np.frombuffer(rng.bytes(16 * n).hex().encode(), dtype="S32").astype(str)
    local = (days[day].astype("datetime64[m]") + tip.astype("timedelta64[m]")).astype("datetime64[us]")
    frame = pl.DataFrame(
        {
            "sport": SPORT,
            "game_date": days[day],
            "local_tip": local,
            "home_team": _TEAMS[home],
            "away_team": _TEAMS[away],
            "event_id": event_ids,
        }
    )
    seasons = {d: NBA.season_of(d) for d in frame["game_date"].unique().to_list()}
    return frame.select(
        game_id_expr(SPORT, pl.col("game_date"), pl.col("away_team"), pl.col("home_team")).alias("game_id"),
        "sport",
        pl.col("game_date").replace_strict(seasons, return_dtype=pl.String).alias("season"),
        "game_date",
        pl.col("local_tip")
        .dt.replace_time_zone(NBA.time_zone)
        .dt.convert_time_zone("UTC")
        .cast(UTC_TS)
        .alias("commence_time"),
        "home_team",
        "away_team",
        "event_id",
    )


# --- box scores ----------------------------------------------------------------------------------------


def _team_box(
    rng: np.random.Generator,
    game: dict[str, np.ndarray],
    style: dict[str, np.ndarray],
    home: np.ndarray,
    away: np.ndarray,
) -> dict[str, np.ndarray]:
    """Team lines for ``2 * games`` rows (home rows first), exact to the points scored.

    Turnovers, free throws and offensive rebounds come from the team's style and its possessions;
    field-goal attempts then follow from the possession formula. Threes made rise with the points
    that field goals must supply, and the rest are twos (parity fixed by one three more or less).
    """
    team = np.concatenate([home, away])
    points = game["points"].reshape(-1)
    poss = game["possessions"].reshape(-1)
    n = len(points)
    opp = np.concatenate([np.arange(n // 2, n), np.arange(n // 2)])
    tov = rng.poisson(style["tov"][team] * poss / 100)
    fta = rng.poisson(style["fta"][team] * poss / 100)
    ftm = np.minimum(rng.binomial(fta, 0.78), points)
    oreb = rng.poisson(style["oreb"][team] * poss / 100)
    fga_target = np.maximum(np.round(poss + oreb - tov - 0.44 * fta), 40).astype(np.int64)
    fg3a = np.maximum(rng.binomial(fga_target, np.clip(style["three_share"][team], 0.2, 0.6)), 2)
    field_points = points - ftm
    three_points_share = 0.414 * style["three_share"][team] / 0.42
    fg3m = rng.binomial(fg3a, np.clip(field_points * three_points_share / 3 / fg3a, 0.05, 0.8))
    fg3m = np.minimum(fg3m, field_points // 3)
    fg3m += np.where((field_points - 3 * fg3m) % 2 == 1, np.where(fg3m > 0, -1, 1), 0)
    fg2m = (field_points - 3 * fg3m) // 2
    fg2a = np.maximum(fga_target - fg3a, fg2m)
    fgm, fga = fg2m + fg3m, fg2a + fg3a
    oreb = np.minimum(oreb, fga - fgm)
    dreb = rng.binomial((fga - fgm - oreb)[opp], 0.93)
    minutes = np.tile(5 * (REGULATION_MINUTES + OVERTIME_MINUTES * game["overtimes"]), 2)
    return {
        "minutes": minutes,
        "pts": points,
        "fg3m": fg3m,
        "fg3a": fg3a,
        "fg2m": fg2m,
        "fg2a": fg2a,
        "ftm": ftm,
        "fta": fta,
        "oreb": oreb,
        "dreb": dreb,
        "ast": rng.binomial(fgm, np.clip(style["assist_rate"][team], 0.4, 0.8)),
        "stl": rng.binomial(tov[opp], 0.55),
        "blk": rng.binomial((fg2a - fg2m)[opp], 0.2),
        "tov": tov,
        "foul_weight": 0.45 * fta[opp] + 9,
        "plus_minus": points - points[opp],
        "team": team,
        "opponent": team[opp],
    }


def _player_traits(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per team and roster slot: stable role factors for each statistic, and a name."""
    shape = (_N_TEAMS, len(_POSITIONS))

    def by_position(guard: float, forward: float, centre: float, spread: float) -> np.ndarray:
        base = np.select([_POSITIONS == "G", _POSITIONS == "F"], [guard, forward], centre)
        return base * rng.lognormal(0, spread, shape)

    usage = rng.lognormal(0, 0.3, shape) * np.linspace(1.25, 0.8, len(_POSITIONS))
    picks = rng.choice(len(_FIRST_NAMES) * len(_LAST_NAMES), size=_N_TEAMS * len(_POSITIONS), replace=False)
    first, last = (
        np.array(_FIRST_NAMES)[picks // len(_LAST_NAMES)],
        np.array(_LAST_NAMES)[picks % len(_LAST_NAMES)],
    )
    return {
        "minutes": _BASE_MINUTES * rng.lognormal(0, 0.1, shape),
        "fg3": usage * by_position(1.3, 1.0, 0.3, 0.25),
        "fg2": usage * by_position(0.8, 1.0, 1.4, 0.15),
        "ft": usage * rng.lognormal(0, 0.3, shape),
        "reb": by_position(0.55, 1.0, 1.8, 0.2),
        "ast": by_position(2.0, 0.8, 0.6, 0.25),
        "stl": by_position(1.2, 1.0, 0.7, 0.2),
        "blk": by_position(0.4, 1.0, 2.5, 0.3),
        "tov": usage * by_position(1.2, 0.9, 0.9, 0.2),
        "pf": by_position(0.8, 1.0, 1.3, 0.2),
        "name": np.char.add(np.char.add(first, " "), last).reshape(shape),
    }


def _split(rng: np.random.Generator, counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Multinomial split of each row's ``counts`` over players in proportion to ``weights``."""
    return rng.multinomial(counts, weights / weights.sum(axis=1, keepdims=True))


def _integer_minutes(total: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Whole minutes per player: shares capped at one fifth (nobody plays more than the game),
    rounded by largest remainder so each row sums to ``total`` exactly."""
    cap = 0.2
    for _ in range(3):  # move what capped players lose to the others; three passes settle it
        over = np.maximum(share - cap, 0).sum(axis=1, keepdims=True)
        share = np.minimum(share, cap)
        free = np.where(share < cap, share, 0)
        share = share + over * free / free.sum(axis=1, keepdims=True)
    exact = np.minimum(total[:, None] * share, total[:, None] / 5)
    whole = np.floor(exact)
    short = total - whole.sum(axis=1)
    rank = np.argsort(np.argsort(-(exact - whole), axis=1, kind="stable"), axis=1, kind="stable")
    return whole + (rank < short[:, None])


def _player_box(
    rng: np.random.Generator, box: dict[str, np.ndarray], team: np.ndarray
) -> dict[str, np.ndarray]:
    """``(team rows, 10)`` player lines whose sums equal the team lines; fouls are drawn per player
    and capped at six, so the team's fouls are the players' sum."""
    traits = _player_traits(rng)
    absent = rng.random((len(team), len(_POSITIONS))) < _ABSENCE_RATE
    playing = ~(absent & (np.cumsum(absent, axis=1) <= _MAX_ABSENT))
    weight = traits["minutes"][team] * playing
    minutes = _integer_minutes(box["minutes"], weight / weight.sum(axis=1, keepdims=True))
    on_court = minutes / box["minutes"][:, None]
    out = {"minutes": minutes}
    for stat, trait, count in [
        ("fg3m", "fg3", box["fg3m"]), ("fg3_miss", "fg3", box["fg3a"] - box["fg3m"]),
        ("fg2m", "fg2", box["fg2m"]), ("fg2_miss", "fg2", box["fg2a"] - box["fg2m"]),
        ("ftm", "ft", box["ftm"]), ("ft_miss", "ft", box["fta"] - box["ftm"]),
        ("oreb", "reb", box["oreb"]), ("dreb", "reb", box["dreb"]), ("ast", "ast", box["ast"]),
        ("stl", "stl", box["stl"]), ("blk", "blk", box["blk"]), ("tov", "tov", box["tov"]),
    ]:  # fmt: skip
        out[stat] = _split(rng, count, on_court * traits[trait][team])
    fouls = rng.poisson(box["foul_weight"])
    out["pf"] = np.minimum(_split(rng, fouls, on_court * traits["pf"][team]), _FOUL_OUT)
    out["plus_minus"] = np.round(box["plus_minus"][:, None] * 5 * on_court)
    out["name"] = traits["name"][team]
    return out


def _team_box_frame(keys: pl.DataFrame, box: dict[str, np.ndarray]) -> pl.DataFrame:
    n = keys.height
    rows = pl.concat([keys, keys]).select("game_id", "sport", "game_date")
    return conform(
        rows.with_columns(
            team=pl.Series(_TEAMS[box["team"]]),
            opponent=pl.Series(_TEAMS[box["opponent"]]),
            is_home=pl.Series(np.arange(2 * n) < n),
            source=pl.lit(SOURCE),
            **_shooting_columns(box),
        ),
        TEAM_BOX,
    )


def _shooting_columns(stats: dict[str, np.ndarray]) -> dict[str, Any]:
    """Box-score columns from makes and attempts by shot type (team rows or flattened player rows)."""
    fgm = stats["fg2m"] + stats["fg3m"]
    fg3a = stats["fg3a"] if "fg3a" in stats else stats["fg3m"] + stats["fg3_miss"]
    fg2a = stats["fg2a"] if "fg2a" in stats else stats["fg2m"] + stats["fg2_miss"]
    fta = stats["fta"] if "fta" in stats else stats["ftm"] + stats["ft_miss"]
    columns = {
        "minutes": stats["minutes"],
        "pts": 2 * fgm + stats["fg3m"] + stats["ftm"],
        "fgm": fgm,
        "fga": fg2a + fg3a,
        "fg3m": stats["fg3m"],
        "fg3a": fg3a,
        "ftm": stats["ftm"],
        "fta": fta,
        "oreb": stats["oreb"],
        "dreb": stats["dreb"],
        "reb": stats["oreb"] + stats["dreb"],
        "ast": stats["ast"],
        "stl": stats["stl"],
        "blk": stats["blk"],
        "tov": stats["tov"],
        "pf": stats["pf"],
        "plus_minus": stats["plus_minus"],
    }
    return {
        name: pl.Series(name, np.asarray(values, dtype=np.float64).reshape(-1))
        for name, values in columns.items()
    }


def _player_box_frame(
    keys: pl.DataFrame, box: dict[str, np.ndarray], players: dict[str, np.ndarray]
) -> pl.DataFrame:
    slots = len(_POSITIONS)
    team_rows = pl.concat([keys, keys]).select("game_id", "sport", "game_date")
    team = np.repeat(_TEAMS[box["team"]], slots)
    slot = np.tile(np.char.zfill((np.arange(slots) + 1).astype(str), 2), len(box["team"]))
    frame = team_rows.select(pl.all().repeat_by(slots).explode()).with_columns(
        team=pl.Series(team),
        opponent=pl.Series(np.repeat(_TEAMS[box["opponent"]], slots)),
        player_id=pl.Series(np.char.add(np.char.add(f"{SOURCE}_", team), np.char.add("_", slot))),
        player_name=pl.Series(players["name"].reshape(-1)),
        source=pl.lit(SOURCE),
        **_shooting_columns(players),
    )
    return conform(frame.filter(pl.col("minutes") > 0), PLAYER_BOX).sort(
        "game_date", "game_id", "team", "player_id"
    )


# --- market ----------------------------------------------------------------------------------------------


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz-Stegun 7.1.26, error < 1.5e-7): numpy has no erf."""
    z = np.abs(x) / np.sqrt(2)
    t = 1 / (1 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return 0.5 * (1 + np.sign(x) * (1 - poly * np.exp(-z * z)))


def _half_points(x: np.ndarray) -> np.ndarray:
    return np.round(x * 2) / 2 + 0.0  # + 0.0 turns -0.0 into 0.0


def _american(p_first: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer American prices of both sides for a fair probability of the first side and a book
    margin: implied probabilities ``p + v * (1 - p)`` sum to ``1 + v``."""
    p = np.clip(p_first, 0.005, 0.995)
    implied = np.stack([p + margin * (1 - p), (1 - p) + margin * p])
    price = np.where(implied >= 0.5, -100 * implied / (1 - implied), 100 * (1 - implied) / implied)
    first, second = np.round(price).astype(np.int64)
    return first, second


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _calibrated(truth: np.ndarray, error: np.ndarray) -> np.ndarray:
    """The market's view from a noisy reading ``truth + error``: shrunk towards the mean by the share of
    the reading's variance that is signal, so that the view is unbiased given itself (big favourites
    are not systematically overrated) and only independent information can beat it."""
    reading = truth + error
    signal_share = truth.var() / reading.var()
    return reading.mean() + signal_share * (reading - reading.mean())


def _market(
    rng: np.random.Generator,
    teams: dict[str, Any],
    game: dict[str, np.ndarray],
    day: np.ndarray,
    home: np.ndarray,
    away: np.ndarray,
) -> dict[str, Any]:
    """Lines, American prices and public shares as ``(games, snapshots, books)`` arrays per market."""
    n, k, b = len(day), len(_MOVE_SHARE), len(BOOKMAKERS)
    view_margin = _calibrated(
        game["expected_margin"],
        teams["market_error"][day, home] - teams["market_error"][day, away] + rng.normal(0, 1.0, n),
    )
    view_total = _calibrated(
        game["expected_total"],
        teams["market_total_error"][day, home]
        + teams["market_total_error"][day, away]
        + rng.normal(0, 2.0, n),
    )
    side_logit = (
        0.05 * view_margin + teams["popularity"][home] - teams["popularity"][away] + rng.normal(0, 0.35, n)
    )
    over_logit = 0.45 + 0.02 * (view_total - 228) + rng.normal(0, 0.3, n)
    public_side = _sigmoid(side_logit[:, None] + rng.normal(0, 0.4, (n, k)) * _PUBLIC_SETTLING)
    public_over = _sigmoid(over_logit[:, None] + rng.normal(0, 0.4, (n, k)) * _PUBLIC_SETTLING)

    def path(opening: np.ndarray, closing: np.ndarray) -> np.ndarray:
        """``(games, snapshots)`` consensus fair line moving from opening to closing, with jitter."""
        jitter = rng.normal(0, 0.25, (n, k)) * ((_MOVE_SHARE > 0) & (_MOVE_SHARE < 1))
        return opening[:, None] + (closing - opening)[:, None] * _MOVE_SHARE + jitter

    side_lean, over_lean = _sigmoid(side_logit) - 0.5, _sigmoid(over_logit) - 0.5
    home_line = path(
        -view_margin + rng.normal(0, _OPENING_NOISE_SD, n) + _OPENING_PUBLIC_SHADE * side_lean,
        -view_margin - _CLOSING_PUBLIC_SHADE * side_lean,
    )
    total_line = path(
        view_total + rng.normal(0, _TOTAL_OPENING_NOISE_SD, n) - _OPENING_PUBLIC_SHADE * over_lean,
        view_total + _CLOSING_PUBLIC_SHADE * over_lean,
    )
    book_fair = home_line[:, :, None] + rng.normal(0, 0.15, (n, k, b))
    book_total = total_line[:, :, None] + rng.normal(0, 0.15, (n, k, b))
    half = np.array([-0.5, 0.0, 0.5])
    spread = _half_points(book_fair + rng.choice(half, (n, 1, b), p=[0.15, 0.7, 0.15]))
    total = _half_points(book_total + rng.choice(half, (n, 1, b), p=[0.15, 0.7, 0.15]))
    margin = _BOOK_MARGIN + rng.uniform(-0.004, 0.004, (3, n, k, b))
    return {
        "h2h": (np.full((n, k, b), np.nan), *_american(_norm_cdf(-book_fair / _MARGIN_SD), margin[0])),
        "spreads": (spread, *_american(_norm_cdf((spread - book_fair) / _MARGIN_SD), margin[1])),
        "totals": (total, *_american(_norm_cdf((book_total - total) / _TOTAL_SD), margin[2])),
        "public": {"h2h": public_side, "spreads": public_side, "totals": public_over},
        "opening_hours": rng.integers(OPENING_HOURS[0] * 12, OPENING_HOURS[1] * 12 + 1, n) * 5 / 60,
    }


def _odds_frame(keys: pl.DataFrame, market: dict[str, Any]) -> pl.DataFrame:
    """Long odds rows (one per game, snapshot, book and market) with American prices kept alongside."""
    n, k, b = market["spreads"][0].shape
    hours_before = np.column_stack([market["opening_hours"], np.tile(SNAPSHOT_HOURS, (n, 1))])
    cells = pl.DataFrame(
        {
            "game": np.repeat(np.arange(n), k * b),
            "hours_before": np.repeat(hours_before.reshape(-1), b),
            "bookmaker": np.tile(np.array(list(BOOKMAKERS)), n * k),
        }
    )
    frames = []
    for name in MARKETS:
        line, first, second = market[name]
        frames.append(
            cells.with_columns(
                market=pl.lit(name),
                line=pl.Series(line.reshape(-1)).fill_nan(None),
                american_first=pl.Series(first.reshape(-1)),
                american_second=pl.Series(second.reshape(-1)),
                public_first_pct=pl.Series(np.repeat(market["public"][name].reshape(-1), b)),
            )
        )
    game_keys = keys.with_row_index("game").with_columns(pl.col("game").cast(pl.Int64))
    return (
        pl.concat(frames)
        .join(game_keys, on="game", how="left")
        .with_columns(
            snapshot_time=pl.col("commence_time")
            - pl.duration(minutes=(pl.col("hours_before") * 60).round()),
            price_first=american_to_decimal_expr(pl.col("american_first").cast(pl.Float64)),
            price_second=american_to_decimal_expr(pl.col("american_second").cast(pl.Float64)),
            priced_by_assumption=pl.lit(False),
            source=pl.lit(SOURCE),
        )
    )


def _outcomes(
    market: str, home: str, away: str, first: int, second: int, line: float
) -> list[dict[str, Any]]:
    """v4 outcomes of one market: away before home (``h2h`` has no point), Over before Under."""
    if market == "h2h":
        return [{"name": away, "price": second}, {"name": home, "price": first}]
    if market == "spreads":
        return [
            {"name": away, "price": second, "point": -line + 0.0},
            {"name": home, "price": first, "point": line},
        ]
    return [
        {"name": "Over", "price": first, "point": line},
        {"name": "Under", "price": second, "point": line},
    ]


def _odds_api_events(odds: pl.DataFrame) -> list[tuple[dt.datetime, list[dict[str, Any]]]]:
    """The odds as v4 ``/odds`` bodies, one per distinct snapshot time.

    Every event has every book and every book every market, so after one sort the nesting is
    slicing. The bodies are JSON-shaped Python objects, built in comprehensions as the v4 parser
    flattens them; ``last_update`` of a book and market is the snapshot time.
    """
    iso = "%Y-%m-%dT%H:%M:%SZ"
    rows = odds.sort(
        "snapshot_time", "commence_time", "game_id", "bookmaker",
        pl.col("market").replace_strict({m: i for i, m in enumerate(MARKETS)}, return_dtype=pl.Int8),
    ).select(
        "snapshot_time", "event_id", "bookmaker", "market", "american_first", "american_second", "line",
        pl.col("snapshot_time").dt.strftime(iso).alias("stamp"),
        pl.col("commence_time").dt.strftime(iso).alias("commence"),
        pl.col("home_team").replace_strict(NBA.teams).alias("home"),
        pl.col("away_team").replace_strict(NBA.teams).alias("away"),
    )  # fmt: skip
    per_book, per_event = len(MARKETS), len(MARKETS) * len(BOOKMAKERS)
    c = {
        name: rows[name].to_list()
        for name in ["market", "stamp", "american_first", "american_second", "line"]
    }
    event_rows = rows.gather_every(per_event)
    e = {
        name: event_rows[name].to_list() for name in ["snapshot_time", "event_id", "commence", "home", "away"]
    }
    names = [(home, away) for home, away in zip(e["home"], e["away"], strict=True) for _ in range(per_event)]
    markets = [
        {"key": m, "last_update": t, "outcomes": _outcomes(m, home, away, p1, p2, line)}
        for m, t, (home, away), p1, p2, line in zip(
            c["market"], c["stamp"], names, c["american_first"], c["american_second"], c["line"], strict=True
        )
    ]
    books = [
        {"key": key, "title": BOOKMAKERS[key], "last_update": t, "markets": markets[i : i + per_book]}
        for i, key, t in zip(
            range(0, len(markets), per_book),
            rows["bookmaker"].gather_every(per_book).to_list(),
            c["stamp"][::per_book],
            strict=True,
        )
    ]
    events = [
        (time, {
            "id": event_id, "sport_key": SPORT, "sport_title": NBA.title, "commence_time": commence,
            "home_team": home, "away_team": away,
            "bookmakers": books[j * len(BOOKMAKERS) : (j + 1) * len(BOOKMAKERS)],
        })
        for j, (time, event_id, commence, home, away) in enumerate(
            zip(e["snapshot_time"], e["event_id"], e["commence"], e["home"], e["away"], strict=True)
        )
    ]  # fmt: skip
    return [(time, [event for _, event in group]) for time, group in groupby(events, key=itemgetter(0))]
