"""Draft backtests and tuning jobs through the API (issue 14 items 2 and 6), over real HTTP against
uvicorn on six weeks of the sample league: validation as ``POST /models``, inline and job answers,
owners only, a job whose worker died resumed or failed, recording for publishing and disclosure."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import mint_token
from domain.models.config import parse_model_config
from domain.models.tuning import TuningError
from services.backtests import backtest_model, best_backtest_graded
from services.jobs import JobLimits, JobRunner
from stores.jobs import Claim, JobRequest, JobStore, Progress
from stores.lake import Lake
from stores.warehouse import backtest_counts
from tests.test_api import SECRET, serve, settings_for
from tests.test_tuning import FIRST, LAST, NBA, sample_lake

T0 = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)
SPAN = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
LONG = {"from": (FIRST - dt.timedelta(days=400)).isoformat(), "to": LAST.isoformat()}
"""Over a season long: a job (the lake's games are those of the six weeks, so the report is theirs)."""
DRAFT = {
    "name": "Draft",
    "market": "spreads",
    "data_sources": {
        "team_stats": {"weight": 0.7, "fields": ["net_rating"], "lookback_games": 8},
        "odds_movement": {"weight": 0.3, "time_window_hours": 24},
    },
    "min_confidence": 0.52,
    "max_confidence": 0.8,
}


@dataclass
class Api:
    lake: Lake
    app: FastAPI
    url: str

    def client(self, user: str, **claims: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {mint_token(user, SECRET, **claims)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def runner(self, **limits: Any) -> JobRunner:
        """A second API worker's runner over the same lake (its own pool and limits)."""
        jobs: JobRunner = self.app.state.jobs
        return JobRunner(self.lake, jobs.handlers, jobs.clock, JobLimits(**limits))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("drafts")
    lake = sample_lake(root / "lake")
    app = create_app(settings_for(root / "warehouse"), lake=lake)
    app.state.jobs.limits = JobLimits(heartbeat_seconds=0.05)
    with serve(app) as url:
        yield Api(lake, app, url)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def finished(client: httpx.Client, job_id: str, seconds: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = ok(client.get(f"/backtests/{job_id}"))
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end: {status}")


def same_report(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Figures as a backtest gives them (sums to the last bits of polars' parallel summation)."""
    assert got["summary"] == pytest.approx(expected["summary"], rel=1e-12)
    assert len(got["monthly"]) == len(expected["monthly"])
    for month, want in zip(got["monthly"], expected["monthly"], strict=True):
        assert month.pop("month") == want.pop("month")
        assert month == pytest.approx(want, rel=1e-12)


def _draft_config(user: str) -> Any:
    return parse_model_config(
        DRAFT | {"sport": NBA, "model_id": f"{user}--draft-000000", "creator_user_id": user}
    )


def test_a_season_is_answered_inline_with_the_backtest_of_the_draft(api: Api) -> None:
    with api.client("dora") as dora:
        started = time.perf_counter()
        report = ok(dora.post("/backtests", json={"config": DRAFT, "sport": NBA} | SPAN))
        took = time.perf_counter() - started
    expected = backtest_model(api.lake, _draft_config("dora"), FIRST, LAST)
    same_report(report, expected)
    assert (report["model_id"], report["recorded_as"], report["from"]) == (None, None, FIRST.isoformat())
    assert report["disclaimer"] and len(report["draft"]) == 16
    assert report["summary"]["graded"] > 50 and took < 30
    assert report["kelly"] == {"fraction": 0.25, "max_stake": 0.05, "unit": 0.01}
    assert report["summary"]["kelly_units"] > 0 and "kelly_roi" in report["monthly"][0]


def test_a_draft_s_kelly_figures_stake_the_fraction_asked(api: Api) -> None:
    """The same figures as the backtester's at that fraction, inline and as a job; out of (0, 1] is 422."""
    body = {"config": DRAFT, "sport": NBA, "kelly_fraction": 0.05}
    with api.client("kim") as kim:
        inline = ok(kim.post("/backtests", json=body | SPAN))
        job = ok(kim.post("/backtests", json=body | LONG), 202)
        status = finished(kim, job["job_id"])
        refused = kim.post("/backtests", json=body | SPAN | {"kelly_fraction": 1.5})
    for got in (inline, status["report"]):  # same_report consumes its expected report's months
        same_report(got, backtest_model(api.lake, _draft_config("kim"), FIRST, LAST, kelly_fraction=0.05))
    assert inline["kelly"]["fraction"] == status["report"]["kelly"]["fraction"] == 0.05
    quarter = backtest_model(api.lake, _draft_config("kim"), FIRST, LAST)
    assert inline["summary"]["kelly_units"] < quarter["summary"]["kelly_units"]
    assert refused.status_code == 422 and "kelly_fraction" in refused.text


def test_a_draft_is_validated_as_post_models_validates_it(api: Api) -> None:
    bad = DRAFT | {
        "min_confidence": 0.4,
        "data_sources": {"team_stats": {"weight": 1, "fields": ["shoe_size"]}},
    }
    with api.client("dora") as dora:
        models = ok(dora.post("/models/validate", json=bad | {"sport": NBA}), 422)["error"]["details"]
        drafts = ok(dora.post("/backtests", json={"config": bad, "sport": NBA} | SPAN), 422)["error"]
        assert [(d["field"], d["message"]) for d in drafts["details"]] == [
            (d["field"].replace("body.", "body.config.", 1), d["message"]) for d in models
        ]
        assert "body.config.min_confidence" in {d["field"] for d in drafts["details"]}
        other = ok(
            dora.post(
                "/backtests", json={"config": DRAFT | {"sport": "americanfootball_nfl"}, "sport": NBA} | SPAN
            ),
            422,
        )
        assert other["error"]["details"][0]["field"] == "body.sport"
        backwards = {"from": LAST.isoformat(), "to": FIRST.isoformat()}
        assert (
            ok(dora.post("/backtests", json={"config": DRAFT, "sport": NBA} | backwards), 422)["error"][
                "code"
            ]
            == "invalid_span"
        )
    assert not list(api.lake.list_keys("inbox/backtests/"))


def test_a_draft_naming_an_own_model_is_recorded_and_lets_it_be_published(api: Api) -> None:
    with api.client("ed") as ed, api.client("flo") as flo:
        model_id = ok(ed.post("/models", json=DRAFT | {"sport": NBA, "sharing": {"public": False}}), 201)[
            "model_id"
        ]
        assert ok(
            flo.post("/backtests", json={"config": DRAFT, "sport": NBA, "model_id": model_id} | SPAN), 404
        )
        shared = DRAFT | {"sport": NBA, "sharing": {"public": True}}
        assert ok(ed.put(f"/models/{model_id}", json=shared), 422)["error"]["code"] == "publishing_rule"
        body = {"config": DRAFT | {"min_confidence": 0.51}, "sport": NBA, "model_id": model_id} | SPAN
        report = ok(ed.post("/backtests", json=body))
        assert (
            report["recorded_as"]
            == f"inbox/backtests/{model_id}/drafts/{report['draft']}/{FIRST}_{LAST}.json"
        )
        assert best_backtest_graded(api.lake, model_id) == report["summary"]["graded"] >= 50
        assert (
            ok(ed.post("/backtests", json=body))["recorded_as"] == report["recorded_as"]
        )  # a rerun replaces
        assert backtest_counts(api.lake).filter(model_id=model_id)["backtests"].to_list() == [1]
        assert ok(ed.put(f"/models/{model_id}", json=shared))["sharing"]["public"] is True


def test_a_longer_span_is_a_job_only_its_owner_reads(api: Api) -> None:
    body = {"config": DRAFT, "sport": NBA} | LONG
    with api.client("gus") as gus, api.client("hal") as hal:
        accepted = gus.post("/backtests", json=body, headers={"Idempotency-Key": "gus-long-1"})
        job = ok(accepted, 202)
        assert accepted.headers["Location"] == job["status_url"] == f"/backtests/{job['job_id']}"
        again = gus.post("/backtests", json=body, headers={"Idempotency-Key": "gus-long-1"})
        assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (202, job, "true")
        assert ok(hal.get(job["status_url"]), 404)["error"]["code"] == "not_found"
        status = finished(gus, job["job_id"])
        assert ok(hal.get(job["status_url"]), 404)
        assert ok(gus.get("/backtests/job-nothing"), 404)
    assert (status["state"], status["kind"], status["attempts"], status["error"]) == (
        "done",
        "backtest",
        1,
        None,
    )
    assert status["done"] == status["total"] > 0
    same_report(status["report"], backtest_model(api.lake, _draft_config("gus"), FIRST, LAST))
    assert status["report"]["from"] == LONG["from"]


def test_a_running_job_shows_its_progress_to_any_worker(api: Api) -> None:
    """A handler that has done 7 of 40 days and waits: its heartbeat carries the progress, which
    another runner over the lake (another API process) reads."""
    release, reached = threading.Event(), threading.Event()

    def handler(lake: Lake, job_id: str, params: Any, progress: Any) -> dict[str, Any]:
        progress(7, 40)
        reached.set()
        release.wait(30)
        return {"days": 40}

    runner = JobRunner(
        api.lake, {"backtest": handler}, api.app.state.clock, JobLimits(heartbeat_seconds=0.02)
    )
    runner.submit("uma", "job-00000000000000d1", "backtest", {})
    assert reached.wait(30)
    other, deadline = api.runner(), time.monotonic() + 30
    while (view := other.status("uma", "job-00000000000000d1")) is not None and (
        view.progress is None or view.progress.done == 0  # until the next heartbeat
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert view is not None and view.progress is not None
    assert (view.state, view.attempts, view.progress.done, view.progress.total) == ("running", 1, 7, 40)
    other.close()
    release.set()
    deadline = time.monotonic() + 30
    while (view := runner.status("uma", "job-00000000000000d1")) is not None and not view.finished:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert view is not None and view.state == "done" and view.result is not None
    assert view.result.report == {"days": 40}
    runner.close()


@pytest.mark.parametrize(
    ("job_id", "error", "message"),
    [
        ("job-00000000000000e1", TuningError("the span has 1 game days"), "the span has 1 game days"),
        ("job-00000000000000e2", KeyError("x"), "internal error"),
    ],
)
def test_a_job_that_raises_ends_failed_with_a_message_for_its_owner(
    api: Api, job_id: str, error: Exception, message: str
) -> None:
    def handler(lake: Lake, job: str, params: Any, progress: Any) -> dict[str, Any]:
        raise error

    runner = JobRunner(api.lake, {"tune": handler}, api.app.state.clock)
    runner.submit("vic", job_id, "tune", {})
    deadline = time.monotonic() + 30
    while (view := runner.status("vic", job_id)) is not None and not view.finished:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert view is not None and view.failure is not None
    assert (view.state, view.failure.message) == ("failed", message)
    runner.close()


def test_a_job_whose_worker_died_is_resumed_by_its_next_reader(api: Api) -> None:
    """The request and attempt 0's claim and progress are there; the process that claimed it is gone."""
    store, job_id = JobStore(api.lake), "job-00000000000000a1"
    params = {"config": _draft_config("kim").to_payload(), "model_id": None} | LONG
    now = api.app.state.clock()
    store.submit(
        "kim", job_id, JobRequest(kind="backtest", created_at=now - dt.timedelta(minutes=5), params=params)
    )
    store.claim("kim", job_id, 0, Claim(claimed_at=now - dt.timedelta(minutes=5), worker="gone:1"))
    store.beat("kim", job_id, 0, Progress(done=3, total=40, updated_at=now - dt.timedelta(minutes=2)))
    with api.client("kim") as kim:
        assert ok(kim.get(f"/backtests/{job_id}"))["state"] == "running"
        status = finished(kim, job_id)
    assert (status["state"], status["attempts"]) == ("done", 2)
    same_report(status["report"], backtest_model(api.lake, _draft_config("kim"), FIRST, LAST))


def test_a_job_waiting_in_a_busy_pool_is_not_taken_for_dead(api: Api) -> None:
    """One worker thread busy with a job for longer than a heartbeat may stay silent: the job
    queued behind it is claimed only when it starts, so polling it meanwhile neither fails it nor
    runs it twice."""
    release = threading.Event()

    def handler(lake: Lake, job: str, params: Any, progress: Any) -> dict[str, Any]:
        if params.get("block"):
            release.wait(30)
        return {"job": job}

    limits = JobLimits(workers=1, heartbeat_seconds=0.02, stale_after=dt.timedelta(seconds=0.1))
    runner = JobRunner(api.lake, {"backtest": handler}, api.app.state.clock, limits)
    runner.submit("wes", "job-00000000000000f1", "backtest", {"block": True})
    runner.submit("wes", "job-00000000000000f2", "backtest", {})
    for _ in range(15):  # 0.45 s: the waiting job's request is older than stale_after
        view = runner.status("wes", "job-00000000000000f2")
        assert view is not None and (view.state, view.attempts) == ("queued", 0)
        time.sleep(0.03)
    release.set()
    deadline = time.monotonic() + 30
    while (view := runner.status("wes", "job-00000000000000f2")) is not None and not view.finished:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert view is not None and (view.state, view.attempts) == ("done", 1)
    runner.close()


def test_a_job_whose_workers_keep_dying_is_failed_not_left_running(api: Api) -> None:
    store, job_id = JobStore(api.lake), "job-00000000000000b2"
    old = api.app.state.clock() - dt.timedelta(minutes=10)
    store.submit("lou", job_id, JobRequest(kind="backtest", created_at=old, params={}))
    for attempt in range(3):
        store.claim("lou", job_id, attempt, Claim(claimed_at=old, worker=f"gone:{attempt}"))
    with api.client("lou") as lou:
        status = ok(lou.get(f"/backtests/{job_id}"))
    assert (status["state"], status["attempts"]) == ("failed", 3)
    assert "stopped 3 times" in status["error"]


def test_a_job_any_worker_can_answer_for(api: Api) -> None:
    """Another API process (its own runner) reads the job from the lake alone."""
    with api.client("max") as mx:
        job = ok(mx.post("/backtests", json={"config": DRAFT, "sport": NBA} | LONG), 202)
        finished(mx, job["job_id"])
    other = api.runner()
    view = other.status("max", job["job_id"])
    assert view is not None and view.state == "done" and view.result is not None
    assert other.status("someone-else", job["job_id"]) is None
    other.close()


def test_open_jobs_are_limited_per_user(api: Api) -> None:
    store = JobStore(api.lake)
    now = api.app.state.clock()
    for n in range(2):  # two jobs another worker is running (fresh heartbeats)
        job_id = f"job-00000000000000c{n}"
        store.submit("ned", job_id, JobRequest(kind="backtest", created_at=now, params={}))
        store.claim("ned", job_id, 0, Claim(claimed_at=now, worker="busy:1"))
    with api.client("ned") as ned:
        refused = ned.post("/backtests", json={"config": DRAFT, "sport": NBA} | LONG)
        assert ok(refused, 429)["error"]["code"] == "too_many_jobs" and refused.headers["Retry-After"]
        assert ok(ned.post("/backtests", json={"config": DRAFT, "sport": NBA} | SPAN))[
            "summary"
        ]  # inline is fine


def test_drafts_need_an_adult_in_an_allowed_region(api: Api) -> None:
    with api.client("oli", birthdate=None) as minor:
        refused = minor.post("/backtests", json={"config": DRAFT, "sport": NBA} | SPAN)
        assert ok(refused, 403)["error"]["code"] == "age_verification_required"
        assert ok(minor.get("/backtests/job-0000000000000000"), 403)


def test_tuning_is_a_job_of_the_owner_recorded_on_the_model(api: Api) -> None:
    with api.client("pia") as pia, api.client("quin") as quin:
        model_id = ok(pia.post("/models", json=DRAFT | {"sport": NBA, "sharing": {"public": False}}), 201)[
            "model_id"
        ]
        body = {"folds": 3, "trials": 50} | SPAN
        assert ok(quin.post(f"/models/{model_id}/tune", json=body), 404)
        job = ok(pia.post(f"/models/{model_id}/tune", json=body), 202)
        assert job["kind"] == "tune"
        status = finished(pia, job["job_id"])
        assert ok(quin.get(job["status_url"]), 404)
    report = status["report"]
    assert status["state"] == "done" and report["configurations"] == 50
    assert {"in_sample", "out_of_sample", "baseline", "walk_forward", "best_config"} <= set(report)
    assert len(report["walk_forward"]) == 2
    best = parse_model_config(report["best_config"] | {"model_id": model_id, "creator_user_id": "pia"})
    summary = backtest_model(api.lake, best, FIRST, LAST)["summary"]
    assert {k: report["in_sample"][k] for k in ("wins", "losses", "pushes")} == {
        k: summary[k] for k in ("wins", "losses", "pushes")
    }
    assert backtest_counts(api.lake).filter(model_id=model_id)["backtests"].to_list() == [50]
    with api.client("pia") as pia:
        saved = ok(pia.put(f"/models/{model_id}", json=report["best_config"]))
    assert saved["version"] == 2


def test_a_model_s_tuning_refuses_a_bad_span(api: Api, tmp_path: Path) -> None:
    with api.client("ray") as ray:
        model_id = ok(ray.post("/models", json=DRAFT | {"sport": NBA, "sharing": {"public": False}}), 201)[
            "model_id"
        ]
        backwards = {"from": LAST.isoformat(), "to": FIRST.isoformat()}
        assert (
            ok(ray.post(f"/models/{model_id}/tune", json=backwards), 422)["error"]["code"] == "invalid_span"
        )
        assert ok(ray.post(f"/models/{model_id}/tune", json=SPAN | {"trials": 0}), 422)
