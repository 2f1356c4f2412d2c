"""User datasets: reading with every guard, validation, the quality score worked by hand, stats, export."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import tracemalloc
import zipfile

import openpyxl
import polars as pl
import pytest

from domain.datasets import files as dataset_files
from domain.datasets.files import export_csv, read_dataset, safe_display_name
from domain.datasets.validation import (
    MAX_FILE_BYTES,
    DatasetRejected,
    csv_safe,
    dataset_stats,
    infer_types,
    preview,
    quality_report,
    typed_frame,
    validate,
)

NBA = "basketball_nba"
TODAY = dt.date(2024, 6, 30)

# Ten games of an NBA weather-like dataset; every kind of problem once. Rows are data rows (1-based).
HAND_MADE = b"""game_id,date,temperature,wind,dome
g01,2024-01-05,30.5,10,true
g02,2024-01-06,abc,12,false
g03,2024-01-07,NaN,,true
g04,2030-01-01,41.0,5,false
g05,2024-07-06,38.2,7,
g06,2024-01-09,35.0,8,true
g06,2024-01-10,36.5,9,false
g08,2024-02-11,,11,true
g09,2024-03-12,inf,6,false
g10,2024-04-13,1e309,4,true
"""


def rejected(data: bytes, filename: str = "upload.csv", status: int = 422, **kwargs: object) -> str:
    with pytest.raises(DatasetRejected) as caught:
        read_dataset(data, filename, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == status
    return str(caught.value)


def test_quality_score_worked_by_hand() -> None:
    parsed = read_dataset(HAND_MADE, "weather.csv", {"temperature": "float"})
    report = quality_report(parsed.frame, parsed.schema, NBA, "game_level", TODAY)

    # schema_valid: the key game_id and the declared temperature are both present -> 1.
    assert report.schema_valid == 1.0
    # completeness: 10 rows x 5 fields = 50 cells; empty: wind row 3, dome row 5, temperature row 8
    # -> 1 - 3/50 = 0.94.
    assert report.completeness == pytest.approx(0.94)
    # type_valid: 50 - 3 = 47 non-empty cells; temperature fails on abc (row 2), NaN (3), inf (9),
    # 1e309 (10) -> 1 - 4/47 = 43/47.
    assert report.type_valid == pytest.approx(43 / 47)
    # uniqueness: g06 occurs on rows 6 and 7 -> 1 - 2/10 = 0.8.
    assert report.uniqueness == pytest.approx(0.8)
    # freshness: 2030-01-01 is after today (row 4) and 2024-07-06 is outside the NBA season (Oct 1 -
    # Jun 30, row 5); the 8 others are in season and past -> 8/10 = 0.8.
    assert report.freshness == pytest.approx(0.8)
    # score = 0.3*1 + 0.2*43/47 + 0.2*0.94 + 0.15*0.8 + 0.15*0.8
    #       = 0.3 + 0.182979 + 0.188 + 0.12 + 0.12 = 0.910979
    assert report.score == pytest.approx(0.910979, abs=1e-6)
    assert report.usable

    found = {(f.rule, f.field): f.rows for f in report.failures}
    assert found == {
        ("type", "temperature"): (2,),
        ("finite", "temperature"): (3, 9, 10),
        ("duplicate_key", None): (6, 7),
        ("date_range", "date"): (4, 5),
    }  # each field misses exactly 10% of its cells: not over the seed's 10% rule, so not listed
    assert "temperature: not a number: data row 2" in [f.message for f in report.failures]
    by_field = {f.name: f for f in report.fields}
    assert (by_field["temperature"].invalid, by_field["wind"].empty, by_field["dome"].type) == (4, 1, "bool")
    assert report.as_dict()["row_numbers"].startswith("1-based data rows")


def test_pandera_reports_the_same_rows_as_the_fast_path() -> None:
    parsed = read_dataset(HAND_MADE, "weather.csv", {"temperature": "float"})
    report = quality_report(parsed.frame, parsed.schema, NBA, "game_level", TODAY)
    checked = validate(parsed.frame, parsed.schema, "game_level")
    assert {(f.rule, f.field, f.rows, f.count) for f in checked} == {
        (f.rule, f.field, f.rows, f.count)
        for f in report.failures
        if f.rule in ("type", "finite", "duplicate_key")
    }


def test_text_and_native_columns_give_the_same_report() -> None:
    """polars reads numbers natively where it can; an all-text frame must score identically."""
    parsed = read_dataset(HAND_MADE, "weather.csv", {"temperature": "float"})
    as_text = pl.read_csv(io.BytesIO(HAND_MADE), infer_schema=False)
    assert parsed.frame["wind"].dtype == pl.Int64 and as_text["wind"].dtype == pl.String
    native = quality_report(parsed.frame, parsed.schema, NBA, "game_level", TODAY)
    text = quality_report(as_text, parsed.schema, NBA, "game_level", TODAY)
    assert (native.score, native.failures) == (text.score, text.failures)


def test_a_declared_field_missing_from_the_file_makes_schema_invalid() -> None:
    parsed = read_dataset(HAND_MADE, "weather.csv", {"temperature": "float", "humidity": "float"})
    report = quality_report(parsed.frame, parsed.schema, NBA, "game_level", TODAY)
    # Same parts as the hand-worked test except schema_valid = 0: 0.910979 - 0.3.
    assert report.schema_valid == 0.0
    assert report.score == pytest.approx(0.610979, abs=1e-6)
    assert not report.usable
    assert [f.message for f in report.failed("schema")] == ["declared field not in the file: humidity"]


def test_a_missing_key_field_rejects_outright() -> None:
    parsed = read_dataset(b"team,temperature\nBOS,30\n", "t.csv")
    with pytest.raises(
        DatasetRejected, match="missing key field 'date': a team_level dataset needs 'team' and 'date'"
    ):
        quality_report(parsed.frame, parsed.schema, NBA, "team_level", TODAY)
    with pytest.raises(DatasetRejected, match="missing key field 'game_id'"):
        validate(parsed.frame, parsed.schema, "game_level")


def test_player_level_needs_player_and_date_and_declared_types_must_be_known() -> None:
    parsed = read_dataset(b"player_id;date;minutes\n201939;2024-01-05;34\n", "players.csv")
    assert parsed.header == ("player_id", "date", "minutes")  # semicolons detected from the header
    assert quality_report(parsed.frame, parsed.schema, NBA, "player_level", TODAY).key_fields == (
        "player_id",
        "date",
    )
    with pytest.raises(DatasetRejected, match="missing key field 'player_id'"):
        quality_report(parsed.frame.drop("player_id"), {}, NBA, "player_level", TODAY)
    message = rejected(b"game_id,x\ng1,1\n", declared_schema={"x": "decimal(10,2)"})
    assert "field 'x': unknown type 'decimal(10,2)'" in message


def test_team_level_keys_compare_dates_by_value() -> None:
    data = b"team,date,rest_days\nBOS,2024-01-05,1\nBOS,01/05/2024,2\nNYK,2024-01-05,1\nBOS,,3\nBOS,,4\n"
    parsed = read_dataset(data, "rest.csv")
    report = quality_report(parsed.frame, parsed.schema, None, "team_level", TODAY)
    # Rows 1 and 2 are the same (team, date); rows 4 and 5 lack a date, so they are no duplicates
    # (their empty dates count against completeness instead).
    assert [f.rows for f in report.failed("duplicate_key")] == [(1, 2)]
    assert report.uniqueness == pytest.approx(1 - 2 / 5)


def test_fields_missing_over_ten_percent_are_listed_by_row() -> None:
    rows = "\n".join(f"g{i},{'' if i in (3, 7) else i}" for i in range(1, 11))
    parsed = read_dataset(f"game_id,rest\n{rows}\n".encode(), "rest.csv")
    report = quality_report(parsed.frame, parsed.schema, None, "game_level", TODAY)
    (missing,) = report.failed("missing_values")
    assert (missing.field, missing.rows, missing.count) == ("rest", (3, 7), 2)
    assert "20% of cells are empty" in missing.message


def test_outliers_over_five_sigma_are_reported_but_not_scored() -> None:
    values = [50 + (i % 5) for i in range(40)]
    values[17] = 10_000
    csv = "game_id,value\n" + "\n".join(f"g{i},{v}" for i, v in enumerate(values)) + "\n"
    parsed = read_dataset(csv.encode(), "v.csv")
    report = quality_report(parsed.frame, parsed.schema, None, "game_level", TODAY)
    (outlier,) = report.failed("outliers")
    assert (outlier.field, outlier.rows) == ("value", (18,))
    assert report.score == pytest.approx(1.0)


def test_freshness_without_sport_accepts_any_supported_season_and_no_date_counts_one() -> None:
    # August 15 is in the NFL season (from Aug 1) but not the NBA's (Oct 1 - Jun 30).
    data = b"game_id,date\ng1,2023-08-15\ng2,2023-12-01\n"
    parsed = read_dataset(data, "d.csv")
    assert quality_report(parsed.frame, parsed.schema, None, "game_level", TODAY).freshness == 1.0
    assert quality_report(parsed.frame, parsed.schema, NBA, "game_level", TODAY).freshness == 0.5
    undated = read_dataset(b"game_id,x\ng1,1\n", "u.csv")
    assert quality_report(undated.frame, undated.schema, NBA, "game_level", TODAY).freshness == 1.0


def test_type_inference_takes_the_narrowest_type_and_tolerates_a_few_bad_cells() -> None:
    frame = pl.DataFrame(
        {
            "i": ["1", " 2 ", "-3", None],
            "f": ["1", "2.5", "x", "4"],
            "b": ["yes", "No", "TRUE", "f"],
            "d": ["2024-01-05", "01/06/2024", "", "2024-02-29"],
            "ts": ["2024-01-05T19:30:00Z", "2024-01-06 20:00", "2024-01-07 10:00:00+02:00", "2024-01-08"],
            "s": ["a", "1", "b", "c"],
        }
    )
    assert infer_types(frame) == {
        "i": "int",
        "f": "float",  # 3 of 4 cells are numbers: numeric, and "x" is reported
        "b": "bool",
        "d": "date",
        "ts": "datetime",
        "s": "string",
    }
    typed = typed_frame(frame, infer_types(frame))
    assert typed["d"].to_list() == [dt.date(2024, 1, 5), dt.date(2024, 1, 6), None, dt.date(2024, 2, 29)]
    assert typed["ts"][2] == dt.datetime(2024, 1, 7, 8, 0)  # offsets become UTC


def test_stats_and_preview() -> None:
    parsed = read_dataset(HAND_MADE, "weather.csv", {"temperature": "float"})
    stats = dataset_stats(parsed.frame, parsed.schema)
    wind = stats["wind"]
    assert (wind.type, wind.count, wind.missing, wind.min, wind.max) == ("int", 9, 1, 4, 12)
    assert wind.mean == pytest.approx(72 / 9)
    assert (stats["date"].min, stats["date"].max) == ("2024-01-05", "2030-01-01")
    assert (stats["dome"].distinct, stats["game_id"].distinct) == (2, 9)
    rows = preview(parsed.frame)
    assert len(rows) == 10 and rows[2] == {
        "game_id": "g03",
        "date": "2024-01-07",
        "temperature": "NaN",
        "wind": None,
        "dome": "true",
    }
    json.dumps(rows)  # JSON-ready


# ---- formats ----------------------------------------------------------------------------------------


def test_json_records_and_lines_read_like_csv() -> None:
    records = [
        {"game_id": "g1", "date": "2024-01-05", "x": 1.5},
        {"game_id": "g2", "date": "2024-01-06", "x": 2},
    ]
    as_json = read_dataset(json.dumps(records).encode(), "d.json")
    as_lines = read_dataset("\n".join(json.dumps(r) for r in records).encode(), "d.json")
    assert (as_json.format, as_lines.format) == ("json", "jsonl")
    assert as_json.frame.equals(as_lines.frame)
    assert as_json.schema == {"game_id": "string", "date": "date", "x": "float"}


def test_json_with_nan_and_huge_numbers_is_read_and_reported_by_row() -> None:
    data = b'[{"game_id": "g1", "x": 1.5}, {"game_id": "g2", "x": NaN}, {"game_id": "g3", "x": 1e309}]'
    parsed = read_dataset(data, "d.json", {"x": "float"})
    report = quality_report(parsed.frame, parsed.schema, None, "game_level", TODAY)
    assert [(f.rule, f.rows) for f in report.failures] == [("finite", (2, 3))]


def test_broken_or_nested_json_is_refused_with_its_place() -> None:
    assert "line 2 column 10: not valid JSON" in rejected(b'[{"a": 1},\n {"a": 1,,}]', "d.json")
    assert "line 2 column" in rejected(b'{"a": 1}\n{"a": }\n', "d.jsonl")
    assert "field 'x' holds nested or binary values (data row 2)" in rejected(
        b'[{"game_id": "g1"}, {"game_id": "g2", "x": {"k": 1}}]', "d.json"
    )


def test_parquet_keeps_native_types_and_nan_is_reported() -> None:
    frame = pl.DataFrame(
        {"game_id": ["g1", "g2"], "date": [dt.date(2024, 1, 5)] * 2, "x": [1.0, float("nan")]}
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    parsed = read_dataset(buffer.getvalue(), "d.parquet")
    assert parsed.format == "parquet" and parsed.schema == {"game_id": "string", "date": "date", "x": "float"}
    report = quality_report(parsed.frame, parsed.schema, NBA, "game_level", TODAY)
    assert [(f.rule, f.field, f.rows) for f in report.failures] == [("finite", "x", (2,))]


def test_xlsx_written_by_excel_tools_is_read_with_types() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["game_id", "date", "temperature", "dome", "note"])
    sheet.append(["g1", dt.datetime(2024, 1, 5), 30.5, True, "cold"])
    sheet.append(["g2", dt.datetime(2024, 1, 6), "n/a", False, None])
    buffer = io.BytesIO()
    book.save(buffer)
    parsed = read_dataset(buffer.getvalue(), "weather.xlsx")
    assert parsed.format == "xlsx"
    assert parsed.frame["date"].to_list() == [dt.date(2024, 1, 5), dt.date(2024, 1, 6)]
    assert parsed.schema["dome"] == "bool"
    report = quality_report(parsed.frame, {"temperature": "float"}, NBA, "game_level", TODAY)
    # "n/a" is an invalid number, not an empty cell (fastexcel would have read it as empty).
    assert [(f.rule, f.field, f.rows) for f in report.failures] == [
        ("type", "temperature", (2,)),
        ("missing_values", "note", (2,)),
    ]


# ---- bad inputs -------------------------------------------------------------------------------------


def test_duplicate_and_empty_headers_are_refused_naming_columns() -> None:
    assert "duplicate header 'x' at columns 2, 4" in rejected(b"game_id,x,y,x\ng1,1,2,3\n")
    assert "empty header at column 2" in rejected(b"game_id,,y\ng1,1,2\n")
    assert "empty header at column 2" in rejected(b"game_id, ,y\ng1,1,2\n")
    assert "duplicate header 'x'" in rejected(b'[{"game_id": "g", "x": 1, "x ": 2}]', "d.json")


def test_utf8_byte_order_mark_is_stripped() -> None:
    parsed = read_dataset(b"\xef\xbb\xbfgame_id,x\ng1,1\n", "bom.csv")
    assert parsed.header == ("game_id", "x")
    assert any("byte order mark" in w for w in parsed.warnings)


def test_utf16_is_refused() -> None:
    text = "game_id,x\ng1,1\n"
    assert "UTF-16" in rejected(text.encode("utf-16"))
    assert "looks like UTF-16 text (NUL bytes from byte offset 1)" in rejected(text.encode("utf-16-le"))


def test_invalid_utf8_names_the_byte_and_line() -> None:
    data = b"game_id,city\ng1,Montr\xe9al\n"
    assert "not UTF-8: byte 0xe9 at byte offset 21 (line 2)" in rejected(data)
    assert data.index(b"\xe9") == 21
    late = b"game_id,x\n" + b"g1,ok\n" * 400_000 + b"g2,\xff\n"  # past the first 1 MB slice
    assert f"byte offset {len(late) - 2:,} (line 400,002)" in rejected(late)


def test_a_50_mb_line_is_refused_without_decoding_it() -> None:
    data = b"game_id,notes\ng1," + b"a" * 50_000_000 + b"\n"
    tracemalloc.start()
    try:
        message = rejected(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "line 2 is 50,000,003 bytes; the limit is 10,000,000 bytes per line" in message
    assert peak < 5_000_000  # never held as a 50 MB str


def test_a_cell_over_one_mb_is_refused_naming_field_and_row() -> None:
    data = b"game_id,notes\ng1,short\ng2," + b"b" * 1_000_001 + b"\n"
    assert "field 'notes' data row 2 has a cell of 1,000,001 bytes; the limit is 1,000,000" in rejected(data)


def test_ragged_rows_are_refused_naming_the_row() -> None:
    assert "data row 2 has 3 fields; the header has 2" in rejected(b"game_id,x\ng1,1\ng2,2,3\n")


def test_row_limit() -> None:
    body = b"".join(b"g%d,1\n" % i for i in range(100_000))
    assert read_dataset(b"game_id,x\n" + body, "rows.csv").frame.height == 100_000
    message = rejected(b"game_id,x\n" + body + b"g_last,1\n")
    assert "more than 100,000 data rows (data row 100,001 is over the limit)" in message


def test_field_limit() -> None:
    header = ",".join(["game_id"] + [f"f{i}" for i in range(50)])
    assert "51 fields; the limit is 50 fields" in rejected(f"{header}\ng1{',1' * 50}\n".encode())


def test_file_size_limit_is_checked_on_the_bytes_first() -> None:
    data = bytes(MAX_FILE_BYTES + 1)  # NUL bytes: would be refused as text, but size is checked first
    message = rejected(data, "big.csv", status=413)
    assert "100,000,001 bytes; the file size limit is 100,000,000 bytes (100 MB)" in message


def _xlsx(sheet_xml: bytes, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A minimal workbook written part by part (no Excel library), so any sheet XML can be crafted."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Default Extension="rels" '
            b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            b'<Default Extension="xml" ContentType="application/xml"/>'
            b'<Override PartName="/xl/workbook.xml" '
            b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            b'<Override PartName="/xl/worksheets/sheet1.xml" '
            b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            b"</Types>"
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ).encode(),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compress) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _sheet(cells: str, dimension: str = "A1:B2") -> bytes:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    return (
        f'<worksheet xmlns="{main}"><dimension ref="{dimension}"/><sheetData>{cells}</sheetData></worksheet>'
    ).encode()


HEADER_ROW = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>game_id</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>x</t></is></c></row>'
)
DATA_ROW = '<row r="2"><c r="A2" t="inlineStr"><is><t>g1</t></is></c><c r="B2"><v>1.5</v></c></row>'


def test_crafted_xlsx_reads_when_within_limits() -> None:
    parsed = read_dataset(_xlsx(_sheet(HEADER_ROW + DATA_ROW)), "ok.xlsx")
    assert parsed.frame.rows() == [("g1", 1.5)]


def test_xlsx_with_a_cell_at_xfd1048576_is_refused_before_loading() -> None:
    far = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    message = rejected(_xlsx(_sheet(HEADER_ROW + DATA_ROW + far)), "far.xlsx")
    assert "sheet 'Data': cell XFD1048576 is beyond column 50 (the field limit)" in message
    message = rejected(_xlsx(_sheet(HEADER_ROW + DATA_ROW, dimension="A1:XFD1048576")), "dim.xlsx")
    assert 'the sheet\'s dimension "A1:XFD1048576" is beyond column 50' in message
    deep = '<row r="200000"><c r="A200000"><v>1</v></c></row>'
    assert "cell A200000 is beyond row 100,001" in rejected(
        _xlsx(_sheet(HEADER_ROW + deep, "A1:B2")), "deep.xlsx"
    )


def test_xlsx_zip_bomb_is_refused_before_inflating() -> None:
    # 30 MB of one repeated empty row compresses about a thousandfold.
    padding = "<row/>" * 5_000_000
    bomb = _xlsx(_sheet(HEADER_ROW + DATA_ROW + padding))
    assert len(bomb) < 200_000
    message = rejected(bomb, "bomb.xlsx", status=413)
    assert "part xl/worksheets/sheet1.xml inflates" in message and "refused as a zip bomb" in message


def test_xlsx_inflating_past_the_total_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_files, "MAX_INFLATED_BYTES", 1_000)
    message = rejected(_xlsx(_sheet(HEADER_ROW + DATA_ROW)), "big.xlsx", status=413)
    assert "the workbook inflates to" in message and "the limit is 1,000" in message


def test_legacy_or_mislabelled_workbooks_are_refused() -> None:
    assert "legacy .xls" in rejected(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old.xlsx")
    assert "not a xlsx file" in rejected(b"game_id,x\ng1,1\n", "fake.xlsx")
    assert "a zip file but not an .xlsx workbook" in rejected(_zip_of_csv(), "data.xlsx")


def _zip_of_csv() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "game_id,x\ng1,1\n")
    return buffer.getvalue()


def test_file_names_are_only_displayed_never_paths() -> None:
    assert safe_display_name("../../x.csv") == "x.csv"
    assert safe_display_name("..\\..\\windows\\evil.csv") == "evil.csv"
    assert safe_display_name("/etc/passwd") == "passwd"
    assert safe_display_name("..") == "dataset" and safe_display_name("") == "dataset"
    assert safe_display_name("we\x00ird\nname.csv") == "weirdname.csv"
    parsed = read_dataset(b"game_id,x\ng1,1\n", "../../x.csv")
    assert parsed.display_name == "x.csv"
    assert "../" not in rejected(b"game_id,,y\n", "../../x.csv")


def test_cells_that_look_like_formulas_are_exported_safely() -> None:
    assert [
        csv_safe(v) for v in ("=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "-3.5", "1e5", "plain")
    ] == [
        "'=1+2",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1)",
        "-3.5",
        "1e5",
        "plain",
    ]
    frame = pl.DataFrame({"game_id": ['=HYPERLINK("http://x")', "g2"], "x": [-1.5, 2.0]})
    back = pl.read_csv(io.BytesIO(export_csv(frame)), infer_schema=False)
    assert back["game_id"].to_list() == ['\'=HYPERLINK("http://x")', "g2"]
    assert back["x"].to_list() == ["-1.5", "2.0"]
    assert not math.isnan(float(back["x"][0]))
