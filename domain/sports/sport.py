"""What the platform knows about one sport; each sport's module (``nba.py``, ``nfl.py``) defines one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl

from domain.sports.fields import FieldCatalogue
from domain.sports.teams import team_key_expr

LineMarket = Literal["spreads", "totals"]


def two_year_label(start_year: int) -> str:
    """A season spanning New Year, labelled by both years: ``2018-19``."""
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def start_year_label(start_year: int) -> str:
    """A season labelled by the year it starts: ``2018``."""
    return str(start_year)


@dataclass(frozen=True)
class IngestCadence:
    """When the sport's odds and results are fetched: ``weekdays`` in cron numbering (0 = Sunday), at
    ``hour`` UTC."""

    hour: int
    weekdays: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Sport:
    """One sport. ``eq=False``: each sport is one object in the registry and compares by identity
    (its field catalogue holds polars expressions, which do not compare with ``==``)."""

    key: str
    """The Odds API v4 sport key, used as the sport's name everywhere (``basketball_nba``)."""
    prefix: str
    """Short name: prefix of game ids (``domain.sports.ids``) and of schedule names."""
    title: str
    game_minutes: float
    """Regulation length of a game."""
    season_start: tuple[int, int]
    """(month, day) on or after which a new season's regular season or preseason can start."""
    season_end: tuple[int, int]
    """(month, day) on or before which the season's playoffs end, in the following calendar year."""
    season_label: Callable[[int], str]
    """Label of the season starting in a given year (:func:`two_year_label`, :func:`start_year_label`)."""
    time_zone: str
    """Zone whose calendar date is a game's date (the date in game ids, history files and feeds)."""
    local_start: dt.time
    """Assumed local start of a game whose history file gives only its date."""
    line_ranges: dict[LineMarket, tuple[float, float]]
    """Plausible home spreads and totals; history values outside are typos and are dropped."""
    ingest: IngestCadence
    teams: dict[str, str]
    """Canonical team code -> team name."""
    aliases: dict[str, str]
    """:func:`~domain.sports.teams.team_key` of every known spelling (codes, full names, historical
    names) -> code (:func:`~domain.sports.teams.team_aliases`)."""
    fields: FieldCatalogue
    """The statistics a model may name for this sport."""

    def season_of(self, day: dt.date) -> str:
        """Label of the season ``day`` belongs to (a day before ``season_start`` is last season's)."""
        start_year = day.year if (day.month, day.day) >= self.season_start else day.year - 1
        return self.season_label(start_year)

    def in_season(self, day: dt.date) -> bool:
        """Whether ``day`` lies between a season's start and its end (playoffs included)."""
        md = (day.month, day.day)
        return md >= self.season_start or md <= self.season_end

    def local_date(self, now: dt.datetime) -> dt.date:
        """The game date of an aware instant (today's game date when ``now`` is the clock's now)."""
        return now.astimezone(ZoneInfo(self.time_zone)).date()

    def team_code_expr(self, names: pl.Expr) -> pl.Expr:
        """Vectorised name -> canonical code; unknown names become null so the caller can report them."""
        return team_key_expr(names).replace_strict(self.aliases, default=None, return_dtype=pl.String)
