"""great-expectations agrees with the fast path, rule by rule, on hand-made files read back from the
store as the pipeline's check reads them; Data Docs render."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection

import pytest

from domain.datasets.files import read_dataset
from domain.datasets.validation import quality_report, typed_rows
from services.dataset_quality import GeValidation, fast_verdicts, ge_verdicts, validate_with_ge
from stores.datasets import DatasetStore
from stores.lake import Lake

NBA = "basketball_nba"
TODAY = dt.date(2024, 6, 30)


def games(
    n: int = 40,
    *,
    empty: Collection[int] = (),
    value: dict[int, str] | None = None,
    day: dict[int, str] | None = None,
) -> bytes:
    """``n`` NBA games in January-February 2024 with values 48-52; rows (1-based) may be overridden."""
    lines = ["game_id,date,value"]
    for row in range(1, n + 1):
        when = (day or {}).get(row, (dt.date(2024, 1, 1) + dt.timedelta(days=row)).isoformat())
        cell = "" if row in empty else (value or {}).get(row, str(48 + row % 5))
        lines.append(f"g{row:02d},{when},{cell}")
    return ("\n".join(lines) + "\n").encode()


def team_games(n: int = 40, repeat: int | None = None) -> bytes:
    lines = ["team,date,rest_days"]
    for row in range(1, n + 1):
        when = dt.date(2024, 1, 1) + dt.timedelta(days=row if row != repeat else row - 1)
        lines.append(f"BOS,{when.isoformat()},{row % 3}")
    return ("\n".join(lines) + "\n").encode()


CASES = {
    "good": (games(), "game_level", set()),
    "missing-heavy": (games(empty={3, 9, 15, 21, 27}), "game_level", {"completeness"}),
    "duplicate keys": (team_games(repeat=12), "team_level", {"uniqueness"}),
    "outlier": (games(value={17: "10000"}), "game_level", {"outliers"}),
    "out of season": (games(day={5: "2023-08-15", 6: "2030-01-02"}), "game_level", {"date_range"}),
    "bad numbers": (games(value={2: "abc", 4: "NaN", 8: "1e309"}), "game_level", {"types"}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[GeValidation, dict[str, bool]]]:
    """Each case validated once by GE, on its rows stored and read back as the pipeline's check does,
    and once by the fast path on the file (GE is slow to start)."""
    store = DatasetStore(Lake(root=str(tmp_path_factory.mktemp("lake"))))
    out = {}
    for n, (case, (data, data_type, _)) in enumerate(CASES.items()):
        parsed = read_dataset(data, f"{case}.csv")
        report = quality_report(parsed.frame, parsed.schema, NBA, data_type, TODAY)
        dataset_id = f"u--ds-{n:06x}"
        store.store_rows(dataset_id, 1, typed_rows(parsed.frame, parsed.schema), report.key_fields, "lake")
        stored = store.read_rows(dataset_id, 1)
        assert stored is not None
        out[case] = (
            validate_with_ge(stored, parsed.schema, NBA, data_type, TODAY),
            fast_verdicts(report),
        )
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_ge_and_fast_path_agree_rule_by_rule(
    case: str, runs: dict[str, tuple[GeValidation, dict[str, bool]]]
) -> None:
    ge, fast = runs[case]
    expected_failures = CASES[case][2]
    assert ge_verdicts(ge.result) == fast
    assert {rule for rule, passed in fast.items() if not passed} == expected_failures


def test_result_is_json_and_data_docs_page_is_rendered(
    runs: dict[str, tuple[GeValidation, dict[str, bool]]],
) -> None:
    ge, _ = runs["outlier"]
    assert json.loads(json.dumps(ge.result))["success"] is False
    outlier = next(
        r
        for r in ge.result["results"]
        if r["expectation_config"]["type"] == "expect_column_values_to_be_between"
    )
    assert outlier["expectation_config"]["kwargs"]["column"] == "value (number)"
    assert outlier["result"]["unexpected_count"] == 1
    assert ge.html.lstrip().startswith("<!DOCTYPE html>")
    assert "dataset_quality" in ge.html and "value (number)" in ge.html
