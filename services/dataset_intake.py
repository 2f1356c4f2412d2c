"""Dataset intake: everything that happens to an upload before the pipeline sees it.

A file is read with every limit of the format (``domain.datasets.files``) and its key fields are
checked (:func:`read_upload`), so nothing the pipeline would refuse is stored; the caller's own
limits (10 uploads a day, the tier's number of datasets and bytes) combine what the store lists with
the domain's rules (:func:`check_new_dataset`, :func:`check_refresh`); only then is the file stored
as a new version (:func:`create_dataset`, :func:`add_version`) with its typed ``meta.json``. The dry
run (:func:`assess`) reads and scores a file the same way and stores nothing; the CLI's ``oddsforge
dataset validate`` and the pipeline score files with it too.

Refusals are domain errors (``DatasetRejected``, ``LimitExceeded``, ``UnusableUserIdError``), each
saying which limit; the API maps them to its answers. The time is a parameter (the API's clock).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from domain.datasets.documents import VersionMeta
from domain.datasets.files import ParsedDataset, read_dataset
from domain.datasets.registry import (
    DatasetLimits,
    check_dataset_count,
    check_storage,
    check_upload_rate,
    new_dataset_id,
)
from domain.datasets.validation import QualityReport, check_keys, dataset_stats, preview, quality_report
from domain.models.config import DataType
from domain.models.registry import ENTROPY_BYTES
from domain.tiers import Tier
from stores.datasets import DatasetState, DatasetStore
from stores.layout import dataset_upload_key

CREATE_ATTEMPTS = 3
"""Fresh dataset ids tried before giving up (a clash needs the same owner and 24 random bits)."""


@dataclass(frozen=True)
class Assessment:
    """A file read and scored: what the dry run answers, the CLI prints and the pipeline keeps."""

    parsed: ParsedDataset
    report: QualityReport

    def as_dict(self) -> dict[str, Any]:
        frame = self.parsed.frame
        return {
            "file": self.parsed.display_name,
            "format": self.parsed.format,
            "rows": frame.height,
            "fields": frame.width,
            "schema": self.parsed.schema,
            "warnings": list(self.parsed.warnings),
            "quality": self.report.as_dict(),
            "preview": preview(frame),
            "stats": {name: asdict(s) for name, s in dataset_stats(frame, self.parsed.schema).items()},
        }


def assess(
    data: bytes,
    filename: str,
    declared_schema: Mapping[str, str] | None,
    sport: str | None,
    data_type: DataType,
    today: dt.date,
) -> Assessment:
    """Read ``data`` (every limit checked) and score it; raises ``DatasetRejected`` when refused."""
    parsed = read_dataset(data, filename, dict(declared_schema) if declared_schema else None)
    return Assessment(parsed, quality_report(parsed.frame, parsed.schema, sport, data_type, today))


def read_upload(
    data: bytes, filename: str | None, declared_schema: Mapping[str, str] | None, data_type: DataType
) -> ParsedDataset:
    """Read the file (every limit) and check its key fields: what would make the pipeline refuse it."""
    parsed = read_dataset(data, filename or "upload", dict(declared_schema) if declared_schema else None)
    check_keys(parsed.frame.columns, data_type)
    return parsed


# ---- the caller's limits ----------------------------------------------------------------------------


def _used_bytes(store: DatasetStore, states: list[DatasetState]) -> int:
    """Bytes the datasets take: each dataset's latest upload."""
    return sum(store.meta(s.dataset_id, s.latest).size_bytes for s in states)


def check_new_dataset(
    store: DatasetStore, limits: DatasetLimits, user: str, tier: Tier, size: int, now: dt.datetime
) -> None:
    """Raise ``LimitExceeded`` if a new dataset of ``size`` bytes passes the upload rate, the tier's
    number of datasets or its bytes."""
    live = store.datasets_of(user)
    check_upload_rate(store.upload_times(user), now.timestamp(), limits)
    check_dataset_count(tier, len(live), limits)
    if limits.quotas[tier].max_bytes is not None:
        check_storage(tier, _used_bytes(store, live), size, limits)


def check_refresh(
    store: DatasetStore,
    limits: DatasetLimits,
    user: str,
    tier: Tier,
    dataset_id: str,
    size: int,
    now: dt.datetime,
) -> None:
    """Raise ``LimitExceeded`` if a new version of ``size`` bytes passes the upload rate or the tier's
    bytes (the new version replaces the dataset's size)."""
    check_upload_rate(store.upload_times(user), now.timestamp(), limits)
    if limits.quotas[tier].max_bytes is not None:
        others = [s for s in store.datasets_of(user) if s.dataset_id != dataset_id]
        check_storage(tier, _used_bytes(store, others), size, limits)


# ---- storing ----------------------------------------------------------------------------------------


def _meta(
    *,
    dataset_id: str,
    version: int,
    owner: str,
    name: str,
    description: str,
    sport: str | None,
    data_type: DataType,
    declared_schema: dict[str, str] | None,
    data: bytes,
    parsed: ParsedDataset,
    created_at: dt.datetime,
    now: dt.datetime,
) -> VersionMeta:
    return VersionMeta(
        dataset_id=dataset_id,
        version=version,
        owner_user_id=owner,
        name=name,
        description=description,
        sport=sport,
        data_type=data_type,
        declared_schema=declared_schema,
        field_types=parsed.schema,
        filename=parsed.display_name,
        format=parsed.format,
        size_bytes=len(data),
        rows=parsed.frame.height,
        fields=parsed.frame.width,
        created_at=created_at,
        uploaded_at=now,
        upload_key=dataset_upload_key(dataset_id, version, parsed.format, uuid.uuid4().hex[:16]),
    )


def create_dataset(
    store: DatasetStore,
    user: str,
    data: bytes,
    parsed: ParsedDataset,
    *,
    name: str,
    description: str,
    sport: str | None,
    data_type: DataType,
    declared_schema: dict[str, str] | None,
    now: dt.datetime,
) -> str | None:
    """Store ``data`` (read as ``parsed``) as version 1 of a new dataset of ``user``'s; its id, or None
    if no fresh id was free (retry). Raises ``UnusableUserIdError`` for a user id that cannot own
    datasets."""
    for _ in range(CREATE_ATTEMPTS):
        dataset_id = new_dataset_id(user, os.urandom(ENTROPY_BYTES))
        meta = _meta(
            dataset_id=dataset_id,
            version=1,
            owner=user,
            name=name,
            description=description,
            sport=sport,
            data_type=data_type,
            declared_schema=declared_schema,
            data=data,
            parsed=parsed,
            created_at=now,
            now=now,
        )
        if store.create_version(meta, data):
            return dataset_id
    return None


def add_version(
    store: DatasetStore,
    state: DatasetState,
    previous: VersionMeta,
    data: bytes,
    parsed: ParsedDataset,
    *,
    sport: str | None,
    data_type: DataType,
    declared_schema: dict[str, str] | None,
    now: dt.datetime,
) -> bool:
    """Store ``data`` (read as ``parsed``) as the version after ``state``'s latest, ``previous``, with
    the dataset's current name and description; False if a concurrent refresh created it first."""
    naming = store.info(state, previous)
    meta = _meta(
        dataset_id=state.dataset_id,
        version=state.latest + 1,
        owner=previous.owner_user_id,
        name=naming.name,
        description=naming.description,
        sport=sport,
        data_type=data_type,
        declared_schema=declared_schema,
        data=data,
        parsed=parsed,
        created_at=previous.created_at,
        now=now,
    )
    return store.create_version(meta, data)
