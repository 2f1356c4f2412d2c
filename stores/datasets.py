"""User datasets in the lake and the warehouse: the inbox the API writes, what the pipeline stores, and
the reads both share.

Keys (``stores/layout.py``): the API's inbox under ``inbox/datasets/{user_id}/{dataset_id}/``
(each version's upload and ``meta.json``, name/description edits, the tombstone); the ``datasets``
table, each version's typed rows under ``tables/dataset_rows/`` and, under ``datasets/``, the rows'
original numbers and unparsed cells (``unparsed.parquet``), the quality report, great-expectations
result and Data Docs page. A *small* version (SPEC 7: < 1 MB and < 1,000 rows) also gets its typed
rows in an indexed DuckDB table in the warehouse directory.

The inbox objects are the typed documents of ``domain.datasets.documents``. The API only creates
them (``Lake.put_new``, never overwritten): an upload under a fresh random name first, then
``meta.json``, whose create-if-absent decides which of two concurrent writers gets version n (the
loser removes its upload). The pipeline (``assets/datasets.py``) is the only writer of everything
else. What the API checks before it stores an upload is ``services/dataset_intake.py``'s business.

"The warehouse" for small datasets means one immutable DuckDB file per version, written once to a
temporary name and renamed, that the API opens read-only for key lookups (a point query on a DuckDB
file is ~5x faster than through Parquet). No DuckDB file is ever opened for writing once another
process may read it. Every version's rows are *also* kept as Parquet in the lake, sorted by key
with small row groups whose statistics act as the key index: batch scoring
(``services/custom_scores.py``) reads every dataset from there, and large datasets are looked up
there. The sort is stable, so rows sharing a key keep their file order (the engine resolves
duplicate keys to the last one in file order). Beside them, ``unparsed.parquet`` keeps each stored
row's data row number and the text of its cells that did not parse (``TypedRows.unparsed``), so the
great-expectations check reads a version back as it was uploaded without reading the upload again.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from domain.datasets.documents import MetadataEdit, Naming, Tombstone, VersionMeta, current_naming
from domain.datasets.registry import (
    DATASETS,
    DatasetRow,
    Storage,
    current_rows,
    dataset_info,
    dataset_owner,
    rows_of,
)
from domain.datasets.validation import QualityReport, TypedRows
from domain.models.config import DatasetInfo
from domain.tables.schemas import conform, empty
from stores.documents import document_bytes, read_document
from stores.lake import Lake
from stores.layout import (
    DATASETS_INBOX,
    DatasetKey,
    dataset_deleted_key,
    dataset_edit_key,
    dataset_meta_key,
    dataset_prefix,
    dataset_report_key,
    dataset_rows_key,
    dataset_warehouse_location,
    parse_dataset_key,
    table_key,
    temp_name,
    user_datasets_prefix,
)

if TYPE_CHECKING:  # great-expectations takes seconds to import: the API never needs it
    from services.dataset_quality import GeValidation

TABLE_KEY = table_key("datasets")
ROW_GROUP_ROWS = 8_192
"""Rows per Parquet row group: a key lookup reads the few groups whose min/max can hold the key."""
UNPARSED = "unparsed.parquet"
"""The object (:func:`report_key`) beside a version's rows: each row's data row, its unparsed cells."""


@dataclass(frozen=True)
class DatasetState:
    """A dataset's versions, edits and tombstone as listed in the inbox."""

    dataset_id: str
    versions: tuple[int, ...]
    edits: tuple[int, ...]
    deleted: bool

    @property
    def latest(self) -> int:
        return self.versions[-1]


def _states(keys: Iterator[str]) -> list[DatasetState]:
    """Datasets (with at least one version) named by ``keys``, sorted by id."""
    found: dict[str, dict[str, list[int]]] = {}
    for key in keys:
        parsed = parse_dataset_key(key)
        if parsed is None or parsed.kind == "upload":
            continue
        entry = found.setdefault(parsed.dataset_id, {"meta": [], "edit": [], "deleted": []})
        entry[parsed.kind].append(parsed.number or 0)
    return [
        DatasetState(dataset_id, tuple(sorted(e["meta"])), tuple(sorted(e["edit"])), bool(e["deleted"]))
        for dataset_id, e in sorted(found.items())
        if e["meta"]
    ]


# ---- the table ------------------------------------------------------------------------------------


def read_datasets_table(lake: Lake, where: pl.Expr | None = None) -> pl.DataFrame:
    """Rows of the ``datasets`` table (all, or those matching ``where``); empty before the first run."""
    if not lake.exists(TABLE_KEY):
        return empty(DATASETS)
    scan = pl.scan_parquet(lake.uri(TABLE_KEY), storage_options=lake.polars_storage_options())
    return conform((scan if where is None else scan.filter(where)).collect(), DATASETS)


