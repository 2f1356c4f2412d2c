"""Models: the ``model_versions`` table built from the registry's inbox, and the sensor that feeds it.

The API writes immutable version objects and archive markers under ``inbox/models/``; Dagster is
the only writer of the table. The sensor lists the inbox every 30 seconds and asks for one run per
tick that merges exactly the new objects (idempotently), so the table follows the inbox within a
minute without a partition per model.

No ``from __future__ import annotations`` here: Dagster reads the ``config`` parameter's annotation
unevaluated and cannot resolve a string to the Config class.
"""

import hashlib
import json
from collections.abc import Iterable

import dagster as dg
import polars as pl
from pydantic import Field

from assets._common import markdown_table
from domain.models.registry import MODEL_VERSIONS, merge_model_versions
from domain.tables.schemas import empty
from stores.lake import Lake, table_key
from stores.registry import INBOX_PREFIX, RegistryStore

TABLE = "model_versions"
TABLE_KEY = table_key(TABLE)

SETTLE_SECONDS = 60.0
"""How far back the sensor re-checks modification times. An object's time is when its write
started (S3 ``LastModified``, the temp file's mtime locally), so a slow write can become visible
after a quicker, later one; keys seen inside this window are kept in the cursor instead of trusting
the newest time alone."""
RUN_TAGS = {"oddsforge/inbox": "models"}
"""Tags the sensor's runs, so a tick can see that one is still going."""
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
MAX_KEYS_PER_RUN = 5_000
"""Above this many new objects (a first deployment over a full inbox), a tick asks for a full
rebuild instead of passing every key in the run config."""


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


def new_inbox_objects(
    objects: Iterable[tuple[str, float]], cursor: str | None
) -> tuple[list[str], str | None]:
    """The keys among ``objects`` (key, modification time) not processed yet, and the next cursor.

    The cursor is JSON ``{"mtime": newest time processed, "keys": [keys whose time lies within
    SETTLE_SECONDS of it]}``: an object older than that window was processed, one inside it is new
    unless listed, so nothing is missed or repeated. With nothing new the cursor stays as it is.
    """
    listed = list(objects)
    if cursor is None:
        new, watermark = listed, float("-inf")
    else:
        state = json.loads(cursor)
        seen, watermark = set(state["keys"]), state["mtime"]
        new = [(k, m) for k, m in listed if m >= watermark - SETTLE_SECONDS and k not in seen]
    if not new:
        return [], cursor
    newest = max(watermark, *(m for _, m in new))
    window = sorted(k for k, m in listed if m >= newest - SETTLE_SECONDS)
    return sorted(k for k, _ in new), json.dumps({"mtime": newest, "keys": window})


@dg.sensor(
    target=model_versions,
    minimum_interval_seconds=30,
    description="Merges new model versions and archive markers from the inbox into model_versions.",
)
def model_inbox_sensor(
    context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake]
) -> dg.SensorResult | dg.SkipReason:
    # Merges read, then rewrite the table: two at once would lose one's rows. The tick after the
    # running merge ends takes every object that arrived meanwhile.
    if context.instance.get_runs(dg.RunsFilter(tags=RUN_TAGS, statuses=_UNFINISHED), limit=1):
        return dg.SkipReason("the previous model_versions merge has not finished")
    keys, cursor = new_inbox_objects(lake.list_objects(INBOX_PREFIX), context.cursor)
    if not keys:
        return dg.SkipReason(f"no new objects under {INBOX_PREFIX}")
    # The same new keys at the same cursor give the same run key, so a restarted tick never repeats.
    digest = hashlib.sha256("\n".join([*keys, str(cursor)]).encode()).hexdigest()
    run_keys = keys if len(keys) <= MAX_KEYS_PER_RUN else []
    request = dg.RunRequest(
        run_key=f"models-{digest[:32]}",
        run_config={"ops": {TABLE: {"config": {"keys": run_keys}}}},
        tags=RUN_TAGS | {"oddsforge/new_objects": str(len(keys))},
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)


model_assets = [model_versions]
model_sensors = [model_inbox_sensor]
