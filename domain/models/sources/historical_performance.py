"""historical_performance: each team's recent rate of covering, winning or going over, shrunk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from domain.models.features import EntityHistory, results_history
from domain.models.sources.base import Slate, SourceBase, SourceDay, SourceKind, default_of, integers


class HistoricalPerformanceSource(SourceBase):
    """Each team's recent rate of covering, winning or going over."""

    kind: ClassVar[str] = "historical_performance"
    lookback_days: Annotated[int, Field(ge=1, le=365)] = 30


_LOOKBACK_DAYS = default_of(HistoricalPerformanceSource, "lookback_days")


def key(source: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> int:
    """The source's ``lookback_days``, the one parameter that decides its scores."""
    return int(source.get("lookback_days", _LOOKBACK_DAYS))


def historical_scores(
    history: EntityHistory, slate: Slate, market: str, lookback_days: np.ndarray
) -> np.ndarray:
    """historical_performance per game x distinct lookback_days: shrunk hit rates of both teams."""
    home, away = history.index_of(slate.home), history.index_of(slate.away)
    teams = np.concatenate([home, away])[:, None]
    game_day = np.concatenate([slate.day, slate.day])[:, None]
    days = lookback_days[None, :]
    hi = np.broadcast_to(history.played_before(teams, game_day), (teams.shape[0], days.shape[1]))
    lo = history.played_before(teams, game_day - days)
    hits, _ = history.window(f"{market}_hit", teams, lo, hi)
    games, _ = history.window(f"{market}_game", teams, lo, hi)
    rate = (hits + 2.0) / (games + 4.0)
    r_home, r_away = rate[: len(home)], rate[len(home) :]
    if market == "totals":
        return (r_home + r_away) / 2.0
    return 0.5 + (r_home - r_away) / 2.0


def score(lookback_days: np.ndarray, used: np.ndarray, day: SourceDay) -> np.ndarray:
    history = results_history(day.tables, day.sport)
    return historical_scores(history, day.slate, day.market, lookback_days[used])


KIND = SourceKind(HistoricalPerformanceSource, key, integers, score)