def dataset_infos(lake: Lake, user_id: str) -> dict[str, DatasetInfo]:
    """The user's datasets a model may name, as ``validate_against`` needs them: each dataset's newest
    active version (quality and fields), minus datasets the user deleted since the last pipeline run.
    A dataset still processing its first version is not among them."""
    deleted = {
        parsed.dataset_id
        for key in lake.list_keys(user_datasets_prefix(user_id))
        if (parsed := parse_dataset_key(key)) is not None and parsed.kind == "deleted"
    }
    table = read_datasets_table(lake, pl.col("owner_user_id") == user_id)
    return {
        row.dataset_id: dataset_info(row)
        for row in rows_of(current_rows(table))
        if row.dataset_id not in deleted
    }


# ---- the store ------------------------------------------------------------------------------------


class DatasetStore:
    """Datasets in one lake (and, for small ones, one warehouse directory)."""

    def __init__(self, lake: Lake, warehouse_dir: Path | str = "data/warehouse") -> None:
        self.lake = lake
        self.warehouse_dir = Path(warehouse_dir)

    # -- inbox reads ------------------------------------------------------------------------------
    def state(self, dataset_id: str) -> DatasetState | None:
        """The dataset's versions, edits and tombstone; None if no such dataset (or not an id)."""
        if dataset_owner(dataset_id) is None:
            return None
        found = _states(self.lake.list_keys(dataset_prefix(dataset_id)))
        return found[0] if found else None

    def datasets_of(self, user_id: str) -> list[DatasetState]:
        """The user's datasets that are not deleted, sorted by id."""
        found = _states(self.lake.list_keys(user_datasets_prefix(user_id)))
        # A user id is a key segment only if it is a valid owner ("a/b" must not list b's datasets).
        return [s for s in found if not s.deleted and dataset_owner(s.dataset_id) == user_id]

    def upload_times(self, user_id: str) -> list[float]:
        """When each of the user's versions was stored (POSIX seconds), deleted datasets included."""
        return [
            mtime
            for key, mtime in self.lake.list_objects(user_datasets_prefix(user_id))
            if (parsed := parse_dataset_key(key)) is not None and parsed.kind == "meta"
        ]

    def meta(self, dataset_id: str, version: int) -> VersionMeta:
        """Version ``version``'s metadata; ``DocumentError`` names the key and field if it is malformed."""
        return read_document(self.lake, dataset_meta_key(dataset_id, version), VersionMeta)

    def info(self, state: DatasetState, latest: VersionMeta) -> Naming:
        """Current name and description, from the latest edit or else ``latest`` (the latest version)."""
        if not state.edits:
            return current_naming(latest, None)
        edit = read_document(self.lake, dataset_edit_key(state.dataset_id, state.edits[-1]), MetadataEdit)
        return current_naming(latest, edit)

    def event_keys(self) -> Iterator[tuple[str, float]]:
        """Every version, edit and tombstone object with its time (what the sensor watches)."""
        return (
            (key, mtime)
            for key, mtime in self.lake.list_objects(DATASETS_INBOX)
            if (parsed := parse_dataset_key(key)) is not None and parsed.kind != "upload"
        )

    # -- inbox writes (create-if-absent only) -----------------------------------------------------
    def create_version(self, meta: VersionMeta, data: bytes) -> bool:
        """Store the upload at ``meta.upload_key`` (from :func:`upload_key`), then ``meta.json``; False
        (and nothing left behind) if that version already exists."""
        key = meta.upload_key
        if parse_dataset_key(key) != DatasetKey(meta.dataset_id, "upload", meta.version):
            raise ValueError(f"{key} is not an upload key of version {meta.version} of {meta.dataset_id}")
        if not self.lake.put_new(key, data):  # 64 random bits: a clash is a bug, not a race
            raise RuntimeError(f"upload key {key} already exists")
        if self.lake.put_new(dataset_meta_key(meta.dataset_id, meta.version), document_bytes(meta)):
            return True
        self.lake.delete(key)
        return False

    def edit(self, dataset_id: str, number: int, doc: MetadataEdit) -> bool:
        """Store the ``number``-th edit; False if a concurrent edit took that number."""
        return self.lake.put_new(dataset_edit_key(dataset_id, number), document_bytes(doc))

    def mark_deleted(self, dataset_id: str, doc: Tombstone) -> bool:
        """Write the tombstone; False if the dataset was already deleted."""
        return self.lake.put_new(dataset_deleted_key(dataset_id), document_bytes(doc))

    # -- pipeline outputs -------------------------------------------------------------------------
    def table(self, where: pl.Expr | None = None) -> pl.DataFrame:
        return read_datasets_table(self.lake, where)

    def rows(self, where: pl.Expr | None = None) -> list[DatasetRow]:
        """The table's rows (all, or those matching ``where``), typed."""
        return rows_of(self.table(where))

    def write_table(self, table: pl.DataFrame) -> None:
        self.lake.write_parquet(TABLE_KEY, conform(table, DATASETS))

    def report(self, dataset_id: str, version: int, name: str = "report.json") -> bytes | None:
        """A stored report object of one version (``report.json``, ``ge_result.json`` or
        ``data_docs.html``), or None if absent."""
        key = dataset_report_key(dataset_id, version, name)
        return self.lake.get_bytes(key) if self.lake.exists(key) else None

    def quality(self, dataset_id: str, version: int) -> QualityReport | None:
        """The fast path's quality report kept in a version's ``report.json``; None if absent."""
        report = self.report(dataset_id, version)
        return None if report is None else QualityReport.from_dict(json.loads(report)["quality"])

    def write_report(self, dataset_id: str, version: int, report: Mapping[str, Any]) -> None:
        self.lake.put_bytes(
            dataset_report_key(dataset_id, version, "report.json"), json.dumps(report).encode()
        )

    def write_ge(self, dataset_id: str, version: int, ge: GeValidation) -> None:
        """The GE result and its Data Docs page (the page last: the API serves it once both exist)."""
        self.lake.put_bytes(
            dataset_report_key(dataset_id, version, "ge_result.json"), json.dumps(ge.result).encode()
        )
        self.lake.put_bytes(dataset_report_key(dataset_id, version, "data_docs.html"), ge.html.encode())

    def store_rows(
        self, dataset_id: str, version: int, typed: TypedRows, keys: tuple[str, ...], storage: Storage
    ) -> str:
        """Store a version's typed rows, stably sorted by key, with their unparsed cells; return the
        rows' location (see module doc)."""
        by_key = pl.arg_sort_by(list(keys), maintain_order=True, nulls_last=True)
        order = typed.frame.select(by_key).to_series()
        rows = typed.frame[order]
        # The user's field names go inside a struct, so no field can clash with ``data_row``.
        unparsed = pl.DataFrame({"data_row": order + 1, "unparsed": typed.unparsed[order].to_struct()})
        self.lake.write_parquet(dataset_report_key(dataset_id, version, UNPARSED), unparsed)
        buf = io.BytesIO()
        rows.write_parquet(buf, compression="zstd", statistics=True, row_group_size=ROW_GROUP_ROWS)
        self.lake.put_bytes(dataset_rows_key(dataset_id, version), buf.getvalue())
        if storage == "lake":
            return dataset_rows_key(dataset_id, version)
        location = dataset_warehouse_location(dataset_id, version)
        path = self.warehouse_dir / location
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(temp_name(path.name, uuid.uuid4().hex))
        try:
            with duckdb.connect() as con:
                # 16 kB blocks: a small table takes ~100 kB on disk instead of DuckDB's default ~800 kB.
                con.execute("ATTACH " + _literal(str(tmp)) + " AS w (BLOCK_SIZE 16384)")
                con.register("typed", rows)
                con.execute('CREATE TABLE w."rows" AS SELECT * FROM typed')
                con.execute(f'CREATE INDEX by_key ON w."rows" ({", ".join(_ident(k) for k in keys)})')
                con.execute("DETACH w")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        return location

    def read_rows(self, dataset_id: str, version: int) -> TypedRows | None:
        """A stored version's typed rows and unparsed cells in the upload's row order; None once removed."""
        keys = (dataset_rows_key(dataset_id, version), dataset_report_key(dataset_id, version, UNPARSED))
        if not all(self.lake.exists(key) for key in keys):
            return None
        rows, unparsed = (self.lake.read_parquet([key]) for key in keys)
        order = unparsed["data_row"].arg_sort()
        return TypedRows(rows[order], unparsed["unparsed"].struct.unnest()[order])

    def lookup(self, row: DatasetRow, where: Mapping[str, Any], limit: int) -> pl.DataFrame:
        """Rows of a stored version (its ``datasets`` row) whose fields equal ``where``'s values."""
        if row.location is None:
            raise ValueError(f"version {row.version} of {row.dataset_id} has no stored rows")
        if row.storage == "warehouse":
            path = self.warehouse_dir / row.location
            with duckdb.connect(str(path), read_only=True) as con:
                condition = " AND ".join(f"{_ident(c)} = ?" for c in where) or "true"
                return con.execute(
                    f'SELECT * FROM "rows" WHERE {condition} LIMIT {int(limit)}', list(where.values())
                ).pl()
        scan = pl.scan_parquet(
            self.lake.uri(row.location), storage_options=self.lake.polars_storage_options()
        )
        for column, value in where.items():
            scan = scan.filter(pl.col(column) == value)
        return scan.head(limit).collect()

    def purge_version(self, dataset_id: str, version: int) -> None:
        """Remove everything stored for a version except its ``meta.json`` (kept for the version list
        and the upload rate): the upload, rows, warehouse file and reports."""
        meta = self.meta(dataset_id, version)
        for key in (
            meta.upload_key,
            dataset_rows_key(dataset_id, version),
            *(
                dataset_report_key(dataset_id, version, n)
                for n in ("report.json", UNPARSED, "ge_result.json", "data_docs.html")
            ),
        ):
            self.lake.delete(key)
        (self.warehouse_dir / dataset_warehouse_location(dataset_id, version)).unlink(missing_ok=True)


def _ident(name: str) -> str:
    """A DuckDB identifier for a user's field name (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A DuckDB string literal (for ATTACH, which takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"
