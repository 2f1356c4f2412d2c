"""The ``audit`` table on a lake on the loopback S3 server: records appended by whoever acts reach
it through the audit inbox sensor and the ``audit`` asset, once each, and analysts query it with
``oddsforge sql`` (real DuckDB over the lake's Parquet)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from assets.compliance import audit
from cli.main import main
from domain.compliance.audit import AuditRecord
from pipelines.sensors import audit_inbox_sensor
from stores.audit import append
from stores.lake import Lake
from stores.layout import AUDIT_TABLE_PREFIX, audit_table_key

T0 = dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)


def record(key: str, at: dt.datetime, after: dict[str, object]) -> AuditRecord:
    return AuditRecord(key, at, "pipeline", "payout.transferred", "payout", key, {"status": "planned"}, after)


def fold(lake: Lake, instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[str], str]:
    """What the running sensor does: one tick, then the run it asks for; the keys it passed and the
    sensor's next cursor."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"lake": lake})
    tick = audit_inbox_sensor(context)
    assert isinstance(tick, dg.SensorResult) and tick.cursor is not None
    (request,) = tick.run_requests or []
    result = dg.materialize(
        [audit], resources={"lake": lake}, run_config=request.run_config, instance=instance
    )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("record_ids", True)
    return request.run_config["ops"]["audit"]["config"]["keys"], tick.cursor


def sql(capsys: pytest.CaptureFixture[str], query: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["sql", query, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_appended_records_reach_the_audit_table_once_each(
    s3_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ODDSFORGE_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    instance = dg.DagsterInstance.ephemeral()
    assert append(s3_lake, record("payout:alice:2026-10", T0, {"status": "transferred"}))
    assert append(
        s3_lake, record("payout:bob:2026-10", T0 + dt.timedelta(hours=2), {"status": "transferred"})
    )

    keys, cursor = fold(s3_lake, instance, None)
    assert len(keys) == 2
    rows = sql(capsys, "SELECT * FROM audit ORDER BY 2")
    assert [r["business_key"] for r in rows] == ["payout:alice:2026-10", "payout:bob:2026-10"]
    assert rows[0]["after"] == '{"status":"transferred"}' and rows[0]["actor"] == "pipeline"
    months = [audit_table_key("2026-11"), audit_table_key("2026-12")]  # one object per month (UTC)
    assert list(s3_lake.list_keys(AUDIT_TABLE_PREFIX)) == months

    # The same business key again (a payout step re-run later) appends nothing; a new action does.
    assert not append(s3_lake, record("payout:alice:2026-10", T0 + dt.timedelta(days=3), {"status": "x"}))
    assert append(s3_lake, record("refund:sub_1", T0 + dt.timedelta(days=4), {"refunded_cents": 233}))
    keys, _ = fold(s3_lake, instance, cursor)
    assert len(keys) == 1  # only the new record

    # A full fold over every record (the sensor's answer to a flood) leaves the table as it is.
    again = dg.materialize([audit], resources={"lake": s3_lake}, instance=instance)
    assert again.success
    assert again.get_asset_materialization_events()[0].materialization.metadata["records_added"].value == 0
    rows = sql(capsys, "SELECT business_key, after FROM audit ORDER BY acted_at")
    assert [(r["business_key"], r["after"]) for r in rows] == [
        ("payout:alice:2026-10", '{"status":"transferred"}'),
        ("payout:bob:2026-10", '{"status":"transferred"}'),
        ("refund:sub_1", '{"refunded_cents":233}'),
    ]
    assert sql(capsys, "SELECT count(*) - count(DISTINCT record_id) AS repeated FROM audit") == [
        {"repeated": 0}
    ]
