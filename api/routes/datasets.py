"""Users' datasets: upload, dry run, list, read, edit, refresh and delete, and what the pipeline made of
each version (status, preview, stats, quality report and Data Docs, key lookups).

Uploads go to the inbox (``stores/datasets.py``); the pipeline (``assets/datasets.py``)
validates and stores them. So a new version reads ``processing`` until the pipeline has recorded it
as ``active`` or ``error``; reads merge the inbox (versions, edits, deletion: the caller's own writes
show at once) with the ``datasets`` table. A dataset is its owner's alone, even when a shared model
uses it: any other caller gets 404 on every route, exactly as for a dataset that does not exist.

Limits (SPEC 7) answer with the limit named and nothing stored:

* ``413 file_too_large``: a file over 100 MB. The request body is counted as it streams in and
  refused once it passes the limit (a declared ``Content-Length`` over it is refused before any of
  the body is read), and the bearer token is checked before the body is read, so nobody can make
  the server take in more than the limit.
* ``422 dataset_rejected``: unreadable, over 100,000 rows or 50 fields, a cell over 1 MB, a missing
  key field, an unknown declared type (what ``domain/datasets/files.py`` refuses).
* ``429 upload_rate_exceeded`` (with ``Retry-After``): 10 uploads (new datasets and refreshes) in 24 hours.
* ``429 dataset_quota_exceeded`` / ``413 storage_quota_exceeded``: the tier's number of datasets and
  total bytes. The tier is the token's ``tier`` claim (``free``, ``pro`` or ``enterprise``; absent
  or unknown means ``free``).

The app must set ``app.state.datasets`` to a :class:`DatasetStore` over its lake and warehouse,
``app.state.dataset_limits`` to the per-user limits and ``app.state.clock`` (``api/clock.py``). What
an upload goes through before it is stored is ``services/dataset_intake.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Message, Receive

from api.auth import CallerTier, CurrentUser, current_user
from api.clock import Now
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail
from api.idempotency import Idempotent
from api.pagination import Page, Pagination, decode_cursor, page_of
from domain.datasets.documents import MetadataEdit, Tombstone, VersionMeta
from domain.datasets.files import ParsedDataset, export_csv
from domain.datasets.registry import (
    DatasetLimits,
    DatasetRow,
    LimitExceeded,
    Status,
    Storage,
    check_file_size,
    dataset_owner,
)
from domain.datasets.validation import KEY_FIELDS, DatasetRejected, FieldType
from domain.models.config import DataType
from domain.models.registry import UnusableUserIdError
from domain.sports import SPORTS
from services import dataset_intake as intake
from stores.datasets import DatasetState, DatasetStore

FORM_ALLOWANCE = 65_536
"""Bytes a request body may carry beyond the file limit: the other form fields and part headers."""
_READ_CHUNK = 1 << 20
_RETRY_PROCESSING_SECONDS = 30
_bearer = HTTPBearer(auto_error=False)


async def _store(request: Request) -> DatasetStore:
    return request.app.state.datasets


async def _limits(request: Request) -> DatasetLimits:
    return request.app.state.dataset_limits


def _limit_error(exc: LimitExceeded) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return ApiError(exc.status, exc.code, str(exc), headers=headers)


def _counted(receive: Receive, limits: DatasetLimits) -> Receive:
    """``receive`` that refuses the request once the body passes the file limit plus the form fields."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            try:
                check_file_size(seen - FORM_ALLOWANCE, limits)
            except LimitExceeded as exc:
                raise _limit_error(exc) from None
        return message

    return counted


