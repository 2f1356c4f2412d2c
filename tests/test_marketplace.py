"""The marketplace over three weeks of the sample league: publishing rules, review, suspension and
notifications, free subscriptions, listings, on-demand runs with their cache and run limit, and
SPEC 6 visibility, through real HTTP against uvicorn and real Dagster runs on a local lake."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import mint_token
from api.routes import execution
from assets.analyses import analyses
from assets.ingest import ingest_assets
from assets.lake import compact_closed_months
from assets.marketplace import (
    MODEL_STATUS_KEY,
    NOTIFICATIONS_KEY,
    SUBSCRIPTIONS_KEY,
    subscriptions,
)
from assets.marts import marts
from assets.models import model_versions
from assets.performance import model_performance, settled_picks
from assets.serving import serving_snapshot
from cli import main as cli
from domain.compliance.legal import DISCLAIMER
from domain.marketplace.listing import (
    MODEL_STATUS,
    NOTIFICATIONS,
    REVIEWS,
    SUSPENSIONS,
    fold_subscriptions,
    listing_status,
    notifications,
    retry_after,
)
from domain.marketplace.performance import MODEL_PERFORMANCE, wilson_lower_bound
from domain.markets.value import BookPrice, latest_at_cutoff, value_of_pick
from domain.models.engine import ANALYSES
from domain.models.registry import MODEL_VERSIONS, build_version, new_model_id
from domain.money.subscriptions import SUBSCRIPTIONS
from domain.tables.schemas import ODDS_SNAPSHOTS, conform
from pipelines.execution import (
    RECORD_DAYS,
    automate,
    daily_record_schedule,
    popular_models_schedule,
)
from pipelines.jobs import range_tags
from pipelines.sensors import review_inbox_sensor, subscriptions_inbox_sensor
from resources.sample_feed import SampleLeagueFeed
from services.on_demand import ExecutionLimits
from stores.audit import read_audit
from stores.lake import SHADOW_GRACE_SECONDS, Lake
from stores.layout import ALERTS_PREFIX, SERVING_POINTER, analyses_cache_key, month_table_key, table_key
from stores.registry import RegistryStore
from stores.warehouse import EXPLANATION_TABLES, Warehouse
from tests.market_pipeline import INGEST_OPS, market_definitions
from tests.test_api import SECRET, serve, settings_for
from tests.test_payments_flow import ready_to_sell

FIRST, LAST = dt.date(2025, 10, 21), dt.date(2025, 11, 9)
NBA, NFL = "basketball_nba", "americanfootball_nfl"
ONLY_NBA = {"config": {"sports": [NBA]}}
T0 = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)
ROTATION = {
    "player_stats": {"weight": 0.6, "fields": ["PTS", "REB", "AST"], "min_minutes": 20},
    "team_stats": {"weight": 0.4, "fields": ["net_rating"], "lookback_games": 10},
}


def body(name: str, public: bool, price: float = 0, market: str = "h2h", **sources: Any) -> dict[str, Any]:
    """A model config; player and team form by default (it beats the sample market early on)."""
    return {
        "name": name,
        "sport": NBA,
        "market": market,
        "data_sources": sources or ROTATION,
        "min_confidence": 0.52,
        "max_confidence": 0.8,
        "sharing": {"public": public, "price_per_month": price, "trial_days": 7 if price else 0},
    }


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


@dataclass
class World:
    lake: Lake
    app: FastAPI
    url: str
    defs: dg.Definitions
    instance: dg.DagsterInstance
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def client(self, user: str) -> httpx.Client:
        if user not in self.clients:
            headers = {"Authorization": f"Bearer {mint_token(user, SECRET)}"}
            self.clients[user] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[user]

    def run(self, job: str, first: dt.date | None = None, last: dt.date | None = None, **ops: Any) -> None:
        tags = range_tags(first, last) if first and last else {}
        result = self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, tags=tags, run_config={"ops": ops}
        )
        assert result.success

    def refresh(self) -> None:
        """What the sensors and automation do after a change: tables, status, a new snapshot."""
        self.run("status")
        time.sleep(0.25)  # the API re-reads the snapshot pointer every 0.1 s

    def listed(self, user: str = "zoe") -> list[str]:
        return [m["model_id"] for m in ok(self.client(user).get("/marketplace/models"))["items"]]


def publish(world: World, user: str, config: dict[str, Any]) -> str:
    """As a creator does: create private, backtest, update with ``sharing.public = true``."""
    client = world.client(user)
    private = config | {"sharing": config["sharing"] | {"public": False}}
    model_id = ok(client.post("/models", json=private), 201)["model_id"]
    span = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
    assert ok(client.post(f"/models/{model_id}/test", json=span))["summary"]["graded"] >= 50
    assert ok(client.put(f"/models/{model_id}", json=config))["version"] == 2
    return model_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Three weeks of the sample league, three shared models (two free, one paid) and a private one
    created through the API, analysed, settled and ranked by the pipeline, and the API serving it."""
    root = tmp_path_factory.mktemp("market")
    lake = Lake(root=str(root / "lake"))
    defs = market_definitions(
        lake,
        root,
        {
            "status": ["model_versions", "subscriptions", "model_status", "serving_snapshot"],
            "marts": [marts],
        },
    )
    app = create_app(settings_for(root / "warehouse"), lake=lake)
    with serve(app) as url:
        world = World(lake, app, url, defs, dg.DagsterInstance.ephemeral())
        world.run("ingest", FIRST, LAST, **dict.fromkeys(INGEST_OPS, ONLY_NBA))
        ratings = {"team_stats": {"weight": 1.0, "fields": ["offensive_rating", "defensive_rating"]}}
        ready_to_sell(world.client("bob"), lake, "bob")
        world.ids = {
            "carol_free": publish(world, "carol", body("Rotation ATS", True, market="spreads")),
            "alice_free": publish(world, "alice", body("Rotation", True)),
            "bob_paid": publish(world, "bob", body("Premium", True, price=9.99, **ratings)),
            "alice_private": ok(world.client("alice").post("/models", json=body("Secret", False)), 201)[
                "model_id"
            ],
        }
        world.run("status")
        world.run(
            "score",
            FIRST,
            LAST,
            **dict.fromkeys(["analyses", "settled_picks", "model_performance"], ONLY_NBA),
        )
        world.run("marts")
        world.refresh()
        yield world
        for client in world.clients.values():
            client.close()


