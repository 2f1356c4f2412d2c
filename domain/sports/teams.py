"""Canonical team codes per sport. Every source's team names map to these codes."""

from __future__ import annotations

import re

import polars as pl

NBA_TEAMS: dict[str, str] = {
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

NFL_TEAMS: dict[str, str] = {
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

TEAMS: dict[str, dict[str, str]] = {"basketball_nba": NBA_TEAMS, "americanfootball_nfl": NFL_TEAMS}


_NOT_KEY = r"[^A-Z0-9]"


def team_key(name: str) -> str:
    """Lookup key of a team name: upper case, letters and digits only ("L.A. Clippers" -> "LACLIPPERS")."""
    return re.sub(_NOT_KEY, "", name.upper())


_NBA_EXTRA: dict[str, str] = {
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

_NFL_EXTRA: dict[str, str] = {
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


def _aliases(teams: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    own = {team_key(code): code for code in teams} | {team_key(name): code for code, name in teams.items()}
    return own | extra


TEAM_ALIASES: dict[str, dict[str, str]] = {
    "basketball_nba": _aliases(NBA_TEAMS, _NBA_EXTRA),
    "americanfootball_nfl": _aliases(NFL_TEAMS, _NFL_EXTRA),
}
"""Per sport: :func:`team_key` of every known spelling (codes, full names, historical names) -> code."""


def team_code_expr(sport: str, names: pl.Expr) -> pl.Expr:
    """Vectorised name -> canonical code; unknown names become null so the caller can report them."""
    return (
        names.str.to_uppercase()
        .str.replace_all(_NOT_KEY, "")
        .replace_strict(TEAM_ALIASES[sport], default=None, return_dtype=pl.String)
    )
