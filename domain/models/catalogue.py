"""The field catalogue: which statistics a model may name per sport, and how each one reads.

Model configs name fields (``"fields": ["offensive_rating", "PTS"]``); the catalogue says which names
exist for a sport, whether a higher or a lower value is better for a team, and which way the field
leans a game's total, and it computes the derived team fields from box scores (SPEC section 4).

``total_orientation`` is about the *raw* value, before any ``lower_is_better`` negation: +1 when more
of it goes with more points in the game, -1 when it goes with fewer, 0 when it says nothing about the
total. A totals score uses ``sigmoid(orientation * (z_home + z_away))`` on raw z-scores, so for
example a high ``defensive_rating`` (bad defence, lower is better) still leans towards the over.
Fields with orientation 0 give a neutral 0.5 for totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from domain.sports import sport_info
from domain.tables.schemas import PLAYER_BOX, TEAM_BOX

Orientation = Literal[-1, 0, 1]
FieldKind = Literal["team", "player"]

OPPONENT_PREFIX = "opp_"
"""Prefix of the opponent's box-score columns that :func:`derive_team_fields` joins on each row."""


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


@dataclass(frozen=True)
class SportCatalogue:
    sport: str
    team: dict[str, FieldSpec]
    player: dict[str, FieldSpec]
    players_on_court: int | None
    """Players per side at a time; team ``minutes`` (total player-minutes) / this = minutes played."""


# ---- expression builders (SPEC section 4) -------------------------------------------------------


def _col(name: str, opponent: bool) -> pl.Expr:
    return pl.col(f"{OPPONENT_PREFIX}{name}" if opponent else name)


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """Null instead of inf/NaN when the denominator is not positive (a box score with no attempts),
    so one broken row cannot poison a rolling mean."""
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(None)


def possessions_expr(opponent: bool = False) -> pl.Expr:
    """FGA - OREB + TOV + 0.44 * FTA, with REB standing in where OREB is absent (some sources,
    e.g. stats.nba.com team game logs as exported here, have no offensive/defensive split)."""
    oreb = pl.coalesce(_col("oreb", opponent), _col("reb", opponent))
    return _col("fga", opponent) - oreb + _col("tov", opponent) + 0.44 * _col("fta", opponent)


def offensive_rating_expr(opponent: bool = False) -> pl.Expr:
    """Points per 100 possessions."""
    return _ratio(100 * _col("pts", opponent), possessions_expr(opponent))


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


# ---- the catalogues -----------------------------------------------------------------------------

_BOX_FIELDS: dict[str, tuple[str, bool, Orientation]] = {
    # name: (description, lower_is_better, total_orientation)
    "minutes": ("Minutes played (team: total player-minutes, 240 in regulation)", False, 0),
    "pts": ("Points scored", False, 1),
    "fgm": ("Field goals made", False, 1),
    "fga": ("Field goals attempted; more shots means a faster game", False, 1),
    "fg3m": ("Three-pointers made", False, 1),
    "fg3a": ("Three-pointers attempted", False, 1),
    "ftm": ("Free throws made", False, 1),
    "fta": ("Free throws attempted", False, 1),
    "oreb": ("Offensive rebounds: second chances to score", False, 1),
    "dreb": ("Defensive rebounds: ends opponent possessions, but follows their misses", False, 0),
    "reb": ("Total rebounds", False, 0),
    "ast": ("Assists, which come with made baskets", False, 1),
    "stl": ("Steals: end opponent possessions, start fast breaks", False, 0),
    "blk": ("Blocked shots: opponent misses at the rim", False, -1),
    "tov": ("Turnovers: possessions that end without a shot", True, -1),
    "pf": ("Personal fouls: free throws for the opponent and a stopped clock", True, 1),
    "plus_minus": ("Point margin while on court (team: final margin); says nothing of the total", False, 0),
}

_NBA_TEAM_STATS = [c for c in TEAM_BOX if c in _BOX_FIELDS and c != "minutes"]
"""Every stat column of TEAM_BOX except ``minutes``, which is constant for a team (240 + overtime)."""

_NBA_PLAYER_STATS = [c for c in PLAYER_BOX if c in _BOX_FIELDS]


def _box_field(name: str) -> FieldSpec:
    description, lower, orientation = _BOX_FIELDS[name]
    return FieldSpec(name, description, lower, orientation)


