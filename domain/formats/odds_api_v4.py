"""The Odds API v4 response bodies -> lake frames (``domain.tables.schemas``).

Pure: the HTTP client (``resources/odds_api.py``) hands over decoded JSON and the request time.
Two levels:

- ``parse_odds_records`` / ``parse_score_records`` need no sport catalogue: rows are keyed by the raw
  v4 event id with team names as the API spells them, so any v4 sport parses (e.g. NHL, decimal).
- ``parse_odds`` / ``parse_historical_odds`` / ``parse_scores`` add canonical team codes, the local
  game date and ``game_id``, and conform to ``ODDS_SNAPSHOTS`` / ``GAME_RESULTS``. They refuse sports
  outside ``domain.sports`` because a game id needs the sport's prefix and team codes.

Each body is flattened to records in one comprehension (the JSON is nested, I/O-sized) and every
further step is a polars expression.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from domain.markets.odds import american_to_decimal_expr
from domain.sports import sport_info
from domain.sports.ids import game_id_expr
from domain.sports.teams import team_key
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS, UTC_TS, conform

MARKETS = ("h2h", "spreads", "totals")
"""Game markets the lake keeps; others in a body (``h2h_lay``, props, alternates) are ignored."""

OddsFormat = Literal["american", "decimal", "auto"]
UnknownTeams = Literal["raise", "drop"]

_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "sport_key": pl.String(),
    "commence_time": pl.String(),
    "home_team": pl.String(),
    "away_team": pl.String(),
}
_OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    **_EVENT_SCHEMA,
    "bookmaker": pl.String(),
    "book_update": pl.String(),
    "market": pl.String(),
    "market_update": pl.String(),
    "name": pl.String(),
    "price": pl.Float64(),
    "point": pl.Float64(),
}
_SCORE_SCHEMA: dict[str, pl.DataType] = {
    **_EVENT_SCHEMA,
    "completed": pl.Boolean(),
    "home_score": pl.String(),
    "away_score": pl.String(),
}


@dataclass(frozen=True)
class HistoricalSnapshot:
    """The historical endpoint's envelope: the snapshot actually served and its neighbours."""

    timestamp: dt.datetime
    previous_timestamp: dt.datetime | None
    next_timestamp: dt.datetime | None
    data: list[dict[str, Any]]


