"""Users' reviews of models over real HTTP (uvicorn, real tokens, a real lake) and through the real
pipeline to the listing: who may review, edits with their history, helpful votes and sorting, the
creator's reply, reports and the operator's decisions (``oddsforge review-reports``), and the
listing's mean and count from the ``model_ratings`` mart."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import mint_token
from assets.marketplace import USER_REVIEWS_KEY, user_reviews
from assets.marts import marts
from cli import main as cli
from pipelines.sensors import ratings_inbox_sensor
from services.backtests import record_backtest
from stores.audit import read_audit
from stores.lake import Lake
from tests.market_pipeline import market_definitions
from tests.test_api import SECRET, serve, settings_for

NOW = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def model_body(name: str, public: bool) -> dict[str, Any]:
    return {
        "name": name,
        "sport": "basketball_nba",
        "market": "h2h",
        "data_sources": {"team_stats": {"weight": 1.0, "fields": ["net_rating"], "lookback_games": 10}},
        "sharing": {"public": public, "price_per_month": 0},
    }


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


@dataclass
class Market:
    lake: Lake
    app: FastAPI
    url: str
    defs: dg.Definitions
    instance: dg.DagsterInstance
    clock: list[dt.datetime]
    models: dict[str, str] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, user: str) -> httpx.Client:
        if user not in self.clients:
            headers = {"Authorization": f"Bearer {mint_token(user, SECRET)}"}
            self.clients[user] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[user]

    def share(self, creator: str, name: str) -> str:
        """A free public model: created private, then shared on a recorded backtest of 60 graded
        predictions (the publishing rule; the backtest itself is the marketplace tests' business)."""
        client = self.client(creator)
        model_id = ok(client.post("/models", json=model_body(name, False)), 201)["model_id"]
        record_backtest(
            self.lake,
            {
                "model_id": model_id,
                "version": 1,
                "from": "2025-10-21",
                "to": "2025-11-09",
                "summary": {"graded": 60},
            },
        )
        ok(client.put(f"/models/{model_id}", json=model_body(name, True)))
        return model_id

    def subscribe(self, user: str, model: str, days_ago: float) -> None:
        self.clock[0] = NOW - days_ago * DAY
        ok(self.client(user).post("/marketplace/subscribe", json={"model_id": self.models[model]}), 201)
        self.clock[0] = NOW

    def reviews(self, model: str, user: str = "zoe", **params: Any) -> dict[str, Any]:
        return ok(self.client(user).get(f"/models/{self.models[model]}/reviews", params=params))

    def run(self, job: str) -> None:
        assert self.defs.resolve_job_def(job).execute_in_process(instance=self.instance).success


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """Two free public models (carol's and alice's) and their subscribers, the API on a clock the
    tests hold at :data:`NOW`."""
    root = tmp_path_factory.mktemp("ratings")
    lake = Lake(root=str(root / "lake"))
    defs = market_definitions(
        lake,
        root,
        {
            "status": ["model_versions", "subscriptions", "user_reviews", "model_status"],
            "marts": [marts],
            "publish": ["serving_snapshot"],
        },
    )
    app = create_app(settings_for(root / "warehouse"), lake=lake)
    clock = [NOW]
    app.state.clock = lambda: clock[0]
    with serve(app) as url:
        market = Market(lake, app, url, defs, dg.DagsterInstance.ephemeral(), clock)
        market.models = {
            "rotation": market.share("carol", "Rotation"),
            "steam": market.share("alice", "Steam"),
        }
        for user, model, days in [
            ("dave", "rotation", 8),
            ("erin", "rotation", 20),
            ("gina", "rotation", 3),
            ("frank", "steam", 9),
            ("zoe", "rotation", 10),
        ]:
            market.subscribe(user, model, days)
        yield market
        for client in market.clients.values():
            client.close()


def test_a_review_needs_seven_days_of_access_and_never_comes_from_the_creator(market: Market) -> None:
    path = f"/models/{market.models['rotation']}/reviews"
    review = {"stars": 4, "text": "Steady picks, honest about its misses."}
    three_days = error(market.client("gina").post(path, json=review), 403)
    assert three_days["code"] == "review_not_allowed" and "7 days" in three_days["message"]
    creator = error(market.client("carol").post(path, json=review), 403)
    assert (creator["code"], creator["message"]) == (
        "review_not_allowed",
        "creators do not review their own models",
    )
    assert error(market.client("harry").post(path, json=review), 403)["code"] == "review_not_allowed"

    posted = ok(market.client("dave").post(path, json=review), 201)
    assert (posted["user_id"], posted["stars"], posted["text"], posted["history"]) == (
        "dave",
        4,
        review["text"],
        [],
    )
    assert posted["visibility"] == "visible" and posted["created_at"].startswith("2026-02-01T12:00:00")
    assert error(market.client("dave").post(path, json=review), 409)["code"] == "already_reviewed"
    listed = market.reviews("rotation")
    assert [r["review_id"] for r in listed["items"]] == [posted["review_id"]]
    assert (listed["rating_mean"], listed["ratings"]) == (4.0, 1)

    # Four days later gina has had her week.
    market.clock[0] = NOW + 4 * DAY
    try:
        assert ok(market.client("gina").post(path, json={"stars": 3}), 201)["text"] == ""
    finally:
        market.clock[0] = NOW


@pytest.mark.parametrize(
    "body", [{"stars": 0}, {"stars": 6}, {"stars": 3, "text": "x" * 2001}, {"text": "no stars"}]
)
def test_stars_and_text_are_bounded(market: Market, body: dict[str, Any]) -> None:
    path = f"/models/{market.models['steam']}/reviews"
    assert error(market.client("frank").post(path, json=body), 422)["code"] == "validation_error"


def test_an_edit_keeps_the_earlier_text_in_the_history(market: Market) -> None:
    path = f"/models/{market.models['steam']}/reviews"
    assert error(market.client("frank").put(path, json={"stars": 2}), 404)["code"] == "not_found"
    first = ok(market.client("frank").post(path, json={"stars": 2, "text": "x" * 2000}), 201)
    market.clock[0] = NOW + DAY
    try:
        edited = ok(market.client("frank").put(path, json={"stars": 5, "text": "It came good."}))
    finally:
        market.clock[0] = NOW
    assert (edited["review_id"], edited["stars"], edited["text"]) == (first["review_id"], 5, "It came good.")
    assert edited["created_at"] == first["created_at"] and edited["edited_at"].startswith("2026-02-02")
    assert edited["history"] == [{"stars": 2, "text": "x" * 2000, "at": first["created_at"]}]
    assert market.reviews("steam")["items"] == [edited]


def test_helpful_votes_sort_reviews_and_the_creator_replies_once(market: Market) -> None:
    path = f"/models/{market.models['rotation']}/reviews"
    market.clock[0] = NOW + 5 * DAY
    try:
        erin = ok(market.client("erin").post(path, json={"stars": 1, "text": "Lost me money."}), 201)
    finally:
        market.clock[0] = NOW
    dave = next(r for r in market.reviews("rotation")["items"] if r["user_id"] == "dave")
    helpful = f"{path}/{dave['review_id']}/helpful"
    assert ok(market.client("zoe").post(helpful), 201)["helpful"] == 1
    assert ok(market.client("zoe").post(helpful), 200)["helpful"] == 1  # one vote per user
    assert ok(market.client("erin").post(helpful), 201)["helpful"] == 2
    assert error(market.client("dave").post(helpful), 403)["code"] == "forbidden"

    newest = [r["user_id"] for r in market.reviews("rotation")["items"]]
    assert newest == ["erin", "gina", "dave"]
    # Most helpful first, then newest.
    assert [r["user_id"] for r in market.reviews("rotation", sort="helpful")["items"]] == [
        "dave",
        "erin",
        "gina",
    ]
    top = market.reviews("rotation", sort="helpful", limit=2)
    rest = market.reviews("rotation", sort="helpful", limit=2, cursor=top["next_cursor"])
    assert [r["user_id"] for r in rest["items"]] == ["gina"] and rest["next_cursor"] is None
    first = market.reviews("rotation", limit=1)
    second = market.reviews("rotation", limit=1, cursor=first["next_cursor"])
    assert [first["items"][0]["user_id"], second["items"][0]["user_id"]] == newest[:2]

    reply = f"{path}/{erin['review_id']}/reply"
    assert error(market.client("zoe").post(reply, json={"text": "Not yours"}), 403)["code"] == "forbidden"
    answered = ok(market.client("carol").post(reply, json={"text": "The model was suspended since."}), 201)
    assert answered["reply"]["creator_id"] == "carol" and answered["reply"]["text"].startswith("The model")
    assert error(market.client("carol").post(reply, json={"text": "again"}), 409)["code"] == "already_replied"
    assert error(market.client("zoe").post(f"{path}/{'0' * 16}/helpful"), 404)["code"] == "not_found"


def test_a_reported_review_leaves_the_list_until_an_operator_restores_it(
    market: Market, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = f"/models/{market.models['rotation']}/reviews"
    erin = next(r for r in market.reviews("rotation")["items"] if r["user_id"] == "erin")
    report = f"{path}/{erin['review_id']}/report"
    headers = {"Idempotency-Key": "report-erin-1"}
    receipt = ok(market.client("zoe").post(report, json={"reason": "abusive"}, headers=headers), 201)
    replay = market.client("zoe").post(report, json={"reason": "abusive"}, headers=headers)
    assert replay.json() == receipt and replay.headers["Idempotent-Replayed"] == "true"
    assert ok(market.client("zoe").post(report, json={"reason": "again"}), 200) == receipt  # once per user
    listed = market.reviews("rotation")
    assert erin["review_id"] not in [r["review_id"] for r in listed["items"]]
    assert listed["ratings"] == 2  # out of the rating too

    monkeypatch.setenv("ODDSFORGE_LAKE", market.lake.root)
    capsys.readouterr()
    assert cli.main(["review-reports", "list", "--json"]) == 0
    (waiting,) = json.loads(capsys.readouterr().out)["reviews"]
    assert (waiting["review_id"], waiting["reports"][0]["reason"]) == (erin["review_id"], "abusive")
    model_id = market.models["rotation"]
    assert cli.main(["review-reports", "restore", model_id, erin["review_id"], "--operator", "ops"]) == 0
    assert erin["review_id"] in [r["review_id"] for r in market.reviews("rotation")["items"]]
    assert cli.main(["review-reports", "restore", model_id, erin["review_id"]]) == 2  # nothing to restore

    ok(market.client("dave").post(report, json={"reason": "still abusive"}), 201)
    assert erin["review_id"] not in [r["review_id"] for r in market.reviews("rotation")["items"]]
    assert cli.main(["review-reports", "hide", model_id, erin["review_id"], "--operator", "ops"]) == 0
    assert erin["review_id"] not in [r["review_id"] for r in market.reviews("rotation")["items"]]
    assert error(market.client("zoe").post(report, json={}), 404)["code"] == "not_found"  # hidden for good

    audit = read_audit(market.lake).filter(pl.col("object_type") == "user_review")
    assert audit.select("actor", "action").rows() == [
        ("operator:ops", "user_review.restored"),
        ("operator:ops", "user_review.hidden"),
    ]


def test_the_listing_shows_mean_and_count_from_the_marts_and_sorts_by_them(market: Market) -> None:
    # The ratings inbox sensor asks for a run folding the new objects into user_reviews.
    tick = ratings_inbox_sensor(
        dg.build_sensor_context(instance=market.instance, resources={"lake": market.lake})
    )
    assert isinstance(tick, dg.SensorResult)
    (request,) = tick.run_requests or []
    keys = request.run_config["ops"]["user_reviews"]["config"]["keys"]
    assert len(keys) > 4 and all(k.startswith("inbox/ratings/") for k in keys)
    assert dg.materialize(
        [user_reviews],
        instance=market.instance,
        resources={"lake": market.lake},
        run_config=request.run_config,
    ).success
    table = market.lake.read_parquet([USER_REVIEWS_KEY])
    assert dict(table.group_by("visibility").len().iter_rows()) == {"visible": 3, "hidden": 1}

    for job in ("status", "marts", "publish"):
        market.run(job)
    time.sleep(0.25)  # the API re-reads the snapshot pointer every 0.1 s
    zoe = market.client("zoe")
    by_rating = ok(zoe.get("/marketplace/models", params={"sort": "rating"}))["items"]
    figures = [(m["model_id"], m["rating_mean"], m["ratings"]) for m in by_rating]
    # steam: frank's 5; rotation: dave's 4 and gina's 3 (erin's 1 is hidden).
    assert figures == [(market.models["steam"], 5.0, 1), (market.models["rotation"], 3.5, 2)]
    by_count = ok(zoe.get("/marketplace/models", params={"sort": "ratings"}))["items"]
    assert [m["model_id"] for m in by_count] == [market.models["rotation"], market.models["steam"]]
