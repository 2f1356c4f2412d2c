"""Benchmark: API throughput and latency under load on the demo data (SPEC: performance tracking,
leaderboard and marketplace).

Run: ``.venv/bin/python bench/api_bench.py [--data DIR [--reuse]] [--workers 2] [--connections 32]
[--duration 10] [--read-limit N]``. Figures go to stdout, progress to stderr; about 1.5 minutes with a
demo build.

1. The demo data (``oddsforge demo`` in a subprocess, with the lake, warehouse, dbt marts and
   ``DAGSTER_HOME`` inside ``DIR``; default a temporary directory). ``--reuse`` serves the data
   already built in ``DIR``.
2. The API under uvicorn in a subprocess on 127.0.0.1 (``--workers`` processes, default 2 for the
   2-core target), with a fresh JWT secret, ready once ``/health`` reports a snapshot. One user makes
   every request, so the per-user read limit is raised to ``--read-limit`` reads a minute: by default
   more than any run makes, so that every read is checked and none refused (0 turns the limit off,
   to measure what it costs).
3. A closed-loop load generator in this process: ``--connections`` keep-alive HTTP/1.1 connections
   on uvloop, each sending its next request when the previous answer arrived, for ``--warmup``
   (discarded) then ``--duration`` seconds per endpoint: ``/health`` (the trivial endpoint),
   ``/marketplace/models`` (the leaderboard), ``/models/{id}/results`` and
   ``/models/{id}/performance`` of a free listed model (readable by any user), with a valid bearer
   token; then the results of that model with a different window on every request, so that every
   request misses the per-snapshot cache and reads the lake (for information: the targets are on
   the repeated requests).

The client is a minimal raw-socket HTTP/1.1 client rather than httpx because it shares the same
cores with the server: httpx would spend several times more CPU per request and cap the measured
throughput at the client. Its CPU share is reported next to the server's. ``wrk`` is used as well
when installed (``command -v wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.auth import mint_token  # noqa: E402
from stores.lake import Lake  # noqa: E402
from stores.layout import SERVING_DIR, SERVING_POINTER, table_prefix  # noqa: E402

P99_RATIO_TARGET = 3.0
LEADERBOARD_RPS_TARGET = 1000.0
BENCH_USER = "bench-reader"
READ_LIMIT = 1_000_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def data_env(data: Path) -> dict[str, str]:
    """The environment that puts every store of the demo inside ``data``."""
    return os.environ | {
        "ODDSFORGE_LAKE": str(data / "lake"),
        "ODDSFORGE_WAREHOUSE_DIR": str(data / "warehouse"),
        "DAGSTER_HOME": str(data / "dagster_home"),
    }


def has_demo(data: Path) -> bool:
    return (data / "warehouse" / SERVING_DIR / SERVING_POINTER).exists()


def build_demo(data: Path) -> float:
    """Run ``oddsforge demo`` into ``data``; the seconds it took."""
    data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(data / "demo.log", "w") as out:
        subprocess.run(
            [str(Path(sys.executable).with_name("oddsforge")), "demo"],
            cwd=data,
            env=data_env(data),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a minimal keep-alive HTTP/1.1 client -------------------------------------------------------

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    if match := _LENGTH.search(head):
        return status, await reader.readexactly(int(match.group(1)))
    if not _CHUNKED.search(head):
        raise ValueError(f"response without a length: {head[:200]!r}")
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
        body += await reader.readexactly(size + 2)
        del body[-2:]
    await reader.readuntil(b"\r\n")
    return status, bytes(body)


def request_bytes(path: str, port: int, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Accept: application/json\r\n\r\n".encode()


async def fetch(port: int, path: str, token: str | None) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(path, port, token))
        return await read_response(reader)
    finally:
        writer.close()


@dataclass
class Run:
    latencies_ns: np.ndarray
    errors: int
    seconds: float
    client_cpu: float
    server_cpu: float
    busiest: float
    """Share of the server's CPU used by its busiest process."""


