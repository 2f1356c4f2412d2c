"""The marketplace's pipeline for API-level tests: ingest, models, scores, listing status, users'
reviews, dbt marts and the serving snapshot over a temporary lake and warehouse, fed by the sample
league. One definition shared by the marketplace and the contract tests, so that they build the same
tables."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.analyses import analyses
from assets.ingest import ingest_assets
from assets.marketplace import model_status, subscriptions, user_reviews
from assets.marts import dbt_resource, marts
from assets.models import model_versions
from assets.performance import model_calibration, model_performance, settled_picks
from assets.serving import serving_snapshot
from resources.sample_feed import SampleLeagueFeed
from stores.lake import Lake
from stores.warehouse import Warehouse

INGEST_OPS = ["raw_feeds", "games", "odds_snapshots", "lines", "team_box_scores", "player_box_scores"]
"""The ingest job's ops, each configured with the sports to ingest."""


def market_definitions(
    lake: Lake, root: Path, jobs: dict[str, list[str | dg.AssetsDefinition]]
) -> dg.Definitions:
    """The assets above with the ``ingest`` and daily ``score`` jobs, plus ``jobs`` (name: asset keys
    or definitions, such as the dbt ``marts``; unpartitioned) over the lake and a warehouse in
    ``root / "warehouse"``."""
    daily = analyses.partitions_def
    return dg.Definitions(
        assets=[
            *ingest_assets,
            model_versions,
            analyses,
            settled_picks,
            model_performance,
            model_calibration,
            subscriptions,
            model_status,
            user_reviews,
            marts,
            serving_snapshot,
        ],
        jobs=[
            dg.define_asset_job("ingest", dg.AssetSelection.groups("ingest", "tables"), partitions_def=daily),
            dg.define_asset_job(
                "score",
                dg.AssetSelection.assets("analyses", "settled_picks", "model_performance"),
                partitions_def=daily,
            ),
            dg.define_asset_job("analyses_only", dg.AssetSelection.assets("analyses"), partitions_def=daily),
            *(dg.define_asset_job(name, dg.AssetSelection.assets(*keys)) for name, keys in jobs.items()),
        ],
        resources={
            "lake": lake,
            "warehouse": Warehouse(directory=str(root / "warehouse")),
            "odds_feed": SampleLeagueFeed(),
            "stats_feed": SampleLeagueFeed(),
            "dbt": dbt_resource(),
        },
    )
