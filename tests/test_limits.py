"""Requests bounded before the app reads them (``api/guard.py``, ``api/rate_limit.py``), over real
HTTP: the token before the body, a body limit per route enforced while the body streams, and a
per-user read limit."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

import api.auth
from api.app import create_app
from api.auth import mint_token
from api.guard import BODY_LIMITS, CONFIG_BODY_BYTES, JSON_BODY_BYTES
from api.rate_limit import ReadLimiter
from api.settings import ApiSettings, SettingsError
from stores.lake import Lake
from tests.test_api import SECRET, serve, settings_for

MB = 1_000_000
EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "form_and_steam.json"


def token(user: str) -> str:
    return mint_token(user, SECRET)


def config_body(name: str = "Form and steam") -> dict:
    """A valid model config: the documented example."""
    return json.loads(EXAMPLE.read_text()) | {"name": name, "sport": "basketball_nba"}


class CountingApp:
    """The app, counting the request body bytes it took from the server."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)  # type: ignore[operator]


class Served:
    def __init__(self, url: str, app: CountingApp) -> None:
        self.url, self.app = url, app

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def app_for(tmp: Path) -> FastAPI:
    return create_app(settings_for(tmp / "warehouse"), lake=Lake(root=str(tmp / "lake")))


@contextmanager
def serve_counting(app: FastAPI) -> Iterator[Served]:
    counting = CountingApp(app)
    with serve(counting) as url:  # type: ignore[arg-type]
        yield Served(url, counting)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_counting(app_for(tmp_path_factory.mktemp("limits"))) as served:
        yield served


