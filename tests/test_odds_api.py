"""The Odds API v4: parsing real response bodies, and the feed against a real local HTTP server.

Expected values below were read off the sample JSON by hand and converted from American prices
(-118 -> 1 + 100/118, +110 -> 2.10).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl
import pytest

from domain.formats.odds_api_v4 import (
    detect_odds_format,
    parse_historical_odds,
    parse_odds,
    parse_odds_records,
    parse_score_records,
    parse_scores,
    unknown_teams,
    unwrap_historical,
)
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS
from resources.odds_api import OddsApiError, OddsApiFeed
from tests.odds_api_server import SAMPLES, OddsApiServer

if not SAMPLES.is_dir():
    pytest.skip(f"Odds API v4 sample bodies not found at {SAMPLES}", allow_module_level=True)

UTC = dt.UTC
NBA_ODDS = "odds_basketball_nba_h2h_spreads_totals_american.json"
NFL_HISTORICAL = "historical_odds_americanfootball_nfl_h2h_spreads_totals_american.json"
NHL_ODDS = "odds_icehockey_nhl_h2h_decimal.json"
NHL_SCORES = "scores_icehockey_nhl.json"
NBA_PHI = "63330b334dfcd7aa56e69624617bc273"  # Brooklyn Nets @ Philadelphia 76ers, 2022-11-23T00:32:18Z
NBA_PHX = "79146e7e3a1bb2c575595bfe652e2e4b"  # Los Angeles Lakers @ Phoenix Suns, 2022-11-23T03:00:00Z
NBA_REQUEST = dt.datetime(2022, 11, 23, 1, 5, 15, tzinfo=UTC)


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def row(df: pl.DataFrame, **keys: Any) -> dict[str, Any]:
    (found,) = df.filter(**keys).to_dicts()
    return found


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _nba_event(event_id: str, **changes: Any) -> dict[str, Any]:
    """A hand-made /scores event with the teams and start of a real sample event."""
    (event,) = [e for e in sample(NBA_ODDS) if e["id"] == event_id]
    base = {
        k: event[k] for k in ("id", "sport_key", "sport_title", "commence_time", "home_team", "away_team")
    }
    return base | {"completed": False, "scores": None, "last_update": None} | changes


# ---------------------------------------------------------------- parsing


def test_nba_sample_rows_follow_the_line_conventions_in_decimal() -> None:
    events = sample(NBA_ODDS)
    odds = parse_odds(events, "basketball_nba", NBA_REQUEST, "test", odds_format="american")

    assert odds.schema == pl.Schema(ODDS_SNAPSHOTS)
    markets = [m for e in events for b in e["bookmakers"] for m in b["markets"]]
    assert odds.height == sum(m["key"] in ("h2h", "spreads", "totals") for m in markets) == 427
    assert set(odds["market"]) == {"h2h", "spreads", "totals"}  # betfair's h2h_lay is left out
    assert odds.select("game_id", "bookmaker", "market").is_duplicated().sum() == 0

    # fanduel, BKN @ PHI: 19:32 ET on 2022-11-22 (00:32 UTC on the 23rd).
    phi = dict(game_id="nba_20221122_BKN_PHI", bookmaker="fanduel")
    h2h = row(odds, **phi, market="h2h")  # PHI +110, BKN -140
    assert (h2h["line"], h2h["price_first"], h2h["price_second"]) == (
        None,
        pytest.approx(2.10),
        pytest.approx(1 + 100 / 140),
    )
    assert h2h["game_date"] == dt.date(2022, 11, 22)
    assert h2h["snapshot_time"] == ts("2022-11-23T01:05:10+00:00")  # bookmaker last_update
    spread = row(odds, **phi, market="spreads")  # PHI +2.5 at -118, BKN -2.5 at -110
    assert spread["line"] == 2.5
    assert spread["price_first"] == pytest.approx(1 + 100 / 118)
    assert spread["price_second"] == pytest.approx(1 + 100 / 110)
    total = row(odds, **phi, market="totals")  # Over 219.5 at -115, Under at -113
    assert total["line"] == 219.5
    assert total["price_first"] == pytest.approx(1 + 100 / 115)
    assert total["price_second"] == pytest.approx(1 + 100 / 113)

    # draftkings, LAL @ PHX: 22:00 ET on the 22nd; its last_update 01:05:20 is after the request.
    phx = dict(game_id="nba_20221122_LAL_PHX", bookmaker="draftkings")
    h2h = row(odds, **phx, market="h2h")  # PHX -435, LAL +350
    assert h2h["price_first"] == pytest.approx(1 + 100 / 435)
    assert h2h["price_second"] == pytest.approx(4.5)
    assert h2h["snapshot_time"] == NBA_REQUEST
    spread = row(odds, **phx, market="spreads")  # PHX -9.5 at -110
    assert (spread["line"], spread["price_first"]) == (-9.5, pytest.approx(1 + 100 / 110))
    total = row(odds, **phx, market="totals")  # Over 227 at -110
    assert (total["line"], total["price_first"]) == (227.0, pytest.approx(1 + 100 / 110))

    assert odds["snapshot_time"].max() <= NBA_REQUEST
    assert not odds["priced_by_assumption"].any()
    assert odds["source"].unique().to_list() == ["test"]


def test_snapshot_time_is_the_request_time_when_the_book_has_no_last_update() -> None:
    (event,) = copy.deepcopy([e for e in sample(NBA_ODDS) if e["id"] == NBA_PHI])
    for book in event["bookmakers"]:
        del book["last_update"]
    odds = parse_odds([event], "basketball_nba", NBA_REQUEST, "test")
    assert odds["snapshot_time"].unique().to_list() == [NBA_REQUEST]


def test_market_last_update_wins_over_the_bookmaker_one_and_decimal_is_detected() -> None:
    events = sample(NHL_ODDS)
    records = parse_odds_records(events, dt.datetime(2024, 3, 21, 15, tzinfo=UTC))
    assert (
        detect_odds_format(
            pl.Series([o["price"] for o in events[0]["bookmakers"][0]["markets"][0]["outcomes"]])
        )
        == "decimal"
    )
    # bovada, NYR @ BOS: bookmaker last_update 14:09:04, market last_update 14:09:03; BOS 1.69, NYR 2.25.
    bovada = row(records, event_id="b33f30ad5541b19794da293edee78bd3", bookmaker="bovada")
    assert (bovada["home_team"], bovada["market"]) == ("Boston Bruins", "h2h")
    assert (bovada["price_first"], bovada["price_second"]) == (1.69, 2.25)
    assert bovada["snapshot_time"] == ts("2024-03-21T14:09:03+00:00")
    with pytest.raises(ValueError, match="looks decimal"):
        parse_odds_records(events, dt.datetime(2024, 3, 21, 15, tzinfo=UTC), odds_format="american")
    with pytest.raises(ValueError, match="looks American"):
        parse_odds_records(sample(NBA_ODDS), NBA_REQUEST, odds_format="decimal")


def test_sports_outside_the_catalogue_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="icehockey_nhl"):
        parse_odds(sample(NHL_ODDS), "icehockey_nhl", dt.datetime(2024, 3, 21, 15, tzinfo=UTC), "test")
    with pytest.raises(ValueError, match="icehockey_nhl"):
        parse_scores(sample(NHL_SCORES), "icehockey_nhl", "test")
    with pytest.raises(ValueError, match=r"\['icehockey_nhl'\] in a body parsed as 'basketball_nba'"):
        parse_scores(sample(NHL_SCORES), "basketball_nba", "test")


def test_naive_request_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_odds(sample(NBA_ODDS), "basketball_nba", dt.datetime(2022, 11, 23, 1), "test")


def test_nfl_historical_body_uses_the_served_timestamp_and_historical_team_names() -> None:
    body = sample(NFL_HISTORICAL)
    snapshot = unwrap_historical(body)
    assert snapshot.timestamp == ts("2021-11-25T11:55:00+00:00")
    assert snapshot.previous_timestamp == ts("2021-11-25T11:45:00+00:00")
    assert snapshot.next_timestamp == ts("2021-11-25T12:05:00+00:00")
    assert len(snapshot.data) == 15

    odds = parse_historical_odds(body, "americanfootball_nfl", "test")
    assert odds.schema == pl.Schema(ODDS_SNAPSHOTS)
    assert odds.height == 803
    assert odds["snapshot_time"].max() <= snapshot.timestamp
    assert odds["game_id"].n_unique() == 15
    # "Washington Football Team" (its 2020-21 name) and an 01:20 UTC kickoff on the ET day before.
    assert {"nfl_20211129_SEA_WAS", "nfl_20211125_BUF_NO"} <= set(odds["game_id"])

    # betonlineag, CHI @ DET: DET +3 at -125 / CHI at +104; Over 41 at -119 / Under -101; DET +125 / CHI -145.
    det = dict(game_id="nfl_20211125_CHI_DET", bookmaker="betonlineag")
    spread = row(odds, **det, market="spreads")
    assert (spread["line"], spread["price_first"], spread["price_second"]) == (
        3.0,
        pytest.approx(1.8),
        pytest.approx(2.04),
    )
    assert spread["snapshot_time"] == ts("2021-11-25T11:49:47+00:00")
    total = row(odds, **det, market="totals")
    assert (total["line"], total["price_first"], total["price_second"]) == (
        41.0,
        pytest.approx(1 + 100 / 119),
        pytest.approx(1 + 100 / 101),
    )
    h2h = row(odds, **det, market="h2h")
    assert (h2h["price_first"], h2h["price_second"]) == (pytest.approx(2.25), pytest.approx(1 + 100 / 145))


def test_nhl_scores_records_parse_string_scores_and_upcoming_games() -> None:
    scores = parse_score_records(sample(NHL_SCORES))
    assert scores.height == 33
    assert scores["completed"].sum() == 18
    calgary = row(scores, event_id="2aeab0a9d68f90299e8f38870d1d816c")
    assert (calgary["home_team"], calgary["home_score"], calgary["away_score"]) == ("Calgary Flames", 2, 5)
    assert calgary["completed"] is True
    upcoming = row(scores, event_id="b33f30ad5541b19794da293edee78bd3")
    assert (upcoming["completed"], upcoming["home_score"], upcoming["away_score"]) == (False, None, None)
    assert upcoming["commence_time"] == ts("2024-03-21T23:00:00+00:00")


def test_nba_scores_become_game_results() -> None:
    # No NBA /scores body was recorded: hand-made scores on two real sample events.
    events = [
        _nba_event(
            NBA_PHI,
            completed=True,
            scores=[
                {"name": "Brooklyn Nets", "score": "106"},
                {"name": "Philadelphia 76ers", "score": "115"},
            ],
        ),
        _nba_event(NBA_PHX),
    ]
    games = parse_scores(events, "basketball_nba", "test")
    assert games.schema == pl.Schema(GAME_RESULTS)
    phi = row(games, source_event_id=NBA_PHI)
    assert phi["game_id"] == "nba_20221122_BKN_PHI"
    assert (phi["home_team"], phi["away_team"], phi["home_score"], phi["away_score"]) == (
        "PHI",
        "BKN",
        115,
        106,
    )
    assert (phi["completed"], phi["season"], phi["neutral"]) == (True, "2022-23", None)
    phx = row(games, source_event_id=NBA_PHX)
    assert (phx["completed"], phx["home_score"]) == (False, None)


def test_unknown_team_names_raise_or_drop() -> None:
    exhibition = _nba_event(NBA_PHX, id="0" * 32, away_team="Real Madrid")
    events = [_nba_event(NBA_PHI), exhibition]
    assert unknown_teams(events, "basketball_nba") == ["Real Madrid"]
    with pytest.raises(ValueError, match="Real Madrid"):
        parse_scores(events, "basketball_nba", "test")
    kept = parse_scores(events, "basketball_nba", "test", on_unknown_team="drop")
    assert kept["game_id"].to_list() == ["nba_20221122_BKN_PHI"]


def test_empty_bodies_give_empty_conformed_frames() -> None:
    assert parse_odds([], "basketball_nba", NBA_REQUEST, "test").schema == pl.Schema(ODDS_SNAPSHOTS)
    assert parse_scores([], "basketball_nba", "test").schema == pl.Schema(GAME_RESULTS)


# ---------------------------------------------------------------- the feed over HTTP


@pytest.fixture
def server() -> Iterator[OddsApiServer]:
    with OddsApiServer() as running:
        yield running


def feed(server: OddsApiServer, **config: Any) -> OddsApiFeed:
    return OddsApiFeed(
        **{"api_key": server.api_key, "base_url": server.url, "backoff_seconds": 0.01} | config
    )


NBA_NOW = dt.datetime(2022, 11, 23, 1, 6, tzinfo=UTC)
NBA_DAY = dt.date(2022, 11, 22)


def serve_nba_scores(server: OddsApiServer) -> None:
    """No NBA /scores body was recorded: a hand-made one on the sample's events (PHI in play)."""
    server.serve(
        "/v4/sports/basketball_nba/scores",
        [
            _nba_event(
                NBA_PHI,
                scores=[
                    {"name": "Philadelphia 76ers", "score": "60"},
                    {"name": "Brooklyn Nets", "score": "58"},
                ],
            ),
            _nba_event(NBA_PHX, id="1" * 32, away_team="Real Madrid"),
        ],
    )


