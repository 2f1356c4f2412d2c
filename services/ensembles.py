"""A model scored outside the daily run (a backtest, an on-demand run) with the members it uses.

An ensemble's model sources read its members' analyses at the same cut-off, so the members are
scored in the same batch (the engine orders it in layers); only the model's own rows are reported.
"""

from __future__ import annotations

import json

import polars as pl

from domain.models.config import ModelConfig, parse_model_config
from domain.models.sources.model import ModelSource, member_versions
from stores.lake import Lake
from stores.layout import table_key


def with_members(lake: Lake, config: ModelConfig) -> list[ModelConfig]:
    """``config`` first, then the stored versions (``model_versions``) its model sources use,
    transitively: the pinned version, else the member's latest."""
    key = table_key("model_versions")
    uses_models = any(isinstance(s, ModelSource) for s in config.data_sources.as_dict().values())
    if not uses_models or not lake.exists(key):
        return [config]
    stored = lake.read_parquet([key]).select("model_id", "version", "config_json")
    own = pl.DataFrame(
        {
            "model_id": [config.model_id],
            "version": [config.version],
            "config_json": [json.dumps(config.to_payload())],
        },
        schema=stored.schema,
    )
    members = member_versions(own, stored)
    return [config, *(parse_model_config(json.loads(doc)) for doc in members["config_json"])]


def own_rows(frame: pl.DataFrame, config: ModelConfig) -> pl.DataFrame:
    """The rows of ``frame`` (analyses or a report) that are ``config``'s, not its members'."""
    return frame.filter((pl.col("model_id") == config.model_id) & (pl.col("version") == config.version))
