"""Custom formulas over a user dataset's fields: one grammar, one checker, two engines (SPEC section 7).

A formula is a Python expression restricted to numbers, the dataset's field names, ``+ - * / ** %``,
unary ``+ -``, parentheses, comparisons and calls of ``abs min max sqrt log log10 exp floor ceil
round clip``. :func:`check_formula` parses it with :mod:`ast` and walks the tree against that one
whitelist; everything else is rejected with a :class:`FormulaError` naming the construct and its
column. The checked tree then runs in two engines that must agree:

- the scalar semantics below (:func:`apply_unary`, :func:`apply_binary`, :data:`FUNCTIONS`), which the
  asteval sandbox (``services/sandbox.py``) installs for single evaluations;
- :func:`to_polars`, a vectorised polars expression for bulk scoring.

Semantics, chosen so that both engines give the same doubles, not merely close ones (a last-bit
difference turns into a wrong comparison, floor or cancellation). Measured on polars 2.1: its
``exp``, ``log``, ``sqrt`` and ``**`` give the same doubles as Python's; its ``%`` is the formula
below; and literals enter arithmetic as full columns (see :func:`_share`).

- Every value is a float; a comparison gives 1.0 or 0.0. Integer constants are floats too, so
  ``2**70 + 1`` is float arithmetic as in polars, not Python's exact integers.
- Every intermediate result must be a finite real number. Division or ``%`` by zero, ``log`` of
  zero or less, ``sqrt`` of a negative, a negative base to a fractional power, an overflow: the row
  fails and its score is missing (null), never an error.
- A row with a missing (null, NaN or infinite) value in any field the formula uses fails too.
- Comparison chains are allowed and short-circuit as in Python: ``0 < x < 10`` is
  ``(0 < x) and (x < 10)`` with ``x`` evaluated once, and a part skipped by the short-circuit
  cannot fail the row. ``and``, ``or``, ``not`` and ``x if c else y`` are not part of the grammar
  (SPEC lists comparisons only); multiply comparisons instead: ``(a > 1) * (b < 2)``.
- ``a % b`` is ``a - b * floor(a / b)`` in floating point (polars' and numpy's formula): the
  result takes the divisor's sign, as in Python, but where ``|a / b|`` exceeds 2**53 it loses the
  precision Python's exact remainder keeps (``1 % 1e-244`` gives 0.0, Python 5.43e-245).
- ``round(x)`` rounds half to even (Python's ``round``). ``round(x, n)`` takes a constant
  ``n`` in 0..15 and is ``round(x * 10**n) / 10**n`` (x itself when ``|x| >= 2**52``, already an
  integer): it rounds the binary value scaled in floating point, so ``round(1.115, 2)`` gives 1.12
  where Python's decimal-exact ``round`` gives 1.11.
- ``log`` is the natural logarithm; ``log10(x)`` is ``log(x) / log(10)``, exact at powers of ten
  (within 2 ulps of :func:`math.log10` elsewhere).
- ``min``/``max`` take two or more arguments; ``clip(x, lo, hi)`` is ``min(max(x, lo), hi)``.

Limits: at most 500 characters; a syntax tree at most 32 expression nodes deep; integer constants
of at most 30 digits; float constants finite. ``**`` is guarded twice: an exponent made only of
numbers must not contain another ``**`` (no power towers such as ``9**9**9``) and must fold to a
magnitude of at most 100 (so ``10**1000`` is rejected). A field that shares its name with one of
the functions cannot be used in a formula.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from domain.errors import UserError

MAX_LENGTH = 500
MAX_DEPTH = 32
MAX_EXPONENT = 100
MAX_INT_DIGITS = 30
MAX_ROUND_DIGITS = 15
_INTEGRAL = 2.0**52
"""From this magnitude on every double is an integer, so rounding it to n decimals is the identity."""
_LN10 = math.log(10.0)
_SOURCE = "<formula>"
# Our own messages cover what the parser warns about ("1if", "a is 1"); keep its warnings off stderr.
warnings.filterwarnings("ignore", category=SyntaxWarning, module=re.escape(_SOURCE) + r"\Z")


class FormulaError(UserError, ValueError):
    """A formula outside the grammar or its limits. A ValueError too, so it fits
    :data:`domain.models.config.FormulaChecker`."""


@dataclass(frozen=True)
class CheckedFormula:
    """A formula that passed :func:`check_formula`: its text, parsed tree and the fields it uses."""

    expression: str
    """The text as parsed: line breaks normalised to ``\\n``, leading blanks removed."""
    tree: ast.Expression
    fields: tuple[str, ...]
    """Fields the formula reads, in order of first use."""


# ---- scalar semantics (the reference both engines follow) ----------------------------------------


def _real(value: object) -> float:
    """A finite float from a value an expression produced (bools from comparisons count 1/0)."""
    if isinstance(value, bool | int | float):
        number = float(value)
        if math.isfinite(number):
            return number
        raise ArithmeticError("the result is not a finite number")
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _checked(result: object) -> float:
    if isinstance(result, complex):
        raise ArithmeticError("a negative number to a fractional power has no real value")
    return _real(result)


_BINARY: dict[type[ast.operator], Callable[[float, float], object]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: lambda a, b: a - b * math.floor(a / b),
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    # floats for single rows, polars expressions for bulk scoring
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.Mod: "%",
    ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitAnd: "&", ast.BitXor: "^", ast.Invert: "~", ast.Not: "not", ast.Is: "is", ast.IsNot: "is not",
    ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or",
}  # fmt: skip


def apply_binary(op: type[ast.operator], left: object, right: object) -> float:
    """``left op right`` in float arithmetic; raises when the result is not a finite real."""
    return _checked(_BINARY[op](_real(left), _real(right)))


def apply_unary(op: type[ast.unaryop], operand: object) -> float:
    """``+x`` or ``-x`` as a float."""
    return _UNARY[op](_real(operand))


def _round(x: object, ndigits: object = None) -> float:
    value = _real(x)
    if ndigits is None:
        return float(round(value))
    if abs(value) >= _INTEGRAL:
        return value
    scale = 10.0 ** int(_real(ndigits))
    return float(round(value * scale)) / scale


def _log10(x: object) -> float:
    value = _real(x)
    ratio = math.log(value) / _LN10
    power = round(ratio)
    return float(power) if 10.0**power == value else ratio


def _min(*args: object) -> float:
    return min(_real(a) for a in args)


def _max(*args: object) -> float:
    return max(_real(a) for a in args)


def _clip(x: object, lo: object, hi: object) -> float:
    return _min(_max(x, lo), hi)


def _unary_function(fn: Callable[[float], float]) -> Callable[[object], float]:
    def apply(x: object) -> float:
        return _checked(fn(_real(x)))

    apply.__name__ = fn.__name__
    return apply


FUNCTIONS: Mapping[str, Callable[..., float]] = {
    "abs": _unary_function(abs),
    "min": _min,
    "max": _max,
    "sqrt": _unary_function(math.sqrt),
    "log": _unary_function(math.log),
    "log10": _log10,
    "exp": _unary_function(math.exp),
    "floor": _unary_function(math.floor),
    "ceil": _unary_function(math.ceil),
    "round": _round,
    "clip": _clip,
}
"""The grammar's functions with their scalar semantics (math's functions raise on domain errors)."""

_ARITY: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1), "sqrt": (1, 1), "log": (1, 1), "log10": (1, 1), "exp": (1, 1), "floor": (1, 1),
    "ceil": (1, 1), "round": (1, 2), "clip": (3, 3), "min": (2, None), "max": (2, None),
}  # fmt: skip


def _compare(ops: Sequence[ast.cmpop], values: Iterator[float]) -> float:
    """A comparison chain that short-circuits as Python's does: later operands are not evaluated."""
    left = next(values)
    for op in ops:
        right = next(values)
        if not _COMPARE[type(op)](left, right):
            return 0.0
        left = right
    return 1.0


