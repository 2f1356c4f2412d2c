"""The model-scoring engine (SPEC sections 4 and 5): pure, vectorised, point in time.

One implementation serves the daily analyses, on-demand runs and backtests:

- :class:`Tables` holds the lake's frames (they may hold data after any cut-off);
- :class:`ModelBatch` holds the model versions to score, as arrays;
- :func:`score_day` scores every model version x game x bookmaker of a day
  (:func:`source_matrices` is its first half: the day's distinct sources, scored once);
- :func:`multipliers_from_history` gives dynamic-weighting multipliers from past analyses;
- :func:`run_backtest` replays a date range day by day as if live, and reports per model.
"""

from domain.models.engine.backtest import BacktestResult, grade_analyses, performance, run_backtest
from domain.models.engine.features import Tables
from domain.models.engine.scoring import (
    ANALYSES,
    ANALYSIS_KEY,
    CUSTOM_SCORES,
    MULTIPLIERS,
    SOURCE_CALLS,
    ModelBatch,
    SourceMatrix,
    clustered,
    multipliers_from_calls,
    multipliers_from_history,
    score_day,
    source_calls,
    source_matrices,
)

__all__ = [
    "ANALYSES",
    "ANALYSIS_KEY",
    "CUSTOM_SCORES",
    "MULTIPLIERS",
    "SOURCE_CALLS",
    "BacktestResult",
    "ModelBatch",
    "SourceMatrix",
    "Tables",
    "clustered",
    "grade_analyses",
    "multipliers_from_calls",
    "multipliers_from_history",
    "performance",
    "run_backtest",
    "score_day",
    "source_calls",
    "source_matrices",
]
