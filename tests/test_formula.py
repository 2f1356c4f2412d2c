"""Custom formulas: the grammar's checks, hand-worked values in both engines, and the sandbox's budgets."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl
import pytest

from domain.datasets.formula import FUNCTIONS, FormulaError, check_formula, to_polars
from domain.errors import UserError
from domain.models.config import ConfigError, parse_model_config, validate_against
from services.sandbox import (
    FormulaBudgetError,
    SandboxPool,
    cli_check,
    cli_eval,
    default_pool,
    evaluate_checked,
    evaluate_row,
    evaluate_rows_compiled,
    make_interpreter,
    try_evaluate_row,
)
from tests.test_model_config import CUSTOM, CUSTOM_WEATHER, WEATHER, payload

SEED_FORMULA = "(temperature - 32) * 0.01 + (wind_speed / 20)"
WEATHER_FIELDS = ["temperature", "wind_speed"]
SANE = "(a + 1) * 2"
GENEROUS_MS = 10_000
"""A budget for calls that check an answer, not the budget (a loaded machine can take over 100 ms
to schedule a worker)."""


def _healthy() -> None:
    """The default sandbox still answers correctly: (3 + 1) * 2 = 8 (with a budget a loaded machine
    meets: the 100 ms budget's enforcement is tests/test_sandbox.py's)."""
    assert evaluate_row(SANE, {"a": 3}, timeout_ms=GENEROUS_MS) == 8.0


# ---- the grammar ---------------------------------------------------------------------------------

HOSTILE = [
    ("().__class__.__bases__[0].__subclasses__()", "attribute access (.__subclasses__)"),
    ("'{0.__class__}'.format(1)", "attribute access (.format)"),
    ("open('/etc/passwd')", "function 'open' is not available"),
    ("__import__('os')", "function '__import__' is not available"),
    ("9**9**9", "power tower"),
    ("(10**1000)**10000", "exponent must be at most 100"),
    ("[0]*10**7", "a list is not allowed"),
    ("lambda: 1", "a lambda is not allowed"),
    ("a" * 50_000, "50000 characters long; the limit is 500"),
    ("humidity * 2", "unknown name 'humidity'"),
    ("__class__", "name '__class__' is not allowed"),
    ("a.real", "attribute access (.real)"),
    ("a[0]", "a subscript is not allowed"),
    ("'abc'", "a string is not allowed"),
    ("b'abc'", "a string is not allowed"),
    ("f'{a}'", "an f-string is not allowed"),
    ("[x for x in (1, 2)]", "a comprehension is not allowed"),
    ("(a for a in (1,))", "a generator expression is not allowed"),
    ("min(*(1, 2))", "a starred argument is not allowed"),
    ("round(a, ndigits=2)", "keyword arguments are not allowed"),
    ("None", "None is not allowed"),
    ("True + 1", "True is not allowed"),
    ("...", "Ellipsis is not allowed"),
    ("1j", "a complex number is not allowed"),
    ("a if a > 1 else 0", "a conditional expression"),
    ("(a > 1) and (a < 2)", "'and' / 'or' is not allowed"),
    ("not a", "operator 'not' is not allowed"),
    ("~a", "operator '~' is not allowed"),
    ("a // 2", "operator '//' is not allowed"),
    ("a << 2", "operator '<<' is not allowed"),
    ("a in (1, 2)", "comparison 'in' is not allowed"),
    ("a is 1", "comparison 'is' is not allowed"),
    ("(a := 1)", "an assignment expression"),
    ("print(a)", "function 'print' is not available"),
    ("eval('1')", "function 'eval' is not available"),
    ("getattr(a, 'real')", "function 'getattr' is not available"),
    ("(1)(2)", "only the listed functions may be called"),
    ("abs", "function 'abs' must be called"),
    ("a = 1", "not a valid formula"),
    ("a +", "not a valid formula"),
    ("", "the formula is empty"),
    ("a\x00", "not a valid formula"),
    ("1e999", "too large to be a finite float"),
    ("1" * 31, "more than 30 digits"),
    ("a ** 101", "exponent must be at most 100"),
    ("a ** -(50 * 3)", "exponent must be at most 100"),
    ("a ** (1 / 0)", "the exponent cannot be computed"),
    ("a ** 2 ** 3", "power tower"),
    ("min(a)", "min() takes at least 2 arguments, got 1"),
    ("clip(a, 1)", "clip() takes 3 arguments, got 2"),
    ("sqrt(a, 2)", "sqrt() takes 1 argument, got 2"),
    ("round(a, 1, 2)", "round() takes 1 or 2 arguments, got 3"),
    ("round(a, a)", "round(x, n) needs n to be a whole number from 0 to 15"),
    ("round(a, 16)", "round(x, n) needs n to be a whole number from 0 to 15"),
    ("round(a, 1.5)", "round(x, n) needs n to be a whole number from 0 to 15"),
]


@pytest.mark.parametrize(("expr", "phrase"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_formulas_are_rejected_before_evaluation(expr: str, phrase: str) -> None:
    started = time.perf_counter()
    with pytest.raises(FormulaError) as info:
        check_formula(expr, ["a"])
    assert phrase in str(info.value)
    # The sandbox checks first and never evaluates; the CLI reports the same message.
    with pytest.raises(FormulaError) as again:
        evaluate_row(expr, {"a": 1.0})
    assert str(again.value) == str(info.value)
    code, body = cli_eval(expr, '{"a": 1}')
    assert (code, body["ok"], body["error"]) == (1, False, str(info.value))
    assert time.perf_counter() - started < 1.0
    _healthy()


def test_formula_error_is_a_user_error_and_a_value_error() -> None:
    """A ValueError, so domain.models.config.validate_against can use check_formula as its checker."""
    assert issubclass(FormulaError, UserError)
    assert issubclass(FormulaError, ValueError)
    good = {**CUSTOM_WEATHER, "transformation": "custom_formula", "formula": SEED_FORMULA, "field": None}
    validate_against(
        parse_model_config(payload(**{CUSTOM: good})), {WEATHER.dataset_id: WEATHER}, check_formula
    )
    bad = {**good, "formula": "__import__('os')"}
    with pytest.raises(ConfigError) as info:
        validate_against(
            parse_model_config(payload(**{CUSTOM: bad})), {WEATHER.dataset_id: WEATHER}, check_formula
        )
    assert info.value.problems[0].path == f"{CUSTOM}.formula"
    assert "function '__import__' is not available" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("expr", "fields", "where"),
    [
        ("a + b.c", ["a", "b"], "(at column 5)"),
        ("a + foo", ["a"], "(at column 5)"),
        ("température + foo", ["température"], "(at column 15)"),  # characters, not UTF-8 bytes
        ("   a + foo", ["a"], "(at column 8)"),  # leading blanks count
        ("(a +\n foo)", ["a"], "(at line 2, column 2)"),
        ("a + * 2", ["a"], "(at column 5)"),
    ],
)
def test_messages_give_the_position(expr: str, fields: list[str], where: str) -> None:
    with pytest.raises(FormulaError) as info:
        check_formula(expr, fields)
    assert str(info.value).endswith(where)


def test_limits_sit_exactly_at_500_characters_and_32_levels() -> None:
    assert check_formula("a" + " " * 496 + "+ a", ["a"]).fields == ("a",)  # 500 characters
    with pytest.raises(FormulaError, match="501 characters long"):
        check_formula("a" + " " * 497 + "+ a", ["a"])
    # abs(abs(...(a))): each call is one level, the name the last one.
    assert check_formula("abs(" * 31 + "a" + ")" * 31, ["a"]).fields == ("a",)
    with pytest.raises(FormulaError, match="deeper than 32 levels"):
        check_formula("abs(" * 32 + "a" + ")" * 32, ["a"])
    with pytest.raises(FormulaError, match="deeper than 32 levels"):
        check_formula(" + ".join(["a"] * 33), ["a"])  # left-nested: a 33-term sum is 33 levels


def test_what_the_grammar_accepts() -> None:
    checked = check_formula(
        "clip(b, 0, 1) * a ** 0.5 + a ** (1/3) + a ** -2 + a ** b + 0 < a <= 10", ["a", "b"]
    )
    assert checked.fields == ("b", "a")
    assert check_formula("1" * 30, []).fields == ()
    assert check_formula("round(a) + round(a, 15) + min(a, 1, 2) + max(a, 1)", ["a"]).fields == ("a",)
    assert check_formula("a ** 100 + a ** -100 + a ** (50 * 2)", ["a"]).fields == ("a",)
    assert check_formula("log10(a) + log(a) + exp(a) + floor(a) + ceil(a) + sqrt(abs(a))", ["a"]).fields == (
        "a",
    )
    with pytest.raises(FormulaError, match="field 'log' has the name of a function"):
        check_formula("log + 1", ["log"])
    assert set(FUNCTIONS) == {
        "abs",
        "min",
        "max",
        "sqrt",
        "log",
        "log10",
        "exp",
        "floor",
        "ceil",
        "round",
        "clip",
    }


# ---- values, worked by hand, in both engines -----------------------------------------------------

CASES: list[tuple[str, dict[str, Any], float | None]] = [
    # the seed's formula: (72 - 32) * 0.01 + 10 / 20 = 0.4 + 0.5
    (SEED_FORMULA, {"temperature": 72, "wind_speed": 10}, 0.9),
    (SEED_FORMULA, {"temperature": 32, "wind_speed": 0}, 0.0),
    (SEED_FORMULA, {"temperature": None, "wind_speed": 10}, None),
    (SEED_FORMULA, {"temperature": math.nan, "wind_speed": 10}, None),
    (SEED_FORMULA, {"temperature": math.inf, "wind_speed": 10}, None),
    ("a / b", {"a": 1, "b": 0}, None),
    ("a % b", {"a": 1, "b": 0}, None),
    ("-7 % a", {"a": 3}, 2.0),  # -7 - 3 * floor(-7 / 3): the divisor's sign, as in Python
    ("7 % a", {"a": -3}, -2.0),
    ("7.5 % a", {"a": 2}, 1.5),
    ("1 % a", {"a": 1e-244}, 0.0),  # documented: Python's exact remainder is 5.43e-245
    ("log(a)", {"a": 0}, None),
    ("log(a)", {"a": -1}, None),
    ("log(a)", {"a": math.e}, 1.0),
    ("log10(a)", {"a": 1000}, 3.0),  # exact at powers of ten (log(1000) / log(10) is 2.9999999999999996)
    ("floor(log10(a))", {"a": 1000}, 3.0),
    ("log10(a)", {"a": 0.001}, -3.0),
    ("sqrt(a)", {"a": -4}, None),
    ("sqrt(a)", {"a": 16}, 4.0),
    ("a ** 0.5", {"a": -4}, None),  # Python gives a complex number: a failure here
    ("a ** 3", {"a": -2}, -8.0),
    ("a ** -1", {"a": 0}, None),
    ("exp(a)", {"a": 1000}, None),  # overflow
    ("exp(a)", {"a": 0}, 1.0),
    ("a * 1e308 * 10", {"a": 1}, None),  # overflow to infinity
    ("1 / (a * 1e308 * 10)", {"a": 1}, None),  # Python floats would give 0.0; any non-finite step fails
    ("2 ** 70 + a - 2 ** 70", {"a": 1}, 0.0),  # float arithmetic, as in polars (exact integers give 1)
    ("round(a)", {"a": 2.5}, 2.0),  # half to even
    ("round(a)", {"a": 3.5}, 4.0),
    ("round(a)", {"a": -2.5}, -2.0),
    ("round(a, 1)", {"a": 0.25}, 0.2),  # 2.5 tenths, half to even
    ("round(a, 2)", {"a": 1.115}, 1.12),  # documented: Python's round(1.115, 2) is 1.11
    ("round(a, 2)", {"a": 2.0**53 + 2}, 2.0**53 + 2),
    ("abs(a) + floor(a) + ceil(a)", {"a": -1.5}, 1.5 - 2 - 1),
    ("min(a, b, 3)", {"a": 5, "b": 4}, 3.0),
    ("max(a, b, 3)", {"a": 5, "b": 4}, 5.0),
    ("min(a, b)", {"a": 5, "b": None}, None),
    ("clip(a, 0, 1)", {"a": 5}, 1.0),
    ("clip(a, 0, 1)", {"a": -5}, 0.0),
    ("clip(a, 2, 1)", {"a": 5}, 1.0),  # min(max(x, lo), hi): hi wins when lo > hi
    ("(a > 1) * 10", {"a": 2}, 10.0),
    ("(a > 1) * 10", {"a": 1}, 0.0),
    ("a == b", {"a": 2, "b": 2}, 1.0),
    ("a != b", {"a": 2, "b": 2}, 0.0),
    ("0 < a < 10", {"a": 5}, 1.0),
    ("0 < a < 10", {"a": 20}, 0.0),
    ("a > 1 > 1 / 0", {"a": 0}, 0.0),  # short-circuit: the failing part is never reached
    ("a > 1 > 1 / 0", {"a": 5}, None),
    ("1 / 0 < a < 2", {"a": 5}, None),
    ("2 + 3", {}, 5.0),
    ("a", {"a": True}, 1.0),
]


@pytest.mark.parametrize(("expr", "row", "expected"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_both_engines_give_the_hand_worked_value(
    expr: str, row: dict[str, Any], expected: float | None
) -> None:
    checked = check_formula(expr, list(row))
    in_process = evaluate_checked(make_interpreter(), checked, row).value
    frame = pl.DataFrame([row]) if row else pl.DataFrame({"x": [0.0]})
    compiled = frame.select(to_polars(checked).alias("v")).item()
    for value in (in_process, compiled):
        if expected is None:
            assert value is None
        else:
            assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_python_differs_where_documented() -> None:
    """round(x, n) scales in floating point (1.115 * 100 = 111.50000000000001 rounds to 112) and %
    is a - b * floor(a / b), as polars computes them; Python's decimal round and exact remainder
    differ on such inputs."""
    interpreter = make_interpreter()
    assert round(1.115, 2) == 1.11
    assert evaluate_checked(interpreter, check_formula("round(a, 2)", ["a"]), {"a": 1.115}).value == 1.12
    assert 1 % 1e-244 == 5.4345496938933635e-245
    assert evaluate_checked(interpreter, check_formula("1 % a", ["a"]), {"a": 1e-244}).value == 0.0


def test_the_worker_agrees_with_the_in_process_interpreter() -> None:
    interpreter = make_interpreter()
    for expr, row, _ in CASES[:20]:
        local = evaluate_checked(interpreter, check_formula(expr, list(row)), row)
        remote = try_evaluate_row(expr, row)
        assert remote == local
    assert try_evaluate_row("a / b", {"a": 1, "b": 0}).failure == "ZeroDivisionError: float division by zero"
    assert (
        try_evaluate_row("a + b", {"a": 1}, fields=["a", "b"]).failure == "field 'b' has no value on this row"
    )


def test_row_values_must_be_numbers() -> None:
    with pytest.raises(FormulaError, match="the value of field 'a' is not a number: 'x'"):
        evaluate_row("a + 1", {"a": "x"})
    assert evaluate_row("a + 1", {"a": 10**400}) is None  # beyond float range: missing


def test_the_interpreter_knows_only_the_grammar() -> None:
    """Second line of defence: without the checker, asteval itself refuses the hostile formulas."""
    interpreter = make_interpreter()
    assert set(interpreter.symtable) == set(FUNCTIONS)
    for expr, _ in [*HOSTILE[:8], ("print(1)", ""), ("x = 1", ""), ("import os", ""), ("[1][0]", "")]:
        with pytest.raises(Exception):  # noqa: B017 - asteval raises the failing construct's own type
            interpreter.eval(expr, show_errors=False, raise_errors=True)
    assert interpreter.eval("max(2, 3) + 1", show_errors=False, raise_errors=True) == 4.0


# ---- the bulk path -------------------------------------------------------------------------------


def test_bulk_path_scores_every_row_and_leaves_failures_null() -> None:
    frame = pl.DataFrame({"temperature": [72, 32, None, 50], "wind_speed": [10.0, 0.0, 5.0, None]})
    scores = evaluate_rows_compiled(SEED_FORMULA, frame)
    assert scores.dtype == pl.Float64
    assert scores.to_list() == pytest.approx([0.9, 0.0, None, None])
    constant = evaluate_rows_compiled("1 + 1", frame)
    assert constant.to_list() == [2.0] * 4
    with pytest.raises(FormulaError, match="unknown name 'humidity'"):
        evaluate_rows_compiled("humidity", frame)


def test_compiled_expression_stays_linear_in_nesting() -> None:
    """polars re-evaluates repeated subexpressions; 32 nested checked operations must stay fast."""
    expr = "sqrt(" * 15 + "a" + " + 1)" * 15 + " / 2"
    frame = pl.DataFrame({"a": [float(i) for i in range(100_000)]})
    started = time.perf_counter()
    scores = evaluate_rows_compiled(expr, frame)
    assert time.perf_counter() - started < 5.0
    interpreter = make_interpreter()
    checked = check_formula(expr, ["a"])
    for i in (0, 1, 99_999):
        assert scores[i] == evaluate_checked(interpreter, checked, {"a": float(i)}).value


# ---- the sandbox's budgets -----------------------------------------------------------------------


def _add(a: float, b: float) -> float:
    return a + b


def _pid() -> int:
    return os.getpid()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _spin() -> None:
    while True:
        pass


def _allocate(size: int) -> int:
    return len(bytearray(size))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _fail() -> None:
    raise KeyError("boom")


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    sandbox = SandboxPool(workers=1)
    yield sandbox
    sandbox.close()


def _warm_pid(pool: SandboxPool) -> int:
    """The worker's pid, after it imported this module (slow, so outside any 100 ms budget)."""
    return pool.run(_pid, timeout_ms=30_000)


