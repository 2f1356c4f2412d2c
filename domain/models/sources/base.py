"""What every source kind is made of: its parameters model, and what its scorer is handed.

A kind (:class:`SourceKind`) scores the *distinct* parameter sets of a batch of models once per span
of days (one day live, many in a backtest), whatever the number of models sharing them. The batch
asks each configured source for its ``key`` (the parameters that decide its score), interns the keys
per kind, and hands the kind's ``prepare`` the distinct keys once; for each span the engine hands
``score`` the prepared keys, the indices of the keys that one sport and market's models use, and the
span (:class:`SourceDay`: every game as of its own date). ``score`` returns one row per used key and
one column per current line: directional scores in [0, 1] that support the market's first side (home
for ``spreads``/``h2h``, the over for ``totals``), NaN where the source is *missing*.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import numpy as np
import polars as pl
from pydantic import Field

from domain.models.config_base import ConfigProblem, Frozen
from domain.models.features import Tables
from domain.sports.fields import FieldKind

P = TypeVar("P")
T = TypeVar("T")


class SourceBase(Frozen):
    """The settings every source has; a kind's parameters model adds its own."""

    kind: ClassVar[str]
    """The kind's name: the source's name in a config for a built-in kind."""
    field_kind: ClassVar[FieldKind | None] = None
    """The catalogue fields its ``fields`` setting names (team or player), if it has one."""
    enabled: bool = True
    weight: Annotated[float, Field(ge=0, allow_inf_nan=False, description="Relative weight, >= 0")]
    dynamic_weighting: bool | None = Field(
        default=None, description="Overrides the model's dynamic_weighting for this source when set"
    )

    @classmethod
    def available_for(cls, sport: str) -> bool:
        """Whether a model of ``sport`` may use the kind at all (always, unless the kind needs data
        the sport lacks)."""
        return True

    def sport_problems(self, sport: str) -> list[ConfigProblem]:
        """What is wrong with these parameters for a model of ``sport`` (paths relative to the
        source); none unless the kind depends on the sport."""
        return []


def default_of(model: type[SourceBase], name: str) -> Any:
    """The default of a parameter, for keys read from stored payloads (which leave defaults out)."""
    return model.model_fields[name].default


def integers(keys: list[int]) -> np.ndarray:
    """``prepare`` of a kind keyed by one whole-number parameter: the keys as an array."""
    return np.array(keys, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Slate:
    """The games of one sport on one or more days, in a fixed order (the columns of per-game scores).

    A backtest scores a span of days at once: each game is seen as of its own date, and what is
    computed per day (team values, league means) is computed per distinct date of the slate."""

    day: np.ndarray
    """Day number of each game's date (see :func:`domain.models.features.day_number`)."""
    home: pl.Series
    away: pl.Series
    dates: np.ndarray
    """The distinct day numbers, ascending."""
    date_of: np.ndarray
    """Each game's position in ``dates``."""

    @classmethod
    def of(cls, day: np.ndarray, home: pl.Series, away: pl.Series) -> Slate:
        dates, date_of = np.unique(day, return_inverse=True)
        return cls(day, home, away, dates, date_of.reshape(-1))


@dataclass(frozen=True, eq=False)
class SourceDay:
    """What a scorer may read: one sport's games of a span of days and one market's current lines."""

    tables: Tables
    """Every table; the features built from them see nothing on or after a game's date."""
    sport: str
    market: str
    slate: Slate
    games: pl.DataFrame
    """The span's games in slate order: ``game`` (their index), ``game_id``, ``cutoff_time``, ..."""
    lines: pl.DataFrame
    """The current line of each game x bookmaker of the market (the rows of a score matrix)."""
    line_game: np.ndarray
    """The game (index into ``games``) of each line."""
    snapshots: pl.DataFrame
    """Every snapshot of the span's games, with their ``game`` and ``cutoff_time``; later ones too."""
    custom_scores: pl.DataFrame | None
    """The span's custom-dataset scores (``domain.models.sources.custom.CUSTOM_SCORES``), if any."""
    shared: dict[str, Any] = field(default_factory=dict)
    """Memo shared by the span's markets (see :meth:`memo`)."""
    members: pl.DataFrame | None = None
    """Analyses of the span that model sources read (``domain.models.sources.model.MEMBER_COLUMNS``)."""

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per sport and span: what does not depend on the market is computed once."""
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]


@dataclass(frozen=True, eq=False)
class SourceKind(Generic[P]):
    """One kind of data source (see the module docstring for how the engine drives it)."""

    parameters: type[SourceBase]
    """The kind's settings in a model config (its ``kind`` is the kind's name)."""
    key: Callable[[Mapping[str, Any], str, Mapping[str, Any]], Hashable]
    """``key(source, source_name, model)`` from config payloads (``ModelConfig.to_payload()``
    shape): the parameters that decide the source's scores; sources with equal keys are scored once."""
    prepare: Callable[[list[Any]], P]
    """What ``score`` reads about the batch's distinct keys (in interning order), built once."""
    score: Callable[[P, np.ndarray, SourceDay], np.ndarray]
    """``score(prepared, used, day)``: games (or lines, see ``by_line``) of the span x keys ``used``
    (indices, ascending)."""
    builtin: bool = True
    """Configured under its own name; the one kind that is not takes every other source name."""
    by_line: bool = False
    """``score`` gives a row per current line (the score depends on the bookmaker's line), not per game."""

    @property
    def name(self) -> str:
        return self.parameters.kind