def _fold(node: ast.expr) -> float:
    """Value of a subtree without fields, by the scalar semantics; raises where a row would fail."""
    match node:
        case ast.Constant(value=value):
            return _real(value)
        case ast.UnaryOp(op=op, operand=operand):
            return apply_unary(type(op), _fold(operand))
        case ast.BinOp(left=left, op=op, right=right):
            return apply_binary(type(op), _fold(left), _fold(right))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            return _compare(ops, (_fold(n) for n in [left, *comparators]))
        case ast.Call(func=ast.Name(id=name), args=args):
            return _real(FUNCTIONS[name](*(_fold(a) for a in args)))
    raise AssertionError(f"not a checked formula node: {ast.dump(node)}")


def _field_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id not in FUNCTIONS}


# ---- the grammar ---------------------------------------------------------------------------------

_FORBIDDEN: dict[type[ast.AST], str] = {
    ast.Subscript: "a subscript",
    ast.Slice: "a slice",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.Starred: "a starred argument",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.IfExp: "a conditional expression (x if c else y)",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.BoolOp: "'and' / 'or'",
}
_HINTS: dict[type[ast.AST], str] = {
    ast.IfExp: "multiply by a comparison instead, e.g. (a > 1) * b",
    ast.BoolOp: "multiply comparisons instead, e.g. (a > 1) * (b < 2)",
}