def test_a_slow_call_is_killed_at_the_time_budget_and_the_worker_replaced(pool: SandboxPool) -> None:
    for slow, args in ((_sleep, (5.0,)), (_spin, ())):
        before = _warm_pid(pool)
        started = time.perf_counter()
        with pytest.raises(FormulaBudgetError, match="formula exceeded the 100 ms budget and was stopped"):
            pool.run(slow, *args, timeout_ms=100)
        assert time.perf_counter() - started < 1.0
        assert _warm_pid(pool) != before


def test_a_memory_hungry_call_is_stopped_and_the_worker_replaced(pool: SandboxPool) -> None:
    before = _warm_pid(pool)
    assert pool.run(_allocate, 2_000_000) == 2_000_000  # well inside the 10 MB budget
    with pytest.raises(FormulaBudgetError, match="formula exceeded the 10 MB memory budget"):
        pool.run(_allocate, 50_000_000)
    assert _warm_pid(pool) != before
    assert pool.run(_allocate, 2_000_000) == 2_000_000
    # The budget is per evaluation on top of the worker's baseline: many 8 MB calls all fit.
    assert all(pool.run(_allocate, 8_000_000) == 8_000_000 for _ in range(100))


def test_a_dying_worker_is_reported_and_replaced(pool: SandboxPool) -> None:
    before = _warm_pid(pool)
    with pytest.raises(FormulaBudgetError, match="sandbox process stopped"):
        pool.run(_die)
    assert _warm_pid(pool) != before
    assert pool.run(_add, 2, 2) == 4


