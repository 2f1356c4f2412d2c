"""Source evaluators (SPEC section 4), vectorised over a day's games and every distinct parameter set.

Each evaluator takes the distinct parameter sets that the day's models use and returns a matrix of
directional scores, one row per parameter set and one column per game (or per game x bookmaker
line for odds movement), NaN where the source is *missing*. A parameter set is scored once however
many models share it; :mod:`domain.models.engine.scoring` then gathers the rows each model needs.

Scores support the market's first side: home for ``spreads``/``h2h``, the over for ``totals``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from domain.markets.odds import no_vig_first_expr
from domain.models.catalogue import FieldKind, fields_of
from domain.models.engine.features import PLAYER_MINUTES, EntityHistory, PlayerHistory

TeamStatsParams = tuple[tuple[str, ...], int]
"""(fields, lookback_games)"""
PlayerStatsParams = tuple[tuple[str, ...], float, int]
"""(fields, min_minutes, lookback_games)"""

FLAT_STD = 1e-10
"""A league whose per-team values agree to this relative precision has no spread to speak of: every
z-score is 0 (a neutral field) instead of rounding noise blown up by a near-zero deviation."""

SPREAD_POINTS = 3.0
"""A move of this many spread (or total) points is full movement (seed: ``min(move / 3, 1)``)."""
H2H_POINTS_PER_SPREAD_POINT = 10.0 / 3.0
"""10 percentage points of no-vig home probability count like 3 spread points (SPEC section 4)."""
REVERSE_LINE_BOOST = 1.2


@dataclass(frozen=True, eq=False)
class Slate:
    """The games of one sport on one day, in a fixed order (the columns of every score matrix)."""

    day: int
    """Day number of the games' date (see :func:`domain.models.engine.features.day_number`)."""
    home: pl.Series
    away: pl.Series


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def z_scores(values: np.ndarray) -> np.ndarray:
    """Row-wise z-scores of ``values`` (parameter set x team) against the teams that have a value,
    with the population standard deviation; NaN stays NaN, a flat league gives 0."""
    valid = ~np.isnan(values)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, values, 0.0).sum(axis=1) / n
        dev = np.where(valid, values - mean[:, None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=1) / n)
        flat = ~(std > FLAT_STD * np.abs(mean))
        z = np.where(flat[:, None], 0.0, dev / np.where(flat, 1.0, std)[:, None])
    return np.where(valid, z, np.nan)


def _pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Columns ``index`` of ``values``, NaN where the index is -1 (an entity without history)."""
    if values.shape[1] == 0:
        return np.full((values.shape[0], len(index)), np.nan)
    return np.where(index >= 0, values[:, np.maximum(index, 0)], np.nan)


@dataclass(frozen=True, eq=False)
class FieldConfigs:
    """Distinct field-list configs of one source kind (team_stats or player_stats), split into keys
    ``(field, *parameters)`` that are scored once each: config ``c`` averages keys ``members[c]``
    (padded with -1)."""

    keys: tuple[tuple, ...]
    members: np.ndarray

    @classmethod
    def of(cls, params: Sequence[TeamStatsParams] | Sequence[PlayerStatsParams]) -> FieldConfigs:
        """From ``(fields, *parameters)`` tuples."""
        keys = sorted({(f, *p[1:]) for p in params for f in p[0]})
        row = {k: i for i, k in enumerate(keys)}
        members = np.full((len(params), max((len(p[0]) for p in params), default=1)), -1, dtype=np.int64)
        for c, (fields, *rest) in enumerate(params):
            members[c, : len(fields)] = [row[(f, *rest)] for f in fields]
        return cls(tuple(keys), members)


def mean_over_fields(scores: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Source score per config: the mean of its fields' scores that are not missing (the seed's
    averaging); missing when all of them are. ``members`` as in :class:`FieldConfigs`."""
    padded = np.vstack([scores, np.full((1, scores.shape[1]), np.nan)])[members]
    valid = ~np.isnan(padded)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, padded, 0.0).sum(axis=1) / valid.sum(axis=1)


