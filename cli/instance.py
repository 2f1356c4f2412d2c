"""The local Dagster instance: an event log of one SQLite file on a pooled connection (WAL +
synchronous=NORMAL), and run monitoring.

Dagster's default SQLite event log opens a new engine and commits with a full fsync for every
event; a season backfill writes thousands of partition events and spent over 90% of its time there
(measured: a month of ingest 36-105 s with the default storage, 7 s with this one). WAL with
``synchronous=NORMAL`` stays consistent after a crashed process and loses at most the last commits
on power loss. Production uses Postgres instance storage instead (docs/operations.md).

Run monitoring (the daemon of ``oddsforge ui``) fails a run stuck STARTING or CANCELING and one past
its ``dagster/max_runtime`` tag. The local run launcher cannot tell whether a STARTED run's process
is alive, so a killed run stays STARTED: the inbox sensors fail such runs themselves once silent
(``pipelines/sensors.py``). A file this module wrote earlier is rewritten when the configuration
changes; one without its first line is the operator's and left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import (
    ConsolidatedSqliteEventLogStorage,
)

SQLITE_BUSY_TIMEOUT_SECONDS = 30

HEADER = "# Written by oddsforge"
INSTANCE_YAML = f"""\
{HEADER}: local instance with a fast SQLite event log and run monitoring (cli/instance.py).
event_log_storage:
  module: cli.instance
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {{base_dir}}
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 30
"""


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """The consolidated SQLite event log with one pooled engine per process."""

    _engine: Any = None

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self._engine is None:
            engine = db.create_engine(
                self._conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            )

            @db.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
                dbapi_conn.execute("PRAGMA synchronous=NORMAL")

            self._engine = engine
        with self._engine.connect() as conn, conn.begin():
            yield conn


def ensure_instance_yaml(home: Path) -> None:
    """Write the local instance configuration into ``home`` unless one of the operator's is there."""
    path = home / "dagster.yaml"
    wanted = INSTANCE_YAML.format(base_dir=(home / "history").as_posix())
    if not path.exists() or (path.read_text() != wanted and path.read_text().startswith(HEADER)):
        path.write_text(wanted)