class _Checker:
    """Walks a parsed formula against the grammar, collecting the fields it uses."""

    def __init__(self, text: str, lead: str, fields: Sequence[str] | None) -> None:
        self.lines = text.split("\n")
        self.line_shift = lead.count("\n")
        self.column_shift = len(lead) - (lead.rfind("\n") + 1)
        self.multiline = "\n" in (lead + text).rstrip()
        self.fields = None if fields is None else set(fields)
        self.used: dict[str, None] = {}

    def where(self, node: ast.AST) -> str:
        """``column N`` (1-based, in characters of the formula as given; ast offsets count UTF-8
        bytes of the parsed text, which starts after any leading blanks), with the line if any."""
        line_no, offset = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        line = self.lines[line_no - 1] if line_no <= len(self.lines) else ""
        column = len(line.encode()[:offset].decode(errors="ignore")) + 1
        if line_no == 1:
            column += self.column_shift
        line_no += self.line_shift
        return f"line {line_no}, column {column}" if self.multiline else f"column {column}"

    def fail(self, message: str, node: ast.AST) -> FormulaError:
        return FormulaError(f"{message} (at {self.where(node)})")

    def check(self, node: ast.expr, depth: int = 1) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(f"the formula nests deeper than {MAX_DEPTH} levels; simplify it", node)
        match node:
            case ast.Constant(value=value):
                self.check_constant(node, value)
            case ast.Name(id=name):
                self.check_name(node, name)
            case ast.UnaryOp(op=op, operand=operand):
                if type(op) not in _UNARY:
                    hint = "; write (x == 0) for 'not x'" if isinstance(op, ast.Not) else ""
                    symbol = _SYMBOLS[type(op)]
                    raise self.fail(f"operator '{symbol}' is not allowed; allowed: unary + -{hint}", node)
                self.check(operand, depth + 1)
            case ast.BinOp(left=left, op=op, right=right):
                if type(op) not in _BINARY:
                    raise self.fail(
                        f"operator '{_SYMBOLS.get(type(op), type(op).__name__)}' is not allowed; "
                        "allowed: + - * / ** %",
                        node,
                    )
                self.check(left, depth + 1)
                self.check(right, depth + 1)
                if isinstance(op, ast.Pow):
                    self.check_exponent(right)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                for comparison in ops:
                    if type(comparison) not in _COMPARE:
                        symbol = _SYMBOLS[type(comparison)]
                        raise self.fail(
                            f"comparison '{symbol}' is not allowed; allowed: < <= > >= == !=", node
                        )
                for operand in [left, *comparators]:
                    self.check(operand, depth + 1)
            case ast.Call():
                self.check_call(node, depth)
            case ast.Attribute(attr=attr):
                raise self.fail(f"attribute access (.{attr}) is not allowed in a formula", node)
            case _:
                what = _FORBIDDEN.get(type(node), f"a {type(node).__name__} expression")
                hint = f"; {_HINTS[type(node)]}" if type(node) in _HINTS else ""
                raise self.fail(f"{what} is not allowed in a formula{hint}", node)

    def check_constant(self, node: ast.Constant, value: object) -> None:
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail(f"{value!r} is not allowed in a formula; use numbers (1 or 0 for yes/no)", node)
        if isinstance(value, str | bytes):
            raise self.fail("a string is not allowed in a formula", node)
        if isinstance(value, complex):
            raise self.fail("a complex number is not allowed in a formula", node)
        if isinstance(value, int) and len(str(abs(value))) > MAX_INT_DIGITS:
            raise self.fail(f"an integer constant has more than {MAX_INT_DIGITS} digits", node)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail("a number constant is too large to be a finite float", node)

    def check_name(self, node: ast.Name, name: str) -> None:
        if name.startswith("__") and name.endswith("__"):
            raise self.fail(f"name {name!r} is not allowed in a formula", node)
        if name in FUNCTIONS:
            if self.fields is not None and name in self.fields:
                raise self.fail(
                    f"field {name!r} has the name of a function and cannot be used in a formula; "
                    "rename the field",
                    node,
                )
            raise self.fail(f"function {name!r} must be called, e.g. {name}(x)", node)
        if self.fields is not None and name not in self.fields:
            allowed = ", ".join(sorted(self.fields)) or "(none)"
            raise self.fail(f"unknown name {name!r}; the formula may use the fields: {allowed}", node)
        self.used.setdefault(name)

    def check_call(self, node: ast.Call, depth: int) -> None:
        if not isinstance(node.func, ast.Name):
            self.check(node.func, depth + 1)  # names the construct: attribute access, a lambda, ...
            raise self.fail("only the listed functions may be called, by their names", node)
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(f"function {name!r} is not available; allowed: {', '.join(FUNCTIONS)}", node)
        if node.keywords:
            raise self.fail(f"keyword arguments are not allowed (in {name}())", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail("a starred argument is not allowed in a formula", arg)
        low, high = _ARITY[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            wanted = f"at least {low}" if high is None else (f"{low}" if low == high else f"{low} or {high}")
            raise self.fail(f"{name}() takes {wanted} argument{'s' * (wanted != '1')}, got {count}", node)
        if name == "round" and count == 2:
            ndigits = node.args[1]
            if not (
                isinstance(ndigits, ast.Constant)
                and type(ndigits.value) is int
                and 0 <= ndigits.value <= MAX_ROUND_DIGITS
            ):
                raise self.fail(
                    f"round(x, n) needs n to be a whole number from 0 to {MAX_ROUND_DIGITS}", ndigits
                )
        for arg in node.args:
            self.check(arg, depth + 1)

    def check_exponent(self, exponent: ast.expr) -> None:
        """Exponents made only of numbers: no towers, magnitude at most MAX_EXPONENT."""
        if _field_names(exponent):
            return
        if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in ast.walk(exponent)):
            raise self.fail("a power tower of constants (a ** b ** c) is not allowed", exponent)
        try:
            value = _fold(exponent)
        except (ArithmeticError, ValueError) as exc:
            raise self.fail(f"the exponent cannot be computed ({exc})", exponent) from None
        if abs(value) > MAX_EXPONENT:
            raise self.fail(f"a constant exponent must be at most {MAX_EXPONENT} in magnitude", exponent)


def check_formula(expr: str, fields: Sequence[str] | None) -> CheckedFormula:
    """Parse ``expr`` and check it against the grammar and limits; ``fields`` are the names it may use.

    With ``fields`` None any name may be a field: the grammar alone, as a model config checks its
    formulas when it is parsed, before the dataset they read is known.
    Raises :class:`FormulaError` naming the first offending construct and its column.
    """
    if len(expr) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(expr)} characters long; the limit is {MAX_LENGTH}")
    normalised = expr.replace("\r\n", "\n").replace("\r", "\n")
    text = normalised.lstrip()  # a leading blank would be an "unexpected indent"
    if not text:
        raise FormulaError("the formula is empty")
    checker = _Checker(text, normalised[: len(normalised) - len(text)], fields)
    try:
        tree = ast.parse(text, filename=_SOURCE, mode="eval")
    except SyntaxError as exc:
        if not exc.lineno:
            raise FormulaError(f"not a valid formula: {exc.msg}") from None
        line = checker.lines[exc.lineno - 1] if exc.lineno <= len(checker.lines) else ""
        offset = exc.offset or len(line) + 1  # 0 means "at the end of the input"
        at = ast.Constant(value=0, lineno=exc.lineno, col_offset=len(line[: offset - 1].encode()))
        raise checker.fail(f"not a valid formula: {exc.msg}", at) from None
    except ValueError as exc:  # null bytes, on Python versions that do not raise SyntaxError for them
        raise FormulaError(f"not a valid formula: {exc}") from None
    checker.check(tree.body)
    return CheckedFormula(expression=text, tree=tree, fields=tuple(checker.used))


