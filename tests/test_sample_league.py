"""The embedded sample league: deterministic, shaped like a real NBA season, and beatable only by signal."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from domain.formats import sample_league as sl
from domain.sports.nba import NBA
from domain.tables.schemas import GAME_RESULTS, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX
from resources.feeds import OddsFeed, StatsFeed
from resources.sample_feed import SampleLeagueFeed, sample_season

STATS = ["minutes", "pts", "fgm", "fga", "fg3m", "fg3a", "ftm", "fta", "oreb", "dreb", "reb", "ast", "stl",
         "blk", "tov", "pf", "plus_minus"]  # fmt: skip


@pytest.fixture(scope="module")
def season() -> sl.SampleSeason:
    return sample_season(7)


def _digest(season: sl.SampleSeason) -> str:
    h = hashlib.sha256()
    for df in (season.game_results, season.team_box, season.player_box, season.odds_snapshots):
        h.update(df.hash_rows(seed=1).to_numpy().tobytes())
    return h.hexdigest()


def _closing(odds: pl.DataFrame, market: str) -> pl.DataFrame:
    """Opening and closing line of one book per game."""
    return (
        odds.filter(pl.col("market") == market, pl.col("bookmaker") == "draftkings")
        .sort("snapshot_time")
        .group_by("game_id")
        .agg(pl.col("line").first().alias("opening"), pl.col("line").last().alias("closing"),
             pl.col("public_first_pct").last().alias("public"))
    )  # fmt: skip


def test_same_seed_same_season_other_seed_other_season(season) -> None:
    again = sl.generate_season(7)
    assert _digest(again) == _digest(season)
    assert again.odds_api_events == season.odds_api_events
    assert _digest(sample_season(8)) != _digest(season)


def test_frames_follow_the_contracts(season) -> None:
    for df, schema in [(season.game_results, GAME_RESULTS), (season.team_box, TEAM_BOX),
                       (season.player_box, PLAYER_BOX), (season.odds_snapshots, ODDS_SNAPSHOTS)]:  # fmt: skip
        assert df.schema == pl.Schema(schema)
    nulls = season.odds_snapshots.null_count()
    assert nulls["line"].item() == season.odds_snapshots.filter(pl.col("market") == "h2h").height
    assert nulls.drop("line").sum_horizontal().item() == 0
    results = season.game_results
    assert results["game_id"].is_unique().all()
    assert results["season"].unique().to_list() == ["2025-26"]
    assert results["completed"].all() and not results["neutral"].any()
    assert set(results["home_team"]) == set(NBA.teams)


def test_tip_off_is_evening_eastern_and_game_date_is_the_eastern_date(season) -> None:
    local = season.game_results.select(
        "game_date", local=pl.col("commence_time").dt.convert_time_zone("America/New_York")
    )
    minutes = local["local"].dt.hour().cast(pl.Int32) * 60 + local["local"].dt.minute().cast(pl.Int32)
    assert minutes.min() >= 19 * 60 and minutes.max() <= 22 * 60 + 30
    assert (local["local"].dt.date() == local["game_date"]).all()
    assert season.game_results["game_date"].min() == sl.SEASON_START
    assert season.game_results["game_date"].max() == sl.SEASON_END


def test_schedule_looks_like_an_nba_season(season) -> None:
    results = season.game_results
    appearances = pl.concat([
        results.select("game_date", team="home_team", home=pl.lit(True)),
        results.select("game_date", team="away_team", home=pl.lit(False)),
    ])  # fmt: skip
    assert appearances.select("game_date", "team").is_unique().all(), "a team played twice in a day"
    per_team = appearances.group_by("team").agg(pl.len().alias("games"), pl.col("home").sum().alias("home"))
    assert per_team.height == 30
    assert per_team["games"].is_between(81, 83).all()
    assert per_team["home"].is_between(39, 43).all()
    per_day = results.group_by("game_date").len()["len"]
    assert per_day.min() >= 2 and per_day.max() <= 15
    dates = set(results["game_date"])
    break_days = {dt.date(2026, 2, 13) + dt.timedelta(days=i) for i in range(6)}
    assert not dates & break_days, "games during the All-Star break"
    assert {dt.date(2026, 2, 12), dt.date(2026, 2, 19)} <= dates
    rest = (
        appearances.sort("game_date")
        .with_columns(gap=pl.col("game_date").diff().over("team").dt.total_days())
        .with_columns(two_back=pl.col("game_date").diff(2).over("team").dt.total_days())
    )
    back_to_backs = rest.group_by("team").agg((pl.col("gap") == 1).sum().alias("b2b"))["b2b"]
    assert back_to_backs.min() >= 5 and back_to_backs.max() <= 30
    assert (rest["two_back"] == 2).sum() <= 15, "three games in three nights should be rare"


def test_box_scores_add_up(season) -> None:
    team, players = season.team_box, season.player_box
    for df in (team, players):
        assert (df["pts"] == 2 * df["fgm"] + df["fg3m"] + df["ftm"]).all()
        assert (df["reb"] == df["oreb"] + df["dreb"]).all()
        assert ((df["fg3m"] <= df["fg3a"]) & (df["fgm"] <= df["fga"]) & (df["fg3a"] <= df["fga"])).all()
        assert (df["ftm"] <= df["fta"]).all()
        assert df.select(pl.col(STATS[1:-1]).min()).min_horizontal().item() >= 0
    assert ((team["minutes"] - 240) % 25 == 0).all() and team["minutes"].min() == 240
    sums = players.group_by("game_id", "team").agg(pl.col(STATS).sum().name.suffix("_players"))
    joined = team.join(sums, on=["game_id", "team"], how="left")
    for stat in STATS[:-1]:  # plus-minus is shared out by minutes, not split exactly
        assert (joined[stat] == joined[f"{stat}_players"]).all(), stat
    on_floor = players.join(team.select("game_id", "team", team_minutes="minutes"), on=["game_id", "team"])
    assert (on_floor["minutes"] <= on_floor["team_minutes"] / 5).all()
    assert (players["pf"] <= 6).all()
    scores = season.game_results.select("game_id", team="home_team", score="home_score", opp="away_score")
    home = team.join(scores, on=["game_id", "team"])
    assert home.height == season.game_results.height
    assert (home["pts"] == home["score"]).all() and (home["plus_minus"] == home["score"] - home["opp"]).all()
    possessions = team["fga"] - team["oreb"] + team["tov"] + 0.44 * team["fta"]
    pace = possessions * 48 / (team["minutes"] / 5)
    assert 95 < pace.mean() < 104 and 105 < team["pts"].mean() < 120


def test_players_have_stable_ids_and_roles(season) -> None:
    players = season.player_box
    identity = players.group_by("player_id").agg(pl.col("team").n_unique(), pl.col("player_name").n_unique())
    assert identity.height == 300 and (identity["team"] == 1).all() and (identity["player_name"] == 1).all()
    roles = players.group_by("player_id").agg(pl.col("minutes").mean()).sort("player_id")
    assert roles["minutes"].max() > 30 and roles["minutes"].min() < 15
    per_game = players.group_by("game_id", "team").len()["len"]
    assert per_game.min() >= 8 and per_game.max() == 10


def test_odds_have_realistic_vig_half_point_lines_and_four_snapshots(season) -> None:
    odds = season.odds_snapshots
    overround = 1 / odds["price_first"] + 1 / odds["price_second"]
    assert overround.min() >= 1.03 and overround.max() <= 1.06
    lines = odds.filter(pl.col("market") != "h2h")["line"]
    assert ((lines * 2).round() == lines * 2).all()
    near_even = odds.filter(pl.col("market") != "h2h").select("price_first", "price_second")
    assert near_even.min_horizontal().min() > 1.75 and near_even.max_horizontal().max() < 2.1
    assert set(odds["bookmaker"]) == set(sl.BOOKMAKERS)
    timing = (
        odds.join(season.game_results.select("game_id", "commence_time"), on="game_id")
        .with_columns(hours=(pl.col("commence_time") - pl.col("snapshot_time")).dt.total_minutes() / 60)
        .group_by("game_id", "bookmaker", "market")
        .agg(pl.len(), pl.col("hours").max().alias("opening"), pl.col("hours").min().alias("closing"))
    )
    assert (timing["len"] == 4).all()
    assert timing["opening"].is_between(36, 48).all() and (timing["closing"] == 1).all()


def test_closing_lines_beat_opening_lines(season) -> None:
    results = season.game_results.select(
        "game_id",
        margin=pl.col("home_score") - pl.col("away_score"),
        total=pl.col("home_score") + pl.col("away_score"),
    )
    spreads = _closing(season.odds_snapshots, "spreads").join(results, on="game_id")
    assert (spreads["margin"] + spreads["closing"]).abs().mean() < (
        spreads["margin"] + spreads["opening"]
    ).abs().mean()
    totals = _closing(season.odds_snapshots, "totals").join(results, on="game_id")
    assert (totals["total"] - totals["closing"]).abs().mean() < (
        totals["total"] - totals["opening"]
    ).abs().mean()


def test_public_likes_favourites_and_overs_and_reverse_moves_are_informed(season) -> None:
    odds = season.odds_snapshots
    assert odds["public_first_pct"].is_between(0, 1).all()
    spreads = _closing(odds, "spreads").join(
        season.game_results.select("game_id", margin=pl.col("home_score") - pl.col("away_score")),
        on="game_id",
    )
    favourite = spreads.filter(pl.col("closing") < 0)["public"].mean()
    underdog = spreads.filter(pl.col("closing") > 0)["public"].mean()
    assert favourite > 0.5 > underdog
    assert odds.filter(pl.col("market") == "totals")["public_first_pct"].mean() > 0.55
    move = spreads["closing"] - spreads["opening"]
    towards_home = move < 0
    reverse = (move != 0) & (towards_home != (spreads["public"] > 0.5))
    assert 0.1 < reverse.mean() < 0.5
    # The side a reverse move went to beats the opening line on average: the move carried information.
    side = pl.Series(np.where(towards_home, 1.0, -1.0))
    against_opening = ((spreads["margin"] + spreads["opening"]) * side).filter(reverse)
    assert against_opening.mean() > 0


def _form(team_box: pl.DataFrame) -> pl.DataFrame:
    """Per team and game, from games strictly before it: 10-game net rating and season point differential."""
    possessions = pl.col("fga") - pl.col("oreb") + pl.col("tov") + 0.44 * pl.col("fta")
    return (
        team_box.sort("game_date")
        .with_columns(net=100 * pl.col("plus_minus") / possessions)
        .select(
            "game_id",
            "team",
            pl.col("net").rolling_mean(10).shift(1).over("team").alias("net10"),
            (pl.col("plus_minus").cum_sum().shift(1) / pl.int_range(pl.len()))
            .over("team")
            .alias("point_diff"),
        )
    )


def test_box_score_signal_beats_the_market_and_noise_does_not(season) -> None:
    form = _form(season.team_box)
    home = form.rename({"team": "home_team", "net10": "home_net", "point_diff": "home_pd"})
    away = form.rename({"team": "away_team", "net10": "away_net", "point_diff": "away_pd"})
    games = (
        season.game_results.join(home, on=["game_id", "home_team"])
        .join(away, on=["game_id", "away_team"])
        .join(_closing(season.odds_snapshots, "spreads"), on="game_id")
        .with_columns(margin=pl.col("home_score") - pl.col("away_score"))
    )
    # Sorted: a join's row order is not fixed, and the random picks below are paired with rows by order.
    rated = games.drop_nulls(["home_net", "away_net"]).sort("game_id")
    # Model margin minus the market's (-closing): bet the side the model likes when they differ by > 4.
    edge = (rated["home_net"] - rated["away_net"] + sl.HOME_EDGE + rated["closing"]).to_numpy()
    cover = np.sign((rated["margin"] + rated["closing"]).to_numpy())
    pick = np.where(edge > 4, 1, np.where(edge < -4, -1, 0))
    graded = (pick != 0) & (cover != 0)
    model_rate = (pick == cover)[graded].mean()
    random_pick = np.random.default_rng(0).choice([-1, 1], len(cover))
    random_rate = (random_pick == cover)[cover != 0].mean()
    assert graded.sum() > 300
    assert model_rate > 0.524 and model_rate > random_rate
    assert abs(random_rate - 0.5) < 0.04

    known = games.drop_nulls(["home_pd", "away_pd"])
    predicted_home = (known["home_pd"] - known["away_pd"] + sl.HOME_EDGE) > 0
    assert (predicted_home == (known["margin"] > 0)).mean() > 0.55


def test_odds_api_events_look_like_v4_bodies(season) -> None:
    times = [t for t, _ in season.odds_api_events]
    assert times == sorted(set(times)) and all(t.tzinfo is not None for t in times)
    assert sum(len(events) for _, events in season.odds_api_events) == season.odds_snapshots.height // 15
    _, events = season.odds_api_events[0]
    event = events[0]
    assert set(event) == {
        "id",
        "sport_key",
        "sport_title",
        "commence_time",
        "home_team",
        "away_team",
        "bookmakers",
    }
    assert event["sport_key"] == "basketball_nba" and event["home_team"] in NBA.teams.values()
    assert len(event["id"]) == 32 and event["commence_time"].endswith("Z")
    book = event["bookmakers"][0]
    assert book["title"] == sl.BOOKMAKERS[book["key"]]
    markets = {m["key"]: m["outcomes"] for m in book["markets"]}
    assert set(markets) == {"h2h", "spreads", "totals"}
    assert all(isinstance(o["price"], int) and abs(o["price"]) >= 100 for os in markets.values() for o in os)
    assert all("point" not in o for o in markets["h2h"])
    assert markets["spreads"][0]["point"] == -markets["spreads"][1]["point"]
    assert [o["name"] for o in markets["totals"]] == ["Over", "Under"]


def test_parsing_the_v4_bodies_gives_the_snapshot_frame(season) -> None:
    from domain.formats.odds_api_v4 import parse_odds

    busiest = max(season.odds_api_events, key=lambda snapshot: len(snapshot[1]))
    for when, events in [season.odds_api_events[0], busiest, season.odds_api_events[-1]]:
        parsed = parse_odds(events, "basketball_nba", when, "the_odds_api")
        ours = season.odds_snapshots.filter(pl.col("snapshot_time") == when)
        columns = [c for c in ODDS_SNAPSHOTS if c not in ("public_first_pct", "source")]
        keys = ["game_id", "bookmaker", "market"]
        assert_frame_equal(parsed.select(columns).sort(keys), ours.select(columns).sort(keys))


def test_feed_slices_dates_and_serves_only_the_nba() -> None:
    feed = SampleLeagueFeed()
    assert isinstance(feed, OddsFeed) and isinstance(feed, StatsFeed) and feed.source_name() == sl.SOURCE
    start, end = dt.date(2025, 11, 3), dt.date(2025, 11, 10)
    odds = feed.fetch_odds("basketball_nba", start, end)
    stats = feed.fetch_stats("basketball_nba", start, end)
    assert set(odds.frames) == {"odds_snapshots"}
    assert set(stats.frames) == {"game_results", "team_box", "player_box"}
    for df in [*odds.frames.values(), *stats.frames.values()]:
        assert df.height > 0 and df["game_date"].min() >= start and df["game_date"].max() < end
    games = set(stats.frames["game_results"]["game_id"])
    assert set(odds.frames["odds_snapshots"]["game_id"]) == games == set(stats.frames["team_box"]["game_id"])
    assert stats.metadata["sample_league game_results rows"] == len(games)
    nfl = feed.fetch_stats("americanfootball_nfl", start, end)
    assert (
        all(df.is_empty() for df in nfl.frames.values())
        and "basketball_nba only" in nfl.metadata["sample_league"]
    )
    assert (
        SampleLeagueFeed(seed=8).fetch_stats("basketball_nba", start, end).frames["game_results"].height > 0
    )
