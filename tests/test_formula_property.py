"""Property tests: random formulas from the grammar agree in asteval and in the compiled polars
expression, row for row; and the checker answers every input with a result or a FormulaError."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from domain.datasets.formula import FUNCTIONS, FormulaError, check_formula, to_polars
from services.sandbox import evaluate_checked, make_interpreter

# domain.datasets.formula silences the parser's SyntaxWarnings ("1if"); pytest's per-test warning capture
# re-enables them, and random text triggers them.
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")

FIELDS = ("a", "b", "c")
INTERPRETER = make_interpreter()  # in-process: the same configured asteval the workers hold

constants = st.one_of(
    st.integers(0, 12).map(str),
    st.sampled_from(["0.5", "2.5", "0.001", "100.0", "1e300", "3.14159", "1_000"]),
)
leaves = st.one_of(st.sampled_from(FIELDS), constants)
exponents = st.one_of(
    st.sampled_from(FIELDS), st.sampled_from(["2", "3", "0.5", "-1", "(1/3)", "-2.5", "100"])
)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def call(name: str, arity: int) -> st.SearchStrategy[str]:
        return st.lists(inner, min_size=arity, max_size=arity).map(lambda args: f"{name}({', '.join(args)})")

    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    power = st.tuples(inner, exponents).map(lambda t: f"({t[0]}) ** {t[1]}")
    compare = st.tuples(
        inner,
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        inner,
        st.sampled_from(["", " < 5", " >= b"]),
    ).map(lambda t: f"({t[0]} {t[1]} {t[2]}{t[3]})")
    return st.one_of(
        binary,
        power,
        compare,
        inner.map(lambda x: f"-{x}"),
        st.sampled_from(["abs", "sqrt", "log", "log10", "exp", "floor", "ceil", "round"]).flatmap(
            lambda name: call(name, 1)
        ),
        st.tuples(inner, st.integers(0, 3)).map(lambda t: f"round({t[0]}, {t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), st.integers(2, 3)).flatmap(lambda t: call(*t)),
        call("clip", 3),
    )


formulas = st.recursive(leaves, _extend, max_leaves=10)
values = st.one_of(
    st.none(),
    st.sampled_from(
        [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 10.0, 1000.0, 1e-300, 1e300, math.nan, math.inf, -math.inf]
    ),
    st.integers(-10, 10).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
rows = st.lists(st.fixed_dictionaries({name: values for name in FIELDS}), min_size=1, max_size=12)


def _agree(left: float | None, right: float | None) -> bool:
    """Both missing, or the same double: both engines use the same float operations (the brief
    allows 1e-9 relative, which would hide the one-ulp differences that turn into wrong
    comparisons, floors and cancellations; polars' scalar shortcuts are such differences)."""
    if left is None or right is None:
        return left is None and right is None
    return left == right


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(formula=formulas, table=rows)
def test_asteval_and_polars_agree_row_for_row(formula: str, table: list[dict[str, float | None]]) -> None:
    try:
        checked = check_formula(formula, FIELDS)
    except FormulaError:
        reject()  # e.g. a constant exponent that folds above 100, or a too-deep tree
    frame = pl.DataFrame(table, schema={name: pl.Float64 for name in FIELDS})
    compiled = frame.select(to_polars(checked).alias("v")).to_series().to_list()
    if len(compiled) == 1 and len(table) > 1:  # a formula without fields is one literal
        compiled = compiled * len(table)
    for row, vectorised in zip(table, compiled, strict=True):
        single = evaluate_checked(INTERPRETER, checked, row).value
        assert _agree(single, vectorised), f"{formula} on {row}: asteval {single!r}, polars {vectorised!r}"


tokens = st.sampled_from(
    [*FIELDS, *FUNCTIONS, "(", ")", ",", "+", "-", "*", "/", "**", "%", "<", "==", ".", "[", "]", "'s'", "1",
     "2.5", "1e999", "lambda", ":", "__import__", "__class__", "x", " ", "\n", "not", "and", "if", "else"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(max_size=80), st.lists(tokens, max_size=40).map("".join)))
def test_the_checker_answers_any_text_with_a_formula_or_a_formula_error(text: str) -> None:
    try:
        checked = check_formula(text, FIELDS)
    except FormulaError as exc:
        assert str(exc)
        return
    assert set(checked.fields) <= set(FIELDS)
    one_row = pl.DataFrame({name: [1.5] for name in FIELDS})
    assert one_row.select(to_polars(checked)).height == 1
