"""Pick commitments through the API (SPEC 9): ``GET /commitments/{date}`` for anyone, and
``GET /models/{id}/proofs`` for the model's readers (``services/proofs.py``).

The day's commitments reveal no pick (digests only), so they need no token. Proofs carry picks, so
they follow the results route's rule: the caller must be allowed picks (age, region, no
self-exclusion) and may read the model (a paid model's non-subscribers get 404).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import current_user
from api.clock import Now
from api.compliance import PICKS_RESPONSES, Disclaimed, PicksUser
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail
from api.model_data import model_rows
from api.routes.execution import MAX_DAYS, ModelId, window
from api.types import IsoDate
from api.visibility import readable
from domain.compliance.legal import DISCLAIMER
from domain.models.engine import ANALYSES
from domain.tables.schemas import GAMES
from services.proofs import day_commitments, model_proofs

Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lowercase hex.")]

public_router = APIRouter(tags=["commitments"], responses={s: ERROR_RESPONSES[s] for s in (422, 500)})
router = APIRouter(
    prefix="/models",
    tags=["commitments"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 422, 500)},
)


class BatchObject(BaseModel):
    """A batch as stored: its digest is SHA-256 of this object's canonical JSON."""

    roots: dict[str, str] = Field(description="Per model: the Merkle root of its leaves in the batch.")
    chains: dict[str, str] = Field(description="Per model: its chain value after the batch.")
    written_at: str = Field(description="When the batch was written (ISO 8601 UTC with Z).")


class StoredBatch(BaseModel):
    batch_id: str
    object: BatchObject


class DayRootBatch(BaseModel):
    batch_id: str
    digest: Digest


class DayRoot(BaseModel):
    """The day's root as published once, after the day's last game start."""

    date: str
    batches: list[DayRootBatch] = Field(description="The batches' digests the root was built over.")
    root: Digest = Field(description="Merkle root over the batch digests.")
    written_at: str


class DayCommitments(BaseModel):
    date: dt.date
    day_root: DayRoot | None = Field(description="Null until the day's last game has started.")
    batches: list[StoredBatch] = Field(description="Every stored batch of picks on the day's games.")


class PickFields(BaseModel):
    """Exactly what a leaf commits to (SPEC 9)."""

    model_id: str
    version: int
    game_id: str
    bookmaker: str
    market: str
    pick: str
    line: float | None = Field(description="Null for h2h.")
    price: float = Field(description="Decimal price of the picked side.")
    confidence: float
    cut_off: str = Field(description="The game's start (ISO 8601 UTC with Z): the batch must precede it.")


class PathStep(BaseModel):
    sibling: Digest
    side: Literal["left", "right"] = Field(description="Where the sibling sits: hash(left || right).")


class PickProof(BaseModel):
    pick: PickFields
    game_date: dt.date
    canonical: str = Field(description="The pick's canonical JSON (keys sorted, no whitespace).")
    leaf: Digest = Field(description="SHA-256 of `canonical`.")
    batch_id: str | None = Field(description="The batch that committed this leaf; null: not committed.")
    path: list[PathStep] = Field(description="Inclusion path from the leaf to the model's root in the batch.")


class ModelBatch(BaseModel):
    batch_id: str
    day: dt.date
    run: Literal["record", "on_demand"] = Field(description="`record`: these leaves are the stored record.")
    written_at: str
    root: str | None
    chain: str | None
    leaves: list[Digest] = Field(description="Every leaf of the model in the batch (digests reveal no pick).")


class ChainLink(BaseModel):
    model_id: str
    position: int = Field(description="1 for the model's first batch.")
    day: dt.date
    batch_id: str
    previous: Digest
    root: Digest
    chain: Digest = Field(description="SHA-256(previous || root) over the raw digests.")


class ModelProofs(Disclaimed):
    model_id: str
    sport: str
    first: dt.date
    last: dt.date
    picks: list[PickProof] = Field(
        description="The model's qualifying picks in the record, oldest game first."
    )
    batches: list[ModelBatch]
    chain: list[ChainLink] = Field(description="The model's chain positions of those batches, in order.")


@public_router.get("/commitments/{date}", summary="A day's pick commitments (open to anyone)")
def commitments(
    date: Annotated[IsoDate, Path(description="Game date, `YYYY-MM-DD`.")], request: Request
) -> DayCommitments:
    """Every batch object committed for the day's games, as stored, and the day's root once published
    (after its last game start). Digests only: no pick can be read from them."""
    return DayCommitments.model_validate(day_commitments(request.app.state.lake, date))


@router.get(
    "/{model_id}/proofs",
    summary="A model's picks with their commitment proofs",
    response_model=ModelProofs,
    responses={404: {"model": ErrorBody, "description": "No such model, or not one the caller may see."}}
    | PICKS_RESPONSES,
)
def proofs(
    model_id: ModelId,
    user: PicksUser,
    request: Request,
    now: Now,
    first: Annotated[IsoDate | None, Query(alias="from", description="First game date.")] = None,
    to: Annotated[
        IsoDate | None, Query(description="Last game date (default: the newest with analyses).")
    ] = None,
) -> ModelProofs:
    """The model's qualifying picks over `from..to` (at most 366 days; default the 30 days up to `to`)
    from the stored record, each with its canonical JSON, leaf and, when committed, its batch and
    inclusion path; every batch of the model on those days with all of its leaves, and the chain
    links. Same readers as the model's results."""
    view = readable(request, model_id, user, now)
    if first is not None and to is not None and (to - first).days >= MAX_DAYS:
        detail = ErrorDetail(field="query.from", message=f"at most {MAX_DAYS} days", type="span")
        raise ApiError(422, "validation_error", "invalid request: query.from", [detail])
    if first is not None and to is not None and to < first:
        detail = ErrorDetail(field="query.to", message="`to` is before `from`", type="span")
        raise ApiError(422, "validation_error", "invalid request: query.to", [detail])
    days = 30 if first is None else (to - first).days + 1 if to is not None else MAX_DAYS
    start, last, parts = window(request, view, "analyses", to, days, now)
    if first is not None:
        start, last = first, min(last, first + dt.timedelta(days=MAX_DAYS - 1))
    lake, sport = request.app.state.lake, view.latest.payload["sport"]
    analyses = model_rows(lake, parts.between(start, last), model_id, ANALYSES).sort("game_date", "game_id")
    games = lake.read_table("games", sport, start, last + dt.timedelta(days=1), GAMES)
    games = games.filter(pl.col("game_id").is_in(analyses["game_id"].unique().implode()))
    # Built as JSON directly: validating a season's picks and paths into models cost more than the rest.
    document = model_proofs(lake, model_id, sport, analyses, games, start, last) | {"disclaimer": DISCLAIMER}
    return Response(json.dumps(document, default=dt.date.isoformat), media_type="application/json")
