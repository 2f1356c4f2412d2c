"""Automation: per-sport ingest schedules, alerts (lake + webhook), the quota check, freshness and
structured logs."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets.ingest import ingest_assets, raw_feeds
from cli.logs import JsonFormatter
from pipelines.automation import (
    PERFORMANCE_POLICY,
    QUOTA_ENV,
    freshness_checks,
    odds_api_quota,
)
from pipelines.jobs import INGEST_OPS, days_since_previous_run, ingest_schedules
from resources.feeds import NoStatsFeed
from resources.odds_api import OddsApiFeed
from resources.sample_feed import SampleLeagueFeed
from resources.settings import loggers_from_env
from stores.alerts import Alert, raise_alert, read_alerts
from stores.lake import Lake
from tests.services import free_port

NFL = "americanfootball_nfl"


# -- schedules ---------------------------------------------------------------------------------------
def _request(name: str, when: dt.datetime) -> dg.RunRequest:
    (schedule,) = [s for s in ingest_schedules if s.name == name]
    (request,) = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when)).run_requests
    return request


@pytest.mark.parametrize(
    ("today", "first"),
    [
        ("2025-11-25", "2025-11-23"),  # Tuesday: Sunday's and Monday night's games, and Tuesday
        ("2025-11-27", "2025-11-25"),  # Thursday: that night's odds (and anything since Tuesday)
        ("2025-11-30", "2025-11-27"),  # Sunday: Thursday's score, Saturday and Sunday
    ],
)
def test_nfl_schedule_covers_every_day_since_its_previous_run(today: str, first: str) -> None:
    when = dt.datetime.combine(dt.date.fromisoformat(today), dt.time(11), dt.UTC)
    request = _request("nfl_ingest_schedule", when)
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == today
    assert request.run_config == {"ops": {op: {"config": {"sports": [NFL]}} for op in INGEST_OPS}}
    assert request.run_key == f"ingest:{NFL}:{first}:{today}"


def test_schedules_fire_on_their_sports_days_and_cover_the_week_without_gaps() -> None:
    crons = {s.name: s.cron_schedule for s in ingest_schedules}
    assert crons == {"nba_ingest_schedule": "0 11 * * *", "nfl_ingest_schedule": "0 11 * * 0,2,4"}
    week = [dt.date(2025, 11, 23) + dt.timedelta(days=i) for i in range(7)]  # Sunday..Saturday
    nfl_days = [d for d in week if d.isoweekday() % 7 in (0, 2, 4)]
    covered = {
        d - dt.timedelta(days=back)
        for d in nfl_days
        for back in range(days_since_previous_run((0, 2, 4), d) + 1)
    }
    assert covered >= set(week[:-2])  # Sun..Thu of this week (Fri, Sat fall to next Sunday's run)
    assert all(days_since_previous_run(tuple(range(7)), d) == 1 for d in week)


# -- alerts ------------------------------------------------------------------------------------------
class _Webhook:
    """A real HTTP endpoint on loopback that records the JSON bodies posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook() -> Iterator[_Webhook]:
    hook = _Webhook()
    yield hook
    hook.close()


def _alert(alert_id: str) -> Alert:
    return Alert(alert_id, "run_failure", "ingest_job failed", dt.datetime(2026, 1, 10, 11, 5, tzinfo=dt.UTC))


def test_an_alert_is_recorded_and_posted_once(tmp_path: Path, webhook: _Webhook) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    assert raise_alert(lake, _alert("run-1"), webhook.url)
    assert not raise_alert(lake, _alert("run-1"), webhook.url)  # a duplicate tick: no second post
    assert [a["alert_id"] for a in read_alerts(lake)] == ["run-1"]
    (body,) = webhook.bodies
    assert body["alert_id"] == "run-1" and body["text"] == "[oddsforge] run_failure: ingest_job failed"