def test_live_window_reads_odds_and_scores_and_records_quota(server: OddsApiServer) -> None:
    serve_nba_scores(server)
    result = feed(server).fetch_window("basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW)

    assert [(r.path, r.status) for r in server.requests] == [
        ("/v4/sports/basketball_nba/scores", 200),
        ("/v4/sports/basketball_nba/odds", 200),
    ]
    scores_params, odds_params = (r.params for r in server.requests)
    assert scores_params == {"daysFrom": "3", "apiKey": server.api_key}
    assert odds_params == {
        "markets": "h2h,spreads,totals",
        "oddsFormat": "american",
        "dateFormat": "iso",
        "regions": "us",
        "apiKey": server.api_key,
    }
    assert result.metadata == {
        "requests_remaining": 20_000 - 5,  # scores with daysFrom = 2, odds = 3 markets x 1 region
        "requests_used": 5,
        "requests_last": 3,
        "quota_spent": 5,
        "requests_made": 2,
        "retries": 0,
        "unknown_teams": ["Real Madrid"],
    }

    odds, games = result.frames["odds_snapshots"], result.frames["game_results"]
    assert odds.schema == pl.Schema(ODDS_SNAPSHOTS) and games.schema == pl.Schema(GAME_RESULTS)
    expected = {
        "nba_20221122_BKN_PHI",
        "nba_20221122_SAC_MEM",
        "nba_20221122_DET_DEN",
        "nba_20221122_LAL_PHX",
    }
    assert set(odds["game_id"]) == expected  # the 23rd's games are outside [22nd, 23rd)
    assert row(odds, game_id="nba_20221122_BKN_PHI", bookmaker="fanduel", market="spreads")["line"] == 2.5
    assert set(games["game_id"]) == expected
    phi = row(games, game_id="nba_20221122_BKN_PHI")  # the /scores row beats the scheduled one
    assert (phi["home_score"], phi["away_score"], phi["completed"]) == (60, 58, False)
    assert row(games, game_id="nba_20221122_SAC_MEM")["home_score"] is None


def test_past_days_use_one_historical_snapshot_per_day(server: OddsApiServer) -> None:
    now = dt.datetime(2021, 12, 1, tzinfo=UTC)
    start = dt.date(2021, 11, 25)
    result = feed(server).fetch_window("americanfootball_nfl", start, start + dt.timedelta(days=2), now)

    assert [(r.path, r.params["date"]) for r in server.requests] == [
        ("/v4/historical/sports/americanfootball_nfl/odds", "2021-11-25T12:00:00Z"),
        ("/v4/historical/sports/americanfootball_nfl/odds", "2021-11-26T12:00:00Z"),
    ]  # no /scores: the window ends more than three days before now
    odds = result.frames["odds_snapshots"]
    assert set(odds["game_id"]) == {"nfl_20211125_CHI_DET", "nfl_20211125_LV_DAL", "nfl_20211125_BUF_NO"}
    # The server served the same snapshot twice: repeated snapshots are kept once.
    assert odds.select("game_id", "bookmaker", "market", "snapshot_time").is_duplicated().sum() == 0
    assert (
        odds.height
        == parse_historical_odds(sample(NFL_HISTORICAL), "americanfootball_nfl", "x")
        .filter(pl.col("game_date") == start)
        .height
    )
    games = result.frames["game_results"]
    assert games.height == 3 and not games["completed"].any()
    assert result.metadata["requests_used"] == 2 * 30  # historical: 10 x 3 markets x 1 region
    assert result.metadata["requests_made"] == 2


def test_429_is_retried_until_success(server: OddsApiServer) -> None:
    serve_nba_scores(server)
    server.fail(429, times=2)
    result = feed(server).fetch_window("basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW)
    assert [r.status for r in server.requests] == [429, 429, 200, 200]
    assert (result.metadata["requests_made"], result.metadata["retries"]) == (4, 2)
    assert result.frames["odds_snapshots"].height > 0


def test_retry_after_is_honoured(server: OddsApiServer) -> None:
    serve_nba_scores(server)
    server.fail(429, times=1, retry_after="1")
    started = time.monotonic()
    feed(server).fetch_window("basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW)
    assert time.monotonic() - started >= 1.0  # backoff alone would wait 0.01 s
    assert [r.status for r in server.requests] == [429, 200, 200]


def test_5xx_beyond_max_retries_fails_clearly(server: OddsApiServer) -> None:
    server.fail(500)
    with pytest.raises(OddsApiError) as failure:
        feed(server, max_retries=2).fetch_window(
            "basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW
        )
    message = str(failure.value)
    assert "GET /v4/sports/basketball_nba/scores failed after 3 attempts" in message
    assert "HTTP 500: Internal server error" in message
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_client_errors_fail_at_once(server: OddsApiServer, status: int) -> None:
    server.fail(status)
    with pytest.raises(
        OddsApiError, match=rf"GET /v4/sports/basketball_nba/scores failed with HTTP {status}"
    ):
        feed(server).fetch_window("basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW)
    assert len(server.requests) == 1


def test_a_wrong_key_fails_at_once_and_is_never_shown(
    server: OddsApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-9f8e7d6c5b4a"
    with pytest.raises(OddsApiError) as failure:
        feed(server, api_key=secret).fetch_window(
            "basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW
        )
    assert "HTTP 401: API key is not valid" in str(failure.value)
    assert secret not in str(failure.value)
    assert [r.params["apiKey"] for r in server.requests] == [secret]  # sent once, not retried
    assert "apiKey=REDACTED" in caplog.text  # httpx's request log, redacted
    assert secret not in caplog.text


def test_connection_errors_are_retried_then_fail_clearly() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = OddsApiFeed(
        api_key="k" * 32, base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff_seconds=0.01
    )
    with pytest.raises(OddsApiError, match=r"after 3 attempts; last: ConnectError") as failure:
        closed.fetch_window("basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW)
    assert "k" * 32 not in str(failure.value)


def test_feed_is_a_dagster_resource_with_the_key_from_the_environment(
    server: OddsApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODDS_API_KEY", server.api_key)
    serve_nba_scores(server)

    @dg.asset
    def nba_odds(odds_feed: OddsApiFeed) -> dg.MaterializeResult:
        result = odds_feed.fetch_window("basketball_nba", NBA_DAY, NBA_DAY + dt.timedelta(days=1), NBA_NOW)
        return dg.MaterializeResult(
            metadata={"rows": result.frames["odds_snapshots"].height, **result.metadata}
        )

    resource = OddsApiFeed(api_key=dg.EnvVar("ODDS_API_KEY"), base_url=server.url)
    outcome = dg.materialize([nba_odds], resources={"odds_feed": resource})
    assert outcome.success
    (materialization,) = outcome.asset_materializations_for_node("nba_odds")
    assert materialization.metadata["requests_remaining"].value == 20_000 - 5
    assert materialization.metadata["rows"].value > 0
    assert all(r.params["apiKey"] == server.api_key for r in server.requests)
