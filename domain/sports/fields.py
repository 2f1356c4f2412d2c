"""Field catalogue types and the box-score formulas each sport's module defines its fields with.

A field is a statistic a model config may name (``"fields": ["offensive_rating", "PTS"]``): whether a
higher or a lower value is better for a team, which way it leans a game's total, and for a derived
field the expression computing it from box scores (SPEC section 4). The lookups and the computation
over a table are ``domain.models.catalogue``'s.

``total_orientation`` is about the *raw* value, before any ``lower_is_better`` negation: +1 when more
of it goes with more points in the game, -1 when it goes with fewer, 0 when it says nothing about the
total. A totals score uses ``sigmoid(orientation * (z_home + z_away))`` on raw z-scores, so for
example a high ``defensive_rating`` (bad defence, lower is better) still leans towards the over.
Fields with orientation 0 give a neutral 0.5 for totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

Orientation = Literal[-1, 0, 1]
FieldKind = Literal["team", "player"]

OPPONENT_PREFIX = "opp_"
"""Prefix of the opponent's box-score columns that ``derive_team_fields`` joins on each row."""


@dataclass(frozen=True, eq=False)
class FieldSpec:
    """One catalogue field. ``expr`` is None for a box-score column read as is.

    ``eq=False`` because polars expressions do not compare with ``==``; specs compare by identity.
    """

    name: str
    description: str
    lower_is_better: bool = False
    total_orientation: Orientation = 0
    expr: pl.Expr | None = None
    """For derived fields: an expression over one row of box-score columns plus the opponent's
    columns prefixed with :data:`OPPONENT_PREFIX`."""
    unit: str = field(kw_only=True)
    """What one value measures, as a source averages it per game (``"points per 100 possessions"``)."""


@dataclass(frozen=True, eq=False)
class FieldCatalogue:
    """A sport's team and player fields by canonical name. ``eq=False``: see :class:`FieldSpec`."""

    team: dict[str, FieldSpec]
    player: dict[str, FieldSpec]


# ---- box-score columns as fields ----------------------------------------------------------------

BOX_FIELDS: dict[str, tuple[str, bool, Orientation, str]] = {
    # name: (description, lower_is_better, total_orientation, unit)
    "minutes": (
        "Minutes played (team: total player-minutes, 240 in regulation)",
        False,
        0,
        "minutes per game",
    ),
    "pts": ("Points scored", False, 1, "points per game"),
    "fgm": ("Field goals made", False, 1, "field goals per game"),
    "fga": ("Field goals attempted; more shots means a faster game", False, 1, "attempts per game"),
    "fg3m": ("Three-pointers made", False, 1, "three-pointers per game"),
    "fg3a": ("Three-pointers attempted", False, 1, "attempts per game"),
    "ftm": ("Free throws made", False, 1, "free throws per game"),
    "fta": ("Free throws attempted", False, 1, "attempts per game"),
    "oreb": ("Offensive rebounds: second chances to score", False, 1, "rebounds per game"),
    "dreb": (
        "Defensive rebounds: ends opponent possessions, but follows their misses",
        False,
        0,
        "rebounds per game",
    ),
    "reb": ("Total rebounds", False, 0, "rebounds per game"),
    "ast": ("Assists, which come with made baskets", False, 1, "assists per game"),
    "stl": ("Steals: end opponent possessions, start fast breaks", False, 0, "steals per game"),
    "blk": ("Blocked shots: opponent misses at the rim", False, -1, "blocks per game"),
    "tov": ("Turnovers: possessions that end without a shot", True, -1, "turnovers per game"),
    "pf": ("Personal fouls: free throws for the opponent and a stopped clock", True, 1, "fouls per game"),
    "plus_minus": (
        "Point margin while on court (team: final margin); says nothing of the total",
        False,
        0,
        "points per game",
    ),
}
"""The statistic columns of the lake's box-score tables (``TEAM_BOX``, ``PLAYER_BOX``), read as is."""


def box_field(name: str) -> FieldSpec:
    """The field reading box-score column ``name`` as is."""
    description, lower, orientation, unit = BOX_FIELDS[name]
    return FieldSpec(name, description, lower, orientation, unit=unit)


# ---- expression builders (SPEC section 4) -------------------------------------------------------


def box_col(name: str, opponent: bool = False) -> pl.Expr:
    """Box-score column ``name`` of the team's row, or of its opponent's."""
    return pl.col(f"{OPPONENT_PREFIX}{name}" if opponent else name)


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """Null instead of inf/NaN when the denominator is not positive (a box score with no attempts),
    so one broken row cannot poison a rolling mean."""
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(None)


def possessions_expr(opponent: bool = False) -> pl.Expr:
    """FGA - OREB + TOV + 0.44 * FTA, with REB standing in where OREB is absent (some sources,
    e.g. stats.nba.com team game logs as exported here, have no offensive/defensive split)."""
    oreb = pl.coalesce(box_col("oreb", opponent), box_col("reb", opponent))
    return box_col("fga", opponent) - oreb + box_col("tov", opponent) + 0.44 * box_col("fta", opponent)


def offensive_rating_expr(opponent: bool = False) -> pl.Expr:
    """Points per 100 possessions."""
    return ratio(100 * box_col("pts", opponent), possessions_expr(opponent))


def minutes_played_expr(game_minutes: float, players_on_court: int) -> pl.Expr:
    """Minutes the game lasted: team player-minutes / players on court (240 / 5 = 48, 265 / 5 = 53
    after one overtime). Unknown minutes count as a regulation game, and so does anything shorter,
    because no completed game is (player-minute totals rounded down to 239 would otherwise inflate
    pace)."""
    played = pl.col("minutes") / players_on_court
    return pl.when(played > game_minutes).then(played).otherwise(pl.lit(game_minutes))


def pace_expr(game_minutes: float, players_on_court: int) -> pl.Expr:
    """The team's own possessions per regulation game length (48 minutes in the NBA)."""
    return possessions_expr() * game_minutes / minutes_played_expr(game_minutes, players_on_court)
