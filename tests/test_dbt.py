"""The dbt marts over a real lake: built through the Dagster assets (dagster-dbt) on a local lake, with
dbt's Python API on an empty lake and on S3, and checked against the Python rules they restate."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path
from typing import get_args

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster_dbt import DbtProject
from dbt.cli.main import dbtRunner

from assets.marts import (
    DBT_DIR,
    dbt_build_args,
    dbt_resource,
    manifest_stale,
    marts,
    prepare_manifest,
)
from domain.marketplace.performance import (
    MIN_GRADED,
    MODEL_PERFORMANCE,
    ROLLING_DAYS,
    SETTLED_PICKS,
    WILSON_Z,
    leaderboard,
    rolling_performance,
)
from domain.marketplace.ratings import (
    USER_REVIEWS,
    Moderation,
    Report,
    ReviewText,
    UserReview,
    mean_rating,
    review_id,
    review_rows,
)
from domain.models.registry import MODEL_VERSIONS
from domain.money.subscriptions import PAST_DUE_GRACE, SUBSCRIPTIONS, Status, with_access
from domain.tables.schemas import conform
from stores.lake import Lake
from stores.layout import month_of, month_table_key, table_key
from stores.warehouse import Warehouse, lake_connection

NBA, NFL, MLB = "basketball_nba", "americanfootball_nfl", "baseball_mlb"
AS_OF = dt.date(2024, 3, 31)
WINDOW_START = AS_OF - dt.timedelta(days=ROLLING_DAYS - 1)  # 2024-03-02

# Models (owner, id, sport, versions, public, status):
VERSIONS = [
    ("u1", "sixty", NBA, 1, True, "active"),
    ("u1", "twin", NBA, 1, True, "active"),
    ("u1", "old", NBA, 1, True, "active"),
    ("u1", "old", NBA, 2, True, "active"),
    ("u2", "five-oh", NBA, 1, True, "active"),
    ("u2", "gone", NBA, 1, True, "archived"),
    ("u3", "private", NBA, 1, False, "active"),
    ("u3", "idle", NBA, 1, True, "active"),
    ("u3", "nfl", NFL, 1, True, "active"),
    # SPEC 5's worked set (tests/test_performance.py works its scores out by hand):
    ("u4", "favourites", MLB, 1, True, "active"),  # h2h favourites at 1.30
    ("u4", "ats58", MLB, 1, True, "active"),  # spreads at -110
    ("u4", "perfect5", MLB, 1, True, "active"),  # 5-0 at -110
]
MARKETS = {"favourites": "h2h"}
"""Models not in the spreads market."""
MINUS_110 = 1 + 100 / 110
PRICES = {"favourites": 1.30}
"""Decimal price of every pick of a model (-110 unless given): its break-even is 1 / price."""
# Daily rows (model, version, sport, date, wins, losses, profit):
PERFORMANCE = [
    ("sixty", 1, NBA, AS_OF - dt.timedelta(days=1), 30, 20, 5.0),
    ("sixty", 1, NBA, AS_OF, 30, 20, 5.0),  # 60-40, ROI 0.10
    ("twin", 1, NBA, AS_OF, 60, 40, 15.0),  # 60-40, ROI 0.15: wins the tie
    ("five-oh", 1, NBA, WINDOW_START - dt.timedelta(days=1), 50, 0, 45.0),  # a day too old
    ("five-oh", 1, NBA, WINDOW_START, 1, 0, 0.9),  # first day of the window
    ("five-oh", 1, NBA, AS_OF, 5, 0, 4.5),  # 6-0 in the window: Wilson 0.61, not established
    ("old", 1, NBA, AS_OF, 100, 0, 90.0),  # superseded by version 2
    ("old", 2, NBA, AS_OF, 10, 20, -11.0),
    ("gone", 1, NBA, AS_OF, 5, 5, -0.5),
    ("private", 1, NBA, AS_OF, 90, 10, 80.0),
    ("nfl", 1, NFL, AS_OF - dt.timedelta(days=3), 55, 45, 3.0),
    ("favourites", 1, MLB, AS_OF, 72, 28, 72 * 0.3 - 28),  # 72% and -6.4 units
    ("ats58", 1, MLB, AS_OF - dt.timedelta(days=1), 20, 10, 20 / 1.1 - 10),
    ("ats58", 1, MLB, AS_OF, 15, 15, 15 / 1.1 - 15),  # 35-25 (58%) over two days
    ("perfect5", 1, MLB, AS_OF, 5, 0, 5 / 1.1),
]
# Closing line value of daily rows (model, date) -> (mean, picks with a close, mean of squares):
CLV = {
    ("favourites", AS_OF): (-0.004, 100, 0.0001),
    ("ats58", AS_OF - dt.timedelta(days=1)): (0.02, 30, 0.0005),
    ("ats58", AS_OF): (0.004, 29, 0.0003),
    ("perfect5", AS_OF): (0.01, 1, 0.0001),
    ("sixty", AS_OF): (0.001, 50, 0.0002),
}
# Subscriptions (id, subscriber, model, status):
SUBS = [
    ("s1", "a", "sixty", "trial"),
    ("s2", "b", "sixty", "active"),
    ("s3", "c", "sixty", "cancelled"),
    ("s4", "d", "five-oh", "expired"),
    ("s5", "e", "nfl", "trial"),
    ("s7", "g", "sixty", "past_due"),  # failed a day ago: in its grace days, counts
    ("s8", "h", "sixty", "past_due"),  # failed four days ago: past its grace, does not
]
PAST_DUE_FOR = {"s7": dt.timedelta(days=1), "s8": dt.timedelta(days=4)}
"""How long before the build each past_due subscription's invoice failed."""
OWNERS = {model: owner for owner, model, *_ in VERSIONS}
SUB_TO_TWIN = {
    "subscription_id": "s6",
    "user_id": "f",
    "model_id": "twin",
    "creator_id": "u1",
    "status": "active",
}


