"""The per-user limit on reads: a token bucket per key, in this process's memory.

A key (``user:<id>``, or ``addr:<ip>`` without a valid token) may make ``requests`` reads per
``seconds``, in bursts of up to ``requests``: its bucket holds ``requests`` tokens and refills one
every ``seconds / requests``. The bucket is kept as GCRA keeps it, as one float per key, the time at
which it will be full again, so a check is a dict lookup and some arithmetic, and the wait until the
next token (``Retry-After``) falls out exactly. Refused reads take no token.

Each worker process has its own table: with ``uvicorn --workers N`` a user can make up to N times the
limit (an exact shared limit would need a shared store such as Redis). Memory is one entry per key
active within the last window: full buckets are dropped once a window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_SLACK = 1e-9
"""Seconds of float rounding forgiven, so that exactly ``requests`` reads fit in a burst."""


class ReadLimiter:
    """At most ``requests`` reads per ``seconds`` per key (see the module notes)."""

    def __init__(self, requests: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if requests < 1 or not seconds > 0:
            raise ValueError("a read limit needs requests >= 1 and seconds > 0")
        self.requests = requests
        self.seconds = seconds
        self._clock = clock
        self._interval = seconds / requests
        self._full_at: dict[str, float] = {}
        self._sweep_at = clock() + seconds

    def wait(self, key: str) -> float:
        """0 when ``key`` may read now (the read is counted), else the seconds until it may."""
        now = self._clock()
        if now >= self._sweep_at:
            self._sweep(now)
        full_at = max(self._full_at.get(key, now), now)
        wait = full_at + self._interval - self.seconds - now
        if wait > _SLACK:
            return wait
        self._full_at[key] = full_at + self._interval
        return 0.0

    def __len__(self) -> int:
        """Keys held: those that read within the last window or two."""
        return len(self._full_at)

    def _sweep(self, now: float) -> None:
        self._full_at = {key: full_at for key, full_at in self._full_at.items() if full_at > now}
        self._sweep_at = now + self.seconds