# ---- publishing ---------------------------------------------------------------------------------


def test_publishing_needs_a_backtest_of_fifty_graded_predictions(world: World) -> None:
    erin = world.client("erin")
    refused = error(erin.post("/models", json=body("Eager", True)), 422)
    assert refused["code"] == "publishing_rule"
    assert refused["details"][0]["field"] == "body.sharing.public"
    assert "at least 50 graded predictions" in refused["message"]

    model_id = ok(erin.post("/models", json=body("Eager", False)), 201)["model_id"]
    assert error(erin.put(f"/models/{model_id}", json=body("Eager", True)), 422)["code"] == "publishing_rule"
    one_day = ok(erin.post(f"/models/{model_id}/test", json={"from": "2025-11-05", "to": "2025-11-05"}))
    assert 0 < one_day["summary"]["graded"] < 50
    tenth = {"from": "2025-11-05", "to": "2025-11-05", "kelly_fraction": 0.1}
    assert ok(erin.post(f"/models/{model_id}/test", json=tenth))["kelly"]["fraction"] == 0.1
    still = error(erin.put(f"/models/{model_id}", json=body("Eager", True)), 422)
    assert f"graded {one_day['summary']['graded']}" in still["message"]

    season = ok(
        erin.post(f"/models/{model_id}/test", json={"from": FIRST.isoformat(), "to": LAST.isoformat()})
    )
    assert season["summary"]["graded"] >= 50
    shared = ok(erin.put(f"/models/{model_id}", json=body("Eager", True)))
    assert (shared["version"], shared["sharing"]["public"]) == (2, True)
    # A backtest of any version counts: the next version may stay public.
    assert ok(erin.put(f"/models/{model_id}", json=body("Eager v3", True)))["version"] == 3


# ---- listings, review, visibility ---------------------------------------------------------------


def test_listing_ranks_listed_models_with_their_figures(world: World) -> None:
    zoe = world.client("zoe")
    page = ok(zoe.get("/marketplace/models"))
    items = {m["model_id"]: m for m in page["items"]}
    carol, alice = world.ids["carol_free"], world.ids["alice_free"]
    assert {carol, alice} <= set(items)
    assert world.ids["alice_private"] not in items
    for model_id in (carol, alice):
        m = items[model_id]
        assert (
            m["graded"] >= 50
            and m["established"]
            and m["price_cents"] == 0
            and m["as_of"] == LAST.isoformat()
        )
        assert m["version"] == 2
        # SPEC 5: ROI, CLV with its 95% interval and the backtests behind the record (one each).
        assert m["roi"] == pytest.approx(m["profit"] / m["units"])
        # (the sample league prices its picks at the close: CLV 0, a zero-width interval)
        assert m["clv_picks"] > 1 and m["clv_low"] <= m["clv"] <= m["clv_high"]
        assert m["backtests"] == 1
        assert m["performance_score"] == pytest.approx(
            pl.select(wilson_lower_bound(m["wins"], m["graded"])).item() - m["breakeven"]
        )
    scores = [(m["established"], m["graded"] > 0, m["performance_score"]) for m in page["items"]]
    assert scores == sorted(scores, reverse=True)

    by_roi = ok(zoe.get("/marketplace/models", params={"sort": "roi"}))["items"]
    rois = [m["roi"] for m in by_roi if m["roi"] is not None]
    assert rois == sorted(rois, reverse=True)
    h2h = [m["model_id"] for m in ok(zoe.get("/marketplace/models", params={"market": "h2h"}))["items"]]
    assert alice in h2h and carol not in h2h
    assert ok(zoe.get("/marketplace/models", params={"price": "paid", "max_price_cents": 500}))["items"] == []
    first = ok(zoe.get("/marketplace/models", params={"limit": 1}))
    second = ok(zoe.get("/marketplace/models", params={"limit": 1, "cursor": first["next_cursor"]}))
    assert [first["items"][0]["model_id"], second["items"][0]["model_id"]] == [
        m["model_id"] for m in page["items"][:2]
    ]

    detail = ok(zoe.get(f"/marketplace/models/{alice}"))
    assert (detail["status"], detail["listing"]["rank"], detail["subscribed"]) == (
        "listed",
        items[alice]["rank"],
        False,
    )
    assert detail["rolling"]["graded"] == items[alice]["graded"]
    for figure in ("performance_score", "breakeven", "clv", "clv_low", "clv_high", "clv_picks"):
        assert detail["rolling"][figure] == pytest.approx(items[alice][figure])
    assert detail["listing"]["backtests"] == 1
    assert detail["record"]["through"] == LAST.isoformat()

    perf = ok(zoe.get(f"/models/{alice}/performance"))
    assert perf["last"] == LAST.isoformat() and perf["daily"]
    assert sum(r["graded"] for r in perf["daily"]) == perf["window"]["graded"]
    results = ok(zoe.get(f"/models/{alice}/results", params={"days": 21}))
    assert results["items"] and all(
        r["qualifies"] and r["result"] in ("won", "lost", "push") for r in results["items"]
    )
    days = [r["game_date"] for r in results["items"]]
    assert days == sorted(days, reverse=True)

    # Another span counts as another backtest (of the model, whatever the version); a rerun of the
    # same span replaces its report and does not.
    week = {"from": FIRST.isoformat(), "to": (FIRST + dt.timedelta(days=6)).isoformat()}
    for _ in range(2):
        ok(world.client("alice").post(f"/models/{alice}/test", json=week))
    world.refresh()
    listed = {m["model_id"]: m for m in ok(zoe.get("/marketplace/models"))["items"]}
    assert (listed[alice]["backtests"], listed[carol]["backtests"]) == (2, 1)
    assert ok(zoe.get(f"/marketplace/models/{alice}"))["listing"]["backtests"] == 2


