"""What the two box-score kinds share (team_stats, player_stats): field lists, z-scores, averaging.

Both score a list of catalogue fields: each field's per-team value as of the day becomes a z-score
against the league (:class:`FieldValues`), and the source's score is the mean of its fields' scores
that are not missing. A config is split into keys ``(field, *parameters)`` so that a field shared by
many configs is computed once (:class:`FieldConfigs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, Field

from domain.models.catalogue import FieldKind, fields_of, normalise_field_name
from domain.models.config_base import ConfigError, ConfigProblem
from domain.models.sources.base import SourceBase, SourceDay

FLAT_STD = 1e-10
"""A league whose per-team values agree to this relative precision has no spread to speak of: every
z-score is 0 (a neutral field) instead of rounding noise blown up by a near-zero deviation."""


def _normalise_fields(names: tuple[str, ...]) -> tuple[str, ...]:
    normalised = tuple(normalise_field_name(n) for n in names)
    problems = [
        ConfigProblem(f"[{i}]", f"{names[i]!r} repeats a field listed earlier; list each field once")
        for i, name in enumerate(normalised)
        if name in normalised[:i]
    ]
    if problems:
        raise ConfigError(problems)
    return normalised


FieldList = Annotated[
    tuple[str, ...],
    Field(min_length=1, description="Catalogue field names of the model's sport; case-insensitive"),
    AfterValidator(_normalise_fields),
]


class FieldsSource(SourceBase):
    """A source over catalogue fields of one kind (team or player box scores)."""

    field_kind: ClassVar[FieldKind]
    fields: FieldList

    @classmethod
    def available_for(cls, sport: str) -> bool:
        """Only where the sport's catalogue has fields of the kind."""
        return bool(fields_of(sport, cls.field_kind))

    def sport_problems(self, sport: str) -> list[ConfigProblem]:
        """Fields must come from the sport's catalogue."""
        allowed = fields_of(sport, self.field_kind)
        if not self.available_for(sport):
            return [
                ConfigProblem(
                    "",
                    f"{self.kind} is not available for {sport}: its history has no {self.field_kind} "
                    "box scores; remove the source",
                )
            ]
        return [
            ConfigProblem(
                f"fields[{i}]",
                f"unknown {self.field_kind} field {field!r} for {sport}; allowed: {', '.join(allowed)}",
            )
            for i, field in enumerate(self.fields)
            if field not in allowed
        ]


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


