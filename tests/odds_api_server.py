"""A real HTTP server on 127.0.0.1 that answers like The Odds API v4 from its recorded bodies.

It serves the real response bodies in ``<repo>/../shared/data/odds_api_v4_samples`` on their v4
paths (any query; the historical body answers every ``date``), checks ``apiKey``, sets the quota
headers (cost per the v4 docs: markets x regions, x10 for historical; scores 2 with ``daysFrom``),
records each request, and can be scripted to fail: ``fail(status, times)`` or ``fail(401)`` for ever.
Errors have the v4 shape ``{"message", "error_code"}``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "odds_api_v4_samples"

SAMPLE_ROUTES = {
    "/v4/sports": "sports.json",
    "/v4/sports/basketball_nba/odds": "odds_basketball_nba_h2h_spreads_totals_american.json",
    "/v4/sports/icehockey_nhl/odds": "odds_icehockey_nhl_h2h_decimal.json",
    "/v4/sports/icehockey_nhl/scores": "scores_icehockey_nhl.json",
    "/v4/sports/icehockey_nhl/events": "events_icehockey_nhl.json",
    "/v4/historical/sports/americanfootball_nfl/odds": (
        "historical_odds_americanfootball_nfl_h2h_spreads_totals_american.json"
    ),
}


@dataclass(frozen=True)
class Recorded:
    path: str
    params: dict[str, str]
    status: int


@dataclass
class _Failure:
    status: int
    remaining: int | None
    """Failures left; None fails for ever."""
    retry_after: str | None


class OddsApiServer:
    """Context manager: ``with OddsApiServer() as server: server.url``."""

    def __init__(self, api_key: str = "test-key-0123456789abcdef", quota: int = 20_000) -> None:
        self.api_key = api_key
        self.used = 0
        self.quota = quota
        self.requests: list[Recorded] = []
        self.bodies: dict[str, bytes] = {
            path: (SAMPLES / name).read_bytes() for path, name in SAMPLE_ROUTES.items()
        }
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self, path: str, body: Any) -> None:
        """Answer ``path`` with ``body`` (JSON-encoded), e.g. a sport without a recorded body."""
        self.bodies[path] = json.dumps(body).encode()

    def fail(self, status: int, times: int | None = None, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests (all when None) with ``status`` before serving again."""
        with self._lock:
            self._failures.append(_Failure(status, times, retry_after))

    def __enter__(self) -> OddsApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @staticmethod
    def cost(path: str, params: dict[str, str]) -> int:
        """Quota units of a successful request, as the v4 docs price them."""
        if path.endswith("/scores"):
            return 2 if "daysFrom" in params else 1
        if not path.endswith("/odds"):
            return 0
        markets = len(params.get("markets", "h2h").split(","))
        regions = 1 if "bookmakers" in params else len(params.get("regions", "us").split(","))
        return markets * regions * (10 if path.startswith("/v4/historical/") else 1)

    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            failure = self._failures[0] if self._failures else None
            if failure and failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.pop(0)
        if params.get("apiKey") != self.api_key or (failure and failure.status == 401):
            message = "API key is not valid or is missing. Check your key or get one from the-odds-api.com"
            return 401, {}, json.dumps({"message": message, "error_code": "INVALID_KEY"}).encode()
        quota_headers = {
            "x-requests-used": str(self.used),
            "x-requests-remaining": str(self.quota - self.used),
            "x-requests-last": "0",
        }
        if failure:
            headers = quota_headers | ({"Retry-After": failure.retry_after} if failure.retry_after else {})
            message = {429: "Frequency limit exceeded", 500: "Internal server error"}.get(
                failure.status, "error"
            )
            return failure.status, headers, json.dumps({"message": message, "error_code": "TEST"}).encode()
        if path not in self.bodies:
            body = {"message": f"Unknown path {path}", "error_code": "UNKNOWN_SPORT"}
            return 404, quota_headers, json.dumps(body).encode()
        with self._lock:
            last = self.cost(path, params)
            self.used += last
            quota_headers = {
                "x-requests-used": str(self.used),
                "x-requests-remaining": str(self.quota - self.used),
                "x-requests-last": str(last),
            }
        return 200, quota_headers, self.bodies[path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                split = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(split.query).items()}
                status, headers, body = server._answer(split.path, params)
                with server._lock:
                    server.requests.append(Recorded(split.path, params, status))
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the default access log would print request URLs, key included."""

        return Handler