def test_each_result_carries_its_best_price_fair_probability_ev_and_stake(world: World) -> None:
    zoe, alice = world.client("zoe"), world.ids["alice_free"]
    items = ok(zoe.get(f"/models/{alice}/results", params={"days": 21, "limit": 40}))["items"]
    assert items
    for item in items:
        # The pick's own bookmaker is among those compared, so the best price is at least its price.
        assert item["best_price"] >= item["pick_price"] - 1e-12
        assert item["expected_value"] == pytest.approx(item["confidence"] * item["best_price"] - 1)
        assert 0 <= item["kelly_stake"] <= 0.05
        assert 0 < item["fair_probability"] < 1 and 0 < item["fair_probability_power"] < 1
    # One pick worked again from the lake's snapshots with the scalar rules.
    item = items[0]
    day = dt.date.fromisoformat(item["game_date"])
    snaps = world.lake.read_parquet([table_key("odds_snapshots", NBA, day)])
    cutoff = dt.datetime.fromisoformat(item["cutoff_time"])
    latest = latest_at_cutoff(snaps.filter(pl.col("game_id") == item["game_id"]), cutoff).filter(
        (pl.col("market") == item["market"]) & pl.col("line").eq_missing(item["line"])
    )
    first = item["pick"] in ("home", "over")
    books = [
        BookPrice(
            r["bookmaker"],
            *((r["price_first"], r["price_second"]) if first else (r["price_second"], r["price_first"])),
        )
        for r in latest.iter_rows(named=True)
    ]
    expected = value_of_pick(books, item["confidence"])
    assert expected is not None
    assert (item["best_bookmaker"], item["best_price"]) == (expected.best_bookmaker, expected.best_price)
    assert item["fair_probability"] == pytest.approx(expected.fair_probability)
    assert item["kelly_stake"] == pytest.approx(expected.kelly_stake)
    full = ok(zoe.get(f"/models/{alice}/results", params={"days": 21, "limit": 1, "kelly_fraction": 1}))
    assert full["items"][0]["kelly_stake"] == pytest.approx(min(0.05, 4 * items[0]["kelly_stake"]))
    assert error(zoe.get(f"/models/{alice}/results", params={"kelly_fraction": 0}), 422)


