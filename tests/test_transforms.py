"""Custom-dataset sources (SPEC 4 "custom data"): transforms by hand, the joins as of the game date,
a property test against a scalar reference written from the seed's ``evaluate_custom_data``, and the
engine end to end."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.datasets.formula import check_formula
from domain.datasets.transforms import DatasetRows, custom_scores, custom_sources
from domain.datasets.validation import typed_rows
from domain.models.config import DataType, parse_model_config
from domain.models.engine import CUSTOM_SCORES
from domain.tables.schemas import GAMES, conform
from services.custom_scores import dataset_rows, load_custom_scores
from services.sandbox import evaluate_checked, make_interpreter
from stores.datasets import DatasetStore
from stores.lake import Lake
from tests.test_engine import D3, G3, G4, explained_day, model, only, tiny_league

SPORT = "basketball_nba"
DAY0, DAY1 = dt.date(2024, 1, 10), dt.date(2024, 1, 11)
# (game_id, game date, home, away)
SLATE = [
    ("g0", DAY0, "BOS", "NYK"),
    ("g1", DAY0, "LAL", "MIA"),
    ("g2", DAY1, "NYK", "LAL"),
    ("g3", DAY1, "MIA", "BOS"),
]


def games_frame(slate: list[tuple[str, dt.date, str, str]] = SLATE) -> pl.DataFrame:
    if not slate:
        return pl.DataFrame(schema=GAMES)
    return conform(
        pl.DataFrame(
            [
                {"game_id": g, "sport": SPORT, "game_date": d, "home_team": h, "away_team": a}
                for g, d, h, a in slate
            ]
        ),
        GAMES,
    )


def payload(sources: Mapping[str, Mapping[str, Any]], market: str = "spreads", model_id: str = "m") -> dict:
    return {
        "model_id": model_id,
        "version": 1,
        "market": market,
        "data_sources": {name: {"weight": 1.0, "dataset_id": "ds", **s} for name, s in sources.items()},
    }


def run(
    source: Mapping[str, Any],
    data_type: DataType,
    frame: pl.DataFrame,
    market: str = "spreads",
    games: pl.DataFrame | None = None,
) -> dict[str, float | None]:
    """Scores of one source by game id (absent games have no row)."""
    out = custom_scores(
        custom_sources([payload({"c": source}, market)]),
        {"ds": DatasetRows(data_type, frame)},
        games_frame() if games is None else games,
    )
    assert out.schema == pl.Schema(CUSTOM_SCORES)
    assert out["game_id"].is_unique().all()
    return dict(zip(out["game_id"], out["score"], strict=True))


def game_level(**fields: list[Any]) -> pl.DataFrame:
    return pl.DataFrame({"game_id": ["g0", "g1", "g2", "g3"], **fields})


# ---- the transformations, by hand ----------------------------------------------------------------

LINEAR = {"field": "temp", "transformation": "linear", "min_value": 32, "max_value": 100}


@pytest.mark.parametrize(
    ("invert", "expected"),
    [
        # (50 - 32) / 68; 120 is beyond max_value (clamped to 1); 10 below min_value (clamped to 0).
        (False, {"g0": 18 / 68, "g1": 1.0, "g2": 0.0, "g3": None}),
        (True, {"g0": 1 - 18 / 68, "g1": 0.0, "g2": 1.0, "g3": None}),
    ],
)
def test_linear_with_invert_and_clamp(invert: bool, expected: dict) -> None:
    got = run(LINEAR | {"invert": invert}, "game_level", game_level(temp=[50.0, 120.0, 10.0, None]))
    assert got == expected


def test_threshold_is_strictly_above() -> None:
    frame = game_level(wind=[15.0, 15.5, 14.0, None])
    source = {"field": "wind", "transformation": "threshold", "threshold": 15}
    assert run(source, "game_level", frame) == {"g0": 0.0, "g1": 1.0, "g2": 0.0, "g3": None}
    inverted = run(source | {"invert": True}, "game_level", frame)
    assert inverted == {"g0": 1.0, "g1": 0.0, "g2": 1.0, "g3": None}


def test_percentile_counts_ties_half_among_all_values() -> None:
    # Values 1, 2, 2, 3, 8 (and a missing one): n = 5 numbers. Only g0..g2 are scored, but every row
    # of the dataset counts: 2 -> (1 + 0.5 * 2) / 5 = 0.4; 1 -> 0.5 / 5 = 0.1; 3 -> (3 + 0.5) / 5 = 0.7.
    frame = pl.DataFrame(
        {"game_id": ["g0", "g1", "g2", "x1", "x2", "x3"], "v": [2.0, 1.0, 3.0, 2.0, 8.0, None]}
    )
    source = {"field": "v", "transformation": "percentile"}
    assert run(source, "game_level", frame) == {"g0": 0.4, "g1": 0.1, "g2": 0.7}
    assert run(source | {"invert": True}, "game_level", frame) == {"g0": 0.6, "g1": 0.9, "g2": 1 - 0.7}


def test_percentile_of_a_missing_value_is_missing() -> None:
    frame = game_level(v=[None, 1.0, 1.0, 3.0])
    got = run({"field": "v", "transformation": "percentile"}, "game_level", frame)
    assert got == {"g0": None, "g1": 1 / 3, "g2": 1 / 3, "g3": 2.5 / 3}


def test_custom_formula_seed_example_and_failing_rows_are_missing() -> None:
    # The seed's formula: (72 - 32) * 0.01 + 5 / 20 = 0.65. g1: wind 0 divides by zero in the second
    # formula; g2: a missing temperature; g3: log of a negative number. None of them raises.
    frame = game_level(temp=[72.0, 50.0, None, -1.0], wind_speed=[5.0, 0.0, 5.0, 10.0])
    seed = {"transformation": "custom_formula", "formula": "(temperature - 32) * 0.01 + (wind_speed / 20)"}
    assert run(seed, "game_level", frame.rename({"temp": "temperature"})) == {
        "g0": pytest.approx(0.65),
        "g1": pytest.approx(0.18),
        "g2": None,
        "g3": pytest.approx(0.17),  # (-1 - 32) * 0.01 + 10 / 20
    }
    ratio = {"transformation": "custom_formula", "formula": "log(temp) / wind_speed"}
    got = run(ratio, "game_level", frame)
    assert got["g1"] is None and got["g2"] is None and got["g3"] is None
    assert got["g0"] == pytest.approx(0.855, abs=1e-3)  # ln 72 / 5 = 0.8553


def test_formula_the_dataset_no_longer_supports_scores_missing() -> None:
    # A stored formula naming a field a newer dataset version dropped: missing for every game.
    source = {"transformation": "custom_formula", "formula": "gone * 2"}
    assert run(source, "game_level", game_level(temp=[1.0, 2.0, 3.0, 4.0])) == dict.fromkeys(
        ["g0", "g1", "g2", "g3"]
    )


def test_a_field_the_dataset_lacks_or_a_non_numeric_field_scores_missing() -> None:
    frame = game_level(note=["a", "b", "c", "d"])
    assert set(run({"field": "note", "transformation": "percentile"}, "game_level", frame).values()) == {None}
    assert set(run(LINEAR, "game_level", frame).values()) == {None}


def test_booleans_score_as_one_and_zero() -> None:
    frame = game_level(dome=[True, False, None, True])
    source = {"field": "dome", "transformation": "threshold", "threshold": 0.5}
    assert run(source, "game_level", frame) == {"g0": 1.0, "g1": 0.0, "g2": None, "g3": 1.0}


# ---- the joins -----------------------------------------------------------------------------------


def test_game_level_rows_as_of_the_game_date() -> None:
    frame = pl.DataFrame(
        {
            "game_id": ["g0", "g0", "g1", "g1", "g1", "g2"],
            "date": [DAY0, DAY0 + dt.timedelta(days=1), DAY0, DAY0, None, DAY1],
            "temp": [40.0, 99.0, 50.0, 60.0, 90.0, 70.0],
        }
    )
    got = run(LINEAR, "game_level", frame)
    # g0: the row dated after the game is not used; g1: two rows on the day, the later one in the
    # file wins over the first and over the undated one; g3 has no row at all.
    assert got == {"g0": 8 / 68, "g1": 28 / 68, "g2": 38 / 68}


def test_game_level_without_dates_takes_the_last_row_of_a_game() -> None:
    frame = pl.DataFrame({"game_id": ["g0", "g0", "g1"], "temp": [40.0, 66.0, 32.0]})
    assert run(LINEAR, "game_level", frame) == {"g0": 0.5, "g1": 0.0}


TEAM_ROWS = pl.DataFrame(
    {
        "team": ["Boston Celtics", "BOS", "NYK", "LAL", "MIA", "BOS"],
        "date": [DAY0 - dt.timedelta(days=3), DAY0 + dt.timedelta(days=5), DAY0, DAY1, DAY0, DAY1],
        "rest": [4.0, 0.0, 1.0, 2.0, 3.0, 1.0],
    }
)
REST = {"field": "rest", "transformation": "linear", "min_value": 0, "max_value": 4}


def test_team_level_as_of_the_game_date() -> None:
    # g0 (DAY0) BOS-NYK: BOS's row dated DAY0 + 5 is after the game, so its DAY0 - 3 row (named
    # "Boston Celtics") counts: 1.0; NYK's row dated on the game day counts: 0.25.
    # g1 (DAY0) LAL-MIA: LAL's only row is dated DAY1, after the game: missing.
    # g2 (DAY1) NYK-LAL: 0.25 vs 0.5.  g3 (DAY1) MIA-BOS: 0.75 vs BOS's DAY1 row 0.25.
    got = run(REST, "team_level", TEAM_ROWS)
    assert got == {"g0": 0.5 + (1.0 - 0.25) / 2, "g2": 0.5 + (0.25 - 0.5) / 2, "g3": 0.5 + (0.75 - 0.25) / 2}


def test_team_level_totals_average_both_teams_and_invert_mirrors_sides() -> None:
    totals = run(REST, "team_level", TEAM_ROWS, market="totals")
    assert totals == {"g0": (1.0 + 0.25) / 2, "g2": (0.25 + 0.5) / 2, "g3": (0.75 + 0.25) / 2}
    inverted = run(REST | {"invert": True}, "team_level", TEAM_ROWS)
    assert inverted == {
        "g0": 0.5 + (0.0 - 0.75) / 2,
        "g2": 0.5 + (0.75 - 0.5) / 2,
        "g3": 0.5 + (0.25 - 0.75) / 2,
    }


def test_team_level_missing_value_on_one_side_is_missing() -> None:
    rows = TEAM_ROWS.with_columns(pl.when(pl.col("team") == "NYK").then(None).otherwise("rest").alias("rest"))
    got = run(REST, "team_level", rows)
    assert got["g0"] is None and got["g2"] is None
    assert got["g3"] == 0.75


def test_sources_are_per_model_and_market_and_disabled_ones_score_nothing() -> None:
    same = {"field": "rest", "transformation": "linear", "min_value": 0, "max_value": 4}
    models = custom_sources(
        [
            payload({"a": same, "off": same | {"enabled": False}}, "spreads", "m1"),
            payload({"a": same}, "totals", "m2"),
            payload({"b": same | {"dataset_id": "unknown"}}, "h2h", "m3"),
        ]
    )
    assert models["source_name"].to_list() == ["a", "a", "b"]
    out = custom_scores(models, {"ds": DatasetRows("team_level", TEAM_ROWS)}, games_frame())
    got = {(m, s, g): v for m, _, s, g, v in out.iter_rows()}
    assert got[("m1", "a", "g0")] == 0.875 and got[("m2", "a", "g0")] == 0.625
    assert {m for m, _, _ in got} == {"m1", "m2"}  # m3's dataset is absent; "off" is disabled


def test_nothing_to_score_gives_an_empty_frame() -> None:
    empty = custom_scores(custom_sources([]), {}, games_frame())
    assert empty.is_empty() and empty.schema == pl.Schema(CUSTOM_SCORES)
    no_games = custom_scores(
        custom_sources([payload({"c": REST})]), {"ds": DatasetRows("team_level", TEAM_ROWS)}, games_frame([])
    )
    assert no_games.is_empty()


# ---- a scalar reference from the seed's evaluate_custom_data --------------------------------------

_INTERPRETER = make_interpreter()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def evaluate_custom_data(
    source: dict[str, Any], row: dict[str, Any], rows: list[dict[str, Any]]
) -> float | None:
    """The seed's function for one row, with SPEC 4's percentile, invert and missing values."""
    t = source["transformation"]
    if t == "custom_formula":
        fields = [k for k in row if k not in ("game_id", "team", "date")]
        score = evaluate_checked(_INTERPRETER, check_formula(source["formula"], fields), row).value
    else:
        value = _number(row.get(source["field"]))
        if value is None:
            return None
        if t == "linear":
            score = (value - source["min_value"]) / (source["max_value"] - source["min_value"])
        elif t == "threshold":
            score = 1.0 if value > source["threshold"] else 0.0
        else:
            everything = [v for r in rows if (v := _number(r.get(source["field"]))) is not None]
            less = sum(1 for v in everything if v < value)
            equal = sum(1 for v in everything if v == value)
            score = (less + 0.5 * equal) / len(everything)
    if score is None:
        return None
    if source.get("invert", False):
        score = 1 - score
    return max(0.0, min(score, 1.0))


def get_custom_data(rows: list[dict[str, Any]], game_id: str, day: dt.date) -> dict[str, Any] | None:
    """A game-level row: not dated after the game; the latest date, then the last in the file."""
    seen = [
        (r.get("date") is not None, r.get("date") or day, i, r)
        for i, r in enumerate(rows)
        if r["game_id"] == game_id and (r.get("date") is None or r["date"] <= day)
    ]
    return max(seen, key=lambda x: x[:3])[3] if seen else None


def get_team_data(rows: list[dict[str, Any]], team: str, day: dt.date) -> dict[str, Any] | None:
    """A team's latest row dated on or before the game day (the last in the file among equals)."""
    seen = [(r["date"], i, r) for i, r in enumerate(rows) if r["team"] == team and r["date"] <= day]
    return max(seen, key=lambda x: x[:2])[2] if seen else None


