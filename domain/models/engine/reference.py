"""A scalar reference of the scoring engine: the seed's formulas, one model, game and bookmaker at a time.

The reference follows the seed's functions (``calculate_model_score``, ``evaluate_team_stats``,
``evaluate_odds_movement``, ...) as adapted by SPEC section 4, with plain loops over fields, teams,
players and past games. It is slow and obvious on purpose: the vectorised engine must agree with it,
each kind's scorer (tests/test_source_kinds.py) and whole models (tests/test_engine_property.py), and
bench/engine_bench.py measures how much faster the engine is. :data:`SCALAR` holds one scalar scorer
per source kind. Shared decisions are imported rather than restated where they are constants (the
flat-league tolerance) or row-level formulas owned elsewhere (derived box-score fields, closing lines).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from domain.models.catalogue import FieldKind, derive_team_fields, fields_of
from domain.models.config import ModelConfig, effective_dynamic_weighting, enabled_sources
from domain.models.features import Tables
from domain.models.sources.custom import CustomDataSource
from domain.models.sources.fields import FLAT_STD
from domain.models.sources.historical_performance import HistoricalPerformanceSource
from domain.models.sources.model import ModelSource
from domain.models.sources.odds_movement import OddsMovementSource
from domain.models.sources.player_stats import PlayerStatsSource
from domain.models.sources.team_stats import TeamStatsSource
from domain.tables.tidy import build_lines


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _number(value: Any) -> float | None:
    """A usable number, or None for null and NaN (the engine's "no value")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


@dataclass
class ReferenceData:
    """One sport's tables as Python rows, grouped the way the seed's helper functions look things up."""

    sport: str
    games: dict[str, dict[str, Any]]
    team_rows: dict[str, list[dict[str, Any]]]
    player_rows: dict[str, list[dict[str, Any]]]
    snapshots: dict[tuple[str, str, str], list[dict[str, Any]]]
    closing: dict[tuple[str, str], list[float | None]]

    @classmethod
    def from_tables(cls, tables: Tables, sport: str) -> ReferenceData:
        games = {g["game_id"]: g for g in tables.games.filter(pl.col("sport") == sport).to_dicts()}
        team_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in derive_team_fields(tables.team_box.filter(pl.col("sport") == sport), sport).to_dicts():
            team_rows[row["team"]].append(row)
        player_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in tables.player_box.filter(pl.col("sport") == sport).to_dicts():
            player_rows[row["player_id"]].append(row)
        for rows in (*team_rows.values(), *player_rows.values()):
            rows.sort(key=lambda r: (r["game_date"], r["game_id"]))
        snapshots: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for snap in tables.snapshots.to_dicts():
            snapshots[(snap["game_id"], snap["bookmaker"], snap["market"])].append(snap)
        for snaps in snapshots.values():
            snaps.sort(key=lambda s: s["snapshot_time"])
        closing: dict[tuple[str, str], list[float | None]] = defaultdict(list)
        for line in build_lines(tables.snapshots, tables.games).to_dicts():
            closing[(line["game_id"], line["market"])].append(line["closing_line"])
        return cls(sport, games, dict(team_rows), dict(player_rows), dict(snapshots), dict(closing))

    def view(
        self,
        game_id_: str,
        bookmaker: str,
        market: str,
        as_of: dt.datetime | None = None,
        custom: Mapping[tuple[str, str], float | None] | None = None,
        members: Mapping[str, float] | None = None,
    ) -> View:
        """What a model of ``market`` sees of a game and bookmaker at the cut-off
        ``min(as_of, commence_time)`` (``as_of=None``: a backtest); ``custom``: (source name, game
        id) -> custom score; ``members``: model id -> its p on this game and bookmaker at the
        same cut-off."""
        game = self.games[game_id_]
        cutoff = game["commence_time"] if as_of is None else min(as_of, game["commence_time"])
        snapshots = self.snapshots.get((game_id_, bookmaker, market), [])
        return View(self, game, market, cutoff, snapshots, custom or {}, members or {})


@dataclass(frozen=True)
class View:
    """One game and bookmaker as a model's sources see it (what the seed's evaluators are handed)."""

    data: ReferenceData
    game: dict[str, Any]
    market: str
    cutoff: dt.datetime
    snapshots: list[dict[str, Any]]
    """The bookmaker's snapshots of the game and market by time, later ones too."""
    custom: Mapping[tuple[str, str], float | None]
    members: Mapping[str, float]

    @property
    def current(self) -> dict[str, Any] | None:
        """The latest snapshot at or before the cut-off."""
        seen = [s for s in self.snapshots if s["snapshot_time"] <= self.cutoff]
        return seen[-1] if seen else None


# ---- team_stats ----------------------------------------------------------------------------------


def get_team_stat(
    data: ReferenceData, team: str, field: str, lookback_games: int, day: dt.date
) -> float | None:
    """Mean of the field over the team's last ``lookback_games`` games before ``day``."""
    games = [r for r in data.team_rows.get(team, []) if r["game_date"] < day]
    values = [_number(r.get(field)) for r in games[-lookback_games:]]
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def league_z(values: dict[str, float | None], team: str) -> float | None:
    """z-score of one team's value against every team's value (population std)."""
    value = values.get(team)
    if value is None:
        return None
    present = [v for v in values.values() if v is not None]
    mean = sum(present) / len(present)
    std = math.sqrt(sum((v - mean) ** 2 for v in present) / len(present))
    if not std > FLAT_STD * abs(mean):
        return 0.0
    return (value - mean) / std


def field_score(
    sport: str, kind: FieldKind, field: str, z_home: float | None, z_away: float | None, market: str
) -> float | None:
    if z_home is None or z_away is None:
        return None
    spec = fields_of(sport, kind)[field]
    if market == "totals":
        return sigmoid(spec.total_orientation * (z_home + z_away))
    sign = -1.0 if spec.lower_is_better else 1.0
    return sigmoid(sign * z_home - sign * z_away)


def _mean_of_fields(scores: list[float | None]) -> float | None:
    present = [s for s in scores if s is not None]
    return sum(present) / len(present) if present else None


def evaluate_team_stats(source: TeamStatsSource, name: str, at: View) -> float | None:
    data, game = at.data, at.game
    day = game["game_date"]
    scores = []
    for field in source.fields:
        values = {
            team: get_team_stat(data, team, field, source.lookback_games, day) for team in data.team_rows
        }
        z_home = league_z(values, game["home_team"])
        z_away = league_z(values, game["away_team"])
        scores.append(field_score(data.sport, "team", field, z_home, z_away, at.market))
    return _mean_of_fields(scores)


# ---- player_stats --------------------------------------------------------------------------------


def team_player_value(
    data: ReferenceData, team: str, source: PlayerStatsSource, field: str, day: dt.date
) -> float | None:
    """Sum of the per-game means of the team's rotation players who reach ``min_minutes``."""
    n = source.lookback_games
    team_dates = sorted(
        {
            (r["game_date"], r["game_id"])
            for rows in data.player_rows.values()
            for r in rows
            if r["team"] == team and r["game_date"] < day
        }
    )
    if not team_dates:
        return None
    window_start = team_dates[-n:][0][0]
    total, found = 0.0, False
    for player in sorted(data.player_rows):
        games = [r for r in data.player_rows[player] if r["game_date"] < day]
        if not games or games[-1]["team"] != team or games[-1]["game_date"] < window_start:
            continue
        recent = games[-n:]
        minutes = [m for m in (_number(r["minutes"]) for r in recent) if m is not None]
        if not minutes or sum(minutes) / len(minutes) < source.min_minutes:
            continue
        values = [v for v in (_number(r[field]) for r in recent) if v is not None]
        if values:
            total += sum(values) / len(values)
            found = True
    return total if found else None


def evaluate_player_stats(source: PlayerStatsSource, name: str, at: View) -> float | None:
    data, game = at.data, at.game
    day = game["game_date"]
    teams = sorted({r["team"] for rows in data.player_rows.values() for r in rows if r["team"] is not None})
    scores = []
    for field in source.fields:
        values = {team: team_player_value(data, team, source, field, day) for team in teams}
        z_home = league_z(values, game["home_team"])
        z_away = league_z(values, game["away_team"])
        scores.append(field_score(data.sport, "player", field, z_home, z_away, at.market))
    return _mean_of_fields(scores)


# ---- odds_movement -------------------------------------------------------------------------------


def no_vig_home(snap: dict[str, Any]) -> float | None:
    if snap["price_first"] is None or snap["price_second"] is None:
        return None
    a, b = 1 / snap["price_first"], 1 / snap["price_second"]
    return a / (a + b)


def evaluate_odds_movement(source: OddsMovementSource, name: str, at: View) -> float | None:
    """Seed ``evaluate_odds_movement`` made directional (SPEC section 4)."""
    history = [s for s in at.snapshots if s["snapshot_time"] <= at.cutoff]
    current = history[-1]
    window_start = at.cutoff - dt.timedelta(hours=source.time_window_hours)
    inside = [s for s in history if s["snapshot_time"] >= window_start]
    opening = inside[0] if inside else current
    market = at.market
    if market == "h2h":
        now, then = no_vig_home(current), no_vig_home(opening)
        if now is None or then is None:
            return None
        move = 100 * now - 100 * then
        points = abs(move) * 3 / 10
        direction = _sign(move)
    else:
        if current["line"] is None or opening["line"] is None:
            return None
        move = current["line"] - opening["line"]
        points = abs(move)
        direction = -_sign(move) if market == "spreads" else _sign(move)
    movement = min(points / 3.0, 1.0)
    public = current["public_first_pct"]
    if public is not None and ((public > 0.5 and direction < 0) or (public < 0.5 and direction > 0)):
        movement = min(movement * 1.2, 1.0)
    return 0.5 + 0.5 * direction * movement


# ---- historical_performance ----------------------------------------------------------------------


def consensus_line(data: ReferenceData, game_id_: str, market: str) -> float | None:
    lines = [x for x in data.closing.get((game_id_, market), []) if x is not None]
    return statistics.median(lines) if lines else None


def team_rate(data: ReferenceData, team: str, market: str, day: dt.date, lookback_days: int) -> float:
    hits = games = 0
    for g in data.games.values():
        if not (day - dt.timedelta(days=lookback_days) <= g["game_date"] < day):
            continue
        if not g["completed"] or g["home_score"] is None or g["away_score"] is None:
            continue
        if team not in (g["home_team"], g["away_team"]):
            continue
        home, away = g["home_score"], g["away_score"]
        if market == "h2h":
            margin = home - away if team == g["home_team"] else away - home
        else:
            line = consensus_line(data, g["game_id"], market)
            if line is None:
                continue
            if market == "totals":
                margin = home + away - line
            else:
                margin = home + line - away if team == g["home_team"] else away - line - home
        if margin == 0:
            continue
        games += 1
        hits += margin > 0
    return (hits + 2) / (games + 4)


def evaluate_historical(source: HistoricalPerformanceSource, name: str, at: View) -> float:
    game, market = at.game, at.market
    r_home = team_rate(at.data, game["home_team"], market, game["game_date"], source.lookback_days)
    r_away = team_rate(at.data, game["away_team"], market, game["game_date"], source.lookback_days)
    if market == "totals":
        return (r_home + r_away) / 2
    return 0.5 + (r_home - r_away) / 2


# ---- custom data ---------------------------------------------------------------------------------


def evaluate_custom(source: CustomDataSource, name: str, at: View) -> float | None:
    """The score the datasets stage gave this source and game, if any."""
    return at.custom.get((name, at.game["game_id"]))


# ---- model (ensembles) ---------------------------------------------------------------------------


def evaluate_model(source: ModelSource, name: str, at: View) -> float | None:
    """The member's p on this game and bookmaker at the same cut-off, if it has one."""
    return at.members.get(source.model_id)


SCALAR: dict[str, Callable[[Any, str, View], float | None]] = {
    TeamStatsSource.kind: evaluate_team_stats,
    PlayerStatsSource.kind: evaluate_player_stats,
    OddsMovementSource.kind: evaluate_odds_movement,
    HistoricalPerformanceSource.kind: evaluate_historical,
    CustomDataSource.kind: evaluate_custom,
    ModelSource.kind: evaluate_model,
}
"""The scalar scorer of each source kind by name: ``score(source, source_name, view)``, None = missing."""


# ---- calculate_model_score -----------------------------------------------------------------------


def reference_analysis(
    config: ModelConfig,
    data: ReferenceData,
    game_id_: str,
    bookmaker: str,
    as_of: dt.datetime | None = None,
    multipliers: dict[str, float] | None = None,
    custom: dict[tuple[str, str], float | None] | None = None,
) -> dict[str, Any] | None:
    """The analysis of one model on one game and bookmaker, or None when there is none.

    ``multipliers``: source name -> dynamic multiplier; ``custom``: (source name, game id) -> score.
    """
    at = data.view(game_id_, bookmaker, config.market, as_of, custom)
    current = at.current
    if current is None:
        return None
    total_score = total_weight = 0.0
    for name, source in enabled_sources(config).items():
        score = SCALAR[source.kind](source, name, at)
        if score is None:
            continue
        weight = source.weight
        if effective_dynamic_weighting(config, name):
            weight *= (multipliers or {}).get(name, 1.0)
        total_score += score * weight
        total_weight += weight
    if total_weight <= 0:
        return None
    p = total_score / total_weight
    raw = max(p, 1 - p)
    first = p >= 0.5
    return {
        "p": p,
        "pick": ("over" if first else "under")
        if config.market == "totals"
        else ("home" if first else "away"),
        "raw_confidence": raw,
        "confidence": max(config.min_confidence, min(raw, config.max_confidence)),
        "qualifies": raw >= config.min_confidence,
        "line": current["line"],
        "snapshot_time": current["snapshot_time"],
    }
