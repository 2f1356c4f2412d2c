"""Custom-dataset sources: a user dataset's values turned into directional scores per game (SPEC 4).

For every enabled custom source of the due models and every game to score, the score is built in
the seed's order (``evaluate_custom_data``), then SPEC 4's additions:

1. the dataset row(s) the game sees, *as of the game date* (point in time, below);
2. the transformation of the row's value:
   ``linear``: ``(value - min_value) / (max_value - min_value)``;
   ``threshold``: 1 if ``value > threshold`` else 0 (equal is not above: 0);
   ``percentile``: ``(count_less + 0.5 * count_equal) / n`` among *all* of the dataset's values of
   the field (SPEC: "among all of the dataset's values", so the whole stored column, later rows
   included; ties counted half);
   ``custom_formula``: the checked formula over the row's fields, compiled by
   :func:`domain.datasets.formula.to_polars` (a row where it fails is missing, never an error);
3. ``invert``: ``1 - s``; then the clamp to [0, 1];
4. team-level data only: the home and away teams' scores combine as
   ``0.5 + (s_home - s_away) / 2`` for side markets (``h2h``, ``spreads``, as SPEC 4) and
   ``(s_home + s_away) / 2`` for ``totals`` (SPEC is silent there; this follows its
   historical-performance rule: both teams scoring high supports the over). Either side missing makes
   the source missing. Inverting before combining equals inverting the combined score.

A null, NaN or infinite value (or a field the dataset does not have) makes the score missing.

Which rows a game sees:

- **game-level** (key ``game_id``): the dataset's rows with that ``game_id``. When the dataset has a
  date column (``date`` if it holds dates, else its first date-typed column), rows dated after the
  game date are not used; undated rows are. Several candidate rows (duplicate keys lower the
  quality score but do not reject a file) resolve to the latest date, then to the last row in file
  order (a later row is taken to correct an earlier one).
- **team-level** (keys ``team``, ``date``): per team, the latest row with ``date <= game_date``
  ("joined as of the game date": a row dated on the game day describes the team on that day, e.g.
  rest days); a row dated after the game is never used. Team names are mapped to the sport's
  canonical codes (``Sport.team_code_expr``; unknown names are kept as written), so
  ``Boston Celtics`` and ``BOS`` both reach Boston's games. Duplicate (team, date) rows resolve to
  the last in file order.
- **player-level** data is not supported by models yet (config validation refuses it): no score.

Vectorised: sources are grouped into distinct transforms (dataset, transformation, field or formula,
parameters, invert), each scored once per selected dataset row; the dataset rows a day's games need
are picked by joins (an as-of join for team-level data), and every transformation runs over one long
frame whose parameters are columns (so ``x / (max - min)`` is a true division, bit for bit the
scalar one, not polars' multiply-by-reciprocal shortcut for literals).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from domain.datasets.formula import FormulaError, check_formula, to_polars
from domain.datasets.validation import KEY_FIELDS
from domain.models.config import BUILTIN_SOURCES, CustomDataSource, DataType, ModelConfig
from domain.models.sources.custom import CUSTOM_SCORES
from domain.sports import SPORTS

CUSTOM_SOURCES: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "market": pl.String(),
    "source_name": pl.String(),
    "config": pl.String(),
}
"""One row per enabled custom source of a model version; ``config`` is the source's JSON
(``CustomDataSource`` fields, as in ``ModelConfig.to_payload()``)."""

_CONFIG = pl.Struct(
    {
        "enabled": pl.Boolean,
        "dataset_id": pl.String,
        "field": pl.String,
        "transformation": pl.String,
        "min_value": pl.Float64,
        "max_value": pl.Float64,
        "threshold": pl.Float64,
        "formula": pl.String,
        "invert": pl.Boolean,
    }
)
_TRANSFORM_KEY = [
    "dataset_id",
    "transformation",
    "field",
    "formula",
    "min_value",
    "max_value",
    "threshold",
    "invert",
]
_ROW = "__row__"
"""Row number of a dataset row in file order (a name no user field is expected to take)."""
_DATE_TYPES = (pl.Date, pl.Datetime)
_DEFAULT_MARKET: str = ModelConfig.model_fields["market"].default
_DEFAULT_INVERT: bool = CustomDataSource.model_fields["invert"].default


@dataclass(frozen=True, eq=False)
class DatasetRows:
    """A dataset as stored: its data type and its typed rows (``domain.datasets.validation.typed_frame``) in
    file order, key columns and fields. Percentiles read the whole frame."""

    data_type: DataType
    frame: pl.DataFrame

    def numeric_fields(self) -> tuple[str, ...]:
        """The fields a transformation may score: numeric or boolean columns that are not keys."""
        keys = set(KEY_FIELDS[self.data_type])
        return tuple(
            name
            for name, dtype in self.frame.schema.items()
            if name not in keys and (dtype.is_numeric() or dtype == pl.Boolean)
        )


def custom_sources(payloads: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """The enabled custom sources (:data:`CUSTOM_SOURCES`) of stored config payloads.

    One pass over configs (not games); payloads were validated when stored, so no pydantic here.
    """
    rows = [
        {
            "model_id": payload["model_id"],
            "version": payload.get("version", 1),
            "market": payload.get("market", _DEFAULT_MARKET),
            "source_name": name,
            "config": json.dumps(source),
        }
        for payload in payloads
        for name, source in payload["data_sources"].items()
        if name not in BUILTIN_SOURCES and source is not None and source.get("enabled", True)
    ]
    return pl.DataFrame(rows, schema=CUSTOM_SOURCES)


def custom_scores(
    models: pl.DataFrame, datasets: Mapping[str, DatasetRows], games: pl.DataFrame
) -> pl.DataFrame:
    """Scores (:data:`CUSTOM_SCORES`) of the custom sources ``models`` (:data:`CUSTOM_SOURCES`) on
    ``games`` (``domain.tables.schemas.GAMES`` rows of the day or days to score).

    ``datasets`` holds the stored rows of the datasets the sources name; a source whose dataset is
    absent scores nothing. Rows are given only for games a dataset row reaches; their score is null
    where the value is missing or the formula fails on it.
    """
    sources = _sources(models)
    if sources.is_empty() or games.is_empty():
        return pl.DataFrame(schema=CUSTOM_SCORES)
    transforms = sources.select(_TRANSFORM_KEY).unique(maintain_order=True).with_row_index("transform")
    per_game = [
        _dataset_scores(datasets[dataset_id], group, games)
        for (dataset_id,), group in transforms.partition_by("dataset_id", as_dict=True).items()
        if dataset_id in datasets and datasets[dataset_id].data_type != "player_level"
    ]
    if not per_game:
        return pl.DataFrame(schema=CUSTOM_SCORES)
    return (
        sources.join(transforms, on=_TRANSFORM_KEY, nulls_equal=True)
        .join(pl.concat(per_game), on="transform")
        .with_columns(
            pl.when(pl.col("market") == "totals")
            .then(pl.col("score_totals"))
            .otherwise(pl.col("score_side"))
            .alias("score")
        )
        .select(list(CUSTOM_SCORES))
        .cast(pl.Schema(CUSTOM_SCORES))
    )


def _sources(models: pl.DataFrame) -> pl.DataFrame:
    """Enabled sources with their parameters as columns; parameters a transformation ignores are
    nulled so they cannot split one transform into several."""
    t = pl.col("transformation")
    return (
        models.select(
            "model_id", "version", "market", "source_name", pl.col("config").str.json_decode(_CONFIG)
        )
        .unnest("config")
        .filter(pl.col("enabled").fill_null(True))
        .select(
            "model_id",
            "version",
            pl.col("market").fill_null(_DEFAULT_MARKET),
            "source_name",
            "dataset_id",
            "transformation",
            pl.when(t != "custom_formula").then("field").alias("field"),
            pl.when(t == "custom_formula").then("formula").alias("formula"),
            pl.when(t == "linear").then("min_value").alias("min_value"),
            pl.when(t == "linear").then("max_value").alias("max_value"),
            pl.when(t == "threshold").then("threshold").alias("threshold"),
            pl.col("invert").fill_null(_DEFAULT_INVERT),
        )
    )


# ---- one dataset ---------------------------------------------------------------------------------


def _dataset_scores(rows: DatasetRows, transforms: pl.DataFrame, games: pl.DataFrame) -> pl.DataFrame:
    """``(transform, game_id, score_side, score_totals)`` for one dataset's transforms."""
    frame = rows.frame.with_row_index(_ROW)
    if rows.data_type == "game_level":
        picked = _game_rows(frame, games).with_columns(pl.lit("game").alias("side"))
    else:
        picked = _team_rows(frame, games)
    row_scores = _row_scores(rows, frame, picked[_ROW].unique().sort(), transforms)
    scored = picked.join(row_scores, on=_ROW).select("game_id", "side", "transform", "s")
    if rows.data_type == "game_level":
        return scored.select(
            "transform", "game_id", pl.col("s").alias("score_side"), pl.col("s").alias("score_totals")
        )
    home = scored.filter(pl.col("side") == "home").select("game_id", "transform", pl.col("s").alias("home"))
    away = scored.filter(pl.col("side") == "away").select("game_id", "transform", pl.col("s").alias("away"))
    both = home.join(away, on=["game_id", "transform"])
    return both.select(
        "transform",
        "game_id",
        (0.5 + (pl.col("home") - pl.col("away")) / 2).alias("score_side"),
        ((pl.col("home") + pl.col("away")) / 2).alias("score_totals"),
    )


