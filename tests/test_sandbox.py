"""The sandbox's watchdog (issue 12, item 10): a call that overruns its time budget is killed by the
parent at the deadline, or by the worker's own timer a grace later when the parent is late; the
caller hears of it at once, and the evaluation service stays healthy. Timings are asserted with
generous bounds only (this machine is shared); ``bench/sandbox_bench.py`` gives the figures.
"""

from __future__ import annotations

import ctypes
import mmap
import operator
import os
import select
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from domain.datasets.formula import FormulaError
from services.sandbox import KILL_GRACE_MS, FormulaBudgetError, SandboxPool, default_pool, evaluate_row
from tests.test_formula import GENEROUS_MS, HOSTILE

BUDGET_MS = 100
GENEROUS_S = 1.0
STAMPS = struct.Struct("dd")


def _loaded() -> None:
    """Nothing: calling it makes a worker import this module outside any budget."""


def _spin_with_the_timer_blocked() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    while True:
        pass


def _stamp_forever(path: str) -> None:
    """Write the time the loop started and, at every turn, the time now into ``path``."""
    with open(path, "r+b") as file, mmap.mmap(file.fileno(), STAMPS.size) as shared:
        first = time.perf_counter()
        while True:
            STAMPS.pack_into(shared, 0, first, time.perf_counter())


def _hold_the_gil() -> None:
    """Sleep 400 ms in C without releasing the GIL (``PyDLL`` keeps it): this process's other
    threads cannot run Python until it returns."""
    ctypes.PyDLL(None).usleep(400_000)


OVERRUNS: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "blocked in sleep": (time.sleep, (5.0,)),
    "busy in one C call": (sum, (range(10**12),)),
    "timer blocked, parent's SIGKILL": (_spin_with_the_timer_blocked, ()),
}


@pytest.fixture
def pool() -> Iterator[SandboxPool]:
    sandbox = SandboxPool(workers=1)
    yield sandbox
    sandbox.close()


def _warm_pid(pool: SandboxPool) -> int:
    """The worker's pid, once it has imported this module (slow, so outside any budget)."""
    pool.run(_loaded, timeout_ms=30_000)
    return pool.run(os.getpid, timeout_ms=30_000)


def _exits(pid: int, within_s: float = 5.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``within_s``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], within_s)[0])
    finally:
        os.close(fd)


@pytest.mark.parametrize(("call", "args"), list(OVERRUNS.values()), ids=list(OVERRUNS))
def test_an_overrunning_call_is_stopped_and_its_worker_replaced(
    pool: SandboxPool, call: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    before = _warm_pid(pool)
    started = time.perf_counter()
    with pytest.raises(
        FormulaBudgetError, match=f"formula exceeded the {BUDGET_MS} ms budget and was stopped"
    ):
        pool.run(call, *args, timeout_ms=BUDGET_MS)
    assert time.perf_counter() - started < GENEROUS_S
    assert _exits(before)
    assert pool.run(operator.add, 2, 2, timeout_ms=30_000) == 4
    assert _warm_pid(pool) != before


def test_hostile_code_never_runs_past_its_kill_time_however_late_the_parent(
    pool: SandboxPool, tmp_path: Path
) -> None:
    """The worker's own timer ends it at the deadline plus the grace: a parent that cannot run
    Python then (another of its threads holds the GIL for 400 ms) does not give the call more time.
    The loop starts after the task is sent and the deadline is the send time plus the budget, so
    the loop runs at most the budget plus the grace."""
    stamps = tmp_path / "stamps"
    for _ in range(3):
        stamps.write_bytes(STAMPS.pack(0.0, 0.0))
        _warm_pid(pool)
        hog = threading.Timer(0.03, _hold_the_gil)
        hog.start()
        with pytest.raises(FormulaBudgetError, match="budget"):
            pool.run(_stamp_forever, str(stamps), timeout_ms=BUDGET_MS)
        hog.join()
        first, last = STAMPS.unpack(stamps.read_bytes())
        if first:  # 0.0: the worker never ran the loop before the deadline
            ran_ms = (last - first) * 1000
            assert ran_ms < BUDGET_MS + KILL_GRACE_MS + 20, f"ran {ran_ms:.0f} ms"


def test_hostile_formulas_and_calls_leave_the_service_healthy() -> None:
    """Every hostile formula is refused, every overrunning call stopped; then forty evaluations at
    once on the same default pool each get their own correct answer."""
    for expr, _ in HOSTILE:
        with pytest.raises(FormulaError):
            evaluate_row(expr, {"a": 1.0})
    for call, args in OVERRUNS.values():
        with pytest.raises(FormulaBudgetError):
            default_pool().run(call, *args, timeout_ms=BUDGET_MS)
    with ThreadPoolExecutor(max_workers=4) as executor:
        results = list(
            executor.map(
                lambda i: evaluate_row("a * 2 + b", {"a": i, "b": 1}, timeout_ms=GENEROUS_MS), range(40)
            )
        )
    assert results == [i * 2.0 + 1 for i in range(40)]
