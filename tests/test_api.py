"""The API over real HTTP: uvicorn on loopback, real DuckDB snapshot files, real signed tokens."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb
import httpx
import jwt
import polars as pl
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.auth import AUDIENCE, DEV_BIRTHDATE, DEV_REGION, ISSUER, InvalidTokenError, mint_token, verify_token
from api.serving import ServingStore
from api.settings import ApiSettings, SettingsError
from cli.local_api import serve as serve_api
from domain.sports import sport_info
from domain.sports.ids import game_id
from domain.tables.schemas import GAMES, LINES, conform

SECRET = "test-secret-" + "x" * 60
OPENING_DAY = dt.date(2018, 10, 16)
BUSY_DAY = dt.date(2018, 10, 20)
NBA = "basketball_nba"


# --- snapshot publishing (the pipeline's side of the contract, reduced to what the API reads) ---


def publish(serving_dir: Path, games: pl.DataFrame, lines: pl.DataFrame) -> str:
    """Write a new immutable snapshot file, then swap ``CURRENT`` to it atomically."""
    serving_dir.mkdir(parents=True, exist_ok=True)
    name = f"serving-{uuid.uuid4().hex}.duckdb"
    with duckdb.connect(str(serving_dir / name)) as con:
        con.register("games_frame", conform(games, GAMES))
        con.register("lines_frame", conform(lines, LINES))
        con.execute("CREATE TABLE games AS SELECT * FROM games_frame")
        con.execute("CREATE TABLE lines AS SELECT * FROM lines_frame")
    tmp = serving_dir / f".CURRENT.{uuid.uuid4().hex}"
    tmp.write_text(name)
    os.replace(tmp, serving_dir / "CURRENT")
    return name


def utc(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(hours=hour, minutes=minute)


def game_row(day: dt.date, away: str, home: str, start: dt.datetime, sport: str = NBA, **extra) -> dict:
    row = {
        "game_id": game_id(sport, day, away, home),
        "sport": sport,
        "season": "2018-19" if sport == NBA else "2018",
        "game_date": day,
        "commence_time": start,
        "home_team": home,
        "away_team": away,
        "completed": False,
        "neutral": False,
        "source": "test",
    }
    return row | extra


def opening_day_games() -> pl.DataFrame:
    rows = [
        # 00:00 UTC on the 17th is still the evening of the 16th in the US: the local date counts.
        game_row(
            OPENING_DAY,
            "OKC",
            "GSW",
            utc(OPENING_DAY, 26, 30),
            home_score=108,
            away_score=100,
            completed=True,
        ),
        game_row(
            OPENING_DAY, "PHI", "BOS", utc(OPENING_DAY, 23, 0), home_score=105, away_score=87, completed=True
        ),
        game_row(OPENING_DAY + dt.timedelta(days=1), "CHA", "MIL", utc(OPENING_DAY, 23, 30)),
        game_row(OPENING_DAY, "PHI", "ATL", utc(OPENING_DAY, 23, 0), sport="americanfootball_nfl"),
    ]
    teams = sorted(sport_info(NBA).teams)
    for i in range(15):  # every team plays on the busy day, with kick-off times that tie
        rows.append(game_row(BUSY_DAY, teams[2 * i], teams[2 * i + 1], utc(BUSY_DAY, 22 + i % 3)))
    return pl.DataFrame(rows)


PHI_BOS = game_id(NBA, OPENING_DAY, "PHI", "BOS")


def line_row(gid: str, bookmaker: str, market: str, opening: float | None, closing: float | None) -> dict:
    return {
        "game_id": gid,
        "sport": NBA,
        "game_date": OPENING_DAY,
        "bookmaker": bookmaker,
        "market": market,
        "n_snapshots": 7,
        "opening_time": utc(OPENING_DAY, 12),
        "opening_line": opening,
        "opening_price_first": 1.91,
        "opening_price_second": 1.91,
        "closing_time": utc(OPENING_DAY, 22, 55),
        "closing_line": closing,
        "closing_price_first": 1.87,
        "closing_price_second": 1.95,
        "priced_by_assumption": False,
    }


def opening_day_lines(closing_spread: float = -5.5) -> pl.DataFrame:
    return pl.DataFrame(
        [
            line_row(PHI_BOS, "pinnacle", "spreads", -4.5, closing_spread),
            line_row(PHI_BOS, "draftkings", "spreads", -4.0, -5.0),
            line_row(PHI_BOS, "pinnacle", "totals", 209.5, 211.0),
            line_row(PHI_BOS, "pinnacle", "h2h", None, None),
            line_row(game_id(NBA, OPENING_DAY, "OKC", "GSW"), "pinnacle", "spreads", -12.0, -11.5),
        ]
    )


# --- a real server ---


def serve(app: FastAPI) -> AbstractContextManager[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yield its base URL."""
    return serve_api(app)


