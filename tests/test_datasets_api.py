"""The datasets API over real HTTP (uvicorn on loopback, real signed tokens), with the pipeline's
sensor and asset run in between: upload -> processing -> active; dry run; every limit; privacy."""

from __future__ import annotations

import datetime as dt
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.app import create_app
from api.auth import ALGORITHM, AUDIENCE, ISSUER
from cli.main import main
from domain.datasets.registry import TIER_QUOTAS, DatasetLimits, Quota
from domain.models.config import validate_against
from domain.models.registry import build_version, new_model_id
from stores.datasets import dataset_infos
from stores.idempotency import IdempotencyStore
from stores.lake import Lake
from stores.registry import RegistryStore
from tests.test_api import SECRET, serve, settings_for
from tests.test_datasets_pipeline import games_csv, run_pipeline
from tests.test_models_registry import config_body

NBA = "basketball_nba"
SMALL_LIMITS = DatasetLimits(
    max_file_bytes=20_000,
    uploads_per_day=3,
    quotas={**TIER_QUOTAS, "free": Quota(max_datasets=2, max_bytes=30_000)},
)


def token(user: str, tier: str | None = None) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + dt.timedelta(hours=1)}
    return jwt.encode(claims | ({"tier": tier} if tier else {}), SECRET, algorithm=ALGORITHM)


class Server:
    """A served app over its own lake and warehouse, with the pipeline's cursor."""

    def __init__(self, url: str, lake: Lake, warehouse: Path) -> None:
        self.url, self.lake, self.warehouse = url, lake, warehouse
        self.cursor: str | None = None
        self.clients: list[httpx.Client] = []

    def client(self, user: str, tier: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token(user, tier)}"}
        self.clients.append(httpx.Client(base_url=self.url, headers=headers, timeout=30))
        return self.clients[-1]

    def run_pipeline(self, checks: bool = False) -> None:
        self.cursor, _ = run_pipeline(self.lake, self.warehouse, self.cursor, checks=checks)

    def inbox(self, user: str) -> list[str]:
        return list(self.lake.list_keys(f"inbox/datasets/{user}/"))


def _server(tmp: Path, limits: DatasetLimits | None) -> Iterator[Server]:
    lake = Lake(root=str(tmp / "lake"))
    app = create_app(settings_for(tmp / "warehouse"), lake=lake)
    if limits is not None:
        app.state.dataset_limits = limits
    with serve(app) as url:
        server = Server(url, lake, tmp / "warehouse")
        yield server
        for c in server.clients:
            c.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real limits."""
    yield from _server(tmp_path_factory.mktemp("api"), None)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Small limits, to reach them quickly."""
    yield from _server(tmp_path_factory.mktemp("small"), SMALL_LIMITS)


def upload(
    client: httpx.Client,
    data: bytes,
    *,
    path: str = "/datasets",
    filename: str = "games.csv",
    headers: dict[str, str] | None = None,
    **form: str,
) -> httpx.Response:
    fields = {"name": "Games", "data_type": "game_level", "sport": NBA} if path == "/datasets" else {}
    return client.post(path, files={"file": (filename, data)}, data=fields | form, headers=headers)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if "json" in response.headers.get("content-type", "") else response.text


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body["message"]


# --- the flow ---


