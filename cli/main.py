"""The ``oddsforge`` command line: demo, ui, api, import-history, sql, token, payouts, review,
review-reports, audit."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from domain.compliance.eligibility import parse_birthdate, parse_region
from domain.errors import UserError

if TYPE_CHECKING:
    from domain.models.config import ModelConfig

DEFAULT_DAGSTER_HOME = ".dagster_home"
LOG_FORMAT = {"value": "text"}
"""The ``--log-format`` of this invocation (progress lines go through JSON logging when ``json``)."""


def _dagster_home() -> Path:
    """The Dagster instance directory shared by ``demo`` and ``ui`` (created on first use).

    Dagster is imported here, not at the top: ``backtest`` and other commands that never start a run
    would otherwise spend a second importing it."""
    from cli.instance import ensure_instance_yaml

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    ensure_instance_yaml(home)
    return home


def _emit(args: argparse.Namespace, payload: dict[str, Any], human: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        human()


def _progress(message: str) -> None:
    if LOG_FORMAT["value"] == "json":
        logging.getLogger("oddsforge").info(message)
    else:
        print(f"[oddsforge] {message}", file=sys.stderr, flush=True)


# -- commands --------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from cli.runner import run_demo

    _dagster_home()
    report = run_demo(progress=_progress)

    def human() -> None:
        print("\nOddsForge demo: built on the embedded sample league")
        width = max(len(stage["name"]) for stage in report["stages"])
        for stage in report["stages"]:
            print(f"  {stage['name']:<{width}} {stage['seconds']:>7.1f} s")
        print("\nTables in the lake (rows):")
        for table, rows in report["tables"].items():
            print(f"  {table:<28} {rows:>10,}")
        print("\nSample users' models over the season (qualifying picks, graded against final scores):")
        print(f"  {'model':<26} {'owner':<6} {'market':<8} {'picks':>6} {'acc':>6} {'ROI':>7}")
        for m in report["models"]:
            acc = "-" if m["accuracy"] is None else f"{m['accuracy']:.1%}"
            roi = "-" if m["roi"] is None else f"{m['roi']:+.1%}"
            who = f"{m['name']:<26} {m['owner_user_id']:<6} {m['market']:<8}"
            print(f"  {who} {m['qualifying'] or 0:>6} {acc:>6} {roi:>7}")
        print("\nLeaderboard (dbt mart, rolling 30 days, as served by GET /marketplace/models):")
        print(f"  {'#':>2} {'model':<26} {'graded':>6} {'acc':>6} {'ROI':>7} {'score':>6}")
        for r in report["leaderboard"]:
            acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
            roi = "-" if r["roi"] is None else f"{r['roi']:+.1%}"
            score = f"{r['performance_score']:.3f}"
            print(f"  {r['rank']:>2} {r['name']:<26} {r['graded']:>6} {acc:>6} {roi:>7} {score:>6}")
        market = report["marketplace"]
        print("\nMarketplace (model_status; shared after a backtest of 50+ graded picks, paid after review):")
        for m in market["models"]:
            subs = market["subscriptions"].get(m["model_id"], 0)
            price = "free" if not m["price_cents"] else f"${m['price_cents'] / 100:.2f}"
            who = f"{m['name']:<26} {m['owner_user_id']:<6} {price:>6}"
            rating = (
                "unrated" if m["rating_mean"] is None else f"{m['rating_mean']:.2f} stars ({m['ratings']})"
            )
            print(f"  {who} {m['status']:<15} {subs:>3} subscribers  {rating}")
        print("\nReviews (POST /models/{id}/reviews, after a week of access; GET lists them):")
        for r in market["reviews"]:
            print(f"  {r['user_id']:<6} {'*' * r['stars']:<5} {r['text']}")
        hooks = report["payments"]["webhooks"]
        print(
            f"\nPaid subscriptions ({hooks['month']}): {hooks['delivered']} Stripe webhooks signed and "
            f"verified, {hooks['stored']} stored (redeliveries ignored: {hooks['duplicates']})"
        )
        _print_payouts(report["payments"])
        print_money_loop(report["money_loop"])
        print_notification(report["notification"])
        print_pick_value(report["pick"])
        print(f"\nLake: {report['lake']}\nServing snapshot: {report['snapshot']}")
        print("\nLook at it:")
        print('  oddsforge sql "SELECT * FROM games ORDER BY commence_time LIMIT 5"')
        print("  oddsforge ui          # Dagster UI on http://127.0.0.1:3000")
        print("  oddsforge api         # API on http://127.0.0.1:8000/docs (token: oddsforge token USER)")
        print(f"  oddsforge payouts --month {report['payments']['month']}   # re-run: nobody is paid twice")
        print("  oddsforge audit       # operator and money actions, oldest first")
        verify_line = f"oddsforge verify {report['verify']['model_id']} --token $(oddsforge token dave)"
        print(f"  {verify_line}   # with oddsforge api running")
        print("\nThe record, checked by oddsforge verify over the API (committed picks, SPEC 9):")
        print("  " + report["verify"]["summary"].replace("\n", "\n  "))

    _emit(args, report, human)
    return 0 if report["verify"]["ok"] else 1


def print_pick_value(pick: dict[str, Any] | None) -> None:
    """One pick with what it is worth at the prices on offer at its cut-off (issue 16)."""
    print("\nA pick at the prices on offer at its cut-off (GET /models/{id}/results, as dave reads it):")
    if pick is None:
        print("  no priced pick in the model's last week")
        return
    print(
        f"  {pick['name']}: {pick['pick']} in game {pick['game_id']} ({pick['game_date']}, "
        f"{pick['market']}), confidence {pick['confidence']:.1%}"
    )
    print(f"  best price {pick['best_price']:.2f} at {pick['best_bookmaker']}")
    print(
        f"  fair probability {pick['fair_probability']:.1%} (multiplicative no-vig, averaged over the books; "
        f"power method {pick['fair_probability_power']:.1%})"
    )
    print(f"  expected value {pick['expected_value']:+.1%} per unit at the best price")
    print(f"  suggested stake {pick['kelly_stake']:.2%} of the bankroll (quarter Kelly, at most 5%)")


def print_notification(sent: dict[str, Any]) -> None:
    """The demo's follow, subscription and the notification its webhook endpoint received."""
    note = sent["notification"]
    print("\nFollows and notifications (a webhook receiver on loopback):")
    print(
        f"  {sent['subscriber']}: POST /me/webhooks -> {sent['endpoint']} ({sent['url']}); follows "
        f"{', '.join(sent['following']) or 'nobody'}; subscribes to {note['model_id']}"
    )
    print(f"  delivered {note['kind']}: {note['message']!r} ({note['notification_id']})")
    verdict = "verified with the endpoint's secret" if sent["signature_verified"] else "DID NOT VERIFY"
    print(f"  OddsForge-Signature {sent['signature'][:40]}... {verdict}")
    print(f"  Idempotency-Key {sent['idempotency_key']} (the receiver dedupes on it)")


