"""User datasets: the ``datasets`` table and each version's stored rows, built from the inbox; the
great-expectations suite as the asset's check.

The API stores an upload and its ``meta.json`` under ``inbox/datasets/`` (``stores/datasets``)
and answers ``processing`` until the table has the version. Each sensor tick asks for one run over
the new inbox objects; the asset reads each new version again with the same reader and limits as
the API, scores it (the fast path), validates it with pandera, stores the typed rows (warehouse or
lake, SPEC 7) with its report, and records the version as ``active`` or ``error``. A newer active
version supersedes the older ones (their data is removed); a deleted dataset's data and rows go.

The great-expectations suite is slow (seconds to a minute per dataset), so it never runs on a
request: it is this asset's check, run after each materialisation on the versions it processed. It
reads each version as the asset stored it (typed rows, with the text of the cells that did not
parse), not the upload, keeps GE's result and Data Docs page next to the report, and fails when
GE's verdict on any rule differs from the stored fast-path report's (the two implementations must
agree; the score is the fast path's).

No ``from __future__ import annotations`` here: Dagster reads the ``config`` parameter's annotation
unevaluated and cannot resolve a string to the Config class.
"""

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from assets.common import markdown_table
from domain.datasets.documents import Naming
from domain.datasets.registry import DATASETS, DatasetRow, merge_datasets, storage_for, version_row
from domain.datasets.validation import typed_rows, validate
from domain.errors import UserError
from domain.tables.schemas import empty
from services.dataset_intake import assess
from stores.datasets import DatasetStore
from stores.lake import Lake
from stores.layout import dataset_meta_key, parse_dataset_key
from stores.warehouse import Warehouse

TABLE = "datasets"
PROCESSED = "processed_versions"
"""Materialisation metadata: the versions this run stored, which the GE check then validates."""


class DatasetsConfig(dg.Config):
    keys: list[str] = Field(default_factory=list)
    """Inbox keys (versions, edits, tombstones) to merge; empty rebuilds from the whole inbox."""


def _process(store: DatasetStore, dataset_id: str, version: int, now: dt.datetime) -> DatasetRow:
    """The ``datasets`` row of one version, storing its rows and report when it is readable."""
    meta = store.meta(dataset_id, version)
    inbox_key = dataset_meta_key(dataset_id, version)
    if not store.lake.exists(meta.upload_key):  # a full rebuild meets versions purged earlier
        return version_row(meta, inbox_key, "superseded")
    try:
        found = assess(
            store.lake.get_bytes(meta.upload_key),
            meta.filename,
            meta.declared_schema,
            meta.sport,
            meta.data_type,
            now.date(),
        )
    except UserError as exc:  # the API checked the same rules; a limit may have changed since
        return version_row(meta, inbox_key, "error", error=str(exc))
    frame, schema, report = found.parsed.frame, found.parsed.schema, found.report
    storage = storage_for(meta.size_bytes, frame.height)
    location = store.store_rows(dataset_id, version, typed_rows(frame, schema), report.key_fields, storage)
    pandera_failures = validate(frame, schema, meta.data_type)
    store.write_report(
        dataset_id, version, found.as_dict() | {"validation": [asdict(f) for f in pandera_failures]}
    )
    return version_row(
        meta,
        inbox_key,
        "active",
        row_count=frame.height,
        field_count=frame.width,
        schema_json=json.dumps(schema),
        quality_score=report.score,
        usable=report.usable,
        storage=storage,
        location=location,
    )