class _CountedBodyRoute(APIRoute):
    """Checks the token, a declared ``Content-Length``, then counts the body while FastAPI reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counted(request: Request) -> Response:
            await current_user(request, await _bearer(request))  # 401 before reading any of the body
            limits = await _limits(request)
            declared = request.headers.get("content-length", "")
            if declared.isdigit():
                try:
                    check_file_size(int(declared) - FORM_ALLOWANCE, limits)
                except LimitExceeded as exc:
                    raise _limit_error(exc) from None
            return await handler(Request(request.scope, _counted(request.receive, limits)))

        return counted


router = APIRouter(
    prefix="/datasets",
    tags=["datasets"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 422, 500)},
    route_class=_CountedBodyRoute,
)

Store = Annotated[DatasetStore, Depends(_store)]
Limits = Annotated[DatasetLimits, Depends(_limits)]


_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such dataset, or not one of the caller's."}}
_NOT_READY = {
    409: {"model": ErrorBody, "description": "The version is still `processing` or ended in `error`."}
}
_LIMITS = {
    413: {"model": ErrorBody, "description": "`file_too_large` or `storage_quota_exceeded`."},
    429: {
        "model": ErrorBody,
        "description": "`upload_rate_exceeded` (see `Retry-After`) or `dataset_quota_exceeded`.",
    },
}
DatasetId = Annotated[str, Path(max_length=128, description="Dataset id, e.g. `user123--ds-3fa9c1`.")]
VersionQuery = Annotated[
    int | None, Query(ge=1, description="This version instead of the active one (the latest if none is).")
]
UploadForm = Annotated[
    UploadFile, File(description="CSV (UTF-8), JSON (records or lines), .xlsx or Parquet; at most 100 MB.")
]
SchemaForm = Annotated[
    str | None,
    Form(
        alias="schema",
        description='Declared field types as a JSON object, e.g. `{"temperature": "float", "dome": "bool"}` '
        "(int, float, bool, date, datetime, string); declared types win over detected ones.",
    ),
]
SportForm = Annotated[
    str | None, Form(description=f"One of {', '.join(SPORTS)}; freshness uses its seasons.")
]


# ---- response bodies -------------------------------------------------------------------------------


class VersionSummary(BaseModel):
    version: int
    status: Status
    uploaded_at: dt.datetime
    filename: str
    format: str
    size_bytes: int
    row_count: int | None
    quality_score: float | None
    usable: bool | None = Field(description="Quality above 0.8: models may use this version.")
    storage: Storage | None
    error: str | None


class DatasetDetail(BaseModel):
    """A dataset: its current metadata, the version models use (``active_version``) and every version.

    ``status`` is the latest version's; while a refresh is ``processing``, the active version (and
    the counts and quality shown, which are the active version's) stays in use.
    """

    dataset_id: str
    name: str
    description: str
    sport: str | None
    data_type: DataType
    status: Status
    version: int = Field(description="The latest version.")
    active_version: int | None = Field(description="The newest version stored as `active`.")
    row_count: int
    field_count: int
    size_bytes: int
    fields: dict[str, FieldType] = Field(description="Field types (declared, else detected).")
    quality_score: float | None
    usable: bool
    storage: Storage | None
    location: str | None
    error: str | None = Field(description="Why the latest version is in `error`.")
    created_at: dt.datetime
    updated_at: dt.datetime
    versions: list[VersionSummary]


class DatasetEdit(BaseModel):
    """New metadata; omitted fields keep their value. Sport, type and schema change with a refresh."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


def _version_summary(source: DatasetRow | VersionMeta) -> VersionSummary:
    """A version as the table has it once processed, else as its ``meta.json`` (``processing``)."""
    if isinstance(source, VersionMeta):
        return VersionSummary(
            version=source.version,
            status="processing",
            uploaded_at=source.uploaded_at,
            filename=source.filename,
            format=source.format,
            size_bytes=source.size_bytes,
            row_count=None,
            quality_score=None,
            usable=None,
            storage=None,
            error=None,
        )
    return VersionSummary(
        version=source.version,
        status=source.status,
        uploaded_at=source.uploaded_at,
        filename=source.filename,
        format=source.format,
        size_bytes=source.size_bytes,
        row_count=source.row_count,
        quality_score=source.quality_score,
        usable=source.usable,
        storage=source.storage,
        error=source.error,
    )


