"""Each source kind's vectorised scorer agrees with its scalar reference on the hand-made league.

The tests run over the registry (``domain.models.sources.KINDS``): a kind without a scalar reference
(``domain.models.engine.reference.SCALAR``) or without a case below fails here.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from domain.models.config import parse_model_config
from domain.models.engine import CUSTOM_SCORES, ModelBatch, source_matrices
from domain.models.engine.reference import SCALAR, ReferenceData
from domain.models.sources import BUILTIN_SOURCES, KINDS, SourceKind
from tests.test_engine import D3, G3, G4, SPORT, tiny_league, tip

CUSTOM_NAME = "injury_index"
CUSTOM_GIVEN = {G3: 0.7, G4: None}
"""The custom scores the datasets stage gave each model's custom source (None: a null score)."""

CASES: dict[str, list[dict[str, Any]]] = {
    "team_stats": [
        {"fields": ["pts"], "lookback_games": 1},
        {"fields": ["pts", "tov", "pts_allowed"]},
        {"fields": ["tov", "fga"], "lookback_games": 2},  # fga has no values: left out of the mean
    ],
    "player_stats": [
        {"fields": ["pts"], "min_minutes": 0, "lookback_games": 1},
        {"fields": ["pts"]},
        {"fields": ["pts", "reb"], "min_minutes": 31, "lookback_games": 2},
    ],
    "odds_movement": [{"time_window_hours": 1}, {"time_window_hours": 12}, {"time_window_hours": 48}],
    "historical_performance": [{"lookback_days": 1}, {"lookback_days": 30}],
    "custom": [{"dataset_id": "ds", "field": "x", "transformation": "threshold", "threshold": 0.0}],
}
"""Parameter sets of each kind, by kind name."""


def _config(index: int, kind: SourceKind[Any], parameters: dict[str, Any], market: str) -> Any:
    name = kind.name if kind.builtin else CUSTOM_NAME
    return parse_model_config(
        {
            "model_id": f"m{index}",
            "name": "one source",
            "creator_user_id": "u",
            "sport": SPORT,
            "market": market,
            "data_sources": {name: {"weight": 1.0, **parameters}},
        }
    )


@pytest.mark.parametrize("as_of", [None, tip(D3) - dt.timedelta(minutes=30)], ids=["backtest", "live"])
@pytest.mark.parametrize("market", ["spreads", "h2h", "totals"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_kind_scores_every_line_like_its_scalar_reference(
    kind: SourceKind[Any], market: str, as_of: dt.datetime | None
) -> None:
    assert kind.name in SCALAR, f"{kind.name} has no scalar reference in domain.models.engine.reference"
    assert kind.name in CASES, f"{kind.name} has no hand-made case in CASES"
    configs = [_config(i, kind, parameters, market) for i, parameters in enumerate(CASES[kind.name])]
    custom_scores = pl.DataFrame(
        [
            {"model_id": c.model_id, "version": 1, "source_name": CUSTOM_NAME, "game_id": g, "score": s}
            for c in configs
            for g, s in CUSTOM_GIVEN.items()
        ],
        schema=CUSTOM_SCORES,
    )
    tables = tiny_league()

    [matrix] = source_matrices(ModelBatch.from_configs(configs), tables, D3, as_of, None, custom_scores)

    data = ReferenceData.from_tables(tables, SPORT)
    custom = {(CUSTOM_NAME, g): s for g, s in CUSTOM_GIVEN.items()}
    scored = 0
    for position, config in zip(matrix.group, configs, strict=True):
        [(name, source)] = config.data_sources.as_dict().items()
        got = matrix.scores[:, matrix.sources[position, 0]]
        for line, row in enumerate(matrix.lines.iter_rows(named=True)):
            at = data.view(row["game_id"], row["bookmaker"], market, as_of, custom)
            expected = SCALAR[kind.name](source, name, at)
            if expected is None:
                assert np.isnan(got[line]), (config.model_id, row)
            else:
                assert math.isclose(got[line], expected, rel_tol=0, abs_tol=1e-12), (config.model_id, row)
                scored += 1
    assert scored, "the case scores no line: it checks nothing"


def test_registry_names_every_kind_once_and_leaves_one_for_every_other_name() -> None:
    names = [kind.name for kind in KINDS]
    assert len(set(names)) == len(names)
    assert [kind.name for kind in KINDS if not kind.builtin] == ["custom"]
    assert list(BUILTIN_SOURCES) == [name for name in names if name != "custom"]
    assert set(SCALAR) == set(CASES) == set(names)
