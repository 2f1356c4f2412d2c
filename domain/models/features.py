"""Point-in-time features for the scoring engine, prepared once per set of tables.

The engine is handed whole tables that may hold data from after an analysis's cut-off. Everything
here is therefore indexed so that a question "as of day D" can only see rows dated before D:

- Each entity (a team or a player) has its games sorted by date, and each numeric field a per-entity
  running sum (and running count of non-null values). The mean of the last N games before D is one
  subtraction of two running sums, found by binary search on ``(entity, date)``. Running sums are
  per entity and sequential, so rows after D (or another entity's rows) never change a value before D
  by even one bit: a backtest equals the live run.
- Settled results carry, per team and market, whether the team covered / won / went over, with the
  same running sums for windows of days.

Nothing here knows about models; the source kinds (:mod:`domain.models.sources`) turn these features
into scores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import polars as pl

from domain.markets.grading import first_side_margin
from domain.models.catalogue import derive_team_fields, fields_of
from domain.tables.tidy import build_lines

_DATE_SHIFT = 1 << 31
_ENTITY_SHIFT = 1 << 32
EPOCH = dt.date(1970, 1, 1)
T = TypeVar("T")


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01, the integer date used in every index here."""
    return (day - EPOCH).days


@dataclass(frozen=True, eq=False)
class Tables:
    """The engine's inputs (``domain.tables.schemas`` frames), possibly holding data after any cut-off.

    Prepared indexes are memoised on the instance, so a backtest that scores hundreds of days builds
    them once. Treat the frames as immutable: the memo is not invalidated.
    """

    games: pl.DataFrame
    team_box: pl.DataFrame
    player_box: pl.DataFrame
    snapshots: pl.DataFrame
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)

    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """``build()`` once per key for the lifetime of these tables."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]


@dataclass(frozen=True, eq=False)
class EntityHistory:
    """One entity kind's (teams' or players') games, sorted by (entity, date, game), with running sums.

    Row ``i`` of entity ``e`` lies at ``start[e] <= i < start[e + 1]``. Running sums are stored padded
    with a leading zero per entity: the sum of the first ``j`` games of entity ``e`` is
    ``sums[f][start[e] + e + j]`` (one trailing zero keeps index 0 valid when there are no entities).
    """

    names: np.ndarray
    """Entity names (team codes or player ids), sorted; an entity's index is its position."""
    start: np.ndarray
    dates: np.ndarray
    keys: np.ndarray
    sums: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    rows: pl.DataFrame
    """The sorted rows themselves, with an ``entity`` index column."""

    @classmethod
    def build(cls, frame: pl.DataFrame, entity: str, fields: Sequence[str]) -> EntityHistory:
        """Index ``frame`` (with ``entity``, ``game_date`` and ``game_id`` columns) by ``entity``."""
        names = np.sort(frame[entity].drop_nulls().unique().to_numpy().astype(str))
        # With no names there are no rows; polars answers an empty mapping with the input column
        # (String, whatever return_dtype says), and the index arithmetic below needs integers.
        index = (
            pl.col(entity).replace_strict(names.tolist(), np.arange(len(names)), return_dtype=pl.Int64)
            if len(names)
            else pl.lit(None, dtype=pl.Int64)
        )
        rows = (
            frame.filter(pl.col(entity).is_not_null() & pl.col("game_date").is_not_null())
            .with_columns(
                index.alias("entity"),
                pl.col("game_date").cast(pl.Int64).alias("day"),
            )
            .sort(["entity", "game_date", "game_id"])
        )
        entities = rows["entity"].to_numpy()
        start = np.searchsorted(entities, np.arange(len(names) + 1)).astype(np.int64)
        dates = rows["day"].to_numpy().astype(np.int64)
        slot = np.arange(len(rows)) + entities + 1
        sums, counts = {}, {}
        running = rows.select(
            *[
                pl.col(f).cast(pl.Float64).fill_nan(None).fill_null(0.0).cum_sum().over("entity").alias(f)
                for f in fields
            ],
            *[
                pl.col(f)
                .cast(pl.Float64)
                .fill_nan(None)
                .is_not_null()
                .cast(pl.Int64)
                .cum_sum()
                .over("entity")
                .alias(f"{f}__n")
                for f in fields
            ],
        )
        for f in fields:
            sums[f] = np.zeros(len(rows) + len(names) + 1)
            sums[f][slot] = running[f].to_numpy()
            counts[f] = np.zeros(len(rows) + len(names) + 1, dtype=np.int64)
            counts[f][slot] = running[f"{f}__n"].to_numpy()
        return cls(names, start, dates, entities * _ENTITY_SHIFT + dates + _DATE_SHIFT, sums, counts, rows)

    def index_of(self, names: pl.Series) -> np.ndarray:
        """Entity index of each name; -1 for null and for names never seen (no games at all)."""
        if not len(self.names):
            return np.full(len(names), -1, dtype=np.int64)
        values = names.fill_null("").to_numpy().astype(str)
        pos = np.minimum(np.searchsorted(self.names, values), len(self.names) - 1)
        return np.where(self.names[pos] == values, pos, -1)

    def played_before(self, entities: np.ndarray, day: int | np.ndarray) -> np.ndarray:
        """How many games each entity played on dates strictly before ``day`` (0 for index -1);
        ``day`` may be an array broadcasting against ``entities``."""
        e = np.maximum(entities, 0)
        k = np.searchsorted(self.keys, e * _ENTITY_SHIFT + day + _DATE_SHIFT, side="left") - self.start[e]
        return np.where(entities >= 0, k, 0)

    def window(
        self, fld: str, entities: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of non-null ``fld`` values over each entity's games ``lo <= j < hi``."""
        base = self.start[np.maximum(entities, 0)] + np.maximum(entities, 0)
        s = self.sums[fld][base + hi] - self.sums[fld][base + lo]
        n = self.counts[fld][base + hi] - self.counts[fld][base + lo]
        return np.where(entities >= 0, s, 0.0), np.where(entities >= 0, n, 0)


def team_history(tables: Tables, sport: str) -> EntityHistory:
    """Team box scores plus the sport's derived fields (ratings, pace, ...), indexed by team."""

    def build() -> EntityHistory:
        box = tables.team_box.filter(pl.col("sport") == sport)
        fields = list(fields_of(sport, "team"))
        derived = derive_team_fields(box, sport)
        return EntityHistory.build(derived, "team", [f for f in fields if f in derived.columns])

    return tables.memo(("team_history", sport), build)


PLAYER_MINUTES = "minutes"


@dataclass(frozen=True, eq=False)
class PlayerHistory:
    """Player box scores indexed by player, each row knowing its team, plus each team's schedule as
    seen in the player box (to tell who is still in a team's rotation)."""

    players: EntityHistory
    row_team: np.ndarray
    """Team index (into ``schedule.names``) of each player row."""
    schedule: EntityHistory


def player_history(tables: Tables, sport: str) -> PlayerHistory:
    def build() -> PlayerHistory:
        box = tables.player_box.filter(pl.col("sport") == sport)
        fields = sorted({*fields_of(sport, "player"), PLAYER_MINUTES} & set(box.columns))
        players = EntityHistory.build(box, "player_id", fields)
        schedule = EntityHistory.build(
            box.filter(pl.col("team").is_not_null()).select("team", "game_id", "game_date").unique(),
            "team",
            [],
        )
        row_team = schedule.index_of(players.rows["team"])
        return PlayerHistory(players, row_team, schedule)

    return tables.memo(("player_history", sport), build)


RESULT_MARKETS = ("spreads", "h2h", "totals")


def consensus_closing_lines(tables: Tables, sport: str) -> pl.DataFrame:
    """Per game and market, the median over bookmakers of the closing line (SPEC section 2: the last
    snapshot before ``commence_time``). Historical performance grades past games against it, so one
    bookmaker's odd line does not decide whether a team covered."""

    def build() -> pl.DataFrame:
        games = tables.games.filter(pl.col("sport") == sport)
        snaps = tables.snapshots.filter(pl.col("sport") == sport)
        return (
            build_lines(snaps, games)
            .group_by("game_id", "market")
            .agg(pl.col("closing_line").median().alias("consensus_line"))
        )

    return tables.memo(("consensus_closing_lines", sport), build)


def results_history(tables: Tables, sport: str) -> EntityHistory:
    """Per team and settled game: for each market, whether the team hit (covered / won / went over)
    and whether the game counts (settled, not a push, a consensus line where the market has lines).

    Fields ``{market}_hit`` and ``{market}_game`` (1.0 / 0.0) for :data:`RESULT_MARKETS`.
    """

    def build() -> EntityHistory:
        settled = tables.games.filter(
            (pl.col("sport") == sport)
            & pl.col("completed").fill_null(False)
            & pl.col("home_score").is_not_null()
            & pl.col("away_score").is_not_null()
        )
        lines = consensus_closing_lines(tables, sport)
        for market in ("spreads", "totals"):
            settled = settled.join(
                lines.filter(pl.col("market") == market).select(
                    "game_id", pl.col("consensus_line").alias(market)
                ),
                on="game_id",
                how="left",
            )
        home, away = pl.col("home_score"), pl.col("away_score")
        # A team row stands for its side: home or away for spreads and h2h; the over for totals.
        per_side = []
        for is_home in (True, False):
            sign = 1.0 if is_home else -1.0
            per_side.append(
                settled.select(
                    "game_id",
                    "game_date",
                    pl.col("home_team" if is_home else "away_team").alias("team"),
                    *_hit_columns(
                        "spreads", sign * first_side_margin(pl.lit("spreads"), pl.col("spreads"), home, away)
                    ),
                    *_hit_columns("h2h", sign * first_side_margin(pl.lit("h2h"), pl.lit(None), home, away)),
                    *_hit_columns(
                        "totals", first_side_margin(pl.lit("totals"), pl.col("totals"), home, away)
                    ),
                )
            )
        rows = pl.concat(per_side)
        fields = [f"{m}_{k}" for m in RESULT_MARKETS for k in ("hit", "game")]
        return EntityHistory.build(rows, "team", fields)

    return tables.memo(("results_history", sport), build)


def _hit_columns(market: str, margin: pl.Expr) -> list[pl.Expr]:
    """A positive margin is a hit, a zero margin a push (neither), no margin (no line) not a game."""
    return [
        (margin > 0).cast(pl.Float64).fill_null(0.0).alias(f"{market}_hit"),
        (margin != 0).cast(pl.Float64).fill_null(0.0).alias(f"{market}_game"),
    ]
