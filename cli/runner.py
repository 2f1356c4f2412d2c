"""Running jobs in-process for the CLI: the demo and history imports.

Runs go through the Dagster instance in ``DAGSTER_HOME`` so that the UI shows what the command did.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from assets.analyses import due_versions, read_model_versions
from domain.errors import UserError
from domain.formats.sample_league import SEASON_END, SEASON_START, SPORT
from domain.models.engine import ANALYSES, grade_analyses, performance
from domain.tables.schemas import GAMES
from pipelines.jobs import range_tags
from services.commitments import replay_commitments
from stores.lake import Lake
from stores.layout import raw_key
from stores.warehouse import LAKE_TABLES, Warehouse, lake_connection

Progress = Callable[[str], None]
QUIET = {"console": {"config": {"log_level": "WARNING"}}}
"""Run config for in-process runs of the CLI: the instance keeps every event; the terminal stays readable."""
QUIET_RUN = {"loggers": QUIET}


def execute_range(
    job_name: str,
    start: dt.date,
    last: dt.date,
    sports: list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise ``job_name`` for game dates ``start..last`` (inclusive) in one run."""
    from pipelines.definitions import defs

    job = defs.resolve_job_def(job_name)
    run_config: dict[str, Any] = {"loggers": QUIET}
    if sports is not None:
        ops = {node.name for node in job.graph.node_defs}
        run_config["ops"] = {op: {"config": {"sports": sports}} for op in sorted(ops)}
    result = job.execute_in_process(
        instance=instance or dg.DagsterInstance.get(),
        run_config=run_config,
        tags=range_tags(start, last),
        raise_on_error=True,
    )
    return result


def _timed(stages: list[dict[str, Any]], name: str, progress: Progress, fn: Callable[[], Any]) -> Any:
    progress(f"{name} ...")
    started = time.monotonic()
    out = fn()
    seconds = time.monotonic() - started
    stages.append({"name": name, "seconds": round(seconds, 2)})
    progress(f"{name} done in {seconds:.1f} s")
    return out


def table_counts(lake: Lake) -> dict[str, int]:
    with lake_connection(lake) as con:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in LAKE_TABLES}


def run_job(job_name: str) -> dg.ExecuteInProcessResult:
    """An unpartitioned job, in-process, on the instance in ``DAGSTER_HOME``."""
    from pipelines.definitions import defs

    return defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(), run_config={"loggers": QUIET}
    )


def run_dbt_job(job_name: str, progress: Progress) -> dg.ExecuteInProcessResult:
    """:func:`run_job` for a job with dbt assets. dagster-dbt echoes every dbt line to stdout (the
    UI's compute log); a CLI's stdout carries its report or JSON, so here the echo is captured: dbt's
    summary line goes to ``progress``, and everything to stderr if the run fails."""
    echoed = io.StringIO()
    try:
        with contextlib.redirect_stdout(echoed):
            result = run_job(job_name)
    except BaseException:
        sys.stderr.write(echoed.getvalue())
        raise
    summary = [line for line in echoed.getvalue().splitlines() if line.startswith("Done. PASS=")]
    if summary:
        progress(f"dbt build: {summary[-1].removeprefix('Done. ')}")
    return result


