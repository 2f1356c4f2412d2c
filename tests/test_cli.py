"""The ``oddsforge`` command line: history imports of every real format, SQL, tokens, help, bad input."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from cli.main import build_parser, main
from stores import layout
from stores.lake import Lake

REAL = {
    "kaggle-nba": "nba_kaggle_odds_2008_2025/nba_2008-2025.csv",
    "sbr-nba": "nba_sbr_open_close_2016_2022/nba_sbr_games_2016_2022.csv",
    "nba-team-box": "nba_team_box_2018_2025/nba_team_box_2018_2025.csv",
    "nba-player-logs": "nba_player_gamelogs_2024_25/nba_player_gamelogs_2024_25.csv",
    "nfl-lines": "nfl_spreadspoke_nfelo/nfl_games_scores_lines_1999_2022.csv",
}
EXPECTED = {  # games, stat rows: from the files' READMEs and test_history_import
    "kaggle-nba": (23_118, 0),
    "sbr-nba": (6_470, 0),
    "nba-team-box": (9_514, 19_028),
    "nba-player-logs": (1_230, 18_851),
    "nfl-lines": (6_421, 0),
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sql(capsys: pytest.CaptureFixture[str], query: str) -> list[dict]:
    code, out, _ = run(capsys, "sql", query, "--json")
    assert code == 0
    return json.loads(out)


@pytest.fixture(scope="module")
def imported(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every real file imported into one fresh lake through the CLI (``--json`` reports)."""
    lake = tmp_path_factory.mktemp("lake")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODDSFORGE_LAKE", str(lake))
        reports = {}
        for fmt, rel in REAL.items():
            buf = io.StringIO()
            with redirect_stdout(buf):
                assert (
                    main(["import-history", "--format", fmt, str(shared_data / "real" / rel), "--json"]) == 0
                )
            reports[fmt] = json.loads(buf.getvalue())
    return {"lake": lake, "reports": reports}


@pytest.mark.parametrize("fmt", list(REAL))
def test_import_reports_counts(imported: dict, fmt: str) -> None:
    report = imported["reports"][fmt]
    assert (report["games"], report["stat_rows"]) == EXPECTED[fmt]
    assert report["sport"] == ("americanfootball_nfl" if fmt == "nfl-lines" else "basketball_nba")
    assert report["tables_rebuilt"]["games"] > 0


def test_import_writes_one_object_per_month(imported: dict) -> None:
    lake = Lake(root=str(imported["lake"]))
    keys = [*lake.list_keys("tables/games/"), *lake.list_keys("raw/game_results/")]
    periods = [layout.parse_period_key(k) for k in keys]
    assert periods and all(p is not None and p.day is None for p in periods)
    # 2007-08 .. 2024-25 NBA and 1999-2022 NFL: about 9 and 5 months a season, not a day each.
    assert len(nba := list(lake.list_keys("tables/games/basketball_nba/"))) < 200, len(nba)