def model_versions() -> pl.DataFrame:
    rows = [
        {
            "model_id": m,
            "version": v,
            "owner_user_id": owner,
            "name": m.title(),
            "sport": sport,
            "bet_type": "game",
            "market": MARKETS.get(m, "spreads"),
            "public": public,
            "price_cents": 0,
            "trial_days": 7,
            "status": status,
            "created_at": dt.datetime(2024, 1, v, tzinfo=dt.UTC),
        }
        for owner, m, sport, v, public, status in VERSIONS
    ]
    return conform(pl.DataFrame(rows), MODEL_VERSIONS)


def performance_rows() -> pl.DataFrame:
    rows = [
        {
            "model_id": m,
            "version": v,
            "sport": sport,
            "market": MARKETS.get(m, "spreads"),
            "date": d,
            "analyses": w + lo,
            "total_predictions": w + lo,
            "correct_predictions": w,
            "losses": lo,
            "pushes": 0,
            "graded": w + lo,
            "accuracy": w / (w + lo),
            "units": float(w + lo),
            "profit": profit,
            "roi": profit / (w + lo),
            "brier_score": 0.24,
            "avg_confidence": 0.6,
            "breakeven": 1 / PRICES.get(m, MINUS_110),
        }
        | dict(zip(["clv", "clv_picks", "clv_sq"], CLV.get((m, d), (None, 0, None)), strict=True))
        for m, v, sport, d, w, lo, profit in PERFORMANCE
    ]
    return conform(pl.DataFrame(rows), MODEL_PERFORMANCE)


def subscriptions() -> pl.DataFrame:
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"subscription_id": s, "user_id": u, "model_id": m, "creator_id": OWNERS[m], "status": st}
        | ({"past_due_since": now - PAST_DUE_FOR[s]} if s in PAST_DUE_FOR else {})
        for s, u, m, st in SUBS
    ]
    return conform(pl.DataFrame(rows), SUBSCRIPTIONS)


