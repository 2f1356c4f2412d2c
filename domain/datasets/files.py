"""Read an uploaded dataset's bytes (CSV, JSON records or lines, .xlsx, Parquet) into a polars frame.

Every limit of SPEC 7 is checked as early as it can be, and before anything expensive: the byte
size first, then encoding and line lengths on the raw bytes (a 50 MB line is refused without being
decoded), then the header, and for workbooks the zip directory and the sheet's cell references
before the sheet is loaded (a zip bomb or a cell at XFD1048576 never reaches the Excel reader).
Refusals raise :class:`~domain.datasets.validation.DatasetRejected` naming the limit and where it was broken.

The file name is only ever displayed (see :func:`safe_display_name`); the caller stores the bytes
under a key it generates.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from xml.etree import ElementTree

import fastexcel
import polars as pl
import pyarrow.parquet as pq

from domain.datasets.validation import (
    ID_FIELDS,
    MAX_CELL_BYTES,
    MAX_FIELDS,
    MAX_FILE_BYTES,
    MAX_LINE_BYTES,
    MAX_ROWS,
    DatasetRejected,
    FieldType,
    check_header,
    csv_safe_frame,
    effective_schema,
    normalise_schema,
)

Format = Literal["csv", "json", "jsonl", "xlsx", "parquet"]

MAX_INFLATED_BYTES = 500_000_000
"""Uncompressed size of a workbook's (or Parquet file's) contents; a full 100,000 x 50 sheet is ~200 MB."""
MAX_ZIP_RATIO = 200
"""Compression ratio above which a large zip member is taken for a zip bomb (real sheets stay under ~50)."""
_RATIO_FLOOR = 10_000_000
"""Members smaller than this inflate harmlessly whatever their ratio."""
MAX_ZIP_MEMBERS = 10_000

_UTF8_BOM = b"\xef\xbb\xbf"
_EXTENSIONS: dict[str, Format | None] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": None,  # records or lines: the content decides
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SEPARATORS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class ParsedDataset:
    frame: pl.DataFrame
    """Text columns (CSV cells, mixed JSON/Excel columns) or native ones;
    ``domain.datasets.validation`` reads both."""
    format: Format
    header: tuple[str, ...]
    schema: dict[str, FieldType]
    """Declared types (which win) and inferred types for the other columns."""
    warnings: tuple[str, ...]
    display_name: str


def safe_display_name(filename: str) -> str:
    """A file name fit to show and log: the last path part, printable, at most 255 characters.

    ``../../x.csv`` becomes ``x.csv``; it is never used as a path.
    """
    last = re.split(r"[\\/]", filename or "")[-1]
    printable = "".join(ch for ch in last if ch.isprintable()).strip().lstrip(".")
    return printable[:255] or "dataset"


def read_dataset(data: bytes, filename: str, declared_schema: dict[str, str] | None = None) -> ParsedDataset:
    """Parse an upload, checking every limit; raise :class:`DatasetRejected` (413 or 422) when refused."""
    name = safe_display_name(filename)
    declared = normalise_schema(declared_schema)
    if len(declared) > MAX_FIELDS:
        raise DatasetRejected(f"declared schema: {len(declared)} fields; the limit is {MAX_FIELDS} fields")
    if len(data) > MAX_FILE_BYTES:
        raise DatasetRejected(
            f"{name}: {len(data):,} bytes; the file size limit is {MAX_FILE_BYTES:,} bytes (100 MB)",
            status=413,
        )
    warnings: list[str] = []
    fmt = _detect_format(data, name, warnings)
    if fmt in ("csv", "json", "jsonl"):
        data = _check_text(data, name, fmt, warnings)
    frame = _READERS[fmt](data, name, declared)
    frame = _normalise_columns(frame, name)
    return ParsedDataset(
        frame=frame,
        format=fmt,
        header=tuple(frame.columns),
        schema=effective_schema(frame, declared),
        warnings=tuple(warnings),
        display_name=name,
    )


def export_csv(frame: pl.DataFrame) -> bytes:
    """A dataset as CSV bytes that a spreadsheet opens without running any cell as a formula."""
    return csv_safe_frame(frame).write_csv().encode()


# ---- format and text checks -------------------------------------------------------------------------


def _detect_format(data: bytes, name: str, warnings: list[str]) -> Format:
    """The format from the content's signature, else from the extension; a mismatch is warned about."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".xls" or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise DatasetRejected(
            f"{name}: a legacy .xls or password-protected workbook; save it as an unprotected .xlsx file"
        )
    sniffed: Format | None = (
        "xlsx" if data[:4] == b"PK\x03\x04" else "parquet" if data[:4] == b"PAR1" else None
    )
    expected = _EXTENSIONS.get(suffix, "csv")
    if sniffed is not None:
        if suffix in _EXTENSIONS and expected != sniffed:
            warnings.append(
                f"{name}: the extension says {suffix} but the content is {sniffed}; read as {sniffed}"
            )
        return sniffed
    if expected in ("xlsx", "parquet"):
        raise DatasetRejected(
            f"{name}: not a {expected} file (its first bytes are not a {expected} signature)"
        )
    if suffix not in _EXTENSIONS:
        warnings.append(f"{name}: unknown extension {suffix or '(none)'}; read as text")
    if expected == "csv" and suffix in _EXTENSIONS:
        return "csv"
    first = data[:4096].removeprefix(_UTF8_BOM).lstrip()[:1]
    return "json" if first == b"[" else "jsonl" if first == b"{" else "csv"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_text(data: bytes, name: str, fmt: Format, warnings: list[str]) -> bytes:
    """UTF-8 text without NUL bytes or over-long lines; a UTF-8 BOM is removed.

    Works on the bytes: lines are measured with ``rfind`` jumps of the line limit, so a huge line
    costs a few C-level scans, and UTF-8 is checked in 1 MB slices that are thrown away.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetRejected(
            f"{name}: UTF-16 (or UTF-32) text (byte order mark at byte 0); save the file as UTF-8"
        )
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
        warnings.append(f"{name}: removed the UTF-8 byte order mark")
    nul = data.find(b"\x00")
    if nul >= 0:
        head = data[:1000]
        if head.count(b"\x00") * 4 >= len(head):
            raise DatasetRejected(
                f"{name}: looks like UTF-16 text (NUL bytes from byte offset {nul}); save the file as UTF-8"
            )
        raise DatasetRejected(
            f"{name}: NUL byte at byte offset {nul} (line {_line_of(data, nul)}); not a text file"
        )
    pos = 0
    while len(data) - pos > MAX_LINE_BYTES:
        last_newline = data.rfind(b"\n", pos, pos + MAX_LINE_BYTES + 1)
        if last_newline < 0:
            end = data.find(b"\n", pos)
            length = (len(data) if end < 0 else end) - pos
            raise DatasetRejected(
                f"{name}: line {_line_of(data, pos):,} is {length:,} bytes; the limit is {MAX_LINE_BYTES:,} "
                f"bytes per line{' (write JSON as one record per line)' if fmt != 'csv' else ''}"
            )
        pos = last_newline + 1
    if not data.isascii():
        _check_utf8(data, name)
    if not data or data.isspace():
        raise DatasetRejected(f"{name}: the file is empty")
    return data


def _check_utf8(data: bytes, name: str) -> None:
    """Decode 1 MB slices (cut at character boundaries) and throw them away; name the first bad byte."""
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = min(start + 1_000_000, len(data))
        for _ in range(3):  # a UTF-8 character has at most 3 continuation bytes
            if end < len(data) and data[end] & 0xC0 == 0x80:
                end -= 1
        try:
            codecs.utf_8_decode(view[start:end], "strict", True)
        except UnicodeDecodeError as exc:
            offset = start + exc.start
            raise DatasetRejected(
                f"{name}: not UTF-8: byte 0x{data[offset]:02x} at byte offset {offset:,} "
                f"(line {_line_of(data, offset):,}); save the file as UTF-8"
            ) from None
        start = end


# ---- readers ----------------------------------------------------------------------------------------


def _read_csv(data: bytes, name: str, declared: dict[str, FieldType]) -> pl.DataFrame:
    """Numbers are read natively where polars can (fast); a column it cannot type stays text.

    Should a bad cell appear after polars' inference window, the file is read again as text: both
    paths give the same report, the text path is only slower.
    """
    end = data.find(b"\n")
    first_line = (data if end < 0 else data[:end]).rstrip(b"\r").decode()
    separator = "\t" if name.lower().endswith(".tsv") else max(_SEPARATORS, key=first_line.count)
    try:
        raw_header = next(csv.reader([first_line], delimiter=separator), [])
    except csv.Error as exc:
        raise DatasetRejected(f"{name}: line 1 (the header): {_csv_reason(first_line, exc)}") from None
    header = check_header(raw_header, name)
    # Identifiers and declared text stay text ("00501" keeps its zeros).
    text_fields = [
        raw
        for raw, clean in zip(raw_header, header, strict=True)
        if declared.get(clean, "string" if clean in ID_FIELDS else None) == "string"
    ]
    options: dict[str, Any] = {
        "separator": separator,
        "has_header": True,
        "n_rows": MAX_ROWS + 1,
        "try_parse_dates": False,
        "raise_if_empty": True,
    }
    try:
        try:
            frame = pl.read_csv(
                io.BytesIO(data),
                infer_schema_length=1_000,
                schema_overrides={f: pl.String for f in text_fields},
                **options,
            )
        except pl.exceptions.ComputeError as exc:
            if "could not parse" not in str(exc):
                raise
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False, **options)
    except pl.exceptions.NoDataError:
        raise DatasetRejected(f"{name}: the file is empty") from None
    except pl.exceptions.ComputeError as exc:
        raise DatasetRejected(_csv_error(data, name, separator, len(header), exc)) from None
    if frame.width != len(header):
        raise DatasetRejected(
            f"{name}: could not read the header line ({frame.width} columns, header has {len(header)})"
        )
    return frame.rename(dict(zip(frame.columns, header, strict=True)))


def _csv_error(data: bytes, name: str, separator: str, width: int, exc: Exception) -> str:
    """Say which row is malformed (only on the error path, so a row loop is fine here)."""
    text = data.decode()
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    try:
        next(reader, None)
        for row_number, row in enumerate(reader, start=1):
            if len(row) > width:
                return f"{name}: data row {row_number:,} has {len(row)} fields; the header has {width}"
    except csv.Error as error:
        line = text.split("\n")[reader.line_num - 1]
        return f"{name}: line {reader.line_num:,}: {_csv_reason(line, error)}"
    return f"{name}: not a readable CSV file ({str(exc).splitlines()[0]})"


def _csv_reason(line: str, exc: csv.Error) -> str:
    """Why Python's CSV reader refused ``line``: mostly a bare carriage return (a CR-only line end, or
    one pasted into a cell), which it takes for a line break inside an unquoted field."""
    if "\r" in line.rstrip("\r"):
        return "a carriage return inside an unquoted field; quote the field or save with LF line ends"
    return str(exc)


def _read_json(data: bytes, name: str, declared: dict[str, FieldType]) -> pl.DataFrame:
    return _read_json_like(data, name, lines=False)


def _read_jsonl(data: bytes, name: str, declared: dict[str, FieldType]) -> pl.DataFrame:
    return _read_json_like(data, name, lines=True)


def _read_json_like(data: bytes, name: str, lines: bool) -> pl.DataFrame:
    """polars reads standard JSON; NaN, Infinity or numbers too large for a float make it fail, and then
    Python's parser reads the file with every number kept as its text, so those cells are reported by
    row like any other bad cell (and a broken file is refused naming its line and column).
    """
    reader = pl.read_ndjson if lines else pl.read_json
    try:
        frame = reader(io.BytesIO(data), infer_schema_length=None)
    except pl.exceptions.ComputeError:
        records = _json_records_as_text(data, name, lines)
        frame = pl.from_dicts(records, infer_schema_length=None, strict=False) if records else pl.DataFrame()
    header = check_header(frame.columns, name)
    return frame.rename(dict(zip(frame.columns, header, strict=True)))


def _loads_numbers_as_text(text: str) -> Any:
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def _json_records_as_text(data: bytes, name: str, lines: bool) -> list[dict[str, Any]]:
    text = data.decode()
    try:
        if lines:
            records = []
            for number, line in enumerate(text.split("\n"), start=1):
                if line.strip():
                    try:
                        records.append(_loads_numbers_as_text(line))
                    except json.JSONDecodeError as exc:
                        raise DatasetRejected(
                            f"{name}: line {number:,} column {exc.colno}: not valid JSON ({exc.msg})"
                        ) from None
        else:
            records = _loads_numbers_as_text(text)
    except json.JSONDecodeError as exc:
        raise DatasetRejected(
            f"{name}: line {exc.lineno:,} column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DatasetRejected(
            f"{name}: JSON must be an array of records ([{{...}}, ...]) or one record per line"
        )
    return records


def _read_parquet(data: bytes, name: str, declared: dict[str, FieldType]) -> pl.DataFrame:
    """The footer is checked first: rows, fields and the size the columns inflate to."""
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
    except Exception as exc:  # pyarrow raises several types for a corrupt footer
        raise DatasetRejected(f"{name}: not a readable Parquet file ({exc})") from None
    header = check_header(meta.schema.to_arrow_schema().names, name)
    if meta.num_rows > MAX_ROWS:
        raise DatasetRejected(f"{name}: {meta.num_rows:,} rows; the limit is {MAX_ROWS:,} data rows")
    inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if inflated > MAX_INFLATED_BYTES:
        raise DatasetRejected(
            f"{name}: its columns inflate to {inflated:,} bytes; the limit is {MAX_INFLATED_BYTES:,}",
            status=413,
        )
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DatasetRejected(f"{name}: not a readable Parquet file ({exc})") from None
    return frame.rename(dict(zip(frame.columns, header, strict=True)))


def _read_xlsx(data: bytes, name: str, declared: dict[str, FieldType]) -> pl.DataFrame:
    """The zip directory and the first sheet's XML are checked before the workbook is loaded."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DatasetRejected(f"{name}: not a readable .xlsx workbook (broken zip)") from None
    with archive:
        _check_zip(archive, name)
        sheet_path, sheet_name = _first_sheet(archive, name)
        _check_sheet(archive, sheet_path, sheet_name, name)
    try:
        workbook = fastexcel.read_excel(data)
        raw_header = workbook.load_sheet(0, header_row=None, n_rows=1, dtypes="string").to_polars()
        frame = _load_sheet(workbook)
    except fastexcel.FastExcelError as exc:
        raise DatasetRejected(f"{name}: not a readable .xlsx workbook ({str(exc).splitlines()[0]})") from None
    if raw_header.height == 0:
        raise DatasetRejected(f"{name} sheet {sheet_name!r}: the sheet is empty")
    header = check_header(list(raw_header.row(0)), f"{name} sheet {sheet_name!r}")
    frame = frame.rename(dict(zip(frame.columns, header, strict=True)))
    # Excel has no date type: a column of midnights is a column of dates.
    stamps = [c for c, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    at_midnight = (
        frame.select((pl.col(c).dt.time() == dt.time(0)).all() for c in stamps).row(0) if stamps else ()
    )
    return frame.with_columns(
        pl.col(c).dt.date() for c, dates in zip(stamps, at_midnight, strict=True) if dates
    )


def _load_sheet(workbook: fastexcel.ExcelReader) -> pl.DataFrame:
    """The first sheet with native types where a column holds one type, and as text where it mixes.

    fastexcel's type coercion turns the odd cell of a number column (``abc``, but also ``n/a`` or
    ``NA``) into an empty one, and its strict mode does not catch every such cell; the quality rules
    must see it as an invalid value. So the sheet is also read as text, and a column whose typed read
    lost cells is taken as text.
    """
    typed = workbook.load_sheet(0, header_row=0, schema_sample_rows=None).to_polars()
    text = workbook.load_sheet(0, header_row=0, dtypes="string").to_polars()
    return typed.with_columns(text[c] for c in typed.columns if typed[c].null_count() != text[c].null_count())


def _check_zip(archive: zipfile.ZipFile, name: str) -> None:
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise DatasetRejected(
            f"{name}: {len(members):,} parts in the workbook; the limit is {MAX_ZIP_MEMBERS:,}"
        )
    inflated = sum(m.file_size for m in members)
    if inflated > MAX_INFLATED_BYTES:
        raise DatasetRejected(
            f"{name}: the workbook inflates to {inflated:,} bytes; the limit is {MAX_INFLATED_BYTES:,}",
            status=413,
        )
    for m in members:
        if m.file_size > _RATIO_FLOOR and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            raise DatasetRejected(
                f"{name}: part {m.filename} inflates {m.file_size // max(m.compress_size, 1):,} times "
                f"({m.compress_size:,} -> {m.file_size:,} bytes); refused as a zip bomb",
                status=413,
            )


_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _first_sheet(archive: zipfile.ZipFile, name: str) -> tuple[str, str]:
    """The zip path and name of the workbook's first sheet (the one that is loaded)."""
    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        raise DatasetRejected(f"{name}: a zip file but not an .xlsx workbook") from None
    sheet = next((el for el in workbook.iter() if el.tag.endswith("}sheet")), None)
    if sheet is None:
        raise DatasetRejected(f"{name}: the workbook has no sheet")
    target = next((r.get("Target", "") for r in rels if r.get("Id") == sheet.get(_REL_NS)), "")
    path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    if path not in archive.namelist():
        raise DatasetRejected(f"{name}: the workbook's first sheet is missing")
    return path, sheet.get("name", "")


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+\d+:)?([A-Z]+)(\d+)"')
# Only references that could break a limit match, so a valid sheet yields (almost) no matches:
# columns past AX (the 50th), rows of six digits or more (checked against the limit below).
_FAR_CELL = re.compile(rb'\sr="([A-Z]{3,}|[B-Z][A-Z]|A[Y-Z])(\d+)"|\sr="([A-Z]{1,3})(\d{6,})"')
_FAR_ROW = re.compile(rb'<(?:\w+:)?row\s[^>]*?\br="(\d{6,})"')