# ---- the vectorised engine -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    expr: pl.Expr
    kind: Literal["literal", "field", "computed"]


def _finite(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_finite()).then(expr)


def _literal(value: float | None) -> _Part:
    return _Part(pl.lit(value, dtype=pl.Float64), "literal")


def _share(build: Callable[..., pl.Expr], parts: Sequence[_Part]) -> _Part:
    """``build(*inputs)`` where ``build`` may use each input several times.

    Inputs that are all fields go in directly. Otherwise they are packed once into a struct and
    ``build`` reads them back as struct fields, for two reasons measured on polars 2.1:

    - polars evaluates a repeated subexpression once per occurrence, so repeating computed inputs
      nests into exponential work (a 15-level formula took 45 s on 120,000 rows);
    - a column combined with a scalar literal takes shortcuts that change the last bit: ``x / 20``
      is computed as ``x * (1 / 20)`` (a third of values differ from true division) and ``x ** 3``
      by repeated multiplication. Inside the struct a literal is a full column, and the kernels
      give the same doubles as Python.
    """
    if all(p.kind == "field" for p in parts):
        return _Part(build(*(p.expr for p in parts)), "computed")
    names = [f"_{i}" for i in range(len(parts))]
    packed = pl.struct([p.expr.alias(n) for p, n in zip(parts, names, strict=True)])
    out = build(*(pl.field(n) for n in names)).alias("_out")
    return _Part(packed.struct.with_fields(out).struct.field("_out"), "computed")


