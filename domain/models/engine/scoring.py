"""The scoring engine: every due model version x game x bookmaker of a day in one vectorised pass.

SPEC section 4. For each (sport, market) the day's distinct source parameter sets are scored once,
each by its kind's scorer (:mod:`domain.models.sources`), into a matrix ``S`` (one row per current
line, one column per distinct source: :func:`source_matrices`). Each model is at most five indices
into ``S`` and five weights, so the weighted average of every model on every line is one gather and
two sums over the source axis, done in chunks of models to bound memory:

    p = sum_i(s_i * w_i) / sum_i(w_i)     over the model's sources that are not missing

Custom-dataset sources are scored by the datasets stage and arrive as a frame; dynamic weighting
multipliers arrive as a frame made by :func:`multipliers_from_history` from the model's own past
analyses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import polars as pl

from domain.markets.grading import FIRST_SIDE, SECOND_SIDE, first_side_margin
from domain.models.config import MAX_ENABLED_SOURCES, ModelConfig
from domain.models.features import Tables
from domain.models.sources import KINDS, SourceDay, in_order, kind_index
from domain.models.sources.base import Slate
from domain.models.sources.model import MEMBER_COLUMNS, layers
from domain.tables.schemas import UTC_TS

SLOTS = MAX_ENABLED_SOURCES
CHUNK_CELLS = 4_000_000
"""Source scores gathered per chunk of models (models x slots x lines); bounds memory at ~32 MB."""

DYNAMIC_WINDOW_DAYS = 30
DYNAMIC_PRIOR_HITS, DYNAMIC_PRIOR_CALLS = 10, 20
MULTIPLIER_MIN, MULTIPLIER_MAX = 0.5, 1.5

ANALYSES: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "sport": pl.String(),
    "market": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "bookmaker": pl.String(),
    "cutoff_time": UTC_TS,
    "snapshot_time": UTC_TS,
    "line": pl.Float64(),
    "price_first": pl.Float64(),
    "price_second": pl.Float64(),
    "p": pl.Float64(),
    "pick": pl.String(),
    "raw_confidence": pl.Float64(),
    "confidence": pl.Float64(),
    "qualifies": pl.Boolean(),
    "pick_price": pl.Float64(),
}
"""One row per model version x game x bookmaker (SPEC section 2 "analysis"). What went into ``p``
is stored once in :data:`SOURCE_SCORES` and :data:`ANALYSIS_WEIGHTS` (:func:`slot_scores` joins
them back)."""

ANALYSIS_KEY = ["model_id", "version", "game_id", "market", "bookmaker"]
"""What identifies an analysis."""

SOURCE_SCORES: dict[str, pl.DataType] = {
    "sport": pl.String(),
    "market": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "bookmaker": pl.String(),
    "cutoff_time": UTC_TS,
    "source": pl.Int64(),
    "score": pl.Float64(),
}
"""One row per distinct source and line (game x market x bookmaker at a cut-off) that the source
scores: every model weighing the same source reads the same row. ``source`` is a 64-bit hash of
its kind and the parameters that decide its scores (:func:`source_id`; ``analysis_weights`` says
which kind); a missing score has no row."""

SOURCE_SCORE_KEY = ["game_id", "market", "bookmaker", "cutoff_time", "source"]

ANALYSIS_WEIGHTS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "sport": pl.String(),
    "market": pl.String(),
    "game_date": pl.Date(),
    "slot": pl.Int8(),
    "source_name": pl.String(),
    "kind": pl.String(),
    "source": pl.Int64(),
    "weight": pl.Float64(),
}
"""One row per model version, game date (with analyses) and source slot, in config order: the
source's weight that day, dynamic multiplier included (a source that does not score a line weighs 0
on it)."""

WEIGHTS_KEY = ["model_id", "version", "game_date", "slot"]


def clustered(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each model version's rows together (a stable sort), the order daily objects
    are stored in: a reader of one model (the API) then skips every other model's row groups (at
    100,000 models, 14 ms instead of 320 ms for one model of a day; the sort costs 1.6 s a day)."""
    return frame.sort("model_id", "version", maintain_order=True)


MULTIPLIERS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "source_name": pl.String(),
    "multiplier": pl.Float64(),
}

SOURCE_CALLS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "source_name": pl.String(),
    "game_date": pl.Date(),
    "hits": pl.Int64(),
    "calls": pl.Int64(),
}


# ---- the batch of model versions -----------------------------------------------------------------


_MODEL_DEFAULTS = {
    name: ModelConfig.model_fields[name].default
    for name in ("market", "dynamic_weighting", "min_confidence", "max_confidence")
}


