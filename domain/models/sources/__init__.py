"""The kinds of data source a model weighs, one module each, and their registry.

Each kind's module exports ``KIND`` (:class:`SourceKind`): its parameters model (the settings in a
model config), the key of a configured source (the parameters that decide its scores) and its
vectorised scorer. :data:`KINDS` drives the config's ``data_sources`` (one optional setting per
built-in kind, named after it; any other name is a custom source), the batch of models and the
engine's dispatch. How to add a kind: see :mod:`domain.models.engine`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.models.sources import custom, historical_performance, odds_movement, player_stats, team_stats
from domain.models.sources.base import SourceBase, SourceDay, SourceKind

KINDS: tuple[SourceKind[Any], ...] = (
    team_stats.KIND,
    player_stats.KIND,
    odds_movement.KIND,
    historical_performance.KIND,
    custom.KIND,
)
"""Every kind, in the order a model's sources are listed and weighed (a model's custom sources come
in the order it gives them)."""

BUILTIN_SOURCES = tuple(kind.name for kind in KINDS if kind.builtin)
"""The source names that select their kind."""

_BUILTIN_INDEX = {kind.name: i for i, kind in enumerate(KINDS) if kind.builtin}
_OTHER_INDEX = next(i for i, kind in enumerate(KINDS) if not kind.builtin)


def kind_index(source_name: str) -> int:
    """The position in :data:`KINDS` of the kind a source of this name has."""
    return _BUILTIN_INDEX.get(source_name, _OTHER_INDEX)


def in_order(source_names: Iterable[str]) -> list[str]:
    """Source names in the order of their kinds in :data:`KINDS`, as given within a kind."""
    return sorted(source_names, key=kind_index)


__all__ = ["BUILTIN_SOURCES", "KINDS", "SourceBase", "SourceDay", "SourceKind", "in_order", "kind_index"]