def reference_score(
    source: dict[str, Any], market: str, data_type: str, rows: list[dict[str, Any]], game: tuple
) -> float | None:
    game_id, day, home, away = game
    if data_type == "game_level":
        row = get_custom_data(rows, game_id, day)
        return None if row is None else evaluate_custom_data(source, row, rows)
    sides = [get_team_data(rows, team, day) for team in (home, away)]
    s_home, s_away = (None if r is None else evaluate_custom_data(source, r, rows) for r in sides)
    if s_home is None or s_away is None:
        return None
    return (s_home + s_away) / 2 if market == "totals" else 0.5 + (s_home - s_away) / 2


# Mostly present values, with ties (the sampled ones) and now and then a missing one.
VALUES = st.floats(-100, 100, allow_subnormal=False) | st.sampled_from([-5.0, 0.0, 1.5, 2.0, 10.0, None])
FORMULAS = ["x / y", "sqrt(x) + y", "(x - 32) * 0.01 + (y / 20)", "max(x, y) - min(x, y)", "log(x)", "x > y"]


@st.composite
def sources(draw: st.DrawFn) -> dict[str, Any]:
    t = draw(st.sampled_from(["linear", "threshold", "percentile", "custom_formula"]))
    source: dict[str, Any] = {"transformation": t, "invert": draw(st.booleans())}
    if t == "custom_formula":
        return source | {"formula": draw(st.sampled_from(FORMULAS))}
    source["field"] = draw(st.sampled_from(["x", "y"]))
    if t == "linear":
        low = draw(st.floats(-50, 50))
        source |= {"min_value": low, "max_value": low + draw(st.floats(0.5, 80))}
    elif t == "threshold":
        source["threshold"] = draw(st.sampled_from([0.0, 1.5, 2.0]) | st.floats(-50, 50))
    return source


