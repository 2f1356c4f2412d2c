"""Real servers for the operations tests, started on loopback once per session.

PostgreSQL (``initdb`` into a temporary folder, ``pg_ctl start`` on a free port; as the ``postgres``
user when the tests run as root, because the server refuses to run as root), Redis
(``redis-server``) and helpers to run the Dagster webserver and Celery workers as subprocesses.
``.ci/run`` installs the binaries (``scripts/ci_services.sh``); on a developer machine without one the
tests that need it skip and say which binary is missing, while under ``CI`` a missing binary fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PG_USER = "oddsforge"


def pytest_configure(config: pytest.Config) -> None:
    """Give the session Python's SIGINT handler back if it started with SIGINT ignored.

    A shell starts background jobs (a CI runner's steps, ``make test &``) with SIGINT ignored, and
    Dagster maps SIGTERM onto SIGINT's handler while it executes a run. Every process the tests
    start afterwards would then inherit SIGTERM ignored: servers would not stop at teardown, and
    multiprocessing's daemon workers (the formula sandbox's pool) would not stop at exit, leaving
    the session hanging after its last test.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binary(name: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """The path of ``name`` (on PATH or in ``extra_dirs``); skip, or fail under CI, when absent."""
    found = shutil.which(name)
    for pattern in extra_dirs:
        found = found or next(iter(sorted(glob.glob(os.path.join(pattern, name)), reverse=True)), None)
    if found:
        return found
    reason = f"{name} not found (install it: scripts/ci_services.sh)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install every service its tests use")
    pytest.skip(reason)


def wait_until(
    check: Callable[[], Any], timeout: float, what: str, proc: subprocess.Popen | None = None
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the service is not up yet
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s (last error: {last})")


def start_process(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own (so its children can be stopped with it), logging to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop the process group that :func:`start_process` created: TERM, then KILL."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def service_env(**extra: str) -> dict[str, str]:
    """The test process's environment with the venv's scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env | extra


# -- PostgreSQL --------------------------------------------------------------------------------------
@dataclass
class Postgres:
    host: str
    port: int
    user: str

    def connect(self, db: str = "postgres") -> Any:
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=db)

    def create_database(self, name: str) -> dict[str, str]:
        """A new empty database; returns the ``DAGSTER_PG_*`` variables deploy/dagster.yaml reads."""
        con = self.connect()
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        con.close()
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": name,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": "unused-trust-auth",
        }


def _as_server_user(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as ``postgres`` when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return cmd
    return [require_binary("runuser", ("/usr/sbin", "/sbin")), "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg_dirs = ("/usr/lib/postgresql/*/bin",)
    initdb = require_binary("initdb", pg_dirs)
    pg_ctl = str(Path(initdb).parent / "pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="oddsforge-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_server_user([initdb, "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
        check=True,
        capture_output=True,
    )
    server = Postgres("127.0.0.1", port, PG_USER)
    try:
        wait_until(lambda: server.connect().close() or True, 30, "postgres")
        yield server
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


# -- Redis -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("redis-server")
    port = free_port()
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    cmd = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = start_process(cmd, service_env(), log)
    try:
        import redis

        wait_until(lambda: redis.Redis(host="127.0.0.1", port=port).ping(), 20, "redis-server", proc)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_process(proc)


# -- Dagster -----------------------------------------------------------------------------------------
def production_home(home: Path) -> Path:
    """A ``DAGSTER_HOME`` holding the shipped deploy/dagster.yaml (Postgres from ``DAGSTER_PG_*``)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return home


class Webserver:
    """``dagster-webserver`` over the project's workspace.yaml, queried through its GraphQL API."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [str(VENV_BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml")]
        self.proc = start_process([*cmd, "-h", "127.0.0.1", "-p", str(self.port)], env, log)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_loaded(self, timeout: float = 120) -> None:
        query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"

        def loaded() -> bool:
            entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

        wait_until(loaded, timeout, "dagster-webserver and its code location", self.proc)

    def stop(self) -> None:
        stop_process(self.proc)