def _detail(store: DatasetStore, state: DatasetState, table: list[DatasetRow]) -> DatasetDetail:
    """Inbox state merged with the dataset's ``datasets`` rows (``table`` may hold other datasets)."""
    rows = {r.version: r for r in table if r.dataset_id == state.dataset_id}
    latest = store.meta(state.dataset_id, state.latest)
    info = store.info(state, latest)
    versions = [
        _version_summary(rows[v] if v in rows else store.meta(state.dataset_id, v)) for v in state.versions
    ]
    active = max((v for v, r in rows.items() if r.status == "active"), default=None)
    current = rows[active] if active is not None else None
    return DatasetDetail(
        dataset_id=state.dataset_id,
        name=info.name,
        description=info.description,
        sport=latest.sport,
        data_type=latest.data_type,
        status=versions[-1].status,
        version=state.latest,
        active_version=active,
        row_count=(current.row_count or 0) if current else latest.rows,
        field_count=(current.field_count or 0) if current else latest.fields,
        size_bytes=current.size_bytes if current else latest.size_bytes,
        fields=current.field_types if current else latest.field_types,
        quality_score=current.quality_score if current else None,
        usable=bool(current and current.usable),
        storage=current.storage if current else None,
        location=current.location if current else None,
        error=versions[-1].error,
        created_at=latest.created_at,
        updated_at=max(info.updated_at, latest.uploaded_at),
        versions=versions,
    )


# ---- helpers shared by the upload routes -----------------------------------------------------------


def _not_found(dataset_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no dataset with id {dataset_id!r}")


def _owned(store: DatasetStore, dataset_id: str, user: str) -> DatasetState:
    """The state of a live dataset the caller owns; 404 for any other id."""
    state = store.state(dataset_id)
    if state is None or state.deleted or dataset_owner(dataset_id) != user:
        raise _not_found(dataset_id)
    return state


def _field_error(field: str, message: str) -> ApiError:
    detail = ErrorDetail(field=field, message=message, type="value_error")
    return ApiError(422, "validation_error", f"invalid request: {field}", [detail])


def _read_upload(file: UploadFile, limits: DatasetLimits) -> bytes:
    """The file's bytes, read in chunks and refused as soon as they pass the file limit."""
    data = bytearray()
    while chunk := file.file.read(_READ_CHUNK):
        data += chunk
        try:
            check_file_size(len(data), limits)
        except LimitExceeded as exc:
            raise _limit_error(exc) from None
    return bytes(data)


def _declared_schema(text: str | None) -> dict[str, str] | None:
    if text is None or not text.strip():
        return None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _field_error("body.schema", f"not JSON: {exc.msg} at position {exc.pos}") from None
    if not (isinstance(schema, dict) and all(isinstance(v, str) for v in schema.values())):
        raise _field_error(
            "body.schema", 'must be a JSON object of field names to types, e.g. {"x": "float"}'
        )
    return schema


def _sport(sport: str | None) -> str | None:
    if sport is not None and sport not in SPORTS:
        raise _field_error("body.sport", f"unknown sport {sport!r}; supported: {', '.join(SPORTS)}")
    return sport or None


def _rejected(exc: DatasetRejected) -> ApiError:
    return ApiError(exc.status, "file_too_large" if exc.status == 413 else "dataset_rejected", str(exc))


def _read(
    data: bytes, filename: str | None, schema: dict[str, str] | None, data_type: DataType
) -> ParsedDataset:
    try:
        return intake.read_upload(data, filename, schema, data_type)
    except DatasetRejected as exc:
        raise _rejected(exc) from None


def _check_limits(checks: Callable[[], None]) -> None:
    try:
        checks()
    except LimitExceeded as exc:
        raise _limit_error(exc) from None


# ---- routes ----------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=DatasetDetail,
    summary="Upload a new dataset (version 1)",
    responses=_LIMITS
    | {400: {"model": ErrorBody, "description": "The caller's user id cannot own datasets."}},
)
def upload_dataset(
    user: CurrentUser,
    tier: CallerTier,
    store: Store,
    limits: Limits,
    now: Now,
    response: Response,
    idem: Idempotent,
    file: UploadForm,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    data_type: Annotated[
        DataType, Form(description="Key fields: game_id; team and date; player_id and date.")
    ],
    description: Annotated[str, Form(max_length=2000)] = "",
    sport: SportForm = None,
    declared_schema: SchemaForm = None,
) -> DatasetDetail | Response:
    """Check the file against every limit, store it and answer `processing`; the pipeline then
    validates it, scores its quality and stores it (`status` becomes `active` or `error`)."""
    if idem.replay is not None:
        return idem.replay
    data = _read_upload(file, limits)
    _check_limits(lambda: intake.check_new_dataset(store, limits, user, tier, len(data), now))
    declared, sport = _declared_schema(declared_schema), _sport(sport)
    parsed = _read(data, file.filename, declared, data_type)
    try:
        dataset_id = intake.create_dataset(
            store,
            user,
            data,
            parsed,
            name=name,
            description=description,
            sport=sport,
            data_type=data_type,
            declared_schema=declared,
            now=now,
        )
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc).replace("models", "datasets")) from None
    if dataset_id is None:
        raise ApiError(409, "conflict", "could not allocate a dataset id; retry")
    response.headers["Location"] = f"{router.prefix}/{dataset_id}"
    state = store.state(dataset_id)
    assert state is not None  # just created
    return idem.answer(_detail(store, state, store.rows(pl.col("dataset_id") == dataset_id)))