def send(url: str, head: str, chunks: Iterable[bytes], chunked: bool = False) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, without the blank line), then ``chunks`` until the
    server answers; the body bytes sent and the whole response."""
    host, port = url.removeprefix("http://").split(":")
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else "\r\n"
    sent, response = 0, b""
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.settimeout(10)
        while not _complete(response):
            data = sock.recv(65_536)
            if not data:
                break
            response += data
    return sent, response


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return bool(lengths) and len(body) >= int(lengths[0].split(b":")[1])


def json_head(path: str, auth: str | None, length: int | None = None, method: str = "POST") -> str:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    head += f"Authorization: Bearer {auth}\r\n" if auth else ""
    return head + (f"Content-Length: {length}\r\n" if length is not None else "")


def json_chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    """A JSON document of exactly ``total`` bytes (one long string), ``size`` bytes at a time."""
    yield b'{"name": "'
    left = total - len(b'{"name": "') - len(b'"}')
    while left > 0:
        yield b"x" * min(size, left)
        left -= size
    yield b'"}'


def status_and_error(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head[9:12]), json.loads(body)["error"]


# --- the token before the body ---


@pytest.mark.parametrize("auth", [None, "not-a-token"])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_100_mb_body_without_a_valid_token_is_401_before_any_of_it_is_read(
    served: Served, auth: str | None, chunked: bool
) -> None:
    before = served.app.read
    started = time.monotonic()
    head = json_head("/models", auth, None if chunked else 100 * MB)
    sent, response = send(served.url, head, json_chunks(100 * MB), chunked)
    status, error = status_and_error(response)
    assert status == 401 and error["code"] == "unauthorized", error
    assert served.app.read == before  # the app took none of the body
    assert sent < 20 * MB and time.monotonic() - started < 10


def test_a_declared_body_over_the_limit_is_413_before_any_of_it_is_read(served: Served) -> None:
    before = served.app.read
    sent, response = send(served.url, json_head("/models", token("ann"), 10 * MB), json_chunks(10 * MB))
    status, error = status_and_error(response)
    assert status == 413 and error["code"] == "payload_too_large"
    assert error["message"] == f"the body of POST /models is limited to {CONFIG_BODY_BYTES:,} bytes"
    assert served.app.read == before and sent < 10 * MB


@pytest.mark.parametrize(
    ("method", "path", "route", "limit"),
    [
        ("POST", "/models", "/models", CONFIG_BODY_BYTES),
        ("PUT", "/models/ann--x-000000", "/models/{model_id}", CONFIG_BODY_BYTES),
        ("POST", "/marketplace/subscribe", "/marketplace/subscribe", JSON_BODY_BYTES),
        ("POST", "/models/ann--x-000000/analyze", "/models/{model_id}/analyze", JSON_BODY_BYTES),
    ],
)
def test_a_streamed_body_over_the_limit_is_413_once_it_passes_the_limit(
    served: Served, method: str, path: str, route: str, limit: int
) -> None:
    head = json_head(path, token("ann"), method=method)
    before = served.app.read
    sent, response = send(served.url, head, json_chunks(10 * MB, size=16_384), chunked=True)
    status, error = status_and_error(response)
    assert status == 413 and error["code"] == "payload_too_large", error
    assert error["message"] == f"the body of {method} {route} is limited to {limit:,} bytes"
    assert limit < served.app.read - before <= limit + 1 * MB  # the limit and at most one read more
    assert sent < 10 * MB


def test_a_body_at_the_limit_passes(served: Served) -> None:
    body = json.dumps(config_body(name="At the limit")).encode()
    exact = body + b" " * (CONFIG_BODY_BYTES - len(body))
    with served.client("ann") as ann:
        created = ann.post("/models", content=exact, headers={"Content-Type": "application/json"})
        assert created.status_code == 201, created.text
        over = ann.post("/models", content=exact + b" ", headers={"Content-Type": "application/json"})
    assert over.status_code == 413 and over.json()["error"]["code"] == "payload_too_large"


def test_uploads_still_take_100_mb(served: Served) -> None:
    """A 99 MB upload is read to the end by its route (which then finds the name field missing)."""
    part = b'--limits\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    row = b"game_id,value\n" + b"g1,1.5\n" * 149_998
    total = len(part) + 95 * len(row) + len(b"\r\n--limits--\r\n")
    head = (
        f"POST /datasets HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token('ann')}\r\n"
        f"Content-Type: multipart/form-data; boundary=limits\r\nContent-Length: {total}\r\n"
    )
    before = served.app.read
    _, response = send(served.url, head, [part, *[row] * 95, b"\r\n--limits--\r\n"])
    status, error = status_and_error(response)
    assert 99 * MB < total < 100 * MB and served.app.read - before == total
    assert status == 422 and "body.name" in error["message"], error


# --- the read limit ---


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Served, Clock]]:
    """An app allowing 3 reads per 60 s, on a clock the test moves."""
    app = app_for(tmp_path)
    clock = Clock()
    app.state.read_limiter = ReadLimiter(3, 60, clock)
    with serve_counting(app) as served:
        yield served, clock


def test_reads_over_the_limit_are_429_with_retry_after_until_the_window_refills(
    limited: tuple[Served, Clock],
) -> None:
    served, clock = limited
    with served.client("ann") as ann, served.client("bob") as bob:
        assert [ann.get("/models").status_code for _ in range(3)] == [200] * 3
        refused = ann.get("/models")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "20"
        assert refused.json()["error"] == {
            "code": "read_rate_limited",
            "message": "read rate limit of 3 reads per 60 s per user reached; retry in 20 s",
            "details": [],
        }
        assert bob.get("/models").status_code == 200  # each user has a limit of their own
        assert ann.post("/models", json=config_body()).status_code == 201  # writes are not reads
        clock.now += 19.5
        assert ann.get("/models").headers["Retry-After"] == "1"
        clock.now += 0.5
        assert [ann.get("/models").status_code for _ in range(2)] == [200, 429]
        clock.now += 60
        assert [ann.get("/models").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_reads_without_a_valid_token_are_limited_by_address_and_health_never(
    limited: tuple[Served, Clock],
) -> None:
    served, _ = limited
    with served.client(None) as anonymous, served.client("ann") as ann:
        assert [anonymous.get("/models").status_code for _ in range(4)] == [401, 401, 401, 429]
        forged = anonymous.get("/models", headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 429  # a bad token counts against the address
        assert all(anonymous.get("/health").status_code != 429 for _ in range(5))
        assert ann.get("/models").status_code == 200


def test_a_read_verifies_its_token_once(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    verify = api.auth.verify_claims

    def counted(token: str, *rest: Any) -> dict[str, Any]:
        calls.append(token)
        return verify(token, *rest)

    monkeypatch.setattr(api.auth, "verify_claims", counted)
    with served.client("ann") as ann:
        assert ann.get("/models").status_code == 200
    assert len(calls) == 1


def test_the_read_limit_comes_from_the_environment() -> None:
    env = {"ODDSFORGE_JWT_SECRET": SECRET}
    settings = ApiSettings.from_env(
        env | {"ODDSFORGE_READ_LIMIT": "50", "ODDSFORGE_READ_WINDOW_SECONDS": "2.5"}
    )
    assert (settings.read_limit, settings.read_window_seconds) == (50, 2.5)
    default = ApiSettings.from_env(env)
    assert (default.read_limit, default.read_window_seconds) == (1200, 60)
    assert create_app(ApiSettings.from_env(env | {"ODDSFORGE_READ_LIMIT": "0"})).state.read_limiter is None
    for bad in (
        {"ODDSFORGE_READ_LIMIT": "many"},
        {"ODDSFORGE_READ_LIMIT": "-1"},
        {"ODDSFORGE_READ_WINDOW_SECONDS": "0"},
    ):
        with pytest.raises(SettingsError):
            ApiSettings.from_env(env | bad)


def test_the_limiter_allows_a_burst_then_one_read_per_interval() -> None:
    clock = Clock()
    limiter = ReadLimiter(600, 60, clock)
    assert all(limiter.wait("a") == 0 for _ in range(600))
    assert limiter.wait("a") == pytest.approx(0.1)
    assert limiter.wait("b") == 0
    clock.now += 0.1
    assert limiter.wait("a") == 0 and limiter.wait("a") == pytest.approx(0.1)
    clock.now += 61  # both buckets are full again: the sweep forgets them
    assert limiter.wait("c") == 0
    assert len(limiter) == 1


# --- the OpenAPI document ---


def test_openapi_documents_the_body_limits_and_the_read_limit(served: Served) -> None:
    with served.client(None) as anonymous:
        doc = anonymous.get("/openapi.json").json()
    paths = doc["paths"]
    assert "1,048,576 bytes" in paths["/models"]["post"]["responses"]["413"]["description"]
    assert "1,048,576 bytes" in paths["/models/{model_id}"]["put"]["responses"]["413"]["description"]
    assert "65,536 bytes" in paths["/marketplace/subscribe"]["post"]["responses"]["413"]["description"]
    assert "413" not in paths["/models/{model_id}"]["delete"]["responses"]  # it takes no body
    assert "file_too_large" in paths["/datasets"]["post"]["responses"]["413"]["description"]  # its own
    read = paths["/marketplace/models"]["get"]["responses"]["429"]
    assert "1,200 reads per 60 s per user" in read["description"]
    assert read["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert read["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    assert "429" not in paths["/health"]["get"]["responses"]
    assert all(method.lower() in paths.get(path, {}) for method, path in BODY_LIMITS)  # no stale entry
