"""player_stats: player form summed over each team's rotation, as a z-score against the league."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from domain.models.catalogue import FieldKind
from domain.models.features import PLAYER_MINUTES, PlayerHistory, player_history
from domain.models.sources.base import Slate, SourceDay, SourceKind, default_of
from domain.models.sources.fields import (
    FieldConfigs,
    FieldsSource,
    FieldValues,
    day_scores,
    normalised_fields,
    rows_by,
)


class PlayerStatsSource(FieldsSource):
    """Player form summed over the players who reach ``min_minutes`` on average."""

    kind: ClassVar[str] = "player_stats"
    field_kind: ClassVar[FieldKind] = "player"
    min_minutes: Annotated[float, Field(ge=0, le=48)] = 20
    lookback_games: Annotated[int, Field(ge=1, le=82)] = 10


PlayerStatsKey = tuple[tuple[str, ...], float, int]
"""(fields, min_minutes, lookback_games)"""
_MIN_MINUTES = default_of(PlayerStatsSource, "min_minutes")
_LOOKBACK_GAMES = default_of(PlayerStatsSource, "lookback_games")


def key(source: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> PlayerStatsKey:
    return (
        normalised_fields(source),
        float(source.get("min_minutes", _MIN_MINUTES)),
        int(source.get("lookback_games", _LOOKBACK_GAMES)),
    )


def player_stats_values(
    history: PlayerHistory, sport: str, slate: Slate, configs: FieldConfigs
) -> FieldValues:
    """player_stats keys ``(field, min_minutes, lookback_games)``: each team's rotation sum as of
    each date of the slate.

    A team's rotation as of a date: players whose latest game before the day was for the team and
    within the team's last ``lookback_games`` games (so traded and long-gone players drop out), with
    mean minutes over their own last ``lookback_games`` games of at least ``min_minutes``. The team
    value of a field is the sum of those players' means; a team with nobody qualifying is missing.
    """
    keys = configs.keys
    players, schedule = history.players, history.schedule
    n_teams, n_dates = len(schedule.names), len(slate.dates)
    values = np.full((len(keys), n_dates, n_teams), np.nan)
    if len(players.names):
        # Everything per distinct lookback x date x player, every lookback and date at once.
        everyone = np.arange(len(players.names))[None, None, :]
        dates = slate.dates[:, None]
        played = players.played_before(everyone[0], dates)  # date x player
        latest = players.start[:-1] + np.maximum(played - 1, 0)
        last_team = np.where(played > 0, history.row_team[latest], -1)
        last_date = players.dates[latest]
        team_played = schedule.played_before(np.arange(n_teams)[None, :], dates)  # date x team
        lookbacks = np.array(sorted({k[2] for k in keys}))[:, None, None]
        window_start = schedule.dates[schedule.start[:-1] + np.maximum(team_played - lookbacks, 0)]
        on_date = np.arange(n_dates)[:, None]
        in_rotation = (last_team >= 0) & (last_date >= window_start[:, on_date, np.maximum(last_team, 0)])
        lo, hi = np.maximum(played - lookbacks, 0), played[None]
        minutes_sum, minutes_n = players.window(PLAYER_MINUTES, everyone, lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_minutes = np.where(minutes_n > 0, minutes_sum / np.maximum(minutes_n, 1), np.nan)
        for (fld,), rows in rows_by(keys, 0).items():
            if fld not in players.sums:
                continue
            # One row per key (min_minutes, lookback): who qualifies, then sums per (key, date, team);
            # the field's means only for the lookbacks its keys use.
            lookback = np.searchsorted(lookbacks[:, 0, 0], [keys[i][2] for i in rows])
            needed, of_row = np.unique(lookback, return_inverse=True)
            total, count = players.window(fld, everyone, lo[needed], hi)
            mean = total / np.maximum(count, 1)
            minutes = np.array([keys[i][1] for i in rows])[:, None, None]
            qualifies = in_rotation[lookback] & (mean_minutes[lookback] >= minutes) & (count[of_row] > 0)
            row, date, player = np.nonzero(qualifies)
            cell = (row * n_dates + date) * n_teams + last_team[date, player]
            shape = (len(rows), n_dates, n_teams)
            size = int(np.prod(shape))
            team_sum = np.bincount(cell, weights=mean[of_row[row], date, player], minlength=size)
            team_count = np.bincount(cell, minlength=size).reshape(shape)
            values[rows] = np.where(team_count > 0, team_sum.reshape(shape), np.nan)
    home, away = schedule.index_of(slate.home), schedule.index_of(slate.away)
    return FieldValues.of(values, sport, "player", configs, home, away, slate.date_of)


def score(configs: FieldConfigs, used: np.ndarray, day: SourceDay) -> np.ndarray:
    return day_scores(
        day,
        PlayerStatsSource.kind,
        lambda: player_stats_values(player_history(day.tables, day.sport), day.sport, day.slate, configs),
        used,
    )


KIND = SourceKind(PlayerStatsSource, key, FieldConfigs.of, score)