@dg.asset(
    name=TABLE,
    group_name="datasets",
    kinds={"polars", "parquet", "duckdb"},
    description="One row per user dataset version (status, rows, size, quality, storage), built from "
    "the inbox; stores each version's typed rows, keyed, in the warehouse (small) or the lake.",
)
def datasets(
    context: dg.AssetExecutionContext,
    config: DatasetsConfig,
    lake: dg.ResourceParam[Lake],
    warehouse: dg.ResourceParam[Warehouse],
) -> dg.MaterializeResult:
    """Process the given inbox objects into the table, or rebuild it from every object."""
    store = DatasetStore(lake, warehouse.directory)
    now = dt.datetime.now(dt.UTC)
    keys = config.keys or [key for key, _ in store.event_keys()]
    parsed = {key: parse_dataset_key(key) for key in keys}
    if bad := [key for key, p in parsed.items() if p is None or p.kind == "upload"]:
        raise ValueError(f"not dataset inbox events: {', '.join(bad)}")
    new_versions: dict[str, set[int]] = {}  # every dataset an event names, with its new versions
    for event in filter(None, parsed.values()):
        versions = new_versions.setdefault(event.dataset_id, set())
        if event.kind == "meta" and event.number is not None:
            versions.add(event.number)

    records: list[DatasetRow] = []
    infos: dict[str, Naming] = {}
    deleted: set[str] = set()
    for dataset_id, versions in sorted(new_versions.items()):
        state = store.state(dataset_id)
        if state is None:
            continue
        if state.deleted:
            deleted.add(dataset_id)
            for version in state.versions:
                store.purge_version(dataset_id, version)
            continue
        infos[dataset_id] = store.info(state, store.meta(dataset_id, state.latest))
        records += [_process(store, dataset_id, v, now) for v in sorted(versions)]

    existing = store.table() if config.keys else empty(DATASETS)
    table = merge_datasets(existing, records, infos, deleted)
    store.write_table(table)
    touched = table.filter(pl.col("dataset_id").is_in(list(new_versions)))
    for dataset_id, version in (
        touched.filter(pl.col("status") == "superseded").select("dataset_id", "version").iter_rows()
    ):
        store.purge_version(dataset_id, version)

    active = set(table.filter(pl.col("status") == "active").select("dataset_id", "version").iter_rows())
    stored = [r for r in records if (r.dataset_id, r.version) in active]
    errors = [r for r in records if r.status == "error"]
    for r in errors:
        context.log.warning("dataset %s v%d refused: %s", r.dataset_id, r.version, r.error)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "mode": "incremental" if config.keys else "full rebuild",
            "objects_merged": len(keys),
            "datasets": table["dataset_id"].n_unique(),
            "versions_stored": len(stored),
            "versions_refused": len(errors),
            "datasets_deleted": len(deleted),
            PROCESSED: dg.MetadataValue.json(
                [{"dataset_id": r.dataset_id, "version": r.version} for r in stored]
            ),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    table.select("dataset_id", "version", "status", "row_count", "quality_score", "storage")
                )
            ),
        }
    )


@dg.asset_check(
    asset=datasets,
    name="great_expectations_suite",
    description="Runs each newly stored dataset version's great-expectations suite, keeps its result "
    "and Data Docs page, and fails if GE's verdict on any rule differs from the fast path's.",
)
def great_expectations_suite(
    context: dg.AssetCheckExecutionContext,
    lake: dg.ResourceParam[Lake],
    warehouse: dg.ResourceParam[Warehouse],
) -> dg.AssetCheckResult:
    # Imported here: great-expectations takes seconds to import, and only this check needs it.
    from services.dataset_quality import fast_verdicts, ge_verdicts, validate_with_ge

    store = DatasetStore(lake, warehouse.directory)
    event = context.instance.get_latest_materialization_event(datasets.key)
    materialization = event.asset_materialization if event else None
    processed: list[dict[str, Any]] = materialization.metadata[PROCESSED].value if materialization else []
    ids = [item["dataset_id"] for item in processed]
    rows = {(r.dataset_id, r.version): r for r in store.rows(pl.col("dataset_id").is_in(ids))}
    checked: list[dict[str, Any]] = []
    for item in processed:
        dataset_id, version = item["dataset_id"], item["version"]
        row = rows.get((dataset_id, version))
        fast_report = store.quality(dataset_id, version)
        stored = store.read_rows(dataset_id, version)
        if row is None or fast_report is None or stored is None:  # superseded or deleted since
            continue
        ge = validate_with_ge(stored, row.field_types, row.sport, row.data_type, fast_report.today)
        store.write_ge(dataset_id, version, ge)
        verdicts, fast = ge_verdicts(ge.result), fast_verdicts(fast_report)
        checked.append(
            {
                "dataset_id": dataset_id,
                "version": version,
                "ge_success": ge.result["success"],
                "ge": verdicts,
                "agrees": verdicts == fast,
                "fast": fast,
            }
        )
    disagreeing = [c for c in checked if not c["agrees"]]
    return dg.AssetCheckResult(
        passed=not disagreeing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "versions_checked": len(checked),
            "ge_suites_failed": sum(not c["ge_success"] for c in checked),
            "disagreements": dg.MetadataValue.json(disagreeing),
            "results": dg.MetadataValue.json(checked),
        },
    )


dataset_assets = [datasets]
dataset_checks = [great_expectations_suite]