def test_upload_is_processing_until_the_pipeline_makes_it_active(api: Server) -> None:
    alice = api.client("alice")
    data = games_csv(40, value={5: "=HYPERLINK(1)"})
    created = upload(alice, data, filename="../../games.csv", name="Weather", description="temps")
    detail = ok(created, 201)
    dataset_id = detail["dataset_id"]
    assert created.headers["Location"] == f"/datasets/{dataset_id}"
    assert dataset_id.startswith("alice--ds-")
    assert (detail["status"], detail["version"], detail["active_version"]) == ("processing", 1, None)
    assert (detail["row_count"], detail["field_count"], detail["quality_score"]) == (40, 3, None)
    assert detail["versions"][0]["filename"] == "games.csv"  # a name to show, never a path
    assert detail["fields"] == {"game_id": "string", "date": "date", "value": "int"}
    keys = api.inbox("alice")
    assert len(keys) == 2 and keys[0].endswith("/v000001/meta.json")
    assert keys[1].startswith(f"inbox/datasets/alice/{dataset_id}/v000001/upload-") and keys[1].endswith(
        ".csv"
    )
    assert not [p for p in Path(api.lake.root).parent.rglob("games.csv")]  # stored under its own key
    waiting = alice.get(f"/datasets/{dataset_id}/preview")
    assert "still processing" in error(waiting, 409, "processing")
    assert waiting.headers["Retry-After"] == "30"
    assert "not ready" not in error(alice.get(f"/datasets/{dataset_id}/quality/report"), 409, "processing")

    api.run_pipeline(checks=True)

    detail = ok(alice.get(f"/datasets/{dataset_id}"))
    assert (detail["status"], detail["active_version"], detail["storage"]) == ("active", 1, "warehouse")
    assert detail["usable"] is True and detail["quality_score"] == pytest.approx(1 - 0.2 / 120)
    assert [d["dataset_id"] for d in ok(alice.get("/datasets"))["items"]] == [dataset_id]

    preview = ok(alice.get(f"/datasets/{dataset_id}/preview"))
    assert len(preview["rows"]) == 10 and preview["rows"][4]["value"] == "=HYPERLINK(1)"
    exported = alice.get(f"/datasets/{dataset_id}/preview", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.text.splitlines()[5] == "g00005,2024-01-06,'=HYPERLINK(1)"  # never run as a formula

    stats = ok(alice.get(f"/datasets/{dataset_id}/stats"))["fields"]
    value = {k: stats["value"][k] for k in ("type", "count", "missing", "distinct", "min", "max")}
    assert value == {"type": "int", "count": 40, "missing": 0, "distinct": 6, "min": 48, "max": 52}
    quality = ok(alice.get(f"/datasets/{dataset_id}/quality"))
    assert [(f["rule"], f["field"], f["rows"]) for f in quality["failures"]] == [("type", "value", [5])]
    assert [(f["rule"], f["rows"]) for f in quality["validation"]] == [("type", [5])]
    assert quality["type_valid"] == pytest.approx(1 - 1 / 120)

    page = alice.get(f"/datasets/{dataset_id}/quality/report")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert page.text.lstrip().startswith("<!DOCTYPE html>")
    result = ok(alice.get(f"/datasets/{dataset_id}/quality/report", params={"format": "json"}))
    assert result["success"] is False  # the bad cell fails GE's type expectation as it fails ours

    found = ok(alice.get(f"/datasets/{dataset_id}/rows", params={"game_id": "g00003"}))["items"]
    assert found == [{"game_id": "g00003", "date": "2024-01-04", "value": 51}]
    wrong_key = alice.get(f"/datasets/{dataset_id}/rows", params={"team": "BOS"})
    error(wrong_key, 422, "validation_error")
    assert wrong_key.json()["error"]["details"][0] == {
        "field": "query.team",
        "message": "look rows up by the key fields game_id",
        "type": "value_error",
    }


def test_dry_run_gives_the_cli_report_and_stores_nothing(
    api: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dora = api.client("dora")
    data = games_csv(30, value={3: "abc"}, empty_rows=(7,))
    report = ok(upload(dora, data, path="/datasets/validate", data_type="game_level", sport=NBA))
    assert report["rows"] == 30 and report["format"] == "csv"
    assert [(f["rule"], f["rows"]) for f in report["quality"]["failures"]] == [("type", [3])]
    assert len(report["preview"]) == 10 and report["stats"]["value"]["missing"] == 1

    path = tmp_path / "games.csv"
    path.write_bytes(data)
    assert main(["dataset", "validate", str(path), "--sport", NBA, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == report

    refused = upload(dora, b"team,value\nBOS,1\n", path="/datasets/validate", data_type="game_level")
    assert "missing key field 'game_id'" in error(refused, 422, "dataset_rejected")
    assert [key for key in api.lake.list_keys("") if "dora" in key] == []


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"a\rb,c\n1,2\n", "line 1 (the header)"),  # a carriage return inside a header name
        (b"game_id,value\rg1,1\rg2,2\r", "line 1 (the header)"),  # old Mac line ends
        (b"game_id,value\ng1,1\ng2,2,3\r4\n", "line 3"),  # one in a data row polars refuses
    ],
)
def test_a_stray_carriage_return_is_rejected_naming_the_line(
    api: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, line: str
) -> None:
    """Python's CSV reader raised on these (a 500, and a traceback from the CLI)."""
    cleo = api.client("cleo")
    for path in ("/datasets/validate", "/datasets"):
        message = error(upload(cleo, data, path=path, data_type="game_level"), 422, "dataset_rejected")
        assert f"games.csv: {line}: a carriage return inside an unquoted field" in message
    assert api.inbox("cleo") == []
    file = tmp_path / "games.csv"
    file.write_bytes(data)
    assert main(["dataset", "validate", str(file), "--data-type", "game_level"]) == 2
    err = capsys.readouterr().err
    assert f"games.csv: REJECTED: games.csv: {line}: a carriage return" in err and "Traceback" not in err


# --- limits ---


def test_rows_fields_keys_and_schema_are_refused_with_nothing_stored(api: Server) -> None:
    rita = api.client("rita")
    too_long = b"game_id,value\n" + b"".join(b"g%d,1\n" % i for i in range(100_001))
    assert "100,000 data rows" in error(upload(rita, too_long), 422, "dataset_rejected")
    too_wide = (
        ",".join(["game_id", *(f"f{i}" for i in range(50))]) + "\n" + ",".join(["g1"] + ["1"] * 50)
    ).encode()
    assert "51 fields; the limit is 50 fields" in error(upload(rita, too_wide), 422, "dataset_rejected")
    assert "missing key field 'game_id'" in error(upload(rita, b"team,v\nBOS,1\n"), 422, "dataset_rejected")
    assert "unknown type 'money'" in error(
        upload(rita, games_csv(), schema='{"value": "money"}'), 422, "dataset_rejected"
    )
    bad_json = upload(rita, games_csv(), schema="{value: float}")
    error(bad_json, 422, "validation_error")
    assert bad_json.json()["error"]["details"][0]["field"] == "body.schema"
    bad_sport = upload(rita, games_csv(), sport="curling")
    assert bad_sport.json()["error"]["details"][0]["field"] == "body.sport"
    error(upload(rita, games_csv(), data_type="weather"), 422, "validation_error")
    assert api.inbox("rita") == []


def test_a_configured_file_size_limit_gives_413_and_stores_nothing(small: Server) -> None:
    sam = small.client("sam")
    big = games_csv(1_500)  # ~33 kB, over the 20 kB limit of this server
    assert "file size limit of 20,000 bytes" in error(upload(sam, big), 413, "file_too_large")
    error(upload(sam, big, path="/datasets/validate", data_type="game_level"), 413, "file_too_large")
    assert small.inbox("sam") == []


def _stream_upload(url: str, auth: str | None, total: int, chunked: bool) -> tuple[int, bytes]:
    """POST a multipart body of ``total`` bytes over a raw socket, sending 1 MB at a time until the
    server answers; return the bytes sent and the response."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        b'--b\r\nContent-Disposition: form-data; name="data_type"\r\n\r\ngame_level\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    )
    chunk = b"game_id,value\n" + b"g1,1.5\n" * 150_000
    request = "POST /datasets HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    request += f"Authorization: Bearer {auth}\r\n" if auth else ""
    request += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    sent, response = 0, b""
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request.encode())
        body = head + chunk
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(body), body) if chunked else body)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(body)
            body = chunk
        sock.settimeout(10)
        while b"\r\n\r\n" not in response or len(response.split(b"\r\n\r\n", 1)[1]) < _length(response):
            data = sock.recv(65_536)
            if not data:
                break
            response += data
    return sent, response


def _length(response: bytes) -> int:
    for line in response.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def test_the_real_100_mb_limit_refuses_a_streamed_body_early(api: Server) -> None:
    total = 150_000_000
    started = time.monotonic()
    sent, response = _stream_upload(api.url, token("stan"), total, chunked=True)
    assert response.startswith(b"HTTP/1.1 413")
    assert b'"code":"file_too_large"' in response and b"100,000,000 bytes (100 MB)" in response
    assert 100_000_000 < sent < 115_000_000  # refused soon after the limit, not at the end
    # A declared length over the limit is refused before the body is read at all.
    sent, response = _stream_upload(api.url, token("stan"), total, chunked=False)
    assert response.startswith(b"HTTP/1.1 413") and sent < 20_000_000
    # So is a body without a valid token, whatever its size.
    sent, response = _stream_upload(api.url, None, total, chunked=True)
    assert response.startswith(b"HTTP/1.1 401") and sent < 20_000_000
    assert api.inbox("stan") == []
    assert time.monotonic() - started < 30


def test_the_daily_upload_rate_counts_uploads_and_refreshes_not_dry_runs(small: Server) -> None:
    pat = small.client("pat", tier="pro")
    first = ok(upload(pat, games_csv(10)), 201)["dataset_id"]
    ok(upload(pat, games_csv(10)), 201)
    ok(upload(pat, games_csv(12), path=f"/datasets/{first}/refresh"), 201)
    ok(upload(pat, games_csv(10), path="/datasets/validate", data_type="game_level"))
    before = small.inbox("pat")
    refused = upload(pat, games_csv(10))
    assert "3 uploads per 24 hours" in error(refused, 429, "upload_rate_exceeded")
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
    error(upload(pat, games_csv(10), path=f"/datasets/{first}/refresh"), 429, "upload_rate_exceeded")
    assert small.inbox("pat") == before


def test_tier_quotas_on_datasets_and_bytes(small: Server) -> None:
    fay = small.client("fay")
    ok(upload(fay, games_csv(10)), 201)
    ok(upload(fay, games_csv(10)), 201)
    before = small.inbox("fay")
    assert "free tier allows 2 datasets" in error(upload(fay, games_csv(10)), 429, "dataset_quota_exceeded")
    assert small.inbox("fay") == before

    gus, file = small.client("gus", tier="platinum"), games_csv(800)  # not a tier: free; ~17.6 kB
    ok(upload(gus, file), 201)
    message = error(upload(gus, file), 413, "storage_quota_exceeded")
    assert "free tier allows 30,000 bytes" in message
    assert len(small.inbox("gus")) == 2  # the first dataset's upload and meta only
    ok(upload(small.client("gus", tier="pro"), file), 201)  # the pro tier has room


# --- privacy and models ---


def custom_model(dataset_id: str, **sharing: Any) -> dict[str, Any]:
    body = config_body(sharing={"public": True, "price_per_month": 0} | sharing)
    source = {"weight": 0.2, "dataset_id": dataset_id, "field": "value", "transformation": "linear"}
    body["data_sources"]["custom_weather"] = source | {"min_value": 40, "max_value": 60}
    return body


def test_other_users_get_404_everywhere_even_through_a_shared_model(api: Server) -> None:
    olga, mallory = api.client("olga"), api.client("mallory")
    dataset_id = ok(upload(olga, games_csv(20)), 201)["dataset_id"]
    api.run_pipeline()
    # Olga's model that uses the dataset is shared (stored as published: the publishing rules, a
    # backtest of 50 graded picks, are the models API's business, not this test's).
    now = dt.datetime.now(dt.UTC)
    shared = build_version(
        custom_model(dataset_id),
        model_id=new_model_id("olga", "weather", b"\x00\x00\x01"),
        owner_user_id="olga",
        version=1,
        created_at=now,
        updated_at=now,
    )
    validate_against(shared, dataset_infos(api.lake, "olga"))  # olga may use her dataset
    assert shared.sharing.public and RegistryStore(api.lake).create_version(shared)

    base = f"/datasets/{dataset_id}"  # the model is shared, its dataset is not
    for response in (
        mallory.get(base),
        mallory.put(base, json={"name": "mine"}),
        mallory.delete(base),
        upload(mallory, games_csv(5), path=f"{base}/refresh"),
        *(mallory.get(f"{base}/{part}") for part in ("preview", "stats", "quality", "quality/report")),
        mallory.get(f"{base}/rows", params={"game_id": "g00001"}),
    ):
        assert error(response, 404, "not_found") == f"no dataset with id {dataset_id!r}"
    assert ok(mallory.get("/datasets"))["items"] == []
    refused = mallory.post("/models", json=custom_model(dataset_id))
    error(refused, 422, "validation_error")
    assert "is not one of mallory's datasets" in refused.json()["error"]["details"][0]["message"]
    assert ok(olga.get(base))["status"] == "active"  # nothing mallory did touched it


def test_models_may_use_only_active_datasets_scoring_above_0_8(api: Server) -> None:
    mia = api.client("mia")
    good = ok(upload(mia, games_csv(20)), 201)["dataset_id"]
    poor = ok(upload(mia, games_csv(20), schema='{"temperature": "float"}'), 201)["dataset_id"]
    api.run_pipeline()
    pending = ok(upload(mia, games_csv(20)), 201)["dataset_id"]
    assert ok(mia.get(f"/datasets/{poor}"))["quality_score"] == pytest.approx(0.7)

    ok(mia.post("/models", json=custom_model(good, public=False)), 201)
    refused = mia.post("/models", json=custom_model(poor, public=False))
    error(refused, 422, "validation_error")
    assert "quality score 0.700" in refused.json()["error"]["details"][0]["message"]
    refused = mia.post("/models", json=custom_model(pending, public=False))
    error(refused, 422, "validation_error")
    assert "is not one of mia's datasets" in refused.json()["error"]["details"][0]["message"]


# --- versions, edits, deletion ---


def test_refresh_creates_version_2_and_the_pipeline_activates_it(api: Server) -> None:
    rex = api.client("rex")
    dataset_id = ok(upload(rex, games_csv(20)), 201)["dataset_id"]
    api.run_pipeline()
    refreshed = ok(upload(rex, games_csv(35), path=f"/datasets/{dataset_id}/refresh"), 201)
    assert (refreshed["status"], refreshed["version"], refreshed["active_version"]) == ("processing", 2, 1)
    assert refreshed["row_count"] == 20  # the active version's, until version 2 is active
    assert [v["status"] for v in refreshed["versions"]] == ["active", "processing"]
    wrong = upload(rex, games_csv(35), path=f"/datasets/{dataset_id}/refresh", data_type="team_level")
    assert "missing key field 'team'" in error(wrong, 422, "dataset_rejected")

    api.run_pipeline()
    detail = ok(rex.get(f"/datasets/{dataset_id}"))
    assert (detail["status"], detail["active_version"], detail["row_count"]) == ("active", 2, 35)
    assert [v["status"] for v in detail["versions"]] == ["superseded", "active"]
    assert len(ok(rex.get(f"/datasets/{dataset_id}/preview", params={"version": 2}))["rows"]) == 10
    assert "superseded" in error(
        rex.get(f"/datasets/{dataset_id}/stats", params={"version": 1}), 404, "not_found"
    )
    error(rex.get(f"/datasets/{dataset_id}/stats", params={"version": 3}), 404, "not_found")


def test_edit_then_delete(api: Server) -> None:
    eve = api.client("eve")
    dataset_id = ok(upload(eve, games_csv(20), description="old"), 201)["dataset_id"]
    api.run_pipeline()
    edited = ok(eve.put(f"/datasets/{dataset_id}", json={"name": "Travel"}))
    assert (edited["name"], edited["description"]) == ("Travel", "old")  # at once, before any run
    error(eve.put(f"/datasets/{dataset_id}", json={"sport": NBA}), 422, "validation_error")
    api.run_pipeline()
    assert ok(eve.get(f"/datasets/{dataset_id}"))["name"] == "Travel"

    assert eve.delete(f"/datasets/{dataset_id}").status_code == 204
    error(eve.get(f"/datasets/{dataset_id}"), 404, "not_found")
    error(eve.delete(f"/datasets/{dataset_id}"), 404, "not_found")
    assert ok(eve.get("/datasets"))["items"] == []
    api.run_pipeline()
    assert not list(api.lake.list_keys(f"tables/dataset_rows/{dataset_id}/"))
    assert not list(api.lake.list_keys(f"datasets/{dataset_id}/"))
    assert [k.rsplit("/", 1)[-1] for k in api.inbox("eve")] == ["deleted.json", "000001.json", "meta.json"]


# --- the API's clock ---


def test_every_write_takes_its_time_from_the_apps_clock(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    app = create_app(settings_for(tmp_path / "warehouse"), lake=lake)
    now = [dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)]
    app.state.clock = lambda: now[0]
    with serve(app) as url:
        cleo = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token('cleo')}"}, timeout=30)
        created = ok(upload(cleo, games_csv(10)), 201)
        dataset_id = created["dataset_id"]
        assert created["created_at"] == created["updated_at"] == "2026-03-01T12:00:00Z"
        now[0] += dt.timedelta(hours=2)
        assert (
            ok(cleo.put(f"/datasets/{dataset_id}", json={"name": "Later"}))["updated_at"]
            == "2026-03-01T14:00:00Z"
        )
        refreshed = ok(upload(cleo, games_csv(12), path=f"/datasets/{dataset_id}/refresh"), 201)
        assert [v["uploaded_at"] for v in refreshed["versions"]] == [
            "2026-03-01T12:00:00Z",
            "2026-03-01T14:00:00Z",
        ]
        model = ok(cleo.post("/models", json=config_body()), 201)
        assert model["created_at"] == model["updated_at"] == "2026-03-01T14:00:00Z"
        assert cleo.delete(f"/datasets/{dataset_id}").status_code == 204
        cleo.close()
    tombstone = json.loads(lake.get_bytes(f"inbox/datasets/cleo/{dataset_id}/deleted.json"))
    assert tombstone == {"deleted_by": "cleo", "deleted_at": "2026-03-01T14:00:00+00:00"}


def test_a_retried_upload_with_an_idempotency_key_is_stored_once_for_24_hours(tmp_path: Path) -> None:
    """The client never saw the answer to its upload and sends it again with the same key: it gets
    the first answer, and the inbox holds one dataset. The key names that request only, and expires
    after 24 hours."""
    lake = Lake(root=str(tmp_path / "lake"))
    app = create_app(settings_for(tmp_path / "warehouse"), lake=lake)
    now = [dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)]
    app.state.clock = lambda: now[0]
    key = {"Idempotency-Key": "3f6e0c1a-weather-upload"}

    def datasets() -> list[str]:
        return sorted(
            {k.split("/")[3] for k in lake.list_keys("inbox/datasets/gina/") if k.endswith("meta.json")}
        )

    with serve(app) as url:
        gina = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token('gina')}"}, timeout=30)
        first = upload(gina, games_csv(40), headers=key)
        created = ok(first, 201)
        again = upload(gina, games_csv(40), headers=key)
        assert (again.status_code, again.json()) == (201, created)
        assert again.headers["location"] == first.headers["location"] == f"/datasets/{created['dataset_id']}"
        assert again.headers["idempotent-replayed"] == "true"
        assert datasets() == [created["dataset_id"]]

        other = upload(gina, games_csv(41), headers=key)
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
        assert other.json()["error"]["details"][0]["field"] == "header.Idempotency-Key"
        refresh = upload(gina, games_csv(40), path=f"/datasets/{created['dataset_id']}/refresh", headers=key)
        assert refresh.status_code == 422  # a key names one request, on one route
        assert datasets() == [created["dataset_id"]]

        now[0] += dt.timedelta(hours=24, seconds=1)
        later = ok(upload(gina, games_csv(40), headers=key), 201)
        assert later["dataset_id"] != created["dataset_id"]
        assert datasets() == sorted([created["dataset_id"], later["dataset_id"]])
        gina.close()
    # Housekeeping removes a key a day after it was first claimed (by its objects' times).
    keys = IdempotencyStore(lake)
    assert keys.prune(dt.datetime.now(dt.UTC)) == 0 and list(lake.list_keys("idempotency/gina/"))
    assert keys.prune(dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, minutes=1)) == 1
    assert not list(lake.list_keys("idempotency/"))
