"""The model builder over real HTTP: the catalogue against the validator's own tables, drafts
validated without storing anything, and the model limits of each tier (SPEC 3, SPEC 6)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, get_args

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from domain.models.catalogue import FIELD_ALIASES, fields_of
from domain.models.config import parse_model_config
from domain.models.config_base import ConfigError
from domain.models.sources import KINDS, SELECTED_BY
from domain.models.sources.custom import Transformation
from domain.models.tiers import MODEL_QUOTAS, ModelCounts, TierLimitError, check_model_limits
from domain.sports import SPORTS
from domain.sports.fields import BOX_FIELDS
from services.backtests import record_backtest
from stores.lake import Lake
from stores.registry import RegistryStore
from tests.test_api import SECRET, serve, settings_for


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Lake]]:
    lake = Lake(root=str(tmp_path_factory.mktemp("lake")))
    with serve(create_app(settings_for(tmp_path_factory.mktemp("warehouse")), lake=lake)) as url:
        yield url, lake


@pytest.fixture(scope="module")
def as_user(api: tuple[str, Lake]) -> Iterator[Any]:
    url, _ = api
    clients: list[httpx.Client] = []

    def client(user: str, tier: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {mint_token(user, SECRET, tier=tier)}"}
        clients.append(httpx.Client(base_url=url, headers=headers, timeout=10))
        return clients[-1]

    yield client
    for c in clients:
        c.close()


def draft(sport: str = "basketball_nba", **overrides: Any) -> dict[str, Any]:
    """A valid request body for ``sport``: one team_stats field of its catalogue and odds movement."""
    field = next(iter(fields_of(sport, "team")))
    return {
        "name": "Draft",
        "sport": sport,
        "data_sources": {
            "team_stats": {"weight": 0.6, "fields": [field]},
            "odds_movement": {"weight": 0.4},
        },
        "sharing": {"public": False, "price_per_month": 0},
    } | overrides


def problems(body: dict[str, Any]) -> list[str]:
    """The paths the validator names for a config body (none when it is valid)."""
    server = {"model_id": "u--draft-000000", "creator_user_id": "u"}
    try:
        parse_model_config(body | server)
    except ConfigError as exc:
        return [p.path for p in exc.problems]
    return []


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


# --- the catalogue ---


@pytest.mark.parametrize("sport", list(SPORTS))
def test_catalogue_lists_exactly_the_fields_the_validator_accepts(as_user: Any, sport: str) -> None:
    catalogue = ok(as_user("ann").get(f"/catalogue/{sport}"))
    listed = {
        kind: {name for f in fields for name in (f["name"], *f["aliases"])}
        for kind, fields in catalogue["fields"].items()
    }
    every_name = (
        set(BOX_FIELDS)
        | set(FIELD_ALIASES)
        | {name for s in SPORTS for kind in ("team", "player") for name in fields_of(s, kind)}
    )
    kinds = {"team": "team_stats", "player": "player_stats"}
    for kind, source in kinds.items():
        if kind not in listed:  # no such fields for the sport: the validator refuses the source itself
            body = draft(sport)
            body["data_sources"][source] = {"weight": 1, "fields": ["pts"]}
            assert f"data_sources.{source}" in problems(body)
            assert source not in {k["name"] for k in catalogue["source_kinds"]}
            continue
        for name in every_name:
            body = draft(sport)
            body["data_sources"][source] = {"weight": 1, "fields": [name]}
            accepted = f"data_sources.{source}.fields[0]" not in problems(body)
            assert accepted == (name in listed[kind]), (kind, name)
    for field in (f for fields in catalogue["fields"].values() for f in fields):
        assert field["description"] and field["unit"] and field["better"] in ("higher", "lower")


@pytest.mark.parametrize("sport", list(SPORTS))
def test_catalogue_lists_the_validators_source_kinds_and_their_ranges(as_user: Any, sport: str) -> None:
    catalogue = ok(as_user("ann").get(f"/catalogue/{sport}"))
    listed = {k["name"]: k for k in catalogue["source_kinds"]}
    assert set(listed) <= {kind.name for kind in KINDS}
    for kind in KINDS:
        if kind.name not in listed:
            continue
        info = listed[kind.name]
        assert {p["name"] for p in info["parameters"]} == set(kind.parameters.model_fields)
        for parameter in info["parameters"]:
            for bound, step in (("minimum", -1), ("maximum", 1)):
                if parameter[bound] is None or kind.name == "custom":
                    continue
                name, value = parameter["name"], parameter[bound]
                source = {"weight": 1, "fields": [next(iter(fields_of(sport, "team")))]}
                source = {**(source if info["field_kind"] else {"weight": 1}), name: value}
                source_name = kind.name if info["builtin"] else "member"  # a model source
                if not info["builtin"]:
                    source[SELECTED_BY[kind.name]] = "u--member-000000"
                inside, outside = draft(sport), draft(sport)
                inside["data_sources"][source_name] = source
                outside["data_sources"][source_name] = {**source, name: value + step}
                path = f"data_sources.{source_name}.{name}"
                assert path not in problems(inside) and path in problems(outside), (path, value)
    assert {t["name"] for t in catalogue["transformations"]} == set(get_args(Transformation))
    custom = {"weight": 1, "dataset_id": "u--ds-000000", "field": "f", "min_value": 0, "max_value": 1,
              "threshold": 1, "formula": "f * 2"}  # fmt: skip
    for transformation in catalogue["transformations"]:
        body = draft(sport)
        body["data_sources"]["weather"] = custom | {"transformation": transformation["name"]}
        assert problems(body) == []
        for needed in transformation["needs"]:
            lacking = copy.deepcopy(body)
            del lacking["data_sources"]["weather"][needed]
            assert f"data_sources.weather.{needed}" in problems(lacking), (transformation, needed)
    settings = {s["name"]: s for s in catalogue["settings"] + catalogue["sharing"]}
    assert (settings["min_confidence"]["minimum"], settings["max_confidence"]["maximum"]) == (0.5, 1)
    assert (settings["trial_days"]["minimum"], settings["trial_days"]["maximum"]) == (0, 30)
    assert settings["market"]["enum"] == ["spreads", "h2h", "totals"]
    assert problems(draft(sport, sharing={"trial_days": 31})) == ["sharing.trial_days"]
    limits = catalogue["limits"]
    assert limits["tiers"]["free"] == {"max_active_models": 3, "max_public_models": 1}
    assert limits["tiers"]["enterprise"] == {"max_active_models": None, "max_public_models": None}
    assert (limits["formula"]["max_length"], limits["formula"]["max_depth"]) == (500, 32)
    assert limits["price_tiers"][0] == {"name": "basic", "min_cents": 499, "max_cents": 999}


def test_unknown_sport_is_404_naming_the_supported_ones(as_user: Any) -> None:
    message = error(as_user("ann").get("/catalogue/curling"), 404, "not_found")["message"]
    assert all(sport in message for sport in SPORTS)


# --- drafts ---


def test_a_draft_is_checked_like_a_create_and_nothing_is_stored(as_user: Any, api: tuple[str, Lake]) -> None:
    _, lake = api
    dora = as_user("dora")
    body = draft(min_confidence=0.4, sharing={"trial_days": 31})
    body["data_sources"]["odds_movement"]["time_window_hours"] = 0
    expected = {
        "body.min_confidence",
        "body.sharing.trial_days",
        "body.data_sources.odds_movement.time_window_hours",
    }
    answer = error(dora.post("/models/validate", json=body), 422, "validation_error")
    assert {d["field"] for d in answer["details"]} == expected
    assert ok(dora.post("/models/validate", json=draft())) == {"valid": True}
    assert RegistryStore(lake).models_of("dora") == []
    created = error(dora.post("/models", json=body), 422, "validation_error")  # the same answer
    assert created["details"] == answer["details"]


# --- tiers ---


def _public(client: httpx.Client, lake: Lake, model_id: str) -> httpx.Response:
    """Make a model public after recording the backtest publishing needs (SPEC 6)."""
    span = {"from": "2025-10-21", "to": "2025-11-30"}
    record_backtest(lake, {"model_id": model_id, "version": 1, **span, "summary": {"graded": 60}})
    return client.put(f"/models/{model_id}", json=draft(sharing={"public": True, "price_per_month": 0}))


def test_free_tier_limits_and_archiving_frees_a_slot(as_user: Any, api: tuple[str, Lake]) -> None:
    _, lake = api
    fay = as_user("fay", tier="platinum")  # not a tier: free
    ids = [ok(fay.post("/models", json=draft(name=f"m{i}")), 201)["model_id"] for i in range(3)]
    fourth = error(fay.post("/models", json=draft()), 403, "tier_limit")
    assert "free tier: at most 3 active models" in fourth["message"]
    assert fay.delete(f"/models/{ids[0]}").status_code == 204
    ids[0] = ok(fay.post("/models", json=draft()), 201)["model_id"]

    ok(_public(fay, lake, ids[0]))
    second = error(_public(fay, lake, ids[1]), 403, "tier_limit")
    assert "free tier: at most 1 public model" in second["message"]
    assert [d["field"] for d in second["details"]] == ["body.sharing.public"]
    ok(fay.put(f"/models/{ids[0]}", json=draft(name="still public", sharing={"public": True})))  # no new
    assert fay.delete(f"/models/{ids[0]}").status_code == 204
    ok(_public(fay, lake, ids[1]))


def test_a_pro_user_passes_the_free_limits(as_user: Any, api: tuple[str, Lake]) -> None:
    _, lake = api
    pat = as_user("pat", tier="pro")
    ids = [ok(pat.post("/models", json=draft(name=f"m{i}")), 201)["model_id"] for i in range(5)]
    for model_id in ids[:3]:
        ok(_public(pat, lake, model_id))


def test_the_rule_names_each_limit() -> None:
    for tier, quota in MODEL_QUOTAS.items():
        if quota.max_active is None or quota.max_public is None:
            check_model_limits(tier, ModelCounts(10**6, 10**6), adds_model=True, makes_public=True)
            continue
        full = ModelCounts(quota.max_active, quota.max_public)
        with pytest.raises(TierLimitError, match=f"{tier} tier: at most {quota.max_active} active"):
            check_model_limits(tier, full, adds_model=True, makes_public=False)
        with pytest.raises(TierLimitError, match=f"{tier} tier: at most {quota.max_public} public"):
            check_model_limits(tier, full, adds_model=False, makes_public=True)
        check_model_limits(tier, full, adds_model=False, makes_public=False)  # edits of what exists


def test_openapi_documents_the_builder_and_tier_limit(as_user: Any) -> None:
    paths = ok(as_user("ann").get("/openapi.json"))["paths"]
    assert {"200", "404", "401"} <= set(paths["/catalogue/{sport}"]["get"]["responses"])
    assert {"200", "422"} <= set(paths["/models/validate"]["post"]["responses"])
    assert "403" in paths["/models"]["post"]["responses"]
    assert "403" in paths["/models/{model_id}"]["put"]["responses"]


# --- ensembles ---


def test_an_ensemble_may_use_readable_models_only_and_no_cycle(as_user: Any) -> None:
    gus, hal = as_user("gus", tier="pro"), as_user("hal")
    own = ok(gus.post("/models", json=draft(name="own")), 201)["model_id"]
    private = ok(hal.post("/models", json=draft(name="private")), 201)["model_id"]
    members = {"mine": {"model_id": own, "weight": 1}, "theirs": {"model_id": private, "weight": 1}}
    body = draft(name="ensemble", data_sources=members)
    for path in ("/models/validate", "/models"):
        refused = error(gus.post(path, json=body), 422, "validation_error")
        [detail] = refused["details"]
        assert detail["field"] == "body.data_sources.theirs.model_id" and private in detail["message"]
    ensemble = ok(
        gus.post("/models", json=draft(name="ensemble", data_sources={"mine": members["mine"]})), 201
    )
    loop = {
        "team_stats": {"weight": 1, "fields": ["pts"]},
        "loop": {"model_id": ensemble["model_id"], "weight": 1},
    }
    back = draft(name="own", data_sources=loop)
    cycle = error(gus.put(f"/models/{own}", json=back), 422, "validation_error")
    assert [d["field"] for d in cycle["details"]] == ["body.data_sources.loop.model_id"]
    assert f"{own} -> {ensemble['model_id']} -> {own}" in cycle["details"][0]["message"]
