"""The ingest assets end to end: sample feed -> raw -> tidy tables, on a real S3 API and locally."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from assets.ingest import ingest_assets
from assets.serving import serving_snapshot
from resources.feeds import NoStatsFeed
from resources.sample_feed import SampleLeagueFeed
from stores.lake import Lake
from stores.layout import table_key
from stores.warehouse import Warehouse, lake_connection

DAY = "2025-11-02"


def _resources(lake: Lake, tmp_path) -> dict:
    return {
        "lake": lake,
        "warehouse": Warehouse(directory=str(tmp_path / "wh")),
        "odds_feed": SampleLeagueFeed(),
        "stats_feed": SampleLeagueFeed(),
    }


def test_ingest_on_s3_reads_back_with_duckdb_httpfs_and_polars(s3_lake: Lake, tmp_path) -> None:
    result = dg.materialize(ingest_assets, partition_key=DAY, resources=_resources(s3_lake, tmp_path))
    assert result.success
    day = dt.date.fromisoformat(DAY)
    games = pl.read_parquet(
        s3_lake.uri(table_key("games", "basketball_nba", day)),
        storage_options=s3_lake.polars_storage_options(),
    )
    assert games.height > 0 and games["completed"].all()
    with lake_connection(s3_lake) as con:
        n_games, n_lines, books = con.execute(
            "SELECT (SELECT count(*) FROM games), (SELECT count(*) FROM lines),"
            " (SELECT count(DISTINCT bookmaker) FROM lines)"
        ).fetchone()
        box_pts = con.execute(
            "SELECT sum(t.pts) = sum(CASE WHEN t.is_home THEN g.home_score ELSE g.away_score END)"
            " FROM team_box_scores t JOIN games g USING (game_id)"
        ).fetchone()[0]
    assert n_games == games.height
    assert n_lines == n_games * books * 3  # every game has h2h, spreads and totals at every bookmaker
    assert box_pts  # team box points agree with the final scores
    meta = result.asset_materializations_for_node("raw_feeds")[0].metadata
    assert meta["dagster/row_count"].value > 0


def test_range_run_is_one_run_and_rerun_is_idempotent(tmp_path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    defs = dg.Definitions(
        assets=[*ingest_assets, serving_snapshot],
        jobs=[
            dg.define_asset_job(
                "ingest",
                selection=dg.AssetSelection.groups("ingest", "tables"),
                partitions_def=ingest_assets[0].partitions_def,
            )
        ],
        resources=_resources(lake, tmp_path),
    )
    job = defs.resolve_job_def("ingest")
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2025-11-01", ASSET_PARTITION_RANGE_END_TAG: "2025-11-07"}
    instance = dg.DagsterInstance.ephemeral()
    assert job.execute_in_process(instance=instance, tags=tags).success
    first = {k: lake.get_bytes(k) for k in lake.list_keys("tables/")}
    assert len([k for k in first if k.startswith("tables/games/")]) == 7
    assert job.execute_in_process(instance=instance, tags=tags).success
    assert {k: lake.get_bytes(k) for k in lake.list_keys("tables/")}.keys() == first.keys()
    with lake_connection(lake) as con:
        assert con.execute("SELECT count(*) = count(DISTINCT game_id) FROM games").fetchone()[0]
    served = dg.materialize([serving_snapshot], resources=_resources(lake, tmp_path))
    assert served.success and Warehouse(directory=str(tmp_path / "wh")).current() is not None


def test_stats_feed_none_writes_no_box_scores(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    resources = {**_resources(lake, tmp_path), "stats_feed": NoStatsFeed()}
    assert dg.materialize(ingest_assets, partition_key=DAY, resources=resources).success
    assert not list(lake.list_keys("raw/team_box/"))
    assert list(lake.list_keys("raw/odds_snapshots/"))


@pytest.mark.parametrize("sport", ["americanfootball_nfl"])
def test_sample_feed_has_no_other_sports(tmp_path, sport: str) -> None:
    lake = Lake(root=str(tmp_path))
    run_config = {"ops": {"raw_feeds": {"config": {"sports": [sport]}}}}
    assert dg.materialize(
        ingest_assets[:1], partition_key=DAY, resources=_resources(lake, tmp_path), run_config=run_config
    ).success
    assert not list(lake.list_keys("raw/"))