@dataclass(frozen=True, eq=False)
class FieldValues:
    """Every field key's per-team z-score as of one day, for one source kind (team_stats or
    player_stats). Markets differ only in how z-scores become scores, so a day computes them once."""

    configs: FieldConfigs
    z: np.ndarray
    """Key x team (:func:`z_scores` of the teams' values); NaN where a team has no value."""
    lower_is_better: np.ndarray
    orientation: np.ndarray
    home: np.ndarray
    """Team index of each game's home team (-1: a team without history)."""
    away: np.ndarray

    @classmethod
    def of(
        cls,
        values: np.ndarray,
        sport: str,
        kind: FieldKind,
        configs: FieldConfigs,
        home: np.ndarray,
        away: np.ndarray,
    ) -> FieldValues:
        """From per-team ``values`` (key x team). A batch may hold another sport's fields: their
        values are all missing here, so they take neutral flags."""
        specs = [fields_of(sport, kind).get(key[0]) for key in configs.keys]
        lower = np.array([s is not None and s.lower_is_better for s in specs], dtype=bool)
        orientation = np.array([0.0 if s is None else s.total_orientation for s in specs])
        return cls(configs, z_scores(values), lower, orientation, home, away)

    def scores(self, market: str, which: np.ndarray) -> np.ndarray:
        """Source scores of configs ``which`` (indices into ``configs``) x game, the mean of their
        field scores: ``sigmoid(z_home - z_away)`` (z negated where lower is better) for side
        markets, ``sigmoid(orientation * (z_home + z_away))`` for totals."""
        z_home, z_away = _pick(self.z, self.home), _pick(self.z, self.away)
        if market == "totals":
            scores = sigmoid(self.orientation[:, None] * (z_home + z_away))
        else:
            scores = sigmoid(np.where(self.lower_is_better, -1.0, 1.0)[:, None] * (z_home - z_away))
        return mean_over_fields(scores, self.configs.members[which])