def test_a_webhook_that_is_down_never_fails_the_caller(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    assert raise_alert(lake, _alert("run-2"), dead)
    assert read_alerts(lake)[0]["alert_id"] == "run-2"  # the lake copy is the record
    with pytest.raises(ValueError, match="safe object name"):
        _alert("../escape")


# -- the quota check ---------------------------------------------------------------------------------
@pytest.fixture
def low_quota_server() -> Iterator[Any]:
    from tests.odds_api_server import SAMPLES, OddsApiServer

    if not SAMPLES.is_dir():
        pytest.skip(f"Odds API v4 sample bodies not found at {SAMPLES}")
    with OddsApiServer(quota=400) as server:
        yield server


def test_quota_check_warns_and_alerts_when_the_odds_api_runs_low(
    low_quota_server: Any, tmp_path: Path, webhook: _Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDSFORGE_ALERT_WEBHOOK", webhook.url)
    lake = Lake(root=str(tmp_path / "lake"))
    feed = OddsApiFeed(api_key=low_quota_server.api_key, base_url=low_quota_server.url)
    resources = {"lake": lake, "odds_feed": feed, "stats_feed": NoStatsFeed()}
    config = {
        "ops": {op: {"config": {"sports": [NFL]}} for op in ("raw_feeds", odds_api_quota.node_def.name)}
    }
    instance = dg.DagsterInstance.ephemeral()

    def run() -> dg.AssetCheckEvaluation:
        result = dg.materialize(
            [raw_feeds, odds_api_quota],
            partition_key="2021-11-25",
            resources=resources,
            run_config=config,
            instance=instance,
        )
        assert result.success  # a WARN check does not fail the run
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    monkeypatch.setenv(QUOTA_ENV, "100")
    fine = run()
    assert fine.passed and fine.metadata[f"{NFL}/requests_remaining"].value == 400 - 30
    assert read_alerts(lake) == []

    monkeypatch.setenv(QUOTA_ENV, "500")
    low = run()
    assert not low.passed and low.severity == dg.AssetCheckSeverity.WARN
    assert low.metadata[f"{NFL}/requests_remaining"].value == 400 - 60
    (alert,) = read_alerts(lake)
    assert alert["kind"] == "odds_api_quota" and alert["details"]["remaining"] == {NFL: 340}
    assert "340 requests left (minimum 500)" in alert["summary"]
    assert [b["alert_id"] for b in webhook.bodies] == [alert["alert_id"]]


# -- freshness ---------------------------------------------------------------------------------------
def test_ingest_freshness_checks_fail_until_todays_partition_lands(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    defs = dg.Definitions(
        assets=ingest_assets,
        asset_checks=freshness_checks,
        jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*freshness_checks))],
        resources={"lake": lake, "odds_feed": SampleLeagueFeed(), "stats_feed": SampleLeagueFeed()},
    )
    instance = dg.DagsterInstance.ephemeral()

    def evaluate() -> dict[str, bool]:
        result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
        return {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}

    watched = {"raw_odds_snapshots", "raw_game_results", "games", "lines"}
    assert evaluate() == dict.fromkeys(watched, False)
    today = dt.datetime.now(dt.UTC).date()
    for day in (today - dt.timedelta(days=1), today):  # whichever the deadline expects by now
        assert dg.materialize(
            ingest_assets, partition_key=day.isoformat(), instance=instance, resources=defs.resources
        ).success
    assert evaluate() == dict.fromkeys(watched, True)


def test_daily_assets_carry_a_freshness_policy_and_sensors_are_registered() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("model_performance")).freshness_policy == PERFORMANCE_POLICY
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["alert_on_run_failure"].default_status == dg.DefaultSensorStatus.RUNNING
    assert "freshness_checks_sensor" in sensors
    assert defs.resolve_job_def("ingest_job").executor_def.name == "multi_or_in_process_executor"


# -- structured logs ---------------------------------------------------------------------------------
def test_json_log_lines_carry_level_logger_message_and_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("oddsforge.test")
    log.addHandler(handler)
    try:
        log.warning("quota low: %d left", 340, extra={"sport": NFL})
    finally:
        log.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["level"] == "WARNING" and line["logger"] == "oddsforge.test"
    assert line["message"] == "quota low: 340 left" and line["sport"] == NFL
    assert dt.datetime.fromisoformat(line["ts"]).tzinfo is not None

    monkeypatch.setenv("ODDSFORGE_LOG_FORMAT", "json")
    assert loggers_from_env() == {"console": dg.json_console_logger}
    monkeypatch.setenv("ODDSFORGE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="ODDSFORGE_LOG_FORMAT"):
        loggers_from_env()
