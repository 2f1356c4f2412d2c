"""User datasets: schema inference, validation rules and the quality score (SPEC section 7).

A dataset arrives as a polars frame whose columns are either text (CSV, and JSON or Excel columns
of mixed values) or native values (Parquet, typed JSON/Excel columns). Every rule here reads both
through the same cell expressions, so a value means the same thing whatever the file format:

* a cell is *empty* when it is null or only whitespace;
* a non-empty cell is *valid* when it parses to its field's type; numbers must also be finite, so
  ``abc``, ``NaN``, ``inf`` and ``1e309`` in a numeric field are reported by row.

Row numbers in every report are 1-based *data* rows: row 1 is the first row after the header.

The rules are written once, as polars expressions. :func:`quality_report` evaluates all of them in
one lazy query (the fast path that feeds the score); :func:`pandera_schema` wraps the same
expressions as pandera checks for blocking validation, and ``services.dataset_quality`` checks the
same rules independently with great-expectations.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, get_args

import polars as pl

from domain.errors import UserError
from domain.models.config import MIN_DATASET_QUALITY, DataType
from domain.sports import SPORTS, sport_info

if TYPE_CHECKING:  # pandera (and pandas under it) is imported where a schema is built: half a second
    import pandera.polars as pa  # of start-up that every reader of these rules would otherwise pay
    from pandera.api.polars.types import PolarsData

FieldType = Literal["int", "float", "bool", "date", "datetime", "string"]
FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)

# Limits (SPEC 7; MB = 10^6 bytes).
MAX_FILE_BYTES = 100_000_000
MAX_ROWS = 100_000
MAX_FIELDS = 50
MAX_CELL_BYTES = 1_000_000
MAX_LINE_BYTES = 10_000_000

MAX_MISSING_SHARE = 0.10
"""The seed's missing-values rule: a field with more empty cells than this share is reported."""
OUTLIER_SIGMAS = 5.0
MAX_LISTED_ROWS = 100
"""Failing rows listed per rule and field; the count is always complete."""

SCORE_WEIGHTS: dict[str, float] = {
    "schema_valid": 0.3,
    "type_valid": 0.2,
    "completeness": 0.2,
    "uniqueness": 0.15,
    "freshness": 0.15,
}

KEY_FIELDS: dict[DataType, tuple[str, ...]] = {
    "game_level": ("game_id",),
    "team_level": ("team", "date"),
    # A player's row is one game of that player: the same shape as team-level data.
    "player_level": ("player_id", "date"),
}
ID_FIELDS = frozenset({"game_id", "team", "player_id"})
"""Identifiers are text unless declared otherwise (a numeric-looking id is still an id)."""

_TYPE_ALIASES: dict[str, FieldType] = {
    **{t: t for t in FIELD_TYPES},
    "integer": "int",
    "number": "float",
    "double": "float",
    "boolean": "bool",
    "str": "string",
    "text": "string",
    "timestamp": "datetime",
}
_BOOL_TOKENS = {
    "true": True, "t": True, "yes": True, "y": True, "1": True,
    "false": False, "f": False, "no": False, "n": False, "0": False,
}  # fmt: skip
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")
"""ISO dates, and the US month/day/year that US sports data often uses (never day/month/year)."""
_TYPE_NAMES: dict[FieldType, str] = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true/false, yes/no, 1/0)",
    "date": "a date (YYYY-MM-DD or MM/DD/YYYY)",
    "datetime": "a date-time (YYYY-MM-DD HH:MM[:SS])",
    "string": "text",
}

Rule = Literal["schema", "type", "finite", "missing_values", "duplicate_key", "date_range", "outliers"]


