"""Feature tables are the engine's computations per date, strictly before the date."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from domain.formats.sample_league import generate_season
from domain.models.catalogue import derive_team_fields
from domain.models.engine import Tables
from domain.models.engine import feature_tables as ft

DAY = dt.date(2025, 12, 1)


@pytest.fixture(scope="module")
def tables() -> Tables:
    season = generate_season()
    return Tables(season.game_results, season.team_box, season.player_box, season.odds_snapshots)


def test_team_form_is_the_mean_of_the_last_games_before_the_day(tables: Tables) -> None:
    form = ft.team_form(tables, "basketball_nba", [DAY], lookback=10)
    row = form.filter(team="BOS", field="offensive_rating").row(0, named=True)
    derived = derive_team_fields(tables.team_box, "basketball_nba")
    last10 = (
        derived.filter((pl.col("team") == "BOS") & (pl.col("game_date") < DAY)).sort("game_date").tail(10)
    )
    assert row["games_used"] == 10
    assert row["value"] == pytest.approx(last10["offensive_rating"].mean(), rel=1e-12)
    day_values = form.filter(field="offensive_rating")["value"]
    assert row["league_mean"] == pytest.approx(day_values.mean(), rel=1e-12)
    assert row["league_std"] == pytest.approx(day_values.std(ddof=0), rel=1e-12)


def test_features_of_a_day_ignore_that_day_and_later(tables: Tables) -> None:
    later = pl.col("game_date") >= DAY
    changed = Tables(
        tables.games.with_columns(
            pl.when(later).then(pl.col("home_score") + 30).otherwise("home_score").alias("home_score")
        ),
        tables.team_box.with_columns(pl.when(later).then(pl.col("pts") * 2).otherwise("pts").alias("pts")),
        tables.player_box.with_columns(pl.when(later).then(pl.col("pts") * 2).otherwise("pts").alias("pts")),
        tables.snapshots,
    )
    for build in (ft.team_form, ft.player_form, ft.team_rates):
        assert build(tables, "basketball_nba", [DAY]).equals(build(changed, "basketball_nba", [DAY])), (
            build.__name__
        )


def test_team_rates_shrink_and_line_history_moves(tables: Tables) -> None:
    rates = ft.team_rates(tables, "basketball_nba", [DAY], lookback_days=30)
    assert ((rates["rate"] - (rates["hits"] + 2) / (rates["games"] + 4)).abs() < 1e-12).all()
    assert rates.filter(market="h2h")["games"].max() <= 30
    lines = ft.line_history(tables, "basketball_nba", [DAY])
    spreads = lines.filter(market="spreads")
    assert ((spreads["line_move"] - (spreads["closing_line"] - spreads["opening_line"])).abs() < 1e-12).all()
    assert lines["closing_no_vig_first"].is_between(0, 1).all()