def settings_for(warehouse: Path) -> ApiSettings:
    return ApiSettings(warehouse_dir=warehouse, jwt_secret=SECRET, snapshot_check_seconds=0.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    """A server over one published snapshot, an authenticated client, and the snapshot's name."""
    warehouse = tmp_path_factory.mktemp("warehouse")
    name = publish(warehouse / "serving", opening_day_games(), opening_day_lines())
    app = create_app(settings_for(warehouse))

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    headers = {"Authorization": f"Bearer {mint_token('user-1', SECRET)}"}
    with serve(app) as url, httpx.Client(base_url=url, headers=headers, timeout=5) as client:
        yield client, name


@pytest.fixture
def client(served: tuple[httpx.Client, str]) -> httpx.Client:
    return served[0]


def get_json(client: httpx.Client, path: str, status: int = 200, **params) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


# --- health, openapi ---


def test_health_names_the_snapshot_without_auth(served: tuple[httpx.Client, str]) -> None:
    client, name = served
    body = httpx.get(f"{client.base_url}/health").json()
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    assert body["snapshot"]["name"] == name
    assert 0 <= body["snapshot"]["age_seconds"] < 60
    published = dt.datetime.fromisoformat(body["snapshot"]["published_at"])
    assert published.utcoffset() == dt.timedelta(0)


def test_openapi_documents_models_errors_and_bearer_auth(client: httpx.Client) -> None:
    doc = get_json(client, "/openapi.json")
    assert doc["info"]["title"] == "OddsForge API"
    assert {"Game", "Line", "LinePoint", "GameLines", "ErrorBody", "Page_Game_", "Health"} <= set(
        doc["components"]["schemas"]
    )
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    games = doc["paths"]["/sports/{sport}/games"]["get"]
    assert games["security"] == [{"HTTPBearer": []}]
    assert games["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Page_Game_")
    for status in ("401", "422", "503"):
        assert games["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith(
            "ErrorBody"
        )
    sport = next(p for p in games["parameters"] if p["name"] == "sport")
    sport_schema = doc["components"]["schemas"][sport["schema"]["$ref"].rsplit("/", 1)[1]]
    assert sorted(sport_schema["enum"]) == ["americanfootball_nfl", "basketball_nba"]
    assert "404" in doc["paths"]["/games/{game_id}/lines"]["get"]["responses"]
    assert "security" not in doc["paths"]["/health"]["get"]


# --- auth ---


def _claims(**overrides) -> dict:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + dt.timedelta(hours=1)}
    return {k: v for k, v in (claims | overrides).items() if v is not None}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, default=int).encode()).decode().rstrip("=")


def _unsigned_token() -> str:
    claims = _claims()
    claims["exp"] = int(claims["exp"].timestamp())
    claims["iat"] = int(claims["iat"].timestamp())
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _living(lifetime: dt.timedelta) -> str:
    now = dt.datetime.now(dt.UTC)
    return jwt.encode(_claims(iat=now, exp=now + lifetime), SECRET, algorithm="HS256")


BAD_TOKENS = {
    "bad signature": lambda: mint_token("user-1", "another-secret-" + "y" * 40),
    "wrong audience": lambda: jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"),
    "wrong issuer": lambda: jwt.encode(_claims(iss="evil"), SECRET, algorithm="HS256"),
    "expired": lambda: mint_token(
        "user-1", SECRET, ttl_seconds=3600, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    ),
    "alg none": _unsigned_token,
    "no exp": lambda: jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
    "no iat": lambda: jwt.encode(_claims(iat=None), SECRET, algorithm="HS256"),
    "lifetime over the maximum": lambda: _living(dt.timedelta(hours=24, minutes=1)),
    "issued in the future": lambda: jwt.encode(
        _claims(iat=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)), SECRET, algorithm="HS256"
    ),
    "no subject": lambda: jwt.encode(_claims(sub=None), SECRET, algorithm="HS256"),
    "HS512 with the right key": lambda: jwt.encode(_claims(), SECRET, algorithm="HS512"),
    "not a jwt": lambda: "abc.def.ghi",
}


