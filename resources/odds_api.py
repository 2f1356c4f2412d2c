"""The Odds API v4 as an :class:`OddsFeed`: HTTP, retries, quota, and which endpoint serves a window.

Parsing lives in ``domain.formats.odds_api_v4``; this module only talks HTTP. v4 takes the key as the
``apiKey`` query parameter, so the key is in every request URL: errors name the path only, and a
logging filter redacts it from httpx's request log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import logging
import re
import time
from typing import Any, ClassVar, cast

import httpx
import polars as pl
from pydantic import Field

from domain.formats.odds_api_v4 import (
    OddsFormat,
    parse_odds,
    parse_scores,
    unknown_teams,
    unwrap_historical,
)
from domain.sports import sport_info
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS, conform, empty
from resources.feeds import FeedRejectedError, FeedResult, OddsFeed

SOURCE = "the_odds_api_v4"
SCORES_DAYS_FROM = 3
"""``/scores?daysFrom=3``: the most days back the endpoint serves."""

_QUOTA_HEADERS = {
    "x-requests-remaining": "requests_remaining",
    "x-requests-used": "requests_used",
    "x-requests-last": "requests_last",
}
_KEY_IN_URL = re.compile(r"(apiKey=)[^&\s\"']+")

log = logging.getLogger(__name__)


class _RedactApiKey(logging.Filter):
    """Rewrite ``apiKey=...`` in a record's rendered message (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apiKey=" in message:
            record.msg, record.args = _KEY_IN_URL.sub(r"\1REDACTED", message), None
        return True


_REDACT = _RedactApiKey()
logging.getLogger("httpx").addFilter(_REDACT)  # idempotent: addFilter skips a filter already present


class OddsApiError(RuntimeError):
    """A v4 request failed for good; the message names the endpoint and status, never the key."""


class OddsApiRejectedError(OddsApiError, FeedRejectedError):
    """A 4xx other than 429 (a bad key, an unknown sport or market): no retry can succeed."""


class _Session:
    """One fetch's HTTP client with retry policy and counters (a resource itself is immutable)."""

    def __init__(self, feed: OddsApiFeed) -> None:
        self.feed = feed
        self.client = httpx.Client(base_url=feed.base_url, timeout=feed.timeout_seconds)
        self.requests = 0
        self.retries = 0
        self.quota: dict[str, int] = {}
        self.quota_spent = 0

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _redact(self, text: str) -> str:
        return _KEY_IN_URL.sub(r"\1REDACTED", text.replace(self.feed.api_key, "REDACTED"))

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        """Retry-After (seconds or an HTTP date) when the API sends one, else exponential backoff."""
        wait = self.feed.backoff_seconds * 2**attempt
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                with contextlib.suppress(TypeError, ValueError):
                    when = email.utils.parsedate_to_datetime(retry_after)
                    wait = (when - dt.datetime.now(dt.UTC)).total_seconds()
        return min(max(wait, 0.0), self.feed.max_backoff_seconds)

    def _record_quota(self, headers: httpx.Headers) -> None:
        for header, key in _QUOTA_HEADERS.items():
            if header in headers:
                self.quota[key] = int(float(headers[header]))
        self.quota_spent += int(float(headers.get("x-requests-last", 0)))

    def _api_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            message = body.get("message", response.text) if isinstance(body, dict) else response.text
        except ValueError:
            message = response.text
        return self._redact(str(message).strip()[:300])

    def get(self, path: str, params: dict[str, Any]) -> Any:
        """GET ``path`` as JSON; retry 429, 5xx and connection errors; fail at once on other 4xx."""
        query = {**params, "apiKey": self.feed.api_key}
        failure = ""
        for attempt in range(self.feed.max_retries + 1):
            if attempt:
                self.retries += 1
            self.requests += 1
            try:
                response = self.client.get(path, params=query)
            except httpx.TransportError as exc:
                failure, retry_after = f"{type(exc).__name__}: {self._redact(str(exc))}", None
            else:
                self._record_quota(response.headers)
                if response.is_success:
                    return response.json()
                status = response.status_code
                failure = f"HTTP {status}: {self._api_message(response)}"
                if status != 429 and status < 500:  # 401/403/404/422...: retrying cannot help
                    raise OddsApiRejectedError(f"GET {path} failed with {failure}")
                retry_after = response.headers.get("retry-after")
            if attempt < self.feed.max_retries:
                wait = self._wait(attempt, retry_after)
                log.warning("GET %s: %s; retry %d in %.2fs", path, failure, attempt + 1, wait)
                time.sleep(wait)
        raise OddsApiError(f"GET {path} failed after {self.feed.max_retries + 1} attempts; last: {failure}")


