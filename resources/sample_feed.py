"""The embedded sample league as odds and stats feed: the platform's data when nothing else is set up.

The default season (2025-26, ``domain.formats.sample_league``) lies entirely in the past, so every game it
serves is completed with its final score and box scores; there is no "today" cut-off to respect.
Dates outside the season give empty frames. The season is generated once per seed and process
(the generator is pure and takes about half a second), then sliced by game date.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import ClassVar

import polars as pl

from domain.formats import sample_league
from domain.tables.schemas import RAW_TABLES, empty
from resources.feeds import FeedResult, OddsFeed, StatsFeed

ODDS_TABLES = ("odds_snapshots",)
STATS_TABLES = ("game_results", "team_box", "player_box")
"""Results come from the stats side only, so the two feeds never write the same raw table."""


@lru_cache(maxsize=4)
def sample_season(seed: int) -> sample_league.SampleSeason:
    """The sample league's default season for ``seed``, generated once per process."""
    return sample_league.generate_season(seed)


class SampleLeagueFeed(OddsFeed, StatsFeed):
    """Odds snapshots, results and box scores of the sample league (``basketball_nba`` only)."""

    SOURCE: ClassVar[str] = sample_league.SOURCE
    seed: int = 7
    """Seed of the generated season; the same seed always serves the same data."""

    def fetch_odds(self, sport: str, start: dt.date, end: dt.date) -> FeedResult:
        return self._slice(sport, start, end, ODDS_TABLES)

    def fetch_stats(self, sport: str, start: dt.date, end: dt.date) -> FeedResult:
        return self._slice(sport, start, end, STATS_TABLES)

    def _slice(self, sport: str, start: dt.date, end: dt.date, tables: tuple[str, ...]) -> FeedResult:
        """``tables`` for game dates in ``[start, end)``; other sports get empty frames, not an error."""
        if sport != sample_league.SPORT:
            return FeedResult(
                frames={table: empty(RAW_TABLES[table]) for table in tables},
                metadata={"sample_league": f"covers {sample_league.SPORT} only; no {sport} data"},
            )
        season = sample_season(self.seed)
        in_range = pl.col("game_date").is_between(start, end, closed="left")
        frames = {table: getattr(season, table).filter(in_range) for table in tables}
        return FeedResult(
            frames=frames,
            metadata={
                "sample_league_seed": self.seed,
                **{f"sample_league {table} rows": df.height for table, df in frames.items()},
            },
        )
