"""The formula sandbox: single evaluations in asteval, inside worker processes with hard limits.

Three layers stand between a user's formula and the machine:

1. :func:`domain.datasets.formula.check_formula` rejects anything outside the grammar before any evaluation
   (in the caller, and again in the worker).
2. asteval (``minimal=True``, no numpy) evaluates the checked tree with a symbol table holding only
   the grammar's eleven functions (no ``open``, no ``print``, no builtins) and node handlers only for
   the grammar's nodes; arithmetic follows the grammar's float semantics.
3. A long-lived pool of worker processes (started by a forkserver, so they do not inherit the
   caller's threads) enforces the budgets from outside the interpreter. A worker measures its
   private writable memory (``VmData``) once it is set up (and again when receiving a task imported
   new code) and, before each evaluation, sets ``RLIMIT_DATA`` to that baseline plus the memory
   budget (10 MB by default): evaluations never make the worker hold more than baseline + budget,
   memory freed by earlier evaluations being reused first, so one cannot pass on its allowance.
   ``RLIMIT_DATA`` rather than ``RLIMIT_AS``: measured here, an address-space limit let a 50 MB
   allocation through, because glibc grew a heap inside address space it had reserved earlier (a
   64 MB arena), which RLIMIT_AS has already counted; RLIMIT_DATA counts memory when it becomes
   writable. (Setting both defeats the data check: Linux skips it when the address-space check fails
   as well.) The time budget (100 ms by default, pipe round-trip included) ends at a deadline on the
   monotonic clock. The parent waits until then (an answer that has arrived by the time it runs
   still counts) and sends ``SIGKILL`` to a worker that has not answered. A parent scheduled late
   would let the worker run on until it wakes, so the worker also arms a real-time interval timer
   for the deadline plus :data:`KILL_GRACE_MS`, whose signal, ``SIGALRM``, keeps its default action:
   the kernel ends the worker then, whatever it is doing (bytecode, a C loop, a system call) and
   however late either process is scheduled. The parent answers without waiting for the worker to
   exit: a spare worker started in advance takes its place, and a background thread reaps it and
   starts the next spare, so neither the stopped call nor the next one waits for a start-up.
   ``bench/sandbox_bench.py`` measures it (figures in the README). A
   ``MemoryError`` or a worker that dies is reported the same way and the worker is replaced.

Under the grammar no formula can be slow or large (every value is a float, every operation O(1),
the tree at most 500 characters), so the budgets are a second line of defence; the tests drive
them with deliberately slow and memory-hungry functions through :meth:`SandboxPool.run`.

A row whose formula fails (division by zero, a missing field, ...) is not an error: its value is
missing (``None``) and :class:`RowEvaluation` says why. The baseline is read from
``/proc/self/status``, so the sandbox needs Linux. Programs that start it must guard their entry
point with ``if __name__ == "__main__":`` (multiprocessing re-imports the main module in workers).

Bulk scoring does not come here: :func:`evaluate_rows_compiled` runs the same checked tree as a
polars expression (:func:`domain.datasets.formula.to_polars`), which agrees with this sandbox row for row.
"""

from __future__ import annotations

import ast
import atexit
import json
import math
import multiprocessing
import numbers
import os
import queue
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection
from typing import Any

import polars as pl
from asteval import Interpreter

from domain.datasets.formula import (
    FUNCTIONS,
    MAX_LENGTH,
    CheckedFormula,
    FormulaError,
    apply_binary,
    apply_unary,
    check_formula,
    to_polars,
)

DEFAULT_TIMEOUT_MS = 100
DEFAULT_MEMORY_BYTES = 10_000_000
KILL_GRACE_MS = 50
"""How long after the deadline the worker's own timer ends it: the bound on a call's run when the
parent is late. The grace keeps the parent's tolerance for an answer that arrived just late."""
_START_TIMEOUT_S = 60.0
"""A new worker's start-up (the forkserver imports polars once) does not count against any budget."""
_GRAMMAR_NODES = ("module", "expr", "constant", "name", "binop", "unaryop", "compare", "call")