class DatasetRejected(UserError):
    """A file that is refused outright (unreadable, over a limit, missing a key field).

    ``status`` is the HTTP status the API answers with: 413 when the file is too large, 422 when its
    content is refused.
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


# ---- schema -----------------------------------------------------------------------------------------


def normalise_schema(declared: Mapping[str, str] | None) -> dict[str, FieldType]:
    """Declared field types in canonical names (``boolean`` -> ``bool``); unknown types are refused."""
    schema: dict[str, FieldType] = {}
    problems = []
    for name, type_name in (declared or {}).items():
        canonical = _TYPE_ALIASES.get(str(type_name).strip().lower())
        if canonical is None:
            problems.append(f"field {name!r}: unknown type {type_name!r}")
        else:
            schema[name] = canonical
    if problems:
        raise DatasetRejected(f"declared schema: {'; '.join(problems)} (known: {', '.join(FIELD_TYPES)})")
    return schema


def check_header(names: Sequence[str | None], source: str) -> tuple[str, ...]:
    """Header names stripped of surrounding spaces; empty or duplicate names and too many fields refuse.

    Positions in messages are 1-based columns, so a user can find them in a spreadsheet.
    """
    if len(names) > MAX_FIELDS:
        raise DatasetRejected(f"{source}: {len(names)} fields; the limit is {MAX_FIELDS} fields")
    header = tuple("" if name is None else str(name).strip() for name in names)
    problems = []
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        problems.append(f"empty header at column {', '.join(map(str, empty))}")
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        if name:
            positions.setdefault(name, []).append(i + 1)
    problems += [
        f"duplicate header {name!r} at columns {', '.join(map(str, cols))}"
        for name, cols in positions.items()
        if len(cols) > 1
    ]
    if problems:
        raise DatasetRejected(f"{source}: {'; '.join(problems)}")
    return header


def key_fields(data_type: DataType) -> tuple[str, ...]:
    """The key fields a dataset of ``data_type`` must have."""
    return KEY_FIELDS[data_type]


def check_keys(columns: Iterable[str], data_type: DataType) -> tuple[str, ...]:
    """The dataset's key fields; a missing one refuses the file outright (SPEC 7)."""
    keys = key_fields(data_type)
    missing = [k for k in keys if k not in set(columns)]
    if missing:
        raise DatasetRejected(
            f"missing key field {', '.join(repr(k) for k in missing)}: a {data_type} dataset needs "
            f"{' and '.join(repr(k) for k in keys)}"
        )
    return keys


def infer_types(frame: pl.DataFrame) -> dict[str, FieldType]:
    """Each column's type: native columns keep theirs; text columns take the narrowest type.

    A text column takes the first of int, float, bool, date, datetime that every non-empty cell
    parses to; failing that, the one most cells parse to if that is at least half of them (so a
    numeric column with a few bad cells stays numeric and the bad cells are reported); else string.
    """
    types: dict[str, FieldType] = {}
    text_cols = []
    for name, dtype in frame.schema.items():
        native = _native_type(dtype)
        if native is None:
            text_cols.append(name)
        else:
            types[name] = native
    candidates: tuple[tuple[FieldType, ...], ...] = (("int", "float", "bool", "date"), ("datetime",))
    shares: dict[str, dict[FieldType, float]] = {name: {} for name in text_cols}
    pending = text_cols
    # Date-times (the slowest to parse) are tried only on columns that are none of the others.
    for group in candidates:
        if not pending:
            break
        counts = (
            frame.lazy()
            .select(
                [_present(n, frame.schema[n]).sum().alias(f"{i}") for i, n in enumerate(pending)]
                + [
                    _parse(n, frame.schema[n], t).is_not_null().sum().alias(f"{i}:{t}")
                    for i, n in enumerate(pending)
                    for t in group
                ]
            )
            .collect()
            .row(0, named=True)
        )
        still = []
        for i, name in enumerate(pending):
            present = counts[f"{i}"]
            shares[name].update({t: counts[f"{i}:{t}"] / present if present else 0.0 for t in group})
            if not any(shares[name][t] == 1.0 for t in group):
                still.append(name)
        pending = still
    for name in text_cols:
        ordered = [t for group in candidates for t in group if t in shares[name]]
        complete = [t for t in ordered if shares[name][t] == 1.0]
        best = max(ordered, key=lambda t: shares[name][t])
        types[name] = complete[0] if complete else best if shares[name][best] >= 0.5 else "string"
    return types