@router.post("/validate", summary="Dry run: the quality report of a file, nothing stored", responses=_LIMITS)
def validate_dataset(
    limits: Limits,
    now: Now,
    file: UploadForm,
    data_type: Annotated[DataType, Form()],
    sport: SportForm = None,
    declared_schema: SchemaForm = None,
) -> dict[str, Any]:
    """The same checks and report as an upload (and as `oddsforge dataset validate`): detected schema,
    warnings, the quality score with every rule's failures by row, a preview and per-field stats.
    Stores nothing and does not count as an upload."""
    data = _read_upload(file, limits)
    declared, sport = _declared_schema(declared_schema), _sport(sport)
    try:
        found = intake.assess(data, file.filename or "upload", declared, sport, data_type, now.date())
    except DatasetRejected as exc:
        raise _rejected(exc) from None
    return found.as_dict()


@router.get("", summary="The caller's datasets")
def list_datasets(user: CurrentUser, store: Store, page: Pagination) -> Page[DatasetDetail]:
    """The caller's datasets, ordered by dataset id."""
    states = store.datasets_of(user)
    if page.cursor is not None:
        (after,) = decode_cursor(page.cursor, arity=1)
        states = [s for s in states if s.dataset_id > after]
    listed = page_of(states[: page.limit + 1], page.limit, key=lambda s: (s.dataset_id,))
    table = store.rows(pl.col("dataset_id").is_in([s.dataset_id for s in listed.items]))
    items = [_detail(store, s, table) for s in listed.items]
    return Page[DatasetDetail](items=items, next_cursor=listed.next_cursor, limit=listed.limit)


@router.get("/{dataset_id}", summary="A dataset, its status and versions", responses=_NOT_FOUND)
def get_dataset(dataset_id: DatasetId, user: CurrentUser, store: Store) -> DatasetDetail:
    state = _owned(store, dataset_id, user)
    return _detail(store, state, store.rows(pl.col("dataset_id") == dataset_id))


@router.put("/{dataset_id}", summary="Edit a dataset's name or description", responses=_NOT_FOUND)
def edit_dataset(
    dataset_id: DatasetId, body: DatasetEdit, user: CurrentUser, store: Store, now: Now
) -> DatasetDetail:
    """Of two concurrent edits exactly one is stored; the other gets 409 and may retry."""
    state = _owned(store, dataset_id, user)
    table = store.rows(pl.col("dataset_id") == dataset_id)
    current = store.info(state, store.meta(dataset_id, state.latest))
    doc = MetadataEdit(
        name=body.name if body.name is not None else current.name,
        description=body.description if body.description is not None else current.description,
        edited_by=user,
        edited_at=now,
    )
    number = (state.edits[-1] if state.edits else 0) + 1
    if not store.edit(dataset_id, number, doc):
        raise ApiError(409, "conflict", f"dataset {dataset_id!r} was just edited by another request; retry")
    return _detail(store, _owned(store, dataset_id, user), table)


@router.delete("/{dataset_id}", status_code=204, summary="Delete a dataset", responses=_NOT_FOUND)
def delete_dataset(dataset_id: DatasetId, user: CurrentUser, store: Store, now: Now) -> Response:
    """The dataset disappears at once (and stops counting towards quotas); the pipeline then removes
    its stored rows, reports and uploads. Models that use it lose that source."""
    _owned(store, dataset_id, user)
    store.mark_deleted(dataset_id, Tombstone(deleted_by=user, deleted_at=now))
    return Response(status_code=204)