@pytest.fixture
def lake_env(imported: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODDSFORGE_LAKE", str(imported["lake"]))


def test_hand_checked_games_reach_the_tidy_tables(lake_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # kaggle line 2: por @ sa 97-106, home favoured by 13, total 189.5, ML away +900 / home -1400
    g = sql(capsys, "SELECT * FROM games WHERE game_id = 'nba_20071030_POR_SAS'")[0]
    assert (g["home_score"], g["away_score"]) == (106, 97)
    lines = {
        r["market"]: r for r in sql(capsys, "SELECT * FROM lines WHERE game_id = 'nba_20071030_POR_SAS'")
    }
    assert lines["spreads"]["closing_line"] == -13.0 and lines["totals"]["closing_line"] == 189.5
    assert lines["h2h"]["closing_price_first"] == pytest.approx(1 + 100 / 1400)
    assert lines["h2h"]["closing_price_second"] == pytest.approx(10.0)

    # SBR 2016-10-25 NYK @ CLE 88-117: spread -9.5 -> -9.0, total 205.5 -> 206.0, ML +355 / -450
    sbr = {
        r["market"]: r
        for r in sql(
            capsys, "SELECT * FROM lines WHERE game_id = 'nba_20161025_NYK_CLE' AND bookmaker = 'sbr'"
        )
    }
    assert (sbr["spreads"]["opening_line"], sbr["spreads"]["closing_line"]) == (-9.5, -9.0)
    assert (sbr["totals"]["opening_line"], sbr["totals"]["closing_line"]) == (205.5, 206.0)
    assert sbr["h2h"]["closing_price_first"] == pytest.approx(1 + 100 / 450)
    assert sbr["h2h"]["closing_price_second"] == pytest.approx(4.55)
    # The same game from kaggle and SBR is one game (canonical ids join the sources).
    assert sql(capsys, "SELECT count(*) AS n FROM games WHERE game_id = 'nba_20161025_NYK_CLE'")[0]["n"] == 1

    # NFL 1999-09-12 ARI @ PHI 25-24, PHI +3 closing, total 37
    nfl = sql(capsys, "SELECT * FROM games WHERE game_id = 'nfl_19990912_ARI_PHI'")[0]
    assert (nfl["home_score"], nfl["away_score"], nfl["sport"]) == (24, 25, "americanfootball_nfl")
    nfl_lines = sql(capsys, "SELECT market, closing_line FROM lines WHERE game_id = 'nfl_19990912_ARI_PHI'")
    assert {("spreads", 3.0), ("totals", 37.0)} <= {(r["market"], r["closing_line"]) for r in nfl_lines}

    # Team box 2017-10-17 BOS @ CLE: CLE 102 pts 50 reb 19 ast; player log: Bam Adebayo 26 min 9 pts.
    cle = sql(
        capsys, "SELECT * FROM team_box_scores WHERE game_id = 'nba_20171017_BOS_CLE' AND team = 'CLE'"
    )[0]
    assert (cle["pts"], cle["reb"], cle["ast"]) == (102, 50, 19)
    query = "SELECT * FROM player_box_scores WHERE game_id = 'nba_20241023_ORL_MIA' AND player_name = ?"
    bam = sql(capsys, query.replace("?", "'Bam Adebayo'"))[0]
    assert (bam["minutes"], bam["pts"], bam["reb"], bam["team"]) == (26, 9, 5, "MIA")


def test_bad_file_names_file_line_column_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], shared_data: Path
) -> None:
    lake = tmp_path / "lake"
    monkeypatch.setenv("ODDSFORGE_LAKE", str(lake))
    real = (shared_data / "real" / REAL["kaggle-nba"]).read_text().splitlines()
    bad = tmp_path / "bad.csv"
    # a good file with one unparseable spread on data line 3 (file line 4)
    row = real[3].split(",")
    row[19] = "abc"
    bad.write_text("\n".join([*real[:3], ",".join(row), *real[4:40]]) + "\n")
    code, _, err = run(capsys, "import-history", "--format", "kaggle-nba", str(bad))
    assert code == 2
    assert "bad.csv" in err and "line 4" in err and "'spread'" in err and "Traceback" not in err
    assert not lake.exists() or not any(lake.rglob("*.parquet"))


def test_sql_token_and_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ODDSFORGE_LAKE", str(tmp_path / "empty"))
    # Views exist (typed and empty) before anything was ingested.
    assert sql(capsys, "SELECT count(*) AS n FROM lines") == [{"n": 0}]
    monkeypatch.setenv("ODDSFORGE_JWT_SECRET", "x" * 40)
    code, out, _ = run(capsys, "token", "alice")
    from api.auth import verify_token

    assert code == 0 and verify_token(out.strip(), "x" * 40) == "alice"
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"demo", "ui", "api", "import-history", "sql", "token"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: oddsforge" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
        ("SELECT * FROM nope", "Catalog Error: Table with name nope does not exist!"),
        ("SELECT CAST('x' AS INT)", "Conversion Error: Could not convert string 'x' to INT32"),  # at run time
    ],
)
def test_sql_with_a_bad_query_says_why_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    query: str,
    reason: str,
) -> None:
    monkeypatch.setenv("ODDSFORGE_LAKE", str(tmp_path / "empty"))
    for json_flag in ([], ["--json"]):
        code, out, err = run(capsys, "sql", query, *json_flag)
        assert (code, out, err) == (1, "", f"oddsforge sql: error: {reason}\n")


