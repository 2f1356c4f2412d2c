"""Every features, analyses and performance asset on partial data (issue 12, item 9): a sport with
games and odds but no box scores, and a sport with no data at all, both in one run with the jobs'
default config (every sport); then the same assets on the real NFL history file, which has no box
scores either.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.analyses import analyses
from assets.features import FEATURES, feature_assets
from assets.models import model_versions
from assets.performance import model_calibration, model_performance, performance_assets, settled_picks
from cli.demo import demo_model_id, register_demo_models
from cli.runner import import_history
from domain.formats.sample_league import generate_season
from domain.marketplace.performance import MODEL_PERFORMANCE, SETTLED_PICKS
from domain.models.engine import ANALYSES, Tables
from domain.models.engine import feature_tables as ft
from domain.models.registry import build_version
from domain.sports import SPORTS
from domain.tables import tidy
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX
from pipelines.jobs import analyses_job, range_tags
from stores.lake import Lake
from stores.layout import table_key
from stores.registry import RegistryStore

NBA, NFL = "basketball_nba", "americanfootball_nfl"
CREATED_AT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
NFL_MODEL = {
    "name": "Scores and steam",
    "description": "Score margins, cover rates and line moves: what an NFL history file can feed.",
    "sport": NFL,
    "market": "spreads",
    "data_sources": {
        "team_stats": {"weight": 0.4, "fields": ["points_for", "margin"], "lookback_games": 4},
        "historical_performance": {"weight": 0.3, "lookback_days": 60},
        "odds_movement": {"weight": 0.3, "time_window_hours": 48},
    },
    "min_confidence": 0.5,
    "max_confidence": 0.9,
    "sharing": {"public": False},
}
FEATURE_SCHEMAS = {
    "team_form": ft.TEAM_FORM,
    "player_form": ft.PLAYER_FORM,
    "line_history": ft.LINE_HISTORY,
    "team_rates": ft.TEAM_RATES,
}
TABLE_SCHEMAS = {**FEATURE_SCHEMAS, "analyses": ANALYSES, "settled_picks": SETTLED_PICKS}


def _empty_tables() -> Tables:
    return Tables(
        pl.DataFrame(schema=GAMES),
        pl.DataFrame(schema=TEAM_BOX),
        pl.DataFrame(schema=PLAYER_BOX),
        pl.DataFrame(schema=ODDS_SNAPSHOTS),
    )


@pytest.fixture(scope="module")
def season_without_box() -> Tables:
    season = generate_season()
    empty = _empty_tables()
    return Tables(season.game_results, empty.team_box, empty.player_box, season.odds_snapshots)


@pytest.mark.parametrize("name", list(FEATURES))
@pytest.mark.parametrize("data", ["games and odds only", "nothing"])
def test_feature_tables_of_partial_data_are_typed(name: str, data: str, season_without_box: Tables) -> None:
    tables = season_without_box if data == "games and odds only" else _empty_tables()
    build = FEATURES[name][0]
    out = build(tables, NBA, [dt.date(2025, 12, 1)])
    assert dict(out.schema) == FEATURE_SCHEMAS[name]
    if name in ("team_form", "player_form"):  # no box scores, no form
        assert out.is_empty()
    if data == "games and odds only" and name in ("team_rates", "line_history"):
        assert out.height > 0  # results and lines still feed these


def _register(lake: Lake, body: dict) -> None:
    config = build_version(
        body,
        model_id=demo_model_id("pat", body["name"]),
        owner_user_id="pat",
        version=1,
        created_at=CREATED_AT,
        updated_at=CREATED_AT,
    )
    RegistryStore(lake).create_version(config)


def _run_every_asset(lake: Lake, first: dt.date, last: dt.date) -> None:
    """``analyses_job`` (features and analyses), then settlement and performance, then calibration,
    for ``first..last`` with each job's default config (every sport)."""
    defs = dg.Definitions(
        assets=[*feature_assets, analyses, *performance_assets],
        jobs=[
            analyses_job,
            dg.define_asset_job(  # performance_job's assets, without its sensor-only freshness checks
                "performance",
                dg.AssetSelection.assets(settled_picks, model_performance),
                partitions_def=analyses.partitions_def,
            ),
        ],
        resources={"lake": lake},
    )
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([model_versions], resources={"lake": lake}, instance=instance).success
    for job in ("analyses_job", "performance"):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, tags=range_tags(first, last), raise_on_error=True
        )
        assert result.success, job
    assert dg.materialize([model_calibration], resources={"lake": lake}, instance=instance).success


def _read(lake: Lake, table: str, sport: str, first: dt.date, last: dt.date) -> pl.DataFrame:
    schema = MODEL_PERFORMANCE if table == "model_performance" else TABLE_SCHEMAS[table]
    return lake.read_table(table, sport, first, last + dt.timedelta(days=1), schema)


def test_every_asset_with_box_scores_missing_and_a_sport_without_data(tmp_path: Path) -> None:
    """The sample league's games and odds without its box scores, the demo models and an NFL model,
    and no NFL data at all: every asset succeeds, and the tables it writes keep their schemas."""
    first, last = dt.date(2025, 11, 10), dt.date(2025, 11, 12)
    lake = Lake(root=str(tmp_path / "lake"))
    season = generate_season()
    games = tidy.build_games(season.game_results)
    snapshots = tidy.build_snapshots(season.odds_snapshots)
    for table, frame in [
        ("games", games),
        ("odds_snapshots", snapshots),
        ("lines", tidy.build_lines(snapshots, games)),
    ]:
        days = sorted(frame["game_date"].unique().to_list())
        lake.write_daily(frame, lambda d, t=table: table_key(t, NBA, d), days)
    register_demo_models(lake)
    _register(lake, NFL_MODEL)
    assert set(SPORTS) == {NBA, NFL}  # the default config covers both

    _run_every_asset(lake, first, last)

    for table in ("team_rates", "line_history", "analyses", "settled_picks", "model_performance"):
        assert _read(lake, table, NBA, first, last).height > 0, table
    for table in ("team_form", "player_form"):
        assert _read(lake, table, NBA, first, last).is_empty(), table
    for table in [*TABLE_SCHEMAS, "model_performance"]:
        assert _read(lake, table, NFL, first, last).is_empty(), table
    scored = _read(lake, "analyses", NBA, first, last)
    assert scored["p"].is_between(0, 1).all()


@pytest.fixture(scope="module")
def nfl_history(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake holding the real NFL history file, imported as ``oddsforge import-history`` does."""
    path = shared_data / "real" / "nfl_spreadspoke_nfelo" / "nfl_games_scores_lines_1999_2022.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    root = tmp_path_factory.mktemp("nfl") / "lake"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ODDSFORGE_LAKE", str(root))
        import_history("nfl-lines", [path], progress=lambda _: None)
    return Lake(root=str(root))


def test_every_asset_on_the_nfl_history_file(nfl_history: Lake) -> None:
    """Two Sundays of the 2018 season: scores and lines, no box scores, and no NBA data."""
    first, last = dt.date(2018, 10, 7), dt.date(2018, 10, 14)
    _register(nfl_history, NFL_MODEL)
    _run_every_asset(nfl_history, first, last)

    for table in ("team_rates", "line_history", "analyses", "settled_picks"):
        assert _read(nfl_history, table, NFL, first, last).height > 0, table
    for table in ("team_form", "player_form"):
        assert _read(nfl_history, table, NFL, first, last).is_empty(), table
    graded = _read(nfl_history, "settled_picks", NFL, first, last)
    assert graded["result"].is_in(["won", "lost", "push"]).any()
