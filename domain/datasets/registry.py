"""The rules around stored user datasets: ids, tiers and upload limits, storage split, the table.

``domain.datasets.validation`` decides what a file *contains* (schema, quality); this module decides what a
user may *store* (SPEC section 7) and how stored datasets are recorded:

* Dataset ids encode their owner like model ids (``domain.models.registry``): ``{user_id}--ds-{6 hex}``, so
  the API finds a dataset's objects from its id alone and answers 404 for anyone else's id.
* Limits per user: 10 uploads (new datasets and refreshes) in any 24 hours, and a tier quota on the
  number of datasets and their total size: free 10 / 100 MB, pro 50 / 1 GB, enterprise unlimited.
  The tier comes from the bearer token's ``tier`` claim (``domain.tiers``). A dataset's size is its
  latest version's upload.
* Small datasets (< 1 MB *and* < 1,000 rows) are served from the warehouse, the rest from the lake.

Time is always a parameter; nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from domain.datasets.documents import Naming, VersionMeta
from domain.datasets.files import Format
from domain.datasets.validation import KEY_FIELDS, MAX_FILE_BYTES, FieldType
from domain.errors import UserError
from domain.models.config import DatasetInfo, DataType
from domain.models.registry import ENTROPY_BYTES, new_model_id, owner_of
from domain.tables.schemas import UTC_TS, conform
from domain.tiers import Tier

Status = Literal["processing", "active", "error", "superseded"]
"""``processing``: uploaded, not yet processed by the pipeline (never stored in the table);
``active``: processed and stored (usable in models if its score is above 0.8); ``error``: the
pipeline could not store it (the reason is in ``error``); ``superseded``: a newer version became
active and this one's rows were removed."""

Storage = Literal["warehouse", "lake"]

SMALL_MAX_BYTES = 1_000_000
SMALL_MAX_ROWS = 1_000
UPLOADS_PER_DAY = 10
UPLOAD_WINDOW_SECONDS = 24 * 3600
DATASET_SLUG = "ds"
_DATASET_TAIL = re.compile(rf"--{DATASET_SLUG}-[0-9a-f]{{{2 * ENTROPY_BYTES}}}$")


@dataclass(frozen=True)
class Quota:
    """A tier's storage quota; None means unlimited."""

    max_datasets: int | None
    max_bytes: int | None


TIER_QUOTAS: dict[Tier, Quota] = {
    "free": Quota(10, 100_000_000),
    "pro": Quota(50, 1_000_000_000),
    "enterprise": Quota(None, None),
}


@dataclass(frozen=True)
class DatasetLimits:
    """Every per-user limit in one place, so a deployment (or a test) can set its own."""

    max_file_bytes: int = MAX_FILE_BYTES
    uploads_per_day: int = UPLOADS_PER_DAY
    quotas: Mapping[Tier, Quota] = field(default_factory=lambda: dict(TIER_QUOTAS))