def unwrap_historical(body: dict[str, Any]) -> HistoricalSnapshot:
    """Split ``{"timestamp", "previous_timestamp", "next_timestamp", "data"}``.

    ``timestamp`` is the snapshot the API served (at or before the requested ``date``), so it, not
    the requested date, is the time the odds were known.
    """

    def when(key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(body[key]) if body.get(key) else None

    timestamp = when("timestamp")
    if timestamp is None:
        raise ValueError("historical body has no 'timestamp'; is it a historical endpoint response?")
    return HistoricalSnapshot(timestamp, when("previous_timestamp"), when("next_timestamp"), body["data"])


def _unknown(names: set[str], sport: str) -> list[str]:
    aliases = sport_info(sport).aliases
    return sorted(name for name in names if team_key(name) not in aliases)


def unknown_teams(events: list[dict[str, Any]], sport: str) -> list[str]:
    """Team names in ``events`` without a canonical code in the sport's ``aliases`` (historical names such
    as "Washington Football Team" have one); their events are refused or dropped."""
    return _unknown({e[side] for e in events for side in ("home_team", "away_team")}, sport)


def detect_odds_format(prices: pl.Series) -> Literal["american", "decimal"]:
    """American prices all have ``|x| >= 100``; a two-way decimal market always has a price below
    100 (both at 100+ would imply under 2% in total), so any ``|x| < 100`` means decimal."""
    return "decimal" if (prices.abs() < 100).any() else "american"


def _utc(col: str) -> pl.Expr:
    return pl.col(col).str.to_datetime(time_unit="us", time_zone="UTC")


def _decimal_prices(outcomes: pl.DataFrame, odds_format: OddsFormat) -> pl.Expr:
    """The ``price`` column as decimal odds, after checking the prices fit the declared format."""
    prices = outcomes["price"].drop_nulls()
    fmt = detect_odds_format(prices) if odds_format == "auto" else odds_format
    if fmt == "american" and (prices.abs() < 100).any():
        raise ValueError("odds_format='american' but some prices have |x| < 100; the body looks decimal")
    if fmt == "decimal" and (prices <= 1).any():
        raise ValueError("odds_format='decimal' but some prices are <= 1; the body looks American")
    return american_to_decimal_expr(pl.col("price")) if fmt == "american" else pl.col("price")


def parse_odds_records(
    events: list[dict[str, Any]], snapshot_time: dt.datetime, odds_format: OddsFormat = "auto"
) -> pl.DataFrame:
    """One row per event x bookmaker x market (:data:`MARKETS`), keyed by the raw v4 event id.

    ``line`` is the home team's spread point or the total's Over point (null for ``h2h``);
    ``price_first`` is home (``h2h``/``spreads``) or Over (``totals``); prices become decimal.
    ``snapshot_time`` of a row is the market's ``last_update``, else the bookmaker's, else the
    request's ``snapshot_time``, and never later than the request (a book stamp after the response
    time cannot have been known then). Markets missing a side are dropped: they cannot be priced.
    """
    if snapshot_time.tzinfo is None:
        raise ValueError("snapshot_time must be timezone-aware (UTC)")
    outcomes = pl.DataFrame(
        [
            (
                e["id"], e["sport_key"], e["commence_time"], e["home_team"], e["away_team"],
                b["key"], b.get("last_update"), m["key"], m.get("last_update"),
                o["name"], o["price"], o.get("point"),
            )
            for e in events
            for b in e.get("bookmakers") or []
            for m in b.get("markets") or []
            if m["key"] in MARKETS
            for o in m.get("outcomes") or []
        ],
        schema=_OUTCOME_SCHEMA,
        orient="row",
    )  # fmt: skip
    request_time = pl.lit(snapshot_time.astimezone(dt.UTC)).cast(UTC_TS)
    name, totals = pl.col("name"), pl.col("market") == "totals"
    first = pl.when(totals).then(name == "Over").otherwise(name == pl.col("home_team"))
    second = pl.when(totals).then(name == "Under").otherwise(name == pl.col("away_team"))
    keys = [*_EVENT_SCHEMA, "bookmaker", "market"]
    return (
        outcomes.with_columns(
            price=_decimal_prices(outcomes, odds_format),
            stamp=pl.coalesce(_utc("market_update"), _utc("book_update")),
        )
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("stamp").first(),
            pl.col("point").filter(first).first().alias("line"),
            pl.col("price").filter(first).first().alias("price_first"),
            pl.col("price").filter(second).first().alias("price_second"),
        )
        .filter(
            pl.col("price_first").is_not_null(),
            pl.col("price_second").is_not_null(),
            (pl.col("market") == "h2h") | pl.col("line").is_not_null(),
        )
        .select(
            "event_id",
            "sport_key",
            _utc("commence_time").alias("commence_time"),
            "home_team",
            "away_team",
            "bookmaker",
            "market",
            pl.min_horizontal(pl.col("stamp").fill_null(request_time), request_time).alias("snapshot_time"),
            "line",
            "price_first",
            "price_second",
        )
    )


def _score(event: dict[str, Any], team: str) -> str | None:
    """``team``'s score in a v4 event (sent as a string; null until the game starts)."""
    score = next((s["score"] for s in event.get("scores") or [] if s["name"] == team), None)
    return None if score is None else str(score)