def _check_sheet(archive: zipfile.ZipFile, path: str, sheet_name: str, name: str) -> None:
    """Refuse a sheet whose declared dimension or any cell reference lies beyond the row/field limits.

    Streams the XML (bounded by the zip checks) in 1 MB pieces with a small overlap.
    """
    max_row = MAX_ROWS + 1  # the header row plus the data rows
    where = f"{name} sheet {sheet_name!r}"

    def check(col_letters: str | None, row: int, what: str) -> None:
        if col_letters is not None and _column_number(col_letters) > MAX_FIELDS:
            raise DatasetRejected(f"{where}: {what} is beyond column {MAX_FIELDS} (the field limit)")
        if row > max_row:
            raise DatasetRejected(
                f"{where}: {what} is beyond row {max_row:,} (header + {MAX_ROWS:,} data rows)"
            )

    tail = b""
    dimension_seen = False
    with archive.open(path) as stream:
        while piece := stream.read(1_000_000):
            chunk = tail + piece
            if not dimension_seen and (dim := _DIMENSION.search(chunk)):
                dimension_seen = True
                letters, row = dim.group(2).decode(), int(dim.group(3))
                check(letters, row, f"the sheet's dimension {dim.group(0).decode().split('ref=')[1]}")
            for far in _FAR_CELL.finditer(chunk):
                letters = (far.group(1) or far.group(3)).decode()
                row = int(far.group(2) or far.group(4))
                check(letters, row, f"cell {letters}{row}")
            for far in _FAR_ROW.finditer(chunk):
                check(None, int(far.group(1)), f"row {int(far.group(1)):,}")
            tail = chunk[-64:]


