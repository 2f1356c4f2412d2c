"""The one switch between local and production: every resource is built here from the environment.

Local (nothing set): the lake in ``./data/lake``, the warehouse in ``./data/warehouse``, the
embedded sample league as odds and stats feed. Production: ``ODDSFORGE_LAKE=s3://bucket/prefix``
(credentials and endpoint from the standard AWS variables), ``ODDSFORGE_ODDS_FEED=oddsapi`` with
``ODDS_API_KEY`` read at run time through ``dg.EnvVar``; box scores then come from history imports
(``ODDSFORGE_STATS_FEED=none``, the default whenever the odds feed is not the sample league).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resources.feeds import NoStatsFeed
from resources.lake import Lake
from resources.odds_api import OddsApiFeed
from resources.sample_feed import SampleLeagueFeed
from resources.warehouse import Warehouse

FEEDS = ("sample", "oddsapi")


def odds_feed_from_env() -> Any:
    kind = os.environ.get("ODDSFORGE_ODDS_FEED", "sample")
    if kind == "sample":
        return SampleLeagueFeed()
    if kind == "oddsapi":
        return OddsApiFeed(api_key=dg.EnvVar("ODDS_API_KEY"))
    raise ValueError(f"ODDSFORGE_ODDS_FEED={kind!r}; expected one of {', '.join(FEEDS)}")


def stats_feed_from_env() -> Any:
    default = "sample" if os.environ.get("ODDSFORGE_ODDS_FEED", "sample") == "sample" else "none"
    kind = os.environ.get("ODDSFORGE_STATS_FEED", default)
    if kind == "sample":
        return SampleLeagueFeed()
    if kind == "none":
        return NoStatsFeed()
    raise ValueError(f"ODDSFORGE_STATS_FEED={kind!r}; expected sample or none")


def build_resources() -> dict[str, Any]:
    """Resources for the Definitions, the CLI and tests (which override single entries)."""
    return {
        "lake": Lake.from_env(),
        "warehouse": Warehouse.from_env(),
        "odds_feed": odds_feed_from_env(),
        "stats_feed": stats_feed_from_env(),
    }