class LimitExceeded(UserError):
    """A per-user limit refuses an upload; ``status`` and ``code`` are the API's answer."""

    def __init__(self, message: str, status: int, code: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        """Seconds until the limit allows the upload again, when that is known."""


def check_file_size(size: int, limits: DatasetLimits) -> None:
    """413 once an upload has more bytes than the file limit (called while the bytes stream in)."""
    if size > limits.max_file_bytes:
        raise LimitExceeded(
            f"the file is larger than the file size limit of {limits.max_file_bytes:,} bytes "
            f"({limits.max_file_bytes / 1e6:g} MB)",
            413,
            "file_too_large",
        )


def check_upload_rate(upload_times: Sequence[float], now: float, limits: DatasetLimits) -> None:
    """429 when the user already uploaded ``uploads_per_day`` times in the last 24 hours.

    ``upload_times`` are POSIX seconds of the user's stored uploads; the answer says when the oldest
    upload in the window leaves it.
    """
    recent = sorted(t for t in upload_times if t > now - UPLOAD_WINDOW_SECONDS)
    if len(recent) < limits.uploads_per_day:
        return
    frees_at = recent[len(recent) - limits.uploads_per_day] + UPLOAD_WINDOW_SECONDS
    wait = max(1, math.ceil(frees_at - now))
    raise LimitExceeded(
        f"upload rate limit: {limits.uploads_per_day} uploads per 24 hours (new datasets and refreshes); "
        f"the next upload is possible in {wait:,} seconds",
        429,
        "upload_rate_exceeded",
        retry_after=wait,
    )


def check_dataset_count(tier: Tier, datasets: int, limits: DatasetLimits) -> None:
    """429 when a new dataset would exceed the tier's number of datasets."""
    quota = limits.quotas[tier]
    if quota.max_datasets is not None and datasets + 1 > quota.max_datasets:
        raise LimitExceeded(
            f"dataset quota: the {tier} tier allows {quota.max_datasets} datasets and you have {datasets}; "
            "delete one or upgrade your tier",
            429,
            "dataset_quota_exceeded",
        )


def check_storage(tier: Tier, used_bytes: int, new_bytes: int, limits: DatasetLimits) -> None:
    """413 when storing ``new_bytes`` more would exceed the tier's total bytes."""
    quota = limits.quotas[tier]
    if quota.max_bytes is not None and used_bytes + new_bytes > quota.max_bytes:
        raise LimitExceeded(
            f"storage quota: the {tier} tier allows {quota.max_bytes:,} bytes of datasets in total; "
            f"{used_bytes:,} are in use and this file has {new_bytes:,}",
            413,
            "storage_quota_exceeded",
        )


def storage_for(size_bytes: int, rows: int) -> Storage:
    """SPEC 7's split: small (< 1 MB and < 1,000 rows) in the warehouse, the rest in the lake."""
    return "warehouse" if size_bytes < SMALL_MAX_BYTES and rows < SMALL_MAX_ROWS else "lake"


# ---- ids ------------------------------------------------------------------------------------------


def new_dataset_id(user_id: str, entropy: bytes) -> str:
    """A fresh dataset id ``{user_id}--ds-{6 hex}``; raises ``UnusableUserIdError`` for a user id that
    cannot be part of object keys."""
    return new_model_id(user_id, DATASET_SLUG, entropy)


def dataset_owner(dataset_id: str) -> str | None:
    """The owner encoded in a dataset id; None for anything that is not a dataset id."""
    return owner_of(dataset_id) if _DATASET_TAIL.search(dataset_id) else None


# ---- the ``datasets`` table -----------------------------------------------------------------------

DATASETS: dict[str, pl.DataType] = {
    "dataset_id": pl.String(),
    "version": pl.Int32(),
    "owner_user_id": pl.String(),
    "name": pl.String(),
    "description": pl.String(),
    "sport": pl.String(),
    "data_type": pl.String(),
    "status": pl.String(),
    "filename": pl.String(),
    "format": pl.String(),
    "size_bytes": pl.Int64(),
    "row_count": pl.Int64(),
    "field_count": pl.Int32(),
    "schema_json": pl.String(),
    "quality_score": pl.Float64(),
    "usable": pl.Boolean(),
    "storage": pl.String(),
    "location": pl.String(),
    "error": pl.String(),
    "created_at": UTC_TS,
    "uploaded_at": UTC_TS,
    "updated_at": UTC_TS,
    "inbox_key": pl.String(),
}
"""One row per processed dataset version. ``created_at`` is the dataset's creation, ``uploaded_at``
this version's upload, ``updated_at`` the latest change of the row (upload or metadata edit).
``location`` is the lake key of the stored rows, or for warehouse storage the DuckDB file's path
relative to the warehouse directory. Name and description are the dataset's current ones on every
version."""


class DatasetRow(BaseModel):
    """One row of the ``datasets`` table (:data:`DATASETS`): a processed version."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    dataset_id: str
    version: int
    owner_user_id: str
    name: str
    description: str
    sport: str | None
    data_type: DataType
    status: Status
    filename: str
    format: Format
    size_bytes: int
    row_count: int | None = None
    field_count: int | None = None
    types_json: str | None = Field(
        default=None, validation_alias="schema_json", serialization_alias="schema_json"
    )
    """:attr:`field_types` as JSON (the column ``schema_json``)."""
    quality_score: float | None = None
    usable: bool | None = None
    storage: Storage | None = None
    location: str | None = None
    error: str | None = None
    created_at: dt.datetime
    uploaded_at: dt.datetime
    updated_at: dt.datetime
    inbox_key: str

    @property
    def field_types(self) -> dict[str, FieldType]:
        """The stored version's field types (declared, else detected); empty unless ``active``."""
        return json.loads(self.types_json) if self.types_json else {}


def rows_of(table: pl.DataFrame) -> list[DatasetRow]:
    """The rows of a ``datasets`` frame, typed."""
    return [DatasetRow.model_validate(row) for row in table.iter_rows(named=True)]


def version_row(meta: VersionMeta, inbox_key: str, status: Status, **outcome: Any) -> DatasetRow:
    """A version's row: what its ``meta.json`` (at ``inbox_key``) says, the pipeline's ``status`` and
    what processing found (``outcome``: rows, schema, quality, storage; or the ``error``)."""
    return DatasetRow(
        dataset_id=meta.dataset_id,
        version=meta.version,
        owner_user_id=meta.owner_user_id,
        name=meta.name,
        description=meta.description,
        sport=meta.sport,
        data_type=meta.data_type,
        status=status,
        filename=meta.filename,
        format=meta.format,
        size_bytes=meta.size_bytes,
        created_at=meta.created_at,
        uploaded_at=meta.uploaded_at,
        updated_at=meta.uploaded_at,
        inbox_key=inbox_key,
        **outcome,
    )


def merge_datasets(
    existing: pl.DataFrame,
    records: Sequence[DatasetRow],
    infos: Mapping[str, Naming],
    deleted: Collection[str],
) -> pl.DataFrame:
    """``existing`` with ``records`` upserted by (dataset_id, version), then:

    * ``infos`` (dataset id -> current name and description) applied to every version;
    * every row of a ``deleted`` dataset removed;
    * ``active`` versions older than their dataset's newest active one marked ``superseded``.

    Merging the same inputs again gives the same table (idempotent).
    """
    new = conform(pl.DataFrame([r.model_dump() for r in records], schema=DATASETS), DATASETS)
    edits = pl.DataFrame(
        {
            "dataset_id": list(infos),
            "new_name": [info.name for info in infos.values()],
            "new_description": [info.description for info in infos.values()],
            "new_updated_at": [info.updated_at for info in infos.values()],
        },
        schema={
            "dataset_id": pl.String,
            "new_name": pl.String,
            "new_description": pl.String,
            "new_updated_at": UTC_TS,
        },
    )
    active = pl.col("status") == "active"
    return (
        pl.concat([conform(existing, DATASETS), new])
        .unique(["dataset_id", "version"], keep="last", maintain_order=True)
        .filter(~pl.col("dataset_id").is_in(pl.Series(list(deleted), dtype=pl.String).implode()))
        .join(edits, on="dataset_id", how="left")
        .with_columns(
            name=pl.coalesce("new_name", "name"),
            description=pl.coalesce("new_description", "description"),
            updated_at=pl.max_horizontal("updated_at", "new_updated_at"),
            status=pl.when(
                active & (pl.col("version") < pl.col("version").filter(active).max().over("dataset_id"))
            )
            .then(pl.lit("superseded"))
            .otherwise(pl.col("status")),
        )
        .select(list(DATASETS))
        .sort("dataset_id", "version")
    )


def current_rows(table: pl.DataFrame) -> pl.DataFrame:
    """Per dataset, the row of its newest ``active`` version: the one models and lookups use."""
    return (
        table.filter(pl.col("status") == "active")
        .sort("dataset_id", "version")
        .unique("dataset_id", keep="last", maintain_order=True)
    )


def scoreable_fields(schema: Mapping[str, str], data_type: DataType) -> tuple[str, ...]:
    """Fields a custom source may score: numeric or boolean, not a key (as the engine reads them)."""
    keys = set(KEY_FIELDS[data_type])
    return tuple(f for f, t in schema.items() if t in ("int", "float", "bool") and f not in keys)


def dataset_info(row: DatasetRow) -> DatasetInfo:
    """What model validation needs to know about a dataset, from its current ``datasets`` row."""
    return DatasetInfo(
        dataset_id=row.dataset_id,
        owner_user_id=row.owner_user_id,
        quality_score=row.quality_score or 0.0,
        fields=scoreable_fields(row.field_types, row.data_type),
        sport=row.sport,
        data_type=row.data_type,
    )
