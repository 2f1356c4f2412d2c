"""The documents of a dataset's inbox, typed once for the API that writes them, the store that keeps
them (``stores.datasets``: their keys, reads and writes) and the pipeline that reads them.

Each is one JSON object written once (create-if-absent) and never changed. The field names are the
JSON keys, so every document written since datasets exist reads; times are aware UTC datetimes,
written as ``datetime.isoformat()`` (``2026-01-23T19:00:00+00:00``). A document of another shape (an
older format, a damaged object) is refused by pydantic, naming each field that is wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from domain.datasets.files import Format
from domain.datasets.validation import FieldType
from domain.models.config import DataType

UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(lambda at: at.astimezone(dt.UTC)),
    PlainSerializer(lambda at: at.isoformat(), return_type=str, when_used="json"),
]
"""An aware datetime, held in UTC and written as ``isoformat()`` (pydantic would write ``Z``)."""


class _Document(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class VersionMeta(_Document):
    """``v{n:06d}/meta.json``: version n of a dataset exists. The API writes it after the upload it
    names, once the file passed every check; ``rows``, ``fields`` and ``schema`` are the API's read
    of it (the pipeline reads the upload again)."""

    dataset_id: str
    version: int = Field(ge=1)
    owner_user_id: str
    name: str
    description: str
    sport: str | None
    data_type: DataType
    declared_schema: dict[str, str] | None
    """The field types the owner declared, as sent (``number`` is not yet ``float``)."""
    field_types: dict[str, FieldType] = Field(validation_alias="schema", serialization_alias="schema")
    """Declared types, then detected ones (stored as ``schema``)."""
    filename: str
    """A name to show, never a path (``domain.datasets.files.safe_display_name``)."""
    format: Format
    size_bytes: int = Field(ge=0)
    rows: int = Field(ge=0)
    fields: int = Field(ge=0)
    created_at: UtcDatetime
    """When the dataset (its version 1) was created; every version carries it."""
    uploaded_at: UtcDatetime
    upload_key: str
    """The lake key of this version's file, as sent."""


class MetadataEdit(_Document):
    """``edits/{n:06d}.json``: the owner's n-th change of name or description (both are stored)."""

    name: str
    description: str
    edited_by: str
    edited_at: UtcDatetime


class Tombstone(_Document):
    """``deleted.json``: the owner deleted the dataset."""

    deleted_by: str
    deleted_at: UtcDatetime


@dataclass(frozen=True)
class Naming:
    """A dataset's current name and description, and when they last changed."""

    name: str
    description: str
    updated_at: dt.datetime


def current_naming(latest: VersionMeta, last_edit: MetadataEdit | None) -> Naming:
    """The latest edit's name and description, else the latest version's."""
    if last_edit is not None:
        return Naming(last_edit.name, last_edit.description, last_edit.edited_at)
    return Naming(latest.name, latest.description, latest.uploaded_at)