@pytest.mark.parametrize("reason", list(BAD_TOKENS))
def test_bad_tokens_get_401(client: httpx.Client, reason: str) -> None:
    response = httpx.get(
        f"{client.base_url}/sports/{NBA}/games",
        params={"date": "2018-10-16"},
        headers={"Authorization": f"Bearer {BAD_TOKENS[reason]()}"},
    )
    assert response.status_code == 401, reason
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("path", [f"/sports/{NBA}/games?date=2018-10-16", f"/games/{PHI_BOS}/lines"])
def test_missing_token_gets_401(client: httpx.Client, path: str) -> None:
    response = httpx.get(f"{client.base_url}{path}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json() == {
        "error": {"code": "unauthorized", "message": "missing bearer token", "details": []}
    }


def test_expired_token_message_says_expired(client: httpx.Client) -> None:
    token = mint_token("u", SECRET, ttl_seconds=60, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    response = httpx.get(
        f"{client.base_url}/games/{PHI_BOS}/lines", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["error"]["message"] == "token has expired"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("no exp", "token lacks the 'exp' claim"),
        (
            "lifetime over the maximum",
            "token lifetime (exp - iat) is 24.0167 h; this API accepts at most 24 h",
        ),
    ],
)
def test_token_lifetime_messages_say_why(client: httpx.Client, reason: str, message: str) -> None:
    headers = {"Authorization": f"Bearer {BAD_TOKENS[reason]()}"}
    response = httpx.get(f"{client.base_url}/games/{PHI_BOS}/lines", headers=headers)
    assert (response.status_code, response.json()["error"]["message"]) == (401, message)


def test_the_maximum_lifetime_is_the_settings() -> None:
    token = mint_token("u", SECRET, ttl_seconds=7200)
    assert verify_token(token, SECRET, max_ttl_seconds=7200) == "u"
    with pytest.raises(InvalidTokenError, match="is 2 h; this API accepts at most 1 h"):
        verify_token(token, SECRET, max_ttl_seconds=3600)


def test_minted_token_round_trips() -> None:
    now = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    token = mint_token("user-42", SECRET, ttl_seconds=600, now=now)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, options={"verify_exp": False})
    assert claims == {
        "sub": "user-42",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": 1577836800,
        "exp": 1577837400,
        "birthdate": DEV_BIRTHDATE,
        "region": DEV_REGION,
    }
    bare = mint_token("user-42", SECRET, birthdate=None, region=None)
    assert {"birthdate", "region"}.isdisjoint(jwt.decode(bare, options={"verify_signature": False}))
    assert verify_token(mint_token("user-42", SECRET), SECRET) == "user-42"


# --- games and lines ---


def test_games_for_a_date_in_commence_order(client: httpx.Client) -> None:
    body = get_json(client, f"/sports/{NBA}/games", date="2018-10-16")
    assert body["limit"] == 50
    assert body["next_cursor"] is None
    assert [g["game_id"] for g in body["items"]] == [PHI_BOS, "nba_20181016_OKC_GSW"]
    first = body["items"][0]
    assert first == {
        "game_id": PHI_BOS,
        "sport": NBA,
        "season": "2018-19",
        "game_date": "2018-10-16",
        "commence_time": "2018-10-16T23:00:00Z",
        "home_team": "BOS",
        "away_team": "PHI",
        "home_score": 105,
        "away_score": 87,
        "completed": True,
        "neutral": False,
    }


def test_games_of_another_sport_are_separate(client: httpx.Client) -> None:
    body = get_json(client, "/sports/americanfootball_nfl/games", date="2018-10-16")
    assert [g["game_id"] for g in body["items"]] == ["nfl_20181016_PHI_ATL"]
    assert get_json(client, f"/sports/{NBA}/games", date="2018-10-18")["items"] == []


def test_lines_of_a_game_with_opening_and_closing(client: httpx.Client) -> None:
    body = get_json(client, f"/games/{PHI_BOS}/lines")
    assert body["game"]["game_id"] == PHI_BOS
    keys = [(line["market"], line["bookmaker"]) for line in body["lines"]]
    assert keys == [
        ("h2h", "pinnacle"),
        ("spreads", "draftkings"),
        ("spreads", "pinnacle"),
        ("totals", "pinnacle"),
    ]
    spread = body["lines"][2]
    assert spread["opening"] == {
        "time": "2018-10-16T12:00:00Z",
        "line": -4.5,
        "price_first": 1.91,
        "price_second": 1.91,
    }
    assert spread["closing"]["line"] == -5.5
    assert spread["closing"]["time"] == "2018-10-16T22:55:00Z"
    assert spread["n_snapshots"] == 7
    assert body["lines"][0]["opening"]["line"] is None
    totals = get_json(client, f"/games/{PHI_BOS}/lines", market="totals")["lines"]
    assert [(t["opening"]["line"], t["closing"]["line"]) for t in totals] == [(209.5, 211.0)]


