"""The NBA: teams and their other spellings, seasons, line ranges, ingest cadence and field catalogue."""

from __future__ import annotations

import datetime as dt

from domain.sports.fields import (
    BOX_FIELDS,
    FieldCatalogue,
    FieldSpec,
    box_col,
    box_field,
    offensive_rating_expr,
    pace_expr,
    possessions_expr,
    ratio,
)
from domain.sports.sport import IngestCadence, Sport, two_year_label
from domain.sports.teams import team_aliases
from domain.tables.schemas import PLAYER_BOX, TEAM_BOX

GAME_MINUTES = 48.0
PLAYERS_ON_COURT = 5
"""Players per side at a time; team ``minutes`` (total player-minutes) / this = minutes played."""

TEAMS: dict[str, str] = {
    "ATL": "Atlanta Hawks",
    "BOS": "Boston Celtics",
    "BKN": "Brooklyn Nets",
    "CHA": "Charlotte Hornets",
    "CHI": "Chicago Bulls",
    "CLE": "Cleveland Cavaliers",
    "DAL": "Dallas Mavericks",
    "DEN": "Denver Nuggets",
    "DET": "Detroit Pistons",
    "GSW": "Golden State Warriors",
    "HOU": "Houston Rockets",
    "IND": "Indiana Pacers",
    "LAC": "Los Angeles Clippers",
    "LAL": "Los Angeles Lakers",
    "MEM": "Memphis Grizzlies",
    "MIA": "Miami Heat",
    "MIL": "Milwaukee Bucks",
    "MIN": "Minnesota Timberwolves",
    "NOP": "New Orleans Pelicans",
    "NYK": "New York Knicks",
    "OKC": "Oklahoma City Thunder",
    "ORL": "Orlando Magic",
    "PHI": "Philadelphia 76ers",
    "PHX": "Phoenix Suns",
    "POR": "Portland Trail Blazers",
    "SAC": "Sacramento Kings",
    "SAS": "San Antonio Spurs",
    "TOR": "Toronto Raptors",
    "UTA": "Utah Jazz",
    "WAS": "Washington Wizards",
}

OTHER_NAMES: dict[str, str] = {
    # Other tricodes and ESPN / Kaggle short codes.
    "GS": "GSW",
    "SA": "SAS",
    "NO": "NOP",
    "NY": "NYK",
    "UTAH": "UTA",
    "WSH": "WAS",
    "PHO": "PHX",
    "BRK": "BKN",
    "CHO": "CHA",
    # Franchise moves and renames map to the current franchise code.
    "NJN": "BKN",
    "NJ": "BKN",
    "NEWJERSEYNETS": "BKN",
    "NEWJERSEY": "BKN",
    "SEA": "OKC",
    "SEATTLESUPERSONICS": "OKC",
    "SEATTLE": "OKC",
    "NOH": "NOP",
    "NOK": "NOP",
    "NEWORLEANSHORNETS": "NOP",
    "NEWORLEANSOKLAHOMACITYHORNETS": "NOP",
    "CHH": "CHA",
    "CHARLOTTEBOBCATS": "CHA",
    "VAN": "MEM",
    "VANCOUVERGRIZZLIES": "MEM",
    "LACLIPPERS": "LAC",
    "LALAKERS": "LAL",
    # SportsbookReviewsOnline city names (spaces dropped); "LA" alone is ambiguous and not an alias.
    "ATLANTA": "ATL",
    "BOSTON": "BOS",
    "BROOKLYN": "BKN",
    "CHARLOTTE": "CHA",
    "CHICAGO": "CHI",
    "CLEVELAND": "CLE",
    "DALLAS": "DAL",
    "DENVER": "DEN",
    "DETROIT": "DET",
    "GOLDENSTATE": "GSW",
    "HOUSTON": "HOU",
    "INDIANA": "IND",
    "MEMPHIS": "MEM",
    "MIAMI": "MIA",
    "MILWAUKEE": "MIL",
    "MINNESOTA": "MIN",
    "NEWORLEANS": "NOP",
    "NEWYORK": "NYK",
    "OKLAHOMACITY": "OKC",
    "ORLANDO": "ORL",
    "PHILADELPHIA": "PHI",
    "PHOENIX": "PHX",
    "PORTLAND": "POR",
    "SACRAMENTO": "SAC",
    "SANANTONIO": "SAS",
    "TORONTO": "TOR",
    "WASHINGTON": "WAS",
}


TEAM_STATS = [c for c in TEAM_BOX if c in BOX_FIELDS and c != "minutes"]
"""Every stat column of TEAM_BOX except ``minutes``, which is constant for a team (240 + overtime)."""

PLAYER_STATS = [c for c in PLAYER_BOX if c in BOX_FIELDS]

DERIVED_FIELDS = [
    FieldSpec(
        "possessions",
        "Possessions: FGA - OREB + TOV + 0.44 * FTA (REB when OREB is absent)",
        False,
        1,
        possessions_expr(),
        unit="possessions per game",
    ),
    FieldSpec(
        "offensive_rating",
        "Points scored per 100 possessions",
        False,
        1,
        offensive_rating_expr(),
        unit="points per 100 possessions",
    ),
    FieldSpec(
        "defensive_rating",
        "Points allowed per 100 opponent possessions (the opponent's "
        "offensive rating); a high value leans to the over",
        True,
        1,
        offensive_rating_expr(opponent=True),
        unit="points per 100 possessions",
    ),
    FieldSpec(
        "pace",
        "Possessions per 48 minutes (overtime scaled back to 48)",
        False,
        1,
        pace_expr(GAME_MINUTES, PLAYERS_ON_COURT),
        unit="possessions per 48 minutes",
    ),
    FieldSpec(
        "net_rating",
        "Offensive minus defensive rating",
        False,
        0,
        offensive_rating_expr() - offensive_rating_expr(opponent=True),
        unit="points per 100 possessions",
    ),
    FieldSpec(
        "pts_allowed",
        "Points scored by the opponent",
        True,
        1,
        box_col("pts", opponent=True),
        unit="points per game",
    ),
    FieldSpec(
        "efg_pct",
        "Effective field-goal percentage: (FGM + 0.5 * FG3M) / FGA",
        False,
        1,
        ratio(box_col("fgm") + 0.5 * box_col("fg3m"), box_col("fga")),
        unit="fraction of 1",
    ),
    FieldSpec(
        "ts_pct",
        "True shooting percentage: PTS / (2 * (FGA + 0.44 * FTA))",
        False,
        1,
        ratio(box_col("pts"), 2 * (box_col("fga") + 0.44 * box_col("fta"))),
        unit="fraction of 1",
    ),
]

NBA = Sport(
    key="basketball_nba",
    prefix="nba",
    title="NBA",
    game_minutes=GAME_MINUTES,
    season_start=(10, 1),
    season_end=(6, 30),
    season_label=two_year_label,
    time_zone="America/New_York",
    local_start=dt.time(19, 0),
    line_ranges={"spreads": (-50.0, 50.0), "totals": (100.0, 400.0)},
    ingest=IngestCadence(hour=11, weekdays=(0, 1, 2, 3, 4, 5, 6)),
    teams=TEAMS,
    aliases=team_aliases(TEAMS, OTHER_NAMES),
    fields=FieldCatalogue(
        team={name: box_field(name) for name in TEAM_STATS} | {f.name: f for f in DERIVED_FIELDS},
        player={name: box_field(name) for name in PLAYER_STATS},
    ),
)
