"""Team-name matching: every source's spelling of a team maps to the sport's canonical code.

The codes and spellings themselves live in each sport's module (``domain.sports.nba``, ...); here is
the one rule that turns a spelling into a lookup key, so that the table and the lookup agree.
"""

from __future__ import annotations

import re

import polars as pl

_NOT_KEY = r"[^A-Z0-9]"


def team_key(name: str) -> str:
    """Lookup key of a team name: upper case, letters and digits only ("L.A. Clippers" -> "LACLIPPERS")."""
    return re.sub(_NOT_KEY, "", name.upper())


def team_key_expr(names: pl.Expr) -> pl.Expr:
    """Vectorised :func:`team_key`."""
    return names.str.to_uppercase().str.replace_all(_NOT_KEY, "")


def team_aliases(teams: dict[str, str], others: dict[str, str]) -> dict[str, str]:
    """:func:`team_key` of every known spelling -> code: each code and full name of ``teams``, plus
    ``others`` (other sources' codes, historical names; already keys)."""
    own = {team_key(code): code for code in teams} | {team_key(name): code for code, name in teams.items()}
    return own | others
