"""Auto-tuning (issue 14 item 6): every trial scored as the engine scores it, walk-forward choices made
on earlier folds only, the best configuration saved as reported, and tuning runs disclosed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from domain.formats.sample_league import SEASON_START, generate_season
from domain.models.config import ModelConfig, parse_model_config
from domain.models.tuning import Replay, Trials, TuneSettings, draw_trials, tune
from domain.tables.schemas import GAMES, ODDS_SNAPSHOTS, PLAYER_BOX, TEAM_BOX, conform
from services.backtests import backtest_model
from services.tuning import run_tuning_job, tune_model
from stores.lake import Lake
from stores.layout import table_key
from stores.warehouse import backtest_counts

NBA = "basketball_nba"
FIRST, LAST = SEASON_START, SEASON_START + dt.timedelta(days=41)
FIGURES = ("analyses", "qualifying", "wins", "losses", "pushes", "graded")
RATIOS = ("accuracy", "profit", "roi", "brier")


def sample_lake(root: Path, first: dt.date = FIRST, last: dt.date = LAST) -> Lake:
    """The sample league's tidy tables for game dates ``first..last``, written as the pipeline does."""
    season = generate_season()
    lake = Lake(root=str(root))
    days = [first + dt.timedelta(days=d) for d in range((last - first).days + 1)]
    tables = {
        "games": (season.game_results, GAMES),
        "odds_snapshots": (season.odds_snapshots, ODDS_SNAPSHOTS),
        "team_box_scores": (season.team_box, TEAM_BOX),
        "player_box_scores": (season.player_box, PLAYER_BOX),
    }
    for table, (frame, schema) in tables.items():
        lake.write_daily(conform(frame, schema), lambda day, t=table: table_key(t, NBA, day), days)
    return lake


def model(dynamic: bool = False, **changes: Any) -> ModelConfig:
    payload = {
        "model_id": "tuner--form-0a1b2c",
        "creator_user_id": "tuner",
        "name": "Form",
        "sport": NBA,
        "market": "spreads",
        "data_sources": {
            "team_stats": {"weight": 0.5, "fields": ["net_rating"], "lookback_games": 8},
            "odds_movement": {"weight": 0.3, "time_window_hours": 24},
            "historical_performance": {"weight": 0.2, "lookback_days": 30},
        },
        "dynamic_weighting": dynamic,
        "min_confidence": 0.52,
        "max_confidence": 0.8,
    }
    return parse_model_config(payload | changes)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return sample_lake(tmp_path_factory.mktemp("tuning") / "lake")


def saved(config: ModelConfig, body: dict[str, Any]) -> ModelConfig:
    """The best configuration as a user would save it (through JSON, with the server's fields)."""
    server = {"model_id": config.model_id, "creator_user_id": config.creator_user_id, "version": 2}
    return parse_model_config(json.loads(json.dumps(body)) | server)


def with_trial(config: ModelConfig, trial: dict[str, Any]) -> dict[str, Any]:
    """``config``'s body with a reported trial's weights and threshold."""
    body = config.to_payload()
    for name, weight in trial["weights"].items():
        body["data_sources"][name]["weight"] = weight
    return body | {"min_confidence": trial["min_confidence"]}


