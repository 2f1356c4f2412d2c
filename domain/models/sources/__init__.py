"""The kinds of data source a model weighs, one module each, and their registry.

Each kind's module exports ``KIND`` (:class:`SourceKind`): its parameters model (the settings in a
model config), the key of a configured source (the parameters that decide its scores) and its
vectorised scorer. :data:`KINDS` drives the config's ``data_sources`` (one optional setting per
built-in kind, named after it; any other name is a custom or a model source, as
:data:`SELECTED_BY` says), the batch of models and the engine's dispatch. How to add a kind: see
:mod:`domain.models.engine`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.models.sources import (
    custom,
    historical_performance,
    model,
    odds_movement,
    player_stats,
    team_stats,
)
from domain.models.sources.base import SourceBase, SourceDay, SourceKind

KINDS: tuple[SourceKind[Any], ...] = (
    team_stats.KIND,
    player_stats.KIND,
    odds_movement.KIND,
    historical_performance.KIND,
    custom.KIND,
    model.KIND,
)
"""Every kind, in the order a model's sources are listed and weighed (a model's custom and model
sources come in the order it gives them)."""

BUILTIN_SOURCES = tuple(kind.name for kind in KINDS if kind.builtin)
"""The source names that select their kind."""

SELECTED_BY = {custom.KIND.name: "dataset_id", model.KIND.name: "model_id"}
"""The setting that selects each kind that is not built in, under any name but a built-in kind's."""

_INDEX = {kind.name: i for i, kind in enumerate(KINDS)}


def kind_name(source_name: str, source: Any) -> str:
    """The kind of a configured source (a payload mapping or a parameters model): a built-in kind's
    name selects it; any other name is a model source if it names a ``model_id``, else custom."""
    if source_name in BUILTIN_SOURCES:
        return source_name
    if isinstance(source, SourceBase):
        return source.kind
    has_model = isinstance(source, Mapping) and SELECTED_BY[model.KIND.name] in source
    return model.KIND.name if has_model else custom.KIND.name


def kind_index(source_name: str, source: Any) -> int:
    """The position in :data:`KINDS` of a configured source's kind (see :func:`kind_name`)."""
    return _INDEX[kind_name(source_name, source)]


def in_order(sources: Mapping[str, Any]) -> list[str]:
    """Source names in the order of their kinds in :data:`KINDS`, as given within a kind."""
    return sorted(sources, key=lambda name: kind_index(name, sources[name]))


__all__ = [
    "BUILTIN_SOURCES",
    "KINDS",
    "SELECTED_BY",
    "SourceBase",
    "SourceDay",
    "SourceKind",
    "in_order",
    "kind_index",
    "kind_name",
]
