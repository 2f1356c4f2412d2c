"""team_stats: team form, each field's mean over the team's last games as a z-score against the league."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from domain.models.catalogue import FieldKind
from domain.models.features import EntityHistory, team_history
from domain.models.sources.base import Slate, SourceDay, SourceKind, default_of
from domain.models.sources.fields import (
    FieldConfigs,
    FieldsSource,
    FieldValues,
    day_scores,
    normalised_fields,
)


class TeamStatsSource(FieldsSource):
    """Team form: each field's mean over the team's last games, as a z-score against the league."""

    kind: ClassVar[str] = "team_stats"
    field_kind: ClassVar[FieldKind] = "team"
    lookback_games: Annotated[int, Field(ge=1, le=82)] = 10


TeamStatsKey = tuple[tuple[str, ...], int]
"""(fields, lookback_games)"""
_LOOKBACK_GAMES = default_of(TeamStatsSource, "lookback_games")


def key(source: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> TeamStatsKey:
    return normalised_fields(source), int(source.get("lookback_games", _LOOKBACK_GAMES))


def team_stats_values(history: EntityHistory, sport: str, slate: Slate, configs: FieldConfigs) -> FieldValues:
    """team_stats keys ``(field, lookback_games)``: each team's mean over its last games before
    each date of the slate."""
    entities = np.arange(len(history.names))[None, :]
    played = history.played_before(entities, slate.dates[:, None])  # date x team
    values = np.full((len(configs.keys), len(slate.dates), entities.shape[1]), np.nan)
    for fld, rows in configs.by_field():
        if fld not in history.sums:
            continue
        games = configs.parameters[0][rows, None, None]
        total, count = history.window(fld, entities[None], np.maximum(played - games, 0), played[None])
        with np.errstate(invalid="ignore", divide="ignore"):
            values[rows] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    home, away = history.index_of(slate.home), history.index_of(slate.away)
    return FieldValues.of(values, sport, "team", configs, home, away, slate.date_of)


def score(configs: FieldConfigs, used: np.ndarray, day: SourceDay) -> np.ndarray:
    return day_scores(
        day,
        TeamStatsSource.kind,
        lambda: team_stats_values(team_history(day.tables, day.sport), day.sport, day.slate, configs),
        used,
    )


KIND = SourceKind(TeamStatsSource, key, FieldConfigs.of, score)