async def _connection(port: int, payloads: list[bytes], first: int, deadline: float, out: list[int]) -> int:
    """Requests back to back on one connection until ``deadline``, cycling through ``payloads`` from
    index ``first``; appends latencies, returns errors."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, turn = 0, first
    clock = time.perf_counter_ns
    try:
        while time.perf_counter() < deadline:
            start = clock()
            writer.write(payloads[turn % len(payloads)])
            turn += 1
            status, _ = await read_response(reader)
            out.append(clock() - start)
            errors += status != 200
    finally:
        writer.close()
    return errors


async def _load(
    port: int, payloads: list[bytes], connections: int, seconds: float
) -> tuple[list[int], int, float]:
    latencies: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    spread = max(1, len(payloads) // connections)
    errors = await asyncio.gather(
        *(_connection(port, payloads, i * spread, deadline, latencies) for i in range(connections))
    )
    return latencies, sum(errors), time.perf_counter() - started


def process_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and each of its descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier += children
    return {pid: times.get(pid, 0.0) for pid in tree}


MAX_TRIES = 4
BALANCED_SHARE = 0.7
"""A run is kept when no process did more than this share of the server's CPU: the workers share
one listening socket and whichever is awake accepts, so a burst of new connections sometimes lands
almost whole on one worker, which then serves the run on one core (a load balancer in front of
many clients would not). Such a run is measured again on new connections."""


def load_endpoint(
    port: int,
    paths: list[str],
    token: str | None,
    connections: int,
    warmup: float,
    seconds: float,
    server: int,
) -> Run:
    """Load ``paths`` in turn (one path: the same request again and again)."""
    payloads = [request_bytes(path, port, token) for path in paths]
    for attempt in range(1, MAX_TRIES + 1):
        uvloop.run(_load(port, payloads, connections, warmup))
        cpu0, server0 = time.process_time(), process_cpu(server)
        latencies, errors, elapsed = uvloop.run(_load(port, payloads, connections, seconds))
        used = {pid: t - server0.get(pid, 0.0) for pid, t in process_cpu(server).items()}
        busiest = max(used.values()) / max(sum(used.values()), 1e-9)
        if busiest <= BALANCED_SHARE or attempt == MAX_TRIES:
            break
        log(f"  {busiest:.0%} of the server's CPU in one process: connections unbalanced, measuring again")
    return Run(
        latencies_ns=np.asarray(latencies, dtype=np.int64),
        errors=errors,
        seconds=elapsed,
        client_cpu=time.process_time() - cpu0,
        server_cpu=sum(used.values()),
        busiest=busiest,
    )


# ---- wrk, when installed ------------------------------------------------------------------------


def run_wrk(
    port: int, path: str, token: str | None, connections: int, seconds: float
) -> dict[str, float] | None:
    """``wrk``'s req/s and p50/p90/p99 (ms) for ``path``, or None when it is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    header = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            *header,
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    figures = {"rps": float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[f"p{pct}"] = float(value) * units[unit]
    return figures


# ---- the run ------------------------------------------------------------------------------------


def start_server(
    data: Path, port: int, workers: int, secret: str, read_limit: int
) -> subprocess.Popen[bytes]:
    env = data_env(data) | {
        "ODDSFORGE_JWT_SECRET": secret,
        "ODDSFORGE_READ_LIMIT": str(read_limit),
        "ODDSFORGE_READ_WINDOW_SECONDS": "60",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        cwd=data,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data / "uvicorn.log", "w"),
    )


def wait_healthy(server: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}")
        try:
            status, body = uvloop.run(fetch(port, "/health", None))
            if status == 200 and json.loads(body)["status"] == "ok":
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the API did not report a snapshot on /health in time")


def pick_model(port: int, token: str) -> str:
    """A free listed model (readable by any user) whose results page is not empty."""
    status, body = uvloop.run(fetch(port, "/marketplace/models?limit=100", token))
    if status != 200:
        raise RuntimeError(f"/marketplace/models answered {status}: {body[:300]!r}")
    for item in json.loads(body)["items"]:
        if item["price_cents"] == 0:
            status, results = uvloop.run(fetch(port, f"/models/{item['model_id']}/results", token))
            if status == 200 and json.loads(results)["items"]:
                return item["model_id"]
    raise RuntimeError("no free listed model with results in the demo data")


def uncached_results(data: Path, model_id: str) -> list[str]:
    """Results pages no worker has cached: every game date of the demo season as ``to`` with windows
    of 5 to 8 days, shuffled (more distinct pages than a worker keeps, so each request is a miss that
    reads the lake, as the first visits after a publication are)."""
    lake = Lake(root=str(data / "lake"))  # day objects and compacted months alike
    days = sorted(
        {day.isoformat() for day, _, _ in lake.held_days(table_prefix("analyses", "basketball_nba"))}
    )
    paths = [f"/models/{model_id}/results?to={day}&days={n}" for day in days for n in (5, 6, 7, 8)]
    random.Random(0).shuffle(paths)
    return paths


def percentiles_ms(latencies_ns: np.ndarray) -> tuple[float, float, float]:
    p50, p90, p99 = np.percentile(latencies_ns, [50, 90, 99]) / 1e6
    return float(p50), float(p90), float(p99)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="work directory for the demo data (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="serve the demo data already built in --data")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="discarded seconds per endpoint")
    parser.add_argument(
        "--read-limit",
        type=int,
        default=READ_LIMIT,
        help=f"the user's reads a minute in each worker (default {READ_LIMIT:,}: never reached; 0: off)",
    )
    args = parser.parse_args(argv)

    temporary = args.data is None
    data = (Path(tempfile.mkdtemp(prefix="api-bench-")) if temporary else args.data).resolve()
    try:
        if has_demo(data) and not args.reuse:
            parser.error(f"{data} already holds demo data: pass --reuse to serve it")
        if args.reuse and not has_demo(data):
            parser.error(f"--reuse: no demo data in {data}")
        if not args.reuse:
            log(f"building the demo data in {data} (oddsforge demo) ...")
            log(f"  done in {build_demo(data):.0f} s")
        return bench(data, args)
    finally:
        if temporary:
            shutil.rmtree(data, ignore_errors=True)


