"""The API against its OpenAPI document (issue 12): every operation fuzzed with schemathesis over a
demo-like lake, authenticated with a real token, with no 5xx and no answer the document does not
describe; and, one by one, the inputs that made it answer 500 or off its contract.

The lake is six weeks of the sample league with the demo's users and models (shared after a
backtest, one paid and approved, free subscriptions, users' reviews), analysed, settled, ranked by dbt
and published, plus a model and an active dataset of the fuzzing user, so that generated requests
reach real code rather than 404s. Stripe is the tests' local Stripe server.
"""

from __future__ import annotations

import datetime as dt
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.hooks import HookContext

from api.app import create_app
from api.auth import mint_token
from assets.marts import marts
from cli.demo import (
    demo_model_id,
    publish_demo_models,
    register_demo_models,
    review_demo_models,
    subscribe_demo_users,
)
from domain.formats.sample_league import SEASON_START
from pipelines.jobs import range_tags
from services.payments import Payments
from stores.lake import Lake
from tests.market_pipeline import INGEST_OPS, market_definitions
from tests.test_api import SECRET, serve, settings_for
from tests.test_datasets_api import upload
from tests.test_datasets_pipeline import games_csv, run_pipeline

if TYPE_CHECKING:
    from cli.stripe_local import SpecIndex, StripeServer


NBA = "basketball_nba"
FIRST, LAST = SEASON_START, SEASON_START + dt.timedelta(days=41)
"""Six weeks: the demo's creators backtest 42 days before sharing."""
ONLY_NBA = {"config": {"sports": [NBA]}}
FUZZER = "fuzz"
PAID = demo_model_id("bob", "Rotation strength")
FREE = demo_model_id("alice", "Form and steam")
WEBHOOK_SECRET = "whsec_contract_0123456789"


@dataclass
class Demo:
    lake: Lake
    warehouse: Path
    url: str
    model_id: str
    """A private model of the fuzzing user's."""
    dataset_id: str
    """An active dataset of the fuzzing user's, with its quality report."""
    stripe: StripeServer

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(user, SECRET)}"}

    def client(self, user: str = FUZZER) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth(user), timeout=60)