def same_figures(reported: dict[str, Any], summary: dict[str, Any]) -> None:
    assert {k: reported[k] for k in FIGURES} == {k: summary[k] for k in FIGURES}
    for key in RATIOS:
        assert reported[key] == pytest.approx(summary[key], rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic weighting"])
def test_a_tuned_configuration_reports_what_a_backtest_of_it_saved_gives(lake: Lake, dynamic: bool) -> None:
    config = model(dynamic)
    report = tune_model(lake, config, FIRST, LAST, TuneSettings(folds=3, trials=60, seed=1))
    assert report["configurations"] == 60 and report["dynamic_weighting"] is dynamic
    best = saved(config, report["best_config"])
    same_figures(report["in_sample"], backtest_model(lake, best, FIRST, LAST)["summary"])
    same_figures(report["baseline"], backtest_model(lake, config, FIRST, LAST)["summary"])
    assert report["best"]["trial"] > 0, "a search of 60 found nothing better than the model itself"
    assert report["in_sample"]["roi"] >= report["baseline"]["roi"] - 1e-9 or (
        report["in_sample"]["graded"] > report["baseline"]["graded"]
    )


def test_out_of_sample_figures_are_a_backtest_of_the_fold_with_the_earlier_folds_choice(lake: Lake) -> None:
    """Without dynamic weighting a fold's figures depend on that fold alone: each reported fold equals a
    plain backtest of the configuration chosen before it, over the fold's days."""
    config = model()
    report = tune_model(lake, config, FIRST, LAST, TuneSettings(folds=3, trials=40, seed=2))
    assert [f["fold"] for f in report["walk_forward"]] == [1, 2]
    totals = dict.fromkeys(FIGURES, 0)
    for fold in report["walk_forward"]:
        chosen = saved(config, with_trial(config, fold["chosen"]))
        start, end = (dt.date.fromisoformat(d) for d in fold["test"])
        assert dt.date.fromisoformat(fold["train"][1]) < start
        same_figures(fold["out_of_sample"], backtest_model(lake, chosen, start, end)["summary"])
        for key in FIGURES:
            totals[key] += fold["out_of_sample"][key]
    assert {k: report["out_of_sample"][k] for k in FIGURES} == totals


def test_each_fold_is_judged_with_the_choice_made_before_it() -> None:
    """Hand-made: source a calls every winner of the first 60 days and b every loser; over the last
    30 days (three lines a day) it is the other way round. Walk-forward picks the a-heavy trial on
    the earlier folds and reports it on the next (30-0, then 0-90); the whole span prefers b."""
    first_wins = np.array([d % 2 == 0 for d in range(60)] + [r % 2 == 0 for r in range(90)])
    a_right = np.array([True] * 60 + [False] * 90)
    a_says_first = first_wins == a_right
    scores = np.where(a_says_first[:, None], [0.8, 0.4], [0.2, 0.6])
    replay = Replay(
        source_names=("team_stats", "odds_movement"),
        day=np.array(list(range(60)) + [60 + r // 3 for r in range(90)], dtype="datetime64[D]"),
        scores=scores,
        multipliers=np.ones((150, 2)),
        result=np.where(first_wins[:, None], [1, -1], [-1, 1]).astype(np.int8),
        price=np.full((150, 2), 2.0),
    )
    trials = Trials(weights=np.array([[0.9, 0.1], [0.1, 0.9]]), min_confidence=np.array([0.5, 0.5]))
    config = model(
        data_sources={
            "team_stats": {"weight": 0.9, "fields": ["pace"]},
            "odds_movement": {"weight": 0.1, "time_window_hours": 24},
        },
        min_confidence=0.5,
    )
    report = tune(replay, config, TuneSettings(folds=3), trials)
    walk = report["walk_forward"]
    assert [(f["train"], f["test"]) for f in walk] == [
        (["1970-01-01", "1970-01-30"], ["1970-01-31", "1970-03-01"]),
        (["1970-01-01", "1970-03-01"], ["1970-03-02", "1970-03-31"]),
    ]
    assert [f["chosen"]["trial"] for f in walk] == [0, 0]
    assert [(f["out_of_sample"]["wins"], f["out_of_sample"]["losses"]) for f in walk] == [(30, 0), (0, 90)]
    oos = report["out_of_sample"]
    assert (oos["wins"], oos["losses"], oos["profit"], oos["roi"]) == (30, 90, -60.0, -0.5)
    assert report["best"] == {
        "trial": 1,
        "weights": {"team_stats": 0.1, "odds_movement": 0.9},
        "min_confidence": 0.5,
    }
    assert (report["in_sample"]["wins"], report["in_sample"]["losses"]) == (90, 60)
    assert report["best_config"]["data_sources"]["odds_movement"]["weight"] == 0.9
    assert report["in_sample"]["brier"] == pytest.approx((90 * 0.44**2 + 60 * 0.56**2) / 150)


def test_draws_are_distinct_valid_and_start_with_the_model_itself() -> None:
    config = model()
    trials = draw_trials(config, ("team_stats", "odds_movement", "historical_performance"), 500, 3)
    assert len(trials) == 500
    assert trials.weights[0].tolist() == [0.5, 0.3, 0.2] and trials.min_confidence[0] == 0.52
    rows = {(*w, t) for w, t in zip(trials.weights.tolist(), trials.min_confidence.tolist(), strict=True)}
    assert len(rows) == 500
    assert (trials.weights >= 0.001).all() and (trials.min_confidence >= 0.5).all()
    assert (trials.min_confidence <= 0.7).all()
    assert all(json.loads(json.dumps(float(w))) == w for w in trials.weights.ravel())
    one = draw_trials(
        model(data_sources={"team_stats": {"weight": 1, "fields": ["pace"]}}), ("team_stats",), 500, 3
    )
    assert len(one) == 21  # one source: only the threshold can change (0.50 .. 0.70)


def test_a_recorded_tuning_run_counts_its_configurations_in_the_disclosure(
    lake: Lake, tmp_path: Path
) -> None:
    config = model()
    params = {
        "config": config.to_payload(),
        "from": FIRST.isoformat(),
        "to": LAST.isoformat(),
        "settings": TuneSettings(folds=2, trials=25).as_params(),
    }
    before = backtest_counts(lake).filter(model_id=config.model_id)["backtests"].sum()
    report = run_tuning_job(lake, "job-00112233445566ff", params, lambda done, total: None)
    assert report["recorded_as"].startswith(f"inbox/tuning/{config.model_id}/job-00112233445566ff")
    after = backtest_counts(lake).filter(model_id=config.model_id)["backtests"].sum()
    assert after - before == report["configurations"] == 25


def test_the_tune_command_prints_the_report_and_its_progress_on_stderr(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    monkeypatch.setenv("ODDSFORGE_LAKE", lake.root)
    body = {k: v for k, v in model().to_payload().items() if k not in ("model_id", "creator_user_id")}
    path = tmp_path / "form.json"
    path.write_text(json.dumps(body))
    span = ["--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    assert main(["tune", str(path), *span, "--trials", "30", "--folds", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["configurations"] == 30 and len(report["walk_forward"]) == 2
    assert "tune: scoring the sources" in err and "30 configurations evaluated" in err
    parse_model_config(report["best_config"] | {"model_id": "x--y-0a1b2c", "creator_user_id": "x"})
    assert main(["tune", str(path), *span, "--trials", "30"]) == 0
    assert "walk-forward, out" in capsys.readouterr().out
    assert main(["tune", str(path), "--from", LAST.isoformat(), "--to", FIRST.isoformat()]) == 2
    assert "before it starts" in capsys.readouterr().err
    assert main(["tune", str(path), *span, "--folds", "1"]) == 2
    assert "folds must be 2 to 10" in capsys.readouterr().err
