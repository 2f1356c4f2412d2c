"""The model registry: ids and visibility (domain), the inbox store, the API over real HTTP, the
inbox sensor and the ``model_versions`` table."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest

from api.app import create_app
from api.auth import mint_token
from assets.models import TABLE_KEY, model_assets
from domain.models.config import ConfigError
from domain.models.registry import (
    MODEL_ID_MAX,
    MODEL_VERSIONS,
    UnusableUserIdError,
    build_version,
    can_read,
    merge_model_versions,
    new_model_id,
    owner_of,
    version_record,
)
from pipelines.sensors import MODEL_INBOX, inbox_sensor, model_inbox_sensor, new_inbox_objects
from services.backtests import record_backtest
from stores.lake import Lake
from stores.layout import idempotency_claim_key, model_archived_key, model_version_key, parse_model_key
from stores.registry import RegistryStore
from stores.warehouse import lake_connection
from tests.test_api import SECRET, serve, settings_for
from tests.test_payments_flow import ready_to_sell

T0 = dt.datetime(2026, 1, 23, 19, 0, tzinfo=dt.UTC)


def config_body(**overrides: Any) -> dict[str, Any]:
    """A valid request body (no server fields)."""
    return {
        "name": "Momentum",
        "sport": "basketball_nba",
        "data_sources": {
            "team_stats": {"weight": 0.6, "fields": ["offensive_rating", "pace"]},
            "odds_movement": {"weight": 0.4, "time_window_hours": 24},
        },
        "min_confidence": 0.55,
        "max_confidence": 0.9,
        "sharing": {"public": False, "price_per_month": 0},
    } | overrides


# --- domain: ids, versions, table, visibility ---


@pytest.mark.parametrize("user_id", ["user123", "bob-", "a--b", "auth0|5f1c", "X.Y@z:1+2"])
@pytest.mark.parametrize("name", ["My Momentum Model!", "", "Ünïcödé  spread", "---", "x" * 80])
def test_model_ids_encode_their_owner(user_id: str, name: str) -> None:
    model_id = new_model_id(user_id, name, bytes([1, 2, 254]))
    assert owner_of(model_id) == user_id
    assert model_id.endswith("-0102fe")
    assert len(model_id) <= MODEL_ID_MAX
    # The id is a valid config identifier: it goes into a stored config as is.
    build_version(
        config_body(), model_id=model_id, owner_user_id=user_id, version=1, created_at=T0, updated_at=T0
    )


def test_model_id_slug_and_limits() -> None:
    assert new_model_id("u1", "Ünïcödé  Spread!", b"\x00\x00\x0a") == "u1--unicode-spread-00000a"
    assert new_model_id("u1", "!!!", b"\xff\xff\xff") == "u1--model-ffffff"
    longest = "u" * 118  # leaves room for a one-letter slug
    assert new_model_id(longest, "a long name", b"abc") == f"{longest}--a-616263"
    assert len(new_model_id(longest, "a long name", b"abc")) == MODEL_ID_MAX
    with pytest.raises(UnusableUserIdError, match="at most 118"):
        new_model_id("u" * 119, "m", b"abc")
    with pytest.raises(UnusableUserIdError, match="letters, digits"):
        new_model_id("a/b", "m", b"abc")
    with pytest.raises(ValueError, match="3 bytes"):
        new_model_id("u1", "m", b"ab")


@pytest.mark.parametrize(
    "bad",
    [
        "momentum",
        "alice--Momentum-abc123",
        "alice--m-abc12",
        "alice--m-abc12g",
        "--m-abc123",
        "a/b--m-abc123",
        "alice--m--abc123",
        "alice--" + "m" * 130 + "-abc123",
    ],
)
def test_malformed_model_ids_have_no_owner(bad: str) -> None:
    assert owner_of(bad) is None


def test_server_fields_in_a_body_are_ignored() -> None:
    body = config_body(
        model_id="mine", creator_user_id="mallory", version=7, created_at="2020-01-01T00:00:00Z"
    )
    config = build_version(
        body, model_id="alice--m-abcdef", owner_user_id="alice", version=2, created_at=T0, updated_at=T0
    )
    assert (config.model_id, config.creator_user_id, config.version, config.created_at) == (
        "alice--m-abcdef",
        "alice",
        2,
        T0,
    )
    with pytest.raises(ConfigError) as err:
        build_version(
            config_body(min_confidence=0.95),
            model_id="alice--m-abcdef",
            owner_user_id="alice",
            version=1,
            created_at=T0,
            updated_at=T0,
        )
    assert [p.path for p in err.value.problems] == ["min_confidence"]


def _row(**overrides: Any) -> dict[str, Any]:
    return {
        "model_id": "o--m-abcdef",
        "owner_user_id": "o",
        "public": True,
        "price_cents": 0,
        "status": "active",
    } | overrides


@pytest.mark.parametrize(
    ("row", "user", "subscriptions", "expected"),
    [
        (_row(public=False), "o", (), True),  # owners always read
        (_row(status="archived"), "o", (), True),
        (_row(public=False), "x", (), False),
        (_row(), "x", (), True),  # public, free, active
        (_row(status="archived"), "x", (), False),
        (_row(status="suspended"), "x", (), False),
        (_row(price_cents=999), "x", (), False),  # paid: subscribers only
        (_row(price_cents=999), "x", ("o--m-abcdef",), True),
        (_row(price_cents=999, status="suspended"), "x", ("o--m-abcdef",), False),
        (_row(public=False), "x", ("o--m-abcdef",), False),
    ],
)
def test_can_read(row: dict, user: str, subscriptions: tuple[str, ...], expected: bool) -> None:
    assert can_read(row, user, frozenset(subscriptions)) is expected


def _record(model_id: str, version: int, **overrides: Any) -> dict[str, Any]:
    owner = owner_of(model_id)
    assert owner is not None
    config = build_version(
        config_body(**overrides),
        model_id=model_id,
        owner_user_id=owner,
        version=version,
        created_at=T0,
        updated_at=T0 + dt.timedelta(days=version),
    )
    return version_record(config.to_payload(), model_version_key(model_id, version))


def test_merge_is_an_idempotent_upsert_and_archives_every_version() -> None:
    a, b = "u--a-000001", "u--b-000002"
    empty = pl.DataFrame(schema=MODEL_VERSIONS)
    first = merge_model_versions(empty, [_record(a, 1), _record(b, 1)], set())
    assert first.schema == pl.Schema(MODEL_VERSIONS)
    assert first.select("model_id", "version", "status").rows() == [(a, 1, "active"), (b, 1, "active")]
    assert merge_model_versions(first, [_record(a, 1)], set()).equals(first)
    second = merge_model_versions(first, [_record(a, 2, name="Renamed")], {a})
    assert second.select("model_id", "version", "name", "status").rows() == [
        (a, 1, "Momentum", "archived"),
        (a, 2, "Renamed", "archived"),
        (b, 1, "Momentum", "active"),
    ]
    # An archived model stays archived when a late version row arrives on its own.
    third = merge_model_versions(second, [_record(a, 3)], set())
    assert third.filter(pl.col("model_id") == a)["status"].to_list() == ["archived"] * 3
    assert second["created_at"].to_list()[:2] == [T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)]


# --- the inbox store ---


def test_inbox_keys_and_store(tmp_path: Path) -> None:
    model_id = "alice--m-abcdef"
    assert model_version_key(model_id, 12) == "inbox/models/alice/alice--m-abcdef/v000012.json"
    assert parse_model_key(model_version_key(model_id, 12)) is not None
    assert parse_model_key(model_archived_key(model_id)).version is None  # type: ignore[union-attr]
    # A folder that disagrees with the owner in the id is not a registry object.
    assert parse_model_key("inbox/models/bob/alice--m-abcdef/v000001.json") is None
    assert parse_model_key("inbox/models/alice/alice--m-abcdef/v1.json") is None

    store = RegistryStore(Lake(root=str(tmp_path)))
    config = build_version(
        config_body(), model_id=model_id, owner_user_id="alice", version=1, created_at=T0, updated_at=T0
    )
    assert store.create_version(config) is True
    assert store.create_version(config) is False  # immutable: the second writer loses
    state = store.state(model_id)
    assert state is not None and (state.versions, state.status) == ((1,), "active")
    assert store.read(state, 1).payload == config.to_payload()
    assert store.archive(model_id, "alice", T0) is True
    assert store.archive(model_id, "alice", T0) is False
    assert store.state(model_id).status == "archived"  # type: ignore[union-attr]
    assert [s.model_id for s in store.models_of("alice")] == [model_id]
    # "alice/alice--m-abcdef" as a user id must not list alice's model as its own.
    assert store.models_of("alice/alice--m-abcdef") == []
    assert store.state("not-a-model-id") is None
    with pytest.raises(ValueError, match="not model registry objects"):
        store.load(["tables/games.parquet"])


# --- the API over real HTTP ---


class RacingLake(Lake):
    """A real local lake whose create of one chosen key waits until two writers arrive, so both
    concurrent requests have read the latest version before either creates the next one."""

    def __init__(self, root: str) -> None:
        super().__init__(root=root)
        self._races: dict[str, threading.Barrier] = {}

    def race_on(self, key: str) -> None:
        self._races[key] = threading.Barrier(2, timeout=5)

    def put_new(self, key: str, data: bytes) -> bool:
        if (barrier := self._races.get(key)) is not None:
            barrier.wait()
        return super().put_new(key, data)


@pytest.fixture(scope="module")
def registry_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RacingLake]]:
    lake = RacingLake(root=str(tmp_path_factory.mktemp("lake")))
    app = create_app(settings_for(tmp_path_factory.mktemp("warehouse")), lake=lake)
    with serve(app) as url:
        yield url, lake


@pytest.fixture(scope="module")
def as_user(registry_api: tuple[str, RacingLake]) -> Iterator[Any]:
    url, _ = registry_api
    clients: dict[tuple[str, str | None], httpx.Client] = {}

    def client(user: str, tier: str | None = None) -> httpx.Client:
        if (user, tier) not in clients:
            headers = {"Authorization": f"Bearer {mint_token(user, SECRET, tier=tier)}"}
            clients[user, tier] = httpx.Client(base_url=url, headers=headers, timeout=10)
        return clients[user, tier]

    yield client
    for c in clients.values():
        c.close()


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def _ids(client: httpx.Client, **params: Any) -> list[str]:
    return [m["model_id"] for m in _ok(client.get("/models", params=params))["items"]]


def test_create_get_update_list_archive(as_user: Any, registry_api: tuple[str, RacingLake]) -> None:
    alice = as_user("alice")
    sent = config_body(model_id="chosen", creator_user_id="mallory", version=9)
    created = alice.post("/models", json=sent)
    v1 = _ok(created, 201)
    model_id = v1["model_id"]
    assert model_id.startswith("alice--momentum-") and owner_of(model_id) == "alice"
    assert created.headers["location"] == f"/models/{model_id}"
    assert (v1["creator_user_id"], v1["version"], v1["status"]) == ("alice", 1, "active")
    assert v1["created_at"] == v1["updated_at"]
    assert v1["data_sources"]["team_stats"]["lookback_games"] == 10  # defaults are filled in
    assert _ok(alice.get(f"/models/{model_id}")) == v1

    v2 = _ok(alice.put(f"/models/{model_id}", json=config_body(name="Momentum II", min_confidence=0.6)))
    assert (v2["model_id"], v2["version"], v2["name"], v2["min_confidence"]) == (
        model_id,
        2,
        "Momentum II",
        0.6,
    )
    assert v2["created_at"] == v1["created_at"] and v2["updated_at"] > v1["updated_at"]
    assert _ok(alice.get(f"/models/{model_id}")) == v2
    assert _ok(alice.get(f"/models/{model_id}", params={"version": 1})) == v1
    assert _error(alice.get(f"/models/{model_id}", params={"version": 3}), 404)["code"] == "not_found"

    listed = _ok(alice.get("/models"))
    mine = next(m for m in listed["items"] if m["model_id"] == model_id)
    assert mine["version"] == 2

    assert alice.delete(f"/models/{model_id}").status_code == 204
    assert model_id not in _ids(alice)
    archived = next(
        m
        for m in _ok(alice.get("/models", params={"include_archived": True}))["items"]
        if m["model_id"] == model_id
    )
    assert (archived["version"], archived["status"]) == (2, "archived")
    assert _ok(alice.get(f"/models/{model_id}"))["status"] == "archived"  # its owner still reads it
    assert _error(alice.put(f"/models/{model_id}", json=config_body()), 409)["code"] == "conflict"
    assert alice.delete(f"/models/{model_id}").status_code == 204  # idempotent

    _, lake = registry_api
    assert sorted(lake.list_keys(f"inbox/models/alice/{model_id}/")) == [
        f"inbox/models/alice/{model_id}/archived.json",
        f"inbox/models/alice/{model_id}/v000001.json",
        f"inbox/models/alice/{model_id}/v000002.json",
    ]


def test_list_is_paginated(as_user: Any) -> None:
    carol = as_user("carol", tier="pro")  # five models: more than the free tier's three
    created = sorted(
        _ok(carol.post("/models", json=config_body(name=f"m{i}")), 201)["model_id"] for i in range(5)
    )
    seen, cursor = [], None
    while True:
        page = _ok(carol.get("/models", params={"limit": 2} | ({"cursor": cursor} if cursor else {})))
        assert len(page["items"]) <= 2
        seen += [m["model_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    assert (
        _error(carol.get("/models", params={"cursor": "garbage"}), 422)["details"][0]["field"]
        == "query.cursor"
    )


def test_validation_errors_name_each_field(as_user: Any, registry_api: tuple[str, RacingLake]) -> None:
    dave = as_user("dave")
    body = config_body(
        data_sources={
            "team_stats": {"weight": 1, "fields": ["pace", "shoe_size"]},
            "odds_movement": {"weight": 0.2},
        },
        min_confidence=0.9,
        max_confidence=0.8,
    )
    error = _error(dave.post("/models", json=body), 422)
    assert error["code"] == "validation_error"
    by_field = {d["field"]: d["message"] for d in error["details"]}
    assert set(by_field) == {"body.data_sources.team_stats.fields[1]", "body.min_confidence"}
    assert "shoe_size" in by_field["body.data_sources.team_stats.fields[1]"]
    assert "0.5 <= min_confidence < max_confidence <= 1" in by_field["body.min_confidence"]

    missing = _error(dave.post("/models", json={"name": "x", "data_sources": {}, "bet_type": "player"}), 422)
    fields = {d["field"] for d in missing["details"]}
    assert {"body.sport", "body.bet_type"} <= fields
    custom = {
        "weather": {
            "weight": 1,
            "dataset_id": "someone-elses",
            "field": "wind",
            "transformation": "threshold",
            "threshold": 10,
        }
    }
    refused = _error(dave.post("/models", json=config_body(data_sources=custom)), 422)
    assert [d["field"] for d in refused["details"]] == ["body.data_sources.weather.dataset_id"]
    assert _error(dave.post("/models", json=[1, 2]), 422)["details"][0]["field"] == "body"
    _, lake = registry_api
    assert list(lake.list_keys("inbox/models/dave/")) == []  # nothing stored


def test_private_models_are_invisible_to_others(as_user: Any) -> None:
    alice, bob = as_user("alice"), as_user("bob")
    model_id = _ok(alice.post("/models", json=config_body(name="Secret")), 201)["model_id"]
    unknown = model_id[:-6] + ("000000" if not model_id.endswith("000000") else "111111")
    for target in (model_id, unknown, "not-a-model"):
        assert _error(bob.get(f"/models/{target}"), 404)["code"] == "not_found"
        assert _error(bob.get(f"/models/{target}", params={"version": 1}), 404)["code"] == "not_found"
        assert _error(bob.put(f"/models/{target}", json=config_body()), 404)["code"] == "not_found"
        assert _error(bob.delete(f"/models/{target}"), 404)["code"] == "not_found"
    assert model_id not in _ids(bob, include_archived=True)
    untouched = _ok(alice.get(f"/models/{model_id}"))
    assert (untouched["version"], untouched["status"]) == (1, "active")


def _shared(client: httpx.Client, lake: Lake, body: dict[str, Any]) -> str:
    """A model shared as SPEC 6 allows: created private, a backtest of 50+ graded predictions
    recorded (a stored report: this lake has no games), then updated to public (version 2)."""
    private = body | {"sharing": body["sharing"] | {"public": False}}
    model_id = _ok(client.post("/models", json=private), 201)["model_id"]
    span = {"from": "2025-10-21", "to": "2025-11-30"}
    record_backtest(lake, {"model_id": model_id, "version": 1, **span, "summary": {"graded": 60}})
    _ok(client.put(f"/models/{model_id}", json=body))
    return model_id


def test_public_models_are_readable_not_writable(as_user: Any, registry_api: tuple[str, RacingLake]) -> None:
    _, lake = registry_api
    alice, bob = as_user("alice", tier="pro"), as_user("bob")  # alice: more models than the free tier's
    public = config_body(name="Shared", sharing={"public": True, "price_per_month": 0})
    model_id = _shared(alice, lake, public)
    assert _ok(bob.get(f"/models/{model_id}"))["name"] == "Shared"
    assert _error(bob.put(f"/models/{model_id}", json=public), 404)["code"] == "not_found"
    assert _error(bob.delete(f"/models/{model_id}"), 404)["code"] == "not_found"
    assert model_id not in _ids(bob)  # lists hold the caller's own models only
    assert _ok(alice.get(f"/models/{model_id}"))["version"] == 2

    # Made private again: its older public version is gone for others too.
    _ok(alice.put(f"/models/{model_id}", json=config_body(name="Shared")))
    assert _error(bob.get(f"/models/{model_id}", params={"version": 2}), 404)["code"] == "not_found"

    paid = config_body(sharing={"public": True, "price_per_month": 9.99, "trial_days": 7})
    ready_to_sell(alice, lake, "alice")
    paid_id = _shared(alice, lake, paid)
    assert _error(bob.get(f"/models/{paid_id}"), 404)["code"] == "not_found"  # no subscription

    archived_id = _shared(alice, lake, public)
    assert alice.delete(f"/models/{archived_id}").status_code == 204
    assert _error(bob.get(f"/models/{archived_id}"), 404)["code"] == "not_found"


def test_concurrent_updates_exactly_one_wins(as_user: Any, registry_api: tuple[str, RacingLake]) -> None:
    _, lake = registry_api
    erin = as_user("erin")
    model_id = _ok(erin.post("/models", json=config_body()), 201)["model_id"]
    lake.race_on(model_version_key(model_id, 2))
    with ThreadPoolExecutor(2) as pool:
        responses = list(
            pool.map(lambda n: erin.put(f"/models/{model_id}", json=config_body(name=f"edit {n}")), range(2))
        )
    assert sorted(r.status_code for r in responses) == [200, 409]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 409).json()["error"]
    assert winner["version"] == 2 and "version 2" in loser["message"]
    assert _ok(erin.get(f"/models/{model_id}"))["name"] == winner["name"]
    assert _ok(erin.put(f"/models/{model_id}", json=config_body()))["version"] == 3  # a retry succeeds


def test_a_retried_create_with_an_idempotency_key_makes_one_model(
    as_user: Any, registry_api: tuple[str, RacingLake]
) -> None:
    """Two identical requests with one key race: one creates the model, the other is told it is in
    progress; the retry gets the first answer; the key with another body is refused by name."""
    _, lake = registry_api
    frank = as_user("frank")
    key = {"Idempotency-Key": "7d1f4c2e-create-momentum"}
    lake.race_on(idempotency_claim_key("frank", hashlib.sha256(b"7d1f4c2e-create-momentum").hexdigest(), 0))
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: frank.post("/models", json=config_body(), headers=key), range(2)))
    assert sorted(r.status_code for r in responses) == [201, 409]
    first = next(r for r in responses if r.status_code == 201)
    busy = next(r for r in responses if r.status_code == 409)
    assert busy.json()["error"]["code"] == "idempotency_key_in_use" and int(busy.headers["retry-after"]) > 0

    again = frank.post("/models", json=config_body(), headers=key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert _ids(frank) == [first.json()["model_id"]]
    reused = _error(frank.post("/models", json=config_body(name="Other"), headers=key), 422)
    assert reused["code"] == "idempotency_key_reused"
    assert [d["field"] for d in reused["details"]] == ["header.Idempotency-Key"]
    # A key names one request of one route: the same key on a backtest is refused too.
    span = {"from": "2025-11-01", "to": "2025-11-02"}
    assert _error(frank.post(f"/models/{first.json()['model_id']}/test", json=span, headers=key), 422)

    # A refused request gives its key up (nothing was created): the corrected retry may reuse it.
    retry = {"Idempotency-Key": "retry-after-a-typo"}
    _error(frank.post("/models", json=config_body(min_confidence=7), headers=retry), 422)
    created = _ok(frank.post("/models", json=config_body(name="Typo fixed"), headers=retry), 201)
    assert sorted(_ids(frank)) == sorted([first.json()["model_id"], created["model_id"]])
    # Without a key, the same request makes another model, as before.
    _ok(frank.post("/models", json=config_body()), 201)
    assert len(_ids(frank)) == 3


def test_requests_need_a_token(registry_api: tuple[str, RacingLake]) -> None:
    url, _ = registry_api
    assert httpx.get(f"{url}/models").status_code == 401
    assert httpx.post(f"{url}/models", json=config_body()).status_code == 401


# --- the sensor and the table ---


def _store_version(store: RegistryStore, model_id: str, version: int, **overrides: Any) -> str:
    owner = owner_of(model_id)
    assert owner is not None
    config = build_version(
        config_body(**overrides),
        model_id=model_id,
        owner_user_id=owner,
        version=version,
        created_at=T0,
        updated_at=T0 + dt.timedelta(hours=version),
    )
    assert store.create_version(config)
    return model_version_key(model_id, version)


def _tick(
    lake: Lake,
    cursor: str | None,
    instance: dg.DagsterInstance | None = None,
    sensor: dg.SensorDefinition = model_inbox_sensor,
) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        cursor=cursor, instance=instance or dg.DagsterInstance.ephemeral(), resources={"lake": lake}
    )
    return sensor(context)


def test_sensor_requests_each_new_object_once(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    store = RegistryStore(lake)
    first = [_store_version(store, "u1--a-aaaaaa", 1), _store_version(store, "u2--b-bbbbbb", 1)]

    tick1 = _tick(lake, None)
    assert isinstance(tick1, dg.SensorResult) and len(tick1.run_requests) == 1
    request = tick1.run_requests[0]
    assert request.run_config == {"ops": {"model_versions": {"config": {"keys": sorted(first)}}}}
    assert isinstance(_tick(lake, tick1.cursor), dg.SkipReason)

    later = _store_version(store, "u1--a-aaaaaa", 2)
    tick3 = _tick(lake, tick1.cursor)
    assert isinstance(tick3, dg.SensorResult)
    assert tick3.run_requests[0].run_config["ops"]["model_versions"]["config"]["keys"] == [later]
    again = _tick(lake, tick1.cursor)  # a restarted tick over the same cursor asks for the same run
    assert isinstance(again, dg.SensorResult)
    assert again.run_requests[0].run_key == tick3.run_requests[0].run_key != request.run_key

    # An object whose write started before the newest one but became visible after it is not missed.
    store.archive("u2--b-bbbbbb", "u2", T0)
    newest = json.loads(tick3.cursor)["mtime"]
    os.utime(tmp_path / model_archived_key("u2--b-bbbbbb"), (newest - 5, newest - 5))
    tick4 = _tick(lake, tick3.cursor)
    assert isinstance(tick4, dg.SensorResult)
    assert tick4.run_requests[0].run_config["ops"]["model_versions"]["config"]["keys"] == [
        model_archived_key("u2--b-bbbbbb")
    ]
    assert json.loads(tick4.cursor)["mtime"] == newest
    assert isinstance(_tick(lake, tick4.cursor), dg.SkipReason)


def test_sensor_waits_for_the_running_merge(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    key = _store_version(RegistryStore(lake), "u1--a-aaaaaa", 1)
    instance = dg.DagsterInstance.ephemeral()
    tick = _tick(lake, None, instance)
    assert isinstance(tick, dg.SensorResult)
    request = tick.run_requests[0]
    assert request.tags["oddsforge/inbox"] == "models"
    run = instance.add_run(
        dg.DagsterRun("__ASSET_JOB", status=dg.DagsterRunStatus.STARTED, tags=request.tags)
    )
    assert isinstance(_tick(lake, None, instance), dg.SkipReason)  # even with objects pending
    instance.report_run_failed(run)
    again = _tick(lake, None, instance)
    assert isinstance(again, dg.SensorResult)
    assert again.run_requests[0].run_config["ops"]["model_versions"]["config"]["keys"] == [key]


def test_cursor_window_and_full_rebuild_for_a_backlog(tmp_path: Path) -> None:
    objects = [("k1", 100.0), ("k2", 200.0), ("k3", 200.0)]
    keys, cursor = new_inbox_objects(objects, None)
    assert keys == ["k1", "k2", "k3"]
    assert json.loads(cursor) == {"mtime": 200.0, "keys": ["k2", "k3"]}  # k1 is outside the window
    assert new_inbox_objects(objects, cursor) == ([], cursor)
    assert new_inbox_objects([*objects, ("k0", 50.0)], cursor)[0] == []  # older than the window
    assert new_inbox_objects([*objects, ("k4", 200.0)], cursor)[0] == ["k4"]  # same time, new key

    lake = Lake(root=str(tmp_path))
    store = RegistryStore(lake)
    for i in range(3):
        _store_version(store, f"u--m-00000{i}", 1)
    tick = _tick(lake, None, sensor=inbox_sensor(replace(MODEL_INBOX, max_keys_per_run=2)))
    assert isinstance(tick, dg.SensorResult)
    assert tick.run_requests[0].run_config["ops"]["model_versions"]["config"]["keys"] == []


def _materialize(lake: Lake, keys: list[str] | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    config = {"ops": {"model_versions": {"config": {"keys": keys}}}} if keys is not None else None
    result = dg.materialize(model_assets, resources={"lake": lake}, run_config=config)
    assert result.success
    meta = result.asset_materializations_for_node("model_versions")[0].metadata
    return lake.read_parquet([TABLE_KEY]), {k: v.value for k, v in meta.items()}


def test_model_versions_table_from_the_inbox(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    store = RegistryStore(lake)
    a1 = _store_version(store, "u1--a-aaaaaa", 1)
    tick = _tick(lake, None)
    assert isinstance(tick, dg.SensorResult)
    result = dg.materialize(
        model_assets, resources={"lake": lake}, run_config=tick.run_requests[0].run_config
    )
    assert result.success
    once = lake.read_parquet([TABLE_KEY])
    assert once.schema == pl.Schema(MODEL_VERSIONS)
    assert once.select("model_id", "version", "owner_user_id", "status", "inbox_key").rows() == [
        ("u1--a-aaaaaa", 1, "u1", "active", a1)
    ]
    twice, _ = _materialize(lake, [a1, a1])
    assert twice.equals(once)  # the same key merged again changes nothing

    a2 = _store_version(
        store, "u1--a-aaaaaa", 2, sharing={"public": True, "price_per_month": 9.99, "trial_days": 7}
    )
    b1 = _store_version(store, "u2--b-bbbbbb", 1, market="totals")
    store.archive("u2--b-bbbbbb", "u2", T0)
    merged, meta = _materialize(lake, [a2, b1, model_archived_key("u2--b-bbbbbb")])
    assert merged.select(
        "model_id", "version", "public", "price_cents", "trial_days", "market", "status"
    ).rows() == [
        ("u1--a-aaaaaa", 1, False, 0, 0, "spreads", "active"),
        ("u1--a-aaaaaa", 2, True, 999, 7, "spreads", "active"),
        ("u2--b-bbbbbb", 1, False, 0, 0, "totals", "archived"),
    ]
    assert merged["created_at"].to_list() == [T0 + dt.timedelta(hours=v) for v in (1, 2, 1)]
    assert json.loads(merged["config_json"][1])["sharing"]["price_cents"] == 999
    assert (meta["dagster/row_count"], meta["models"], meta["versions"], meta["mode"]) == (
        3,
        2,
        3,
        "incremental",
    )
    assert "u2--b-bbbbbb" in meta["preview"]

    rebuilt, meta = _materialize(lake)
    assert rebuilt.equals(merged) and meta["mode"] == "full rebuild"
    with lake_connection(lake) as con:  # registered as a warehouse view
        assert con.execute("SELECT count(*) FROM model_versions WHERE status = 'active'").fetchone() == (2,)


def test_list_objects_on_s3(s3_lake: Lake) -> None:
    started = dt.datetime.now(dt.UTC).timestamp()
    s3_lake.put_bytes("inbox/models/u/u--m-000001/v000001.json", b"{}")
    s3_lake.put_bytes("inbox/other.json", b"{}")
    listed = list(s3_lake.list_objects("inbox/models/"))
    assert [key for key, _ in listed] == ["inbox/models/u/u--m-000001/v000001.json"]
    assert abs(listed[0][1] - started) < 60


def test_a_listing_is_reused_only_while_the_lake_vouches_the_folder_is_unchanged(tmp_path: Path) -> None:
    """The API lists a model's objects on every request unless the folder's time says nothing
    changed; a folder changed less than a second ago is always listed again, since a second write in
    the same timestamp tick would leave its time as it was."""
    lake = Lake(root=str(tmp_path))
    store, model_id = RegistryStore(lake), "u1--a-aaaaaa"
    folder = tmp_path / "inbox" / "models" / "u1" / model_id
    _store_version(store, model_id, 1)
    fresh = os.stat(folder).st_mtime_ns
    assert lake.folder_stamp(f"inbox/models/u1/{model_id}/") is None  # just changed: not vouched for
    assert store.state(model_id).versions == (1,)
    _store_version(store, model_id, 2)
    os.utime(folder, ns=(fresh, fresh))  # the second write landed in the same tick
    assert store.state(model_id).versions == (1, 2)

    settled = fresh - 5_000_000_000
    os.utime(folder, ns=(settled, settled))
    assert lake.folder_stamp(f"inbox/models/u1/{model_id}/") is not None
    assert store.state(model_id).versions == (1, 2)  # listed, then reused while unchanged
    assert store.archive(model_id, "u1", T0)  # a write moves the folder's time: listed again
    assert store.state(model_id).archived