def _build(lake: Lake, root: Path) -> None:
    """What ``oddsforge demo`` runs, over six weeks: ingest, the demo's models and reviews, scores,
    marts, snapshot."""
    defs = market_definitions(
        lake,
        root,
        {
            "models": ["model_versions"],
            "publish": [
                "model_calibration",
                "subscriptions",
                "model_status",
                "user_reviews",
                marts,
                "serving_snapshot",
            ],
        },
    )
    instance = dg.DagsterInstance.ephemeral()

    def run(job: str, ops: list[str], ranged: bool = True) -> None:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            tags=range_tags(FIRST, LAST) if ranged else {},
            run_config={"ops": dict.fromkeys(ops, ONLY_NBA)},
        )
        assert result.success

    run("ingest", INGEST_OPS)
    register_demo_models(lake)
    publish_demo_models(lake, FIRST)
    subscribe_demo_users(lake)
    review_demo_models(lake)
    run("models", [], ranged=False)
    run("score", ["analyses", "settled_picks", "model_performance"])
    run("publish", ["model_calibration", "model_status"], ranged=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, stripe_spec: SpecIndex) -> Iterator[Demo]:
    """The demo-like lake served, with a model and a dataset of the fuzzing user's to read and change
    and one of each to delete (their ids go to :data:`REAL`)."""
    from cli.stripe_local import StripeServer

    root = tmp_path_factory.mktemp("contract")
    lake = Lake(root=str(root / "lake"))
    with StripeServer(stripe_spec) as stripe:
        _build(lake, root)
        payments = Payments(api_key=stripe.api_key, webhook_secret=WEBHOOK_SECRET, api_base=stripe.url)
        # One user fires ~1,000 reads in seconds: the read limit (tests/test_limits.py) is off here.
        app = create_app(
            replace(settings_for(root / "warehouse"), read_limit=0), lake=lake, payments=payments
        )
        with serve(app) as url:
            headers = {"Authorization": f"Bearer {mint_token(FUZZER, SECRET)}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                models = [_created(client.post("/models", json=_private_model(n))) for n in range(2)]
                draft = {
                    "config": _private_model(0),
                    "sport": NBA,
                    "from": "2024-10-01",
                    "to": LAST.isoformat(),
                }
                job = client.post("/backtests", json=draft)  # over a season long: a job
                assert job.status_code == 202, job.text
                datasets = [_created(upload(client, games_csv(40 + n))) for n in range(2)]
                games = client.get(f"/sports/{NBA}/games", params={"date": LAST.isoformat()}).json()
                # Registering never calls the URL (and nothing here delivers notifications).
                hook = _created(client.post("/me/webhooks", json={"url": "https://hooks.example.com/x"}))
            run_pipeline(lake, root / "warehouse", checks=True)
            demo = Demo(
                lake, root / "warehouse", url, models[0]["model_id"], datasets[0]["dataset_id"], stripe
            )
            REAL.update(
                model_id=[demo.model_id, FREE, PAID],
                dataset_id=[demo.dataset_id],
                game_id=[g["game_id"] for g in games["items"][:3]],
                date=[LAST.isoformat()],
                creator_id=["alice", "bob"],
            )
            SPARE.update(
                model_id=[models[1]["model_id"]],
                dataset_id=[datasets[1]["dataset_id"]],
                endpoint_id=[hook["endpoint_id"]],
                creator_id=["alice", "bob"],
                job_id=[job.json()["job_id"]],
            )
            yield demo
            REAL.clear()
            SPARE.clear()


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


def _private_model(n: int) -> dict[str, Any]:
    return {
        "name": f"Fuzzed {n}",
        "sport": NBA,
        "market": "spreads",
        "data_sources": {"team_stats": {"weight": 1.0, "fields": ["net_rating"], "lookback_games": 10}},
        "min_confidence": 0.52,
        "max_confidence": 0.8,
        "sharing": {"public": False},
    }


def _document() -> dict[str, Any]:
    """The OpenAPI document, as ``GET /openapi.json`` serves it (it does not depend on the data)."""
    return create_app(settings_for(Path("unused")), lake=Lake(root="unused")).openapi()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


# ---- the inputs that answered 500 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "field"),
    [
        ("GET", f"/models/{FREE}/results", {"to": "0001-01-01"}, None, "query.to"),
        ("GET", f"/models/{FREE}/performance", {"to": "0001-01-01"}, None, "query.to"),
        ("POST", f"/models/{FREE}/analyze", {}, {"date": "9999-12-31"}, "body.date"),
        ("POST", "/models/{own}/test", {}, {"from": "0001-01-01", "to": "2025-11-01"}, "body.from"),
        ("GET", f"/sports/{NBA}/games", {"date": "0"}, None, "query.date"),  # was 1970-01-01
        ("GET", f"/sports/{NBA}/games", {"date": "20251101"}, None, "query.date"),  # was a timestamp
        ("POST", f"/models/{FREE}/analyze", {}, {"date": 0}, "body.date"),
        ("POST", "/models/{own}/test", {}, {"from": "2025-11-01", "to": 1_762_000_000}, "body.to"),
    ],
)
def test_dates_are_iso_strings_from_1900_to_2100(
    demo: Demo, method: str, path: str, params: dict[str, str], body: Any, field: str
) -> None:
    with demo.client() as client:
        response = client.request(method, path.format(own=demo.model_id), params=params, json=body)
    error = _error(response, 422, "validation_error")
    assert [(d["field"], d["type"]) for d in error["details"]] == [(field, "iso_date")]
    assert "YYYY-MM-DD from 1900-01-01 to 2100-12-31" in error["details"][0]["message"]


def test_the_date_range_ends_are_served(demo: Demo) -> None:
    with demo.client() as client:
        assert client.get(f"/sports/{NBA}/games", params={"date": "1900-01-01"}).json()["items"] == []
        late = client.get(f"/models/{FREE}/performance", params={"to": "2100-12-31", "days": 365})
        assert (late.status_code, late.json()["first"]) == (200, "2100-01-01")