def test_backtest_on_real_nba_season(
    lake_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], repo_root: Path
) -> None:
    """The README's example: team_stats + odds_movement over the 2018-19 regular season."""
    model = repo_root / "docs" / "examples" / "form_and_steam.json"
    season = ("--sport", "basketball_nba", "--from", "2018-10-16", "--to", "2019-04-10")
    code, out, _ = run(capsys, "backtest", str(model), *season, "--json")
    assert code == 0
    report = json.loads(out)
    s = report["summary"]
    assert report["games_in_span"] == 1230
    # kaggle and SBR both price every game of that season: two bookmakers' lines per game
    assert s["analyses"] == 2 * 1230
    assert s["wins"] + s["losses"] + s["pushes"] == s["qualifying"] > 1000
    assert s["graded"] == s["wins"] + s["losses"] and 0.4 < s["accuracy"] < 0.6
    assert [m["month"] for m in report["monthly"]] == [
        "2018-10",
        "2018-11",
        "2018-12",
        "2019-01",
        "2019-02",
        "2019-03",
        "2019-04",
    ]
    assert sum(m["qualifying"] for m in report["monthly"]) == s["qualifying"]
    # Units at quarter-Kelly stakes beside the flat ones, the month's adding up to the season's.
    assert report["kelly"] == {"fraction": 0.25, "max_stake": 0.05, "unit": 0.01}
    assert 0 < s["kelly_units"] <= 5 * s["graded"]
    assert s["kelly_roi"] == pytest.approx(s["kelly_profit"] / s["kelly_units"])
    assert sum(m["kelly_units"] for m in report["monthly"]) == pytest.approx(s["kelly_units"])
    code, out, _ = run(capsys, "backtest", str(model), *season, "--kelly-fraction", "0.1")
    assert code == 0 and "accuracy" in out and "2019-04" in out and "at 0.1 Kelly" in out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"data_sources": {"team_stats": {"weight": 1, "fields": ["shoe_size"]}}},
            ["team_stats", "shoe_size"],
        ),
        ({"min_confidence": 0.4}, ["min_confidence", "0.5"]),
    ],
)
def test_backtest_rejects_a_bad_model_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], repo_root: Path, change: dict, named: list[str]
) -> None:
    model = json.loads((repo_root / "docs" / "examples" / "form_and_steam.json").read_text()) | change
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(model))
    code, _, err = run(
        capsys,
        "backtest",
        str(bad),
        "--sport",
        "basketball_nba",
        "--from",
        "2018-10-16",
        "--to",
        "2018-10-20",
    )
    assert code == 2 and "Traceback" not in err
    assert all(word in err for word in named), err


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["check", "(temperature - 32) * 0.01 + wind / 20", "--fields", "temperature,wind"], 0, {"ok": True}),
        (["check", "__import__('os')", "--fields", "a"], 1, {"ok": False}),
        (["check", "b * 2", "--fields", "a"], 1, {"ok": False}),
        (["eval", "(a - 32) * 0.01", "--row", '{"a": 50}'], 0, {"ok": True, "value": 0.18}),
        (["eval", "9**9**9", "--row", '{"a": 1}'], 1, {"ok": False}),
        (["eval", "a / 0", "--row", '{"a": 1}'], 1, {"ok": False, "value": None}),
    ],
)
def test_formula_commands(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, expected: dict
) -> None:
    rc, out, _ = run(capsys, "formula", *argv)
    payload = json.loads(out)
    assert rc == code
    assert {k: payload.get(k) for k in expected} == expected


def test_dbt_lines_stay_off_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """dagster-dbt echoes each dbt line to stdout; a CLI's stdout is its report, so only dbt's summary
    reaches the progress lines, and a failed build shows everything on stderr."""
    from cli import runner

    def build(_: str) -> None:
        print("1 of 2 START sql table model main.leaderboard")
        print("Done. PASS=2 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2")

    progress: list[str] = []
    monkeypatch.setattr(runner, "run_job", build)
    runner.run_dbt_job("marts_job", progress.append)
    assert progress == ["dbt build: PASS=2 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2"]
    assert capsys.readouterr().out == ""

    def failing(_: str) -> None:
        print("Database Error in model leaderboard")
        raise RuntimeError("dbt build failed")

    monkeypatch.setattr(runner, "run_job", failing)
    with pytest.raises(RuntimeError):
        runner.run_dbt_job("marts_job", progress.append)
    out, err = capsys.readouterr()
    assert out == "" and "Database Error in model leaderboard" in err
