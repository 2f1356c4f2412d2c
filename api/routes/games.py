"""Games and their lines, read from the current serving snapshot."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, Field

from api.auth import current_user
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.pagination import Page, Pagination, decode_cursor, invalid_cursor, page_of
from api.serving import Store
from api.types import IsoDate
from domain.sports import SPORTS

router = APIRouter(tags=["games"], dependencies=[Depends(current_user)], responses=ERROR_RESPONSES)

SportKey = StrEnum("SportKey", {key: key for key in SPORTS})
"""The sport keys of ``domain.sports`` (The Odds API v4 keys)."""

Market = Literal["h2h", "spreads", "totals"]


def _as_utc(value: dt.datetime) -> dt.datetime:
    # Snapshots store UTC; DuckDB hands back times in the session zone (or naive for TIMESTAMP).
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]


class Game(BaseModel):
    game_id: str = Field(description="Canonical id, e.g. `nba_20181016_PHI_BOS`.")
    sport: str
    season: str
    game_date: dt.date = Field(description="Local (US) date of the game.")
    commence_time: UtcDatetime
    home_team: str
    away_team: str
    home_score: int | None = Field(description="Null until the game is completed.")
    away_score: int | None
    completed: bool
    neutral: bool | None


class LinePoint(BaseModel):
    """One bookmaker's line at one time. Prices are decimal odds of the first and second side."""

    time: UtcDatetime | None
    line: float | None = Field(description="Home spread (`spreads`) or total (`totals`); null for `h2h`.")
    price_first: float | None = Field(description="Home (`h2h`, `spreads`) or over (`totals`).")
    price_second: float | None


class Line(BaseModel):
    bookmaker: str
    market: Market
    n_snapshots: int
    opening: LinePoint = Field(description="First snapshot seen.")
    closing: LinePoint = Field(description="Last snapshot before `commence_time`.")
    priced_by_assumption: bool | None = Field(description="Prices assumed at -110 (no price in the source).")


class GameLines(BaseModel):
    game: Game
    lines: list[Line] = Field(description="One entry per bookmaker and market.")


_GAME_COLUMNS = list(Game.model_fields)
_GAME_SELECT = ", ".join(f'"{c}"' for c in _GAME_COLUMNS)
_POINT_FIELDS = ["time", "line", "price_first", "price_second"]
_LINE_SELECT = ", ".join(
    ['"bookmaker"', '"market"', '"n_snapshots"', '"priced_by_assumption"']
    + [f'"{side}_{field}"' for side in ("opening", "closing") for field in _POINT_FIELDS]
)


def _game(row: tuple) -> Game:
    return Game(**dict(zip(_GAME_COLUMNS, row, strict=True)))


def _line(row: tuple) -> Line:
    bookmaker, market, n_snapshots, assumed = row[:4]
    opening = LinePoint(**dict(zip(_POINT_FIELDS, row[4:8], strict=True)))
    closing = LinePoint(**dict(zip(_POINT_FIELDS, row[8:12], strict=True)))
    return Line(
        bookmaker=bookmaker,
        market=market,
        n_snapshots=n_snapshots,
        opening=opening,
        closing=closing,
        priced_by_assumption=assumed,
    )


@router.get("/sports/{sport}/games", summary="Games of a sport on a date")
def list_games(
    sport: Annotated[SportKey, Path(description="Sport key, e.g. `basketball_nba`.")],
    date: Annotated[IsoDate, Query(description="Local (US) game date, `YYYY-MM-DD`.")],
    page: Pagination,
    store: Store,
) -> Page[Game]:
    """The sport's games on `date`, ordered by `commence_time` (then `game_id`), one page at a time."""
    sql = f"SELECT {_GAME_SELECT} FROM games WHERE sport = ? AND game_date = ?"
    params: list[object] = [sport.value, date]
    if page.cursor is not None:
        after_time, after_id = decode_cursor(page.cursor, arity=2)
        try:
            params += [dt.datetime.fromisoformat(after_time), after_id]
        except ValueError:
            raise invalid_cursor() from None
        sql += " AND (commence_time, game_id) > (?, ?)"
    sql += " ORDER BY commence_time, game_id LIMIT ?"
    params.append(page.limit + 1)
    with store.cursor() as cur:
        rows = cur.execute(sql, params).fetchall()
    games = [_game(row) for row in rows]
    return page_of(games, page.limit, key=lambda g: (g.commence_time.isoformat(), g.game_id))


@router.get(
    "/games/{game_id}/lines",
    summary="Opening and closing lines of a game",
    responses={404: {"model": ErrorBody, "description": "No game with this id."}},
)
def game_lines(
    game_id: Annotated[str, Path(max_length=64, description="Canonical game id.")],
    store: Store,
    market: Annotated[Market | None, Query(description="Only this market.")] = None,
) -> GameLines:
    """Every bookmaker's opening and closing line of the game, per market (ordered by market, bookmaker)."""
    sql = f"SELECT {_LINE_SELECT} FROM lines WHERE game_id = ?"
    params: list[object] = [game_id]
    if market is not None:
        sql += " AND market = ?"
        params.append(market)
    with store.cursor() as cur:
        game_row = cur.execute(f"SELECT {_GAME_SELECT} FROM games WHERE game_id = ?", [game_id]).fetchone()
        if game_row is None:
            raise ApiError(404, "not_found", f"no game with id {game_id!r}")
        line_rows = cur.execute(sql + " ORDER BY market, bookmaker", params).fetchall()
    return GameLines(game=_game(game_row), lines=[_line(row) for row in line_rows])