def print_money_loop(loop: dict[str, Any]) -> None:
    """The demo's walk through paying, onboarding, payouts, a refund and the audit trail."""
    print("\nMoney loop (local Stripe):")
    if not loop["available"]:
        print(f"  {loop['reason']}.")
        return
    creator, onboarding, checkout = loop["creator"], loop["onboarding"], loop["checkout"]
    print(f"  Stripe API on {loop['stripe']} (Stripe's OpenAPI description; no key, no network)")
    print(
        f"  {creator}: creator terms {onboarding['terms_version']} accepted; payout account "
        f"{onboarding['account_id']}; account.updated: payouts_enabled {onboarding['payouts_enabled']}"
    )
    for p in loop["payouts"]:
        where = p["transfer_id"] or "balance carried over"
        print(f"  payout {p['month']}  {_dollars(p['amount_cents']):>9}  {p['status']:<19} {where}")
    print(f"  Stripe transfers made by this run (payouts re-run too): {len(loop['transfers_this_run'])}")
    if checkout["this_run"]:
        print(
            f"  {checkout['user_id']}: POST /marketplace/subscribe -> {checkout['session_id']}, paid "
            f"${_dollars(checkout['price_cents'])} on Stripe's page -> {checkout['subscription_id']} "
            f"{checkout['stripe_status']}; POST /billing/portal -> a portal session"
        )
    else:
        print(f"  {checkout['user_id']}: checked out on an earlier run (nothing charged again)")
    cancellation = loop["cancellation"]
    for r in cancellation["refunds"]:
        print(
            f"  {creator} archived the model: {r['subscription_id']} cancelled at Stripe; the days of "
            f"{r['period_start'][:10]}..{r['period_end'][:10]} not started refunded: "
            f"${_dollars(r['amount_cents'])} of ${_dollars(r['paid_cents'])} ({r['refund_id']})"
        )
    ledger = cancellation["ledger"]
    print(
        f"  Stripe refunds made by this run: {cancellation['refunds_this_run']}; ledger: "
        f"{ledger['entries']} entries summing to {ledger['sum_cents']} cents"
    )
    print(f"\nAudit trail ({len(loop['audit'])} records; oddsforge audit):")
    for line in audit_lines(loop["audit"]):
        print(f"  {line}")