def _nba() -> SportCatalogue:
    info = sport_info("basketball_nba")
    on_court = 5
    derived = [
        FieldSpec(
            "possessions",
            "Possessions: FGA - OREB + TOV + 0.44 * FTA (REB when OREB is absent)",
            False,
            1,
            possessions_expr(),
        ),
        FieldSpec("offensive_rating", "Points scored per 100 possessions", False, 1, offensive_rating_expr()),
        FieldSpec(
            "defensive_rating",
            "Points allowed per 100 opponent possessions (the opponent's "
            "offensive rating); a high value leans to the over",
            True,
            1,
            offensive_rating_expr(opponent=True),
        ),
        FieldSpec(
            "pace",
            "Possessions per 48 minutes (overtime scaled back to 48)",
            False,
            1,
            pace_expr(info.game_minutes, on_court),
        ),
        FieldSpec(
            "net_rating",
            "Offensive minus defensive rating",
            False,
            0,
            offensive_rating_expr() - offensive_rating_expr(opponent=True),
        ),
        FieldSpec("pts_allowed", "Points scored by the opponent", True, 1, _col("pts", opponent=True)),
        FieldSpec(
            "efg_pct",
            "Effective field-goal percentage: (FGM + 0.5 * FG3M) / FGA",
            False,
            1,
            _ratio(pl.col("fgm") + 0.5 * pl.col("fg3m"), pl.col("fga")),
        ),
        FieldSpec(
            "ts_pct",
            "True shooting percentage: PTS / (2 * (FGA + 0.44 * FTA))",
            False,
            1,
            _ratio(pl.col("pts"), 2 * (pl.col("fga") + 0.44 * pl.col("fta"))),
        ),
    ]
    team = {name: _box_field(name) for name in _NBA_TEAM_STATS} | {f.name: f for f in derived}
    player = {name: _box_field(name) for name in _NBA_PLAYER_STATS}
    return SportCatalogue("basketball_nba", team, player, on_court)


def _nfl() -> SportCatalogue:
    """NFL history has final scores only, so the team fields are score-based and there are no
    player fields. Rows are TEAM_BOX-shaped frames with ``pts`` filled from the game results."""
    team = [
        FieldSpec("points_for", "Points scored", False, 1, pl.col("pts")),
        FieldSpec("points_against", "Points allowed", True, 1, _col("pts", opponent=True)),
        FieldSpec(
            "margin",
            "Points scored minus points allowed",
            False,
            0,
            pl.col("pts") - _col("pts", opponent=True),
        ),
    ]
    return SportCatalogue("americanfootball_nfl", {f.name: f for f in team}, {}, None)


CATALOGUES: dict[str, SportCatalogue] = {c.sport: c for c in (_nba(), _nfl())}

FIELD_ALIASES: dict[str, str] = {
    "min": "minutes",
    "points": "pts",
    "rebounds": "reb",
    "assists": "ast",
    "steals": "stl",
    "blocks": "blk",
    "turnovers": "tov",
    "fouls": "pf",
}
"""Spellings accepted besides the canonical names: stats.nba.com's ``MIN`` and the plain words the
SPEC uses (e.g. ``turnovers``)."""


def catalogue(sport: str) -> SportCatalogue:
    """The sport's catalogue; unknown sports raise with the supported ones listed."""
    try:
        return CATALOGUES[sport]
    except KeyError:
        raise ValueError(f"unknown sport {sport!r}; supported: {', '.join(CATALOGUES)}") from None


def normalise_field_name(name: str) -> str:
    """``"PTS"`` -> ``"pts"``, ``"Turnovers"`` -> ``"tov"``: configs may use the seed's upper-case
    stats.nba.com names; everything downstream sees the lower-case canonical ones."""
    key = name.strip().lower()
    return FIELD_ALIASES.get(key, key)


def fields_of(sport: str, kind: FieldKind) -> dict[str, FieldSpec]:
    """The team or player fields of a sport, by canonical name."""
    cat = catalogue(sport)
    return cat.team if kind == "team" else cat.player


def derive_team_fields(team_box: pl.DataFrame, sport: str) -> pl.DataFrame:
    """``team_box`` (TEAM_BOX columns, one row per team and game) plus one column per derived team
    field of the sport, computed per team-game in one vectorised pass.

    The opponent's row is found by a self-join on ``(game_id, opponent)``; fields that need it
    (``defensive_rating``, ``pts_allowed``, ...) are null where the opponent's row is missing. A
    duplicated team-game raises rather than silently doubling rows.
    """
    derived = {name: f.expr for name, f in catalogue(sport).team.items() if f.expr is not None}
    stats = [c for c in _BOX_FIELDS if c in team_box.columns]
    opponent_rows = team_box.select(
        "game_id",
        pl.col("team").alias("opponent"),
        *[pl.col(c).alias(f"{OPPONENT_PREFIX}{c}") for c in stats],
    )
    return (
        team_box.join(opponent_rows, on=["game_id", "opponent"], how="left", validate="m:1")
        .with_columns(expr.alias(name) for name, expr in derived.items())
        .drop(f"{OPPONENT_PREFIX}{c}" for c in stats)
    )