def team_stats_values(history: EntityHistory, sport: str, slate: Slate, configs: FieldConfigs) -> FieldValues:
    """team_stats keys ``(field, lookback_games)``: each team's mean over its last games."""
    entities = np.arange(len(history.names))
    played = history.played_before(entities, slate.day)
    values = np.full((len(configs.keys), len(entities)), np.nan)
    for (fld,), rows in _rows_by(configs.keys, 0).items():
        if fld not in history.sums:
            continue
        games = np.array([configs.keys[i][1] for i in rows])[:, None]
        total, count = history.window(fld, entities[None, :], np.maximum(played - games, 0), played[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            values[rows] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    home, away = history.index_of(slate.home), history.index_of(slate.away)
    return FieldValues.of(values, sport, "team", configs, home, away)


def player_stats_values(
    history: PlayerHistory, sport: str, slate: Slate, configs: FieldConfigs
) -> FieldValues:
    """player_stats keys ``(field, min_minutes, lookback_games)``: each team's rotation sum.

    A team's rotation as of the day: players whose latest game before the day was for the team and
    within the team's last ``lookback_games`` games (so traded and long-gone players drop out), with
    mean minutes over their own last ``lookback_games`` games of at least ``min_minutes``. The team
    value of a field is the sum of those players' means; a team with nobody qualifying is missing.
    """
    keys = configs.keys
    players, schedule = history.players, history.schedule
    n_teams = len(schedule.names)
    values = np.full((len(keys), n_teams), np.nan)
    if len(players.names):
        everyone = np.arange(len(players.names))
        played = players.played_before(everyone, slate.day)
        latest = players.start[:-1] + np.maximum(played - 1, 0)
        last_team = np.where(played > 0, history.row_team[latest], -1)
        last_date = players.dates[latest]
        team_played = schedule.played_before(np.arange(n_teams), slate.day)
        # Everything per distinct lookback (rows) x player (columns), every lookback at once.
        lookbacks = np.array(sorted({k[2] for k in keys}))[:, None]
        window_start = schedule.dates[schedule.start[:-1] + np.maximum(team_played - lookbacks, 0)]
        in_rotation = (last_team >= 0) & (last_date >= window_start[:, np.maximum(last_team, 0)])
        lo, hi = np.maximum(played - lookbacks, 0), played[None, :]
        minutes_sum, minutes_n = players.window(PLAYER_MINUTES, everyone[None, :], lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_minutes = np.where(minutes_n > 0, minutes_sum / np.maximum(minutes_n, 1), np.nan)
        for (fld,), rows in _rows_by(keys, 0).items():
            if fld not in players.sums:
                continue
            total, count = players.window(fld, everyone[None, :], lo, hi)
            mean = total / np.maximum(count, 1)
            # One row per key (min_minutes, lookback): who qualifies, then sums per (key, team).
            lookback = np.searchsorted(lookbacks[:, 0], [keys[i][2] for i in rows])
            minutes = np.array([keys[i][1] for i in rows])[:, None]
            qualifies = in_rotation[lookback] & (mean_minutes[lookback] >= minutes) & (count[lookback] > 0)
            row, player = np.nonzero(qualifies)
            cell = row * n_teams + last_team[player]
            size = len(rows) * n_teams
            team_sum = np.bincount(cell, weights=mean[lookback[row], player], minlength=size)
            team_count = np.bincount(cell, minlength=size).reshape(len(rows), n_teams)
            values[rows] = np.where(team_count > 0, team_sum.reshape(len(rows), n_teams), np.nan)
    home, away = schedule.index_of(slate.home), schedule.index_of(slate.away)
    return FieldValues.of(values, sport, "player", configs, home, away)


def _rows_by(keys: Sequence[tuple], *positions: int) -> dict[tuple, list[int]]:
    """Indices of ``keys`` grouped by the key elements at ``positions``."""
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(tuple(key[p] for p in positions), []).append(i)
    return groups


def historical_scores(
    history: EntityHistory, slate: Slate, market: str, lookback_days: np.ndarray
) -> np.ndarray:
    """historical_performance per distinct lookback_days x game: shrunk hit rates of both teams."""
    home, away = history.index_of(slate.home), history.index_of(slate.away)
    teams = np.concatenate([home, away])[None, :]
    days = lookback_days[:, None]
    hi = np.broadcast_to(history.played_before(teams, slate.day), (len(days), teams.shape[1]))
    lo = history.played_before(teams, slate.day - days)
    hits, _ = history.window(f"{market}_hit", teams, lo, hi)
    games, _ = history.window(f"{market}_game", teams, lo, hi)
    rate = (hits + 2.0) / (games + 4.0)
    r_home, r_away = rate[:, : len(home)], rate[:, len(home) :]
    if market == "totals":
        return (r_home + r_away) / 2.0
    return 0.5 + (r_home - r_away) / 2.0


def odds_movement_scores(
    lines: pl.DataFrame, snapshots: pl.DataFrame, market: str, hours: np.ndarray
) -> np.ndarray:
    """odds_movement per distinct time_window_hours x current line.

    ``lines``: one row per game x bookmaker of ``market`` with its current snapshot (``line``,
    ``price_first``, ``price_second``, ``public_first_pct``) and ``cutoff_time``; ``snapshots``: the
    snapshots of those games. Opening = first snapshot at or after ``cutoff - window`` (and not after
    the cut-off); with none inside the window the line has not moved. Reverse line movement is read
    from the current snapshot's ``public_first_pct`` (share of bets on the first side).
    """
    keys = ["game_id", "bookmaker", "market"]
    windows = pl.DataFrame({"window": np.arange(len(hours)), "hours": hours})
    left = (
        lines.with_row_index("line_row")
        .join(windows, how="cross")
        .with_columns((pl.col("cutoff_time") - pl.duration(hours=pl.col("hours"))).alias("window_start"))
        .sort("window_start")
    )
    right = (
        snapshots.filter(pl.col("market") == market)
        .select(
            *keys,
            pl.col("snapshot_time").alias("opening_time"),
            pl.col("line").alias("opening_line"),
            pl.col("price_first").alias("opening_price_first"),
            pl.col("price_second").alias("opening_price_second"),
        )
        .sort("opening_time")
    )
    joined = left.join_asof(
        right,
        left_on="window_start",
        right_on="opening_time",
        by=keys,
        strategy="forward",
        check_sortedness=False,
    )
    inside = pl.col("opening_time").is_not_null() & (pl.col("opening_time") <= pl.col("cutoff_time"))
    if market == "h2h":
        current = 100.0 * no_vig_first_expr(pl.col("price_first"), pl.col("price_second"))
        opening = 100.0 * no_vig_first_expr(pl.col("opening_price_first"), pl.col("opening_price_second"))
        scale, towards_first = H2H_POINTS_PER_SPREAD_POINT * SPREAD_POINTS, 1.0
    else:
        current, opening = pl.col("line"), pl.col("opening_line")
        scale, towards_first = SPREAD_POINTS, -1.0 if market == "spreads" else 1.0
    move = current - pl.when(inside).then(opening).otherwise(current)
    direction = towards_first * move.sign()
    public = pl.col("public_first_pct")
    reverse = public.is_not_null() & (((public > 0.5) & (direction < 0)) | ((public < 0.5) & (direction > 0)))
    movement = pl.min_horizontal(move.abs() / scale, pl.lit(1.0))
    movement = (
        pl.when(reverse)
        .then(pl.min_horizontal(REVERSE_LINE_BOOST * movement, pl.lit(1.0)))
        .otherwise(movement)
    )
    scores = joined.select(
        "window", "line_row", (0.5 + 0.5 * direction * movement).cast(pl.Float64).alias("score")
    ).sort("window", "line_row")
    return scores["score"].fill_null(np.nan).to_numpy().reshape(len(hours), len(lines))