@router.post(
    "/{dataset_id}/refresh",
    status_code=201,
    response_model=DatasetDetail,
    summary="Upload a new version of a dataset",
    responses=_NOT_FOUND | _LIMITS | {409: {"model": ErrorBody, "description": "A concurrent refresh won."}},
)
def refresh_dataset(
    dataset_id: DatasetId,
    user: CurrentUser,
    tier: CallerTier,
    store: Store,
    limits: Limits,
    now: Now,
    idem: Idempotent,
    file: UploadForm,
    data_type: Annotated[DataType | None, Form(description="Default: the previous version's.")] = None,
    sport: SportForm = None,
    declared_schema: SchemaForm = None,
) -> DatasetDetail | Response:
    """Store the file as version n+1 (`processing`); the active version stays in use until the new
    one is active. Omitted form fields keep the previous version's values. Counts as an upload."""
    if idem.replay is not None:
        return idem.replay
    state = _owned(store, dataset_id, user)
    previous = store.meta(dataset_id, state.latest)
    data = _read_upload(file, limits)
    _check_limits(lambda: intake.check_refresh(store, limits, user, tier, dataset_id, len(data), now))
    declared = _declared_schema(declared_schema) if declared_schema is not None else previous.declared_schema
    data_type = data_type or previous.data_type
    sport = _sport(sport) if sport is not None else previous.sport
    parsed = _read(data, file.filename, declared, data_type)
    created = intake.add_version(
        store,
        state,
        previous,
        data,
        parsed,
        sport=sport,
        data_type=data_type,
        declared_schema=declared,
        now=now,
    )
    if not created:
        raise ApiError(
            409,
            "conflict",
            f"version {state.latest + 1} of {dataset_id!r} was just created by another refresh",
        )
    return idem.answer(
        _detail(store, _owned(store, dataset_id, user), store.rows(pl.col("dataset_id") == dataset_id))
    )


# ---- what the pipeline made of a version -----------------------------------------------------------


def _stored(store: DatasetStore, dataset_id: str, user: str, version: int | None) -> DatasetRow:
    """The ``datasets`` row of the requested (default: active, else latest) version once it is stored."""
    state = _owned(store, dataset_id, user)
    rows = {r.version: r for r in store.rows(pl.col("dataset_id") == dataset_id)}
    active = max((v for v, r in rows.items() if r.status == "active"), default=None)
    wanted = version or active or state.latest
    if wanted not in state.versions:
        raise ApiError(404, "not_found", f"dataset {dataset_id!r} has no version {wanted}")
    row = rows.get(wanted)
    if row is None:
        raise ApiError(
            409,
            "processing",
            f"version {wanted} of {dataset_id!r} is still processing; retry shortly",
            headers={"Retry-After": str(_RETRY_PROCESSING_SECONDS)},
        )
    if row.status == "error":
        raise ApiError(409, "dataset_error", f"version {wanted} of {dataset_id!r} was refused: {row.error}")
    if row.status == "superseded":
        raise ApiError(
            404, "not_found", f"version {wanted} of {dataset_id!r} was superseded; its data is gone"
        )
    return row


def _report(store: DatasetStore, row: DatasetRow) -> dict[str, Any]:
    blob = store.report(row.dataset_id, row.version)
    if blob is None:  # removed since the table was read (a newer version or a deletion)
        raise _not_found(row.dataset_id)
    return json.loads(blob)


@router.get(
    "/{dataset_id}/preview",
    summary="The first 10 rows",
    responses=_NOT_FOUND | _NOT_READY | {200: {"content": {"text/csv": {}}}},
)
def preview_dataset(
    dataset_id: DatasetId,
    user: CurrentUser,
    store: Store,
    version: VersionQuery = None,
    format: Annotated[Literal["json", "csv"], Query(description="`csv` downloads the rows.")] = "json",
) -> Any:
    """The first 10 data rows as the file has them (empty cells are null). The CSV download is safe to
    open in a spreadsheet: no cell is run as a formula."""
    row = _stored(store, dataset_id, user, version)
    rows = _report(store, row)["preview"]
    if format == "json":
        return {"dataset_id": dataset_id, "version": row.version, "rows": rows}
    frame = pl.from_dicts(rows, schema={name: pl.String for name in rows[0]})
    return Response(
        export_csv(frame),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{dataset_id}-v{row.version}-preview.csv"'},
    )