def test_known_game_without_lines_has_an_empty_list(client: httpx.Client) -> None:
    body = get_json(client, "/games/nba_20181017_CHA_MIL/lines")
    assert body["game"]["away_team"] == "CHA"
    assert body["lines"] == []


def test_unknown_game_is_404_with_the_error_shape(client: httpx.Client) -> None:
    body = get_json(client, "/games/nba_20181016_XXX_YYY/lines", status=404)
    assert body == {
        "error": {"code": "not_found", "message": "no game with id 'nba_20181016_XXX_YYY'", "details": []}
    }


def test_unknown_route_uses_the_error_shape(client: httpx.Client) -> None:
    body = get_json(client, "/no/such/route", status=404)
    assert body["error"]["code"] == "not_found"
    assert body["error"]["details"] == []


def test_unhandled_error_is_500_without_internals(client: httpx.Client) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal server error", "details": []}
    }
    assert "hunter2" not in response.text
    assert client.get("/health").status_code == 200  # the keep-alive connection survived


# --- validation ---


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (f"/sports/{NBA}/games", {"date": "2018-13-45"}, "query.date"),
        (f"/sports/{NBA}/games", {}, "query.date"),
        ("/sports/curling/games", {"date": "2018-10-16"}, "path.sport"),
        (f"/sports/{NBA}/games", {"date": "2018-10-16", "limit": 0}, "query.limit"),
        (f"/sports/{NBA}/games", {"date": "2018-10-16", "cursor": "not-a-cursor"}, "query.cursor"),
        (f"/games/{PHI_BOS}/lines", {"market": "player_points"}, "query.market"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    client: httpx.Client, path: str, params: dict, field: str
) -> None:
    body = get_json(client, path, status=422, **params)
    assert body["error"]["code"] == "validation_error"
    assert [d["field"] for d in body["error"]["details"]] == [field]


def test_limit_over_the_cap_is_422_naming_the_cap(client: httpx.Client) -> None:
    body = get_json(client, f"/sports/{NBA}/games", status=422, date="2018-10-16", limit=501)
    (detail,) = body["error"]["details"]
    assert detail["field"] == "query.limit"
    assert "500" in detail["message"]
    assert get_json(client, f"/sports/{NBA}/games", date="2018-10-16", limit=500)["limit"] == 500


def test_forged_cursor_with_a_bad_time_is_422(client: httpx.Client) -> None:
    cursor = _b64(["yesterday", "nba_x"])  # type: ignore[arg-type]
    body = get_json(client, f"/sports/{NBA}/games", status=422, date="2018-10-20", cursor=cursor)
    assert body["error"]["details"][0]["field"] == "query.cursor"


# --- pagination ---


def test_pagination_walks_every_game_once(client: httpx.Client) -> None:
    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params = {"date": "2018-10-20", "limit": 4} | ({"cursor": cursor} if cursor else {})
        body = get_json(client, f"/sports/{NBA}/games", **params)
        pages += 1
        assert len(body["items"]) <= 4
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    ids = [g["game_id"] for g in seen]
    assert pages == 4
    assert len(ids) == len(set(ids)) == 15
    order = [(g["commence_time"], g["game_id"]) for g in seen]
    assert order == sorted(order)
    assert len({g["commence_time"] for g in seen}) == 3  # ties on the sort key crossed page borders


# --- snapshots ---