class FormulaBudgetError(FormulaError):
    """An evaluation was stopped: it exceeded its time or memory budget, or its worker died."""


@dataclass(frozen=True)
class RowEvaluation:
    """The value of a formula on one row, or ``None`` with the reason the row failed."""

    value: float | None
    failure: str | None = None


# ---- the interpreter -----------------------------------------------------------------------------


class _FormulaInterpreter(Interpreter):
    """asteval with the grammar's semantics: constants are floats and arithmetic must stay finite."""

    def on_constant(self, node: ast.Constant) -> float:
        return float(node.value)

    def on_binop(self, node: ast.BinOp) -> float:
        return apply_binary(type(node.op), self.run(node.left), self.run(node.right))

    def on_unaryop(self, node: ast.UnaryOp) -> float:
        return apply_unary(type(node.op), self.run(node.operand))


def make_interpreter() -> Interpreter:
    """An asteval interpreter that knows only the formula grammar and its eleven functions.

    Not thread-safe (asteval keeps per-evaluation state); each worker process holds one.
    """
    interpreter = _FormulaInterpreter(minimal=True, use_numpy=False, max_statement_length=MAX_LENGTH)
    interpreter.symtable.clear()
    interpreter.symtable.update(FUNCTIONS)
    interpreter.node_handlers = {node: interpreter.node_handlers[node] for node in _GRAMMAR_NODES}
    return interpreter


def _number(name: str, value: object) -> float | None:
    """A row value as a float; None, NaN, infinities and overflowing integers count as missing."""
    if value is None:
        return None
    if not isinstance(value, numbers.Real):
        raise FormulaError(f"the value of field {name!r} is not a number: {value!r}")
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def evaluate_checked(
    interpreter: Interpreter, checked: CheckedFormula, row: Mapping[str, object]
) -> RowEvaluation:
    """Evaluate a checked formula on one row in-process, without budgets (workers call this)."""
    values = {name: _number(name, row.get(name)) for name in checked.fields}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        return RowEvaluation(None, f"field {missing[0]!r} has no value on this row")
    symtable = interpreter.symtable
    symtable.update(values)
    try:
        result = interpreter.eval(checked.expression, show_errors=False, raise_errors=True)
    except MemoryError:
        raise
    except Exception as exc:
        # asteval's message repeats the formula; its last line says what went wrong.
        lines = str(exc).strip().splitlines()
        return RowEvaluation(None, lines[-1] if lines else type(exc).__name__)
    finally:
        for name in values:
            del symtable[name]
        interpreter.code_text.clear()  # asteval appends every evaluated expression to it
    if not isinstance(result, bool | int | float) or not math.isfinite(result):
        return RowEvaluation(None, f"the formula gave {result!r}, not a finite number")
    return RowEvaluation(float(result))


@cache
def _process_interpreter() -> Interpreter:
    return make_interpreter()


def _evaluate_in_worker(expr: str, fields: tuple[str, ...], values: dict[str, float | None]) -> RowEvaluation:
    return evaluate_checked(_process_interpreter(), check_formula(expr, fields), values)


# ---- worker processes ----------------------------------------------------------------------------