def cmd_ui(args: argparse.Namespace) -> int:
    _dagster_home()
    root = Path(__file__).resolve().parents[1]
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(root / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    return subprocess.call(cmd)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from cli.logs import uvicorn_log_config

    uvicorn.run(
        "api.app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=uvicorn_log_config(args.log_format) if args.log_format else uvicorn.config.LOGGING_CONFIG,
    )
    return 0


def cmd_import_history(args: argparse.Namespace) -> int:
    from cli.runner import import_history

    report = import_history(args.format, [Path(p) for p in args.files], progress=_progress)

    def human() -> None:
        print(f"Imported {len(args.files)} file(s) as {args.format} ({report['sport']}):")
        print(f"  games      {report['games']:>9,}")
        print(f"  lines      {report['lines']:>9,}  (odds snapshots {report['snapshots']:,})")
        team, player = report["team_rows"], report["player_rows"]
        print(f"  stat rows  {report['stat_rows']:>9,}  (team {team:,}, player {player:,})")
        print(f"  game dates {report['first_date']} .. {report['last_date']} ({report['days']} days)")

    _emit(args, report, human)
    return 0


def _load_model_file(path: Path, sport: str | None) -> ModelConfig:
    """A model JSON from a file; server-set fields get local defaults, ``--sport`` fills or must match."""
    from domain.models.config import parse_model_config

    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read a model JSON document: {exc}") from None
    payload.setdefault("model_id", "local--backtest")
    payload.setdefault("creator_user_id", "local")
    payload.setdefault("name", path.stem)
    if sport and payload.setdefault("sport", sport) != sport:
        raise UserError(f"{path}: the model's sport is {payload['sport']!r} but --sport says {sport!r}")
    return parse_model_config(payload)


def cmd_backtest(args: argparse.Namespace) -> int:
    from services.backtests import backtest_model
    from stores.lake import Lake

    config = _load_model_file(Path(args.model), args.sport)
    step = max(1, (args.to - getattr(args, "from")).days // 20)

    def progress(day: dt.date, done: int, total: int) -> None:
        if done % step == 0 or done == total:
            _progress(f"backtest {done}/{total} game days (at {day})")

    fraction = {} if args.kelly_fraction is None else {"kelly_fraction": args.kelly_fraction}
    report = backtest_model(Lake.from_env(), config, getattr(args, "from"), args.to, progress, **fraction)

    def human() -> None:
        s = report["summary"]
        span = f"{report['from']} .. {report['to']}"
        print(f"Backtest of {config.name!r} ({config.sport}, {config.market}) {span}")
        print(
            f"  games in span {report['games_in_span']:,}, analyses {s['analyses']:,}, qualifying picks "
            f"{s['qualifying']:,}"
        )
        acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.1%}"
        roi = "-" if s["roi"] is None else f"{s['roi']:+.1%}"
        brier = "-" if s["brier"] is None else f"{s['brier']:.4f}"
        print(f"  graded {s['graded']:,}: {s['wins']:,} won, {s['losses']:,} lost, {s['pushes']:,} pushes")
        print(f"  accuracy {acc}   ROI {roi}   profit {s['profit']:+.2f} units   Brier {brier}")
        kelly = report["kelly"]
        kelly_roi = "-" if s["kelly_roi"] is None else f"{s['kelly_roi']:+.1%}"
        print(
            f"  at {kelly['fraction']:g} Kelly: staked {s['kelly_units']:,.2f} units, profit "
            f"{s['kelly_profit']:+.2f} units, ROI {kelly_roi}"
        )
        print(
            f"    (each pick at its own price; 1 unit = {kelly['unit']:.0%} of a bankroll that does not "
            f"compound, at most {kelly['max_stake']:.0%})"
        )
        sides = ", ".join(
            f"{k.removeprefix('picks_')} {v}" for k, v in s.items() if k.startswith("picks_") and v
        )
        print(f"  picks per side: {sides or 'none'}")
        print("\n  month      picks  graded  accuracy      ROI  Kelly units  Kelly ROI")
        for m in report["monthly"]:
            acc = "-" if m["accuracy"] is None else f"{m['accuracy']:.1%}"
            roi = "-" if m["roi"] is None else f"{m['roi']:+.1%}"
            kelly_roi = "-" if m["kelly_roi"] is None else f"{m['kelly_roi']:+.1%}"
            print(
                f"  {m['month']}  {m['qualifying']:>7,}  {m['graded']:>6,}  {acc:>8}  {roi:>7}"
                f"  {m['kelly_units']:>11,.2f}  {kelly_roi:>9}"
            )

    _emit(args, report, human)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from domain.models.tuning import TuneSettings
    from services.tuning import tune_model
    from stores.lake import Lake

    config = _load_model_file(Path(args.model), args.sport)
    settings = TuneSettings(folds=args.folds, trials=args.trials, seed=args.seed)
    step = max(1, (args.to - getattr(args, "from")).days // 20)

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "trials":
            _progress(f"tune: {done:,} configurations evaluated over {settings.folds} folds")
        elif done % step == 0 or done == total:
            _progress(f"tune: scoring the sources {done}/{total} game days")

    report = tune_model(Lake.from_env(), config, getattr(args, "from"), args.to, settings, progress)

    def line(label: str, f: dict[str, Any]) -> str:
        acc = "-" if f["accuracy"] is None else f"{f['accuracy']:.1%}"
        roi = "-" if f["roi"] is None else f"{f['roi']:+.1%}"
        brier = "-" if f["brier"] is None else f"{f['brier']:.4f}"
        return f"  {label:<22} {f['graded']:>7,}  {acc:>8}  {roi:>7}  {brier:>7}"

    def human() -> None:
        span = f"{report['from']} .. {report['to']}"
        print(f"Tuning of {config.name!r} ({config.sport}, {config.market}) {span}")
        print(
            f"  {report['configurations']:,} configurations, walk-forward over {report['folds']} folds "
            f"(seed {report['seed']}){', dynamic weighting' if report['dynamic_weighting'] else ''}"
        )
        print(f"\n  {'':<22} {'graded':>7}  {'accuracy':>8}  {'ROI':>7}  {'Brier':>7}")
        print(line("as configured", report["baseline"]))
        print(line("best, in sample", report["in_sample"]))
        print(line("walk-forward, out", report["out_of_sample"]))
        for fold in report["walk_forward"]:
            print(line(f"fold {fold['fold']} {fold['test'][0]}", fold["out_of_sample"]))
        best = report["best"]
        weights = ", ".join(f"{name} {w:g}" for name, w in best["weights"].items())
        print(f"\n  best: {weights}; min_confidence {best['min_confidence']:g}")
        print("  best configuration (ready to save):")
        print(json.dumps(report["best_config"], indent=2))

    _emit(args, report, human)
    return 0


def cmd_formula(args: argparse.Namespace) -> int:
    from services.sandbox import cli_check, cli_eval

    if args.formula_command == "check":
        code, payload = cli_check(args.expr, [f for f in args.fields.split(",") if f])
    else:
        code, payload = cli_eval(args.expr, args.row)
    print(json.dumps(payload, indent=2))
    return code


def cmd_sql(args: argparse.Namespace) -> int:
    """Exit 1 with DuckDB's one-line reason when the query fails (to parse, bind or run). Reads the
    analyst database when it is as current as the lake (a fraction of a second), else the lake."""
    import duckdb

    from stores.analyst import directory_from_env, open_current_analyst
    from stores.lake import Lake

    lake = Lake.from_env()
    con = open_current_analyst(lake, directory_from_env())
    if con is None:  # no analyst database as current as the lake: views over a fresh listing
        from stores.warehouse import Warehouse, lake_connection

        con = lake_connection(lake, Warehouse.from_env().marts.current())
    try:
        rel = con.sql(args.query)
        if rel is None:
            return 0
        if args.json:
            print(json.dumps(rel.pl().to_dicts(), indent=2, default=str))
        else:
            rel.show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as exc:
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        print(f"oddsforge sql: error: {reason}", file=sys.stderr)
        return 1
    return 0


def cmd_dataset_validate(args: argparse.Namespace) -> int:
    """Exit 0 for a usable file, 1 for a readable but unusable one, 2 for a rejected one (SPEC 7)."""
    from domain.datasets.registry import DatasetLimits, check_file_size
    from services.dataset_intake import assess

    path = Path(args.file)
    try:
        schema = json.loads(args.schema) if args.schema else None
    except json.JSONDecodeError as exc:
        raise UserError(f"--schema is not JSON: {exc}") from None
    if schema is not None and not isinstance(schema, dict):
        raise UserError('--schema must be a JSON object of field names to types, e.g. {"x": "float"}')
    try:
        check_file_size(path.stat().st_size, DatasetLimits())  # before reading a huge file
        today = dt.datetime.now(dt.UTC).date()  # the API's dry run dates reports in UTC too
        found = assess(path.read_bytes(), path.name, schema, args.sport, args.data_type, today)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the file: {exc.strerror}") from None
    except UserError as exc:  # rejected outright: over a limit, unreadable, a key field missing
        if args.json:
            print(json.dumps({"file": path.name, "rejected": True, "error": str(exc)}, indent=2))
        else:
            print(f"{path.name}: REJECTED: {exc}", file=sys.stderr)
        return 2
    report = found.as_dict()
    quality = report["quality"]

    def human() -> None:
        print(f"{report['file']}: {report['format']}, {report['rows']:,} rows x {report['fields']} fields")
        verdict = "usable" if quality["usable"] else "NOT usable (models need a score above 0.8)"
        print(f"quality score {quality['score']:.3f}: {verdict}")
        parts = ("schema_valid", "type_valid", "completeness", "uniqueness", "freshness")
        print("  " + "  ".join(f"{p} {quality[p]:.3f}" for p in parts))
        print("fields:")
        for f in quality["fields"]:
            print(f"  {f['name']:<24} {f['type']:<9} empty {f['empty']:>7,}  invalid {f['invalid']:>7,}")
        for failure in quality["failures"]:
            print(f"  - {failure['rule']}: {failure['message']}")
        for warning in report["warnings"]:
            print(f"warning: {warning}")

    _emit(args, report, human)
    return 0 if quality["usable"] else 1


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    """Seconds from ``90m``, ``12h``, ``1d`` or ``3600s`` (a bare number is seconds)."""
    unit = _DURATION_UNITS.get(text[-1:].lower())
    try:
        seconds = round(float(text[:-1] if unit else text) * (unit or 1))
    except (ValueError, OverflowError):
        seconds = 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration such as 90m, 12h or 3600s")
    return seconds


def _kelly_fraction(text: str) -> float:
    """A share of the Kelly stake: a number in (0, 1]."""
    try:
        fraction = float(text)
    except ValueError:
        fraction = 0.0
    if not 0 < fraction <= 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a share of the Kelly stake in (0, 1], such as 0.25"
        )
    return fraction


def _claim(parse: Callable[[object], object], example: str) -> Callable[[str], str]:
    """An argparse type that accepts what ``parse`` reads and keeps the text as given."""

    def checked(text: str) -> str:
        if parse(text) is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not {example}")
        return text

    return checked


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth import mint_token
    from api.settings import ApiSettings

    settings = ApiSettings.from_env()
    limit = settings.token_max_ttl_seconds
    ttl = limit if args.ttl is None else args.ttl
    if ttl > limit:
        raise UserError(
            f"--ttl of {ttl} s is longer than the API accepts: at most {limit} s (ODDSFORGE_TOKEN_MAX_HOURS)"
        )
    identity = {name: getattr(args, name) for name in ("birthdate", "region") if getattr(args, name)}
    print(mint_token(args.user_id, settings.jwt_secret, ttl_seconds=ttl, **identity))
    return 0


def _dollars(cents: int | None) -> str:
    return "-" if cents is None else f"{cents / 100:,.2f}"


def _print_payouts(report: dict[str, Any]) -> None:
    """The month's creators (earned, payout, carried over) and its payouts, as a person reads them."""
    month = report["month"]
    print(f"Creators' earnings in {month} (USD; 70% of paid invoices, refunds taken back):")
    print(f"  {'creator':<12} {'revenue':>9} {'refunds':>9} {'earned':>9} {'payout':>9} {'carried':>9}")
    for c in report["creators"]:
        cells = (c["revenue_cents"], c["reversed_cents"], c["earned_cents"], c["payout_cents"])
        money = " ".join(f"{_dollars(v):>9}" for v in cells)
        print(f"  {c['creator_id']:<12} {money} {_dollars(c['carried_over_cents']):>9}")
    print(f"Payouts for {month} (balance >= $50 at the month's end; paid on the 1st after it):")
    if not report["payouts"]:
        print("  none: no creator's balance reached $50 (balances carry over)")
    for p in report["payouts"]:
        line = f"  {p['creator_id']:<12} {_dollars(p['amount_cents']):>9}  {p['status']:<15}"
        print(line + (f" {p['transfer_id'] or p['detail']}" if p["status"] != "pending_stripe" else ""))
    if report["stripe"] != "configured":
        print(f"  NOTE: {report['stripe']}.")


def cmd_payouts(args: argparse.Namespace) -> int:
    from cli.runner import run_payouts

    _dagster_home()
    report = run_payouts(args.month, progress=_progress)
    _emit(args, report, lambda: _print_payouts(report))
    return 0 if report["succeeded"] else 1


def cmd_review(args: argparse.Namespace) -> int:
    from stores.lake import Lake
    from stores.reviews import decide, review_queue

    lake = Lake.from_env()
    if args.review_command == "list":
        queue = review_queue(lake, include_decided=args.all)
        rows = queue.select("model_id", "version", "owner_user_id", "name", "price_cents", "status", "reason")

        def human() -> None:
            if rows.is_empty():
                print("No paid model is waiting for review." if not args.all else "No paid public models.")
            for r in rows.iter_rows(named=True):
                print(
                    f"{r['model_id']}  v{r['version']}  {r['owner_user_id']}  {r['name']!r}  "
                    f"${_dollars(r['price_cents'])}/month  {r['status']}: {r['reason']}"
                )

        _emit(args, {"models": rows.to_dicts()}, human)
        return 0
    decision = "approve" if args.review_command == "approve" else "reject"
    review = decide(lake, args.model_id, decision, args.reason or "", args.reviewer, dt.datetime.now(dt.UTC))

    def done() -> None:
        verb = "Approved" if decision == "approve" else "Rejected"
        print(
            f"{verb} {review['model_id']} v{review['version']} at ${_dollars(review['price_cents'])}/month; "
            "the marketplace updates on the next model_status run."
        )

    _emit(args, review, done)
    return 0


def cmd_review_reports(args: argparse.Namespace) -> int:
    from stores.lake import Lake
    from stores.ratings import moderate, reported_reviews

    lake = Lake.from_env()
    if args.reports_command == "list":
        found = reported_reviews(lake, include_hidden=args.all)
        rows = [
            {
                "model_id": r.model_id,
                "review_id": r.review_id,
                "author": r.user_id,
                "stars": r.current.stars,
                "text": r.current.text,
                "visibility": r.visibility,
                "reports": [
                    {"user_id": p.user_id, "reason": p.reason, "at": p.at} for p in r.pending_reports
                ],
            }
            for r in found
        ]

        def human() -> None:
            if not rows:
                print(
                    "No reported review is waiting for a decision."
                    if not args.all
                    else "No reported reviews."
                )
            for r in rows:
                reasons = "; ".join(f"{p['user_id']}: {p['reason'] or '(no reason)'}" for p in r["reports"])
                print(
                    f"{r['model_id']}  {r['review_id']}  by {r['author']}  {r['stars']}*  {r['visibility']}  "
                    f"{r['text'][:60]!r}  reports: {reasons or 'none pending'}"
                )

        _emit(args, {"reviews": rows}, human)
        return 0
    decision = "hide" if args.reports_command == "hide" else "restore"
    now = dt.datetime.now(dt.UTC)
    review, made = moderate(
        lake, args.model_id, args.review_id, decision, args.reason or "", args.operator, now
    )
    payload = {
        "model_id": review.model_id,
        "review_id": review.review_id,
        "decision": made.decision,
        "n": made.n,
        "reports": list(made.reporters),
        "operator": made.operator,
        "at": made.at,
    }

    def done() -> None:
        verb = "Hid" if decision == "hide" else "Restored"
        print(
            f"{verb} review {review.review_id} of {review.model_id} ({len(made.reporters)} reports decided)."
        )

    _emit(args, payload, done)
    return 0


def _since(text: str) -> dt.datetime:
    """``--since``: a date (midnight UTC) or an ISO 8601 time (UTC unless it names an offset)."""
    try:
        since = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"--since {text!r} is neither a date (YYYY-MM-DD) nor a time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])"
        ) from None
    return since if since.tzinfo is not None else since.replace(tzinfo=dt.UTC)


