"""The API's read side: the newest serving snapshot, opened read-only and swapped when it changes.

The pipeline publishes immutable ``serving-*.duckdb`` files and then atomically rewrites the
``CURRENT`` pointer (see ``stores/warehouse.py``). Every request asks the store for a cursor; at
most every ``check_seconds`` that call stats the pointer (a few microseconds), and when the pointer
names a new file the store opens it and swaps it in under a lock. The old connection is closed
once the last request using it has finished, so no query ever sees a snapshot change under it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import duckdb
from fastapi import Depends, Request

from stores.layout import SERVING_POINTER, is_serving_snapshot

log = logging.getLogger(__name__)


class NoSnapshotError(LookupError):
    """Nothing has been published yet, so there is no data to serve."""


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    published_at: dt.datetime
    """When the snapshot file was written (its modification time, UTC)."""


@dataclass
class _Handle:
    info: SnapshotInfo
    connection: duckdb.DuckDBPyConnection
    users: int = 0
    retired: bool = False


class ServingStore:
    """Thread-safe access to the current serving snapshot."""

    def __init__(self, serving_dir: Path, check_seconds: float = 0.5) -> None:
        self.serving_dir = serving_dir
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._current: _Handle | None = None
        self._pointer_stat: tuple[int, int, int] | None = None
        self._next_check = 0.0

    def info(self) -> SnapshotInfo | None:
        """The snapshot requests are served from now, or ``None`` before the first publication."""
        with self._lock:
            self._refresh_if_due()
            return self._current.info if self._current else None

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the current snapshot for one request; raises :class:`NoSnapshotError`."""
        with self._lock:
            self._refresh_if_due()
            handle = self._current
            if handle is None:
                raise NoSnapshotError(f"no serving snapshot in {self.serving_dir}")
            # DuckDB connections are not thread-safe: derive and close cursors under the lock.
            cursor = handle.connection.cursor()
            handle.users += 1
        try:
            yield cursor
        finally:
            with self._lock:
                cursor.close()
                handle.users -= 1
                if handle.retired and handle.users == 0:
                    handle.connection.close()

    def close(self) -> None:
        """Stop serving; the connection closes when the last in-flight request ends."""
        with self._lock:
            if self._current is not None:
                self._retire(self._current)
            self._current = None
            self._pointer_stat = None

    def _refresh_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._check_seconds
        pointer = self.serving_dir / SERVING_POINTER
        try:
            st = pointer.stat()
            stat_key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stat_key == self._pointer_stat:
                return
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return  # nothing published yet (or the pointer was removed: keep serving what is open)
        self._pointer_stat = stat_key
        if self._current is not None and name == self._current.info.name:
            return
        if not is_serving_snapshot(name):
            log.error("%s names %r, not a serving-*.duckdb file; ignored", pointer, name)
            return
        path = self.serving_dir / name
        try:
            published_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            connection = duckdb.connect(str(path), read_only=True)
        except (duckdb.Error, OSError) as exc:
            log.error("cannot open serving snapshot %s (%s); still serving the previous one", path, exc)
            return
        old, self._current = self._current, _Handle(SnapshotInfo(name, published_at), connection)
        if old is not None:
            self._retire(old)
        log.info("serving snapshot %s", name)

    @staticmethod
    def _retire(handle: _Handle) -> None:
        handle.retired = True
        if handle.users == 0:
            handle.connection.close()


async def get_store(request: Request) -> ServingStore:
    """FastAPI dependency: the app's serving store."""
    return request.app.state.store


Store = Annotated[ServingStore, Depends(get_store)]
