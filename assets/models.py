"""Models: the ``model_versions`` table built from the registry's inbox.

The API writes immutable version objects and archive markers under ``inbox/models/``; Dagster is
the only writer of the table. The inbox sensor (``pipelines/sensors.py``) lists the inbox every 30
seconds and asks for one run per tick that merges exactly the new objects (idempotently), so the
table follows the inbox within a minute without a partition per model.

No ``from __future__ import annotations`` here: Dagster reads the ``config`` parameter's annotation
unevaluated and cannot resolve a string to the Config class.
"""

import dagster as dg
import polars as pl
from pydantic import Field

from assets.common import markdown_table
from domain.models.registry import MODEL_VERSIONS, merge_model_versions
from domain.tables.schemas import empty
from stores.lake import Lake
from stores.layout import table_key
from stores.registry import RegistryStore

TABLE = "model_versions"
TABLE_KEY = table_key(TABLE)


class ModelVersionsConfig(dg.Config):
    keys: list[str] = Field(default_factory=list)
    """Inbox keys to merge into the existing table; empty rebuilds the table from the whole inbox."""


@dg.asset(
    name=TABLE,
    group_name="models",
    kinds={"polars", "parquet"},
    description="One row per model version (configuration, sharing, status), built from the inbox.",
)
def model_versions(
    context: dg.AssetExecutionContext, config: ModelVersionsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    """Merge the given inbox objects into the table, or rebuild it from every object."""
    store = RegistryStore(lake)
    if config.keys:
        existing = lake.read_parquet([TABLE_KEY]) if lake.exists(TABLE_KEY) else empty(MODEL_VERSIONS)
        keys = config.keys
    else:
        existing = empty(MODEL_VERSIONS)
        keys = list(store.inbox_keys())
    records, archived = store.load(keys)
    table = merge_model_versions(existing, records, archived)
    lake.write_parquet(TABLE_KEY, table)
    context.log.info(
        "merged %d objects (%d versions, %d archive markers)", len(keys), len(records), len(archived)
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "mode": "incremental" if config.keys else "full rebuild",
            "objects_merged": len(keys),
            "models": table["model_id"].n_unique(),
            "active_models": table.filter(pl.col("status") == "active")["model_id"].n_unique(),
            "versions": table.height,
            "preview": dg.MetadataValue.md(
                markdown_table(table.drop("config_json").sort("created_at", descending=True))
            ),
        }
    )


model_assets = [model_versions]