def cmd_audit(args: argparse.Namespace) -> int:
    """Read the records from the lake's inbox, so the log shows before any pipeline run."""
    from stores.audit import read_audit
    from stores.lake import Lake

    since = None if args.since is None else _since(args.since)
    table = read_audit(Lake.from_env(), since)
    if args.json:
        for row in table.iter_rows(named=True):
            states = {k: None if row[k] is None else json.loads(row[k]) for k in ("before", "after")}
            print(json.dumps(row | states | {"acted_at": row["acted_at"].isoformat().replace("+00:00", "Z")}))
        return 0
    if table.is_empty():
        print("No audit records" + ("" if since is None else f" since {since.isoformat()}") + ".")
        return 0
    print("\n".join(audit_lines(table.iter_rows(named=True))))
    return 0


def audit_lines(records: Iterable[dict[str, Any]]) -> list[str]:
    """Audit records (rows of ``stores.audit.read_audit``) as the aligned lines ``oddsforge audit``
    prints, a header first; the demo prints its money loop's trail with them."""
    from domain.compliance.audit import change_summary

    header = ("time (UTC)", "actor", "action", "object", "before → after")
    rows = [
        (
            f"{r['acted_at']:%Y-%m-%d %H:%M:%S}",
            r["actor"],
            r["action"],
            f"{r['object_type']} {r['object_id']}",
            change_summary(r["before"], r["after"]),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in [header, *rows]
    ]


# -- parser ----------------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the record verifies, 1 naming what does not."""
    from cli.verify import ApiSource, summary, verify

    source = ApiSource(args.api, args.token)
    report = verify(lambda: source.evidence(args.model_id, args.first, args.to), args.model_id)
    _emit(args, report.as_dict(), lambda: print(summary(report)))
    return 0 if report.ok else 1


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class LazyChoices:
    """An argument's choices, loaded when argparse first checks or lists them (give the argument a
    ``metavar``, else argparse lists them while building): building the parser then imports no model
    or format code, and ``oddsforge sql`` starts in a fraction of a second."""

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load

    @functools.cached_property
    def _values(self) -> list[str]:
        return list(self._load())

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)


