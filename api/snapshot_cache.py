"""Answers computed from one serving snapshot, kept until the next snapshot is swapped in.

A snapshot is immutable, so an answer derived only from it (a marketplace page) stays exact for
the snapshot's lifetime: the hottest requests then cost a dictionary lookup instead of a query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from api.serving import ServingStore

T = TypeVar("T")


class SnapshotCache(Generic[T]):
    """A bounded LRU of answers for the current snapshot; a new snapshot name empties it."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max = max_entries
        self._snapshot: str | None = None
        self._entries: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, store: ServingStore, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer for ``key`` on ``store``'s current snapshot (computed, uncached, before the
        first publication)."""
        info = store.info()
        return compute() if info is None else self.get_or_compute(info.name, key, compute)

    def get_or_compute(self, snapshot: str, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if snapshot != self._snapshot:
                self._snapshot, self._entries = snapshot, OrderedDict()
            elif key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = compute()  # outside the lock: a miss never blocks hits
        with self._lock:
            if snapshot == self._snapshot:
                self._entries[key] = value
                if len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return value
