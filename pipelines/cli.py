"""The ``oddsforge`` command line: demo, ui, api, import-history, sql, token."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from domain.errors import UserError
from pipelines.instance import ensure_instance_yaml

DEFAULT_DAGSTER_HOME = ".dagster_home"


def _dagster_home() -> Path:
    """The Dagster instance directory shared by ``demo`` and ``ui`` (created on first use)."""
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
    print(f"[oddsforge] {message}", file=sys.stderr, flush=True)


# -- commands --------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.runner import run_demo

    _dagster_home()
    report = run_demo(progress=_progress)

    def human() -> None:
        print("\nOddsForge demo: built on the embedded sample league")
        for stage in report["stages"]:
            print(f"  {stage['name']:<28} {stage['seconds']:>7.1f} s")
        print("\nTables in the lake (rows):")
        for table, rows in report["tables"].items():
            print(f"  {table:<28} {rows:>10,}")
        print(f"\nLake: {report['lake']}\nServing snapshot: {report['snapshot']}")
        print("\nLook at it:")
        print('  oddsforge sql "SELECT * FROM games ORDER BY commence_time LIMIT 5"')
        print("  oddsforge ui          # Dagster UI on http://127.0.0.1:3000")
        print("  oddsforge api         # API on http://127.0.0.1:8000/docs (token: oddsforge token USER)")

    _emit(args, report, human)
    return 0


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

    uvicorn.run("api.app:app", host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_import_history(args: argparse.Namespace) -> int:
    from pipelines.runner import import_history

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


def cmd_sql(args: argparse.Namespace) -> int:
    from resources.lake import Lake
    from resources.warehouse import lake_connection

    con = lake_connection(Lake.from_env())
    rel = con.sql(args.query)
    if rel is None:
        return 0
    if args.json:
        print(json.dumps(rel.pl().to_dicts(), indent=2, default=str))
    else:
        rel.show(max_rows=args.max_rows, max_width=200)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth import mint_token
    from api.settings import ApiSettings

    settings = ApiSettings.from_env()
    print(mint_token(args.user_id, settings.jwt_secret, ttl_seconds=args.ttl_hours * 3600))
    return 0


# -- parser ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oddsforge",
        description="OddsForge: user-defined sports-betting models on Dagster. "
        "Lake root from ODDSFORGE_LAKE (default ./data/lake, or s3://bucket/prefix).",
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

    from resources.history_files import HISTORY_FORMATS

    p = sub.add_parser("import-history", help="load real history files into the lake")
    p.add_argument("--format", required=True, choices=sorted(HISTORY_FORMATS), help="the files' format")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_import_history)

    p = sub.add_parser("sql", help="run SQL over the lake's tables (a view per table)")
    p.add_argument("query")
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.add_argument("--max-rows", type=int, default=40)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("token", help="mint a development JWT for USER_ID (ODDSFORGE_JWT_SECRET)")
    p.add_argument("user_id")
    p.add_argument("--ttl-hours", type=int, default=24)
    p.set_defaults(func=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