@dataclass(frozen=True, eq=False)
class ModelBatch:
    """Model versions as arrays: per model, up to :data:`SLOTS` source slots (kind, parameter set,
    weight, dynamic flag, name), padded with kind -1. A slot's kind is its position in
    :data:`domain.models.sources.KINDS`; parameter sets (the kinds' keys) are interned per kind, so a
    set shared by many models is one entry (and one row of source scores per day)."""

    frame: pl.DataFrame
    """Per model: ``model_id`` and ``version``."""
    sport: np.ndarray
    """Fixed-width strings, as ``market``: comparing them is one vectorised pass (a Python object
    per model made telling 100,000 models apart by market take milliseconds)."""
    market: np.ndarray
    min_confidence: np.ndarray
    max_confidence: np.ndarray
    n_sources: np.ndarray
    kind: np.ndarray
    param: np.ndarray
    weight: np.ndarray
    dynamic: np.ndarray
    name: np.ndarray
    source_names: tuple[str, ...]
    source: np.ndarray
    """Per model and slot, its distinct source's :func:`source_id` (0 where empty)."""
    prepared: tuple[Any, ...]
    """Per kind, its ``prepare`` of the distinct parameter sets (which the slots' ``param`` index)."""
    layer: np.ndarray
    """Per model, its dependency layer (:func:`domain.models.sources.model.layers`): ensembles are
    scored after the members of the batch they use, over their analyses."""

    def __len__(self) -> int:
        return len(self.sport)

    @property
    def uses_dynamic_weighting(self) -> bool:
        return bool(self.dynamic.any())

    @property
    def layers(self) -> int:
        """How many dependency layers the batch has (1 without ensembles over its own models)."""
        return int(self.layer.max()) + 1 if len(self.layer) else 1

    @classmethod
    def from_configs(cls, configs: Iterable[ModelConfig]) -> ModelBatch:
        """From validated configs (the API's on-demand runs, tests)."""
        return cls.from_payloads([c.to_payload() for c in configs])

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, config_column: str = "config_json") -> ModelBatch:
        """From ``model_versions`` rows (``domain.models.registry.MODEL_VERSIONS``): one stored, validated
        config JSON document per row."""
        return cls.from_payloads([json.loads(doc) for doc in frame[config_column]])

    @classmethod
    def from_payloads(cls, payloads: Sequence[Mapping[str, Any]]) -> ModelBatch:
        """From config payloads that were validated when stored (``ModelConfig.to_payload()`` shape).

        Deliberately no pydantic here: preparing 100,000 versions must take a second, not minutes.
        Defaults come from the pydantic models, so the two never drift apart.
        """
        n = len(payloads)
        kind = np.full((n, SLOTS), -1, dtype=np.int64)
        param = np.zeros((n, SLOTS), dtype=np.int64)
        weight = np.zeros((n, SLOTS))
        dynamic = np.zeros((n, SLOTS), dtype=bool)
        name = np.zeros((n, SLOTS), dtype=np.int64)
        n_sources = np.zeros(n, dtype=np.int64)
        interned: list[dict[Hashable, int]] = [{} for _ in KINDS]
        names: dict[str, int] = {}
        for m, payload in enumerate(payloads):
            sources = payload["data_sources"]
            model_dynamic = payload.get("dynamic_weighting", _MODEL_DEFAULTS["dynamic_weighting"])
            slot = 0
            for source_name in in_order(sources):
                source = sources[source_name]
                if source is None or not source.get("enabled", True):
                    continue
                k = kind_index(source_name, source)
                kind[m, slot] = k
                param[m, slot] = _intern(interned[k], KINDS[k].key(source, source_name, payload))
                weight[m, slot] = source["weight"]
                own = source.get("dynamic_weighting")
                dynamic[m, slot] = model_dynamic if own is None else own
                name[m, slot] = names.setdefault(source_name, len(names))
                slot += 1
            n_sources[m] = slot

        def column(key: str, dtype: Any) -> np.ndarray:
            return np.array([p.get(key, _MODEL_DEFAULTS.get(key)) for p in payloads], dtype=dtype)

        source = np.zeros((n, SLOTS), dtype=np.int64)
        for k, keys in enumerate(interned):
            ids = np.array([source_id(KINDS[k].name, key) for key in keys], dtype=np.int64)
            source[kind == k] = ids[param[kind == k]]
        return cls(
            frame=pl.DataFrame(
                {
                    "model_id": [p["model_id"] for p in payloads],
                    "version": [p.get("version", 1) for p in payloads],
                },
                schema={"model_id": pl.String, "version": pl.Int32},
            ),
            sport=column("sport", str),
            market=column("market", str),
            min_confidence=column("min_confidence", np.float64),
            max_confidence=column("max_confidence", np.float64),
            n_sources=n_sources,
            kind=kind,
            param=param,
            weight=weight,
            dynamic=dynamic,
            name=name,
            source_names=tuple(names),
            source=source,
            prepared=tuple(k.prepare(list(keys)) for k, keys in zip(KINDS, interned, strict=True)),
            layer=layers(payloads),
        )


def _intern(table: dict[Hashable, int], key: Hashable) -> int:
    return table.setdefault(key, len(table))


