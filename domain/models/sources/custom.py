"""Custom data: a field of one of the creator's datasets, scored by the datasets stage.

The one kind that is not built in: every source name other than a built-in kind's is a custom
source. Its scores depend on the dataset's rows, so the datasets stage computes them
(``domain.datasets.transforms``) and hands them over as :data:`CUSTOM_SCORES`; a custom source is
its own key (model version and source name) and scoring looks its scores up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from domain.datasets.formula import check_formula
from domain.models.config_base import ConfigError, ConfigProblem, Finite, Identifier
from domain.models.sources.base import SourceBase, SourceDay, SourceKind

Transformation = Literal["linear", "threshold", "percentile", "custom_formula"]


@dataclass(frozen=True)
class TransformationSpec:
    """What a transformation does (SPEC 4, "custom data") and the settings it needs."""

    description: str
    needs: tuple[str, ...]


TRANSFORMATIONS: dict[Transformation, TransformationSpec] = {
    "linear": TransformationSpec(
        "(value - min_value) / (max_value - min_value), clamped to [0, 1]",
        ("field", "min_value", "max_value"),
    ),
    "threshold": TransformationSpec(
        "1 when the value is above the threshold, else 0", ("field", "threshold")
    ),
    "percentile": TransformationSpec(
        "the value's rank among all of the dataset's values of the field (ties count half)", ("field",)
    ),
    "custom_formula": TransformationSpec(
        "an expression over the dataset's fields (formula grammar), clamped to [0, 1]", ("formula",)
    ),
}
"""Every transformation with the settings it needs; the validator and the builder catalogue read it."""

_NEEDS = {
    "field": "the dataset field to score",
    "min_value": "both min_value and max_value, with min_value < max_value",
    "max_value": "both min_value and max_value, with min_value < max_value",
    "threshold": "a threshold value",
    "formula": "a formula",
}

CUSTOM_SCORES: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "source_name": pl.String(),
    "game_id": pl.String(),
    "score": pl.Float64(),
}
"""Custom-dataset source scores in [0, 1] (null = missing), computed by the datasets stage."""

_SOURCE = ("model_id", "version", "source_name")
"""The columns of :data:`CUSTOM_SCORES` that say whose source a score is."""


class CustomDataSource(SourceBase):
    """A field of one of the creator's datasets, transformed to a score in [0, 1]."""

    kind: ClassVar[str] = "custom"
    dataset_id: Identifier
    field: str | None = Field(default=None, description="Required except for custom_formula")
    transformation: Transformation
    min_value: Finite | None = Field(default=None, description="linear: value scored 0")
    max_value: Finite | None = Field(default=None, description="linear: value scored 1")
    threshold: Finite | None = Field(default=None, description="threshold: values above it score 1")
    formula: str | None = Field(
        default=None, description="custom_formula: expression over fields (SPEC 7's formula grammar)"
    )
    invert: bool = Field(default=False, description="Score 1 - s instead of s")

    @field_validator("formula")
    @classmethod
    def _in_the_grammar(cls, formula: str | None) -> str | None:
        """The grammar and its limits, checked when the config is parsed (whatever path it came by);
        the names it reads are checked against the dataset by ``validate_against``."""
        if formula is not None:
            check_formula(formula, None)
        return formula

    @model_validator(mode="after")
    def _parameters_for_transformation(self) -> CustomDataSource:
        t = self.transformation
        problems = [
            ConfigProblem(name, f"transformation {t} needs {_NEEDS[name]}")
            for name in TRANSFORMATIONS[t].needs
            if getattr(self, name) in (None, "")
        ]
        if t == "linear" and not problems and not self.min_value < self.max_value:  # type: ignore[operator]
            problems.append(
                ConfigProblem(
                    "max_value",
                    f"linear needs min_value < max_value; got min_value {self.min_value} and "
                    f"max_value {self.max_value}",
                )
            )
        if problems:
            raise ConfigError(problems)
        return self


def key(source: Mapping[str, Any], name: str, model: Mapping[str, Any]) -> tuple[str, int, str]:
    """(model_id, version, source_name): every custom source has scores of its own."""
    return model["model_id"], model.get("version", 1), name


def prepare(keys: list[tuple[str, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(keys, schema={c: CUSTOM_SCORES[c] for c in _SOURCE}, orient="row")


def score(sources: pl.DataFrame, used: np.ndarray, day: SourceDay) -> np.ndarray:
    """The given scores per game of the span x source ``used``; NaN where none was given."""
    return day.memo(CustomDataSource.kind, lambda: given_scores(sources, day))[:, used]


def given_scores(sources: pl.DataFrame, day: SourceDay) -> np.ndarray:
    """The given scores of every custom source of the batch per game of the span, looked up once
    for all the span's markets (the join with the given scores is the kind's whole cost)."""
    block = np.full((day.games.height, sources.height), np.nan)
    if day.custom_scores is not None and not day.custom_scores.is_empty():
        given = day.custom_scores.select(list(CUSTOM_SCORES)).cast(pl.Schema(CUSTOM_SCORES))
        games = pl.Enum(day.games["game_id"])  # its physical codes are the games' indices
        found = (
            sources.with_row_index("position")
            .join(given, on=list(_SOURCE))
            .select("position", pl.col("game_id").cast(games, strict=False).to_physical(), "score")
            .drop_nulls()
        )
        game = found["game_id"].to_numpy().astype(np.int64)
        block[game, found["position"].to_numpy()] = found["score"].to_numpy()
    return block


KIND = SourceKind(CustomDataSource, key, prepare, score, builtin=False)