_READERS: dict[Format, Callable[[bytes, str, dict[str, FieldType]], pl.DataFrame]] = {
    "csv": _read_csv,
    "json": _read_json,
    "jsonl": _read_jsonl,
    "xlsx": _read_xlsx,
    "parquet": _read_parquet,
}


# ---- checks common to every format ------------------------------------------------------------------


def _normalise_columns(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """Limits on rows, fields and cells; odd column types become plain ones (nested data is refused)."""
    if frame.width > MAX_FIELDS:
        raise DatasetRejected(f"{name}: {frame.width} fields; the limit is {MAX_FIELDS} fields")
    if frame.height > MAX_ROWS:
        raise DatasetRejected(
            f"{name}: more than {MAX_ROWS:,} data rows (data row {MAX_ROWS + 1:,} is over the limit)"
        )
    if frame.height == 0:
        raise DatasetRejected(f"{name}: no data rows")
    casts: dict[str, pl.DataType] = {}
    for column, dtype in frame.schema.items():
        if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
            first = frame.select(pl.col(column).is_not_null().arg_true().first()).item()
            raise DatasetRejected(
                f"{name}: field {column!r} holds nested or binary values (data row {first + 1:,}); "
                "datasets must be flat tables"
            )
        if isinstance(dtype, pl.Decimal):
            casts[column] = pl.Float64()
        elif not (
            dtype.is_numeric() or dtype in (pl.Boolean, pl.Date, pl.String) or isinstance(dtype, pl.Datetime)
        ):
            casts[column] = pl.String()  # categoricals, times, durations, all-null columns
    frame = frame.cast(pl.Schema(casts)) if casts else frame
    text = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    if text:
        longest = frame.select(pl.col(text).str.len_bytes().max()).row(0, named=True)
        for column in text:
            if (longest[column] or 0) > MAX_CELL_BYTES:
                row = frame.select(pl.col(column).str.len_bytes().arg_max()).item()
                raise DatasetRejected(
                    f"{name}: field {column!r} data row {row + 1:,} has a cell of {longest[column]:,} bytes; "
                    f"the limit is {MAX_CELL_BYTES:,} bytes per cell"
                )
    return frame
