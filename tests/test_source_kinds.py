"""Each source kind's vectorised scorer agrees with its scalar reference on the hand-made league.

The tests run over the registry (``domain.models.sources.KINDS``): a kind without a scalar reference
(``domain.models.engine.reference.SCALAR``) or without a case below fails here.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
from typing import Any

import numpy as np
import polars as pl
import pytest

from domain.models.config import parse_model_config
from domain.models.engine import CUSTOM_SCORES, ModelBatch, score_day, source_matrices
from domain.models.engine.reference import SCALAR, ReferenceData, reference_analysis
from domain.models.sources import BUILTIN_SOURCES, KINDS, SourceKind
from domain.models.sources.fields import mean_over_fields
from tests.test_engine import D3, G3, G4, SPORT, tiny_league, tip

CUSTOM_NAME = "injury_index"
CUSTOM_GIVEN = {G3: 0.7, G4: None}
"""The custom scores the datasets stage gave each model's custom source (None: a null score)."""
MEMBER_NAME = "member"
MEMBERS = {
    "team_member": {"team_stats": {"weight": 1.0, "fields": ["pts", "tov"], "lookback_games": 2}},
    "odds_member": {
        "odds_movement": {"weight": 0.3, "time_window_hours": 48},
        "historical_performance": {"weight": 0.7, "lookback_days": 7},
    },
}
"""The members whose p the model sources' cases read (their analyses are handed over)."""

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
    "model": [{"model_id": "team_member"}, {"model_id": "odds_member", "version": 1}, {"model_id": "nobody"}],
}
"""Parameter sets of each kind, by kind name."""


def _config(model_id: str, sources: dict[str, Any], market: str) -> Any:
    return parse_model_config(
        {
            "model_id": model_id,
            "name": "one source",
            "creator_user_id": "u",
            "sport": SPORT,
            "market": market,
            "data_sources": sources,
        }
    )


def _source_name(kind: SourceKind[Any]) -> str:
    return kind.name if kind.builtin else {"custom": CUSTOM_NAME}.get(kind.name, MEMBER_NAME)


@pytest.mark.parametrize("as_of", [None, tip(D3) - dt.timedelta(minutes=30)], ids=["backtest", "live"])
@pytest.mark.parametrize("market", ["spreads", "h2h", "totals"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_kind_scores_every_line_like_its_scalar_reference(
    kind: SourceKind[Any], market: str, as_of: dt.datetime | None
) -> None:
    assert kind.name in SCALAR, f"{kind.name} has no scalar reference in domain.models.engine.reference"
    assert kind.name in CASES, f"{kind.name} has no hand-made case in CASES"
    name = _source_name(kind)
    configs = [
        _config(f"m{i}", {name: {"weight": 1.0, **parameters}}, market)
        for i, parameters in enumerate(CASES[kind.name])
    ]
    members = [_config(model_id, sources, market) for model_id, sources in MEMBERS.items()]
    custom_scores = pl.DataFrame(
        [
            {"model_id": c.model_id, "version": 1, "source_name": CUSTOM_NAME, "game_id": g, "score": s}
            for c in configs
            for g, s in CUSTOM_GIVEN.items()
        ],
        schema=CUSTOM_SCORES,
    )
    tables = tiny_league()
    member_analyses = score_day(ModelBatch.from_configs(members), tables, D3, as_of)

    [matrix] = source_matrices(
        ModelBatch.from_configs(configs), tables, D3, as_of, None, custom_scores, member_analyses
    )

    data = ReferenceData.from_tables(tables, SPORT)
    custom = {(CUSTOM_NAME, g): s for g, s in CUSTOM_GIVEN.items()}
    scored = 0
    for position, config in zip(matrix.group, configs, strict=True):
        [(name, source)] = config.data_sources.as_dict().items()
        got = matrix.scores[:, matrix.sources[position, 0]]
        for line, row in enumerate(matrix.lines.iter_rows(named=True)):
            member_p = {
                m.model_id: found["p"]
                for m in members
                if (found := reference_analysis(m, data, row["game_id"], row["bookmaker"], as_of)) is not None
            }
            at = data.view(row["game_id"], row["bookmaker"], market, as_of, custom, member_p)
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
    assert [kind.name for kind in KINDS if not kind.builtin] == ["custom", "model"]
    assert list(BUILTIN_SOURCES) == [name for name in names if name not in ("custom", "model")]
    assert set(SCALAR) == set(CASES) == set(names)


@pytest.mark.parametrize("games", [1, 3])
def test_a_config_averages_its_fields_in_config_order_whatever_the_number_of_games(games: int) -> None:
    # As the scalar reference does (a running sum); numpy's sum over the fields would go pairwise on
    # a one-game day from nine fields on, and move the last bit.
    rng = np.random.default_rng(5)
    scores = rng.random((games, 40))  # game x field key
    members = np.array([rng.permutation(40)[:12] for _ in range(50)])

    got = mean_over_fields(scores, members)

    for game in range(games):
        expected = [functools.reduce(operator.add, scores[game, m].tolist()) / 12 for m in members]
        assert got[game].tolist() == expected