@st.composite
def datasets(draw: st.DrawFn) -> tuple[DataType, list[dict[str, Any]]]:
    data_type: DataType = draw(st.sampled_from(["game_level", "team_level"]))
    dates = st.sampled_from([DAY0 + dt.timedelta(days=d) for d in range(-3, 4)])
    if data_type == "game_level":
        dated = draw(st.booleans())
        key = st.fixed_dictionaries(
            {"game_id": st.sampled_from(["g0", "g1", "g2", "g3", "other"])}
            | ({"date": st.none() | dates} if dated else {})
        )
    else:
        key = st.fixed_dictionaries({"team": st.sampled_from(["BOS", "NYK", "LAL", "MIA"]), "date": dates})
    rows = draw(
        st.lists(
            st.tuples(key, VALUES, VALUES).map(lambda r: r[0] | {"x": r[1], "y": r[2]}),
            min_size=4,
            max_size=20,
        )
    )
    return data_type, rows


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dataset=datasets(),
    configs=st.lists(
        st.tuples(sources(), st.sampled_from(["spreads", "h2h", "totals"])), min_size=1, max_size=4
    ),
)
def test_vectorised_transforms_equal_the_scalar_reference(
    dataset: tuple[DataType, list[dict[str, Any]]], configs: list[tuple[dict[str, Any], str]]
) -> None:
    data_type, rows = dataset
    schema = {"game_id": pl.String} if data_type == "game_level" else {"team": pl.String}
    frame = pl.DataFrame(rows, schema=schema | {"date": pl.Date, "x": pl.Float64, "y": pl.Float64})
    frame = frame.select([c for c in frame.columns if any(c in r for r in rows)])
    # Two models per config, so identical transforms are shared; the second one is a copy.
    payloads = [payload({f"s{i}": source}, market, f"m{i}") for i, (source, market) in enumerate(configs)]
    payloads += [payload({"copy": source}, market, f"c{i}") for i, (source, market) in enumerate(configs)]
    out = custom_scores(custom_sources(payloads), {"ds": DatasetRows(data_type, frame)}, games_frame())
    got = {(m, g): s for m, _, _, g, s in out.iter_rows()}
    assert len(got) == out.height
    for i, (source, market) in enumerate(configs):
        for game in SLATE:
            expected = reference_score(source, market, data_type, rows, game)
            for model_id in (f"m{i}", f"c{i}"):
                actual = got.get((model_id, game[0]))
                # Equal to the last bits: polars may divide in another order than Python (7/9 vs 7*(1/9)).
                same = actual == expected or (
                    actual is not None
                    and expected is not None
                    and actual == pytest.approx(expected, rel=1e-12)
                )
                assert same, (model_id, game, source, actual, expected)


