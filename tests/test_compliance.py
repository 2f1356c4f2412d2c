"""SPEC 9 through real HTTP: age and region from the token, self-exclusion with its Stripe
cancellations on the local Stripe server, the audit record, disclaimers and ``GET /legal``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import mint_token
from api.settings import ApiSettings
from cli.main import main
from domain.compliance.eligibility import RegionPolicy
from domain.compliance.legal import DISCLAIMER
from services.paid_subscriptions import start_checkout
from services.payments import Payments
from stores.audit import read_audit
from stores.lake import Lake
from tests.test_api import SECRET, opening_day_games, opening_day_lines, publish, serve, settings_for

if TYPE_CHECKING:
    from cli.stripe_local import StripeServer


NOW = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
TWENTY = "2006-06-01"
"""20 on :data:`NOW`: old enough in Great Britain, not in New York."""
ADULT = "1990-01-01"
NBA = "basketball_nba"
PAID_MODEL = {
    "model_id": "cleo--sharp-0a1b2c",
    "version": 1,
    "owner_user_id": "cleo",
    "name": "Sharp Spreads",
    "price_cents": 999,
    "trial_days": 7,
    "status": "active",
}


@dataclass
class Api:
    app: FastAPI
    lake: Lake
    url: str

    def client(self, user: str, birthdate: str | None = ADULT, region: str | None = "GB") -> httpx.Client:
        token = mint_token(user, SECRET, birthdate=birthdate, region=region)
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def own_model(self, user: str) -> str:
        """A private model of ``user``'s (creating one needs no age: it shows no picks)."""
        with self.client(user, birthdate=None, region=None) as client:
            response = client.post("/models", json=_config(user))
        assert response.status_code == 201, response.text
        return response.json()["model_id"]


def _config(name: str) -> dict[str, Any]:
    return {
        "name": f"{name}'s model",
        "sport": NBA,
        "market": "spreads",
        "data_sources": {"team_stats": {"weight": 1.0, "fields": ["net_rating"]}},
        "min_confidence": 0.52,
        "max_confidence": 0.8,
        "sharing": {"public": False},
    }


@pytest.fixture
def payments(stripe_server: StripeServer) -> Payments:
    return Payments(
        api_key=stripe_server.api_key, webhook_secret="whsec_compliance", api_base=stripe_server.url
    )


@pytest.fixture
def api(tmp_path: Path, payments: Payments) -> Iterator[Api]:
    """The API over a snapshot of games and lines, with US-WA and US-ID blocked, its clock at :data:`NOW`."""
    warehouse, lake = tmp_path / "warehouse", Lake(root=str(tmp_path / "lake"))
    publish(warehouse / "serving", opening_day_games(), opening_day_lines())
    settings = replace(settings_for(warehouse), region_policy=RegionPolicy.parse("US-WA,US-ID"))
    app = create_app(settings, lake=lake, payments=payments)
    app.state.clock = lambda: NOW
    with serve(app) as url:
        yield Api(app, lake, url)