def test_paid_model_is_listed_only_once_an_operator_approves(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paid = world.ids["bob_paid"]
    assert paid not in world.listed()
    assert error(world.client("zoe").get(f"/marketplace/models/{paid}"), 404)["code"] == "not_found"
    mine = ok(world.client("bob").get(f"/marketplace/models/{paid}"))
    assert (mine["status"], mine["price_cents"], mine["trial_days"]) == ("pending_review", 999, 7)

    monkeypatch.setenv("ODDSFORGE_LAKE", world.lake.root)
    capsys.readouterr()
    assert cli.main(["review", "list", "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)["models"]
    assert [(m["model_id"], m["status"]) for m in queue] == [(paid, "pending_review")]
    with pytest.raises(SystemExit):
        cli.main(["review", "reject", paid])  # a rejection needs a reason
    assert cli.main(["review", "approve", world.ids["carol_free"]]) == 2  # free models need no review
    assert cli.main(["review", "approve", paid, "--reviewer", "ops"]) == 0
    audit = read_audit(world.lake).filter(pl.col("action").str.starts_with("review."))
    (record,) = audit.iter_rows(named=True)  # refused attempts leave none
    assert (record["actor"], record["action"], record["object_id"]) == (
        "operator:ops",
        "review.approved",
        paid,
    )

    tick = review_inbox_sensor(
        dg.build_sensor_context(instance=world.instance, resources={"lake": world.lake})
    )
    assert isinstance(tick, dg.SensorResult) and len(tick.run_requests or []) == 1
    world.refresh()
    assert paid in world.listed()
    listed = next(
        m for m in ok(world.client("zoe").get("/marketplace/models", params={"price": "paid"}))["items"]
    )
    assert (listed["model_id"], listed["price_cents"]) == (paid, 999)
    capsys.readouterr()
    assert cli.main(["review", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == []
    # Listed, yet its analyses stay with subscribers: SPEC 6.
    assert error(world.client("zoe").get(f"/models/{paid}/results"), 404)["code"] == "not_found"
    assert ok(world.client("zoe").get(f"/marketplace/models/{paid}"))["status"] == "listed"


def test_a_private_model_is_invisible_to_everyone_else(world: World) -> None:
    secret, alice, bob = world.ids["alice_private"], world.client("alice"), world.client("bob")
    missing = "alice--nothing-000000"
    for path in ("", "/results", "/performance"):
        assert error(bob.get(f"/models/{secret}{path}"), 404) == {
            **error(bob.get(f"/models/{missing}{path}"), 404),
            "message": f"no model with id {secret!r}",
        }
        assert alice.get(f"/models/{secret}{path}").status_code == 200
    assert error(bob.post(f"/models/{secret}/analyze", json={}), 404)["code"] == "not_found"
    assert error(bob.get(f"/marketplace/models/{secret}"), 404)["code"] == "not_found"
    assert error(bob.post("/marketplace/subscribe", json={"model_id": secret}), 404)["code"] == "not_found"
    assert secret not in world.listed("bob")
    assert secret not in [m["model_id"] for m in ok(bob.get("/models"))["items"]]
    assert ok(alice.get(f"/marketplace/models/{secret}"))["status"] == "private"


# ---- subscriptions ------------------------------------------------------------------------------


def test_free_subscribe_unsubscribe_and_list(world: World) -> None:
    dave, model_id = world.client("dave"), world.ids["carol_free"]
    sensor_context = dg.build_sensor_context(instance=world.instance, resources={"lake": world.lake})
    subscriptions_inbox_sensor(sensor_context)  # the inbox so far
    cursor = sensor_context.cursor

    created = dave.post("/marketplace/subscribe", json={"model_id": model_id})
    sub = ok(created, 201)
    assert (sub["model_id"], sub["kind"], sub["status"], sub["creator_id"]) == (
        model_id,
        "free",
        "active",
        "carol",
    )
    again = ok(dave.post("/marketplace/subscribe", json={"model_id": model_id}), 200)
    assert again["start_date"] == sub["start_date"]
    assert [s["model_id"] for s in ok(dave.get("/marketplace/subscriptions"))["items"]] == [model_id]
    assert ok(dave.get(f"/marketplace/models/{model_id}"))["subscribed"] is True
    assert error(world.client("carol").post("/marketplace/subscribe", json={"model_id": model_id}), 409)
    assert error(dave.post("/marketplace/subscribe", json={"model_id": "x--nope-000000"}), 404)

    # The sensor asks for a run folding exactly the new event into the table.
    tick = subscriptions_inbox_sensor(
        dg.build_sensor_context(instance=world.instance, cursor=cursor, resources={"lake": world.lake})
    )
    assert isinstance(tick, dg.SensorResult)
    (request,) = tick.run_requests or []
    keys = request.run_config["ops"]["subscriptions"]["config"]["keys"]
    assert keys == [f"inbox/subscriptions/dave/{model_id}/000001.json"]
    assert dg.materialize(
        [subscriptions],
        instance=world.instance,
        resources={"lake": world.lake},
        run_config=request.run_config,
    ).success
    table = world.lake.read_parquet([SUBSCRIPTIONS_KEY]).filter(pl.col("user_id") == "dave")
    assert table.select("model_id", "status", "price_cents").rows() == [(model_id, "active", 0)]

    left = ok(dave.request("DELETE", "/marketplace/unsubscribe", json={"model_id": model_id}))
    assert (left["status"], left["start_date"]) == ("cancelled", sub["start_date"])
    assert ok(dave.get("/marketplace/subscriptions"))["items"] == []
    ended = ok(dave.get("/marketplace/subscriptions", params={"include_ended": True}))["items"]
    assert [(s["model_id"], s["status"]) for s in ended] == [(model_id, "cancelled")]
    assert error(dave.request("DELETE", "/marketplace/unsubscribe", json={"model_id": model_id}), 404)


def test_suspension_after_three_failing_evaluations_notifies_subscribers(world: World) -> None:
    lake, store = world.lake, RegistryStore(world.lake)
    model_id = new_model_id("gridiron", "Steam", b"\x00\x00\x01")
    steam = {"odds_movement": {"weight": 1.0, "time_window_hours": 24}}
    nfl = body("Steam", True, market="spreads", **steam) | {"sport": NFL}
    store.create_version(  # registered directly: the sample league has no NFL games to backtest on
        build_version(
            nfl, model_id=model_id, owner_user_id="gridiron", version=1, created_at=T0, updated_at=T0
        )
    )
    ok(world.client("kim").post("/marketplace/subscribe", json={"model_id": model_id}), 201)
    world.refresh()

    def evaluation(day: dt.date, accuracy: float) -> None:
        row = {
            "model_id": model_id,
            "version": 1,
            "sport": NFL,
            "market": "spreads",
            "date": day,
            "graded": 12,
            "rolling_graded": 80,
            "rolling_accuracy": accuracy,
        }
        lake.write_parquet(
            table_key("model_performance", NFL, day), conform(pl.DataFrame([row]), MODEL_PERFORMANCE)
        )
        world.run("status")

    def status() -> tuple[str, str]:
        row = lake.read_parquet([MODEL_STATUS_KEY]).filter(pl.col("model_id") == model_id).row(0, named=True)
        return row["status"], row["reason"]

    thursday, sunday, monday = dt.date(2025, 11, 6), dt.date(2025, 11, 9), dt.date(2025, 11, 10)
    evaluation(thursday, 0.45)
    evaluation(sunday, 0.47)
    assert status()[0] == "listed"  # two failing evaluations: still in the grace period
    evaluation(monday, 0.48)
    state, reason = status()
    assert state == "suspended" and "3 consecutive evaluations" in reason and "2025-11-10" in reason
    outbox = lake.read_parquet([NOTIFICATIONS_KEY]).filter(pl.col("model_id") == model_id)
    assert outbox.select("user_id", "kind").rows() == [("kim", "suspended")]
    world.run("status")  # re-running never notifies twice
    assert lake.read_parquet([NOTIFICATIONS_KEY]).filter(pl.col("model_id") == model_id).height == 1

    time.sleep(0.25)
    notes = ok(world.client("kim").get("/notifications"))["items"]
    assert [(n["model_id"], n["kind"]) for n in notes] == [(model_id, "suspended")]
    assert "suspended" in notes[0]["message"]
    refused = error(world.client("lee").post("/marketplace/subscribe", json={"model_id": model_id}), 409)
    assert "takes no new subscribers" in refused["message"]
    assert error(world.client("kim").get(f"/models/{model_id}"), 404)["code"] == "not_found"
    assert model_id not in world.listed()

    # A new version lifts the suspension; its subscribers hear of it.
    store.create_version(
        build_version(
            nfl, model_id=model_id, owner_user_id="gridiron", version=2, created_at=T0, updated_at=T0
        )
    )
    world.refresh()
    assert status()[0] == "listed"
    kinds = [n["kind"] for n in ok(world.client("kim").get("/notifications"))["items"]]
    assert sorted(kinds) == ["new_version", "suspended"]


# ---- on-demand execution ------------------------------------------------------------------------


@pytest.fixture
def clock(world: World) -> Iterator[list[dt.datetime]]:
    """The API's clock, moved by the test; limits restored afterwards."""
    now = [dt.datetime.now(dt.UTC)]
    world.app.state.clock = lambda: now[0]
    yield now
    world.app.state.clock = lambda: dt.datetime.now(dt.UTC)
    world.app.state.execution = ExecutionLimits()


def test_analyze_is_cached_for_an_hour_and_equals_the_daily_run(
    world: World, clock: list[dt.datetime]
) -> None:
    model_id, day = world.ids["alice_free"], dt.date(2025, 11, 4)
    dave = world.client("dave")
    fresh = ok(dave.post(f"/models/{model_id}/analyze", json={"date": day.isoformat()}))
    assert (fresh["cached"], fresh["version"], fresh["date"]) == (False, 2, day.isoformat())
    assert fresh["qualifying"] == sum(a["qualifies"] for a in fresh["analyses"]) > 0

    # What the daily asset stored for that day, row for row.
    daily = world.lake.read_table("analyses", NBA, day, day + dt.timedelta(days=1), ANALYSES).filter(
        pl.col("model_id") == model_id
    )
    stored = sorted(
        (r["game_id"], r["bookmaker"], r["pick"], r["confidence"], r["qualifies"]) for r in daily.to_dicts()
    )
    served = sorted(
        (a["game_id"], a["bookmaker"], a["pick"], a["confidence"], a["qualifies"]) for a in fresh["analyses"]
    )
    assert served == stored

    cached_object = Path(world.lake.root) / analyses_cache_key(model_id, 2, day)
    written = cached_object.stat().st_mtime_ns
    clock[0] += dt.timedelta(minutes=59)
    hit = ok(world.client("zoe").post(f"/models/{model_id}/analyze", json={"date": day.isoformat()}))
    assert (hit["cached"], hit["computed_at"]) == (True, fresh["computed_at"])
    assert cached_object.stat().st_mtime_ns == written  # nothing recomputed

    clock[0] += dt.timedelta(minutes=2)
    again = ok(dave.post(f"/models/{model_id}/analyze", json={"date": day.isoformat(), "sport": NBA}))
    assert again["cached"] is False and again["computed_at"] > fresh["computed_at"]
    assert cached_object.stat().st_mtime_ns > written
    assert (
        error(dave.post(f"/models/{model_id}/analyze", json={"sport": NFL}), 422)["details"][0]["field"]
        == "body.sport"
    )


def test_an_on_demand_pick_carries_its_value_at_the_prices_by_its_cut_off(
    world: World, clock: list[dt.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id, day, dave = world.ids["alice_free"], dt.date(2025, 11, 4), world.client("dave")
    path, span = f"/models/{model_id}/analyze", {"date": day.isoformat()}
    # Over the lake's snapshots, the same figures as the daily run's results of that slate.
    run = ok(dave.post(path, json=span))
    settled = ok(
        dave.get(
            f"/models/{model_id}/results", params={"to": span["date"], "days": 1, "all": True, "limit": 200}
        )
    )
    # And the same sources: the daily run's joined back from its source scores and weights.
    figures = ("best_bookmaker", "best_price", "fair_probability", "fair_probability_power", "expected_value")
    shown = (*figures, "kelly_stake", "p", "sources")
    daily = {
        (r["game_id"], r["bookmaker"]): [r[f] for f in shown]
        for r in settled["items"]
        if r["version"] == run["version"]
    }
    assert settled["next_cursor"] is None
    assert {(a["game_id"], a["bookmaker"]): [a[f] for f in shown] for a in run["analyses"]} == daily
    for item in settled["items"]:  # the sources explain p
        scored = [(s["score"], s["weight"]) for s in item["sources"] if s["score"] is not None]
        assert scored and item["p"] == pytest.approx(
            sum(s * w for s, w in scored) / sum(w for _, w in scored)
        )
    assert any(a["best_price"] for a in run["analyses"])

    # Prices set by hand for one pick's game: the best price and the consensus at its cut-off.
    pick = next(a for a in run["analyses"] if a["qualifies"])
    cutoff = dt.datetime.fromisoformat(pick["cutoff_time"])
    first = pick["pick"] == "home"
    prices = [
        # bookmaker, minutes before the cut-off, picked side's price, other side's price
        ("alpha", 30, 2.10, 1.80),
        ("beta", 60, 2.40, 1.60),  # superseded by beta's later snapshot
        ("beta", 10, 2.00, 1.90),
        ("gamma", -1, 2.60, 1.50),  # a minute after the cut-off: not on offer at the pick's time
    ]
    snapshots = conform(
        pl.DataFrame(
            [
                {
                    "game_id": pick["game_id"],
                    "market": "h2h",
                    "bookmaker": book,
                    "snapshot_time": cutoff - dt.timedelta(minutes=before),
                    "price_first": mine if first else other,
                    "price_second": other if first else mine,
                }
                for book, before, mine, other in prices
            ]
        ),
        ODDS_SNAPSHOTS,
    )
    monkeypatch.setattr(execution, "game_snapshots", lambda lake, sport, games: snapshots)
    hand = ok(dave.post(path, json=span, params={"kelly_fraction": 0.5}))
    assert hand["cached"] is True
    valued = {(a["game_id"], a["bookmaker"]): a for a in hand["analyses"]}
    got = valued[(pick["game_id"], pick["bookmaker"])]
    assert (got["best_bookmaker"], got["best_price"]) == ("alpha", 2.10)
    # Multiplicative: alpha 1.80 / 3.90 = 0.4615, beta 1.90 / 3.90 = 0.4872; mean 3.70 / 7.80 = 0.4744.
    assert got["fair_probability"] == pytest.approx(3.70 / 7.80)
    # Power: alpha k = 1.0474 (0.4762^k + 0.5556^k = 1) gives 0.4597; beta k = 1.0390 gives 0.4867.
    assert got["fair_probability_power"] == pytest.approx((0.4597 + 0.4867) / 2, abs=1e-4)
    confidence = got["confidence"]
    assert got["expected_value"] == pytest.approx(confidence * 2.10 - 1)
    # Half Kelly at 2.10: (p * 2.10 - 1) / 1.10 / 2, within [0, 5%].
    assert got["kelly_stake"] == pytest.approx(min(0.05, max(0.0, (confidence * 2.10 - 1) / 1.10 / 2)))
    others = [a for key, a in valued.items() if key[0] != pick["game_id"]]
    assert others and all(a["best_price"] is None and a["kelly_stake"] is None for a in others)
    assert error(dave.post(path, json=span, params={"kelly_fraction": 1.5}), 422)


def test_uncached_runs_are_limited_per_user(world: World, clock: list[dt.datetime]) -> None:
    world.app.state.execution = ExecutionLimits(runs_per_window=2, window_seconds=3600)
    model_id, ivy = world.ids["carol_free"], world.client("ivy")

    def run(day: str) -> httpx.Response:
        return ivy.post(f"/models/{model_id}/analyze", json={"date": day})

    assert ok(run("2025-10-28"))["cached"] is False
    clock[0] += dt.timedelta(minutes=10)
    assert ok(run("2025-10-29"))["cached"] is False
    limited = run("2025-10-30")
    assert error(limited, 429)["code"] == "too_many_requests"
    assert int(limited.headers["retry-after"]) == 50 * 60  # the first run leaves the window then
    assert ok(run("2025-10-28"))["cached"] is True  # cached answers stay free
    assert (
        ok(world.client("jay").post(f"/models/{model_id}/analyze", json={"date": "2025-10-30"}))["cached"]
        is False
    )
    clock[0] += dt.timedelta(minutes=50)
    assert ok(run("2025-10-31"))["cached"] is False


def test_every_answer_with_picks_figures_or_listings_carries_the_disclaimer(world: World) -> None:
    """SPEC 9, on real picks: results, an on-demand run, performance, a backtest, the listing and a
    model's page."""
    model_id, kim = world.ids["carol_free"], world.client("kim")
    results = ok(kim.get(f"/models/{model_id}/results", params={"days": 21}))
    assert any(item["pick"] for item in results["items"])
    run = ok(kim.post(f"/models/{model_id}/analyze", json={"date": "2025-11-04"}))
    assert run["qualifying"] > 0
    performance = ok(kim.get(f"/models/{model_id}/performance"))
    assert performance["window"]["graded"] > 0
    span = {"from": "2025-11-03", "to": "2025-11-04"}
    backtest = ok(world.client("carol").post(f"/models/{model_id}/test", json=span))
    assert backtest["summary"]["graded"] > 0 and backtest["from"] == "2025-11-03"
    listing = ok(kim.get("/marketplace/models"))
    assert model_id in [m["model_id"] for m in listing["items"]]
    page = ok(kim.get(f"/marketplace/models/{model_id}"))
    assert page["record"]["graded"] > 0
    for answer in (results, run, performance, backtest, listing, page):
        assert answer["disclaimer"] == DISCLAIMER


# ---- execution modes and automation -------------------------------------------------------------


def test_scheduled_runs_keep_the_other_models_analyses(world: World) -> None:
    day, lake = LAST, world.lake
    before = lake.read_table("analyses", NBA, day, day + dt.timedelta(days=1), ANALYSES)
    newcomer = ok(world.client("uma").post("/models", json=body("Late", False)), 201)["model_id"]
    world.run("status")
    world.run("analyses_only", day, day, analyses={"config": {"sports": [NBA], "missing_only": True}})
    after = lake.read_table("analyses", NBA, day, day + dt.timedelta(days=1), ANALYSES)
    keys = ["model_id", "version", "game_id", "bookmaker"]
    scored_before = pl.col("model_id").is_in(before["model_id"].unique().implode())
    assert after.filter(scored_before).sort(keys).equals(before.sort(keys))  # untouched
    assert after.filter(pl.col("model_id") == newcomer).height > 0  # the missing model, added

    popular = world.ids["carol_free"]
    world.run("analyses_only", day, day, analyses={"config": {"sports": [NBA], "model_ids": [popular]}})
    rerun = lake.read_table("analyses", NBA, day, day + dt.timedelta(days=1), ANALYSES)
    assert (
        rerun.filter(pl.col("model_id") != popular)
        .sort(keys)
        .equals(after.filter(pl.col("model_id") != popular).sort(keys))
    )
    assert (
        rerun.filter(pl.col("model_id") == popular).height
        == after.filter(pl.col("model_id") == popular).height
    )


def test_schedules_pick_popular_models_and_record_the_rest(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    rows = [
        {"subscription_id": f"free:u{i}:{m}", "user_id": f"u{i}", "model_id": m, "status": "active"}
        for m, n in (("a--big-000001", 11), ("a--ten-000002", 10))
        for i in range(n)
    ]
    lake.write_parquet(SUBSCRIPTIONS_KEY, conform(pl.DataFrame(rows), SUBSCRIPTIONS))
    status = [{"model_id": m, "status": "listed"} for m in ("a--big-000001", "a--ten-000002")]
    lake.write_parquet(MODEL_STATUS_KEY, conform(pl.DataFrame(status), MODEL_STATUS))
    at = dt.datetime(2026, 1, 10, 15, tzinfo=dt.UTC)
    request = popular_models_schedule(
        dg.build_schedule_context(scheduled_execution_time=at, resources={"lake": lake})
    )
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["analyses"]["config"]["model_ids"] == ["a--big-000001"]  # more than 10
    assert (request.partition_key, request.tags["oddsforge/execution"]) == ("2026-01-10", "scheduled")

    record = daily_record_schedule(dg.build_schedule_context(scheduled_execution_time=at))
    assert isinstance(record, dg.RunRequest)
    assert record.run_config["ops"]["analyses"]["config"] == {"missing_only": True}
    assert (
        record.tags["dagster/asset_partition_range_start"]
        == (at.date() - dt.timedelta(days=RECORD_DAYS)).isoformat()
    )
    assert record.tags["dagster/asset_partition_range_end"] == "2026-01-09"


def test_new_analyses_flow_to_settlement_without_a_click(tmp_path: Path) -> None:
    """Declarative automation: analyses of yesterday make settled picks of yesterday due, and a new
    serving snapshot (its manifest lists the days the API serves); a day outside the window is left
    to backfills."""
    defs = dg.Definitions(
        assets=automate(
            [*ingest_assets, model_versions, analyses, settled_picks, model_performance, serving_snapshot]
        ),
        resources={
            "lake": Lake(root=str(tmp_path)),
            "warehouse": Warehouse(directory=str(tmp_path / "warehouse")),
            "odds_feed": SampleLeagueFeed(),
            "stats_feed": SampleLeagueFeed(),
        },
    )
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime.now(dt.UTC)
    yesterday, old = (now - dt.timedelta(days=1)).date(), (now - dt.timedelta(days=10)).date()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    for day in (yesterday, old):
        for key in ("analyses", "games", "lines"):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day.isoformat()))
    later = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=now + dt.timedelta(minutes=1), cursor=first.cursor
    )
    requested = later.get_requested_partitions(dg.AssetKey("settled_picks"))
    assert yesterday.isoformat() in requested
    assert old.isoformat() not in requested
    assert later.get_num_requested(dg.AssetKey("serving_snapshot")) == 1


def test_results_are_as_of_the_snapshot_and_visibility_is_live(world: World) -> None:
    """A model's results come from the days the serving snapshot lists (pages are cached per
    snapshot), while who may read them is decided on every request. Last of the module's tests
    that use the world: it changes a shared model."""
    model_id, zoe, carol = world.ids["carol_free"], world.client("zoe"), world.client("carol")
    path = f"/models/{model_id}/results"
    before = ok(zoe.get(path, params={"days": 21}))
    assert before["items"]
    ok(carol.put(f"/models/{model_id}", json=body("Rotation ATS", False, market="spreads")))
    for suffix in ("/results", "/performance"):  # private now: gone for others at once
        assert error(zoe.get(f"/models/{model_id}{suffix}"), 404)["code"] == "not_found"
    assert ok(carol.get(path, params={"days": 21})) == before
    ok(carol.put(f"/models/{model_id}", json=body("Rotation ATS", True, market="spreads")))
    assert ok(zoe.get(path, params={"days": 21})) == before

    def newest(days: int) -> str:
        return ok(zoe.get(path, params={"days": days, "all": "true"}))["items"][0]["game_date"]

    new_day, lake = LAST + dt.timedelta(days=1), world.lake
    for table in ("analyses", "settled_picks"):  # stored clustered by model: a reader skips the rest
        ids = lake.read_parquet([table_key(table, NBA, LAST)])["model_id"]
        assert ids.rle().len() == ids.n_unique() > 1
    moved = lake.read_parquet([table_key("analyses", NBA, LAST)]).with_columns(game_date=pl.lit(new_day))
    lake.write_parquet(table_key("analyses", NBA, new_day), moved)
    assert newest(1) == LAST.isoformat()  # written after the publication: not served yet
    world.refresh()
    assert newest(1) == new_day.isoformat()
    lake.delete(table_key("analyses", NBA, new_day))  # a re-run left the day empty
    assert newest(2) == LAST.isoformat()
    world.refresh()


def test_compacting_the_model_tables_changes_no_answer_of_the_api(world: World) -> None:
    """Closed months of analyses, settled picks and performance folded into month objects: results,
    performance and proofs answer the same from a snapshot published before (naming day objects,
    then gone) and after (naming month objects), and a day re-run afterwards replaces its rows in
    the month object without committing anything again. Runs after the tests above: it compacts."""
    model_id, zoe, lake = world.ids["alice_free"], world.client("zoe"), world.lake
    month, rerun = "2025-10", dt.date(2025, 10, 28)
    paths = {
        "results": (f"/models/{model_id}/results", {"days": 21, "all": "true", "limit": 500}),
        "performance": (f"/models/{model_id}/performance", {}),
        "proofs": (f"/models/{model_id}/proofs", {"from": FIRST.isoformat(), "to": LAST.isoformat()}),
    }

    def answers() -> dict[str, Any]:
        return {name: ok(zoe.get(path, params=params)) for name, (path, params) in paths.items()}

    def serve_snapshot(name: str) -> None:  # as a pointer swap does; a snapshot never served is cold
        pointer = warehouse.serving_dir / SERVING_POINTER
        temp = pointer.with_name(f".{pointer.name}.tmp")
        temp.write_text(name)
        os.replace(temp, pointer)
        time.sleep(0.25)

    before = answers()
    assert before["results"]["items"] and before["performance"]["daily"] and before["proofs"]["picks"]
    assert all(r["sources"] for r in before["results"]["items"])
    assert {r["game_date"][:7] for r in before["results"]["items"]} == {month, "2025-11"}
    warehouse = Warehouse(directory=str(Path(lake.root).parent / "warehouse"))
    # Two snapshots published before compaction: their manifests name October's day objects.
    older = [warehouse.publish(lake, dt.datetime.now(dt.UTC))[0].name for _ in range(2)]
    today, days = dt.date(2025, 11, 20), [FIRST + dt.timedelta(days=i) for i in range(11)]
    tables = ("analyses", "settled_picks", "model_performance")
    assert compact_closed_months(lake, today, time.time())["months_written"] >= len(tables)
    serve_snapshot(older[0])
    assert answers() == before  # month objects written, day objects still there
    compact_closed_months(lake, today, time.time() + SHADOW_GRACE_SECONDS + 1)
    stored = (*tables, *EXPLANATION_TABLES)  # the sources shown with each result, compacted too
    assert not any(lake.exists(table_key(t, NBA, d)) for t in stored for d in days)
    serve_snapshot(older[1])
    assert answers() == before  # the day objects it names are gone: read from the month objects
    world.refresh()
    assert answers() == before  # a new snapshot names the month objects

    committed, alerts = sorted(lake.list_keys("commitments/")), sorted(lake.list_keys(ALERTS_PREFIX))
    world.run("score", rerun, rerun, **dict.fromkeys(tables, ONLY_NBA))
    assert not any(lake.exists(table_key(t, NBA, rerun)) for t in stored)
    assert all(rerun in lake.month_days(month_table_key(t, NBA, month)) for t in stored)
    # The re-run found the day's committed picks in the month object: nothing new, no conflict.
    assert sorted(lake.list_keys("commitments/")) == committed
    assert sorted(lake.list_keys(ALERTS_PREFIX)) == alerts
    world.refresh()
    assert answers() == before


# ---- rules on hand-made frames ------------------------------------------------------------------


def test_listing_status_rules() -> None:
    def version(model_id: str, **kw: Any) -> dict[str, Any]:
        return {
            "model_id": model_id,
            "version": 3,
            "owner_user_id": "o",
            "public": True,
            "price_cents": 999,
            "status": "active",
        } | kw

    latest = pl.DataFrame(
        [
            version("free", price_cents=0),
            version("new-paid"),
            version("approved"),
            version("repriced", price_cents=1999),
            version("rejected"),
            version("resubmitted"),
            version("private", public=False),
            version("gone", status="archived"),
            version("pulled", price_cents=0),
            version("pulled-old", price_cents=0),
        ]
    )
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    reviews = pl.DataFrame(
        [
            {
                "model_id": "approved",
                "version": 2,
                "price_cents": 999,
                "decision": "approve",
                "decided_at": at,
            },
            {
                "model_id": "repriced",
                "version": 2,
                "price_cents": 999,
                "decision": "approve",
                "decided_at": at,
            },
            {
                "model_id": "rejected",
                "version": 3,
                "price_cents": 999,
                "decision": "reject",
                "reason": "spam",
                "decided_at": at,
            },
            {
                "model_id": "resubmitted",
                "version": 2,
                "price_cents": 999,
                "decision": "reject",
                "decided_at": at,
            },
        ]
    )
    suspended = pl.DataFrame(
        [
            {"model_id": "pulled", "version": 3, "reason": "bad"},
            {"model_id": "pulled-old", "version": 2, "reason": "bad"},
        ]
    )
    got = dict(
        listing_status(
            conform(latest, MODEL_VERSIONS), conform(reviews, REVIEWS), conform(suspended, SUSPENSIONS)
        )
        .select("model_id", "status")
        .iter_rows()
    )
    assert got == {
        "free": "listed",
        "new-paid": "pending_review",
        "approved": "listed",  # an approval covers later versions at the same price
        "repriced": "pending_review",  # ... not a new price
        "rejected": "rejected",
        "resubmitted": "pending_review",  # a newer version after a rejection waits again
        "private": "private",
        "gone": "archived",
        "pulled": "suspended",
        "pulled-old": "listed",  # a suspension of an older version no longer holds
    }


def test_notifications_and_subscription_folding() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    before = conform(
        pl.DataFrame([{"model_id": "m", "version": 1, "name": "M", "status": "listed"}]), MODEL_STATUS
    )
    after = conform(
        pl.DataFrame([{"model_id": "m", "version": 2, "name": "M", "status": "listed"}]), MODEL_STATUS
    )
    event = {
        "user_id": "u",
        "model_id": "m",
        "creator_id": "o",
        "at": at.isoformat(),
        "started_at": at.isoformat(),
    }
    subs = fold_subscriptions(
        None,
        [
            ("k/000001.json", event | {"action": "subscribe"}),
            ("k/000002.json", event | {"action": "unsubscribe"}),
            ("j/000001.json", event | {"user_id": "w", "action": "subscribe"}),
        ],
        [],
    )
    assert dict(subs.select("user_id", "status").iter_rows()) == {"u": "cancelled", "w": "active"}
    sent = notifications(before, after, subs, at)
    assert sent.select("notification_id", "user_id", "kind").rows() == [
        ("new_version:m:v2:w", "w", "new_version")
    ]
    assert notifications(pl.DataFrame(schema=MODEL_STATUS), after, subs, at).is_empty()  # first run: no diff
    assert sent.schema == pl.Schema(NOTIFICATIONS)


def test_retry_after_counts_the_window() -> None:
    now, hour = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC), dt.timedelta(hours=1)
    runs = [now - dt.timedelta(minutes=m) for m in (70, 50, 20)]
    assert retry_after(runs, now, limit=3, window=hour) is None  # the 70-minute-old run is out
    assert retry_after(runs, now, limit=2, window=hour) == 10 * 60