def _as_date(name: str, dtype: pl.DataType) -> pl.Expr:
    """A date column as ``pl.Date`` (a date-time keeps its day; text is parsed, null if it fails)."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.date()
    return pl.col(name).cast(pl.Date, strict=False)


def _date_column(frame: pl.DataFrame) -> str | None:
    """``date`` when it holds dates, else the first date-typed column (the freshness rule's choice,
    limited to columns that are dates in the stored rows)."""
    dated = [name for name, dtype in frame.schema.items() if isinstance(dtype, _DATE_TYPES)]
    return "date" if "date" in dated else next(iter(dated), None)


def _game_rows(frame: pl.DataFrame, games: pl.DataFrame) -> pl.DataFrame:
    """``(game_id, row)``: per game, the row it sees (see the module docstring)."""
    when = _date_column(frame)
    row_date = _as_date(when, frame.schema[when]) if when else pl.lit(None, dtype=pl.Date)
    candidates = frame.select(_ROW, pl.col("game_id").cast(pl.String), row_date.alias("row_date")).join(
        games.select("game_id", "game_date"), on="game_id"
    )
    return (
        candidates.filter(pl.col("row_date").is_null() | (pl.col("row_date") <= pl.col("game_date")))
        .sort("row_date", _ROW, nulls_last=False)
        .group_by("game_id")
        .agg(pl.col(_ROW).last())
    )


def _team_rows(frame: pl.DataFrame, games: pl.DataFrame) -> pl.DataFrame:
    """``(game_id, side, row)``: per game and side (home, away), the team's latest row dated on or
    before the game date."""
    sides = (
        games.select("game_id", "sport", "game_date", home=pl.col("home_team"), away=pl.col("away_team"))
        .unpivot(
            ["home", "away"], index=["game_id", "sport", "game_date"], variable_name="side", value_name="team"
        )
        .sort("game_date")
    )
    keyed = frame.select(
        _ROW, pl.col("team").cast(pl.String).str.strip_chars(), _as_date("date", frame.schema["date"])
    ).drop_nulls(["team", "date"])
    per_sport = pl.concat(
        [
            keyed.with_columns(
                pl.lit(sport, dtype=pl.String).alias("sport"),
                pl.coalesce(SPORTS[sport].team_code_expr(pl.col("team")), pl.col("team")).alias("team")
                if sport in SPORTS
                else pl.col("team"),
            )
            for sport in sides["sport"].unique().to_list()
        ],
        how="vertical",
    )
    latest = per_sport.sort(_ROW).unique(["sport", "team", "date"], keep="last").sort("date")
    return (
        sides.join_asof(
            latest,
            left_on="game_date",
            right_on="date",
            by=["sport", "team"],
            strategy="backward",
            check_sortedness=False,  # both sides sorted on the date just above
        )
        .filter(pl.col(_ROW).is_not_null())
        .select("game_id", "side", _ROW)
    )


def _input_of() -> pl.Expr:
    """The value a transform reads: a field, a field's percentile, or a formula's result."""
    t = pl.col("transformation")
    return (
        pl.when(t == "custom_formula")
        .then(pl.lit("formula:") + pl.col("formula"))
        .when(t == "percentile")
        .then(pl.lit("percentile:") + pl.col("field"))
        .otherwise(pl.lit("field:") + pl.col("field"))
    )


def _number(expr: pl.Expr) -> pl.Expr:
    """A value as a finite float, else null."""
    value = expr.cast(pl.Float64)
    return pl.when(value.is_finite()).then(value)


def _percentiles(frame: pl.DataFrame, field: str, rows: pl.Series) -> pl.Series:
    """SPEC 4's percentile of ``rows``' values among every value of the field in ``frame``."""
    column = frame.select(_number(pl.col(field))).to_series()
    everything = column.drop_nulls().sort().to_numpy()
    values = column.gather(rows).to_numpy()  # null -> NaN
    less = np.searchsorted(everything, values, side="left")
    equal = np.searchsorted(everything, values, side="right") - less
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (less + 0.5 * equal) / len(everything)
    return pl.Series(np.where(np.isnan(values), np.nan, share), dtype=pl.Float64).fill_nan(None)


def _row_scores(
    rows: DatasetRows, frame: pl.DataFrame, needed: pl.Series, transforms: pl.DataFrame
) -> pl.DataFrame:
    """``(row, transform, s)``: every transform on the ``needed`` rows, inverted and clamped."""
    fields = set(rows.numeric_fields())
    transforms = transforms.with_columns(_input_of().alias("input"))
    picked = frame.filter(pl.col(_ROW).is_in(needed.implode()))  # in row order, as ``needed``
    inputs: dict[str, pl.Expr | pl.Series] = {}
    for name, transformation, field, formula in (
        transforms.select("input", "transformation", "field", "formula").unique().iter_rows()
    ):
        if transformation == "custom_formula":
            try:
                inputs[name] = to_polars(check_formula(formula, sorted(fields)))
            except FormulaError:  # the dataset changed under a stored formula: missing, not a crash
                inputs[name] = pl.lit(None, dtype=pl.Float64)
        elif field not in fields:
            inputs[name] = pl.lit(None, dtype=pl.Float64)
        elif transformation == "percentile":
            inputs[name] = _percentiles(frame, field, needed)
        else:
            inputs[name] = _number(pl.col(field))
    values = picked.select(
        _ROW,
        *[
            (value.alias(name) if isinstance(value, pl.Expr) else pl.lit(value).alias(name))
            for name, value in inputs.items()
        ],
    ).unpivot(index=_ROW, variable_name="input", value_name="value")
    t, v = pl.col("transformation"), pl.col("value")
    raw = (
        pl.when(t == "linear")
        .then((v - pl.col("min_value")) / (pl.col("max_value") - pl.col("min_value")))
        .when(t == "threshold")
        .then((v > pl.col("threshold")).cast(pl.Float64))
        .otherwise(v)
    )
    return values.join(transforms, on="input").select(
        _ROW, "transform", pl.when(pl.col("invert")).then(1.0 - raw).otherwise(raw).clip(0.0, 1.0).alias("s")
    )