@router.get("/{dataset_id}/stats", summary="Per-field statistics", responses=_NOT_FOUND | _NOT_READY)
def dataset_stats(
    dataset_id: DatasetId, user: CurrentUser, store: Store, version: VersionQuery = None
) -> dict:
    """Per field: type, count of non-empty cells, missing, distinct values, and for numbers and dates
    min and max (numbers also mean and standard deviation)."""
    row = _stored(store, dataset_id, user, version)
    report = _report(store, row)
    return {
        "dataset_id": dataset_id,
        "version": row.version,
        "rows": report["rows"],
        "fields": report["stats"],
    }


@router.get("/{dataset_id}/quality", summary="The full quality report", responses=_NOT_FOUND | _NOT_READY)
def dataset_quality(
    dataset_id: DatasetId, user: CurrentUser, store: Store, version: VersionQuery = None
) -> dict:
    """The score and its parts, each rule's failures with 1-based data row numbers, per-field
    results, and pandera's validation failures. Models may use the dataset only above 0.8."""
    row = _stored(store, dataset_id, user, version)
    report = _report(store, row)
    return {
        "dataset_id": dataset_id,
        "version": row.version,
        **report["quality"],
        "validation": report["validation"],
        "warnings": report["warnings"],
    }


@router.get(
    "/{dataset_id}/quality/report",
    summary="The great-expectations Data Docs page (or result)",
    responses=_NOT_FOUND
    | _NOT_READY
    | {
        200: {
            "description": "The Data Docs page (`format=html`) or GE's validation result (`json`).",
            "content": {"text/html": {"schema": {"type": "string"}}, "application/json": {}},
        }
    },
)
def dataset_quality_report(
    dataset_id: DatasetId,
    user: CurrentUser,
    store: Store,
    version: VersionQuery = None,
    format: Annotated[Literal["html", "json"], Query(description="`json`: GE's validation result.")] = "html",
) -> Response:
    """great-expectations validates each stored version in the pipeline (it takes seconds, so never on
    a request); this serves its Data Docs page, sandboxed, or its JSON result."""
    row = _stored(store, dataset_id, user, version)
    html = store.report(dataset_id, row.version, "data_docs.html")
    if html is None:
        raise ApiError(
            409,
            "processing",
            f"the great-expectations report of version {row.version} of {dataset_id!r} is not ready yet",
            headers={"Retry-After": str(_RETRY_PROCESSING_SECONDS)},
        )
    if format == "json":
        result = store.report(dataset_id, row.version, "ge_result.json")
        return Response(result, media_type="application/json")
    # The page shows the user's cell values: a sandboxed origin keeps any markup in them harmless.
    return HTMLResponse(
        html,
        headers={"Content-Security-Policy": "sandbox allow-scripts", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/{dataset_id}/rows", summary="Look rows up by key", responses=_NOT_FOUND | _NOT_READY)
def dataset_rows(
    dataset_id: DatasetId,
    user: CurrentUser,
    store: Store,
    request: Request,
    version: VersionQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """Rows of a stored version whose key fields equal the query parameters (`game_id`, or `team` and
    `date`, or `player_id` and `date`; any subset of them), typed. Small datasets answer from the
    warehouse, larger ones from the lake; both are indexed by key."""
    row = _stored(store, dataset_id, user, version)
    keys = KEY_FIELDS[row.data_type]
    asked = {k: v for k, v in request.query_params.items() if k not in ("version", "limit")}
    if unknown := sorted(set(asked) - set(keys)):
        raise _field_error(f"query.{unknown[0]}", f"look rows up by the key fields {', '.join(keys)}")
    types = row.field_types
    where = {k: _key_value(k, types.get(k, "string"), v) for k, v in asked.items()}
    found = store.lookup(row, where, limit)
    return {"dataset_id": dataset_id, "version": row.version, "items": found.to_dicts()}


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "date": dt.date.fromisoformat,
    "datetime": dt.datetime.fromisoformat,
    "bool": lambda text: {"true": True, "false": False}[text.lower()],
}


def _key_value(field: str, ftype: str, text: str) -> Any:
    """A query parameter as a value of the key field's stored type."""
    try:
        return _PARSERS.get(ftype, str)(text)
    except (ValueError, KeyError):
        raise _field_error(f"query.{field}", f"{text!r} is not a valid {ftype} for {field}") from None
