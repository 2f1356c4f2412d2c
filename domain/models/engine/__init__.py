"""The model-scoring engine (SPEC sections 4 and 5): pure, vectorised, point in time.

One implementation serves the daily analyses, on-demand runs and backtests:

- :class:`Tables` holds the lake's frames (they may hold data after any cut-off);
- :class:`ModelBatch` holds the model versions to score, as arrays;
- :func:`score_day` scores every model version x game x bookmaker of a day
  (:func:`source_matrices` is its first half: the day's distinct sources, scored once);
  :func:`score_day_explained` adds what went into each analysis, stored once per distinct source
  and line (:class:`Scored`: the ``analyses``, ``source_scores`` and ``analysis_weights`` tables);
- :func:`multipliers_from_history` gives dynamic-weighting multipliers from past analyses;
- :func:`run_backtest` replays a date range as if live, day by day in effect but scored in spans of
  days at once (:func:`span_matrices`), and reports per model;
- ensembles (the ``model`` kind: another model's p) are scored after their members: both scorers
  take the batch's dependency layers (``ModelBatch.layer``) in order, each over the analyses of
  the layers before it (``SourceDay.members``).

The sources a model weighs come in kinds (:mod:`domain.models.sources`, one module each); the
config's ``data_sources``, :class:`ModelBatch` and the scoring of a day are driven by its registry,
``domain.models.sources.KINDS``. :mod:`domain.models.engine.reference` is the seed's scalar loop that
the engine is checked against.

Adding a source kind:

1. a module in ``domain/models/sources/`` exporting ``KIND = SourceKind(parameters, key, prepare,
   score)``: the parameters model (a ``SourceBase`` whose ``kind`` is the kind's name: the config
   gets an optional setting of that name; a kind that is not built in goes under any other name,
   selected by a setting in ``SELECTED_BY``, and into the config's ``OtherSource``), the key of a
   configured source (the parameters that decide its scores, read from the stored payload), what the
   batch prepares from the distinct keys once, and the vectorised scorer (the span's games x distinct
   keys, NaN = missing; or its current lines x keys, with ``by_line=True``, if the score depends on
   the bookmaker's line);
2. one line in ``KINDS`` (its position is where its sources come in a model's lists);
3. one reference test: the kind's scalar scorer in ``SCALAR`` of
   :mod:`domain.models.engine.reference` and a hand-made case in ``CASES`` of
   ``tests/test_source_kinds.py`` (parametrised over ``KINDS``, so a kind without them fails).

The committed JSON schema (``docs/model-config.schema.json``) then gains the new setting:
``tests/test_model_config.py`` says how to regenerate it.
"""

from domain.models.engine.backtest import BacktestResult, grade_analyses, performance, run_backtest
from domain.models.engine.scoring import (
    ANALYSES,
    ANALYSIS_KEY,
    ANALYSIS_WEIGHTS,
    EXPLAINED,
    MULTIPLIERS,
    SOURCE_CALLS,
    SOURCE_SCORES,
    ModelBatch,
    Scored,
    SourceMatrix,
    clustered,
    multipliers_from_calls,
    multipliers_from_history,
    score_day,
    score_day_explained,
    slot_scores,
    source_calls,
    source_matrices,
    span_matrices,
)
from domain.models.features import Tables
from domain.models.sources.custom import CUSTOM_SCORES

__all__ = [
    "ANALYSES",
    "ANALYSIS_KEY",
    "ANALYSIS_WEIGHTS",
    "CUSTOM_SCORES",
    "EXPLAINED",
    "MULTIPLIERS",
    "SOURCE_CALLS",
    "SOURCE_SCORES",
    "BacktestResult",
    "ModelBatch",
    "Scored",
    "SourceMatrix",
    "Tables",
    "clustered",
    "grade_analyses",
    "multipliers_from_calls",
    "multipliers_from_history",
    "performance",
    "run_backtest",
    "score_day",
    "score_day_explained",
    "slot_scores",
    "source_calls",
    "source_matrices",
    "span_matrices",
]
