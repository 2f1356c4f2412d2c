"""The great-expectations quality suite of one dataset, with its Data Docs page.

This is the independent second opinion on the fast path (``domain.datasets.validation.quality_report``): GE
counts the same rules (completeness, key uniqueness, types, outliers over 5 standard deviations,
date range) over the same cells with its own engine, and :func:`ge_verdicts` / :func:`fast_verdicts`
reduce both to one pass/fail per rule so that tests can hold them to agreement.

GE reads a dataset as it is stored (``domain.datasets.validation.TypedRows``: the typed rows, and the
text of the cells that did not parse), in the upload's row order, so the pipeline's check needs no
second read of the upload. It sees a pandas frame in which each field is an object column holding
the parsed value where the cell parses, the original text where it does not and None where it is
empty; numeric fields and the date field get helper columns (``<field> (number)``, ``<field>
(date)``, ``<field> (month-day)``) for the range expectations. The bounds (mean ± 5 sd, today, the
sport's season days) are computed from the data and the sport catalogue and written into the suite,
so the Data Docs page shows them.

The context is ephemeral (nothing is written outside a temporary Data Docs folder, which is read and
removed); progress bars, analytics and GE's logging are switched off.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from domain.datasets.validation import (
    MAX_MISSING_SHARE,
    OUTLIER_SIGMAS,
    QualityReport,
    TypedRows,
    check_keys,
    complete_schema,
    dataset_stats,
    date_field,
    field_dates,
    in_season_days,
)
from domain.models.config import DataType

RULES = ("completeness", "uniqueness", "types", "outliers", "date_range")
_GE_TYPES = {"int": "int", "float": "float", "bool": "bool", "date": "Timestamp", "datetime": "Timestamp"}

logging.getLogger("great_expectations").setLevel(logging.ERROR)


@dataclass(frozen=True)
class GeValidation:
    result: dict[str, Any]
    """The validation result as GE's JSON (``ExpectationSuiteValidationResult.to_json_dict()``)."""
    html: str
    """GE's own Data Docs page for this validation run (a standalone HTML document)."""


def _ge_frame(rows: TypedRows, types: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The pandas frame GE validates, and the helper column of each numeric field."""
    typed, unparsed = rows.frame, rows.unparsed
    columns: dict[str, pd.Series] = {}
    helpers: dict[str, str] = {}
    for c in typed.columns:
        if types[c] in ("date", "datetime"):
            stamps = pd.to_datetime(typed[c].to_pandas())
            cells = stamps.astype(object).where(stamps.notna(), None)
        else:  # to_list keeps Python ints and bools (pandas would turn them into floats or numpy bools)
            cells = pd.Series(typed[c].to_list(), dtype=object)
        text = pd.Series(unparsed[c].to_list(), dtype=object)
        columns[c] = cells.where(unparsed[c].is_null().to_numpy(), text)
        if types[c] in ("int", "float"):
            helpers[c] = f"{c} (number)"
            columns[helpers[c]] = typed[c].cast(pl.Float64).to_pandas()
    day = field_dates(typed, types)
    if day is not None:
        ymd = day.dt.year() * 10_000 + day.dt.month().cast(pl.Int32) * 100 + day.dt.day()
        columns[f"{day.name} (date)"] = ymd.cast(pl.Float64).to_pandas()
        columns[f"{day.name} (month-day)"] = (ymd % 10_000).cast(pl.Float64).to_pandas()
    return pd.DataFrame(columns), helpers


def _suite(
    frame: pl.DataFrame,
    types: Mapping[str, str],
    keys: tuple[str, ...],
    when: str | None,
    helpers: Mapping[str, str],
    sport: str | None,
    today: dt.date,
) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="dataset_quality")

    def add(rule: str, expectation: gxe.Expectation) -> None:
        expectation.meta = {"rule": rule}
        suite.add_expectation(expectation)

    stats = dataset_stats(frame, types)
    for c in frame.columns:
        add("completeness", gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=1 - MAX_MISSING_SHARE))
        if types[c] in _GE_TYPES:
            add("types", gxe.ExpectColumnValuesToBeOfType(column=c, type_=_GE_TYPES[types[c]]))
        mean, std = stats[c].mean, stats[c].std
        if c in helpers and mean is not None and std:
            add(
                "outliers",
                gxe.ExpectColumnValuesToBeBetween(
                    column=helpers[c],
                    min_value=mean - OUTLIER_SIGMAS * std,
                    max_value=mean + OUTLIER_SIGMAS * std,
                ),
            )
    if len(keys) == 1:
        add("uniqueness", gxe.ExpectColumnValuesToBeUnique(column=keys[0]))
    else:
        add(
            "uniqueness",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=list(keys), ignore_row_if="any_value_is_missing"),
        )
    if when is not None:
        add(
            "date_range",
            gxe.ExpectColumnValuesToBeBetween(
                column=f"{when} (date)", max_value=today.year * 10_000 + today.month * 100 + today.day
            ),
        )
        add(
            "date_range",
            gxe.ExpectColumnValuesToBeInSet(
                column=f"{when} (month-day)", value_set=list(in_season_days(sport))
            ),
        )
    return suite


def validate_with_ge(
    rows: TypedRows,
    schema: Mapping[str, str],
    sport: str | None,
    data_type: DataType,
    today: dt.date,
) -> GeValidation:
    """Run the GE suite of a dataset stored as ``rows`` with ``schema`` (the upload's declared and
    detected types) in an ephemeral context; return the result JSON and its Data Docs page."""
    frame = rows.frame
    keys = check_keys(frame.columns, data_type)
    types = complete_schema(frame, schema)
    when = date_field(frame, types)
    data, helpers = _ge_frame(rows, types)
    with tempfile.TemporaryDirectory(prefix="oddsforge-ge-") as docs:
        context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False),
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                data_docs_sites={
                    "local": {
                        "class_name": "SiteBuilder",
                        "store_backend": {
                            "class_name": "TupleFilesystemStoreBackend",
                            "base_directory": docs,
                        },
                        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    }
                },
            ),
        )
        batch = context.data_sources.add_pandas("upload").add_dataframe_asset("dataset")
        suite = context.suites.add(_suite(frame, types, keys, when, helpers, sport, today))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(
                name="dataset_quality", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite
            )
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="dataset_quality",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
                result_format={"result_format": "SUMMARY"},
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": data})
        (result,) = run.run_results.values()
        (page,) = (Path(docs) / "validations").rglob("*.html")
        html = page.read_text(encoding="utf-8")
    return GeValidation(result=result.to_json_dict(), html=html)


def ge_verdicts(result: Mapping[str, Any]) -> dict[str, bool]:
    """Pass/fail per rule from a GE validation result (a rule without expectations passes)."""
    verdicts = dict.fromkeys(RULES, True)
    for outcome in result["results"]:
        rule = outcome["expectation_config"]["meta"]["rule"]
        verdicts[rule] = verdicts[rule] and bool(outcome["success"])
    return verdicts


def fast_verdicts(report: QualityReport) -> dict[str, bool]:
    """Pass/fail per rule from the fast path's report, in :func:`ge_verdicts`' terms."""
    return {
        "completeness": not report.failed("missing_values"),
        "uniqueness": not report.failed("duplicate_key"),
        "types": not (report.failed("type") or report.failed("finite")),
        "outliers": not report.failed("outliers"),
        "date_range": not report.failed("date_range"),
    }