def _data_size() -> int:
    """Bytes of private writable memory this process maps now (``VmData``, what RLIMIT_DATA counts)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmData line")


def _serve(conn: Connection) -> None:
    """A worker's loop: run ``fn(*args)`` under a memory limit and at most until ``kill_at`` (on
    ``time.monotonic``, shared with the parent), answer ``(status, payload)``."""
    # The timer ends the process, even if it was started with SIGALRM ignored or blocked.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    _process_interpreter()
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    modules, baseline = len(sys.modules), _data_size()
    conn.send(("ready", None))
    while True:
        try:
            fn, args, memory_bytes, kill_at = conn.recv()
        except EOFError:
            return
        if len(sys.modules) != modules:  # receiving the task imported its code: part of the baseline
            modules, baseline = len(sys.modules), _data_size()
        limit = baseline + memory_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
            # A time already past still arms the timer (0 would disarm it).
            signal.setitimer(signal.ITIMER_REAL, max(kill_at - time.monotonic(), 1e-6))
            outcome: tuple[str, object] = ("ok", fn(*args))
        except MemoryError:
            outcome = ("memory", None)
        except Exception as exc:
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))
        conn.send(outcome)


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # workers fork with polars and asteval already imported
    return context


class _Worker:
    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True, name="formula-sandbox")
        self.process.start()
        child.close()
        self.ready = False
        _LIVE_WORKERS.add(self)

    def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], memory_bytes: int, timeout_s: float
    ) -> tuple[str, object]:
        """Run ``fn(*args)`` and wait for its answer until ``timeout_s`` from now: ``("timeout",
        None)`` when none came by then (the worker is killed, or its own timer ended it: its pipe
        closes no earlier than the deadline), ``("died", None)`` when it died before. Never waits
        for the worker to exit."""
        if not self.ready:
            if not self.conn.poll(_START_TIMEOUT_S):
                raise RuntimeError("the formula sandbox worker did not start")
            self.conn.recv()
            self.ready = True
        deadline = time.monotonic() + timeout_s
        try:
            self.conn.send((fn, args, memory_bytes, deadline + KILL_GRACE_MS / 1000))
            if not self.conn.poll(max(deadline - time.monotonic(), 0.0)):
                self.kill()
                return ("timeout", None)
            return self.conn.recv()
        except (EOFError, OSError):
            return ("timeout" if time.monotonic() >= deadline else "died", None)

    def kill(self) -> None:
        """``SIGKILL`` without waiting for the process to go (:meth:`stop` reaps it)."""
        self.process.kill()

    def stop(self) -> None:
        self.kill()
        self.process.join()
        self.conn.close()
        _LIVE_WORKERS.discard(self)


_LIVE_WORKERS: set[_Worker] = set()


@atexit.register
def _kill_workers_at_exit() -> None:
    """Kill this process's sandbox workers before multiprocessing joins its children at exit:
    a worker blocked in a read ignores the SIGTERM that join sends, and the interpreter would hang."""
    for worker in list(_LIVE_WORKERS):
        if worker.process._parent_pid == os.getpid():  # only our own children
            worker.process.kill()
            worker.process.join(timeout=2)
    _LIVE_WORKERS.clear()


class SandboxPool:
    """Worker processes that run functions under a wall-clock and a memory budget.

    Thread-safe: each call borrows one idle worker (waiting for one if all are busy). A worker
    that overran or died is killed and swapped for a spare started in advance before the call
    returns; a background thread reaps it and starts the next spare.
    """

    def __init__(self, workers: int = 2) -> None:
        self._context = _context()
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for _ in range(workers):
            self._idle.put(_Worker(self._context))
        self._size = workers
        self._spares: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._retired: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        self._reaper = threading.Thread(target=self._reap, daemon=True, name="formula-sandbox-reaper")
        self._reaper.start()

    def _reap(self) -> None:
        """Start the first spare, then a spare for each retired worker before reaping it: all off
        the callers' path."""
        self._spares.put(_Worker(self._context))
        while (worker := self._retired.get()) is not None:
            self._spares.put(_Worker(self._context))
            worker.stop()

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` and hand it to the reaper; a spare takes its place. Each retired worker
        brings exactly one new spare, so there is one spare between kills; a kill right after
        another waits for the reaper's next spare (a new worker if the reaper cannot start one)."""
        worker.kill()
        self._retired.put(worker)
        try:
            return self._spares.get(timeout=_START_TIMEOUT_S)
        except queue.Empty:
            return _Worker(self._context)

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
    ) -> Any:
        """``fn(*args)`` in a worker; ``fn`` must be importable (a module-level function).

        Raises :class:`FormulaBudgetError` when the call overruns a budget or the worker dies, and
        RuntimeError when ``fn`` raised (the message names the exception).
        """
        worker = self._idle.get()
        keep = False
        try:
            status, payload = worker.call(fn, args, memory_bytes, timeout_ms / 1000)
            keep = status in ("ok", "error")
            if status == "ok":
                return payload
            if status == "error":
                raise RuntimeError(f"sandboxed call failed: {payload}")
            raise FormulaBudgetError(_budget_message(status, timeout_ms, memory_bytes))
        finally:
            self._idle.put(worker if keep else self._replace(worker))

    def close(self) -> None:
        """Stop every worker (waits for running calls to hand theirs back), then the spares."""
        for _ in range(self._size):
            self._idle.get().stop()
        self._retired.put(None)
        self._reaper.join()
        while True:
            try:
                self._spares.get_nowait().stop()
            except queue.Empty:
                return


def _budget_message(status: str, timeout_ms: int, memory_bytes: int) -> str:
    megabytes = f"{memory_bytes / 1e6:g} MB"
    if status == "timeout":
        return f"formula exceeded the {timeout_ms} ms budget and was stopped"
    if status == "memory":
        return f"formula exceeded the {megabytes} memory budget and was stopped"
    return f"the formula's sandbox process stopped (over the {megabytes} memory budget or crashed)"


_default_pool: tuple[int, SandboxPool] | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """The process-wide pool, started on first use (again in a forked child: pipes do not fork)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None or _default_pool[0] != os.getpid():
            _default_pool = (os.getpid(), SandboxPool())
        return _default_pool[1]


# ---- public entry points -------------------------------------------------------------------------


def try_evaluate_row(
    expr: str,
    row: Mapping[str, object],
    fields: Sequence[str] | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> RowEvaluation:
    """Evaluate ``expr`` on one row in the sandbox; ``fields`` defaults to the row's keys.

    Raises :class:`FormulaError` when the formula is not allowed (before anything runs) or a row
    value is not a number, :class:`FormulaBudgetError` when the evaluation overran its budget.
    A field missing from the row counts as a missing value.
    """
    names = tuple(row) if fields is None else tuple(fields)
    checked = check_formula(expr, names)
    values = {name: _number(name, row.get(name)) for name in checked.fields}
    return default_pool().run(
        _evaluate_in_worker, expr, names, values, timeout_ms=timeout_ms, memory_bytes=memory_bytes
    )


def evaluate_row(
    expr: str,
    row: Mapping[str, float | None],
    fields: Sequence[str] | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> float | None:
    """The formula's value on one row, ``None`` when the row fails (see :func:`try_evaluate_row`)."""
    return try_evaluate_row(expr, row, fields, timeout_ms, memory_bytes).value


def evaluate_rows_compiled(
    expr: str, frame: pl.DataFrame, fields: Sequence[str] | None = None, name: str = "formula"
) -> pl.Series:
    """The formula over every row of ``frame`` through the compiled polars expression (bulk path);
    ``fields`` defaults to the frame's columns. Failing rows are null."""
    checked = check_formula(expr, frame.columns if fields is None else fields)
    return frame.with_columns(to_polars(checked).alias(name)).get_column(name)


def cli_check(expr: str, fields: Sequence[str]) -> tuple[int, dict[str, Any]]:
    """``oddsforge formula check``: exit code 0 and the fields used, or 1 and the reason."""
    try:
        checked = check_formula(expr, fields)
    except FormulaError as exc:
        return 1, {"ok": False, "error": str(exc)}
    return 0, {"ok": True, "fields_used": list(checked.fields)}


def cli_eval(expr: str, row_json: str) -> tuple[int, dict[str, Any]]:
    """``oddsforge formula eval``: the formula's value on a JSON row in the sandbox (exit 0), or
    exit 1 with the reason the formula was rejected, stopped or failed on that row."""
    try:
        row = json.loads(row_json)
    except json.JSONDecodeError as exc:
        return 1, {"ok": False, "error": f"the row is not valid JSON: {exc}"}
    if not isinstance(row, dict):
        return 1, {"ok": False, "error": 'the row must be a JSON object of field values, e.g. {"a": 1}'}
    try:
        result = try_evaluate_row(expr, row)
    except FormulaError as exc:
        return 1, {"ok": False, "error": str(exc)}
    if result.value is None:
        return 1, {"ok": False, "value": None, "error": f"the formula fails on this row: {result.failure}"}
    return 0, {"ok": True, "value": result.value}