def parse_score_records(events: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per event, keyed by the raw v4 event id: ``completed`` and integer scores.

    Works for ``/scores`` bodies and for any event list (``/events``, ``/odds``, historical ``data``):
    an event without ``completed`` is scheduled (``completed = False``, no scores).
    """
    records = pl.DataFrame(
        [
            (e["id"], e["sport_key"], e["commence_time"], e["home_team"], e["away_team"],
             bool(e.get("completed")), _score(e, e["home_team"]), _score(e, e["away_team"]))
            for e in events
        ],
        schema=_SCORE_SCHEMA,
        orient="row",
    )  # fmt: skip
    return records.with_columns(
        _utc("commence_time").alias("commence_time"),
        pl.col("home_score").cast(pl.Int32, strict=True),
        pl.col("away_score").cast(pl.Int32, strict=True),
    )


def _with_game_keys(records: pl.DataFrame, sport: str, on_unknown_team: UnknownTeams) -> pl.DataFrame:
    """Add ``sport``, ``game_date`` (the sport's local date of ``commence_time``), team codes and
    ``game_id`` to raw records."""
    info = sport_info(sport)
    others = sorted(set(records["sport_key"].unique().to_list()) - {sport})
    if others:
        raise ValueError(f"events of sport {others} in a body parsed as {sport!r}")
    unknown = _unknown(set(records["home_team"].to_list()) | set(records["away_team"].to_list()), sport)
    if unknown and on_unknown_team == "raise":
        raise ValueError(f"{sport}: team names without a canonical code: {unknown}")
    keyed = records.with_columns(
        pl.lit(sport).alias("sport"),
        pl.col("commence_time").dt.convert_time_zone(info.time_zone).dt.date().alias("game_date"),
        info.team_code_expr(pl.col("home_team")),
        info.team_code_expr(pl.col("away_team")),
    ).filter(pl.col("home_team").is_not_null(), pl.col("away_team").is_not_null())
    return keyed.with_columns(
        game_id_expr(sport, pl.col("game_date"), pl.col("away_team"), pl.col("home_team")).alias("game_id")
    )


def parse_odds(
    events: list[dict[str, Any]],
    sport: str,
    snapshot_time: dt.datetime,
    source: str,
    odds_format: OddsFormat = "auto",
    on_unknown_team: UnknownTeams = "raise",
) -> pl.DataFrame:
    """A ``/odds`` body (or a historical ``data`` list) as ``ODDS_SNAPSHOTS`` rows.

    See :func:`parse_odds_records` for line, price and snapshot-time conventions. Events whose team
    names have no code raise, or are dropped with ``on_unknown_team="drop"`` (see :func:`unknown_teams`).
    """
    records = parse_odds_records(events, snapshot_time, odds_format)
    return conform(
        _with_game_keys(records, sport, on_unknown_team).with_columns(
            pl.lit(False).alias("priced_by_assumption"), pl.lit(source).alias("source")
        ),
        ODDS_SNAPSHOTS,
    )


def parse_historical_odds(
    body: dict[str, Any],
    sport: str,
    source: str,
    odds_format: OddsFormat = "auto",
    on_unknown_team: UnknownTeams = "raise",
) -> pl.DataFrame:
    """A ``/v4/historical/sports/{sport}/odds`` body: :func:`parse_odds` at the served ``timestamp``."""
    snapshot = unwrap_historical(body)
    return parse_odds(snapshot.data, sport, snapshot.timestamp, source, odds_format, on_unknown_team)


def parse_scores(
    events: list[dict[str, Any]], sport: str, source: str, on_unknown_team: UnknownTeams = "raise"
) -> pl.DataFrame:
    """Events as ``GAME_RESULTS`` rows (``source_event_id`` = v4 event id).

    ``neutral`` stays null: v4 does not say whether a venue is neutral.
    """
    keyed = _with_game_keys(parse_score_records(events), sport, on_unknown_team)
    info = sport_info(sport)
    seasons = {day: info.season_of(day) for day in keyed["game_date"].unique().to_list()}
    return conform(
        keyed.with_columns(
            pl.col("game_date").replace_strict(seasons, return_dtype=pl.String).alias("season"),
            pl.col("event_id").alias("source_event_id"),
            pl.lit(source).alias("source"),
        ),
        GAME_RESULTS,
    )
