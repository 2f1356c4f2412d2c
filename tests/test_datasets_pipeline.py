"""User datasets in the pipeline: ids and limits (domain), the inbox sensor, the ``datasets`` asset
(storage split, key lookups, versions, deletion), the great-expectations asset check, and the
``oddsforge dataset validate`` exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from assets.datasets import datasets, great_expectations_suite
from cli.main import main
from domain.datasets.documents import MetadataEdit, Naming, Tombstone, VersionMeta
from domain.datasets.files import read_dataset
from domain.datasets.registry import (
    DATASETS,
    DatasetLimits,
    DatasetRow,
    LimitExceeded,
    Quota,
    Status,
    check_dataset_count,
    check_storage,
    check_upload_rate,
    current_rows,
    dataset_owner,
    merge_datasets,
    new_dataset_id,
    storage_for,
)
from domain.datasets.validation import QualityReport, typed_rows
from domain.models.registry import new_model_id
from domain.tables.schemas import empty
from domain.tiers import tier_of
from pipelines.sensors import dataset_inbox_sensor
from services.custom_scores import dataset_rows
from services.dataset_intake import assess
from services.dataset_quality import fast_verdicts, ge_verdicts
from stores.datasets import TABLE_KEY, DatasetStore, dataset_infos
from stores.documents import DocumentError
from stores.lake import Lake
from stores.layout import dataset_meta_key, dataset_report_key, dataset_rows_key, dataset_upload_key
from stores.warehouse import Warehouse, lake_connection

NBA = "basketball_nba"
T0 = dt.datetime(2026, 1, 23, 19, 0, tzinfo=dt.UTC)


# --- files ---


def games_csv(n: int = 40, *, value: dict[int, str] | None = None, empty_rows: tuple[int, ...] = ()) -> bytes:
    """``n`` NBA games (January-February 2024) with values 48-52; rows (1-based) may be overridden."""
    lines = ["game_id,date,value"]
    for row in range(1, n + 1):
        cell = "" if row in empty_rows else (value or {}).get(row, str(48 + row % 5))
        lines.append(f"g{row:05d},{dt.date(2024, 1, 1) + dt.timedelta(days=row % 50)},{cell}")
    return ("\n".join(lines) + "\n").encode()


def team_csv(n: int) -> bytes:
    """``n`` team-level rows over five teams, written in reverse date order (not key order)."""
    teams = ["BOS", "NYK", "LAL", "GSW", "MIA"]
    lines = ["team,date,rest_days"]
    for row in reversed(range(n)):
        day = dt.date(2023, 10, 24) + dt.timedelta(days=row // len(teams))
        lines.append(f"{teams[row % len(teams)]},{day},{row % 4}")
    return ("\n".join(lines) + "\n").encode()


# --- pipeline helpers (the API tests use them too) ---


def put_version(
    store: DatasetStore,
    user: str,
    data: bytes,
    *,
    dataset_id: str | None = None,
    version: int = 1,
    data_type: str = "game_level",
    sport: str | None = NBA,
    filename: str = "upload.csv",
    entropy: bytes = b"\x00\x00\x01",
) -> str:
    """Store a version in the inbox the way the API does (without the API's checks)."""
    dataset_id = dataset_id or new_dataset_id(user, entropy)
    meta = VersionMeta(
        dataset_id=dataset_id,
        version=version,
        owner_user_id=user,
        name=f"{filename} data",
        description="",
        sport=sport,
        data_type=data_type,
        declared_schema=None,
        field_types={},
        filename=filename,
        format="csv",
        size_bytes=len(data),
        rows=0,
        fields=0,
        created_at=T0,
        uploaded_at=T0 + dt.timedelta(hours=version),
        upload_key=dataset_upload_key(dataset_id, version, "csv", "0123456789abcdef"),
    )
    assert store.create_version(meta, data)
    return dataset_id


def tick(lake: Lake, cursor: str | None, instance: dg.DagsterInstance | None = None) -> Any:
    context = dg.build_sensor_context(
        cursor=cursor, instance=instance or dg.DagsterInstance.ephemeral(), resources={"lake": lake}
    )
    return dataset_inbox_sensor(context)


def run_pipeline(
    lake: Lake, warehouse_dir: Path, cursor: str | None = None, *, checks: bool = False
) -> tuple[str | None, dg.ExecuteInProcessResult]:
    """One sensor tick and the run it asks for (with the GE check when ``checks``); the new cursor."""
    request = tick(lake, cursor)
    assert isinstance(request, dg.SensorResult), request
    result = dg.materialize(
        [datasets, great_expectations_suite] if checks else [datasets],
        resources={"lake": lake, "warehouse": Warehouse(directory=str(warehouse_dir))},
        run_config=request.run_requests[0].run_config,
    )
    assert result.success
    return request.cursor, result


def table(lake: Lake) -> pl.DataFrame:
    return lake.read_parquet([TABLE_KEY])


def row_of(lake: Lake, dataset_id: str, version: int) -> dict[str, Any]:
    found = table(lake).filter((pl.col("dataset_id") == dataset_id) & (pl.col("version") == version))
    assert found.height == 1
    return found.row(0, named=True)


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(Lake(root=str(tmp_path / "lake")), tmp_path / "warehouse")


# --- domain: ids, limits, the table ---


def test_dataset_ids_encode_their_owner_and_are_not_model_ids() -> None:
    dataset_id = new_dataset_id("user123", b"\x3f\xa9\xc1")
    assert dataset_id == "user123--ds-3fa9c1"
    assert dataset_owner(dataset_id) == "user123"
    assert dataset_owner(new_model_id("user123", "Momentum", b"\x3f\xa9\xc1")) is None
    assert dataset_owner("user123--ds-3fa9c") is None
    assert dataset_owner("a/b--ds-3fa9c1") is None


def test_limits_name_themselves_and_say_when_to_retry() -> None:
    limits = DatasetLimits()
    assert [tier_of(c) for c in ("pro", " Enterprise ", "gold", None, 3)] == [
        "pro",
        "enterprise",
        "free",
        "free",
        "free",
    ]
    now = 1_000_000.0
    times = [now - 86_400 - 1] + [now - 3600 * h for h in range(1, 11)]  # the first is outside the window
    with pytest.raises(LimitExceeded, match="10 uploads per 24 hours") as err:
        check_upload_rate(times, now, limits)
    assert (err.value.status, err.value.code) == (429, "upload_rate_exceeded")
    assert err.value.retry_after == 86_400 - 10 * 3600  # the oldest of the ten leaves the window then
    check_upload_rate(times[:-1], now, limits)
    with pytest.raises(LimitExceeded, match="free tier allows 10 datasets") as err:
        check_dataset_count("free", 10, limits)
    assert (err.value.status, err.value.code) == (429, "dataset_quota_exceeded")
    check_dataset_count("pro", 10, limits)
    check_dataset_count("enterprise", 10**6, limits)
    with pytest.raises(LimitExceeded, match="pro tier allows 1,000,000,000 bytes") as err:
        check_storage("pro", 999_999_000, 1_001, limits)
    assert (err.value.status, err.value.code) == (413, "storage_quota_exceeded")
    check_storage("pro", 999_999_000, 1_000, limits)
    check_storage("enterprise", 10**15, 10**8, DatasetLimits(quotas={"enterprise": Quota(None, None)}))
    assert [storage_for(999_999, 999), storage_for(1_000_000, 10), storage_for(10, 1_000)] == [
        "warehouse",
        "lake",
        "lake",
    ]


def test_merge_upserts_applies_edits_removes_deleted_and_supersedes() -> None:
    def record(dataset_id: str, version: int, status: Status) -> DatasetRow:
        return DatasetRow(
            dataset_id=dataset_id,
            version=version,
            owner_user_id="u",
            name="old",
            description="",
            sport=None,
            data_type="game_level",
            status=status,
            filename="f.csv",
            format="csv",
            size_bytes=1,
            created_at=T0,
            uploaded_at=T0,
            updated_at=T0,
            inbox_key=dataset_meta_key(dataset_id, version),
        )

    later = T0 + dt.timedelta(days=1)
    merged = merge_datasets(
        empty(DATASETS),
        [record("u--ds-000001", 1, "active"), record("u--ds-000002", 1, "active")],
        {},
        set(),
    )
    merged = merge_datasets(
        merged,
        [record("u--ds-000001", 2, "active"), record("u--ds-000001", 3, "error")],
        {"u--ds-000001": Naming("new", "d", later)},
        {"u--ds-000002"},
    )
    assert merged.select("version", "status", "name", "updated_at").rows() == [
        (1, "superseded", "new", later),
        (2, "active", "new", later),
        (3, "error", "new", later),
    ]
    assert current_rows(merged)["version"].to_list() == [2]
    again = merge_datasets(merged, [record("u--ds-000001", 3, "error")], {}, {"u--ds-000002"})
    assert again.select("version", "status").rows() == merged.select("version", "status").rows()


# --- sensor ---


def test_sensor_asks_once_for_each_version_edit_and_deletion(store: DatasetStore) -> None:
    first = put_version(store, "u1", games_csv())
    tick1 = tick(store.lake, None)
    assert isinstance(tick1, dg.SensorResult)
    assert tick1.run_requests[0].run_config == {
        "ops": {"datasets": {"config": {"keys": [dataset_meta_key(first, 1)]}}}  # never the upload itself
    }
    assert tick1.run_requests[0].tags["oddsforge/inbox"] == "datasets"
    assert isinstance(tick(store.lake, tick1.cursor), dg.SkipReason)

    store.edit(first, 1, MetadataEdit(name="n", description="", edited_by="u1", edited_at=T0))
    store.mark_deleted(first, Tombstone(deleted_by="u1", deleted_at=T0))
    tick2 = tick(store.lake, tick1.cursor)
    assert isinstance(tick2, dg.SensorResult)
    keys = tick2.run_requests[0].run_config["ops"]["datasets"]["config"]["keys"]
    assert [k.rsplit("/", 2)[-2:] for k in keys] == [
        ["u1--ds-000001", "deleted.json"],
        ["edits", "000001.json"],
    ]
    assert tick(store.lake, tick1.cursor).run_requests[0].run_key == tick2.run_requests[0].run_key

    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(
        dg.DagsterRun("__ASSET_JOB", status=dg.DagsterRunStatus.STARTED, tags=tick1.run_requests[0].tags)
    )
    assert isinstance(tick(store.lake, tick1.cursor, instance), dg.SkipReason)  # one run at a time


# --- the asset ---


def test_small_in_the_warehouse_large_in_the_lake_both_indexed_by_key(store: DatasetStore) -> None:
    lake = store.lake
    small = put_version(store, "u1", games_csv(40))
    large = put_version(store, "u1", team_csv(20_000), data_type="team_level", entropy=b"\x00\x00\x02")
    _, result = run_pipeline(lake, store.warehouse_dir)

    meta = result.asset_materializations_for_node("datasets")[0].metadata
    assert meta["versions_stored"].value == 2
    assert meta["processed_versions"].value == [
        {"dataset_id": small, "version": 1},
        {"dataset_id": large, "version": 1},
    ]
    s, g = row_of(lake, small, 1), row_of(lake, large, 1)
    assert (s["status"], s["storage"], s["row_count"], s["usable"]) == ("active", "warehouse", 40, True)
    assert (g["status"], g["storage"], g["row_count"], g["field_count"]) == ("active", "lake", 20_000, 3)
    assert s["location"] == f"datasets/{small}/v000001.duckdb" and g["location"] == dataset_rows_key(large, 1)
    assert json.loads(g["schema_json"]) == {"team": "string", "date": "date", "rest_days": "int"}
    assert s["quality_score"] == pytest.approx(1.0)

    # The warehouse copy is an indexed DuckDB table that opens read-only.
    with duckdb.connect(str(store.warehouse_dir / s["location"]), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'rows'").fetchone() == (
            1,
        )
    assert store.lookup(DatasetRow.model_validate(s), {"game_id": "g00007"}, 10).to_dicts() == [
        {"game_id": "g00007", "date": dt.date(2024, 1, 8), "value": 50}
    ]
    # The lake copy is sorted by key in small row groups, so a lookup reads a few of them.
    parquet = pq.ParquetFile(lake.uri(g["location"]))
    assert parquet.metadata.num_row_groups >= 3
    stored = pl.read_parquet(lake.uri(g["location"]))
    assert stored.select("team", "date").equals(stored.select("team", "date").sort("team", "date"))
    day = dt.date(2023, 10, 24) + dt.timedelta(days=100)
    assert store.lookup(DatasetRow.model_validate(g), {"team": "NYK", "date": day}, 10).to_dicts() == [
        {"team": "NYK", "date": day, "rest_days": 501 % 4}
    ]
    # Batch scoring reads every dataset's rows from the lake, small ones too.
    rows = dataset_rows(lake, [small, large])
    assert rows[small].data_type == "game_level" and rows[small].frame.height == 40
    assert rows[large].frame.equals(stored)
    # The table is a warehouse view; model validation sees both datasets with their scoreable fields.
    assert lake_connection(lake).execute("SELECT count(*) FROM datasets").fetchone() == (2,)
    infos = dataset_infos(lake, "u1")
    assert infos[large].fields == ("rest_days",) and infos[small].quality_score == pytest.approx(1.0)
    assert dataset_infos(lake, "u2") == {}


def test_stored_rows_read_back_typed_in_the_uploads_order_with_their_unparsed_cells(
    store: DatasetStore,
) -> None:
    lines = team_csv(30).decode().splitlines()  # written in reverse date order, not key order
    lines[4] = "NYK,someday,1"
    lines[8] = lines[8].rsplit(",", 1)[0] + ", x "
    parsed = read_dataset("\n".join(lines).encode(), "teams.csv")
    typed = typed_rows(parsed.frame, parsed.schema)
    assert typed.unparsed.filter(pl.any_horizontal(pl.all().is_not_null())).rows() == [
        (None, "someday", None),
        (None, None, " x "),
    ]
    store.store_rows("u1--ds-000001", 1, typed, ("team", "date"), "lake")
    stored = store.lake.read_parquet([dataset_rows_key("u1--ds-000001", 1)])
    assert stored.select("team", "date").equals(
        stored.select("team", "date").sort("team", "date", maintain_order=True, nulls_last=True)
    )
    back = store.read_rows("u1--ds-000001", 1)
    assert back is not None
    assert back.frame.equals(typed.frame) and back.unparsed.equals(typed.unparsed)
    report = assess(b"\n".join(x.encode() for x in lines), "teams.csv", None, NBA, "team_level", T0.date())
    assert QualityReport.from_dict(json.loads(json.dumps(report.as_dict()))["quality"]) == report.report
    assert store.read_rows("u1--ds-000002", 1) is None


def test_version_metadata_is_the_json_the_inbox_always_held(store: DatasetStore) -> None:
    dataset_id = put_version(store, "u1", games_csv(5))
    raw = store.lake.get_bytes(dataset_meta_key(dataset_id, 1))
    doc = json.loads(raw)
    assert raw == json.dumps(doc, sort_keys=True).encode()
    assert sorted(doc) == [
        "created_at", "data_type", "dataset_id", "declared_schema", "description", "fields", "filename",
        "format", "name", "owner_user_id", "rows", "schema", "size_bytes", "sport", "upload_key",
        "uploaded_at", "version",
    ]  # fmt: skip
    assert (doc["created_at"], doc["uploaded_at"]) == (
        T0.isoformat(),
        (T0 + dt.timedelta(hours=1)).isoformat(),
    )
    meta = store.meta(dataset_id, 1)
    assert (meta.uploaded_at, meta.field_types, meta.upload_key) == (
        T0 + dt.timedelta(hours=1),
        {},
        doc["upload_key"],
    )


def test_a_malformed_meta_json_names_its_key_and_fields(store: DatasetStore) -> None:
    dataset_id = new_dataset_id("u1", b"\x00\x00\x09")
    key = dataset_meta_key(dataset_id, 1)
    old = {"dataset_id": dataset_id, "version": 1, "owner_user_id": "u1", "name": "n", "data_type": "weekly"}
    store.lake.put_new(key, json.dumps(old).encode())
    with pytest.raises(DocumentError) as err:
        store.meta(dataset_id, 1)
    message = str(err.value)
    assert message.startswith(f"{key} is not a valid VersionMeta document: ")
    assert "field 'data_type': Input should be 'game_level', 'team_level' or 'player_level'" in message
    assert "field 'uploaded_at': Field required" in message and "field 'upload_key'" in message
    store.lake.delete(key)
    store.lake.put_new(key, b"{not json")
    with pytest.raises(DocumentError, match=f"{key} is not a valid VersionMeta document: Invalid JSON"):
        store.meta(dataset_id, 1)


def test_a_refused_version_is_recorded_as_error(store: DatasetStore) -> None:
    # The API refuses a file without its key field; the pipeline must cope all the same.
    dataset_id = put_version(store, "u1", b"team,value\nBOS,1\n")
    run_pipeline(store.lake, store.warehouse_dir)
    row = row_of(store.lake, dataset_id, 1)
    assert row["status"] == "error"
    assert "missing key field 'game_id'" in row["error"]
    assert not store.lake.exists(dataset_rows_key(dataset_id, 1))
    assert dataset_infos(store.lake, "u1") == {}


def test_refresh_supersedes_edits_apply_and_delete_purges(store: DatasetStore) -> None:
    lake = store.lake
    dataset_id = put_version(store, "u1", games_csv(30))
    cursor, _ = run_pipeline(lake, store.warehouse_dir)
    v1_upload = store.meta(dataset_id, 1).upload_key
    put_version(store, "u1", games_csv(60), dataset_id=dataset_id, version=2)
    store.edit(dataset_id, 1, MetadataEdit(name="Renamed", description="d", edited_by="u1", edited_at=T0))
    cursor, _ = run_pipeline(lake, store.warehouse_dir, cursor)

    assert table(lake).select("version", "status", "name", "row_count").rows() == [
        (1, "superseded", "Renamed", 30),
        (2, "active", "Renamed", 60),
    ]
    assert not lake.exists(v1_upload) and not lake.exists(dataset_rows_key(dataset_id, 1))
    assert not (store.warehouse_dir / f"datasets/{dataset_id}/v000001.duckdb").exists()
    assert lake.exists(dataset_meta_key(dataset_id, 1))  # the version list and the upload rate keep it
    assert dataset_rows(lake, [dataset_id])[dataset_id].frame.height == 60

    # A full rebuild from the inbox gives the same table.
    rebuilt = dg.materialize(
        [datasets],
        resources={"lake": lake, "warehouse": Warehouse(directory=str(store.warehouse_dir))},
        run_config={"ops": {"datasets": {"config": {"keys": []}}}},
    )
    assert rebuilt.success
    assert table(lake).select("version", "status", "name").rows() == [
        (1, "superseded", "Renamed"),
        (2, "active", "Renamed"),
    ]

    store.mark_deleted(dataset_id, Tombstone(deleted_by="u1", deleted_at=T0))
    run_pipeline(lake, store.warehouse_dir, cursor)
    assert table(lake).is_empty()
    left = sorted(lake.list_keys(""))
    assert left == [
        f"inbox/datasets/u1/{dataset_id}/deleted.json",
        f"inbox/datasets/u1/{dataset_id}/edits/000001.json",
        dataset_meta_key(dataset_id, 1),
        dataset_meta_key(dataset_id, 2),
        TABLE_KEY,
    ]
    assert not any(store.warehouse_dir.rglob("*.duckdb"))


def test_ge_asset_check_agrees_with_the_fast_path_and_keeps_its_data_docs(store: DatasetStore) -> None:
    lake = store.lake
    clean = put_version(store, "u1", games_csv(40))
    flawed = put_version(
        store,
        "u1",
        games_csv(40, value={7: "10000", 9: "abc"}, empty_rows=(2, 3, 4, 5, 6)),
        entropy=b"\x00\x00\x02",
    )
    _, result = run_pipeline(lake, store.warehouse_dir, checks=True)

    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.check_name == "great_expectations_suite"
    checked = {r["dataset_id"]: r for r in evaluation.metadata["results"].value}
    assert set(checked) == {clean, flawed}
    assert evaluation.metadata["ge_suites_failed"].value == 1
    failing = {rule for rule, ok in checked[flawed]["ge"].items() if not ok}
    assert failing == {"completeness", "outliers", "types"}
    for dataset_id in (clean, flawed):
        ge = json.loads(lake.get_bytes(dataset_report_key(dataset_id, 1, "ge_result.json")))
        report = json.loads(lake.get_bytes(dataset_report_key(dataset_id, 1, "report.json")))
        # The stored GE result and the stored fast-path report give the same verdict, rule by rule.
        stored_fast = {
            "completeness": not any(f["rule"] == "missing_values" for f in report["quality"]["failures"]),
            "uniqueness": not any(f["rule"] == "duplicate_key" for f in report["quality"]["failures"]),
            "types": not any(f["rule"] in ("type", "finite") for f in report["quality"]["failures"]),
            "outliers": not any(f["rule"] == "outliers" for f in report["quality"]["failures"]),
            "date_range": not any(f["rule"] == "date_range" for f in report["quality"]["failures"]),
        }
        assert ge_verdicts(ge) == stored_fast == checked[dataset_id]["fast"]
        html = lake.get_bytes(dataset_report_key(dataset_id, 1, "data_docs.html")).decode()
        assert html.lstrip().startswith("<!DOCTYPE html>")
    # pandera's validation is kept with the report and names the same bad cell.
    report = json.loads(lake.get_bytes(dataset_report_key(flawed, 1, "report.json")))
    assert [(f["rule"], f["field"], f["rows"]) for f in report["validation"]] == [("type", "value", [9])]


def test_the_check_fails_when_ge_and_the_fast_path_disagree(
    store: DatasetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_version(store, "u1", games_csv(20))

    def blind(report: QualityReport) -> dict[str, bool]:  # a fast path that sees outliers GE does not
        return fast_verdicts(report) | {"outliers": False}

    monkeypatch.setattr("services.dataset_quality.fast_verdicts", blind)
    _, result = run_pipeline(store.lake, store.warehouse_dir, checks=True)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert len(evaluation.metadata["disagreements"].value) == 1


# --- the CLI ---


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(games_csv(40))
    bad.write_bytes(b"team,value\nBOS,1\n")
    absent = '{"temperature": "float"}'  # a declared field the file lacks: schema_valid 0, score 0.7

    assert main(["dataset", "validate", str(good), "--sport", NBA]) == 0
    assert "quality score 1.000: usable" in capsys.readouterr().out
    assert main(["dataset", "validate", str(good), "--sport", NBA, "--schema", absent, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    today = dt.datetime.now(dt.UTC).date()
    expected = assess(good.read_bytes(), "good.csv", json.loads(absent), NBA, "game_level", today)
    assert report == json.loads(json.dumps(expected.as_dict()))
    assert report["quality"]["usable"] is False and report["quality"]["score"] == pytest.approx(0.7)
    assert main(["dataset", "validate", str(bad)]) == 2
    assert "missing key field 'game_id'" in capsys.readouterr().err
    assert main(["dataset", "validate", str(good), "--schema", '{"value": "money"}', "--json"]) == 2
    assert "unknown type 'money'" in json.loads(capsys.readouterr().out)["error"]


def test_the_pipeline_and_key_lookups_on_s3(s3_lake: Lake, tmp_path: Path) -> None:
    store = DatasetStore(s3_lake, tmp_path / "warehouse")
    dataset_id = put_version(store, "u1", team_csv(1_000), data_type="team_level")  # 1,000 rows: the lake
    cursor, _ = run_pipeline(s3_lake, store.warehouse_dir)
    row = row_of(s3_lake, dataset_id, 1)
    assert (row["status"], row["storage"]) == ("active", "lake")
    day = dt.date(2023, 10, 24) + dt.timedelta(days=3)
    assert store.lookup(DatasetRow.model_validate(row), {"team": "BOS", "date": day}, 5)[
        "rest_days"
    ].to_list() == [15 % 4]
    assert list(dataset_infos(s3_lake, "u1")) == [dataset_id]
    store.mark_deleted(dataset_id, Tombstone(deleted_by="u1", deleted_at=T0))
    run_pipeline(s3_lake, store.warehouse_dir, cursor)
    assert not list(s3_lake.list_keys("tables/dataset_rows/")) and table(s3_lake).is_empty()
