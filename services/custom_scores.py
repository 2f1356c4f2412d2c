"""Custom-source scores for a batch of model versions: load the datasets they use, call the domain.

Datasets are read as ``stores.datasets`` keeps them: the ``datasets`` table names each
dataset's current version (its newest active one, ``domain.datasets.registry.current_rows``) and its
data type; that version's typed rows are Parquet in the lake (``dataset_rows_key``), whatever its serving
storage, stably sorted by key so rows sharing a key keep their file order.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable

import polars as pl

from domain.datasets.transforms import DatasetRows, custom_scores, custom_sources
from domain.models.config import ModelConfig
from domain.models.engine import CUSTOM_SCORES
from stores.lake import Lake
from stores.layout import dataset_rows_key


def dataset_rows(lake: Lake, dataset_ids: Collection[str]) -> dict[str, DatasetRows]:
    """The current rows of each of ``dataset_ids`` whose current version is usable in models.

    A dataset that does not exist (or was deleted), or whose current version scored 0.8 or below
    (SPEC 7: usable in models only above 0.8), is left out, so its sources score nothing.
    """
    # Imported here: the datasets registry loads the upload checks (pandera, pandas), half a second
    # that a backtest of a model without custom sources should not pay at start-up.
    from domain.datasets.registry import current_rows
    from stores.datasets import read_datasets_table

    table = current_rows(read_datasets_table(lake, pl.col("dataset_id").is_in(list(dataset_ids))))
    return {
        row["dataset_id"]: DatasetRows(
            row["data_type"], lake.read_parquet([dataset_rows_key(row["dataset_id"], row["version"])])
        )
        for row in table.filter(pl.col("usable")).iter_rows(named=True)
    }


def load_custom_scores(
    lake: Lake, models: pl.DataFrame | Iterable[ModelConfig], games: pl.DataFrame
) -> pl.DataFrame:
    """Scores (``CUSTOM_SCORES``) of every enabled custom source of ``models`` on ``games``, ready
    for ``score_day(..., custom_scores=...)``.

    ``models`` is ``model_versions`` rows (their ``config_json``) or validated configs; ``games``
    the ``GAMES`` rows of the day or days to score. Each dataset is read once, however many sources
    use it.
    """
    if isinstance(models, pl.DataFrame):
        payloads = [json.loads(doc) for doc in models["config_json"]]
    else:
        payloads = [config.to_payload() for config in models]
    sources = custom_sources(payloads)
    if sources.is_empty():
        return pl.DataFrame(schema=CUSTOM_SCORES)
    used = sources["config"].str.json_path_match("$.dataset_id").unique().to_list()
    return custom_scores(sources, dataset_rows(lake, used), games)