def settled_picks() -> pl.DataFrame:
    row = {
        "model_id": "sixty",
        "version": 1,
        "sport": NBA,
        "market": "spreads",
        "game_id": "nba_20240331_BOS_NYK",
        "game_date": AS_OF,
        "bookmaker": "b",
        "line": -3.0,
        "pick": "home",
        "confidence": 0.7,
        "qualifies": True,
        "pick_price": 1.909,
        "result": "won",
        "profit": 0.909,
    }
    return conform(pl.DataFrame([row]), SETTLED_PICKS)


def user_reviews() -> list[UserReview]:
    """sixty: three visible reviews (4, 4, 5), one hidden (1) and one reported (5); twin: none."""
    at = dt.datetime(2024, 3, 30, tzinfo=dt.UTC)
    report = Report("u9", "spam", at)
    hide = Moderation(1, "hide", "abusive", "ops", at, ("u9",))
    cases = [
        ("a", 4, (), ()),
        ("b", 4, (), ()),
        ("c", 5, (), ()),
        ("d", 1, (report,), (hide,)),
        ("e", 5, (report,), ()),
    ]
    return [
        UserReview(
            "sixty", review_id("sixty", user), user, (ReviewText(stars, "", at),), reports=r, decisions=d
        )
        for user, stars, r, d in cases
    ]


def fill_lake(lake: Lake) -> None:
    """The lake as the pipeline writes it: one object per table, per sport and day where partitioned,
    and a month object beside the day it replaces (a compaction in progress)."""
    lake.write_parquet(table_key("model_versions"), model_versions())
    lake.write_parquet(table_key("subscriptions"), subscriptions())
    perf = performance_rows()
    for (sport, day), part in perf.partition_by("sport", "date", as_dict=True).items():
        lake.write_parquet(table_key("model_performance", sport, day), part)
    lake.write_parquet(table_key("settled_picks", NBA, AS_OF), settled_picks())
    lake.write_parquet(table_key("user_reviews"), review_rows(user_reviews()))
    # Mid-compaction: the month object is written, the day it replaces not yet deleted (one row each).
    lake.write_parquet(month_table_key("settled_picks", NBA, month_of(AS_OF)), settled_picks())
    # The same for a month of model performance, as the compaction asset writes it (model by model).
    assert lake.compact_month(month_table_key("model_performance", NBA, month_of(AS_OF)), time.time())[1]


def query(path: Path, sql: str) -> pl.DataFrame:
    # Not read-only: dbt's in-process runs keep their (read-write) handle on the file open, and DuckDB
    # shares one instance per file and configuration within a process.
    with duckdb.connect(str(path)) as con:
        return con.execute(sql).pl()


def run_dbt(args: list[str], tmp: Path) -> None:
    """``dbt`` in this process through its Python API (no start-up cost), artifacts and logs under
    ``tmp``, never in the repository."""
    paths = ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
    logs = ["--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"), "--quiet"]
    result = dbtRunner().invoke([*args, *paths, *logs])
    assert result.success, result.exception