def source_id(kind: str, key: Hashable) -> int:
    """A distinct source's id in :data:`SOURCE_SCORES`: a 64-bit hash of its kind and key (the
    parameters that decide its scores), the same in every run, so a day re-scored for some models
    meets the rows the others' analyses read. Eight bytes a row, where a readable name took twenty."""
    return _hash64(json.dumps([kind, key]))


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


# ---- scoring a day -------------------------------------------------------------------------------

LINE_COLUMNS = [
    "game_id",
    "game_date",
    "bookmaker",
    "cutoff_time",
    "snapshot_time",
    "line",
    "price_first",
    "price_second",
]


@dataclass(frozen=True, eq=False)
class SourceMatrix:
    """One sport and market of a day (or of a span of days) before weighting: every distinct source
    the models use, scored once against every current line, and each model's slots pointing at its
    sources."""

    sport: str
    market: str
    group: np.ndarray
    """The models (indices into the batch) of this sport and market."""
    lines: pl.DataFrame
    """The current lines (:data:`LINE_COLUMNS`), one per game x bookmaker, in date order."""
    scores: np.ndarray
    """Line x distinct source, NaN = missing (a line's scores are adjacent, as weighting reads them)."""
    sources: np.ndarray
    """Per model of ``group`` and slot, its distinct source (column of ``scores``); -1 where empty."""
    weights: np.ndarray
    """Per model of ``group`` and slot, the weight times any dynamic multiplier; 0 where empty."""