def bench(data: Path, args: argparse.Namespace) -> int:
    secret = secrets.token_urlsafe(48)
    token = mint_token(BENCH_USER, secret)
    port = free_port()
    load_before = os.getloadavg()
    server = start_server(data, port, args.workers, secret, args.read_limit)
    try:
        wait_healthy(server, port)
        model_id = pick_model(port, token)
        endpoints = [
            ("trivial", "/health", None),
            ("leaderboard", "/marketplace/models", token),
            ("model results", f"/models/{model_id}/results", token),
            ("performance", f"/models/{model_id}/performance", token),
            ("results, miss", f"/models/{model_id}/results?to=...", token),
        ]
        runs: dict[str, Run] = {}
        wrk: dict[str, dict[str, float] | None] = {}
        for name, path, auth in endpoints:
            paths = uncached_results(data, model_id) if name == "results, miss" else [path]
            log(f"loading {path} ({args.connections} connections, {args.warmup:g} + {args.duration:g} s) ...")
            runs[name] = load_endpoint(
                port, paths, auth, args.connections, args.warmup, args.duration, server.pid
            )
            if len(paths) == 1:
                wrk[name] = run_wrk(port, path, auth, args.connections, args.duration)
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()
    report(runs, wrk, endpoints, args, model_id, load_before, load_after)
    return 0


def report(
    runs: dict[str, Run],
    wrk: dict[str, dict[str, float] | None],
    endpoints: list[tuple[str, str, str | None]],
    args: argparse.Namespace,
    model_id: str,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    print(
        f"API under load: uvicorn --workers {args.workers} on 127.0.0.1, {os.cpu_count()} CPUs, "
        f"{args.connections} keep-alive connections, {args.duration:g} s per endpoint after "
        f"{args.warmup:g} s warm-up; read limit "
        + (f"{args.read_limit:,} a minute per user and worker" if args.read_limit else "off")
    )
    print(
        f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min); "
        f"model results of {model_id} (default window: 7 days, 50 items)"
    )
    print("NOTE: the Python load generator runs on the same cores as the server and takes CPU from it;")
    print("      its CPU share is in the 'client cpu' column (req/s are a lower bound for the server).")
    print("      'busiest': the share of the server's CPU in its busiest process; a run above")
    print(f"      {BALANCED_SHARE:.0%} (connections piled on one worker) is measured again.")
    header = (
        f"{'endpoint':<14} {'path':<44} {'requests':>8} {'errors':>6} {'req/s':>8} "
        f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'server cpu':>10} {'busiest':>7} {'client cpu':>10}"
    )
    print(header)
    print("-" * len(header))
    p99 = {}
    for name, path, _ in endpoints:
        run = runs[name]
        p50, p90, p99[name] = percentiles_ms(run.latencies_ns)
        cores = f"{run.server_cpu / run.seconds:.2f} core"
        client = f"{run.client_cpu / run.seconds:.2f} core"
        print(
            f"{name:<14} {path[:44]:<44} {len(run.latencies_ns):>8} {run.errors:>6} "
            f"{len(run.latencies_ns) / run.seconds:>8.0f} {p50:>7.1f} {p90:>7.1f} {p99[name]:>7.1f} "
            f"{cores:>10} {run.busiest:>7.0%} {client:>10}"
        )
    print()
    for name in ("leaderboard", "model results"):
        ratio = p99[name] / p99["trivial"]
        verdict = "PASS" if ratio <= P99_RATIO_TARGET else "MISS"
        print(f"p99 {name} / p99 trivial = {ratio:.2f}x (target <= {P99_RATIO_TARGET:g}x): {verdict}")
    for name in ("performance", "results, miss"):
        print(f"p99 {name} / p99 trivial = {p99[name] / p99['trivial']:.2f}x (for information)")
    board = runs["leaderboard"]
    rps = len(board.latencies_ns) / board.seconds
    verdict = "PASS" if rps >= LEADERBOARD_RPS_TARGET else f"MISS by {LEADERBOARD_RPS_TARGET / rps:.1f}x"
    print(f"leaderboard {rps:.0f} req/s (target >= {LEADERBOARD_RPS_TARGET:,.0f} on 2 cores): {verdict}")
    if all(figures is None for figures in wrk.values()):
        print("wrk: not installed, not run")
        return
    print("wrk (-t1, same connections and duration):")
    for name, figures in wrk.items():
        if figures is not None:
            print(
                f"  {name:<14} {figures['rps']:>8.0f} req/s  p50 {figures['p50']:.1f} ms  "
                f"p90 {figures['p90']:.1f} ms  p99 {figures['p99']:.1f} ms"
            )


if __name__ == "__main__":
    sys.exit(main())
