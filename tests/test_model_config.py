"""Model config schema, validation messages, field catalogue and derived team fields."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from domain.models.catalogue import catalogue, derive_team_fields, normalise_field_name
from domain.models.config import (
    ConfigError,
    DatasetInfo,
    ModelConfig,
    effective_dynamic_weighting,
    enabled_sources,
    export_json_schema,
    parse_model_config,
    validate_against,
)
from domain.money.pricing import dollars_to_cents, price_tier
from domain.tables.schemas import TEAM_BOX, conform

REPO = Path(__file__).resolve().parents[1]

# The seed's example ("Model Configuration Schema"), verbatim; ``market`` is left to its default.
SEED_EXAMPLE: dict[str, Any] = {
    "model_id": "user123_momentum_v2",
    "name": "My Custom Momentum Model",
    "description": "Focuses on recent team performance and line movement",
    "creator_user_id": "user123",
    "version": 1,
    "sport": "basketball_nba",
    "bet_type": "game",
    "data_sources": {
        "team_stats": {
            "enabled": True,
            "weight": 0.4,
            "fields": ["offensive_rating", "defensive_rating", "pace"],
            "lookback_games": 10,
        },
        "player_stats": {"enabled": True, "weight": 0.3, "fields": ["PTS", "REB", "AST"], "min_minutes": 20},
        "odds_movement": {"enabled": True, "weight": 0.2, "time_window_hours": 24},
        "historical_performance": {"enabled": True, "weight": 0.1, "lookback_days": 30},
    },
    "dynamic_weighting": True,
    "min_confidence": 0.6,
    "max_confidence": 0.95,
    "sharing": {"public": True, "price_per_month": 9.99, "revenue_share": 0.7, "trial_days": 7},
    "created_at": "2026-01-23T19:00:00Z",
    "updated_at": "2026-01-23T19:00:00Z",
}

# The seed's custom-source example ("Model Configuration with Custom Data").
CUSTOM_WEATHER = {
    "enabled": True,
    "weight": 0.15,
    "dataset_id": "user123_weather_data",
    "field": "temperature",
    "transformation": "linear",
    "min_value": 32,
    "max_value": 100,
    "invert": False,
}


DELETE = object()


def payload(**changes: Any) -> dict[str, Any]:
    """The seed example with dotted-path changes applied (``"data_sources.team_stats.weight": -1``);
    the value ``DELETE`` removes the key."""
    out = copy.deepcopy(SEED_EXAMPLE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_model_config(data)
    return {p.path: p.message for p in info.value.problems}


# ---- the seed example ---------------------------------------------------------------------------


def test_seed_example_parses_with_defaults_and_normalised_fields() -> None:
    config = parse_model_config(SEED_EXAMPLE)
    assert config.market == "spreads"
    assert config.bet_type == "game"
    assert config.data_sources.player_stats is not None
    assert config.data_sources.player_stats.fields == ("pts", "reb", "ast")
    assert config.data_sources.player_stats.lookback_games == 10
    assert config.sharing.price_cents == 999
    assert list(enabled_sources(config)) == [
        "team_stats",
        "player_stats",
        "odds_movement",
        "historical_performance",
    ]


def test_payload_round_trips_to_an_equal_config() -> None:
    config = parse_model_config(
        payload(**{"data_sources.custom_weather": CUSTOM_WEATHER, "market": "totals"})
    )
    again = parse_model_config(json.loads(json.dumps(config.to_payload())))
    assert again == config
    assert config.to_payload()["sharing"]["price_cents"] == 999
    assert list(again.data_sources.as_dict()) == [*SEED_EXAMPLE["data_sources"], "custom_weather"]


def test_custom_source_is_recognised_by_dataset_id_under_any_name() -> None:
    config = parse_model_config(payload(**{"data_sources.my_rest_days": CUSTOM_WEATHER}))
    source = config.data_sources.as_dict()["my_rest_days"]
    assert source.kind == "custom"
    assert source.dataset_id == "user123_weather_data"


@pytest.mark.parametrize(
    ("dollars", "cents", "tier"),
    [
        (9.99, 999, "basic"),
        (24.99, 2499, "premium"),
        (4.99, 499, "basic"),
        (10, 1000, "premium"),
        ("25.00", 2500, "pro"),
        (999.99, 99_999, "pro"),
        (0, 0, "free"),
        (0.0, 0, "free"),
    ],
)
def test_price_cents_are_exact(dollars: float | str, cents: int, tier: str) -> None:
    config = parse_model_config(payload(**{"sharing.price_per_month": dollars}))
    assert config.sharing.price_cents == cents
    assert price_tier(config.sharing.price_cents) == tier


def test_price_cents_may_be_given_instead_of_dollars() -> None:
    sharing = {"public": True, "price_cents": 2499, "revenue_share": 0.7}
    config = parse_model_config(payload(sharing=sharing))
    assert config.sharing.price_per_month == Decimal("24.99")
    assert "sharing.price_cents" in problems(payload(sharing={**sharing, "price_per_month": 9.99}))


@pytest.mark.parametrize(
    ("sharing", "trial"),
    [
        ({"public": True, "price_per_month": 9.99}, 7),  # SPEC 6: 7 days unless the creator says
        ({"public": True, "price_cents": 999}, 7),
        ({"public": True, "price_per_month": 9.99, "trial_days": 0}, 0),
        ({"public": True, "price_per_month": 9.99, "trial_days": 30}, 30),
        ({"public": True}, 0),  # free models have no trial
    ],
)
def test_a_paid_model_has_a_seven_day_trial_unless_its_creator_sets_one(
    sharing: dict[str, object], trial: int
) -> None:
    assert parse_model_config(payload(sharing=sharing)).sharing.trial_days == trial


def test_dollars_to_cents_refuses_fractions_of_a_cent() -> None:
    assert dollars_to_cents(Decimal("19.99")) == 1999
    with pytest.raises(ValueError, match="whole number of cents"):
        dollars_to_cents(Decimal("19.995"))


def test_dynamic_weighting_per_source_overrides_the_model() -> None:
    config = parse_model_config(payload(**{"data_sources.odds_movement.dynamic_weighting": False}))
    assert effective_dynamic_weighting(config, "odds_movement") is False
    assert effective_dynamic_weighting(config, "team_stats") is True
    off = parse_model_config(
        payload(dynamic_weighting=False, **{"data_sources.team_stats.dynamic_weighting": True})
    )
    assert effective_dynamic_weighting(off, "team_stats") is True
    assert effective_dynamic_weighting(off, "player_stats") is False


def test_disabled_sources_are_left_out() -> None:
    config = parse_model_config(payload(**{"data_sources.player_stats.enabled": False}))
    assert "player_stats" not in enabled_sources(config)
    assert "player_stats" in config.data_sources.as_dict()


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("PTS", "pts"), (" Reb ", "reb"), ("MIN", "minutes"), ("turnovers", "tov"), ("FG3M", "fg3m")],
)
def test_field_names_normalise(given: str, canonical: str) -> None:
    assert normalise_field_name(given) == canonical


# ---- every rule rejects with a message naming the field -----------------------------------------

TEAM = "data_sources.team_stats"
CUSTOM = "data_sources.custom_weather"

REJECTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    # (rule, changes, path, a phrase of the message)
    ("negative weight", {f"{TEAM}.weight": -0.1}, f"{TEAM}.weight", "greater than or equal to 0"),
    (
        "zero weight sum",
        {f"data_sources.{s}.weight": 0 for s in SEED_EXAMPLE["data_sources"]},
        "data_sources",
        "at least one must be > 0",
    ),
    (
        "nothing enabled",
        {f"data_sources.{s}.enabled": False for s in SEED_EXAMPLE["data_sources"]},
        "data_sources",
        "enable at least one",
    ),
    (
        "six enabled sources",
        {f"data_sources.custom_{i}": {**CUSTOM_WEATHER, "dataset_id": f"user123_d{i}"} for i in range(2)},
        "data_sources",
        "at most 5 may be",
    ),
    ("min_confidence below 0.5", {"min_confidence": 0.45}, "min_confidence", "greater than or equal to 0.5"),
    ("max_confidence above 1", {"max_confidence": 1.01}, "max_confidence", "less than or equal to 1"),
    (
        "min not below max",
        {"min_confidence": 0.8, "max_confidence": 0.8},
        "min_confidence",
        "0.5 <= min_confidence < max_confidence <= 1",
    ),
    ("unknown team field", {f"{TEAM}.fields": ["pace", "clutch"]}, f"{TEAM}.fields[1]", "allowed: pts, fgm"),
    (
        "unknown player field",
        {"data_sources.player_stats.fields": ["PTS", "usage"]},
        "data_sources.player_stats.fields[1]",
        "allowed: minutes, pts",
    ),
    ("repeated field", {f"{TEAM}.fields": ["pace", "PACE"]}, f"{TEAM}.fields[1]", "list each field once"),
    ("empty fields", {f"{TEAM}.fields": []}, f"{TEAM}.fields", "at least 1 item"),
    (
        "team lookback 0",
        {f"{TEAM}.lookback_games": 0},
        f"{TEAM}.lookback_games",
        "greater than or equal to 1",
    ),
    (
        "team lookback 83",
        {f"{TEAM}.lookback_games": 83},
        f"{TEAM}.lookback_games",
        "less than or equal to 82",
    ),
    (
        "player lookback",
        {"data_sources.player_stats.lookback_games": 100},
        "data_sources.player_stats.lookback_games",
        "less than or equal to 82",
    ),
    (
        "min_minutes",
        {"data_sources.player_stats.min_minutes": 49},
        "data_sources.player_stats.min_minutes",
        "less than or equal to 48",
    ),
    (
        "odds window",
        {"data_sources.odds_movement.time_window_hours": 169},
        "data_sources.odds_movement.time_window_hours",
        "less than or equal to 168",
    ),
    (
        "history lookback",
        {"data_sources.historical_performance.lookback_days": 0},
        "data_sources.historical_performance.lookback_days",
        "greater than or equal to 1",
    ),
    (
        "linear min == max",
        {CUSTOM: {**CUSTOM_WEATHER, "max_value": 32}},
        f"{CUSTOM}.max_value",
        "min_value < max_value",
    ),
    (
        "linear without max",
        {CUSTOM: {**CUSTOM_WEATHER, "max_value": None}},
        f"{CUSTOM}.max_value",
        "both min_value and max_value",
    ),
    (
        "threshold without threshold",
        {CUSTOM: {**CUSTOM_WEATHER, "transformation": "threshold"}},
        f"{CUSTOM}.threshold",
        "needs a threshold value",
    ),
    (
        "formula without formula",
        {CUSTOM: {**CUSTOM_WEATHER, "transformation": "custom_formula"}},
        f"{CUSTOM}.formula",
        "needs a formula",
    ),
    (
        "unknown transformation",
        {CUSTOM: {**CUSTOM_WEATHER, "transformation": "log"}},
        f"{CUSTOM}.transformation",
        "'linear', 'threshold', 'percentile' or 'custom_formula'",
    ),
    (
        "linear without field",
        {CUSTOM: {**CUSTOM_WEATHER, "field": None}},
        f"{CUSTOM}.field",
        "needs the dataset field",
    ),
    (
        "misspelt built-in source",
        {"data_sources.team_stat": {"weight": 1, "fields": ["pace"]}},
        "data_sources.team_stat",
        "the built-in sources are team_stats",
    ),
    ("unknown setting", {f"{TEAM}.lookback": 5}, f"{TEAM}.lookback", "allowed: enabled, weight"),
    (
        "price below the basic tier",
        {"sharing.price_per_month": 3.5},
        "sharing.price_per_month",
        "4.99-9.99 (basic)",
    ),
    (
        "price above the pro cap",
        {"sharing.price_per_month": 1000},
        "sharing.price_per_month",
        "25.00-999.99 (pro)",
    ),
    (
        "fraction of a cent",
        {"sharing.price_per_month": 9.999},
        "sharing.price_per_month",
        "no more than 2 decimal places",
    ),
    ("revenue share", {"sharing.revenue_share": 0.8}, "sharing.revenue_share", "must be 0.7"),
    ("trial days", {"sharing.trial_days": 31}, "sharing.trial_days", "less than or equal to 30"),
    ("player props", {"bet_type": "player"}, "bet_type", "player props are not supported yet"),
    ("market", {"market": "outrights"}, "market", "'spreads', 'h2h' or 'totals'"),
    ("sport", {"sport": "soccer_epl"}, "sport", "supported: basketball_nba, americanfootball_nfl"),
    ("model id with a slash", {"model_id": "a/b"}, "model_id", "should match pattern"),
    ("missing name", {"name": DELETE}, "name", "is required"),
]


@pytest.mark.parametrize(
    ("changes", "path", "phrase"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_rule_rejects_with_a_message_naming_the_field(
    changes: dict[str, Any], path: str, phrase: str
) -> None:
    found = problems(payload(**changes))
    assert path in found, found
    assert phrase in found[path]


def test_nfl_has_score_fields_and_no_player_stats() -> None:
    nfl = payload(
        sport="americanfootball_nfl",
        **{f"{TEAM}.fields": ["points_for", "POINTS_AGAINST", "margin"]},
    )
    found = problems(nfl)
    assert list(found) == ["data_sources.player_stats"]
    assert "americanfootball_nfl" in found["data_sources.player_stats"]
    del nfl["data_sources"]["player_stats"]
    config = parse_model_config(nfl)
    assert config.data_sources.team_stats is not None
    assert config.data_sources.team_stats.fields == ("points_for", "points_against", "margin")


def test_all_problems_are_reported_together() -> None:
    found = problems(payload(**{f"{TEAM}.fields": ["clutch"], "min_confidence": 0.9, "max_confidence": 0.7}))
    assert {f"{TEAM}.fields[0]", "min_confidence"} <= set(found)


def test_model_validate_enforces_the_same_rules() -> None:
    with pytest.raises(ValueError, match="min_value < max_value"):
        ModelConfig.model_validate(payload(**{CUSTOM: {**CUSTOM_WEATHER, "max_value": 32}}))


# ---- rules that need dataset facts ---------------------------------------------------------------

WEATHER = DatasetInfo(
    dataset_id="user123_weather_data",
    owner_user_id="user123",
    quality_score=0.93,
    fields=("temperature", "wind_speed"),
    sport="basketball_nba",
    data_type="game_level",
)


def _formula_checker(formula: str, fields: list[str]) -> None:
    """Accepts formulas that only name the dataset's fields (stands in for the grammar's checker)."""
    unknown = [w for w in formula.replace("(", " ").replace(")", " ").split() if w.isidentifier()]
    if any(w not in fields for w in unknown):
        raise ValueError(f"formula names something other than the fields {fields}")


def _against(source: dict[str, Any], dataset: DatasetInfo = WEATHER) -> dict[str, str]:
    config = parse_model_config(payload(**{CUSTOM: source}))
    with pytest.raises(ConfigError) as info:
        validate_against(config, {dataset.dataset_id: dataset}, _formula_checker)
    return {p.path: p.message for p in info.value.problems}


def test_a_usable_dataset_passes() -> None:
    formula = {
        **CUSTOM_WEATHER,
        "transformation": "custom_formula",
        "formula": "wind_speed / 20",
        "field": None,
    }
    for source in (CUSTOM_WEATHER, formula):
        config = parse_model_config(payload(**{CUSTOM: source}))
        validate_against(config, {WEATHER.dataset_id: WEATHER}, _formula_checker)


@pytest.mark.parametrize(
    ("source", "dataset", "path", "phrase"),
    [
        (
            CUSTOM_WEATHER,
            replace(WEATHER, owner_user_id="user999"),
            f"{CUSTOM}.dataset_id",
            "is not one of user123's datasets",
        ),
        (
            {**CUSTOM_WEATHER, "dataset_id": "user123_nothing"},
            WEATHER,
            f"{CUSTOM}.dataset_id",
            "is not one of user123's datasets",
        ),
        (
            CUSTOM_WEATHER,
            replace(WEATHER, quality_score=0.8),
            f"{CUSTOM}.dataset_id",
            "scoring above 0.8",
        ),
        (
            CUSTOM_WEATHER,
            replace(WEATHER, sport="americanfootball_nfl"),
            f"{CUSTOM}.dataset_id",
            "is for americanfootball_nfl",
        ),
        (
            CUSTOM_WEATHER,
            replace(WEATHER, data_type="player_level"),
            f"{CUSTOM}.dataset_id",
            "player-level datasets are not supported yet",
        ),
        (
            {**CUSTOM_WEATHER, "field": "humidity"},
            WEATHER,
            f"{CUSTOM}.field",
            "allowed: temperature, wind_speed",
        ),
        (
            {**CUSTOM_WEATHER, "transformation": "custom_formula", "formula": "humidity * 2"},
            WEATHER,
            f"{CUSTOM}.formula",
            "other than the fields",
        ),
    ],
    ids=[
        "other owner",
        "unknown dataset",
        "quality not above 0.8",
        "other sport",
        "player level",
        "unknown field",
        "formula checker",
    ],
)
def test_dataset_rule_rejects(source: dict[str, Any], dataset: DatasetInfo, path: str, phrase: str) -> None:
    found = _against(source, dataset)
    assert path in found, found
    assert phrase in found[path]


# ---- JSON Schema ----------------------------------------------------------------------------------


def test_committed_json_schema_matches_the_models() -> None:
    committed = json.loads((REPO / "docs" / "model-config.schema.json").read_text())
    generated = json.loads(json.dumps(export_json_schema()))
    assert committed == generated, (
        "docs/model-config.schema.json is stale; regenerate it with: python -c 'import json; "
        "from domain.models.config import export_json_schema as e; print(json.dumps(e(), indent=2))' "
        "> docs/model-config.schema.json"
    )
    assert generated["x-field-catalogue"]["americanfootball_nfl"]["player"] == []


# ---- catalogue and derived team fields -------------------------------------------------------------


def test_catalogue_orientation_and_direction() -> None:
    team = catalogue("basketball_nba").team
    assert {n for n, f in team.items() if f.lower_is_better} == {
        "tov",
        "pf",
        "pts_allowed",
        "defensive_rating",
    }
    assert [
        team[n].total_orientation for n in ("pace", "offensive_rating", "defensive_rating", "net_rating")
    ] == [1, 1, 1, 0]
    box_stats = [c for c in TEAM_BOX if TEAM_BOX[c] == pl.Float64() and c != "minutes"]
    assert set(box_stats) < set(team)


def _box(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows, infer_schema_length=None), TEAM_BOX)


def test_derived_team_fields_by_hand() -> None:
    """g1 (regulation): BOS has OREB and 240 player-minutes, PHI has neither (REB stands in, 48 min).
    g2 (one overtime, 265 player-minutes = 53 min): pace scales back to 48 minutes."""
    box = _box(
        [
            {
                "game_id": "g1",
                "team": "BOS",
                "opponent": "PHI",
                "pts": 110,
                "fgm": 40,
                "fga": 85,
                "fg3m": 12,
                "fta": 20,
                "oreb": 10,
                "reb": 45,
                "tov": 12,
                "minutes": 240,
            },
            {
                "game_id": "g1",
                "team": "PHI",
                "opponent": "BOS",
                "pts": 100,
                "fgm": 38,
                "fga": 90,
                "fg3m": 10,
                "fta": 25,
                "oreb": None,
                "reb": 20,
                "tov": 15,
                "minutes": None,
            },
            {
                "game_id": "g2",
                "team": "LAL",
                "opponent": "GSW",
                "pts": 120,
                "fga": 100,
                "fta": 30,
                "oreb": 12,
                "tov": 10,
                "minutes": 265,
            },
            {
                "game_id": "g2",
                "team": "GSW",
                "opponent": "LAL",
                "pts": 118,
                "fga": 95,
                "fta": 25,
                "oreb": 8,
                "tov": 14,
                "minutes": 265,
            },
        ]
    )
    out = {r["team"]: r for r in derive_team_fields(box, "basketball_nba").iter_rows(named=True)}
    # possessions = FGA - OREB + TOV + 0.44 FTA
    # BOS 85 - 10 + 12 + 8.8 = 95.8; PHI 90 - 20 (REB) + 15 + 11 = 96
    # LAL 100 - 12 + 10 + 13.2 = 111.2; GSW 95 - 8 + 14 + 11 = 112
    expected = {
        "BOS": {
            "possessions": 95.8,
            "offensive_rating": 114.822547,
            "defensive_rating": 104.166667,
            "pace": 95.8,
            "net_rating": 10.655880,
            "pts_allowed": 100,
            "efg_pct": 46 / 85,
            "ts_pct": 110 / 187.6,
        },
        "PHI": {
            "possessions": 96.0,
            "offensive_rating": 104.166667,
            "defensive_rating": 114.822547,
            "pace": 96.0,
            "pts_allowed": 110,
        },
        # pace = possessions * 48 / 53: 5337.6 / 53, 5376 / 53
        "LAL": {
            "possessions": 111.2,
            "offensive_rating": 107.913669,
            "defensive_rating": 105.357143,
            "pace": 100.709434,
        },
        "GSW": {
            "possessions": 112.0,
            "offensive_rating": 105.357143,
            "defensive_rating": 107.913669,
            "pace": 101.433962,
        },
    }
    for team, fields in expected.items():
        for name, value in fields.items():
            assert out[team][name] == pytest.approx(value, abs=1e-6), (team, name)
    assert out["BOS"]["pts"] == 110 and out["BOS"]["opponent"] == "PHI"
    assert not any(c.startswith("opp_") for c in derive_team_fields(box, "basketball_nba").columns)


def test_derived_fields_without_opponent_or_attempts_are_null() -> None:
    box = _box(
        [
            {
                "game_id": "g1",
                "team": "BOS",
                "opponent": "PHI",
                "pts": 0,
                "fga": 0,
                "fta": 0,
                "oreb": 0,
                "tov": 0,
            }
        ]
    )
    row = derive_team_fields(box, "basketball_nba").row(0, named=True)
    assert row["possessions"] == 0
    assert row["offensive_rating"] is None and row["efg_pct"] is None
    assert row["defensive_rating"] is None and row["pts_allowed"] is None


def test_pace_never_counts_less_than_a_regulation_game() -> None:
    """239 rounded player-minutes (or a source writing game minutes, 48) still mean 48 minutes."""
    stats = {"pts": 100, "fga": 90, "fta": 25, "oreb": 10, "tov": 15}  # 90 - 10 + 15 + 11 = 106
    box = _box(
        [
            {"game_id": "g1", "team": "BOS", "opponent": "PHI", "minutes": 239, **stats},
            {"game_id": "g1", "team": "PHI", "opponent": "BOS", "minutes": 48, **stats},
        ]
    )
    assert derive_team_fields(box, "basketball_nba")["pace"].to_list() == pytest.approx([106, 106])


def test_duplicate_team_game_raises() -> None:
    row = {"game_id": "g1", "team": "BOS", "opponent": "PHI", "pts": 100}
    with pytest.raises(pl.exceptions.ComputeError):
        derive_team_fields(_box([row, row, {**row, "team": "PHI", "opponent": "BOS"}]), "basketball_nba")


def test_nfl_score_fields() -> None:
    box = _box(
        [
            {"game_id": "n1", "team": "KC", "opponent": "BUF", "pts": 27},
            {"game_id": "n1", "team": "BUF", "opponent": "KC", "pts": 24},
        ]
    )
    out = {r["team"]: r for r in derive_team_fields(box, "americanfootball_nfl").iter_rows(named=True)}
    assert (out["KC"]["points_for"], out["KC"]["points_against"], out["KC"]["margin"]) == (27, 24, 3)
    assert (out["BUF"]["points_for"], out["BUF"]["points_against"], out["BUF"]["margin"]) == (24, 27, -3)
    assert catalogue("americanfootball_nfl").team["points_against"].lower_is_better