def _pick(values: np.ndarray, date: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per key, entity ``index`` of ``values`` (key x date x entity) as of ``date`` (one pair per
    game), NaN where the index is -1 (an entity without history)."""
    if values.shape[2] == 0:
        return np.full((values.shape[0], len(index)), np.nan)
    return np.where(index >= 0, values[:, date, np.maximum(index, 0)], np.nan)


@dataclass(frozen=True, eq=False)
class FieldConfigs:
    """Distinct field-list configs of one source kind (team_stats or player_stats), split into keys
    ``(field, *parameters)`` that are scored once each: config ``c`` averages keys ``members[c]``
    (padded with -1). Built once per batch, with the keys' fields and parameters as arrays, so that
    a span reads them without a Python pass over thousands of keys."""

    keys: tuple[tuple, ...]
    """Sorted, so each field's keys are one run (see :meth:`by_field`)."""
    members: np.ndarray
    fields: tuple[str, ...]
    """The distinct fields, sorted."""
    field: np.ndarray
    """Each key's field (index into ``fields``)."""
    parameters: tuple[np.ndarray, ...]
    """Each key's parameters after the field, one array per position."""

    @classmethod
    def of(cls, params: Sequence[tuple]) -> FieldConfigs:
        """From ``(fields, *parameters)`` tuples."""
        keys = sorted({(f, *p[1:]) for p in params for f in p[0]})
        row = {k: i for i, k in enumerate(keys)}
        members = np.full((len(params), max((len(p[0]) for p in params), default=1)), -1, dtype=np.int64)
        for c, (fields, *rest) in enumerate(params):
            members[c, : len(fields)] = [row[(f, *rest)] for f in fields]
        names = sorted({k[0] for k in keys})
        field = np.searchsorted(np.array(names, dtype=object), np.array([k[0] for k in keys], dtype=object))
        width = len(keys[0]) - 1 if keys else 0
        parameters = tuple(np.array([k[1 + i] for k in keys]) for i in range(width))
        return cls(tuple(keys), members, tuple(names), field.astype(np.int64), parameters)

    def by_field(self) -> list[tuple[str, slice]]:
        """Each field and the run of its keys."""
        bounds = np.searchsorted(self.field, np.arange(len(self.fields) + 1))
        return [(name, slice(int(bounds[i]), int(bounds[i + 1]))) for i, name in enumerate(self.fields)]


def mean_over_fields(scores: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Source score per game x config: the mean of its fields' scores (``scores``: game x key) that
    are not missing (the seed's averaging); missing when all of them are. ``members`` as in
    :class:`FieldConfigs`. The fields are added in config order, one slot at a time, as the scalar
    reference does, whatever the span (numpy's sum over a slot axis turned to pairwise summation
    when a span had one game, which moved the last bit for configs of nine fields or more); missing
    scores are set to 0 on the keys, which are few, not on every config's copy of them."""
    valid = ~np.isnan(scores)
    filled = np.hstack([np.where(valid, scores, 0.0), np.zeros((len(scores), 1))])  # -1: nothing
    present = np.hstack([valid, np.zeros((len(scores), 1), dtype=bool)]).astype(np.float64)
    total = np.zeros((len(scores), len(members)))
    count = np.zeros(total.shape)
    for slot in members.T:
        total += np.take(filled, slot, axis=1)  # np.take: a third of indexing's time here
        count += np.take(present, slot, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


@dataclass(frozen=True, eq=False)
class FieldValues:
    """Every field key's per-team z-score as of each date of a slate, for one source kind (team_stats
    or player_stats). Markets differ only in how z-scores become scores, so a span computes them once."""

    configs: FieldConfigs
    z: np.ndarray
    """Key x date x team (:func:`z_scores` of the teams' values as of each date); NaN where a team
    has no value."""
    lower_is_better: np.ndarray
    orientation: np.ndarray
    home: np.ndarray
    """Team index of each game's home team (-1: a team without history)."""
    away: np.ndarray
    date_of: np.ndarray
    """Each game's date (index into the slate's dates)."""

    @classmethod
    def of(
        cls,
        values: np.ndarray,
        sport: str,
        kind: FieldKind,
        configs: FieldConfigs,
        home: np.ndarray,
        away: np.ndarray,
        date_of: np.ndarray,
    ) -> FieldValues:
        """From per-team ``values`` (key x date x team). A batch may hold another sport's fields:
        their values are all missing here, so they take neutral flags."""
        specs = [fields_of(sport, kind).get(name) for name in configs.fields]
        lower = np.array([s is not None and s.lower_is_better for s in specs], dtype=bool)[configs.field]
        orientation = np.array([0.0 if s is None else s.total_orientation for s in specs])[configs.field]
        keys, dates, teams = values.shape
        z = z_scores(values.reshape(keys * dates, teams)).reshape(values.shape)
        return cls(configs, z, lower, orientation, home, away, date_of)

    @cached_property
    def teams(self) -> tuple[np.ndarray, np.ndarray]:
        """Each key's z-score of each game's home team and of its away team (key x game)."""
        return _pick(self.z, self.date_of, self.home), _pick(self.z, self.date_of, self.away)

    @cached_property
    def side_scores(self) -> np.ndarray:
        """Field scores of ``spreads`` and ``h2h`` (game x key): ``sigmoid(z_home - z_away)``, z
        negated where lower is better; computed once for both markets."""
        z_home, z_away = self.teams
        return sigmoid(np.where(self.lower_is_better, -1.0, 1.0)[:, None] * (z_home - z_away)).T

    @cached_property
    def total_scores(self) -> np.ndarray:
        """Field scores of ``totals`` (game x key): ``sigmoid(orientation * (z_home + z_away))``."""
        z_home, z_away = self.teams
        return sigmoid(self.orientation[:, None] * (z_home + z_away)).T

    def scores(self, market: str, which: np.ndarray) -> np.ndarray:
        """Source scores per game x config ``which`` (indices into ``configs``): the mean of their
        field scores."""
        fields = self.total_scores if market == "totals" else self.side_scores
        return mean_over_fields(fields, self.configs.members[which])


def normalised_fields(source: Mapping[str, Any]) -> tuple[str, ...]:
    """A stored source's field names as its parameters model holds them."""
    return tuple(normalise_field_name(f) for f in source["fields"])


def day_scores(day: SourceDay, kind: str, values: Callable[[], FieldValues], used: np.ndarray) -> np.ndarray:
    """Scores per game of the span x config ``used``; the fields' values (``values()``) are computed
    once per span, since every market shares them."""
    return day.memo(kind, values).scores(day.market, used)
