"""The production parts, started for real on loopback: the lake on S3 for a whole demo, Postgres
instance storage, the Dagster webserver's GraphQL API and Celery workers with a Redis broker."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from assets.analyses import analyses
from assets.ingest import ingest_assets
from cli.stripe_local import spec_available, spec_dir
from pipelines.automation import odds_api_quota
from resources.sample_feed import SampleLeagueFeed
from stores.lake import Lake
from stores.layout import table_key
from stores.warehouse import Warehouse, lake_connection
from tests.s3 import CREDS
from tests.services import (
    REPO,
    VENV_BIN,
    Postgres,
    Webserver,
    production_home,
    service_env,
    start_process,
    stop_process,
    wait_until,
)

DAY = "2025-11-02"
NBA = ["basketball_nba"]


def _ingest_day(lake: Lake, instance: dg.DagsterInstance, tmp_path: Path) -> dg.ExecuteInProcessResult:
    """One partition of the ingest assets (and the quota check) into ``instance``."""
    return dg.materialize(
        [*ingest_assets, odds_api_quota],
        partition_key=DAY,
        instance=instance,
        resources={
            "lake": lake,
            "warehouse": Warehouse(directory=str(tmp_path / "wh")),
            "odds_feed": SampleLeagueFeed(),
            "stats_feed": SampleLeagueFeed(),
        },
    )


def test_demo_runs_end_to_end_with_the_lake_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = "demo-lake"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_boto_creds()).create_bucket(
        Bucket=bucket
    )
    env = service_env(
        **CREDS,
        AWS_ENDPOINT_URL=s3_endpoint,
        ODDSFORGE_LAKE=f"s3://{bucket}/lake",
        ODDSFORGE_WAREHOUSE_DIR=str(tmp_path / "warehouse"),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
    )
    started = time.monotonic()
    done = subprocess.run(
        [str(VENV_BIN / "oddsforge"), "demo", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)  # stdout is the report alone: progress and dbt's lines are elsewhere
    assert report["lake"] == f"s3://{bucket}/lake/"
    assert report["tables"]["games"] > 1000 and report["tables"]["analyses"] > 0
    assert report["tables"]["audit"] >= 1  # the operator's approval of the paid model, at least
    assert report["leaderboard"], "the dbt marts over the S3 lake produced no leaderboard"
    pick = report["pick"]  # one pick with its best price, fair probability, EV and stake
    assert pick["best_price"] >= pick["pick_price"] and 0 < pick["fair_probability"] < 1
    assert pick["expected_value"] == pytest.approx(pick["confidence"] * pick["best_price"] - 1)
    # Every table is in the bucket, nothing in a local lake folder; the snapshot and marts are local.
    keys = [
        o["Key"]
        for page in boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_boto_creds())
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix="lake/tables/games/")
        for o in page.get("Contents", [])
    ]
    assert len(keys) > 100
    assert not (tmp_path / "data" / "lake").exists()
    assert Path(report["snapshot"]).is_relative_to(tmp_path / "warehouse")
    marts = Warehouse(directory=str(tmp_path / "warehouse")).marts.current()
    assert marts is not None and marts.is_file()
    _check_money_loop(report)
    print(f"demo on S3: {time.monotonic() - started:.0f} s")


def _check_money_loop(report: dict[str, Any]) -> None:
    """The demo's walk against the local Stripe (issue 13): a checkout, a payout that waited for
    onboarding and then transferred once, a pro-rata refund, and the audit trail. Without Stripe's
    description (a clone without ../shared) the demo falls back: tests/test_payments_flow.py."""
    loop = report["money_loop"]
    if not spec_available():
        assert loop["available"] is False and str(spec_dir()) in loop["reason"]
        return
    assert loop["available"] is True and report["payments"]["stripe"] == "configured"
    assert loop["onboarding"]["payouts_enabled"] is True
    assert [(p["month"], p["status"]) for p in loop["payouts"]] == [
        ("2025-11", "awaiting_onboarding"),
        ("2025-12", "paid"),
    ]
    waited, paid = loop["payouts"]
    assert paid["amount_cents"] == waited["amount_cents"] > 0
    (transfer,) = loop["transfers_this_run"]  # both months were run again: still one transfer
    assert (transfer["id"], transfer["amount_cents"]) == (paid["transfer_id"], paid["amount_cents"])
    checkout = loop["checkout"]
    assert checkout["this_run"] and checkout["session_id"].startswith("cs_") and checkout["checkout_url"]
    assert (checkout["price_cents"], checkout["trial_days"], checkout["stripe_status"]) == (1200, 0, "active")
    cancellation = loop["cancellation"]
    (refund,) = cancellation["refunds"]
    assert refund["subscription_id"] == checkout["subscription_id"]
    assert (refund["paid_cents"], refund["amount_cents"]) == (1200, 1200 * 29 // 30)  # 1 of 30 days started
    assert cancellation["refunds_this_run"] == 1
    assert [(s["user_id"], s["status"]) for s in cancellation["subscriptions"]] == [("heidi", "cancelled")]
    assert cancellation["ledger"]["sum_cents"] == 0
    actions = [r["action"] for r in loop["audit"]]
    for action in (
        "terms.accepted",
        "payout_account.created",
        "account.updated",
        "payout.awaiting_onboarding",
        "payout.transferred",
        "model.archived",
        "subscription.cancelled",
        "refund.created",
    ):
        assert actions.count(action) == 1, (action, actions)


def _boto_creds() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDS["AWS_SECRET_ACCESS_KEY"],
    }


def test_runs_and_materialisations_land_in_postgres(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in postgres.create_database("ops_instance").items():
        monkeypatch.setenv(key, value)
    home = production_home(tmp_path / "home")
    lake = Lake(root=str(tmp_path / "lake"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        # Writers of analyses take turns whatever launched them: the step's pool has one slot.
        pool = analyses.op.pool
        assert pool and instance.event_log_storage.get_concurrency_info(pool).limit == 1
        result = _ingest_day(lake, instance, tmp_path)
        assert result.success
        run_id = result.run_id
    with postgres.connect("ops_instance") as con, con.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", [run_id])
        assert cur.fetchone() == ("SUCCESS",)
        cur.execute(
            "SELECT asset_key, partition FROM event_logs"
            " WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY asset_key",
            [run_id],
        )
        rows = cur.fetchall()
    materialised = {dg.AssetKey.from_db_string(key).to_user_string() for key, _ in rows}
    assert materialised == {
        "raw_odds_snapshots",
        "raw_game_results",
        "raw_team_box",
        "raw_player_box",
        "games",
        "odds_snapshots",
        "lines",
        "team_box_scores",
        "player_box_scores",
    }
    assert {partition for _, partition in rows} == {DAY}
    # A second process (a fresh instance object) reads the same history back from Postgres.
    with dg.DagsterInstance.from_config(str(home)) as again:
        event = again.get_latest_materialization_event(dg.AssetKey("games"))
        assert event is not None and event.run_id == run_id
        assert event.asset_materialization.partition == DAY


def test_webserver_serves_the_asset_graph_partitions_and_checks(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_env = postgres.create_database("ops_ui")
    for key, value in pg_env.items():
        monkeypatch.setenv(key, value)
    home = production_home(tmp_path / "home")
    lake = Lake(root=str(tmp_path / "lake"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = _ingest_day(lake, instance, tmp_path)
        assert result.success
    env = service_env(
        **pg_env,
        DAGSTER_HOME=str(home),
        ODDSFORGE_LAKE=str(tmp_path / "lake"),
        ODDSFORGE_WAREHOUSE_DIR=str(tmp_path / "wh"),
    )
    server = Webserver(env, tmp_path / "webserver.log")
    try:
        server.wait_loaded()
        nodes = server.graphql("{ assetNodes { assetKey { path } groupName isPartitioned } }")["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        from pipelines.definitions import defs

        expected = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
        assert expected <= set(by_key)
        assert by_key["games"]["isPartitioned"] and by_key["games"]["groupName"] == "tables"
        assert by_key["analyses"]["groupName"] == "analyses"

        materialisations = server.graphql(
            """query ($day: String!) { assetOrError(assetKey: {path: ["games"]}) {
                 ... on Asset { assetMaterializations(partitions: [$day]) {
                   partition runId metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""",
            {"day": DAY},
        )["assetOrError"]["assetMaterializations"]
        assert [(m["partition"], m["runId"]) for m in materialisations] == [(DAY, result.run_id)]
        rows = {e["label"]: e.get("intValue") for e in materialisations[0]["metadataEntries"]}
        with lake_connection(lake) as con:
            assert rows["dagster/row_count"] == con.execute("SELECT count(*) FROM games").fetchone()[0] > 0

        executions = server.graphql(
            """{ assetCheckExecutions(assetKey: {path: ["raw_odds_snapshots"]}, checkName: "odds_api_quota",
                 limit: 5) { runId status evaluation { success } } }"""
        )["assetCheckExecutions"]
        assert executions == [
            {"runId": result.run_id, "status": "SUCCEEDED", "evaluation": {"success": True}}
        ]
    finally:
        server.stop()


def test_ingest_runs_on_two_celery_workers_with_a_redis_broker(
    postgres: Postgres, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_env = postgres.create_database("ops_celery")
    home = production_home(tmp_path / "home")
    lake_root = tmp_path / "lake"
    env = service_env(
        **pg_env,
        DAGSTER_HOME=str(home),
        ODDSFORGE_LAKE=str(lake_root),
        ODDSFORGE_WAREHOUSE_DIR=str(tmp_path / "wh"),
        ODDSFORGE_EXECUTOR="celery",
        ODDSFORGE_CELERY_BROKER=f"{redis_url}/0",
        ODDSFORGE_CELERY_BACKEND=f"{redis_url}/1",
    )
    workers = []
    try:
        for name in ("worker1", "worker2"):
            log = tmp_path / f"{name}.log"
            cmd = [str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
            cmd += ["-y", str(REPO / "deploy" / "celery.yaml"), "-n", name, "--", "--concurrency=1"]
            workers.append((start_process(cmd, env, log), log))
        for proc, log in workers:
            wait_until(lambda log=log: " ready." in log.read_text(), 60, f"celery worker ({log.name})", proc)

        config = tmp_path / "run.yaml"
        from pipelines.jobs import sports_run_config

        config.write_text(json.dumps(sports_run_config(NBA)))
        tags = {
            "dagster/asset_partition_range_start": "2025-11-01",
            "dagster/asset_partition_range_end": "2025-11-03",
        }
        done = subprocess.run(
            [
                str(VENV_BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "pipelines.definitions",
                "-j",
                "ingest_job",
                "-c",
                str(config),
                "--tags",
                json.dumps(tags),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    finally:
        for proc, _ in workers:
            stop_process(proc)

    for key, value in pg_env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_run_by_id(run.run_id).tags["dagster/asset_partition_range_end"] == "2025-11-03"
        logs = instance.all_logs(run.run_id)
    step_pids = {
        e.step_key: e.dagster_event.pid
        for e in logs
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
    }
    run_pid = {
        e.dagster_event.pid
        for e in logs
        if e.dagster_event and e.dagster_event.event_type_value == "RUN_START"
    }
    assert set(step_pids) == {
        "raw_feeds",
        "games",
        "odds_snapshots",
        "lines",
        "team_box_scores",
        "player_box_scores",
        "raw_odds_snapshots_odds_api_quota",
    }
    assert len(set(step_pids.values())) >= 2, f"every step ran in one process: {step_pids}"
    assert not set(step_pids.values()) & run_pid, "a step ran in the run's own process, not on a worker"
    hosts = {
        e.dagster_event.event_specific_data.metadata["Celery worker"].value.split("@")[0]
        for e in logs
        if e.dagster_event and "in celery worker" in (e.dagster_event.message or "")
    }
    assert hosts == {"worker1", "worker2"}
    lake = Lake(root=str(lake_root))
    assert all(lake.exists(table_key("games", "basketball_nba", dt.date(2025, 11, d))) for d in (1, 2, 3))
    assert os.path.isdir(lake_root / "tables" / "lines")
