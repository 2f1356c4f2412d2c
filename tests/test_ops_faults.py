"""Fault tolerance, each fault made real: a run killed mid-partition, the API read while the
pipeline rewrites what it serves, a sensor tick seen twice, the odds feed failing over HTTP, and what
a killed API, publication or inbox run leaves behind."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from api.app import create_app
from api.auth import mint_token
from api.settings import ApiSettings
from assets.analyses import analyses
from assets.ingest import TIDY_BUILDERS, ingest_assets, raw_feeds, rebuild_table
from assets.models import TABLE_KEY, model_versions
from cli.demo import register_demo_models
from cli.instance import HEADER, ensure_instance_yaml
from domain.models.engine import ANALYSES
from pipelines.automation import alert_on_run_failure
from pipelines.housekeeping import housekeeping_job
from pipelines.sensors import MODEL_INBOX, Inbox, inbox_sensor, model_inbox_sensor
from resources.feeds import NoStatsFeed
from resources.odds_api import OddsApiFeed
from resources.sample_feed import SampleLeagueFeed
from stores.alerts import read_alerts
from stores.idempotency import LEASE
from stores.lake import STALE_TEMP_SECONDS, Lake
from stores.layout import raw_key, table_key
from stores.registry import RegistryStore
from stores.warehouse import Warehouse, lake_connection
from tests.services import VENV_BIN, free_port, service_env, start_process, stop_process, wait_until
from tests.test_api import SECRET, serve, settings_for
from tests.test_datasets_pipeline import games_csv

NBA = "basketball_nba"
FIRST, LAST = dt.date(2025, 10, 21), dt.date(2025, 11, 6)
SCORED = [dt.date(2025, 11, 1) + dt.timedelta(days=i) for i in range(6)]


def _range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def _ingest(lake: Lake, first: dt.date = FIRST, last: dt.date = LAST) -> None:
    """The sample league's games, odds and box scores for ``first..last`` in one run."""
    job = dg.define_asset_job("ingest", partitions_def=raw_feeds.partitions_def)
    defs = dg.Definitions(
        assets=ingest_assets,
        jobs=[job],
        resources={"lake": lake, "odds_feed": SampleLeagueFeed(), "stats_feed": SampleLeagueFeed()},
    )
    config = {"ops": {op: {"config": {"sports": [NBA]}} for op in ["raw_feeds", *TIDY_BUILDERS]}}
    result = defs.resolve_job_def("ingest").execute_in_process(
        run_config=config, tags=_range_tags(first, last), instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success


# -- (a) a run killed in the middle of a partition -------------------------------------------------
KILLABLE_RUN = """
import datetime as dt, os, sys, time
from pathlib import Path
import stores.lake as lake_module

class _StallingOs:
    '''The lake's view of ``os``: after ``FAULT_AFTER`` analyses objects were swapped in, the next
    swap stalls (its temp file complete, the rename not done) until the test kills the process.'''

    def __init__(self, after, marker):
        self.after, self.marker, self.swapped = after, marker, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if "/tables/analyses/" in str(dst):
            if self.swapped == self.after:
                self.marker.write_text(f"{src}\\n{dst}")
                time.sleep(600)
            self.swapped += 1
        os.replace(src, dst)

if os.environ.get("FAULT_AFTER"):
    lake_module.os = _StallingOs(int(os.environ["FAULT_AFTER"]), Path(os.environ["FAULT_MARKER"]))

from cli.instance import ensure_instance_yaml
Path(os.environ["DAGSTER_HOME"]).mkdir(exist_ok=True)
ensure_instance_yaml(Path(os.environ["DAGSTER_HOME"]))
from cli.runner import execute_range
first, last = (dt.date.fromisoformat(a) for a in sys.argv[1:3])
execute_range("analyses_job", first, last, sports=["basketball_nba"])
"""


def _models_per_day(lake: Lake) -> dict[dt.date, set[str]]:
    df = lake.read_table("analyses", NBA, SCORED[0], SCORED[-1] + dt.timedelta(days=1), ANALYSES)
    return {d: set(g["model_id"]) for (d,), g in df.group_by("game_date")}


def test_a_run_killed_mid_partition_leaves_the_old_object_and_a_rerun_completes_it(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    _ingest(lake)
    model_ids = register_demo_models(lake)
    assert dg.materialize([model_versions], resources={"lake": lake}).success
    # The "old" analyses: the first model only.
    job = dg.define_asset_job("analyses", partitions_def=analyses.partitions_def)
    defs = dg.Definitions(assets=[analyses], jobs=[job], resources={"lake": lake})
    old_config = {"ops": {"analyses": {"config": {"sports": [NBA], "model_ids": model_ids[:1]}}}}
    assert (
        defs.resolve_job_def("analyses")
        .execute_in_process(run_config=old_config, tags=_range_tags(SCORED[0], SCORED[-1]))
        .success
    )
    old = {d: lake.get_bytes(table_key("analyses", NBA, d)) for d in SCORED}
    assert _models_per_day(lake) == {d: set(model_ids[:1]) for d in SCORED}

    script = tmp_path / "run_analyses.py"
    script.write_text(KILLABLE_RUN)
    marker = tmp_path / "stalled"
    env = service_env(
        ODDSFORGE_LAKE=lake.root,
        ODDSFORGE_WAREHOUSE_DIR=str(tmp_path / "wh"),
        DAGSTER_HOME=str(tmp_path / "home"),
        FAULT_AFTER="2",
        FAULT_MARKER=str(marker),
    )
    args = [sys.executable, str(script), SCORED[0].isoformat(), SCORED[-1].isoformat()]
    log = tmp_path / "killed_run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(marker.exists, 180, "the run to reach its third analyses partition", proc)
    except RuntimeError as exc:
        raise AssertionError(log.read_text()[-3000:]) from exc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    temp, target = marker.read_text().splitlines()
    assert Path(temp).is_file() and Path(temp).name.startswith(".")  # the new version, written in full
    stalled = SCORED[2]
    assert Path(target) == Path(lake.uri(table_key("analyses", NBA, stalled)))
    # Readers see the new objects of the two days swapped in, and the OLD object of every other day.
    assert lake.get_bytes(table_key("analyses", NBA, stalled)) == old[stalled]
    assert all(lake.get_bytes(table_key("analyses", NBA, d)) == old[d] for d in SCORED[2:])
    assert all(lake.get_bytes(table_key("analyses", NBA, d)) != old[d] for d in SCORED[:2])
    assert not [k for k in lake.list_keys("tables/analyses/") if "/." in k]  # temp files stay invisible
    per_day = _models_per_day(lake)  # and every object reads whole
    every_model = per_day[SCORED[0]]
    assert len(every_model) > 1 and per_day[SCORED[1]] == every_model
    assert all(per_day[d] == set(model_ids[:1]) for d in SCORED[2:])

    # The retry (a new run of the same range, as an operator or run retries would start) completes it.
    env.pop("FAULT_AFTER")
    retry = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert _models_per_day(lake) == dict.fromkeys(SCORED, every_model)


# -- (b) the API reads while the pipeline rewrites --------------------------------------------------
def test_api_answers_a_steady_stream_of_reads_while_tables_and_snapshots_are_rewritten(
    tmp_path: Path,
) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    days = [dt.date(2025, 11, 1) + dt.timedelta(days=i) for i in range(5)]
    _ingest(lake, days[0], days[-1])
    warehouse = Warehouse(directory=str(tmp_path / "wh"))
    warehouse.publish(lake, dt.datetime.now(dt.UTC))
    with lake_connection(lake) as con:
        expected = dict(con.execute("SELECT game_date, count(*) FROM games GROUP BY game_date").fetchall())
    assert len(expected) == len(days) and all(expected.values())

    port = free_port()
    # One user reads as fast as four threads can: this is about torn reads, not the per-user read limit.
    env = service_env(
        ODDSFORGE_WAREHOUSE_DIR=warehouse.directory, ODDSFORGE_LAKE=lake.root, ODDSFORGE_READ_LIMIT="0"
    )
    cmd = [
        str(VENV_BIN / "oddsforge"),
        "--log-format",
        "json",
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    api_log = tmp_path / "api.log"
    server = start_process(cmd, env, api_log)
    base = f"http://127.0.0.1:{port}"
    token = mint_token("reader", ApiSettings.from_env(env).jwt_secret)  # the secret the API will read
    seen: dict[dt.date, set[tuple[int, int]]] = defaultdict(set)
    snapshots: set[str] = set()
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            while not stop.is_set():
                for day in days:
                    try:
                        r = client.get(f"/sports/{NBA}/games", params={"date": day.isoformat(), "limit": 100})
                    except httpx.HTTPError as exc:
                        errors.append(f"{day}: {exc!r}")
                        continue
                    if r.status_code != 200:
                        errors.append(f"{day}: HTTP {r.status_code} {r.text[:200]}")
                        continue
                    items = r.json()["items"]
                    seen[day].add((r.status_code, len(items)))
                    if len({g["game_id"] for g in items}) != len(items) or any(
                        g["game_date"] != day.isoformat() for g in items
                    ):
                        errors.append(f"{day}: torn page {items}")
                snapshots.add(client.get("/health").json()["snapshot"]["name"])

    try:
        wait_until(lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, 60, "the API", server)
        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        publications = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and publications < 25:  # bounded in count and time
            for table in TIDY_BUILDERS:
                rebuild_table(lake, table, NBA, days)
            warehouse.publish(lake, dt.datetime.now(dt.UTC))
            publications += 1
        time.sleep(1)  # let the readers pick up the last publication
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        stop.set()
        stop_process(server)
    assert not errors, errors[:5]
    assert publications >= 5 and len(snapshots) >= 3, (publications, snapshots)
    assert {day: counts for day, counts in seen.items()} == {day: {(200, expected[day])} for day in days}
    # The API logged as JSON lines (ODDSFORGE_LOG_FORMAT / --log-format), access log included.
    lines = [json.loads(line) for line in api_log.read_text().splitlines() if line.strip()]
    assert any(f"GET /sports/{NBA}/games?date=" in line["message"] for line in lines)
    assert {"ts", "level", "logger", "message"} <= set(lines[0])


# -- (c) the same inbox object seen twice by the sensor ---------------------------------------------
def test_an_inbox_object_seen_twice_by_the_sensor_is_processed_once(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    instance = dg.DagsterInstance.ephemeral()
    register_demo_models(lake)

    def tick(cursor: str | None) -> Any:
        return model_inbox_sensor(
            dg.build_sensor_context(cursor=cursor, instance=instance, resources={"lake": lake})
        )

    first = tick(None)
    (request,) = first.run_requests
    # The daemon restarted before saving the cursor: the same tick is evaluated again.
    (again,) = tick(None).run_requests
    assert again.run_key == request.run_key and again.run_config == request.run_config

    def materialise(req: dg.RunRequest) -> bytes:
        result = dg.materialize(
            [model_versions],
            instance=instance,
            resources={"lake": lake},
            run_config=req.run_config,
            tags={**req.tags, "dagster/run_key": req.run_key},
        )
        assert result.success
        return lake.get_bytes(TABLE_KEY)

    table = materialise(request)
    # Dagster launches a run key once per sensor; even a second run of the same request (a
    # duplicate delivery) leaves the table exactly as it was.
    assert materialise(again) == table
    assert pl.read_parquet(lake.uri(TABLE_KEY)).height == len(list(RegistryStore(lake).inbox_keys()))
    assert len(instance.get_runs(dg.RunsFilter(tags={"dagster/run_key": request.run_key}))) == 2
    assert isinstance(tick(first.cursor), dg.SkipReason)  # with the saved cursor, nothing is new


# -- (d) the odds feed failing over real HTTP -------------------------------------------------------
NFL_DAY = "2021-11-25"  # the date of the recorded historical NFL body


@pytest.fixture
def odds_server() -> Any:
    from tests.odds_api_server import SAMPLES, OddsApiServer

    if not SAMPLES.is_dir():
        pytest.skip(f"Odds API v4 sample bodies not found at {SAMPLES}")
    with OddsApiServer() as server:
        yield server


def _raw_feeds_run(lake: Lake, feed: OddsApiFeed, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_feeds],
        partition_key=NFL_DAY,
        instance=instance,
        resources={"lake": lake, "odds_feed": feed, "stats_feed": NoStatsFeed()},
        run_config={"ops": {"raw_feeds": {"config": {"sports": ["americanfootball_nfl"]}}}},
        raise_on_error=False,
    )


def _events(result: dg.ExecuteInProcessResult, kind: str) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type_value == kind]


def test_a_transient_feed_error_is_retried_by_the_client_then_by_the_asset(
    odds_server: Any, tmp_path: Path
) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    feed = OddsApiFeed(
        api_key=odds_server.api_key, base_url=odds_server.url, max_retries=1, backoff_seconds=0.01
    )
    odds_server.fail(503, times=2)  # both tries of the first attempt fail; the asset's retry succeeds
    result = _raw_feeds_run(lake, feed, dg.DagsterInstance.ephemeral())
    assert result.success
    assert [r.status for r in odds_server.requests] == [503, 503, 200]
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1
    day = dt.date.fromisoformat(NFL_DAY)
    assert lake.exists(raw_key("odds_snapshots", "americanfootball_nfl", day, feed.source_name()))
    meta = result.asset_materializations_for_node("raw_feeds")[0].metadata
    assert meta["americanfootball_nfl/requests_remaining"].value == odds_server.quota - odds_server.used


def test_a_rejected_key_fails_the_run_at_once_with_a_clear_alert(odds_server: Any, tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    secret = "wrong-key-0123456789abcdef"
    feed = OddsApiFeed(api_key=secret, base_url=odds_server.url, max_retries=3, backoff_seconds=0.01)
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = _raw_feeds_run(lake, feed, instance)
    assert not result.success
    assert time.monotonic() - started < 8  # no RetryPolicy backoff (10 s) for a refusal
    assert [r.status for r in odds_server.requests] == [401]
    assert not _events(result, "STEP_UP_FOR_RETRY")
    (failure,) = _events(result, "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "HTTP 401" in message and "API key is not valid" in message and secret not in message
    assert not list(lake.list_keys("raw/"))

    # The run-failure sensor turns it into an alert an operator reads (and would get by webhook).
    run = instance.get_run_by_id(result.run_id)
    (run_failure,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=run_failure.dagster_event,
        resources={"lake": lake},
    ).for_run_failure()
    alert_on_run_failure(context)
    (alert,) = read_alerts(lake)
    assert alert["alert_id"] == result.run_id and alert["kind"] == "run_failure"
    assert alert["details"]["failed_steps"] == ["raw_feeds"] and NFL_DAY in alert["summary"]
    assert "HTTP 401" in alert["summary"] and secret not in alert["summary"]


# -- (e) crash residue: what killed processes leave behind -----------------------------------------
STALLING_API = """
import os, sys, time
from pathlib import Path
import uvicorn
import stores.lake as lake_module

class _StallingOs:
    '''The lake's view of ``os``: linking an upload into the inbox stalls (its temporary file
    written in full, the link not made) until the test kills the API.'''

    def __getattr__(self, name):
        return getattr(os, name)

    def link(self, src, dst):
        if "/upload-" in str(dst):
            Path(os.environ["FAULT_MARKER"]).write_text(src)
            time.sleep(600)
        os.link(src, dst)

lake_module.os = _StallingOs()
from api.app import create_app
uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def test_a_killed_upload_is_swept_and_its_retry_with_the_same_key_stores_it_once(tmp_path: Path) -> None:
    """The API is killed while an upload sent with an Idempotency-Key goes into the inbox: its
    temporary file is removed by housekeeping once stale; the client's retry waits while the claim
    may still be the first request's, then stores the upload, once."""
    lake = Lake(root=str(tmp_path / "lake"))
    script, marker, port = tmp_path / "stalling_api.py", tmp_path / "stalled", free_port()
    script.write_text(STALLING_API)
    env = service_env(
        ODDSFORGE_LAKE=lake.root,
        ODDSFORGE_WAREHOUSE_DIR=str(tmp_path / "wh"),
        ODDSFORGE_JWT_SECRET=SECRET,
        FAULT_MARKER=str(marker),
    )
    server = start_process([sys.executable, str(script), str(port)], env, tmp_path / "api.log")
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {mint_token('hana', SECRET)}"}
    send = {
        "files": {"file": ("games.csv", games_csv(2_000))},
        "data": {"name": "Games", "data_type": "game_level", "sport": NBA},
        "headers": headers | {"Idempotency-Key": "c0ffee-games"},
    }

    def post_until_killed() -> None:
        with suppress(httpx.HTTPError):
            httpx.post(f"{base}/datasets", timeout=60, **send)

    try:
        wait_until(lambda: httpx.get(f"{base}/health", timeout=2).status_code, 60, "the API", server)
        threading.Thread(target=post_until_killed, daemon=True).start()
        wait_until(marker.exists, 60, "the upload to reach the inbox", server)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    killed_at = dt.datetime.now(dt.UTC)
    temp = Path(marker.read_text())
    assert temp.is_file() and temp.name.startswith(".upload-") and temp.name.endswith(".tmp")
    assert not list(lake.list_keys("inbox/datasets/"))  # readers see nothing of it

    warehouse = Warehouse(directory=str(tmp_path / "wh"))

    def housekeeping() -> dict[str, Any]:
        run = housekeeping_job.execute_in_process(
            resources={"lake": lake, "warehouse": warehouse}, instance=dg.DagsterInstance.ephemeral()
        )
        (output,) = [e for e in run.all_events if e.event_type_value == "STEP_OUTPUT"]
        return {k: v.value for k, v in output.event_specific_data.metadata.items()}

    assert housekeeping()["lake_temp_files"] == 0 and temp.exists()  # young: maybe a live writer's
    hour_ago = time.time() - STALE_TEMP_SECONDS - 1
    os.utime(temp, (hour_ago, hour_ago))
    swept = housekeeping()
    assert not temp.exists()
    assert swept["lake_temp_files"] == 1 and swept["bytes_freed"] >= len(games_csv(2_000))

    # The restarted API: the claim may still be the first request's for a while, then the retry runs.
    app = create_app(settings_for(tmp_path / "wh"), lake=lake)
    now = [killed_at]
    app.state.clock = lambda: now[0]
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as retry:
        busy = retry.post("/datasets", **send)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"
        assert 0 < int(busy.headers["retry-after"]) <= LEASE.total_seconds()
        now[0] += LEASE
        stored = retry.post("/datasets", **send)
        assert stored.status_code == 201, stored.text
        replayed = retry.post("/datasets", **send)
        assert (replayed.status_code, replayed.json()) == (201, stored.json())
    metas = [k for k in lake.list_keys("inbox/datasets/hana/") if k.endswith("meta.json")]
    assert len(metas) == 1


STALLING_PUBLICATION = """
import datetime as dt, os, sys, time
from contextlib import contextmanager
from pathlib import Path
import duckdb
from stores.lake import Lake
from stores.warehouse import Warehouse

class _Stalling:
    '''A publication's connection that stalls once the new snapshot holds its first table.'''

    def __init__(self, con):
        self.con = con

    def __getattr__(self, name):
        return getattr(self.con, name)

    def execute(self, sql, *args):
        if sql.startswith('CREATE TABLE snapshot."lines"'):
            Path(os.environ["FAULT_MARKER"]).touch()
            time.sleep(600)
        return self.con.execute(sql, *args)

@contextmanager
def stalling():
    with duckdb.connect() as con:
        yield _Stalling(con)

now = dt.datetime.fromisoformat(sys.argv[3])
Warehouse(sys.argv[1], connect=stalling).publish(Lake(sys.argv[2]), now)
"""


def test_a_killed_publication_never_counts_as_a_snapshot_and_is_swept_when_stale(tmp_path: Path) -> None:
    """Only complete snapshots count towards the three kept: a publication killed half-way leaves a
    temporary file that neither displaces a complete snapshot nor stays for ever."""
    lake = Lake(root=str(tmp_path / "lake"))
    _ingest(lake, SCORED[0], SCORED[1])
    warehouse = Warehouse(directory=str(tmp_path / "wh"))
    t0 = dt.datetime.now(dt.UTC)
    complete = [warehouse.publish(lake, t0 + dt.timedelta(seconds=i))[0] for i in range(3)]

    script, marker = tmp_path / "publish.py", tmp_path / "stalled"
    script.write_text(STALLING_PUBLICATION)
    env = service_env(FAULT_MARKER=str(marker))
    with (tmp_path / "publish.log").open("wb") as out:
        killed_at = (t0 + dt.timedelta(seconds=5)).isoformat()
        args = [sys.executable, str(script), warehouse.directory, lake.root, killed_at]
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    try:
        wait_until(marker.exists, 120, "the publication to write its first table", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    partial = [p for p in warehouse.serving_dir.iterdir() if p.name.startswith(".serving-")]
    assert partial and all(p.name.endswith((".tmp", ".tmp.wal")) for p in partial)
    assert warehouse.current() == complete[-1]

    newest, _ = warehouse.publish(lake, t0 + dt.timedelta(seconds=10))
    kept = sorted(warehouse.serving_dir.glob("serving-*.duckdb"))
    assert kept == [*complete[1:], newest]  # three complete snapshots: the killed one did not count
    assert all(p.exists() for p in partial)  # young: removed once stale
    stale = time.time() + STALE_TEMP_SECONDS + 1
    removed = {path for path, _ in warehouse.sweep(stale)}
    assert set(partial) <= removed and not any(p.exists() for p in partial)
    assert sorted(warehouse.serving_dir.glob("serving-*.duckdb")) == kept
    with duckdb.connect(str(warehouse.current()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM games").fetchone()[0] > 0


KILLABLE_MERGE = """
import os, sys, time
from pathlib import Path
import dagster as dg
import stores.lake as lake_module

class _StallingOs:
    '''The lake's view of ``os``: replacing the model_versions table stalls until the test kills
    the run.'''

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if str(dst).endswith("model_versions.parquet"):
            Path(os.environ["FAULT_MARKER"]).touch()
            time.sleep(600)
        os.replace(src, dst)

lake_module.os = _StallingOs()
from cli.instance import ensure_instance_yaml
home = Path(os.environ["DAGSTER_HOME"])
home.mkdir(exist_ok=True)
ensure_instance_yaml(home)
from assets.models import model_versions
from pipelines.sensors import MODEL_INBOX
from stores.lake import Lake
dg.materialize(
    [model_versions], resources={"lake": Lake(sys.argv[1])}, instance=dg.DagsterInstance.get(),
    tags=MODEL_INBOX.tags,
)
"""


def test_an_inbox_run_killed_with_sigkill_is_failed_by_the_sensor_which_then_recovers(tmp_path: Path) -> None:
    """A killed run stays STARTED in the local instance, whose run launcher cannot see its process:
    the model inbox sensor waits for it while it might be alive, then marks it failed and asks for
    the run the new objects need."""
    lake = Lake(root=str(tmp_path / "lake"))
    register_demo_models(lake)
    script, marker, home = tmp_path / "merge.py", tmp_path / "stalled", tmp_path / "home"
    script.write_text(KILLABLE_MERGE)
    env = service_env(DAGSTER_HOME=str(home), FAULT_MARKER=str(marker))
    with (tmp_path / "merge.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(script), lake.root], env=env, stdout=out, stderr=out)
    try:
        wait_until(marker.exists, 180, "the merge to write its table", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    instance = dg.DagsterInstance.from_config(str(home))
    assert instance.run_monitoring_enabled  # the local instance monitors runs too
    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.STARTED  # and stays so: its process is gone

    def tick(inbox: Inbox) -> Any:
        context = dg.build_sensor_context(instance=instance, resources={"lake": lake})
        return inbox_sensor(inbox)(context)

    waiting = tick(MODEL_INBOX)  # silent for seconds only: it may be alive
    assert isinstance(waiting, dg.SkipReason) and "has not finished" in str(waiting.skip_message)
    time.sleep(1.5)
    recovered = tick(replace(MODEL_INBOX, silent_run_seconds=1))
    assert isinstance(recovered, dg.SensorResult) and len(recovered.run_requests or []) == 1
    failed = instance.get_run_by_id(run.run_id)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure.dagster_event is not None and "process is gone" in (failure.dagster_event.message or "")


def test_the_local_instance_file_is_brought_up_to_date_unless_it_is_the_operators(tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    (older / "dagster.yaml").write_text(f"{HEADER}: an earlier version.\ntelemetry:\n  enabled: false\n")
    ensure_instance_yaml(older)
    assert dg.DagsterInstance.from_config(str(older)).run_monitoring_enabled
    own = tmp_path / "own"
    own.mkdir()
    (own / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ensure_instance_yaml(own)
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