@dataclass(frozen=True)
class Scored:
    """Analyses and what went into them, stored as three tables: :data:`ANALYSES`,
    :data:`SOURCE_SCORES` (once per distinct source and line) and :data:`ANALYSIS_WEIGHTS`."""

    analyses: pl.DataFrame
    source_scores: pl.DataFrame
    weights: pl.DataFrame

    @classmethod
    def empty(cls) -> Scored:
        return cls(
            pl.DataFrame(schema=ANALYSES),
            pl.DataFrame(schema=SOURCE_SCORES),
            pl.DataFrame(schema=ANALYSIS_WEIGHTS),
        )

    @classmethod
    def concat(cls, parts: Sequence[Scored]) -> Scored:
        if not parts:
            return cls.empty()
        return cls(*(pl.concat([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def between(self, start: dt.date, end: dt.date) -> Scored:
        """The rows of games from ``start`` to before ``end``."""
        return Scored(
            *(
                getattr(self, f.name).filter(pl.col("game_date").is_between(start, end, closed="left"))
                for f in fields(self)
            )
        )

    def of_models(self, keys: pl.DataFrame) -> Scored:
        """The rows of the model versions ``keys`` (``model_id``, ``version``) and the scores they read."""
        on = ["model_id", "version"]
        weights = self.weights.join(keys.select(on), on=on, how="semi", maintain_order="left")
        read = self.source_scores.join(
            weights.select("source").unique(), on="source", how="semi", maintain_order="left"
        )
        return Scored(
            self.analyses.join(keys.select(on), on=on, how="semi", maintain_order="left"), read, weights
        )

    @classmethod
    def from_explained(cls, frame: pl.DataFrame) -> Scored:
        """The tables of analyses that carry their sources as lists (:data:`EXPLAINED`: on-demand
        caches, and analyses stored before the tables were split). Each model's sources count as
        distinct (``source`` hashes ``legacy``, model, version and source name), and a slot's weight
        on a day is its largest over the day's lines (a source weighs the same on every line it
        scores)."""
        slots = (
            frame.select(*ANALYSIS_KEY, "sport", "game_date", "cutoff_time", *_EXPLANATION)
            .explode(*_EXPLANATION)
            .with_columns(
                pl.int_range(pl.len()).over(*ANALYSIS_KEY, "cutoff_time").cast(pl.Int8).alias("slot")
            )
            .rename({"source_names": "source_name", "source_scores": "score", "weights": "weight"})
            .filter(pl.col("source_name").is_not_null())
        )
        names = slots.select("model_id", "version", "source_name").unique()
        ids = [_hash64(json.dumps(["legacy", *row])) for row in names.iter_rows()]
        slots = slots.join(
            names.with_columns(
                pl.Series("source", ids, dtype=pl.Int64), pl.lit(None, pl.String).alias("kind")
            ),
            on=["model_id", "version", "source_name"],
            maintain_order="left",
        )
        weights = slots.group_by("model_id", "version", "sport", "market", "game_date", "slot").agg(
            pl.col("source_name", "kind", "source").first(), pl.col("weight").max()
        )
        scores = slots.filter(pl.col("score").is_not_null()).unique(SOURCE_SCORE_KEY, keep="first")
        return cls(
            frame.select(list(ANALYSES)).cast(pl.Schema(ANALYSES)),
            scores.select(list(SOURCE_SCORES)).cast(pl.Schema(SOURCE_SCORES)),
            weights.select(list(ANALYSIS_WEIGHTS)).cast(pl.Schema(ANALYSIS_WEIGHTS)).sort(WEIGHTS_KEY),
        )

    def explained(self) -> pl.DataFrame:
        """The analyses (every column of ``analyses``; :data:`EXPLAINED` for plain analyses), each
        with its sources' names, scores (null = missing) and weights (0 where missing) in config
        order, as one model's reader wants them."""
        slots = (
            slot_scores(self)
            .sort("_row", "slot")
            .group_by("_row", maintain_order=True)
            .agg(
                pl.col("source_name").alias("source_names"),
                pl.col("score").alias("source_scores"),
                pl.col("weight").alias("weights"),
            )
        )
        return (
            self.analyses.with_row_index("_row")
            .join(slots, on="_row", how="left", maintain_order="left")
            .drop("_row")
            .cast({name: EXPLAINED[name] for name in _EXPLANATION})
        )


_EXPLANATION = ("source_names", "source_scores", "weights")
EXPLAINED: dict[str, pl.DataType] = {
    **ANALYSES,
    "source_names": pl.List(pl.String()),
    "source_scores": pl.List(pl.Float64()),
    "weights": pl.List(pl.Float64()),
}
"""Analyses with their sources in config order (:meth:`Scored.explained`)."""


def slot_scores(scored: Scored) -> pl.DataFrame:
    """One row per analysis and source slot: the analysis's key, ``game_date``, ``line``, its row
    number ``_row`` in ``scored.analyses``, ``slot``, ``source_name``, ``source``, the source's
    ``score`` on the analysis's line (null = missing) and its ``weight`` there (0 where missing),
    in no particular order. The one join of the three tables."""
    return (
        scored.analyses.select(*ANALYSIS_KEY, "game_date", "cutoff_time", "line")
        .with_row_index("_row")
        .join(
            scored.weights.select(
                "model_id", "version", "game_date", "slot", "source_name", "source", "weight"
            ),
            on=["model_id", "version", "game_date"],
        )
        .join(scored.source_scores.select(*SOURCE_SCORE_KEY, "score"), on=SOURCE_SCORE_KEY, how="left")
        .with_columns(pl.when(pl.col("score").is_null()).then(0.0).otherwise("weight").alias("weight"))
    )


def score_day(
    models: ModelBatch,
    tables: Tables,
    day: dt.date,
    as_of: dt.datetime | None = None,
    multipliers: pl.DataFrame | None = None,
    custom_scores: pl.DataFrame | None = None,
    members: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Analyses (:data:`ANALYSES`) of every model version for every game of ``day`` in its sport and
    every bookmaker with a current line of its market.

    Cut-off per game = ``min(as_of, commence_time)``; ``as_of=None`` is a backtest (cut-off =
    ``commence_time``); ``as_of`` must be timezone-aware. ``tables`` may hold later data: nothing
    after the cut-off (odds) or on or after ``day`` (results, box scores) is used.
    ``multipliers`` (:data:`MULTIPLIERS`) apply to sources with dynamic weighting on (missing = 1);
    ``custom_scores`` (:data:`domain.models.sources.custom.CUSTOM_SCORES`) give the custom sources'
    scores (no row or a null score = missing). Row order is not part of the contract (rows come
    grouped by layer, sport, market and number of sources). Ensembles are scored after the members
    of the batch they use (:attr:`ModelBatch.layer`), over their analyses of the day; ``members``
    gives the analyses of members outside the batch.
    """
    return _score(models, tables, day, as_of, multipliers, custom_scores, members, explain=False).analyses


def score_day_explained(
    models: ModelBatch,
    tables: Tables,
    day: dt.date,
    as_of: dt.datetime | None = None,
    multipliers: pl.DataFrame | None = None,
    custom_scores: pl.DataFrame | None = None,
    members: pl.DataFrame | None = None,
) -> Scored:
    """:func:`score_day` (same arguments) with the source scores and weights of its analyses: what
    the pipeline stores."""
    return _score(models, tables, day, as_of, multipliers, custom_scores, members, explain=True)


def _score(
    models: ModelBatch,
    tables: Tables,
    day: dt.date,
    as_of: dt.datetime | None,
    multipliers: pl.DataFrame | None,
    custom_scores: pl.DataFrame | None,
    members: pl.DataFrame | None,
    explain: bool,
) -> Scored:
    frames: list[pl.DataFrame] = []
    sources: list[pl.DataFrame] = []
    weights: list[pl.DataFrame] = []
    for layer in range(models.layers):
        given = member_analyses(members, frames)
        for matrix in source_matrices(models, tables, day, as_of, multipliers, custom_scores, given, layer):
            if explain:
                sources.append(source_score_rows(models, matrix))
            for block in weighed_blocks(models, matrix):
                frames.append(analyses_frame(models, matrix, block))
                if explain:
                    weights.append(weight_rows(models, matrix, block))
    empty = Scored.empty()
    return Scored(
        pl.concat(frames) if frames else empty.analyses,
        pl.concat(sources) if sources else empty.source_scores,
        pl.concat(weights) if weights else empty.weights,
    )


def member_analyses(given: pl.DataFrame | None, scored: Sequence[pl.DataFrame]) -> pl.DataFrame | None:
    """What model sources read (:data:`domain.models.sources.model.MEMBER_COLUMNS`): analyses
    handed over and those scored so far in the same pass."""
    frames = [f.select(MEMBER_COLUMNS) for f in ([] if given is None else [given]) + list(scored)]
    return pl.concat(frames) if frames else None


def source_matrices(
    models: ModelBatch,
    tables: Tables,
    day: dt.date,
    as_of: dt.datetime | None = None,
    multipliers: pl.DataFrame | None = None,
    custom_scores: pl.DataFrame | None = None,
    members: pl.DataFrame | None = None,
    layer: int | None = None,
) -> list[SourceMatrix]:
    """The first half of :func:`score_day` (same arguments): per sport and market with models and
    current lines, the distinct sources' scores and the models' slots into them (of the models of
    ``layer`` only, when given)."""
    matrices = span_matrices(models, tables, [day], as_of, custom_scores, members, layer)
    if multipliers is None or not matrices:
        return matrices
    factor = np.where(models.dynamic, _multipliers(models, multipliers), 1.0)
    return [replace(m, weights=m.weights * factor[m.group]) for m in matrices]


def span_matrices(
    models: ModelBatch,
    tables: Tables,
    days: Sequence[dt.date],
    as_of: dt.datetime | None = None,
    custom_scores: pl.DataFrame | None = None,
    members: pl.DataFrame | None = None,
    layer: int | None = None,
) -> list[SourceMatrix]:
    """:func:`source_matrices` of every game of ``days`` at once, each seen as of its own date (and
    cut-off), with the configured weights (no dynamic multipliers: they differ by day). ``members``:
    the analyses model sources read (the members' of the same span)."""
    matrices = []
    chosen = np.ones(len(models), dtype=bool) if layer is None else models.layer == layer
    codes, stride = _slot_codes(models)
    for sport, in_sport in _groups(models.sport, chosen):
        games = (
            tables.games.filter((pl.col("sport") == sport) & pl.col("game_date").is_in(list(days)))
            .sort("game_date", "commence_time", "game_id")
            .with_row_index("game")
            .with_columns(
                (
                    pl.col("commence_time")
                    if as_of is None
                    else pl.min_horizontal("commence_time", pl.lit(as_of).cast(UTC_TS))
                ).alias("cutoff_time")
            )
        )
        if games.is_empty():
            continue
        snapshots = tables.snapshots.join(games.select("game_id", "game", "cutoff_time"), on="game_id")
        current = (
            snapshots.filter(pl.col("snapshot_time") <= pl.col("cutoff_time"))
            .sort("snapshot_time")
            .group_by("game_id", "bookmaker", "market")
            .last()
            .sort("game", "bookmaker")
        )
        game_day = games["game_date"].cast(pl.Int64).to_numpy()
        slate = Slate.of(game_day, games["home_team"], games["away_team"])
        shared: dict[str, Any] = {}  # what the kinds compute once for every market of the span
        span_custom = (
            None
            if custom_scores is None
            else custom_scores.filter(pl.col("game_id").is_in(games["game_id"].implode()))
        )
        for market, in_market in _groups(models.market, in_sport):
            lines = current.filter(pl.col("market") == market)
            if lines.is_empty():
                continue
            group = np.flatnonzero(in_market)
            line_game = lines["game"].to_numpy().astype(np.int64)
            inputs = SourceDay(
                tables, sport, market, slate, games, lines, line_game, snapshots, span_custom, shared, members
            )
            scores, sources = _source_scores(models, codes, stride, group, inputs)
            lines = lines.with_columns(games["game_date"].gather(line_game)).select(LINE_COLUMNS)
            matrices.append(SourceMatrix(sport, market, group, lines, scores, sources, models.weight[group]))
    return matrices


def _groups(values: np.ndarray, among: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each distinct value of ``values[among]`` (a sport or a market), sorted, with where it is among
    ``among``: one vectorised comparison per distinct value (a handful), not a set of every model's."""
    found = []
    left = among.copy()
    while left.any():
        value = values[np.argmax(left)]
        where = left & (values == value)
        found.append((str(value), where))
        left &= ~where
    return sorted(found, key=lambda group: group[0])


def _slot_codes(models: ModelBatch) -> tuple[np.ndarray, int]:
    """One integer per slot of the batch for its (kind, parameter set), kind-major, and the stride
    between kinds: ``(kind + 1) * stride + parameter set``, so empty slots (kind -1) fall below
    ``stride``. A group's sources are the codes it uses, in order (see :func:`_source_scores`)."""
    stride = int(models.param.max(initial=0)) + 1
    return ((models.kind + 1) * stride + models.param).astype(np.int32), stride


def _source_scores(
    models: ModelBatch, codes: np.ndarray, stride: int, group: np.ndarray, day: SourceDay
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the distinct sources of models ``group`` (one sport and market) on the day's lines,
    and each model's slots' sources (see :class:`SourceMatrix`): per kind, the parameter sets that
    the group uses are scored once each, and the slots point at them (a slot's source is the rank
    of its code among those the group uses; ``codes``, ``stride``: :func:`_slot_codes`).

    Most kinds score per game: their blocks fill a game x source matrix, whose rows are then copied
    to the games' lines in one gather of whole rows (the line x source matrix is the largest array
    here, so it is written once); the kinds scored per line fill their columns after."""
    code = codes[group]
    taken = np.zeros((len(KINDS) + 1) * stride, dtype=bool)
    taken[code] = True
    taken[:stride] = False  # empty slots
    rank = np.cumsum(taken, dtype=np.int32) - 1
    column = np.where(code >= stride, rank[code], -1).astype(np.int64)
    by_kind = taken[stride:].reshape(len(KINDS), stride)  # the parameter sets used, per kind
    used_by_kind = [(k, np.flatnonzero(used)) for k, used in enumerate(by_kind)]
    n = int(rank[-1]) + 1
    per_game = np.empty((day.games.height, n))
    by_line: list[tuple[int, np.ndarray]] = []
    start = 0
    for k, used in used_by_kind:
        if not len(used):
            continue
        block = KINDS[k].score(models.prepared[k], used, day)
        if KINDS[k].by_line:
            by_line.append((start, block))
        else:
            per_game[:, start : start + len(used)] = block
        start += len(used)
    scores = per_game.take(day.line_game, axis=0)
    for start, block in by_line:
        scores[:, start : start + block.shape[1]] = block
    return scores, column


def _slot_frame(models: ModelBatch, model: np.ndarray, slot: np.ndarray) -> pl.DataFrame:
    """(model_id, version, source_name, position) of slots ``(model[i], slot[i])`` of the batch."""
    names = pl.Series("source_name", models.source_names, dtype=pl.String)
    return models.frame.select("model_id", "version")[model].with_columns(
        names.gather(models.name[model, slot]), pl.Series("position", np.arange(len(model)))
    )


def _multipliers(models: ModelBatch, multipliers: pl.DataFrame | None) -> np.ndarray:
    """Each slot's dynamic multiplier (1 without history), for the whole batch in one join."""
    out = np.ones((len(models), SLOTS))
    model, slot = np.nonzero(models.dynamic)
    if multipliers is None or multipliers.is_empty() or not len(model):
        return out
    found = _slot_frame(models, model, slot).join(
        multipliers.select(list(MULTIPLIERS)).cast(pl.Schema(MULTIPLIERS)),
        on=["model_id", "version", "source_name"],
    )
    position = found["position"].to_numpy()
    out[model[position], slot[position]] = found["multiplier"].to_numpy()
    return out


Weigh = Callable[[np.ndarray, int, np.ndarray], np.ndarray]
"""``weigh(part, k, source)``: the weights of models ``part`` (positions in the matrix's group, each
with ``k`` sources), model x slot or line x model x slot, given their sources' scores ``source``
(line x model x slot). A backtest's dynamic multipliers differ by day, so they are weighed per line."""


@dataclass(frozen=True, eq=False)
class Weighed:
    """SPEC section 4 steps 1-6 for a block of models (positions ``part`` in a matrix's group, each
    with ``k`` sources) on every line of the matrix, as line x model arrays before they become rows
    (line-major; lines where none of a model's weighted sources scores have no analysis)."""

    part: np.ndarray
    weights: np.ndarray
    """Model x slot (or, weighed per line, line x model x slot) weights, the sources missing or not."""
    p: np.ndarray
    raw: np.ndarray
    first: np.ndarray
    confidence: np.ndarray
    qualifies: np.ndarray
    scored: np.ndarray
    """Whether the model has an analysis on the line."""


def weighed_blocks(models: ModelBatch, matrix: SourceMatrix, weigh: Weigh | None = None) -> Iterator[Weighed]:
    """Every model of ``matrix`` on every line, in blocks of models with the same number k of
    sources (their list columns are regular blocks), chunked to bound the temporary arrays at
    :data:`CHUNK_CELLS` cells; weights are ``matrix.weights`` unless ``weigh`` gives them."""
    n_lines = matrix.scores.shape[0]
    # A model has an analysis on some line iff one of its sources with a positive weight scores some
    # line; models without any (say only a custom source without data) are left out up front.
    # (``sources`` is -1 on empty slots, which picks the appended False.)
    scores_some_line = np.append(~np.isnan(matrix.scores).all(axis=0), False)
    has_rows = ((matrix.weights > 0) & scores_some_line[matrix.sources]).any(axis=1)
    n_sources = np.where(has_rows, models.n_sources[matrix.group], 0)
    missing = np.isnan(matrix.scores)
    filled, present = np.where(missing, 0.0, matrix.scores), (~missing).astype(np.float64)
    for k in np.unique(n_sources[n_sources > 0]):
        members = np.flatnonzero(n_sources == k)
        chunk = max(1, CHUNK_CELLS // (int(k) * n_lines))
        for i in range(0, len(members), chunk):
            yield _weighed(models, matrix, members[i : i + chunk], int(k), weigh, filled, present)


def _weighed(
    models: ModelBatch,
    matrix: SourceMatrix,
    part: np.ndarray,
    k: int,
    weigh: Weigh | None,
    filled: np.ndarray,
    present: np.ndarray,
) -> Weighed:
    """Sums run over the sources in config order, as the seed's loop does, a slot at a time over
    line x model arrays (``filled``: the scores with 0 where missing, ``present``: 1.0 where not);
    only ``weigh`` sees the line x model x slot scores."""
    columns = matrix.sources[part, :k]
    if weigh is None:
        weights = matrix.weights[part, :k]
    else:
        weights = weigh(part, k, np.take(matrix.scores, columns, axis=1))

    def used(j: int) -> np.ndarray:
        return np.take(present, columns[:, j], axis=1) * weights[..., j]

    total_weight = used(0)
    weighted = total_weight * np.take(filled, columns[:, 0], axis=1)
    for j in range(1, k):
        slot = used(j)
        total_weight += slot
        weighted += slot * np.take(filled, columns[:, j], axis=1)
    scored = total_weight > 0
    p = weighted / np.where(scored, total_weight, 1.0)  # line x model, like every per-row array
    raw = np.maximum(p, 1.0 - p)
    batch = matrix.group[part]
    lo, hi = models.min_confidence[batch], models.max_confidence[batch]
    return Weighed(part, weights, p, raw, p >= 0.5, np.clip(raw, lo, hi), raw >= lo, scored)


def analyses_frame(models: ModelBatch, matrix: SourceMatrix, block: Weighed) -> pl.DataFrame:
    """The rows of ``block``, line-major (every model on the first line, then on the second, ...):
    one gather of the lines and one of the models, and numpy columns, each built once in one chunk."""
    n_lines, n_models = block.p.shape
    line = np.repeat(np.arange(n_lines, dtype=np.uint32), n_models)
    model = np.tile(matrix.group[block.part].astype(np.uint32), n_lines)
    prices = matrix.lines.select("price_first", "price_second").to_numpy()
    pick_price = np.where(block.first, prices[:, :1], prices[:, 1:])
    first, p, raw, confidence, qualifies, pick_price = (
        a.ravel() for a in (block.first, block.p, block.raw, block.confidence, block.qualifies, pick_price)
    )
    # Lines on which none of a model's weighted sources scores (rare: e.g. a team without games).
    if not block.scored.all():
        keep = block.scored.ravel()
        line, model, first, p, raw, confidence, qualifies, pick_price = (
            a[keep] for a in (line, model, first, p, raw, confidence, qualifies, pick_price)
        )
    n = len(line)
    computed = pl.DataFrame(
        [
            pl.Series("p", p),
            pick_sides(matrix.market, first),
            pl.Series("raw_confidence", raw),
            pl.Series("confidence", confidence),
            pl.Series("qualifies", qualifies),
            pl.Series("pick_price", pick_price),
            pl.repeat(matrix.sport, n, dtype=pl.String, eager=True).alias("sport"),
            pl.repeat(matrix.market, n, dtype=pl.String, eager=True).alias("market"),
        ]
    )
    frame = pl.concat([matrix.lines[line], models.frame[model], computed], how="horizontal")
    return frame.select(list(ANALYSES))


def pick_sides(market: str, first: np.ndarray) -> pl.Series:
    """The ``pick`` column: the market's first side where ``first``, else its second side."""
    sides = pl.Series([FIRST_SIDE[market], SECOND_SIDE[market]])
    return sides.gather((~first).astype(np.uint32)).alias("pick")  # 0: first side, 1: second


def source_score_rows(models: ModelBatch, matrix: SourceMatrix) -> pl.DataFrame:
    """:data:`SOURCE_SCORES` of ``matrix`` (one sport and market): every distinct source's score on
    every line it scores, sorted by ``source`` (so a reader of a few sources skips the rest)."""
    column = np.zeros(matrix.scores.shape[1], dtype=np.int64)
    taken = matrix.sources >= 0
    column[matrix.sources[taken]] = models.source[matrix.group][taken]
    order = np.argsort(column, kind="stable")
    by_source = matrix.scores.T[order]  # sorted distinct source x line, contiguous
    present = ~np.isnan(by_source)
    source, line = np.divmod(np.flatnonzero(present), by_source.shape[1])
    return (
        matrix.lines.select(SOURCE_SCORE_LINE)[line]
        .with_columns(
            pl.Series("source", column[order][source]),
            pl.Series("score", by_source[present]),
            pl.lit(matrix.sport).alias("sport"),
            pl.lit(matrix.market).alias("market"),
        )
        .select(list(SOURCE_SCORES))
    )


SOURCE_SCORE_LINE = ["game_id", "game_date", "bookmaker", "cutoff_time"]


def weight_rows(models: ModelBatch, matrix: SourceMatrix, block: Weighed) -> pl.DataFrame:
    """:data:`ANALYSIS_WEIGHTS` of ``block``: per model and game date of the matrix on which it has
    analyses, each slot's weight (a backtest's dynamic multipliers change by day, never within one)."""
    k = block.weights.shape[-1]
    day = matrix.lines["game_date"].to_numpy()
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # lines come in date order
    weights = (
        block.weights[starts]
        if block.weights.ndim == 3
        else np.broadcast_to(block.weights, (len(starts), *block.weights.shape))
    )  # day x model x slot
    has_rows = np.logical_or.reduceat(block.scored, starts, axis=0)  # day x model
    d, m = np.nonzero(has_rows)
    slot = np.tile(np.arange(k), len(d))
    batch = np.repeat(matrix.group[block.part][m], k)
    names = pl.Series("source_name", models.source_names, dtype=pl.String)
    kinds = pl.Series("kind", [kind.name for kind in KINDS], dtype=pl.String)
    return (
        models.frame[batch]
        .with_columns(
            pl.lit(matrix.sport).alias("sport"),
            pl.lit(matrix.market).alias("market"),
            pl.Series("game_date", np.repeat(day[starts][d], k)),
            pl.Series("slot", slot, dtype=pl.Int8),
            names.gather(models.name[batch, slot]),
            kinds.gather(models.kind[batch, slot]),
            pl.Series("source", models.source[batch, slot]),
            pl.Series("weight", weights[d, m].ravel()),
        )
        .select(list(ANALYSIS_WEIGHTS))
    )


# ---- dynamic weighting ---------------------------------------------------------------------------


def settled_games(games: pl.DataFrame) -> pl.DataFrame:
    """``game_id``, ``home_score``, ``away_score`` of the games with a final score: what a source's
    calls are graded against."""
    return games.filter(
        pl.col("completed").fill_null(False)
        & pl.col("home_score").is_not_null()
        & pl.col("away_score").is_not_null()
    ).select("game_id", "home_score", "away_score")


def source_calls(scored: Scored, games: pl.DataFrame) -> pl.DataFrame:
    """Per model version, source and game date (:data:`SOURCE_CALLS`): how often the source's side
    (score > 0.5 first side, < 0.5 the other, 0.5 abstains) won at each analysis's own line, over
    settled games. Pushes are neither hit nor call. This is the state dynamic weighting carries."""
    margin = first_side_margin(pl.col("market"), pl.col("line"), pl.col("home_score"), pl.col("away_score"))
    side = (pl.col("score") - 0.5).sign()
    return (
        slot_scores(scored)
        .join(settled_games(games), on="game_id")
        .with_columns((side * margin).alias("edge"))
        .group_by("model_id", "version", "source_name", "game_date")
        .agg((pl.col("edge") > 0).sum().alias("hits"), (pl.col("edge") != 0).sum().alias("calls"))
        .cast(pl.Schema(SOURCE_CALLS))
        .select(list(SOURCE_CALLS))
    )


def multipliers_from_calls(calls: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """:data:`MULTIPLIERS` for ``day`` from :func:`source_calls` of games in the 30 days before it
    (never ``day`` or later): ``clamp(2 * (hits + 10) / (calls + 20), 0.5, 1.5)``."""
    window = calls.filter(
        (pl.col("game_date") < day) & (pl.col("game_date") >= day - dt.timedelta(days=DYNAMIC_WINDOW_DAYS))
    )
    rate = (pl.col("hits").sum() + DYNAMIC_PRIOR_HITS) / (pl.col("calls").sum() + DYNAMIC_PRIOR_CALLS)
    return (
        window.group_by("model_id", "version", "source_name")
        .agg((2 * rate).clip(MULTIPLIER_MIN, MULTIPLIER_MAX).alias("multiplier"))
        .cast(pl.Schema(MULTIPLIERS))
        .sort("model_id", "version", "source_name")
    )


def multipliers_from_history(past: Scored, games: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """SPEC section 4 "Dynamic weighting": multipliers for ``day`` from the model versions' own
    settled analyses (qualifying or not) of games in the 30 days before ``day``."""
    recent = past.between(day - dt.timedelta(days=DYNAMIC_WINDOW_DAYS), day)
    return multipliers_from_calls(source_calls(recent, games), day)