def _history_formats() -> list[str]:
    from services.history_files import HISTORY_FORMATS

    return sorted(HISTORY_FORMATS)


def _sports() -> list[str]:
    from domain.sports import SPORTS

    return sorted(SPORTS)


def _data_types() -> tuple[str, ...]:
    from domain.models.config import DataType

    return get_args(DataType)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oddsforge",
        description="OddsForge: user-defined sports-betting models on Dagster. "
        "Lake root from ODDSFORGE_LAKE (default ./data/lake, or s3://bucket/prefix).",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("ODDSFORGE_LOG_FORMAT") or None,
        help="log lines as text or one JSON object per line (default: ODDSFORGE_LOG_FORMAT, else "
        "Python's default warnings-only logging)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="ingest the embedded sample league and publish it (the main job)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on this project")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("api", help="serve the HTTP API with uvicorn")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("import-history", help="load real history files into the lake")
    p.add_argument(
        "--format",
        required=True,
        choices=LazyChoices(_history_formats),
        metavar="FORMAT",
        help="the files' format: %(choices)s",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_import_history)

    p = sub.add_parser("backtest", help="replay a model JSON over the lake's history as if live")
    p.add_argument("model", metavar="MODEL.json")
    p.add_argument("--sport", help="sport key (fills or must match the model's sport)")
    p.add_argument("--from", required=True, type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--to", required=True, type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument(
        "--kelly-fraction",
        type=_kelly_fraction,
        metavar="F",
        help="share of the Kelly stake for the kelly_* figures (default a quarter)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser(
        "tune", help="search a model JSON's source weights and threshold with walk-forward validation"
    )
    p.add_argument("model", metavar="MODEL.json")
    p.add_argument("--sport", help="sport key (fills or must match the model's sport)")
    p.add_argument("--from", required=True, type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--to", required=True, type=dt.date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--folds", type=int, default=4, help="walk-forward folds of the span (default 4)")
    p.add_argument("--trials", type=int, default=200, help="configurations to try (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random search (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("formula", help="check or evaluate a custom-data formula (prints JSON)")
    fsub = p.add_subparsers(dest="formula_command", required=True, metavar="ACTION")
    f = fsub.add_parser("check", help="parse EXPR under the formula grammar; exit 1 on rejection")
    f.add_argument("expr", metavar="EXPR")
    f.add_argument("--fields", default="", help="comma-separated field names the formula may use")
    f.set_defaults(func=cmd_formula)
    f = fsub.add_parser("eval", help="evaluate EXPR on one row in the sandbox; exit 1 on failure")
    f.add_argument("expr", metavar="EXPR")
    f.add_argument("--row", required=True, help="the row as JSON, e.g. '{\"a\": 1}'")
    f.set_defaults(func=cmd_formula)

    p = sub.add_parser("sql", help="run SQL over the lake's tables (a view per table) and the dbt marts")
    p.add_argument("query")
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.add_argument("--max-rows", type=int, default=40)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser(
        "token",
        help="mint a JWT for USER_ID that the API over the same environment accepts",
        description="Signs with ODDSFORGE_JWT_SECRET, or without it (development) with the warehouse "
        "directory's own secret, ODDSFORGE_WAREHOUSE_DIR/jwt-secret, generated on first use.",
    )
    p.add_argument("user_id")
    p.add_argument(
        "--ttl",
        type=_duration,
        metavar="DURATION",
        help="lifetime, e.g. 90m, 12h, 3600s; at most and by default ODDSFORGE_TOKEN_MAX_HOURS (24h)",
    )
    p.add_argument(
        "--birthdate",
        type=_claim(parse_birthdate, "a date such as 2001-04-30"),
        help="the holder's birthdate, YYYY-MM-DD (picks need the region's minimum age); default: an adult's",
    )
    p.add_argument(
        "--region",
        type=_claim(parse_region, "a region such as US-NY or a country such as GB"),
        help="where the holder is, ISO 3166-2 (US-NY) or a country code (GB); default: a US region that "
        "no default policy blocks",
    )
    p.set_defaults(func=cmd_token)

    p = sub.add_parser(
        "payouts",
        help="post pending Stripe events, then run (or re-run) a month's creator payouts",
        description="Without STRIPE_API_KEY the payouts are recorded as pending_stripe and no money moves; "
        "re-running a month never pays anyone twice. Exit status 1 when Stripe refused a transfer.",
    )
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month whose earnings are paid")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_payouts)

    p = sub.add_parser("dataset", help="user datasets")
    datasets = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    p = datasets.add_parser(
        "validate",
        help="the quality report of a dataset file, as the API's dry run gives it",
        description="Exit status: 0 usable (score above 0.8), 1 readable but unusable, 2 rejected.",
    )
    p.add_argument("file", metavar="FILE", help="CSV, JSON (records or lines), .xlsx or Parquet")
    p.add_argument("--schema", metavar="JSON", help='declared field types, e.g. \'{"temperature": "float"}\'')
    p.add_argument(
        "--sport",
        choices=LazyChoices(_sports),
        metavar="SPORT",
        help="freshness uses this sport's seasons: %(choices)s",
    )
    p.add_argument(
        "--data-type",
        default="game_level",
        choices=LazyChoices(_data_types),
        metavar="TYPE",
        help="%(choices)s",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_dataset_validate)
    p = sub.add_parser("review", help="operators: review paid models before they are listed")
    reviews = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    r = reviews.add_parser("list", help="paid public models waiting for review")
    r.add_argument("--all", action="store_true", help="every paid public model, reviewed or not")
    r.add_argument("--json", action="store_true", help="print the models as JSON")
    r.set_defaults(func=cmd_review)
    for action, text in (("approve", "list the model's latest version"), ("reject", "keep it unlisted")):
        r = reviews.add_parser(action, help=f"{action} a paid model: {text}")
        r.add_argument("model_id", metavar="MODEL_ID")
        r.add_argument("--reason", required=action == "reject", help="why (shown to the creator)")
        r.add_argument("--reviewer", default=os.environ.get("USER", "operator"), help="who decided")
        r.add_argument("--json", action="store_true", help="print the decision as JSON")
        r.set_defaults(func=cmd_review)

    p = sub.add_parser("review-reports", help="operators: decide on users' reports of model reviews")
    reports = p.add_subparsers(dest="reports_command", required=True, metavar="ACTION")
    r = reports.add_parser("list", help="reported reviews, out of the list until decided")
    r.add_argument("--all", action="store_true", help="hidden reviews too")
    r.add_argument("--json", action="store_true", help="print the reviews as JSON")
    r.set_defaults(func=cmd_review_reports)
    for action, text in (("hide", "keep it out of the list for good"), ("restore", "list it again")):
        r = reports.add_parser(action, help=f"{action} a reported review: {text}")
        r.add_argument("model_id", metavar="MODEL_ID")
        r.add_argument("review_id", metavar="REVIEW_ID")
        r.add_argument("--reason", help="why (kept in the audit log)")
        r.add_argument("--operator", default=os.environ.get("USER", "operator"), help="who decided")
        r.add_argument("--json", action="store_true", help="print the decision as JSON")
        r.set_defaults(func=cmd_review_reports)

    p = sub.add_parser(
        "audit",
        help="operators: the audit log of operator and money actions, oldest first",
        description="Reads the records from the lake's inbox (no pipeline run needed); analysts query "
        'the same records as the audit table: oddsforge sql "SELECT * FROM audit".',
    )
    p.add_argument(
        "--since",
        metavar="DATE_OR_TIME",
        help="only records at or after this date (YYYY-MM-DD, midnight UTC) or ISO 8601 time (UTC "
        "unless it names an offset)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per record and line")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "verify",
        help="check a model's record against its commitments, over the API only",
        description="Fetches the model's picks and proofs, the day commitments, final scores and the "
        "model's figures over the API; recomputes every leaf, path, root and chain link, checks each "
        "batch preceded its picks' cut-offs and re-grades every pick. Exit 0 when all holds, 1 naming "
        "the first pick, link or figure that does not.",
    )
    p.add_argument("model_id", metavar="MODEL_ID")
    p.add_argument("--from", dest="first", type=_date, metavar="DATE", help="first game date")
    p.add_argument("--to", type=_date, metavar="DATE", help="last game date (default: the newest)")
    p.add_argument("--api", default=os.environ.get("ODDSFORGE_API", "http://127.0.0.1:8000"), help="API URL")
    p.add_argument(
        "--token", default=os.environ.get("ODDSFORGE_TOKEN"), help="bearer token (ODDSFORGE_TOKEN)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)
    return parser


def _quiet_dagster_notices() -> None:
    """Dagster's beta and preview notices are about this code's use of its API, for its developers
    (the test suite shows them), not for the person running a command."""
    from dagster import BetaWarning, PreviewWarning

    for category in (BetaWarning, PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not cmd_sql:  # the one command that never loads Dagster
        _quiet_dagster_notices()
    if args.log_format:
        from cli.logs import configure_logging

        configure_logging(args.log_format)
        LOG_FORMAT["value"] = args.log_format
    started = time.monotonic()
    try:
        return args.func(args)
    except UserError as exc:
        print(f"oddsforge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if os.environ.get("ODDSFORGE_TIMING"):
            _progress(f"{args.command} took {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
