"""The analyses asset on the sample league: idempotent partitions, and live runs equal backtests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.analyses import analyses, read_model_versions
from assets.ingest import ingest_assets
from assets.models import model_versions
from cli.demo import DEMO_MODELS, demo_model_id, register_demo_models
from domain.models.config import parse_model_config
from domain.models.engine import ANALYSES, ModelBatch, multipliers_from_history, run_backtest
from domain.models.engine.scoring import SOURCE_SCORE_KEY
from domain.tables.schemas import GAMES
from pipelines.jobs import range_tags
from resources.sample_feed import SampleLeagueFeed
from services.backtests import backtest_model
from services.engine_tables import load_scored, load_tables, split_legacy_analyses
from stores.lake import Lake
from stores.layout import table_key
from stores.warehouse import Warehouse, lake_connection

FIRST, LAST = dt.date(2025, 10, 21), dt.date(2025, 11, 20)
NBA = {"config": {"sports": ["basketball_nba"]}}


ENSEMBLE = ("zoe", "Blend")
ENSEMBLE_ID = demo_model_id(*ENSEMBLE)


def _ensemble() -> tuple[str, dict[str, Any]]:
    """An ensemble of the first two spreads demo models (scored after them, over their analyses)."""
    spreads = [demo_model_id(user, body["name"]) for user, body in DEMO_MODELS if body["market"] == "spreads"]
    members = {
        f"member_{n}": {"model_id": model_id, "weight": n + 1} for n, model_id in enumerate(spreads[:2])
    }
    user, name = ENSEMBLE
    body = {"name": name, "sport": "basketball_nba", "market": "spreads", "data_sources": members}
    return user, body | {"sharing": {"public": False, "price_per_month": 0}}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A month of the sample league, the demo models, and their analyses for that month."""
    root = tmp_path_factory.mktemp("lake")
    lake = Lake(root=str(root))
    defs = dg.Definitions(
        assets=[*ingest_assets, model_versions, analyses],
        jobs=[
            dg.define_asset_job(
                "ingest", dg.AssetSelection.groups("ingest", "tables"), partitions_def=analyses.partitions_def
            ),
            dg.define_asset_job(
                "score", dg.AssetSelection.assets("analyses"), partitions_def=analyses.partitions_def
            ),
        ],
        resources={
            "lake": lake,
            "warehouse": Warehouse(directory=str(root / "wh")),
            "odds_feed": SampleLeagueFeed(),
            "stats_feed": SampleLeagueFeed(),
        },
    )
    instance = dg.DagsterInstance.ephemeral()
    ops = {
        op: NBA
        for op in ["raw_feeds", "games", "odds_snapshots", "lines", "team_box_scores", "player_box_scores"]
    }
    assert (
        defs.resolve_job_def("ingest")
        .execute_in_process(instance=instance, tags=range_tags(FIRST, LAST), run_config={"ops": ops})
        .success
    )
    register_demo_models(lake)
    register_demo_models(lake, [_ensemble()])
    assert dg.materialize([model_versions], resources={"lake": lake}, instance=instance).success
    assert (
        defs.resolve_job_def("score")
        .execute_in_process(
            instance=instance, tags=range_tags(FIRST, LAST), run_config={"ops": {"analyses": NBA}}
        )
        .success
    )
    return lake


def _analyses(lake: Lake) -> pl.DataFrame:
    return lake.read_table("analyses", "basketball_nba", FIRST, LAST + dt.timedelta(days=1), ANALYSES)


def _explained(lake: Lake, first: dt.date = FIRST, last: dt.date = LAST) -> pl.DataFrame:
    """The stored analyses with their sources joined back from the two other tables."""
    return _key_sorted(load_scored(lake, "basketball_nba", first, last + dt.timedelta(days=1)).explained())


def _key_sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("model_id", "version", "game_id", "bookmaker")


def test_every_model_scored_every_game_and_bookmaker(lake: Lake) -> None:
    out = _analyses(lake)
    games = lake.read_table("games", "basketball_nba", FIRST, LAST + dt.timedelta(days=1), GAMES)
    versions = read_model_versions(lake)
    assert set(out["model_id"]) == set(versions["model_id"])
    per_model = out.group_by("model_id").agg(pl.col("game_id").n_unique().alias("games"))
    # Every model has a line at each of the five bookmakers for every game of the month.
    assert per_model["games"].min() == games.height
    assert out.group_by("model_id", "game_id").len()["len"].unique().to_list() == [5]
    assert (out["snapshot_time"] <= out["cutoff_time"]).all()  # point in time: the line was known
    q = out.filter("qualifies")
    assert (q["raw_confidence"] >= 0.5).all() and q.height > 0


def test_rerun_of_a_partition_replaces_it_exactly(lake: Lake) -> None:
    day = "2025-11-05"
    explained_before = _explained(lake, dt.date(2025, 11, 5), dt.date(2025, 11, 5))
    before = _key_sorted(
        lake.read_table("analyses", "basketball_nba", dt.date(2025, 11, 5), dt.date(2025, 11, 6), ANALYSES)
    )
    result = dg.materialize(
        [analyses], partition_key=day, resources={"lake": lake}, run_config={"ops": {"analyses": NBA}}
    )
    assert result.success
    after = _key_sorted(
        lake.read_table("analyses", "basketball_nba", dt.date(2025, 11, 5), dt.date(2025, 11, 6), ANALYSES)
    )
    diff = [c for c in before.columns if not after[c].equals(before[c])]
    assert before.height > 0 and not diff, diff
    assert _explained(lake, dt.date(2025, 11, 5), dt.date(2025, 11, 5)).equals(explained_before)