# ---- the engine end to end -----------------------------------------------------------------------


def test_score_day_with_a_custom_team_level_source_by_hand() -> None:
    # Tiny league, D3: G3 LAL (home) v BOS, G4 MIA (home) v NYK (NYK has no rows).
    # Rest days as of 2024-01-03: LAL 2 (dated on the game day; 3 before), BOS 1 (its 9 is dated
    # after the game). linear 0..4: LAL 0.5, BOS 0.25 -> s = 0.5 + 0.25 / 2 = 0.625.
    # odds_movement (48 h) scores 0.8 on G3 at book_a, 0.5 on G4 (a single snapshot).
    rest = pl.DataFrame(
        {
            "team": ["LAL", "LAL", "BOS", "BOS", "MIA"],
            "date": [dt.date(2024, 1, 1), D3, dt.date(2024, 1, 2), dt.date(2024, 1, 4), dt.date(2024, 1, 2)],
            "rest_days": [3.0, 2.0, 1.0, 9.0, 0.0],
        }
    )
    sources = {
        "odds_movement": {"weight": 1, "time_window_hours": 48},
        "rest": {"weight": 3, "dataset_id": "ds", "field": "rest_days", "transformation": "linear",
                 "min_value": 0, "max_value": 4},
    }  # fmt: skip
    config = parse_model_config(
        {"model_id": "m", "name": "t", "creator_user_id": "u", "sport": SPORT, "data_sources": sources}
    )
    scores = custom_scores(
        custom_sources([config.to_payload()]),
        {"ds": DatasetRows("team_level", rest)},
        tiny_league().games.filter(pl.col("game_date") == D3),
    )
    analyses = explained_day(model(sources), tiny_league(), D3, custom_scores=scores)
    g3 = only(analyses, G3)
    assert g3["source_scores"] == pytest.approx([0.8, 0.625], abs=1e-12)
    assert g3["p"] == pytest.approx((1 * 0.8 + 3 * 0.625) / 4, abs=1e-12)  # 0.66875
    assert g3["pick"] == "home"
    g4 = only(analyses, G4)
    assert g4["source_scores"] == [0.5, None]
    assert g4["p"] == 0.5