def build_marts(lake: Lake, warehouse: Warehouse) -> Path:
    """Materialise the Dagster dbt assets; the marts build they made current."""
    result = dg.materialize([marts], resources={"dbt": dbt_resource(), "lake": lake, "warehouse": warehouse})
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    current = warehouse.marts.current()
    assert current is not None
    return current


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The marts built by materialising the Dagster dbt assets over a filled local lake."""
    tmp = tmp_path_factory.mktemp("marts")
    lake = Lake(root=str(tmp / "lake"))
    fill_lake(lake)
    return build_marts(lake, Warehouse(directory=str(tmp / "warehouse")))


def test_an_analyst_holding_the_marts_never_blocks_a_build(tmp_path: Path) -> None:
    """Each build is a new file made current once complete: a read-only connection held on the
    current marts (DuckDB refuses to write a file anyone holds) blocks neither of two builds, keeps
    reading what it opened, and a new open reads the newest build. A failed build leaves the
    current one in place and nothing behind."""
    lake = Lake(root=str(tmp_path / "lake"))
    fill_lake(lake)
    warehouse = Warehouse(directory=str(tmp_path / "warehouse"))
    first = build_marts(lake, warehouse)
    held = duckdb.connect(str(first), read_only=True)
    count = "select count(*) from model_subscribers where subscribers > 0"
    try:
        assert held.execute(count).fetchone() == (2,)  # sixty (trial + active) and nfl
        more = pl.concat([subscriptions(), conform(pl.DataFrame([SUB_TO_TWIN]), SUBSCRIPTIONS)])
        lake.write_parquet(table_key("subscriptions"), more)
        second = build_marts(lake, warehouse)
        third = build_marts(lake, warehouse)
        assert len({first, second, third}) == 3
        assert held.execute(count).fetchone() == (2,)  # the held connection reads its own build
        with duckdb.connect(str(third), read_only=True) as fresh:
            assert fresh.execute(count).fetchone() == (3,)
            # dbt's views name the catalog after the file: every build's file keeps the name marts.
            assert fresh.execute("select count(*) from int_latest_model_versions").fetchone() == (11,)
    finally:
        held.close()
    # The serving snapshot and ``oddsforge sql`` read the current build.
    _, counts = warehouse.publish(lake, dt.datetime.now(dt.UTC))
    assert counts["model_subscribers"] == query(third, "select count(*) from model_subscribers").item()
    with lake_connection(lake, warehouse.marts.current()) as con:
        assert con.execute(count.replace("model_subscribers", "marts.model_subscribers")).fetchone() == (3,)

    builds = sorted(p.name for p in warehouse.marts.path.iterdir())
    lake.write_parquet(table_key("subscriptions"), subscriptions().with_columns(status=pl.lit("bogus")))
    resources = {"dbt": dbt_resource(), "lake": lake, "warehouse": warehouse}
    failed = dg.materialize([marts], resources=resources, raise_on_error=False)
    assert not failed.success  # a dbt test (accepted values of a subscription's status) fails
    assert warehouse.marts.current() == third
    assert sorted(p.name for p in warehouse.marts.path.iterdir()) == builds


def test_leaderboard_ranks_and_windows(built: Path) -> None:
    board = query(built, "select * from leaderboard order by sport, rank")
    nba = board.filter(pl.col("sport") == NBA)
    # 60-40 beats 5-0 (6-0 here): under 50 graded picks a window is not established; of two 60-40
    # records the higher ROI wins; the private and the archived models are not listed.
    assert nba["model_id"].to_list() == ["twin", "sixty", "five-oh", "old", "idle"]
    assert nba["rank"].to_list() == [1, 2, 3, 4, 5]
    rows = {r["model_id"]: r for r in board.iter_rows(named=True)}
    assert (rows["five-oh"]["graded"], rows["five-oh"]["wins"]) == (6, 6)  # the day before the window is out
    assert (rows["old"]["version"], rows["old"]["graded"]) == (2, 30)  # the latest version only
    assert (rows["idle"]["graded"], rows["idle"]["performance_score"]) == (0, 0.0)
    assert rows["nfl"]["rank"] == 1
    assert rows["sixty"]["roi"] == pytest.approx(0.1)
    assert board["as_of"].unique().to_list() == [AS_OF]


def test_leaderboard_ranks_by_edge_not_win_rate(built: Path) -> None:
    """SPEC 5's worked set in the mart: the spreads model at 58% ranks above favourites winning 72%
    at 1.30 (which lose money), and 5-0 after both; scores as worked out in tests/test_performance.py."""
    mlb = query(built, f"select * from leaderboard where sport = '{MLB}' order by rank")
    assert mlb["model_id"].to_list() == ["ats58", "favourites", "perfect5"]
    scores = dict(zip(mlb["model_id"], mlb["performance_score"], strict=True))
    assert scores == {
        "ats58": pytest.approx(0.457279 - 110 / 210, abs=1e-6),
        "favourites": pytest.approx(0.625118 - 1 / 1.3, abs=1e-6),
        "perfect5": pytest.approx(0.565509 - 110 / 210, abs=1e-6),
    }
    rows = {r["model_id"]: r for r in mlb.iter_rows(named=True)}
    assert rows["favourites"]["roi"] == pytest.approx(-0.064)
    # ats58's CLV: 59 picks, mean (30 * 0.02 + 29 * 0.004) / 59, mean square (30 * 0.0005 + 29 *
    # 0.0003) / 59; the 95% interval is mean -+ 1.96 * sqrt(sample variance / 59).
    mean, square = (30 * 0.02 + 29 * 0.004) / 59, (30 * 0.0005 + 29 * 0.0003) / 59
    half = 1.96 * ((square - mean**2) * 59 / 58 / 59) ** 0.5
    ats = rows["ats58"]
    assert (ats["clv_picks"], ats["clv"]) == (59, pytest.approx(mean))
    assert (ats["clv_low"], ats["clv_high"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert rows["perfect5"]["clv_low"] is None  # one pick with a close: no interval


def test_sql_and_python_leaderboards_agree(built: Path) -> None:
    """One rule in two languages: the mart and domain.marketplace.performance.leaderboard rank the same models
    with the same edge scores, break-even and CLV intervals on the same data."""
    sql = query(built, "select * from leaderboard").sort("sport", "rank")
    python = leaderboard(rolling_performance(performance_rows(), AS_OF), model_versions()).sort(
        "sport", "rank"
    )
    assert sql["model_id"].to_list() == python["model_id"].to_list()
    assert sql["rank"].to_list() == python["rank"].to_list()
    assert sql["graded"].to_list() == python["rolling_graded"].to_list()
    assert sql["performance_score"].to_list() == pytest.approx(
        python["performance_score"].to_list(), abs=1e-12
    )
    assert sql["breakeven"].to_list() == pytest.approx(python["rolling_breakeven"].to_list(), abs=1e-12)
    for column in ("clv", "clv_low", "clv_high"):
        assert sql[column].to_list() == pytest.approx(
            python[f"rolling_{column}"].to_list(), abs=1e-12, nan_ok=True
        )
    assert sql["clv_picks"].to_list() == python["rolling_clv_picks"].to_list()
    assert sql["roi"].to_list() == pytest.approx(python["rolling_roi"].to_list())
    assert sql["brier"].to_list() == pytest.approx(python["rolling_brier"].to_list())


def test_subscribers_and_creators(built: Path) -> None:
    subs = dict(query(built, "select model_id, subscribers from model_subscribers").iter_rows())
    assert subs["sixty"] == 3  # trial + active + past_due in grace; cancelled and past grace do not
    # One rule in two languages: the mart counts what domain.money.subscriptions.access gives.
    python = with_access(subscriptions(), dt.datetime.now(dt.UTC)).group_by("model_id").len()
    assert {m: n for m, n in subs.items() if n} == dict(python.iter_rows())
    grace = query(built, "select in_grace from model_subscribers where model_id = 'sixty'").item()
    assert grace == 1
    assert subs["five-oh"] == 0  # expired
    assert subs["nfl"] == 1 and subs["idle"] == 0
    creators = {
        r["creator_id"]: r for r in query(built, "select * from creator_summary").iter_rows(named=True)
    }
    u1, u2, u3 = creators["u1"], creators["u2"], creators["u3"]
    assert (u1["models"], u1["public_models"], u1["subscribers"]) == (3, 3, 3)
    # u1: sixty 60/100, twin 60/100, old 110/130 over both versions: 330 graded, mean accuracy.
    assert u1["total_graded"] == 330
    assert u1["avg_accuracy"] == pytest.approx((0.6 + 0.6 + 110 / 130) / 3)
    # u2: the archived model leaves the model count but keeps its record (5/10).
    assert (u2["models"], u2["public_models"], u2["total_graded"]) == (1, 1, 66)
    assert u2["avg_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    assert (u3["models"], u3["public_models"], u3["subscribers"]) == (3, 2, 1)


def test_model_ratings_average_the_visible_reviews_as_python_does(built: Path) -> None:
    ratings = {r["model_id"]: r for r in query(built, "select * from model_ratings").iter_rows(named=True)}
    sixty = ratings["sixty"]
    assert (sixty["rating_mean"], sixty["ratings"]) == mean_rating(user_reviews()) == (4.33, 3)
    assert (sixty["reported"], sixty["hidden"]) == (1, 1)
    assert (ratings["twin"]["rating_mean"], ratings["twin"]["ratings"]) == (None, 0)


def test_staging_columns_follow_the_python_contracts(built: Path) -> None:
    contracts = {
        "stg_model_versions": MODEL_VERSIONS,
        "stg_model_performance": MODEL_PERFORMANCE,
        "stg_settled_picks": SETTLED_PICKS,
        "stg_subscriptions": SUBSCRIPTIONS,
        "stg_user_reviews": USER_REVIEWS,
    }
    for view, schema in contracts.items():
        columns = query(built, f"describe {view}")["column_name"].to_list()
        assert set(columns) <= set(schema), view
    assert query(built, "select result, profit from stg_settled_picks").rows() == [("won", 0.909)]


def test_dbt_defaults_match_the_domain_constants() -> None:
    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())
    assert project["vars"] == {
        "rolling_days": ROLLING_DAYS,
        "min_graded": MIN_GRADED,
        "wilson_z": WILSON_Z,
        "past_due_grace_hours": PAST_DUE_GRACE // dt.timedelta(hours=1),
    }


def test_staging_accepts_every_subscription_status() -> None:
    """A status the domain can write but the staging test refuses would fail every marts build."""
    staging = yaml.safe_load((DBT_DIR / "models" / "staging" / "_staging.yml").read_text())
    (model,) = [m for m in staging["models"] if m["name"] == "stg_subscriptions"]
    (column,) = [c for c in model["columns"] if c["name"] == "status"]
    (test,) = [t["accepted_values"] for t in column["data_tests"] if "accepted_values" in t]
    assert test["arguments"]["values"] == list(get_args(Status))


def test_dagster_wiring() -> None:
    keys = {k.to_user_string() for k in marts.keys}
    assert {
        "marts/leaderboard",
        "marts/creator_summary",
        "marts/model_subscribers",
        "marts/model_ratings",
    } <= keys
    upstream = {k.to_user_string() for k in marts.dependency_keys} - keys
    assert upstream == {
        "model_versions",
        "model_performance",
        "settled_picks",
        "subscriptions",
        "ledger",
        "user_reviews",
    }
    assert set(marts.group_names_by_key.values()) == {"marketplace"}
    assert marts.check_specs  # dbt tests are asset checks


def test_marts_build_on_an_empty_lake(tmp_path: Path) -> None:
    """A fresh lake (no table written yet) builds empty marts instead of failing."""
    path = tmp_path / "marts.duckdb"
    run_dbt(dbt_build_args(Lake(root=str(tmp_path / "lake")), path), tmp_path)
    assert query(path, "select count(*) from leaderboard").item() == 0
    assert query(path, "select count(*) from stg_subscriptions").item() == 0


def test_marts_build_over_s3(s3_lake: Lake, tmp_path: Path) -> None:
    """The ``s3`` target reads the lake through the packaged httpfs extension."""
    fill_lake(s3_lake)
    path = tmp_path / "marts.duckdb"
    run_dbt(dbt_build_args(s3_lake, path), tmp_path)
    assert query(path, "select model_id from leaderboard where sport = 'basketball_nba' order by rank")[
        "model_id"
    ].to_list() == ["twin", "sixty", "five-oh", "old", "idle"]


def test_manifest_is_parsed_when_missing_or_stale(tmp_path: Path) -> None:
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    project = DbtProject(project_dir=copy, profiles_dir=copy)
    assert manifest_stale(project)
    manifest = prepare_manifest(project)
    assert manifest.exists() and not manifest_stale(project)
    model = copy / "models" / "marts" / "leaderboard.sql"
    later = manifest.stat().st_mtime + 10
    os.utime(model, (later, later))
    assert manifest_stale(project)
