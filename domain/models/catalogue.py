"""The field catalogue's lookups: which statistics a model may name per sport, and the derived team
fields computed over a box-score table.

The fields themselves (names, descriptions, orientation, derived-field expressions) are each sport's,
defined in its module under ``domain.sports``; their types are ``domain.sports.fields``'s.
"""

from __future__ import annotations

import polars as pl

from domain.sports import SPORTS, sport_info
from domain.sports.fields import BOX_FIELDS, OPPONENT_PREFIX, FieldCatalogue, FieldKind, FieldSpec

CATALOGUES: dict[str, FieldCatalogue] = {key: s.fields for key, s in SPORTS.items()}

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


def catalogue(sport: str) -> FieldCatalogue:
    """The sport's catalogue; unknown sports raise with the supported ones listed."""
    return sport_info(sport).fields


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
    stats = [c for c in BOX_FIELDS if c in team_box.columns]
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