def test_an_exception_in_the_call_keeps_the_worker(pool: SandboxPool) -> None:
    before = _warm_pid(pool)
    with pytest.raises(RuntimeError, match="sandboxed call failed: KeyError: 'boom'"):
        pool.run(_fail)
    assert pool.run(_pid) == before


def test_the_heaviest_formulas_the_grammar_allows_finish_within_budget() -> None:
    """Every value is a float and the text at most 500 characters: nothing under the grammar is slow
    or large, so the budgets only guard against the sandbox itself going wrong."""
    wide = "max(" + ", ".join(["exp(a) ** 2.5"] * 32) + ")"
    deep = "sqrt(abs(" * 15 + "a ** 99" + "))" * 15
    long_sum = " + ".join(["a ** 100"] * 31)
    for expr in (wide, deep, long_sum):
        assert len(expr) <= 500
        assert evaluate_row(expr, {"a": 1.5}) is not None


def test_every_failure_leaves_the_evaluation_service_healthy() -> None:
    """The default pool after a rejected, a failing, a slow, a memory-hungry and a dying call."""
    with pytest.raises(FormulaError):
        evaluate_row("__import__('os')", {"a": 1})
    _healthy()
    assert evaluate_row("a / 0", {"a": 1}) is None
    _healthy()
    for call, args in ((_sleep, (5.0,)), (_allocate, (50_000_000,)), (_die, ())):
        with pytest.raises(FormulaBudgetError):
            default_pool().run(call, *args)
        _healthy()


