"""Benchmark: how soon the formula sandbox stops a call that overruns its time budget.

Run: ``python bench/sandbox_bench.py [--rounds N] [--budget-ms MS]``. A one-worker
:class:`services.sandbox.SandboxPool` runs, round after round, calls that would never finish within
the budget: ``time.sleep(5)`` (the worker blocked in a system call), ``sum(range(10**12))`` (busy in
one C loop, never back in the bytecode loop) and a Python loop that writes the time into a shared
file at every turn (busy in the bytecode loop). Each round collects, in milliseconds from the moment
the call is made:

- *last ran* (the Python loop only): the last time the loop wrote, i.e. the last moment the hostile
  code was seen running: the kill landed at the latest one turn of the loop after it (rounds in
  which the loop was never scheduled before the kill are counted apart);
- *exit seen*: when the worker process was seen to exit (a thread blocked on a pidfd of the worker
  notes the time it wakes: late by that thread's own wake-up and by the kernel's teardown);
- *error raised*: when ``run`` raised :class:`~services.sandbox.FormulaBudgetError` to the caller;
- *next call*: how long the next evaluation (``2 + 2``, in the worker that replaced the killed one)
  then took, which includes any start-up of that worker the pool left to it.

It prints min, median, 90th and 99th percentile and max of each, with the load average: on a
shared machine the tail is the scheduler's, not the sandbox's. Both processes read the same clock
(``time.perf_counter`` is ``CLOCK_MONOTONIC`` on Linux).
"""

from __future__ import annotations

import argparse
import math
import mmap
import operator
import os
import select
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.sandbox import FormulaBudgetError, SandboxPool

STAMP = struct.Struct("d")


def stamp_forever(path: str) -> None:
    """Write ``time.perf_counter()`` into ``path`` at every turn, forever (runs in the worker)."""
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), STAMP.size) as shared:
        while True:
            STAMP.pack_into(shared, 0, time.perf_counter())


class DeathWatch:
    """The time (``perf_counter``) at which a process is seen to exit."""

    def __init__(self, pid: int) -> None:
        self._fd = os.pidfd_open(pid)
        self.seen: float | None = None
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        select.select([self._fd], [], [], 30.0)
        self.seen = time.perf_counter()

    def result(self) -> float | None:
        self._thread.join(30.0)
        os.close(self._fd)
        return self.seen


def one_round(
    pool: SandboxPool, call: Callable[..., Any], args: tuple[Any, ...], budget_ms: int, stamps: Path | None
) -> dict[str, float]:
    """Milliseconds after the call of each moment the module docstring lists, for one round."""
    pid = pool.run(os.getpid, timeout_ms=30_000)
    if stamps is not None:
        stamps.write_bytes(STAMP.pack(0.0))
    watch = DeathWatch(pid)
    started = time.perf_counter()
    try:
        pool.run(call, *args, timeout_ms=budget_ms)
    except FormulaBudgetError:
        raised = time.perf_counter()
    else:
        raise SystemExit(f"{call.__name__} finished within {budget_ms} ms")
    exited = watch.result()
    if exited is None:
        raise SystemExit(f"worker {pid} still alive 30 s after the budget")
    before_next = time.perf_counter()
    if pool.run(operator.add, 2, 2, timeout_ms=30_000) != 4:
        raise SystemExit("the replacement worker answered wrongly")
    out = {
        "exit seen": exited - started,
        "error raised": raised - started,
        "next call took": time.perf_counter() - before_next,
    }
    if stamps is not None:
        last = STAMP.unpack(stamps.read_bytes())[0]
        out["last ran"] = last - started if last else math.nan  # nan: never scheduled in time
    return {k: v * 1e3 for k, v in out.items()}


def summary(values: list[float]) -> str:
    """Min, median, p90, p99 and max of the values that are not NaN, and how many were NaN."""
    ordered = sorted(v for v in values if not math.isnan(v))
    unseen = f"  ({len(values) - len(ordered)} rounds never ran)" if len(ordered) < len(values) else ""
    if not ordered:
        return unseen.strip()

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    figures = (ordered[0], statistics.median(ordered), pct(0.9), pct(0.99), ordered[-1])
    return " ".join(f"{v:7.1f}" for v in figures) + unseen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--budget-ms", type=int, default=100)
    args = parser.parse_args()
    pool = SandboxPool(workers=1)
    pool.run(operator.add, 1, 1, timeout_ms=30_000)  # start-up outside the timings
    print(
        f"budget {args.budget_ms} ms, {args.rounds} rounds per call, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'call':20} {'ms after the call':16} {'min':>7} {'median':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        stamps = Path(tmp) / "stamp"
        hostile: dict[str, tuple[Callable[..., Any], tuple[Any, ...], Path | None]] = {
            "sleep(5)": (time.sleep, (5.0,), None),
            "sum(range(10**12))": (sum, (range(10**12),), None),
            "Python loop": (stamp_forever, (str(stamps),), stamps),
        }
        for name, (call, call_args, stamp_file) in hostile.items():
            rounds = [
                one_round(pool, call, call_args, args.budget_ms, stamp_file) for _ in range(args.rounds)
            ]
            for i, label in enumerate(
                k for k in ("last ran", "exit seen", "error raised", "next call took") if k in rounds[0]
            ):
                print(f"  {name if i == 0 else '':20} {label:16} {summary([r[label] for r in rounds])}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    pool.close()


if __name__ == "__main__":  # workers start through a forkserver, which re-imports this module
    main()