def _null_if_any_null(values: Sequence[pl.Expr], result: pl.Expr) -> pl.Expr:
    """min_horizontal and friends skip nulls; a formula's functions fail on them instead."""
    return pl.when(pl.any_horizontal([v.is_null() for v in values])).then(None).otherwise(result)


def _chain(ops: Sequence[ast.cmpop], *values: pl.Expr) -> pl.Expr:
    """Python's short-circuit chain: null (failed) left part -> null, false -> 0, true -> the rest."""
    tests = [_COMPARE[type(op)](a, b) for op, a, b in zip(ops, values, values[1:], strict=False)]
    result = tests[-1]
    for test in reversed(tests[:-1]):
        result = pl.when(test).then(result).when(test.not_()).then(False).otherwise(None)
    return result.cast(pl.Float64)


def _round_digits(x: pl.Expr, scale: pl.Expr) -> pl.Expr:
    scaled = (x * scale).round(0, mode="half_to_even") / scale
    return pl.when(x.abs() >= _INTEGRAL).then(x).otherwise(scaled)


def _log10_expr(x: pl.Expr, ln10: pl.Expr, ten: pl.Expr) -> pl.Expr:
    ratio = x.log() / ln10
    power = ratio.round(0, mode="half_to_even")
    return _finite(pl.when(ten.pow(power) == x).then(power).otherwise(ratio))