class OddsApiFeed(OddsFeed):
    """Odds snapshots and scores from The Odds API v4.

    A window's past days (before today's US Eastern date) come from the historical endpoint, one
    snapshot per day at each hour of ``historical_hours_utc`` (12:00 UTC = morning lines before any
    US game; add e.g. 23 for near-closing lines of evening games, at 10x quota per request); days
    from today on come from the live ``/odds``. ``/scores?daysFrom=3`` is read when the window
    reaches into the last three days. Games with team names outside the sport's ``aliases`` are dropped and
    listed in the metadata (``unknown_teams``).
    """

    SOURCE: ClassVar[str] = SOURCE

    api_key: str = Field(description='The Odds API key; supply as dg.EnvVar("ODDS_API_KEY").')
    base_url: str = "https://api.the-odds-api.com"
    regions: str = Field(default="us", description="v4 regions; ignored by the API when bookmakers is set.")
    markets: str = "h2h,spreads,totals"
    odds_format: str = Field(default="american", description="american or decimal (v4 oddsFormat).")
    bookmakers: str | None = Field(default=None, description="Comma-separated bookmaker keys.")
    max_retries: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 10.0
    historical_hours_utc: list[int] = Field(
        default=[12], description="UTC hours of the daily historical snapshots for past days."
    )

    def fetch_odds(self, sport: str, start: dt.date, end: dt.date) -> FeedResult:
        return self.fetch_window(sport, start, end, now=dt.datetime.now(dt.UTC))

    def fetch_window(self, sport: str, start: dt.date, end: dt.date, now: dt.datetime) -> FeedResult:
        """:meth:`fetch_odds` as of ``now`` (timezone-aware): the clock decides past and live days.

        Live snapshots are capped at ``now`` plus the time the request took (see
        ``domain.formats.odds_api_v4.parse_odds_records``).
        """
        info = sport_info(sport)  # an unknown sport fails before any quota is spent
        if self.odds_format not in ("american", "decimal"):
            raise ValueError(f"odds_format must be 'american' or 'decimal', not {self.odds_format!r}")
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if end <= start:
            raise ValueError(f"empty window [{start}, {end})")
        odds_format = cast(OddsFormat, self.odds_format)
        today = info.local_date(now)
        started = time.monotonic()
        odds_params = {"markets": self.markets, "oddsFormat": self.odds_format, "dateFormat": "iso"}
        odds_params |= {"bookmakers": self.bookmakers} if self.bookmakers else {"regions": self.regions}
        odds: list[pl.DataFrame] = []
        games: list[pl.DataFrame] = []
        unknown: set[str] = set()

        def add(events: list[dict[str, Any]], snapshot_time: dt.datetime) -> None:
            unknown.update(unknown_teams(events, sport))
            odds.append(parse_odds(events, sport, snapshot_time, SOURCE, odds_format, on_unknown_team="drop"))
            games.append(parse_scores(events, sport, SOURCE, on_unknown_team="drop"))

        with _Session(self) as session:
            if end > today - dt.timedelta(days=SCORES_DAYS_FROM):
                scores = session.get(f"/v4/sports/{sport}/scores", {"daysFrom": SCORES_DAYS_FROM})
                unknown.update(unknown_teams(scores, sport))
                games.append(parse_scores(scores, sport, SOURCE, on_unknown_team="drop"))
            for day in (start + dt.timedelta(days=n) for n in range((min(end, today) - start).days)):
                for hour in self.historical_hours_utc:
                    at = dt.datetime.combine(day, dt.time(hour), dt.UTC)
                    params = {**odds_params, "date": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
                    snapshot = unwrap_historical(session.get(f"/v4/historical/sports/{sport}/odds", params))
                    add(snapshot.data, snapshot.timestamp)
            if end > today:
                events = session.get(f"/v4/sports/{sport}/odds", odds_params)
                add(events, now + dt.timedelta(seconds=time.monotonic() - started))

        in_window = pl.col("game_date").is_between(start, end, closed="left")
        snapshots = pl.concat([empty(ODDS_SNAPSHOTS), *odds]).filter(in_window)
        results = pl.concat([empty(GAME_RESULTS), *games]).filter(in_window)
        return FeedResult(
            frames={
                "odds_snapshots": conform(
                    snapshots.unique(
                        ["game_id", "bookmaker", "market", "snapshot_time"], keep="first", maintain_order=True
                    ),
                    ODDS_SNAPSHOTS,
                ),
                # /scores rows come first, so a game's score beats the scheduled row from its odds.
                "game_results": conform(
                    results.unique("game_id", keep="first", maintain_order=True), GAME_RESULTS
                ),
            },
            metadata={
                **session.quota,
                "quota_spent": session.quota_spent,
                "requests_made": session.requests,
                "retries": session.retries,
                "unknown_teams": sorted(unknown),
            },
        )
