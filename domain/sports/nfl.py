"""The NFL: teams and their other spellings, seasons, line ranges, ingest cadence and field catalogue."""

from __future__ import annotations

import datetime as dt

from domain.sports.fields import FieldCatalogue, FieldSpec, box_col
from domain.sports.sport import IngestCadence, Sport, start_year_label
from domain.sports.teams import team_aliases

TEAMS: dict[str, str] = {
    "ARI": "Arizona Cardinals",
    "ATL": "Atlanta Falcons",
    "BAL": "Baltimore Ravens",
    "BUF": "Buffalo Bills",
    "CAR": "Carolina Panthers",
    "CHI": "Chicago Bears",
    "CIN": "Cincinnati Bengals",
    "CLE": "Cleveland Browns",
    "DAL": "Dallas Cowboys",
    "DEN": "Denver Broncos",
    "DET": "Detroit Lions",
    "GB": "Green Bay Packers",
    "HOU": "Houston Texans",
    "IND": "Indianapolis Colts",
    "JAX": "Jacksonville Jaguars",
    "KC": "Kansas City Chiefs",
    "LAC": "Los Angeles Chargers",
    "LAR": "Los Angeles Rams",
    "LV": "Las Vegas Raiders",
    "MIA": "Miami Dolphins",
    "MIN": "Minnesota Vikings",
    "NE": "New England Patriots",
    "NO": "New Orleans Saints",
    "NYG": "New York Giants",
    "NYJ": "New York Jets",
    "PHI": "Philadelphia Eagles",
    "PIT": "Pittsburgh Steelers",
    "SEA": "Seattle Seahawks",
    "SF": "San Francisco 49ers",
    "TB": "Tampa Bay Buccaneers",
    "TEN": "Tennessee Titans",
    "WAS": "Washington Commanders",
}

OTHER_NAMES: dict[str, str] = {
    # Other codes (NFL GSIS, Pro-Football-Reference, nflverse, spreadspoke, ESPN).
    "ARZ": "ARI",
    "JAC": "JAX",
    "LA": "LAR",
    "LVR": "LV",
    "WSH": "WAS",
    "GNB": "GB",
    "KAN": "KC",
    "NWE": "NE",
    "NOR": "NO",
    "SFO": "SF",
    "TAM": "TB",
    "CLV": "CLE",
    "BLT": "BAL",
    "HST": "HOU",
    # Franchise moves and renames map to the current franchise code.
    "OAK": "LV",
    "OAKLANDRAIDERS": "LV",
    "LOSANGELESRAIDERS": "LV",
    "SD": "LAC",
    "SDG": "LAC",
    "SANDIEGOCHARGERS": "LAC",
    "STL": "LAR",
    "STLOUISRAMS": "LAR",
    "WASHINGTONREDSKINS": "WAS",
    "WASHINGTONFOOTBALLTEAM": "WAS",
    "HOUSTONOILERS": "TEN",
    "TENNESSEEOILERS": "TEN",
    "BALTIMORECOLTS": "IND",
    "STLOUISCARDINALS": "ARI",
    "PHOENIXCARDINALS": "ARI",
    "BOSTONPATRIOTS": "NE",
}


TEAM_FIELDS = [
    FieldSpec("points_for", "Points scored", False, 1, box_col("pts"), unit="points per game"),
    FieldSpec(
        "points_against", "Points allowed", True, 1, box_col("pts", opponent=True), unit="points per game"
    ),
    FieldSpec(
        "margin",
        "Points scored minus points allowed",
        False,
        0,
        box_col("pts") - box_col("pts", opponent=True),
        unit="points per game",
    ),
]
"""NFL history has final scores only, so the team fields are score-based and there are no player
fields. Rows are TEAM_BOX-shaped frames with ``pts`` filled from the game results."""

NFL = Sport(
    key="americanfootball_nfl",
    prefix="nfl",
    title="NFL",
    game_minutes=60.0,
    season_start=(8, 1),
    season_end=(2, 20),
    season_label=start_year_label,
    time_zone="America/New_York",
    local_start=dt.time(13, 0),
    line_ranges={"spreads": (-50.0, 50.0), "totals": (10.0, 100.0)},
    # Games are on Thursday, Sunday and Monday (Saturday late in the season): Tuesday fetches the
    # weekend's and Monday's scores, Thursday that night's odds, Sunday Thursday's score and the
    # weekend's odds. 11:00 UTC is before any US kick-off.
    ingest=IngestCadence(hour=11, weekdays=(0, 2, 4)),
    teams=TEAMS,
    aliases=team_aliases(TEAMS, OTHER_NAMES),
    fields=FieldCatalogue(team={f.name: f for f in TEAM_FIELDS}, player={}),
)