def picks_routes(model_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every route that serves picks or starts a subscription: (method, path, body)."""
    return [
        ("POST", f"/models/{model_id}/analyze", {"date": "2018-10-16"}),
        ("GET", f"/models/{model_id}/results", None),
        ("POST", "/marketplace/subscribe", {"model_id": model_id}),
    ]


def figures_routes(model_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Routes with a model's figures or that run it, judged by age and region only."""
    return [
        ("GET", f"/models/{model_id}/performance", None),
        ("POST", f"/models/{model_id}/test", {"from": "2018-10-16", "to": "2018-10-20"}),
    ]


def codes(
    client: httpx.Client, routes: list[tuple[str, str, dict[str, Any] | None]]
) -> list[tuple[int, str]]:
    answers = [client.request(method, path, json=body) for method, path, body in routes]
    return [(r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else "") for r in answers]


def test_a_twenty_year_old_is_refused_picks_in_new_york_and_served_in_london(api: Api) -> None:
    model_id = api.own_model("ann")
    gated = [*picks_routes(model_id)[:2], *figures_routes(model_id)]
    with api.client("ann", TWENTY, "US-NY") as new_york, api.client("ann", TWENTY, "GB") as london:
        refused = codes(new_york, [*gated, picks_routes("someone--else-0a1b2c")[2]])
        assert refused == [(403, "age_verification_required")] * 5
        assert (
            "at least 21 in US-NY" in new_york.get(f"/models/{model_id}/results").json()["error"]["message"]
        )
        assert codes(london, gated) == [(200, "")] * 4
        # Browsing listings stays open, and so does one's own model and self-exclusion.
        for path in (
            "/marketplace/models",
            f"/marketplace/models/{model_id}",
            f"/models/{model_id}",
            "/legal",
        ):
            assert new_york.get(path).status_code == 200, path


def test_a_blocked_region_gets_451_whatever_the_age(api: Api) -> None:
    model_id = api.own_model("bea")
    routes = [*picks_routes(model_id), *figures_routes(model_id)]
    for birthdate, region in [(ADULT, "US-WA"), (ADULT, "us-id"), (None, "US-WA"), ("2010-01-01", "US-WA")]:
        with api.client("bea", birthdate, region) as client:
            assert codes(client, routes) == [(451, "region_blocked")] * 5, (birthdate, region)
    with api.client("bea", ADULT, None) as nowhere:
        assert codes(nowhere, routes[:1]) == [(451, "region_blocked")]
    with api.client("bea", ADULT, "US-NY") as allowed:
        assert codes(allowed, routes[:2]) == [(200, "")] * 2
        assert allowed.get("/marketplace/models").status_code == 200


@pytest.mark.parametrize("birthdate", [None, "2006-13-01", "06/01/1990", "1990"])
def test_a_token_without_a_usable_birthdate_gets_403(api: Api, birthdate: str | None) -> None:
    model_id = api.own_model("cal")
    with api.client("cal", birthdate, "GB") as client:
        assert codes(client, picks_routes(model_id)) == [(403, "age_verification_required")] * 3


def test_the_openapi_document_names_the_refusals_and_the_disclaimer(api: Api) -> None:
    doc = httpx.get(f"{api.url}/openapi.json").json()
    for method, path, _ in [*picks_routes("{model_id}"), *figures_routes("{model_id}")]:
        responses = doc["paths"][path][method.lower()]["responses"]
        assert "age_verification_required" in responses["403"]["description"], path
        assert "region_blocked" in responses["451"]["description"], path
    for method, path, _ in picks_routes("{model_id}"):
        assert "self_excluded" in doc["paths"][path][method.lower()]["responses"]["403"]["description"]
    schemas = doc["components"]["schemas"]
    answers = {
        ("post", "/models/{model_id}/analyze"): "200",
        ("get", "/models/{model_id}/results"): "200",
        ("get", "/models/{model_id}/performance"): "200",
        ("post", "/models/{model_id}/test"): "200",
        ("get", "/marketplace/models"): "200",
        ("get", "/marketplace/models/{model_id}"): "200",
    }
    for (method, path), status in answers.items():
        ref = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        assert (
            "disclaimer" in schema["required"] and schema["properties"]["disclaimer"]["default"] == DISCLAIMER
        )
    assert "403" not in doc["paths"]["/marketplace/models"]["get"]["responses"]
    assert "security" not in doc["paths"]["/legal"]["get"]


def test_answers_with_picks_and_figures_carry_the_disclaimer(api: Api) -> None:
    model_id = api.own_model("dee")
    with api.client("dee") as client:
        routes = [*picks_routes(model_id)[:2], *figures_routes(model_id)]
        routes += [("GET", "/marketplace/models", None), ("GET", f"/marketplace/models/{model_id}", None)]
        for method, path, body in routes:
            response = client.request(method, path, json=body)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["disclaimer"] == DISCLAIMER, path


def test_legal_is_public_with_help_lines_and_the_terms_in_force(tmp_path: Path) -> None:
    settings = ApiSettings.from_env(
        {
            "ODDSFORGE_JWT_SECRET": SECRET,
            "ODDSFORGE_WAREHOUSE_DIR": str(tmp_path),
            "ODDSFORGE_CREATOR_TERMS_VERSION": "2027-01-15",
            "ODDSFORGE_BLOCKED_REGIONS": "US-WA,US-ID",
            "ODDSFORGE_MIN_AGE": "US-NY=21,GB=18",
        }
    )
    with serve(create_app(settings, lake=Lake(root=str(tmp_path / "lake")))) as url:
        response = httpx.get(f"{url}/legal")
    assert response.status_code == 200
    legal = response.json()
    assert legal["disclaimer"] == DISCLAIMER
    assert "for entertainment only" in legal["disclaimer"]
    assert "Past results do not predict future ones" in legal["disclaimer"]
    assert "places no bets" in legal["disclaimer"]
    phones = {line["phone"] for line in legal["responsible_gambling"]}
    assert {"1-800-GAMBLER", "1-800-522-4700"} <= phones
    assert legal["terms"] == {"user": "2026-12-01", "creator": "2027-01-15"}
    assert legal["eligibility"] == {
        "us_minimum_age": 21,
        "default_minimum_age": 18,
        "overrides": {"GB": 18, "US-NY": 21},
        "blocked_regions": ["US-ID", "US-WA"],
    }


def _cancels(server: StripeServer) -> list[str | None]:
    return [
        r.idempotency_key
        for r in server.requests
        if r.method == "POST" and r.path.startswith("/v1/subscriptions/")
    ]


def test_a_self_excluded_user_gets_no_picks_nor_subscriptions_and_stops_paying(
    api: Api, payments: Payments, stripe_server: StripeServer
) -> None:
    urls = ("https://web.test/paid", "https://web.test/cancelled")
    session_id = start_checkout(api.lake, payments, "eve", PAID_MODEL, NOW, urls)["session_id"]
    sub_id = stripe_server.complete_checkout(session_id)["id"]  # eve pays on Stripe's page: a trial
    model_id = api.own_model("eve")
    with api.client("eve") as eve:
        assert eve.get("/me/self-exclusion").json() == {
            "excluded": False,
            "period": None,
            "start_date": None,
            "end_date": None,
            "permanent": False,
        }
        started = eve.post("/me/self-exclusion", json={"period": "30d"})
        assert started.status_code == 201, started.text
        state = {"excluded": True, "period": "30d", "start_date": "2026-12-07", "end_date": "2027-01-06"}
        assert started.json() == state | {"permanent": False}
        assert eve.get("/me/self-exclusion").json() == started.json()
        assert codes(eve, picks_routes(model_id)) == [(403, "self_excluded")] * 3
        assert codes(eve, picks_routes(PAID_MODEL["model_id"])[2:]) == [(403, "self_excluded")]
        # Figures without picks and browsing stay open.
        assert [eve.request(m, p, json=b).status_code for m, p, b in figures_routes(model_id)] == [200, 200]
        assert eve.get("/marketplace/models").status_code == 200

        (sub,) = stripe_server.objects("subscription")
        assert (sub["id"], sub["cancel_at_period_end"], sub["status"]) == (sub_id, True, "trialing")
        assert _cancels(stripe_server) == [f"self_exclusion:eve:2026-12-07:30d:{sub_id}"]

        again = eve.post("/me/self-exclusion", json={"period": "30d"})  # a retry: the same exclusion
        assert (again.status_code, again.json()) == (200, started.json())
        assert len(_cancels(stripe_server)) == 1  # already cancelling: Stripe is not asked twice

        (record,) = read_audit(api.lake).to_dicts()
        assert (record["actor"], record["action"], record["object_id"]) == (
            "eve",
            "self_exclusion.started",
            "eve",
        )
        assert record["business_key"] == "self_exclusion:eve:2026-12-07:30d"
        assert record["before"] is None and '"end":"2027-01-06"' in record["after"]

    api.app.state.clock = lambda: NOW + dt.timedelta(days=30)  # the end day: free again
    with api.client("eve") as eve:
        assert eve.get("/me/self-exclusion").json()["excluded"] is False
        assert codes(eve, picks_routes(model_id)[:2]) == [(200, "")] * 2


def test_a_self_exclusion_can_be_extended_but_never_shortened(api: Api) -> None:
    with api.client("fay") as fay:
        assert fay.post("/me/self-exclusion", json={"period": "6m"}).json()["end_date"] == "2027-06-07"
        api.app.state.clock = lambda: NOW + dt.timedelta(days=1)
        shorter = fay.post("/me/self-exclusion", json={"period": "30d"})
        assert (shorter.status_code, shorter.json()["error"]["code"]) == (409, "self_exclusion_active")
        assert "until 2027-06-07" in shorter.json()["error"]["message"]
        later = fay.post("/me/self-exclusion", json={"period": "6m"})  # from tomorrow: a day longer
        assert (later.status_code, later.json()["end_date"]) == (201, "2027-06-08")
        year = fay.post("/me/self-exclusion", json={"period": "1y"})
        assert (year.status_code, year.json()["end_date"]) == (201, "2027-12-08")
        forever = fay.post("/me/self-exclusion", json={"period": "permanent"})
        assert forever.json() == {
            "excluded": True,
            "period": "permanent",
            "start_date": "2026-12-08",
            "end_date": None,
            "permanent": True,
        }
        for period in ("30d", "6m", "1y"):
            assert fay.post("/me/self-exclusion", json={"period": period}).status_code == 409
        api.app.state.clock = lambda: NOW + dt.timedelta(days=3650)
        assert fay.get("/me/self-exclusion").json()["permanent"] is True
        assert fay.post("/me/self-exclusion", json={"period": "soon"}).status_code == 422
    actions = read_audit(api.lake)
    assert actions["action"].to_list() == ["self_exclusion.started"] * 4  # 6m, 6m a day later, 1y, permanent
    assert sorted(actions["business_key"].to_list()) == [
        "self_exclusion:fay:2026-12-07:6m",
        "self_exclusion:fay:2026-12-08:1y",
        "self_exclusion:fay:2026-12-08:6m",
        "self_exclusion:fay:2026-12-08:permanent",
    ]


def test_the_token_command_vouches_for_a_birthdate_and_a_region(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ODDSFORGE_JWT_SECRET", SECRET)
    monkeypatch.setenv("ODDSFORGE_WAREHOUSE_DIR", str(tmp_path))

    def claims(*args: str) -> dict[str, Any]:
        assert main(["token", "ann", *args]) == 0
        return jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})

    young = claims("--birthdate", TWENTY, "--region", "US-NY")
    assert (young["birthdate"], young["region"]) == (TWENTY, "US-NY")
    default = claims()
    assert RegionPolicy().refusal(default["birthdate"], default["region"], NOW.date()) is None
    for bad in (["--birthdate", "2006-02-30"], ["--region", "New York"]):
        with pytest.raises(SystemExit):
            main(["token", "ann", *bad])