def test_a_paid_subscription_while_stripe_is_unreachable_is_503_with_retry_after(demo: Demo) -> None:
    """Stripe down is an outage to wait out, not a server error; once it is back the retry works."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = Payments("sk_test_down", WEBHOOK_SECRET, api_base=dead, max_network_retries=0)
    app = create_app(settings_for(demo.warehouse), lake=demo.lake, payments=down)
    body = {"model_id": PAID}
    with (
        serve(app) as url,
        httpx.Client(base_url=url, headers=demo.auth("erin"), timeout=60) as while_down,
        demo.client("erin") as once_up,
    ):
        _stripe_unreachable(while_down.post("/marketplace/subscribe", json=body))
        checkout = once_up.post("/marketplace/subscribe", json=body)
        assert checkout.status_code == 201, checkout.text
        demo.stripe.complete_checkout(checkout.json()["session_id"])  # erin pays on Stripe's page
        _stripe_unreachable(while_down.request("DELETE", "/marketplace/unsubscribe", json=body))
        assert once_up.request("DELETE", "/marketplace/unsubscribe", json=body).status_code == 200
        _stripe_unreachable(while_down.post("/billing/portal"))
        assert once_up.post("/billing/portal").status_code == 200


def _stripe_unreachable(response: httpx.Response) -> None:
    assert _error(response, 503, "payments_unavailable")["message"].startswith("Stripe cannot be reached")
    assert response.headers["Retry-After"] == "30"


# ---- the answers off the document ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "data"),
    [
        ("/models", "application/json", b"{bad"),
        ("/models", "application/json", b'{"name": "\xff"}'),  # not UTF-8: was an undocumented 400
        (f"/models/{FREE}/analyze", "application/json", b"[1,"),
        ("/datasets/validate", "multipart/form-data; boundary=x", b"junk"),  # was 400
        ("/datasets/validate", "multipart/form-data", b"junk"),  # no boundary: was 400
    ],
)
def test_an_unreadable_body_is_422_naming_the_body(
    demo: Demo, path: str, content_type: str, data: bytes
) -> None:
    with demo.client() as client:
        response = client.post(path, content=data, headers={"Content-Type": content_type})
    error = _error(response, 422, "validation_error")
    assert [d["field"] for d in error["details"]] == ["body"]
    assert error["message"] == "invalid request: body"


def test_an_empty_cursor_is_the_first_page(demo: Demo) -> None:
    """What a client sends for "no cursor yet" (`?cursor=`) got 422 on every list route."""
    paginated = [
        path
        for path, operations in _document()["paths"].items()
        if any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))
    ]
    assert len(paginated) == 8
    with demo.client() as client:
        for path in paginated:
            url = path.format(sport=NBA, model_id=FREE)
            params = {"date": LAST.isoformat()} if "{sport}" in path else {}
            first = client.get(url, params=params)
            assert first.status_code == 200, (path, first.text)
            again = client.get(url, params=params | {"cursor": ""})
            assert (again.status_code, again.json()) == (200, first.json()), path


def test_405_names_every_method_of_the_path(demo: Demo) -> None:
    """The router's 405 named only the methods of the first route of a path."""
    ids = {
        "sport": NBA,
        "model_id": FREE,
        "dataset_id": demo.dataset_id,
        "game_id": "g",
        "review_id": "0" * 16,
        "date": LAST,
        "creator_id": "bob",
        "endpoint_id": "wh_0000000000000000",
        "job_id": "j",
    }
    with demo.client() as client:
        for path, operations in _document()["paths"].items():
            documented = {method.upper() for method in operations}
            other = next(m for m in ("PATCH", "PUT", "DELETE") if m not in documented)
            response = client.request(other, path.format(**ids))
            assert response.status_code == 405, (other, path)
            assert set(response.headers["Allow"].split(", ")) == documented, path


def test_the_quality_report_documents_its_html_and_its_json_errors(demo: Demo) -> None:
    """Its errors were documented as text/html (the route's response class) but answered as JSON."""
    responses = _document()["paths"]["/datasets/{dataset_id}/quality/report"]["get"]["responses"]
    assert set(responses.pop("200")["content"]) == {"text/html", "application/json"}
    assert {status: set(r["content"]) for status, r in responses.items()} == {
        status: {"application/json"} for status in responses
    }
    with demo.client() as client:
        page = client.get(f"/datasets/{demo.dataset_id}/quality/report")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        missing = client.get(f"/datasets/{FUZZER}--ds-000000/quality/report")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"


# ---- the fuzzing ---------------------------------------------------------------------------------

MAX_EXAMPLES = 25
"""Cases per operation in the fuzzing phase; with those of the examples and coverage phases (bounded
by the document) ~1,750 requests, ~30 s on two busy cores (building the lake takes ~40 s more)."""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
)


schema = schemathesis.openapi.from_dict(
    _document(),
    config=SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "request-timeout": 60,
        }
    ),
)


REAL: dict[str, list[str]] = {}
"""Ids that exist, by parameter name (the fixture fills it): most generated ids are replaced by one
of them, so that requests reach the routes' code rather than their 404."""
SPARE: dict[str, list[str]] = {}
"""The same for DELETE, which gets objects of its own so that the other operations keep theirs."""


def _real(method: str, name: str, generated: Any) -> Any:
    ids = (SPARE if method == "DELETE" else REAL).get(name)
    if not ids or not isinstance(generated, str):
        return generated
    pick = zlib.crc32(generated.encode())
    return generated if pick % 4 == 0 else ids[pick % len(ids)]


@schema.hook
def map_path_parameters(context: HookContext, path_parameters: dict[str, Any] | None) -> dict[str, Any]:
    method = context.operation.method.upper() if context.operation else ""
    return {name: _real(method, name, value) for name, value in (path_parameters or {}).items()}


@schema.hook
def map_body(context: HookContext, body: Any) -> Any:
    """Subscribing and unsubscribing name their model in the body."""
    if isinstance(body, dict) and "model_id" in body:
        return body | {"model_id": _real("", "model_id", body["model_id"])}
    return body


EXCLUDER = "fuzz-excluder"
"""Who fuzzes ``/me/self-exclusion``: an exclusion cannot be lifted, and the fuzzing user must keep
reaching the routes with picks."""


@schema.parametrize()
def test_every_operation_keeps_its_contract(case: Any, demo: Demo) -> None:
    """No 5xx, and every status, content type, header and body as the document describes."""
    user = EXCLUDER if case.path == "/me/self-exclusion" else FUZZER
    case.call_and_validate(base_url=demo.url, headers=demo.auth(user))