def test_daily_pipeline_equals_backtest(lake: Lake) -> None:
    """Backtests equal live: the same models over the same days give the same analyses, row for row."""
    versions = read_model_versions(lake)
    tables = load_tables(lake, "basketball_nba", FIRST, LAST + dt.timedelta(days=1))
    replay = run_backtest(ModelBatch.from_frame(versions), tables, FIRST, LAST).analyses
    assert replay is not None
    live = _key_sorted(_analyses(lake))
    replay = _key_sorted(replay.select(list(ANALYSES)))
    assert live.height == replay.height
    assert live.equals(replay)


def test_sources_are_stored_once_per_distinct_source_and_line_and_join_back_as_the_backtest_has_them(
    lake: Lake,
) -> None:
    versions = read_model_versions(lake)
    tables = load_tables(lake, "basketball_nba", FIRST, LAST + dt.timedelta(days=1))
    replay = run_backtest(ModelBatch.from_frame(versions), tables, FIRST, LAST).explanations
    assert replay is not None
    live = _explained(lake)
    assert live.equals(_key_sorted(replay.explained()))
    assert live["source_names"].list.len().min() >= 1 and live["source_scores"].list.len().sum() > 0
    stored = load_scored(lake, "basketball_nba", FIRST, LAST + dt.timedelta(days=1))
    assert stored.source_scores.select(SOURCE_SCORE_KEY).is_unique().all()
    # The demo models share sources (odds movement at the default window, for one): fewer rows than
    # one per analysis and source slot.
    assert stored.source_scores.height < live["source_names"].list.len().sum()


def test_a_run_of_an_ensemble_alone_scores_its_members_with_it_and_stores_only_its_rows(lake: Lake) -> None:
    day, next_day = dt.date(2025, 11, 6), dt.date(2025, 11, 7)
    before = _key_sorted(lake.read_table("analyses", "basketball_nba", day, next_day, ANALYSES))
    explained_before = _explained(lake, day, day)
    assert before.filter(pl.col("model_id") == ENSEMBLE_ID).height > 0
    only = {"config": {"sports": ["basketball_nba"], "model_ids": [ENSEMBLE_ID]}}
    result = dg.materialize(
        [analyses],
        partition_key=day.isoformat(),
        resources={"lake": lake},
        run_config={"ops": {"analyses": only}},
    )
    assert result.success
    assert result.asset_materializations_for_node("analyses")[0].metadata["models_scored"].value == 1
    after = _key_sorted(lake.read_table("analyses", "basketball_nba", day, next_day, ANALYSES))
    assert after.equals(before)
    assert _explained(lake, day, day).equals(explained_before)  # the other models' sources stay


def test_a_backtest_of_an_ensemble_replays_its_members_with_it(lake: Lake) -> None:
    versions = read_model_versions(lake)
    [doc] = versions.filter(pl.col("model_id") == ENSEMBLE_ID)["config_json"]
    report = backtest_model(lake, parse_model_config(json.loads(doc)), FIRST, LAST)
    tables = load_tables(lake, "basketball_nba", FIRST, LAST + dt.timedelta(days=1))
    everyone = run_backtest(ModelBatch.from_frame(versions), tables, FIRST, LAST, keep_analyses=False)
    [expected] = (
        everyone.summary.filter(pl.col("model_id") == ENSEMBLE_ID).drop("model_id", "version").to_dicts()
    )
    assert report["summary"]["analyses"] > 0
    assert report["summary"] == pytest.approx(expected, rel=1e-12, nan_ok=True)


def test_the_readme_query_explains_a_models_picks_from_the_analysts_views(lake: Lake) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    query = readme.split("This query shows why a model made its picks of a day:")[1].split("```sql")[1]
    query = query.split("```")[0]
    day = dt.date(2025, 11, 14)
    explained = _explained(lake, day, day).filter(pl.col("qualifies"))
    model_id = explained["model_id"][0]
    with lake_connection(lake) as con:
        rows = con.sql(query.replace("'...'", f"'{model_id}'")).pl()
    want = (
        explained.filter(pl.col("model_id") == model_id)
        .explode("source_names", "source_scores", "weights")
        .sort("game_id", "bookmaker", maintain_order=True)
    )
    assert rows.height == want.height > 0
    assert rows["source_name"].to_list() == want["source_names"].to_list()
    assert rows["weight"].to_list() == pytest.approx(want["weights"].to_list())
    assert rows["score"].to_list() == pytest.approx(
        [None if s is None else round(s, 3) for s in want["source_scores"]]
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_analyses_stored_with_their_sources_as_lists_are_split_once(
    lake: Lake, where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A lake written before the split: dynamic weighting and explanations read it as before."""
    days = [dt.date(2025, 11, 12), dt.date(2025, 11, 13)]
    stored = load_scored(lake, "basketball_nba", days[0], days[-1] + dt.timedelta(days=1))
    legacy = stored.explained()  # the shape analyses had, list columns and all
    old = Lake(root=str(tmp_path)) if where == "local" else request.getfixturevalue("s3_lake")
    for day in days:
        old.write_parquet(
            table_key("analyses", "basketball_nba", day), legacy.filter(pl.col("game_date") == day)
        )
    assert split_legacy_analyses(old) == 2
    assert split_legacy_analyses(old) == 0  # once
    split = load_scored(old, "basketball_nba", days[0], days[-1] + dt.timedelta(days=1))
    assert "source_names" not in old.read_parquet([table_key("analyses", "basketball_nba", days[0])]).columns
    assert split.explained().equals(legacy)
    games = lake.read_table("games", "basketball_nba", FIRST, LAST, GAMES)
    day = days[-1] + dt.timedelta(days=1)
    assert_frame_equal(
        multipliers_from_history(split, games, day), multipliers_from_history(stored, games, day)
    )
    assert multipliers_from_history(stored, games, day).height > 0