_POLARS_BINARY: dict[type[ast.operator], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: pl.Expr.pow,
    ast.Mod: operator.mod,
}
_POLARS_SIMPLE: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "abs": pl.Expr.abs,
    "floor": pl.Expr.floor,
    "ceil": pl.Expr.ceil,
}
_POLARS_SHARED: dict[str, Callable[..., pl.Expr]] = {
    "sqrt": lambda x: _finite(x.sqrt()),
    "log": lambda x: _finite(x.log()),
    "exp": lambda x: _finite(x.exp()),
    "min": lambda *xs: _null_if_any_null(xs, pl.min_horizontal(xs)),
    "max": lambda *xs: _null_if_any_null(xs, pl.max_horizontal(xs)),
    "clip": lambda x, lo, hi: _null_if_any_null((x, lo, hi), pl.min_horizontal(pl.max_horizontal(x, lo), hi)),
}


class _Compiler:
    """Turns a checked tree into one polars expression; every part is a finite float or null."""

    def __init__(self, fields: Mapping[str, pl.Expr]) -> None:
        self.fields = fields

    def compile(self, node: ast.expr) -> _Part:
        if not _field_names(node):
            try:
                return _literal(_fold(node))
            except (ArithmeticError, ValueError):
                return _literal(None)
        match node:
            case ast.Name(id=name):
                return _Part(self.fields[name], "field")
            case ast.UnaryOp(op=op, operand=operand):
                inner = self.compile(operand)
                return _Part(-inner.expr if isinstance(op, ast.USub) else inner.expr, inner.kind)
            case ast.BinOp(left=left, op=op, right=right):
                fn = _POLARS_BINARY[type(op)]
                return _share(lambda a, b: _finite(fn(a, b)), [self.compile(left), self.compile(right)])
            case ast.Compare(left=left, ops=[op], comparators=[right]):
                a, b = self.compile(left), self.compile(right)
                return _Part(_COMPARE[type(op)](a.expr, b.expr).cast(pl.Float64), "computed")
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                parts = [self.compile(n) for n in [left, *comparators]]
                return _share(lambda *values: _chain(ops, *values), parts)
            case ast.Call(func=ast.Name(id="round"), args=[x]):
                return _Part(self.compile(x).expr.round(0, mode="half_to_even"), "computed")
            case ast.Call(func=ast.Name(id="round"), args=[x, ast.Constant(value=int(ndigits))]):
                return _share(_round_digits, [self.compile(x), _literal(10.0**ndigits)])
            case ast.Call(func=ast.Name(id="log10"), args=[x]):
                return _share(_log10_expr, [self.compile(x), _literal(_LN10), _literal(10.0)])
            case ast.Call(func=ast.Name(id=name), args=[x]) if name in _POLARS_SIMPLE:
                return _Part(_POLARS_SIMPLE[name](self.compile(x).expr), "computed")
            case ast.Call(func=ast.Name(id=name), args=args):
                return _share(_POLARS_SHARED[name], [self.compile(a) for a in args])
        raise AssertionError(f"not a checked formula node: {ast.dump(node)}")


def to_polars(checked: CheckedFormula) -> pl.Expr:
    """The formula as a Float64 polars expression over columns named after its fields.

    Rows where the formula fails (see the module docstring) are null. A formula without fields is
    a literal, broadcast by ``with_columns``.
    """
    fields = {name: _finite(pl.col(name).cast(pl.Float64)) for name in checked.fields}
    body = _Compiler(fields).compile(checked.tree.body).expr
    if not fields:
        return body
    return _null_if_any_null(list(fields.values()), body)