# ---- loading from the lake -----------------------------------------------------------------------

REST_DS, LOW_DS = "u--ds-0a1b2c", "u--ds-0d0e0f"


def test_load_custom_scores_reads_each_datasets_current_usable_version(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    store = DatasetStore(lake, tmp_path / "warehouse")
    # Stored rows are typed rows of the uploaded text, as the datasets stage keeps them.
    upload = pl.DataFrame({"team": ["LAL", "BOS"], "date": ["2024-01-02", "01/02/2024"]})
    table = []
    for dataset_id, version, status, usable, rest in (
        (REST_DS, 1, "superseded", True, ["5", "5"]),
        (REST_DS, 2, "active", True, ["21", "11"]),
        (REST_DS, 3, "error", False, ["1", "99"]),
        (LOW_DS, 1, "active", False, ["1", "2"]),
    ):
        rows = typed_rows(upload.with_columns(rest_days=pl.Series(rest)), {})
        location = store.store_rows(dataset_id, version, rows, ("team", "date"), "warehouse")
        table.append(
            {"dataset_id": dataset_id, "version": version, "owner_user_id": "u", "data_type": "team_level",
             "status": status, "usable": usable, "storage": "warehouse", "location": location}
        )  # fmt: skip
    store.write_table(pl.DataFrame(table))
    sources = {
        name: {"weight": 1, "dataset_id": dataset_id, "field": "rest_days", "transformation": "percentile"}
        for name, dataset_id in (("rest", REST_DS), ("low", LOW_DS), ("gone", "u--ds-ffffff"))
    }
    config = parse_model_config(
        {"model_id": "m", "name": "t", "creator_user_id": "u", "sport": SPORT, "data_sources": sources}
    )
    games = tiny_league().games.filter(pl.col("game_date") == D3)

    loaded = dataset_rows(lake, [REST_DS, LOW_DS, "u--ds-ffffff"])
    assert list(loaded) == [REST_DS]  # LOW_DS's current version is not usable; the third is unknown
    assert loaded[REST_DS].data_type == "team_level"
    assert sorted(loaded[REST_DS].frame["rest_days"].to_list()) == [11, 21]  # version 2, the active one

    versions = pl.DataFrame({"config_json": [json.dumps(config.to_payload())]})
    from_rows = load_custom_scores(lake, versions, games)
    # G3 (LAL home v BOS): LAL's 21 is the higher of two values (0.75), BOS's 11 the lower (0.25):
    # 0.5 + (0.75 - 0.25) / 2. G4's teams have no rows.
    assert from_rows.rows() == [("m", 1, "rest", G3, 0.75)]
    assert load_custom_scores(lake, [config], games).equals(from_rows)
    builtin_only = parse_model_config(
        {"model_id": "b", "name": "t", "creator_user_id": "u", "sport": SPORT,
         "data_sources": {"odds_movement": {"weight": 1}}}
    )  # fmt: skip
    assert load_custom_scores(lake, [builtin_only], games).is_empty()
