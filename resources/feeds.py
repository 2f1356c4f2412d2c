"""The source interfaces behind the ingest assets.

An ``OddsFeed`` yields odds snapshots (and the game results it knows, e.g. from ``/scores``); a
``StatsFeed`` yields game results and team and player box scores. Each returns frames conformed to
``domain.tables.schemas`` for the games whose local game date lies in ``[start, end)``, plus metadata worth
showing on the asset (quota left, requests made).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dagster as dg
import polars as pl


@dataclass
class FeedResult:
    frames: dict[str, pl.DataFrame]
    """Keys are raw table names of ``domain.tables.schemas.RAW_TABLES``; values are conformed frames."""
    metadata: dict[str, Any] = field(default_factory=dict)


class FeedRejectedError(RuntimeError):
    """The source refused the request and would refuse it again (bad credentials, an unknown sport):
    the ingest step fails at once instead of retrying with backoff."""


class _Feed(dg.ConfigurableResource):
    SOURCE: ClassVar[str] = ""
    """Name of the source in raw partition keys (``raw/{table}/{sport}/{day}/{SOURCE}.parquet``)."""

    def source_name(self) -> str:
        return type(self).SOURCE


class OddsFeed(_Feed):
    """A source of odds snapshots. Subclasses implement :meth:`fetch_odds`."""

    def fetch_odds(self, sport: str, start: dt.date, end: dt.date) -> FeedResult:
        raise NotImplementedError


class StatsFeed(_Feed):
    """A source of results and box scores. Subclasses implement :meth:`fetch_stats`."""

    def fetch_stats(self, sport: str, start: dt.date, end: dt.date) -> FeedResult:
        raise NotImplementedError


class NoStatsFeed(StatsFeed):
    """For deployments whose box scores arrive only through history imports (the Odds API has none)."""

    SOURCE: ClassVar[str] = "none"

    def fetch_stats(self, sport: str, start: dt.date, end: dt.date) -> FeedResult:
        return FeedResult(frames={}, metadata={"stats_feed": "none configured"})
