"""The sport catalogue: keys, id prefixes, game length and season bounds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SportInfo:
    key: str
    prefix: str
    title: str
    game_minutes: float
    season_start: tuple[int, int]
    """(month, day) on or after which a new season's regular season or preseason can start."""
    season_end: tuple[int, int]
    """(month, day) on or before which the season's playoffs end, in the following calendar year."""

    def season_of(self, day: dt.date) -> str:
        """Season label: NBA ``2018-19``; NFL ``2018`` (the year it starts)."""
        start_year = day.year if (day.month, day.day) >= self.season_start else day.year - 1
        if self.key == "americanfootball_nfl":
            return str(start_year)
        return f"{start_year}-{(start_year + 1) % 100:02d}"

    def in_season(self, day: dt.date) -> bool:
        """Whether ``day`` lies between a season's start and its end (playoffs included)."""
        md = (day.month, day.day)
        return md >= self.season_start or md <= self.season_end


SPORTS: dict[str, SportInfo] = {
    "basketball_nba": SportInfo("basketball_nba", "nba", "NBA", 48.0, (10, 1), (6, 30)),
    "americanfootball_nfl": SportInfo("americanfootball_nfl", "nfl", "NFL", 60.0, (8, 1), (2, 20)),
}


def sport_info(sport: str) -> SportInfo:
    """Look up a sport key; unknown keys raise with the supported ones listed."""
    try:
        return SPORTS[sport]
    except KeyError:
        raise ValueError(f"unknown sport {sport!r}; supported: {', '.join(SPORTS)}") from None