def test_concurrent_evaluations_get_their_own_answers() -> None:
    with ThreadPoolExecutor(max_workers=4) as executor:
        results = list(executor.map(lambda i: evaluate_row("a * 2 + b", {"a": i, "b": 1}), range(40)))
    assert results == [i * 2.0 + 1 for i in range(40)]


# ---- command-line functions ----------------------------------------------------------------------


def test_cli_check() -> None:
    assert cli_check(SEED_FORMULA, WEATHER_FIELDS) == (0, {"ok": True, "fields_used": WEATHER_FIELDS})
    code, body = cli_check("humidity * 2", WEATHER_FIELDS)
    assert (code, body["ok"]) == (1, False)
    assert body["error"].startswith("unknown name 'humidity'; the formula may use the fields: temperature")


def test_cli_eval() -> None:
    assert cli_eval(SEED_FORMULA, '{"temperature": 72, "wind_speed": 10}') == (0, {"ok": True, "value": 0.9})
    code, body = cli_eval("a / b", '{"a": 1, "b": 0}')
    assert (code, body) == (
        1,
        {
            "ok": False,
            "value": None,
            "error": "the formula fails on this row: ZeroDivisionError: float division by zero",
        },
    )
    assert cli_eval("a", "{not json")[0] == 1
    assert cli_eval("a", "[1]") == (
        1,
        {"ok": False, "error": 'the row must be a JSON object of field values, e.g. {"a": 1}'},
    )
    assert cli_eval("a + 1", '{"a": "7"}') == (
        1,
        {"ok": False, "error": "the value of field 'a' is not a number: '7'"},
    )
    assert cli_eval("a + 1", '{"a": null}')[1]["error"].endswith("field 'a' has no value on this row")