def model_season_summary(
    lake: Lake, model_ids: list[str], start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """Each demo model's record over the analysed season (graded with the backtests' own code)."""
    analyses = lake.read_table("analyses", SPORT, start, end + dt.timedelta(days=1), ANALYSES)
    games = lake.read_table("games", SPORT, start, end + dt.timedelta(days=1), GAMES)
    record = performance(grade_analyses(analyses, games), ["model_id"])
    names = read_model_versions(lake).select("model_id", "name", "owner_user_id", "market", "public")
    table = names.unique("model_id").join(record, on="model_id", how="left")
    order = {m: i for i, m in enumerate(model_ids)}
    return sorted(table.to_dicts(), key=lambda r: order.get(r["model_id"], len(order)))


def leaderboard_rows(warehouse: Warehouse) -> list[dict[str, Any]]:
    """The leaderboard mart as served (read from the current serving snapshot)."""
    path = warehouse.current()
    if path is None:
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT * FROM leaderboard ORDER BY sport, bet_type, rank").pl().to_dicts()


def marketplace_rows(warehouse: Warehouse) -> dict[str, Any]:
    """Every model's listing status with its users' ratings, and the subscriptions with access, as
    served."""
    path = warehouse.current()
    if path is None:
        return {"models": [], "subscriptions": {}}
    with duckdb.connect(str(path), read_only=True) as con:
        models = con.execute(
            "SELECT s.model_id, s.version, s.owner_user_id, s.name, s.price_cents, s.status, s.reason, "
            "r.rating_mean, coalesce(r.ratings, 0) AS ratings "
            "FROM model_status s LEFT JOIN model_ratings r USING (model_id) ORDER BY s.status, s.model_id"
        ).pl()
        subs = con.execute(
            "SELECT model_id, count(*) FROM subscriptions "
            "WHERE status IN ('trial', 'active') GROUP BY model_id"
        ).fetchall()
    return {"models": models.to_dicts(), "subscriptions": dict(subs)}


def paid_models(lake: Lake, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The latest version of each paid model but ``exclude`` (model_id, owner_user_id, price_cents,
    trial_days)."""
    versions = read_model_versions(lake).sort("version").unique("model_id", keep="last")
    paid = versions.filter((pl.col("price_cents") > 0) & ~pl.col("model_id").is_in(exclude)).sort("model_id")
    return paid.select("model_id", "owner_user_id", "price_cents", "trial_days").to_dicts()


def run_money(lake: Lake, cache_dir: Path, progress: Progress) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo's ``DEMO_MONTH`` payouts and its money loop against the local Stripe
    (``cli/demo_money.py``); without Stripe's OpenAPI description, the payouts alone, without
    Stripe, and the loop's report says why in one line (the demo never fails for it)."""
    from cli.demo_money import local_stripe, run_money_loop, unavailable_reason
    from cli.demo_payments import DEMO_MONTH

    reason = unavailable_reason()
    if reason is not None:
        progress(reason)
        return run_payouts(DEMO_MONTH, progress), {"available": False, "reason": reason}
    with local_stripe(cache_dir) as server:
        payments, loop = run_money_loop(lake, server, progress)
    return payments, {"available": True, **loop}


def run_demo(progress: Progress) -> dict[str, Any]:
    """The main job on the embedded default: a season of the sample league, ingested and served,
    with a few users' models registered and analysed over it."""
    from cli.demo import (
        LOOP_MODEL_ID,
        demo_reviews,
        publish_demo_models,
        register_demo_models,
        review_demo_models,
        subscribe_demo_users,
    )
    from cli.demo_notify import run_notify_demo
    from cli.demo_payments import DEMO_MONTH, deliver_demo_month

    stages: list[dict[str, Any]] = []
    lake = Lake.from_env()
    _timed(
        stages,
        f"ingest sample league {SEASON_START}..{SEASON_END}",
        progress,
        lambda: execute_range("ingest_job", SEASON_START, SEASON_END, sports=[SPORT]),
    )
    model_ids = _timed(stages, "register sample users' models", progress, lambda: register_demo_models(lake))
    published = _timed(
        stages,
        "backtest and publish shared models",
        progress,
        lambda: publish_demo_models(lake, SEASON_START),
    )
    _timed(stages, "free subscriptions", progress, lambda: subscribe_demo_users(lake))
    _timed(stages, "users' reviews", progress, lambda: review_demo_models(lake))
    _timed(stages, "model_versions table", progress, lambda: run_job("models_job"))
    webhooks = _timed(
        stages,
        f"paid subscriptions {DEMO_MONTH} (signed webhooks)",
        progress,
        lambda: deliver_demo_month(lake, paid_models(lake, exclude=(LOOP_MODEL_ID,))),
    )
    warehouse = Warehouse.from_env()
    payments, money_loop = _timed(
        stages,
        f"ledger, payouts {DEMO_MONTH}, money loop",
        progress,
        lambda: run_money(lake, Path(warehouse.directory) / "stripe-spec", progress),
    )
    _timed(
        stages,
        f"analyses {SEASON_START}..{SEASON_END}",
        progress,
        lambda: execute_range("analyses_job", SEASON_START, SEASON_END, sports=[SPORT]),
    )
    _timed(
        stages,
        "commit the season's picks (simulated clock)",
        progress,
        lambda: replay_commitments(
            lake, SPORT, SEASON_START, SEASON_END, due_versions(read_model_versions(lake), [])
        ),
    )
    _timed(
        stages,
        "settled picks and daily performance",
        progress,
        lambda: execute_range("performance_job", SEASON_START, SEASON_END, sports=[SPORT]),
    )
    _timed(stages, "calibration and dbt marts", progress, lambda: run_dbt_job("marts_job", progress))
    _timed(stages, "publish serving snapshot", progress, lambda: run_job("serving_job"))
    notification = _timed(
        stages, "follows and a delivered notification", progress, lambda: run_notify_demo(lake, progress)
    )
    pick = _timed(stages, "a pick's best price, fair odds and stake", progress, lambda: demo_pick_value(lake))
    _timed(stages, "audit table", progress, lambda: run_job("audit_job"))  # last: after every action
    verified = _timed(stages, "oddsforge verify over the API", progress, lambda: verify_demo_model(lake))
    return {
        "verify": verified,
        "leaderboard": leaderboard_rows(warehouse),
        "marketplace": marketplace_rows(warehouse) | {"published": published, "reviews": demo_reviews(lake)},
        "payments": payments | {"webhooks": webhooks},
        "money_loop": money_loop,
        "notification": notification,
        "pick": pick,
        "stages": stages,
        "tables": table_counts(lake),
        "models": model_season_summary(lake, model_ids, SEASON_START, SEASON_END),
        "lake": lake.uri(""),
        "snapshot": str(warehouse.current()),
    }


VERIFIED_MODEL = ("alice", "Form and steam")
"""The listed free model the demo verifies over the API at its end."""


@contextlib.contextmanager
def demo_api(lake: Lake) -> Iterator[tuple[str, str]]:
    """The API over the demo's lake on loopback (real HTTP) and a token of dave, a subscriber."""
    from api.app import create_app
    from api.auth import mint_token
    from api.settings import ApiSettings
    from cli.local_api import serve

    settings = ApiSettings.from_env()
    with serve(create_app(settings, lake=lake)) as url:
        yield url, mint_token("dave", settings.jwt_secret)


def verify_demo_model(lake: Lake) -> dict[str, Any]:
    """``oddsforge verify`` on a listed model's season, over real HTTP to the API on loopback, as a
    subscriber (dave) would run it."""
    from cli.demo import demo_model_id
    from cli.verify import ApiSource, summary, verify

    model_id = demo_model_id(*VERIFIED_MODEL)
    with demo_api(lake) as (url, token):
        source = ApiSource(url, token)
        report = verify(lambda: source.evidence(model_id, SEASON_START, SEASON_END), model_id)
    return report.as_dict() | {"summary": summary(report)}


def demo_pick_value(lake: Lake) -> dict[str, Any] | None:
    """The verified model's newest priced pick as ``GET /models/{id}/results`` shows it to a
    subscriber: best price and book, fair probability, EV and a quarter-Kelly stake (None without a
    priced pick in its last week)."""
    import httpx

    from cli.demo import demo_model_id

    model_id = demo_model_id(*VERIFIED_MODEL)
    with (
        demo_api(lake) as (url, token),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client,
    ):
        response = client.get(f"/models/{model_id}/results", params={"days": 7, "limit": 200})
        response.raise_for_status()
    priced = (item for item in response.json()["items"] if item["best_price"] is not None)
    pick = next(priced, None)  # newest first
    return None if pick is None else pick | {"name": VERIFIED_MODEL[1]}


def run_payouts(month: str, progress: Progress) -> dict[str, Any]:
    """Post every unposted Stripe event onto the ledger, run (or re-run) ``month``'s payouts, post the
    transfers they made, and report the month's payouts. Resources come from the environment now
    (``STRIPE_API_KEY`` decides whether transfers are made)."""
    from assets.payments import NO_STRIPE, creator_balances, ledger, monthly_partitions, payouts
    from domain.money.earnings import monthly_earnings
    from pipelines.sensors import LEDGER_INBOX
    from resources.settings import build_resources
    from stores.ledger import read_ledger, unread_keys
    from stores.payouts import read_payout_records

    months = monthly_partitions.get_partition_keys()
    if month not in months:
        raise UserError(f"--month {month}: not an ended month in {months[0]} .. {months[-1]} (YYYY-MM)")
    instance = dg.DagsterInstance.get()
    if LEDGER_INBOX.running(instance):
        raise UserError("a ledger run is in progress (the Stripe inbox sensor's): retry when it has ended")
    resources = build_resources()
    lake = Lake.from_env()

    def post_ledger() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [ledger, creator_balances],
            instance=instance,
            resources=resources,
            tags=LEDGER_INBOX.tags,
            run_config=QUIET_RUN,
        )

    progress(f"ledger: posting {len(unread_keys(lake))} unposted inbox objects")
    post_ledger()
    progress(f"payouts {month}")
    paid = dg.materialize(
        [payouts],
        partition_key=month,
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN,
        raise_on_error=False,
    )
    if unread_keys(lake):  # the transfers just recorded
        post_ledger()
    records = read_payout_records(lake).filter(pl.col("month") == month)
    entries = read_ledger(lake)
    earned = monthly_earnings(entries, read_payout_records(lake)).filter(pl.col("month") == month)
    stripe = resources["payments"] is not None
    return {
        "month": month,
        "succeeded": paid.success,
        "stripe": "configured" if stripe else NO_STRIPE,
        "payouts": records.to_dicts(),
        "total_cents": int(records["amount_cents"].sum()),
        "creators": earned.to_dicts(),
        "ledger": {
            "entries": entries.height,
            "sum_cents": int(entries["amount_cents"].sum()),
            "unposted_objects": len(unread_keys(lake)),
        },
    }


def import_history(fmt: str, files: list[Path], progress: Progress) -> dict[str, Any]:
    """Parse history files, land them as raw partitions and rebuild the tidy tables of their dates,
    one object per month (``Lake.write_months``), then rebuild the analyst database, so the first
    query after an import (``oddsforge sql``) is fast.

    Every file is parsed before anything is written, so a bad file leaves the lake untouched. The
    tidy rebuild calls the same function as the tidy assets, for the imported game dates only (a
    range run over 17 seasons would also rebuild thousands of empty days).
    """
    from assets.ingest import TIDY_BUILDERS, rebuild_table
    from services.history_files import read_history

    progress(f"reading {len(files)} file(s) as {fmt}")
    batch = read_history(fmt, files)
    for warning in batch.warnings:
        progress(f"warning: {warning}")
    lake = Lake.from_env()
    days = sorted({d for df in batch.frames.values() for d in df.get_column("game_date").unique().to_list()})
    for table, df in batch.frames.items():
        if df.is_empty():
            continue
        table_days = sorted(df.get_column("game_date").unique().to_list())
        progress(f"writing {df.height:,} raw {table} rows over {len(table_days):,} game dates (by month)")
        lake.write_months(df, lambda d, t=table: raw_key(t, batch.sport, d, fmt), table_days)
    rebuilt: dict[str, int] = {}
    if days:
        for table in TIDY_BUILDERS:
            out, _ = rebuild_table(lake, table, batch.sport, days, monthly=True)
            rebuilt[table] = out.height
            progress(f"rebuilt {table}: {out.height:,} rows")
    analyst, _ = Warehouse.from_env().build_analyst(lake, dt.datetime.now(dt.UTC))
    progress(f"analyst database rebuilt: {analyst.name}")
    frames = batch.frames
    snapshots = frames.get("odds_snapshots")
    return {
        "format": fmt,
        "sport": batch.sport,
        "files": [str(f) for f in files],
        "games": batch.games,
        "lines": 0 if snapshots is None else snapshots.select("game_id", "bookmaker", "market").n_unique(),
        "snapshots": 0 if snapshots is None else snapshots.height,
        "team_rows": frames["team_box"].height if "team_box" in frames else 0,
        "player_rows": frames["player_box"].height if "player_box" in frames else 0,
        "stat_rows": batch.stat_rows,
        "days": len(days),
        "first_date": days[0].isoformat() if days else None,
        "last_date": days[-1].isoformat() if days else None,
        "warnings": batch.warnings,
        "tables_rebuilt": rebuilt,
    }
