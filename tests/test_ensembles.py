"""Ensembles: a model source weighs another model's p, point in time, after its members; no cycles."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from domain.formats.sample_league import generate_season
from domain.models.config import ConfigError, MemberInfo, ModelConfig, parse_model_config, validate_against
from domain.models.engine import (
    ANALYSIS_KEY,
    ModelBatch,
    Tables,
    run_backtest,
    score_day,
)
from domain.models.sources.model import member_versions
from tests.test_engine import D3, G3, G4, SPORT, day_by_day, explained_day, sigmoid, tiny_league, tip

TEAM = {"team_stats": {"weight": 1, "fields": ["pts", "tov"], "lookback_games": 2}}
ODDS = {"odds_movement": {"weight": 1, "time_window_hours": 48}}
ENSEMBLE = {"team_view": {"model_id": "team", "weight": 1}, "odds_view": {"model_id": "odds", "weight": 3}}


def config(model_id: str, sources: dict[str, Any], market: str = "spreads", **extra: Any) -> ModelConfig:
    return parse_model_config(
        {
            "model_id": model_id,
            "name": model_id,
            "creator_user_id": "u",
            "sport": SPORT,
            "market": market,
            "data_sources": sources,
            **extra,
        }
    )


def row(analyses: pl.DataFrame, model_id: str, game: str, book: str = "book_a") -> dict[str, Any]:
    found = analyses.filter(
        (pl.col("model_id") == model_id) & (pl.col("game_id") == game) & (pl.col("bookmaker") == book)
    )
    assert found.height == 1
    return found.row(0, named=True)


@pytest.mark.parametrize("as_of", [None, tip(D3) - dt.timedelta(minutes=30)], ids=["backtest", "live"])
def test_an_ensemble_of_two_models_is_their_weighted_p(as_of: dt.datetime | None) -> None:
    # Listed first: the batch still scores its members before it.
    batch = ModelBatch.from_configs([config("ens", ENSEMBLE), config("team", TEAM), config("odds", ODDS)])
    analyses = explained_day(batch, tiny_league(), D3, as_of)
    # G3 at book_a (test_engine by hand): team_stats pts and tov over two games, odds moved towards home.
    team = (sigmoid(-3 / math.sqrt(2)) + sigmoid(-15 / math.sqrt(38))) / 2  # 0.093854
    odds = 0.8
    assert row(analyses, "team", G3)["p"] == pytest.approx(team, abs=1e-12)
    assert row(analyses, "odds", G3)["p"] == pytest.approx(odds, abs=1e-12)
    ensemble = row(analyses, "ens", G3)
    assert ensemble["source_names"] == ["team_view", "odds_view"]
    assert ensemble["p"] == pytest.approx((1 * team + 3 * odds) / 4, abs=1e-12)
    assert ensemble["p"] == pytest.approx(0.623464, abs=1e-6)
    assert (ensemble["pick"], ensemble["cutoff_time"]) == ("home", row(analyses, "odds", G3)["cutoff_time"])
    # G4: NYK has never played, so the team model has no analysis: the ensemble renormalises.
    assert analyses.filter((pl.col("model_id") == "team") & (pl.col("game_id") == G4)).is_empty()
    assert row(analyses, "ens", G4)["p"] == pytest.approx(row(analyses, "odds", G4)["p"], abs=1e-12)
    assert row(analyses, "ens", G4)["source_scores"] == [None, row(analyses, "odds", G4)["p"]]


def test_a_member_is_read_at_the_same_cut_off_only() -> None:
    members = score_day(
        ModelBatch.from_configs([config("team", TEAM), config("odds", ODDS)]), tiny_league(), D3
    )
    ensemble = ModelBatch.from_configs([config("ens", ENSEMBLE)])
    handed = score_day(ensemble, tiny_league(), D3, None, members=members)
    assert row(handed, "ens", G3)["p"] == pytest.approx(
        (
            members["p"]
            .filter(
                (members["model_id"] == "team")
                & (members["game_id"] == G3)
                & (members["bookmaker"] == "book_a")
            )
            .item()
            + 3 * 0.8
        )
        / 4,
        abs=1e-12,
    )
    # The members' analyses of an earlier cut-off (a live run half an hour before the tip) are not
    # the ensemble's inputs at the backtest cut-off: no member p, no analysis.
    early = members.with_columns(pl.col("cutoff_time") - dt.timedelta(minutes=30))
    assert score_day(ensemble, tiny_league(), D3, None, members=early).is_empty()


def test_a_pinned_version_and_the_latest_version() -> None:
    v1 = config("team", TEAM)
    v2 = config("team", {"odds_movement": {"weight": 1, "time_window_hours": 48}}, version=2)
    pinned = config("pinned", {"t": {"model_id": "team", "version": 1, "weight": 1}})
    latest = config("latest", {"t": {"model_id": "team", "weight": 1}})
    analyses = score_day(ModelBatch.from_configs([pinned, latest, v1, v2]), tiny_league(), D3)
    by_version = {v: row(analyses.filter(pl.col("version") == v), "team", G3)["p"] for v in (1, 2)}
    assert row(analyses, "pinned", G3)["p"] == by_version[1]
    assert row(analyses, "latest", G3)["p"] == by_version[2] != by_version[1]


def test_one_pass_backtest_of_ensembles_equals_scoring_day_by_day() -> None:
    season = generate_season()
    tables = Tables(season.game_results, season.team_box, season.player_box, season.odds_snapshots)
    start = tables.games["game_date"].min()
    end = start + dt.timedelta(days=80)  # two spans of game days
    configs = [
        config(
            "team", {"team_stats": {"weight": 1, "fields": ["offensive_rating", "pace"], "lookback_games": 5}}
        ),
        config("odds", {"odds_movement": {"weight": 1, "time_window_hours": 24}}, dynamic_weighting=True),
        config("history", {"historical_performance": {"weight": 1, "lookback_days": 20}}),
        # two layers: an ensemble of an ensemble, with dynamic weighting on its model sources
        config("pair", {"a": {"model_id": "team", "weight": 1}, "b": {"model_id": "odds", "weight": 2}}),
        config(
            "blend",
            {"p": {"model_id": "pair", "weight": 2}, "h": {"model_id": "history", "weight": 1}},
            dynamic_weighting=True,
        ),
    ]
    batch = ModelBatch.from_configs(configs[::-1])
    assert batch.layer.tolist() == [2, 1, 0, 0, 0]
    result = run_backtest(batch, tables, start, end)
    days = (
        tables.games.filter(pl.col("game_date").is_between(start, end))["game_date"].unique().sort().to_list()
    )
    expected = day_by_day(batch, tables, days).explained()
    assert result.explanations is not None and len(days) > 64
    blend = expected.filter(pl.col("model_id") == "blend")
    assert blend.height > 1000 and blend["weights"].list.eval(pl.element() != 2.0).list.first().sum() > 100
    assert_frame_equal(
        result.explanations.explained().sort(ANALYSIS_KEY), expected.sort(ANALYSIS_KEY), check_exact=True
    )


def test_a_run_of_some_models_takes_the_members_they_use_transitively() -> None:
    docs = {
        ("a", 1): config("a", TEAM),
        ("a", 2): config("a", ODDS, version=2),
        ("b", 1): config("b", {"x": {"model_id": "a", "version": 1, "weight": 1}}),
        ("c", 1): config("c", {"y": {"model_id": "b", "weight": 1}, "z": {"model_id": "a", "weight": 1}}),
        ("d", 1): config("d", ODDS),
    }
    stored = pl.DataFrame(
        [{"model_id": m, "version": v, "config_json": c.model_dump_json()} for (m, v), c in docs.items()],
        schema={"model_id": pl.String, "version": pl.Int32, "config_json": pl.String},
    )
    helpers = member_versions(stored.filter(pl.col("model_id") == "c"), stored)
    assert sorted(helpers.select("model_id", "version").rows()) == [("a", 1), ("a", 2), ("b", 1)]
    assert member_versions(stored.filter(pl.col("model_id") == "d"), stored).is_empty()


# ---- validation ----------------------------------------------------------------------------------


def _info(
    model_id: str, owner: str = "u", public: bool = False, members: tuple[str, ...] = (), **kw: Any
) -> MemberInfo:
    return MemberInfo(
        model_id=model_id,
        owner_user_id=owner,
        public=public,
        versions=kw.get("versions", (1,)),
        sport=kw.get("sport", SPORT),
        market=kw.get("market", "spreads"),
        members=members,
    )


def problems(draft: ModelConfig, *infos: MemberInfo) -> list[dict[str, str]]:
    known = {info.model_id: info for info in infos}
    try:
        validate_against(draft, {}, models=known.get)
    except ConfigError as exc:
        return exc.as_dicts()
    return []


def test_own_and_public_members_are_accepted() -> None:
    draft = config("ens", ENSEMBLE)
    assert problems(draft, _info("team"), _info("odds", owner="someone", public=True)) == []


def test_a_member_the_creator_may_not_read_is_refused_naming_it() -> None:
    draft = config("ens", ENSEMBLE)
    found = problems(draft, _info("team"), _info("odds", owner="someone"))
    assert [p["path"] for p in found] == ["data_sources.odds_view.model_id"]
    assert "'odds'" in found[0]["message"] and "public" in found[0]["message"]
    # A model that does not exist reads the same: nobody can probe private ids.
    assert [p["message"] for p in problems(draft, _info("team"))] == [found[0]["message"]]


def test_a_cycle_is_refused_naming_it() -> None:
    # b uses c, c uses a: saving a with b closes the cycle a -> b -> c -> a.
    draft = config("a", {"x": {"model_id": "b", "weight": 1}})
    found = problems(draft, _info("b", members=("c",)), _info("c", members=("a",)))
    assert found == [
        {
            "path": "data_sources.x.model_id",
            "message": "models may not depend on each other in a cycle: a -> b -> c -> a",
        }
    ]
    itself = problems(config("a", {"x": {"model_id": "a", "weight": 1}}))
    assert [p["message"] for p in itself] == ["a model cannot use itself: a -> a"]


def test_a_member_of_another_market_or_without_the_pinned_version_is_refused() -> None:
    draft = config("ens", {"t": {"model_id": "team", "weight": 1, "version": 3}})
    found = problems(draft, _info("team", market="totals", versions=(1, 2)))
    assert [p["path"] for p in found] == ["data_sources.t.model_id", "data_sources.t.version"]
    assert "totals" in found[0]["message"] and "has no version 3" in found[1]["message"]


def test_a_model_source_is_a_source_like_any_other_in_the_config() -> None:
    with pytest.raises(ConfigError) as exc:
        config("ens", {"t": {"model_id": "team", "weight": -1, "typo": 1}})
    assert {p["path"] for p in exc.value.as_dicts()} == {"data_sources.t.weight", "data_sources.t.typo"}