def test_503_before_any_snapshot_then_data_once_published(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    headers = {"Authorization": f"Bearer {mint_token('u', SECRET)}"}
    with serve(app) as url, httpx.Client(base_url=url, headers=headers, timeout=5) as client:
        body = get_json(client, f"/sports/{NBA}/games", status=503, date="2018-10-16")
        assert body["error"]["code"] == "no_snapshot"
        assert "oddsforge demo" in body["error"]["message"]
        assert str(tmp_path) not in body["error"]["message"]
        assert get_json(client, "/health") == {"status": "no_snapshot", "version": "0.1.0", "snapshot": None}

        publish(tmp_path / "serving", opening_day_games(), opening_day_lines())
        time.sleep(0.15)
        assert len(get_json(client, f"/sports/{NBA}/games", date="2018-10-16")["items"]) == 2


def test_new_snapshot_is_served_within_a_second(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    first = publish(serving, opening_day_games(), opening_day_lines(closing_spread=-5.5))
    app = create_app(ApiSettings(warehouse_dir=tmp_path, jwt_secret=SECRET))  # default 0.5 s re-check
    headers = {"Authorization": f"Bearer {mint_token('u', SECRET)}"}
    with serve(app) as url, httpx.Client(base_url=url, headers=headers, timeout=5) as client:

        def closing_spread() -> float:
            lines = get_json(client, f"/games/{PHI_BOS}/lines", market="spreads")["lines"]
            return next(line["closing"]["line"] for line in lines if line["bookmaker"] == "pinnacle")

        assert closing_spread() == -5.5
        second = publish(serving, opening_day_games(), opening_day_lines(closing_spread=-7.0))
        published = time.monotonic()
        while closing_spread() != -7.0:
            assert time.monotonic() - published < 1.0, "new snapshot not served within 1 s"
            time.sleep(0.02)
        assert get_json(client, "/health")["snapshot"]["name"] == second != first


def test_store_keeps_an_in_flight_snapshot_open_until_it_is_released(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    publish(serving, opening_day_games(), opening_day_lines(closing_spread=-5.5))
    store = ServingStore(serving, check_seconds=0.0)
    spread_sql = (
        "SELECT closing_line FROM lines WHERE game_id = ? AND bookmaker = 'pinnacle' AND market = 'spreads'"
    )
    with store.cursor() as old:
        publish(serving, opening_day_games(), opening_day_lines(closing_spread=-7.0))
        with store.cursor() as new:
            assert new.execute(spread_sql, [PHI_BOS]).fetchone() == (-7.0,)
        assert old.execute(spread_sql, [PHI_BOS]).fetchone() == (-5.5,)
    with pytest.raises(duckdb.ConnectionException):
        old.execute("SELECT 1")
    store.close()


def test_concurrent_requests_during_swaps_never_fail(tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    spreads = [-5.5, -6.0, -6.5, -7.0, -7.5, -8.0]
    publish(serving, opening_day_games(), opening_day_lines(closing_spread=spreads[0]))
    app = create_app(ApiSettings(warehouse_dir=tmp_path, jwt_secret=SECRET, snapshot_check_seconds=0.0))
    headers = {"Authorization": f"Bearer {mint_token('u', SECRET)}"}
    failures: list[str] = []
    seen: set[float] = set()
    stop = threading.Event()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=5) as client:
            while not stop.is_set():
                response = client.get(f"/games/{PHI_BOS}/lines", params={"market": "spreads"})
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                seen.add(response.json()["lines"][1]["closing"]["line"])

    with serve(app) as url:
        workers = [threading.Thread(target=hammer, args=(url,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for spread in spreads[1:]:
            time.sleep(0.05)
            publish(serving, opening_day_games(), opening_day_lines(closing_spread=spread))
        time.sleep(0.1)
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert spreads[-1] in seen
    assert seen <= set(spreads)


# --- imports ---


def test_importing_the_api_does_not_import_dagster() -> None:
    """The API uses the plain lake, warehouse and Stripe classes; Dagster (seconds to import) is the
    pipeline's alone. A fresh interpreter: this session has imported Dagster long ago."""
    script = "import api.app, sys; assert 'dagster' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- settings ---


def test_settings_from_env(tmp_path: Path) -> None:
    settings = ApiSettings.from_env({"ODDSFORGE_WAREHOUSE_DIR": "/srv/wh", "ODDSFORGE_JWT_SECRET": SECRET})
    assert settings.serving_dir == Path("/srv/wh/serving")
    assert settings.jwt_secret == SECRET
    assert not settings.uses_dev_secret
    assert settings.token_max_ttl_seconds == 24 * 3600
    assert ApiSettings.from_env({"ODDSFORGE_WAREHOUSE_DIR": str(tmp_path)}).uses_dev_secret
    shorter = ApiSettings.from_env({"ODDSFORGE_JWT_SECRET": SECRET, "ODDSFORGE_TOKEN_MAX_HOURS": "1.5"})
    assert shorter.token_max_ttl_seconds == 5400


@pytest.mark.parametrize(
    "env",
    [
        {"ODDSFORGE_ENV": "production"},
        {"ODDSFORGE_ENV": "production", "ODDSFORGE_JWT_SECRET": "short"},
        {"ODDSFORGE_JWT_SECRET": "short"},
        {"ODDSFORGE_ENV": "staging", "ODDSFORGE_JWT_SECRET": SECRET},
        {"ODDSFORGE_ENV": "staging"},
        {"ODDSFORGE_JWT_SECRET": SECRET, "ODDSFORGE_TOKEN_MAX_HOURS": "0"},
        {"ODDSFORGE_JWT_SECRET": SECRET, "ODDSFORGE_TOKEN_MAX_HOURS": "a day"},
    ],
)
def test_unsafe_settings_refuse_to_start(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        ApiSettings.from_env(env | {"ODDSFORGE_WAREHOUSE_DIR": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []  # no development secret is generated for them
