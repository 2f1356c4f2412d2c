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
    minutes, lookback = configs.parameters
    players, schedule = history.players, history.schedule
    n_teams, n_dates = len(schedule.names), len(slate.dates)
    values = np.full((len(configs.keys), n_dates, n_teams), np.nan)
    if len(players.names):
        # Everything per distinct lookback x date x player, every lookback and date at once.
        everyone = np.arange(len(players.names))[None, None, :]
        dates = slate.dates[:, None]
        played = players.played_before(everyone[0], dates)  # date x player
        latest = players.start[:-1] + np.maximum(played - 1, 0)
        last_team = np.where(played > 0, history.row_team[latest], -1)
        last_date = players.dates[latest]
        team_played = schedule.played_before(np.arange(n_teams)[None, :], dates)  # date x team
        distinct, key_lookback = np.unique(lookback, return_inverse=True)
        lookbacks = distinct[:, None, None]
        window_start = schedule.dates[schedule.start[:-1] + np.maximum(team_played - lookbacks, 0)]
        on_date = np.arange(n_dates)[:, None]
        in_rotation = (last_team >= 0) & (last_date >= window_start[:, on_date, np.maximum(last_team, 0)])
        lo, hi = np.maximum(played - lookbacks, 0), played[None]
        minutes_sum, minutes_n = players.window(PLAYER_MINUTES, everyone, lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_minutes = np.where(minutes_n > 0, minutes_sum / np.maximum(minutes_n, 1), np.nan)
        # Who may count depends on (lookback, min_minutes) only: once per such pair, not per field.
        thresholds, key_minutes = np.unique(minutes, return_inverse=True)
        pairs, key_pair = np.unique(key_lookback * len(thresholds) + key_minutes, return_inverse=True)
        pair_lookback, pair_minutes = np.divmod(pairs, len(thresholds))
        eligible = in_rotation[pair_lookback] & (
            mean_minutes[pair_lookback] >= thresholds[pair_minutes, None, None]
        )
        # The bin of each (key, date, player) among (key, date, team), for as many keys as a field
        # has at most; players without a team go to a spare team.
        spare = n_teams + 1
        team_bin = on_date * spare + np.where(last_team >= 0, last_team, n_teams)
        most = max(rows.stop - rows.start for _, rows in configs.by_field())
        cells = (np.arange(most)[:, None, None] * (n_dates * spare) + team_bin).ravel()
        for fld, rows in configs.by_field():
            if fld not in players.sums:
                continue
            # The field's means only for the lookbacks its keys use; then per key (one row each) who
            # qualifies, and sums per (key, date, team). Every player goes through the sums (as 0 when
            # they do not qualify), which adds each team's players in player order like a sum over the
            # qualifying ones only, without gathering them one by one.
            needed, of_row = np.unique(key_lookback[rows], return_inverse=True)
            total, count = players.window(fld, everyone, lo[needed], hi)
            mean = total / np.maximum(count, 1)
            qualifies = eligible[key_pair[rows]] & (count > 0)[of_row]
            shape = (len(of_row), n_dates, spare)
            size = int(np.prod(shape))
            cell = cells[: qualifies.size]
            team_sum = np.bincount(cell, np.where(qualifies, mean[of_row], 0.0).ravel(), size).reshape(shape)
            team_count = np.bincount(cell, qualifies.ravel(), size).reshape(shape)
            values[rows] = np.where(team_count > 0, team_sum, np.nan)[..., :n_teams]
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