def effective_schema(frame: pl.DataFrame, declared: Mapping[str, str] | None = None) -> dict[str, FieldType]:
    """Declared types (which win, in declared order), then the file's other columns with inferred types.

    Declared fields absent from the file stay in the schema: that is what makes ``schema_valid`` 0.
    """
    schema: dict[str, FieldType] = dict(normalise_schema(declared))
    undeclared = frame.select([c for c in frame.columns if c not in schema])
    inferred = infer_types(undeclared.select([c for c in undeclared.columns if c not in ID_FIELDS]))
    for name in undeclared.columns:
        schema[name] = "string" if name in ID_FIELDS else inferred[name]
    return schema


# ---- cell expressions (the one implementation of every rule) ----------------------------------------


def _native_type(dtype: pl.DataType) -> FieldType | None:
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return None


def _stripped(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    return col.str.strip_chars() if dtype == pl.String else col.cast(pl.String)


def _text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The cell as stripped text, null when empty."""
    text = _stripped(name, dtype)
    return pl.when(text != "").then(text)


def _present(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return (_stripped(name, dtype).str.len_bytes() > 0).fill_null(False)
    return pl.col(name).is_not_null()


def _number(name: str, dtype: pl.DataType) -> pl.Expr:
    """The cell as a float, possibly non-finite (NaN, inf, or a text like 1e309 that overflows)."""
    if dtype.is_numeric():
        return pl.col(name).cast(pl.Float64)
    return _stripped(name, dtype).cast(pl.Float64, strict=False)


def _holds(dtype: pl.DataType, ftype: FieldType) -> bool:
    """Whether every non-null value of a native ``dtype`` is of ``ftype`` (finiteness aside)."""
    return (
        ftype == "string"
        or (ftype == "float" and dtype.is_numeric())
        or (ftype == "int" and dtype.is_integer())
        or (ftype == "bool" and dtype == pl.Boolean)
        or (ftype in ("date", "datetime") and (dtype == pl.Date or isinstance(dtype, pl.Datetime)))
    )


def _naive_utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return expr.cast(pl.Datetime("us"))


def _text_date(text: pl.Expr) -> pl.Expr:
    return pl.coalesce([text.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS])


def _text_datetime(text: pl.Expr) -> pl.Expr:
    spaced = text.str.replace("T", " ", literal=True)
    naive = spaced.str.strip_suffix("Z")
    return pl.coalesce(
        naive.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False),
        naive.str.to_datetime("%Y-%m-%d %H:%M", time_unit="us", strict=False),
        _naive_utc(
            spaced.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%z", time_unit="us", strict=False),
            pl.Datetime("us", "UTC"),
        ),
        _text_date(text).cast(pl.Datetime("us")),
    )


def _parse(name: str, dtype: pl.DataType, ftype: FieldType) -> pl.Expr:
    """The cell as a value of ``ftype``; null when empty or when it does not parse (or is not finite)."""
    col = pl.col(name)
    text = _stripped(name, dtype)  # an empty text parses to null like any other invalid one
    if ftype == "string":
        return _text(name, dtype)
    if ftype == "float":
        number = _number(name, dtype)
        return pl.when(number.is_finite()).then(number)
    if ftype == "int":
        if dtype.is_integer():
            return col.cast(pl.Int64)
        if dtype.is_float():
            whole = col.is_finite() & (col == col.round()) & (col.abs() < 2.0**63)
            return pl.when(whole).then(col).cast(pl.Int64)
        return text.cast(pl.Int64, strict=False)
    if ftype == "bool":
        if dtype == pl.Boolean:
            return col
        return text.str.to_lowercase().replace_strict(_BOOL_TOKENS, default=None, return_dtype=pl.Boolean)
    if ftype == "date":
        if dtype == pl.Date:
            return col
        if isinstance(dtype, pl.Datetime):
            return col.dt.date()
        return _text_date(text)
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return _naive_utc(col, dtype)
    return _text_datetime(text)


def _not_finite(name: str, dtype: pl.DataType, ftype: FieldType) -> pl.Expr:
    """A numeric field's cell that reads as a number but not a finite one."""
    if ftype not in ("int", "float") or dtype.is_integer():
        return pl.lit(False)
    number = _number(name, dtype)
    return number.is_not_null() & ~number.is_finite()


def _type_failure(name: str, dtype: pl.DataType, ftype: FieldType) -> pl.Expr:
    """A non-empty cell that does not parse to its field's type (non-finite numbers excepted)."""
    if _holds(dtype, ftype):
        return pl.lit(False)
    return _present(name, dtype) & _parse(name, dtype, ftype).is_null() & ~_not_finite(name, dtype, ftype)


def _invalid(name: str, dtype: pl.DataType, ftype: FieldType) -> pl.Expr:
    """A non-empty cell that fails its type, or is not a finite number."""
    return _type_failure(name, dtype, ftype) | _not_finite(name, dtype, ftype)


def _as_date(name: str, dtype: pl.DataType, ftype: FieldType) -> pl.Expr:
    if ftype == "date":
        return _parse(name, dtype, "date")
    return _parse(name, dtype, "datetime").dt.date()


def _key_value(name: str, dtype: pl.DataType, ftype: FieldType) -> pl.Expr:
    """A key cell compared by value where it parses (01/05/2024 equals 2024-01-05), else by its text."""
    if ftype == "string":
        return _text(name, dtype)
    return pl.coalesce(_parse(name, dtype, ftype).cast(pl.String), _text(name, dtype))


def _duplicate_key(
    keys: Sequence[str], frame_schema: Mapping[str, pl.DataType], schema: Mapping[str, FieldType]
) -> pl.Expr:
    """Rows whose complete key occurs more than once (a row with an empty key is no duplicate)."""
    values = [_key_value(k, frame_schema[k], schema[k]).alias(k) for k in keys]
    complete = pl.all_horizontal([v.is_not_null() for v in values])
    key = values[0] if len(values) == 1 else pl.struct(values)
    return complete & key.is_duplicated()


@cache
def in_season_days(sport: str | None) -> tuple[int, ...]:
    """Days of the year (``month * 100 + day``) inside a season of ``sport`` (of any sport when None)."""
    sports = list(SPORTS.values()) if sport is None else [sport_info(sport)]
    leap_year = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    return tuple(d.month * 100 + d.day for d in leap_year if any(s.in_season(d) for s in sports))


def _date_outside_range(day: pl.Expr, sport: str | None, today: dt.date) -> pl.Expr:
    """A date that is outside every season of the sport, or after ``today``."""
    in_season = (day.dt.month().cast(pl.Int32) * 100 + day.dt.day()).is_in(list(in_season_days(sport)))
    return day.is_not_null() & ~(in_season & (day <= today))


def date_field(frame: pl.DataFrame, schema: Mapping[str, FieldType]) -> str | None:
    """The field whose dates freshness reads: ``date`` when present, else the first date-typed field."""
    if "date" in frame.columns:
        return "date"
    return next((c for c in frame.columns if schema.get(c) in ("date", "datetime")), None)


def field_dates(frame: pl.DataFrame, schema: Mapping[str, str]) -> pl.Series | None:
    """The dates freshness reads (see :func:`date_field`), parsed; None for a dataset without dates."""
    types = complete_schema(frame, schema)
    when = date_field(frame, types)
    if when is None:
        return None
    return frame.select(_as_date(when, frame.schema[when], types[when]).alias(when)).to_series()


def typed_frame(frame: pl.DataFrame, schema: Mapping[str, str]) -> pl.DataFrame:
    """The frame with every field parsed to its type; empty and invalid cells become null.

    This is the form a dataset is stored and looked up in.
    """
    types = complete_schema(frame, schema)
    return (
        frame.lazy().select([_parse(c, frame.schema[c], types[c]).alias(c) for c in frame.columns]).collect()
    )


@dataclass(frozen=True)
class TypedRows:
    """A dataset in the form it is stored: typed, with the text of the cells that typing dropped.

    ``unparsed`` has the same rows and columns as ``frame``, all text: a cell that is not empty but
    does not parse to its field's type (or is not a finite number) as the file had it, null
    everywhere else. Together they hold what every quality rule reads, so a stored version can be
    checked again without its upload.
    """

    frame: pl.DataFrame
    """Every field parsed to its type; empty and invalid cells are null."""
    unparsed: pl.DataFrame


def typed_rows(frame: pl.DataFrame, schema: Mapping[str, str]) -> TypedRows:
    """``frame`` parsed to ``schema`` (completed with inferred types), keeping its invalid cells' text."""
    types = complete_schema(frame, schema)
    unparsed = (
        frame.lazy()
        .select(
            [
                pl.when(_invalid(c, frame.schema[c], types[c])).then(pl.col(c).cast(pl.String)).alias(c)
                for c in frame.columns
            ]
        )
        .collect()
    )
    return TypedRows(typed_frame(frame, types), unparsed)


def complete_schema(frame: pl.DataFrame, schema: Mapping[str, str]) -> dict[str, FieldType]:
    """``schema`` normalised, with types inferred for the frame's columns it does not name."""
    declared = normalise_schema(schema)
    return {**effective_schema(frame, declared), **declared}


# ---- the quality report (fast path) -----------------------------------------------------------------


@dataclass(frozen=True)
class RuleFailure:
    """One rule failing on one field (or on the key, or the file): how many rows, and which."""

    rule: Rule
    field: str | None
    count: int
    rows: tuple[int, ...]
    """1-based data rows (row 1 = the first row after the header), at most ``MAX_LISTED_ROWS``."""
    message: str


@dataclass(frozen=True)
class FieldQuality:
    name: str
    type: FieldType
    present: bool
    """False for a declared field missing from the file."""
    empty: int
    missing_share: float
    invalid: int
    """Non-empty cells that fail the type (or finiteness) rule."""
    outliers: int
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class QualityReport:
    """Every rule's result for one dataset, and the score computed from them (SPEC 7)."""

    score: float
    usable: bool
    schema_valid: float
    type_valid: float
    completeness: float
    uniqueness: float
    freshness: float
    rows: int
    key_fields: tuple[str, ...]
    date_field: str | None
    sport: str | None
    today: dt.date
    fields: tuple[FieldQuality, ...]
    failures: tuple[RuleFailure, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with a note saying how rows are numbered."""
        out = asdict(self)
        out["today"] = self.today.isoformat()
        out["row_numbers"] = "1-based data rows: row 1 is the first row after the header"
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReport:
        """The report that :meth:`as_dict` gave (as stored with a dataset version)."""
        return cls(
            **{k: data[k] for k in ("score", "usable", "rows", "date_field", "sport", *SCORE_WEIGHTS)},
            key_fields=tuple(data["key_fields"]),
            today=dt.date.fromisoformat(data["today"]),
            fields=tuple(FieldQuality(**f) for f in data["fields"]),
            failures=tuple(RuleFailure(**{**f, "rows": tuple(f["rows"])}) for f in data["failures"]),
        )

    def failed(self, rule: Rule) -> tuple[RuleFailure, ...]:
        return tuple(f for f in self.failures if f.rule == rule)


def _what(rule: Rule, field: str | None, ftype: FieldType | None = None, keys: Sequence[str] = ()) -> str:
    """The first half of a failure message (the rows follow), shared by the fast path and pandera."""
    if rule == "type":
        return f"{field}: not {_TYPE_NAMES[ftype or 'string']}"
    if rule == "finite":
        return f"{field}: not a finite number (NaN, inf or too large)"
    return f"key ({', '.join(keys)}) occurs more than once"


def _rows_text(rows: Sequence[int], count: int) -> str:
    shown = ", ".join(map(str, rows[:10]))
    more = f" and {count - min(len(rows), 10)} more" if count > 10 else ""
    return f"data row{'s' if count > 1 else ''} {shown}{more}"


def quality_report(
    frame: pl.DataFrame,
    schema: Mapping[str, str],
    sport: str | None,
    data_type: DataType,
    today: dt.date,
) -> QualityReport:
    """Score a dataset: every rule evaluated in one lazy polars ``select``.

    ``schema`` is the declared (or effective) schema; columns it does not name get inferred types, and
    named fields missing from the frame make ``schema_valid`` 0. A missing key field raises
    :class:`DatasetRejected`.
    """
    keys = check_keys(frame.columns, data_type)
    if sport is not None and sport not in SPORTS:
        raise DatasetRejected(f"unknown sport {sport!r}; supported: {', '.join(SPORTS)}")
    declared = normalise_schema(schema)
    types = complete_schema(frame, declared)
    fs = frame.schema
    cols = frame.columns
    when = date_field(frame, types)

    # Stage 1 parses each column once and computes its row-level masks (columns run in parallel);
    # stage 2 derives the masks that need a column's mean or a parsed date; stage 3 aggregates.
    # All three are one lazy query; spelling the stages out keeps polars from searching hundreds of
    # expressions for common subexpressions.
    parsed: list[pl.Expr] = []
    derived: list[pl.Expr] = []
    aggregates: list[pl.Expr] = [pl.len().alias("rows")]

    def counted(stage: list[pl.Expr], mask: pl.Expr, label: str) -> None:
        stage.append(mask.alias(label))
        flag = pl.col(label)
        aggregates.extend(
            [
                flag.sum().alias(f"{label}:n"),
                flag.arg_true().head(MAX_LISTED_ROWS).implode().alias(f"{label}:rows"),
            ]
        )

    numeric = [c for c in cols if types[c] in ("int", "float")]
    for i, c in enumerate(cols):
        counted(parsed, ~_present(c, fs[c]), f"{i}:empty")
        if not _holds(fs[c], types[c]):
            counted(parsed, _type_failure(c, fs[c], types[c]), f"{i}:type")
        if c in numeric:
            if not fs[c].is_integer():
                counted(parsed, _not_finite(c, fs[c], types[c]), f"{i}:finite")
            parsed.append(_parse(c, fs[c], types[c]).cast(pl.Float64).alias(f"{i}:x"))
            x = pl.col(f"{i}:x")
            aggregates += [x.mean().alias(f"{i}:mean"), x.std().alias(f"{i}:std")]
            counted(derived, (x - x.mean()).abs() > OUTLIER_SIGMAS * x.std(), f"{i}:outliers")
    counted(parsed, _duplicate_key(keys, fs, types), "key:dup")
    if when is not None:
        parsed.append(_as_date(when, fs[when], types[when]).alias("day"))
        counted(derived, _date_outside_range(pl.col("day"), sport, today), "date:range")
        aggregates.append((pl.col("day").is_not_null() & ~pl.col("date:range")).sum().alias("fresh"))
    got = (
        frame.lazy()
        .select(parsed)
        .with_columns(derived)
        .select(aggregates)
        .collect(optimizations=pl.QueryOptFlags(comm_subexpr_elim=False))
        .row(0, named=True)
    )

    rows: int = got["rows"]
    failures: list[RuleFailure] = []

    def fail(rule: Rule, field: str | None, label: str, message: str) -> int:
        count = got.get(f"{label}:n", 0)  # absent: a check the column's dtype makes needless
        if count:
            listed = tuple(r + 1 for r in got[f"{label}:rows"])
            failures.append(
                RuleFailure(rule, field, count, listed, f"{message}: {_rows_text(listed, count)}")
            )
        return count

    absent = [f for f in declared if f not in cols]
    if absent:
        failures.append(
            RuleFailure(
                "schema", None, len(absent), (), f"declared field not in the file: {', '.join(absent)}"
            )
        )
    fields: list[FieldQuality] = []
    cells_present = cells_invalid = cells_empty = 0
    for i, c in enumerate(cols):
        empty = got[f"{i}:empty:n"]
        present = rows - empty
        share = empty / rows if rows else 0.0
        if share > MAX_MISSING_SHARE:
            fail("missing_values", c, f"{i}:empty", f"{c}: {share:.0%} of cells are empty (limit 10%)")
        invalid = fail("type", c, f"{i}:type", _what("type", c, types[c]))
        outliers = 0
        mean = std = None
        if c in numeric:
            invalid += fail("finite", c, f"{i}:finite", _what("finite", c))
            mean, std = got[f"{i}:mean"], got[f"{i}:std"]
            spread = f"{mean:.4g} ± {std:.4g}" if std is not None else "too few values"
            outliers = fail(
                "outliers",
                c,
                f"{i}:outliers",
                f"{c}: over {OUTLIER_SIGMAS:g} standard deviations from the mean ({spread})",
            )
        fields.append(FieldQuality(c, types[c], True, empty, share, invalid, outliers, mean, std))
        cells_present += present
        cells_invalid += invalid
        cells_empty += empty
    fields += [FieldQuality(f, types[f], False, 0, 0.0, 0, 0, None, None) for f in absent]
    duplicates = fail("duplicate_key", None, "key:dup", _what("duplicate_key", None, keys=keys))
    if when is not None:
        fail(
            "date_range",
            when,
            "date:range",
            f"{when}: outside a season{' of ' + sport if sport else ''} or after {today}",
        )

    schema_valid = 0.0 if absent else 1.0
    type_valid = 1.0 - cells_invalid / cells_present if cells_present else 1.0
    completeness = 1.0 - cells_empty / (rows * len(cols)) if rows and cols else 0.0
    uniqueness = 1.0 - duplicates / rows if rows else 1.0
    freshness = (got["fresh"] / rows if rows else 0.0) if when is not None else 1.0
    parts = {
        "schema_valid": schema_valid,
        "type_valid": type_valid,
        "completeness": completeness,
        "uniqueness": uniqueness,
        "freshness": freshness,
    }
    score = math.fsum(SCORE_WEIGHTS[k] * v for k, v in parts.items())
    return QualityReport(
        score=score,
        usable=score > MIN_DATASET_QUALITY,
        **parts,
        rows=rows,
        key_fields=keys,
        date_field=when,
        sport=sport,
        today=today,
        fields=tuple(fields),
        failures=tuple(failures),
    )


# ---- pandera: the same rules as a blocking contract -------------------------------------------------


def _passes_or_rows(data: PolarsData, bad: pl.Expr) -> pl.LazyFrame | bool:
    """``True`` when no row is bad (one query, where pandera would run three), else the row verdicts."""
    if not data.lazyframe.select(bad.any()).collect().item():
        return True
    return data.lazyframe.select(~bad)


def _column_check(rule: Rule, ftype: FieldType) -> pa.Check:
    import pandera.polars as pa

    def check(data: PolarsData) -> pl.LazyFrame | bool:
        dtype = data.lazyframe.collect_schema()[data.key]
        bad = _type_failure(data.key, dtype, ftype) if rule == "type" else _not_finite(data.key, dtype, ftype)
        return _passes_or_rows(data, bad)

    return pa.Check(check, name=rule)


def pandera_schema(
    schema: Mapping[str, str],
    data_type: DataType,
    frame_schema: Mapping[str, pl.DataType] | None = None,
) -> pa.DataFrameSchema:
    """A pandera schema (polars backend) enforcing declared types, finite numbers, keys and their uniqueness.

    Columns hold text or native values, so types are checked cell by cell with the same parsers as
    the quality score rather than by dtype. Given the frame's dtypes, checks that a dtype already
    guarantees (an integer column can hold neither text nor NaN) are left out.
    """
    import pandera.polars as pa

    types = normalise_schema(schema)
    keys = key_fields(data_type)
    for k in keys:
        types.setdefault(k, "date" if k == "date" else "string")

    def unique_key(data: PolarsData) -> pl.LazyFrame | bool:
        return _passes_or_rows(data, _duplicate_key(keys, data.lazyframe.collect_schema(), types))

    def checks(name: str, ftype: FieldType) -> list[pa.Check]:
        dtype = (frame_schema or {}).get(name, pl.String())
        return [_column_check("type", ftype)] * (not _holds(dtype, ftype)) + [
            _column_check("finite", ftype)
        ] * (ftype in ("int", "float") and not dtype.is_integer())

    columns = {
        name: pa.Column(dtype=None, nullable=True, required=True, checks=checks(name, ftype))
        for name, ftype in types.items()
    }
    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(unique_key, name="duplicate_key")],
        strict=False,
        name=f"user dataset ({data_type})",
    )


def validate(frame: pl.DataFrame, schema: Mapping[str, str], data_type: DataType) -> tuple[RuleFailure, ...]:
    """Run :func:`pandera_schema` lazily (every failure at once); group its failures by rule and field.

    A missing key field raises :class:`DatasetRejected`; other failures are returned, rows 1-based.
    """
    import pandera.polars as pa

    check_keys(frame.columns, data_type)
    types = complete_schema(frame, schema)
    try:
        pandera_schema(types, data_type, frame.schema).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return ()
    failures: list[RuleFailure] = []
    absent = cases.filter(pl.col("check") == "column_in_dataframe")["failure_case"].to_list()
    if absent:
        failures.append(
            RuleFailure(
                "schema", None, len(absent), (), f"declared field not in the file: {', '.join(absent)}"
            )
        )
    groups = (
        cases.filter(pl.col("index").is_not_null())
        .group_by("check", "column", maintain_order=True)
        .agg(pl.col("index").unique().sort().alias("rows"))
    )
    keys = key_fields(data_type)
    for rule, check_column, rows in groups.iter_rows():
        column = None if rule == "duplicate_key" else check_column
        listed = tuple(r + 1 for r in rows[:MAX_LISTED_ROWS])
        what = _what(rule, column, None if column is None else types.get(column), keys)
        failures.append(
            RuleFailure(rule, column, len(rows), listed, f"{what}: {_rows_text(listed, len(rows))}")
        )
    return tuple(failures)


# ---- stats, preview, export safety ------------------------------------------------------------------


@dataclass(frozen=True)
class FieldStats:
    type: FieldType
    count: int
    """Non-empty cells."""
    missing: int
    distinct: int
    """Distinct non-empty values (by value where they parse: ``yes`` and ``true`` are one)."""
    min: float | str | None
    max: float | str | None
    mean: float | None
    std: float | None


def dataset_stats(frame: pl.DataFrame, schema: Mapping[str, str]) -> dict[str, FieldStats]:
    """Per field: type, counts, distinct values and, for numbers and dates, range (and mean, std)."""
    types = complete_schema(frame, schema)
    fs = frame.schema
    exprs: list[pl.Expr] = []
    for i, c in enumerate(frame.columns):
        exprs += [
            _present(c, fs[c]).sum().alias(f"{i}:count"),
            _key_value(c, fs[c], types[c]).drop_nulls().n_unique().alias(f"{i}:distinct"),
        ]
        value = _parse(c, fs[c], types[c])
        if types[c] in ("int", "float", "date", "datetime"):
            exprs += [value.min().alias(f"{i}:min"), value.max().alias(f"{i}:max")]
        if types[c] in ("int", "float"):
            exprs += [
                value.cast(pl.Float64).mean().alias(f"{i}:mean"),
                value.cast(pl.Float64).std().alias(f"{i}:std"),
            ]
    got = frame.lazy().select(exprs).collect().row(0, named=True)

    def plain(value: Any) -> float | str | None:
        return value.isoformat() if isinstance(value, dt.date) else value

    return {
        c: FieldStats(
            type=types[c],
            count=got[f"{i}:count"],
            missing=frame.height - got[f"{i}:count"],
            distinct=got[f"{i}:distinct"],
            min=plain(got.get(f"{i}:min")),
            max=plain(got.get(f"{i}:max")),
            mean=got.get(f"{i}:mean"),
            std=got.get(f"{i}:std"),
        )
        for i, c in enumerate(frame.columns)
    }


def preview(frame: pl.DataFrame, n: int = 10) -> list[dict[str, str | None]]:
    """The first ``n`` rows as the text a user sees in the file (JSON-ready; empty cells are None)."""
    head = frame.head(n)
    return head.select([_text(c, head.schema[c]).alias(c) for c in head.columns]).to_dicts()


_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def csv_safe_expr(text: pl.Expr) -> pl.Expr:
    """Text that a spreadsheet will not run as a formula: cells starting with ``= + - @`` (or a tab or
    carriage return) get a leading single quote; plain numbers such as ``-3.5`` are left alone.
    """
    risky = text.str.contains(_FORMULA_START) & ~text.str.contains(_PLAIN_NUMBER)
    return pl.when(risky).then(pl.lit("'") + text).otherwise(text)


def csv_safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every cell as export-safe text (see :func:`csv_safe_expr`)."""
    return frame.select([csv_safe_expr(pl.col(c).cast(pl.String)).alias(c) for c in frame.columns])


def csv_safe(value: str) -> str:
    """One cell made export-safe, by the same rule as :func:`csv_safe_frame`."""
    return pl.select(csv_safe_expr(pl.lit(value, dtype=pl.String))).item()
