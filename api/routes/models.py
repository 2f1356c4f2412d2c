"""Users' models: create, read, update (a new immutable version) and archive.

Writes go to the inbox as immutable objects (``stores/registry.py``); reads come from the
same inbox, so a creator sees their new version at once, before any pipeline run. A model the caller
may not read answers 404, exactly like a model that does not exist, so private model ids never
leak; writes to a model the caller does not own answer 404 too.

The app must set ``app.state.registry`` to a :class:`RegistryStore` over its lake.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CallerTier, CurrentUser, current_user
from api.clock import Now
from api.compliance import ELIGIBILITY_RESPONSES, Disclaimed, EligibleUser
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail
from api.idempotency import Idempotent
from api.pagination import Page, Pagination, decode_cursor, page_of
from api.settings import ApiSettings
from api.types import IsoDate
from api.visibility import readable
from domain.marketplace.performance import can_publish
from domain.markets.value import KELLY_FRACTION
from domain.models.config import ConfigError, ModelConfig, validate_against
from domain.models.registry import (
    ENTROPY_BYTES,
    SERVER_FIELDS,
    Status,
    UnusableUserIdError,
    build_version,
    is_public,
    new_model_id,
    owner_of,
)
from domain.models.tiers import ModelCounts, TierLimitError, check_model_limits
from domain.tiers import Tier
from services.backtests import MAX_SPAN_DAYS, backtest_model, best_backtest_graded, record_backtest
from stores.creator_terms import terms_accepted_at
from stores.datasets import dataset_infos
from stores.lake import Lake
from stores.payout_accounts import payout_account
from stores.registry import ModelState, RegistryStore

_CREATE_ATTEMPTS = 3
"""Fresh ids tried when a new id clashes with one of the caller's existing ids."""


router = APIRouter(
    prefix="/models",
    tags=["models"],
    dependencies=[Depends(current_user)],
    responses={
        status: ERROR_RESPONSES[status] for status in (401, 422, 500)
    },  # models never need a serving snapshot
)

_TIER_LIMIT = {
    403: {
        "model": ErrorBody,
        "description": "`tier_limit`: the caller's tier (the token's `tier` claim) allows no more active "
        "or public models; the message names the limit.",
    }
}
_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such model, or not one the caller may see."}}
_CONFLICT = {
    409: {
        "model": ErrorBody,
        "description": "A concurrent update created this version first, or the model is archived.",
    }
}


async def get_registry(request: Request) -> RegistryStore:
    """FastAPI dependency: the app's registry store."""
    return request.app.state.registry


Registry = Annotated[RegistryStore, Depends(get_registry)]


class ModelDetail(ModelConfig):
    """One version of a model, as stored, with the model's current status."""

    status: Status = Field(description="`archived` once its owner deleted it; `suspended` when unlisted.")


CONFIG_EXAMPLE = {
    "name": "My Custom Momentum Model",
    "description": "Focuses on recent team performance and line movement",
    "sport": "basketball_nba",
    "market": "spreads",
    "data_sources": {
        "team_stats": {"weight": 0.6, "fields": ["offensive_rating", "defensive_rating", "pace"]},
        "odds_movement": {"weight": 0.4, "time_window_hours": 24},
    },
    "min_confidence": 0.55,
    "max_confidence": 0.9,
    "sharing": {"public": False, "price_per_month": 0},
}
ConfigBody = Annotated[
    dict[str, Any],
    Body(
        description="A model configuration (see `docs/model-config.schema.json`). "
        f"{', '.join(SERVER_FIELDS)} are set by the server; values sent for them are ignored.",
        examples=[CONFIG_EXAMPLE],
    ),
]
ModelId = Annotated[str, Path(max_length=128, description="Model id, e.g. `user123--momentum-3fa9c1`.")]


def _detail(payload: Mapping[str, Any], status: Status) -> ModelDetail:
    return ModelDetail.model_validate({**payload, "status": status})


def _not_found(model_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no model with id {model_id!r}")


def _validated(body: dict[str, Any], registry: RegistryStore, at: str = "body", **server: Any) -> ModelConfig:
    """The version ``body`` describes, or a 422 naming every offending field (under ``at``, where the
    config sits in the request): its datasets and the models it uses (an ensemble's) are checked."""
    try:
        config = build_version(body, **server)
        validate_against(
            config, datasets=dataset_infos(registry.lake, config.creator_user_id), models=registry.member
        )
    except ConfigError as exc:
        details = [
            ErrorDetail(field=f"{at}.{p.path}" if p.path else at, message=p.message, type="model_config")
            for p in exc.problems
        ]
        fields = ", ".join(d.field for d in details)
        raise ApiError(422, "validation_error", f"invalid model config: {fields}", details) from None
    return config


def _new_model_id(user: str, body: Mapping[str, Any]) -> str:
    """A fresh id for a new model of ``user`` named as ``body`` says; 400 for an unusable user id."""
    name = body.get("name")
    try:
        return new_model_id(user, name if isinstance(name, str) else "", os.urandom(ENTROPY_BYTES))
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def validated_new(
    body: dict[str, Any], registry: RegistryStore, user: str, now: dt.datetime, at: str = "body"
) -> ModelConfig:
    """Version 1 of a new model of ``user`` under a fresh id, or a 422 naming every offending field
    (paths under ``at``: ``POST /backtests`` carries its draft in ``body.config``)."""
    model_id = _new_model_id(user, body)
    return _validated(
        body, registry, at, model_id=model_id, owner_user_id=user, version=1, created_at=now, updated_at=now
    )


def _check_tier(tier: Tier, counts: ModelCounts, *, adds_model: bool, makes_public: bool) -> None:
    """403 ``tier_limit`` naming the limit when the write would take the caller over their tier's."""
    try:
        check_model_limits(tier, counts, adds_model=adds_model, makes_public=makes_public)
    except TierLimitError as exc:
        details = (
            [ErrorDetail(field=f"body.{exc.field}", message=str(exc), type="tier_limit")] if exc.field else []
        )
        raise ApiError(403, "tier_limit", str(exc), details) from None


def owned_state(registry: RegistryStore, model_id: str, user: str) -> ModelState:
    """The state of a model the caller owns; 404 for any other id."""
    state = registry.state(model_id) if owner_of(model_id) == user else None
    if state is None:
        raise _not_found(model_id)
    return state


def _check_publishing(config: ModelConfig, backtest_graded: int, request: Request) -> None:
    """SPEC 6: a shared version needs a recorded backtest of the model (any of its versions) with at
    least 50 graded predictions; a paid one also the creator's acceptance of the current creator terms
    and a payout account whose onboarding has started. Else one 422 naming everything missing (a
    detail each, with the way there)."""
    if not config.sharing.public:
        return
    missing: list[tuple[str, str, str]] = []  # (what is missing, the way there, the detail's type)
    allowed, why = can_publish(backtest_graded)
    if not allowed:
        how = (
            "create the model with sharing.public = false, backtest it (POST /models/{model_id}/test), "
            "then update it with sharing.public = true"
        )
        missing.append((why, how, "publishing_rule"))
    if config.sharing.price_per_month > 0:
        missing += _paid_publishing(
            request.app.state.lake, config.creator_user_id, request.app.state.settings
        )
    if missing:
        details = [
            ErrorDetail(field=_PUBLISHING_FIELDS[kind], message=f"{why}; {how}", type=kind)
            for why, how, kind in missing
        ]
        reasons = "; ".join(why for why, _, _ in missing)
        raise ApiError(422, "publishing_rule", f"cannot publish: {reasons}", details)


_PUBLISHING_FIELDS = {
    "publishing_rule": "body.sharing.public",
    "creator_terms": "body.sharing.price_per_month",
    "payout_account": "body.sharing.price_per_month",
}


def _paid_publishing(lake: Lake, owner: str, settings: ApiSettings) -> list[tuple[str, str, str]]:
    """What a creator lacks to publish a paid model: the current creator terms, an onboarding started."""
    missing = []
    version = settings.creator_terms_version
    if terms_accepted_at(lake, owner, version) is None:
        why = f"the creator terms version {version} are not accepted"
        missing.append((why, "accept them with POST /creators/me/terms", "creator_terms"))
    if payout_account(lake, owner) is None:
        why = "no payout account onboarding was started"
        missing.append((why, "start it with POST /creators/me/payout-account", "payout_account"))
    return missing


@router.post(
    "",
    status_code=201,
    response_model=ModelDetail,
    summary="Create a model (version 1)",
    responses={400: {"model": ErrorBody, "description": "The caller's user id cannot own models."}}
    | _TIER_LIMIT,
)
def create_model(
    body: ConfigBody,
    user: CurrentUser,
    tier: CallerTier,
    registry: Registry,
    request: Request,
    response: Response,
    now: Now,
    idem: Idempotent,
) -> ModelDetail | Response:
    """Validate the configuration and store it as version 1 of a new model owned by the caller, within
    the model limits of the caller's tier."""
    if idem.replay is not None:
        return idem.replay
    counts = registry.model_counts(user)
    for _ in range(_CREATE_ATTEMPTS):
        config = validated_new(body, registry, user, now)
        _check_tier(tier, counts, adds_model=True, makes_public=config.sharing.public)
        _check_publishing(config, 0, request)  # a new model has no backtest yet
        if registry.create_version(config):
            response.headers["Location"] = f"{router.prefix}/{config.model_id}"
            return idem.answer(_detail(config.to_payload(), "active"))
    raise ApiError(409, "conflict", "could not allocate a model id; retry")


class Validity(BaseModel):
    valid: Literal[True] = Field(description="Always true: an invalid draft answers 422 instead.")


@router.post(
    "/validate",
    summary="Check a draft config as POST /models would, storing nothing",
    responses={400: {"model": ErrorBody, "description": "The caller's user id cannot own models."}},
)
def validate_model(body: ConfigBody, user: CurrentUser, registry: Registry, now: Now) -> Validity:
    """Runs the validation of ``POST /models`` (the same code: config rules and the caller's datasets)
    and answers ``{"valid": true}``, or 422 with every problem and its field path. Publishing
    preconditions and tier limits depend on the account, not the draft: ``POST /models`` and ``PUT``
    check them."""
    validated_new(body, registry, user, now)
    return Validity(valid=True)


@router.get("", summary="The caller's models")
def list_models(
    user: CurrentUser,
    registry: Registry,
    page: Pagination,
    include_archived: Annotated[bool, Query(description="Include archived models.")] = False,
) -> Page[ModelDetail]:
    """The latest version of each of the caller's models, ordered by model id."""
    states = [s for s in registry.models_of(user) if include_archived or not s.archived]
    if page.cursor is not None:
        (after,) = decode_cursor(page.cursor, arity=1)
        states = [s for s in states if s.model_id > after]
    listed = page_of(states[: page.limit + 1], page.limit, key=lambda s: (s.model_id,))
    items = [_detail(registry.read(s, s.latest).payload, s.status) for s in listed.items]
    return Page[ModelDetail](items=items, next_cursor=listed.next_cursor, limit=listed.limit)


@router.get("/{model_id}", summary="A model's latest or a given version", responses=_NOT_FOUND)
def get_model(
    model_id: ModelId,
    user: CurrentUser,
    registry: Registry,
    request: Request,
    now: Now,
    version: Annotated[int | None, Query(ge=1, description="This version instead of the latest.")] = None,
) -> ModelDetail:
    """Owners read any of their models; others read what SPEC 6 lets them (free public models, paid
    ones they subscribe to; nothing while a model is suspended), every version as long as the latest
    one is readable."""
    view = readable(request, model_id, user, now)
    state, status = view.state, view.row["status"]
    if version is None or version == state.latest:
        return _detail(view.latest.payload, status)
    if version not in state.versions:
        raise ApiError(404, "not_found", f"model {model_id!r} has no version {version}")
    return _detail(registry.read(state, version).payload, status)


@router.put(
    "/{model_id}", summary="Update a model (a new version)", responses=_NOT_FOUND | _CONFLICT | _TIER_LIMIT
)
def update_model(
    model_id: ModelId,
    body: ConfigBody,
    user: CurrentUser,
    tier: CallerTier,
    registry: Registry,
    request: Request,
    now: Now,
) -> ModelDetail:
    """Store the full configuration as version n+1. Of two concurrent updates exactly one creates it;
    the other gets 409 and may retry on top of the new version. Making a model public must stay
    within the public models the caller's tier allows."""
    state = owned_state(registry, model_id, user)
    if state.archived:
        raise ApiError(409, "conflict", f"model {model_id!r} is archived; archived models cannot change")
    latest = registry.read(state, state.latest)
    config = _validated(
        body,
        registry,
        model_id=model_id,
        owner_user_id=user,
        version=state.latest + 1,
        created_at=dt.datetime.fromisoformat(latest.payload["created_at"]),
        updated_at=now,
    )
    if config.sharing.public and not is_public(latest.payload):
        counts = registry.model_counts(user, excluding=model_id)
        _check_tier(tier, counts, adds_model=False, makes_public=True)
    if config.sharing.public:
        _check_publishing(config, best_backtest_graded(registry.lake, model_id), request)
    if not registry.create_version(config):
        raise ApiError(
            409,
            "conflict",
            f"version {config.version} of model {model_id!r} was just created by another update; "
            "read the latest version and retry",
        )
    return _detail(config.to_payload(), "active")


@router.delete("/{model_id}", status_code=204, summary="Archive a model", responses=_NOT_FOUND)
def archive_model(model_id: ModelId, user: CurrentUser, registry: Registry, now: Now) -> Response:
    """Archive the model: it stops running and leaves the marketplace; its versions and analyses stay.
    Archiving twice is harmless."""
    owned_state(registry, model_id, user)
    registry.archive(model_id, user, now)
    return Response(status_code=204)


KellyFractionField = Annotated[
    float,
    Field(gt=0, le=1, description="Share of the Kelly stake for the `kelly_*` figures (default a quarter)."),
]


class BacktestRequest(BaseModel):
    """The span of game dates to replay; the model's latest version unless ``version`` is given."""

    model_config = ConfigDict(populate_by_name=True)

    start: IsoDate = Field(alias="from", description="First game date (inclusive).")
    end: IsoDate = Field(alias="to", description="Last game date (inclusive).")
    version: int | None = Field(default=None, ge=1)
    kelly_fraction: KellyFractionField = KELLY_FRACTION


class KellyStakes(BaseModel):
    """How a backtest's `kelly_units`, `kelly_profit` and `kelly_roi` stake each graded pick: at the
    pick's own price (the bookmaker it was analysed at; the best price across bookmakers is not
    used) with the model's confidence as the probability, on a bankroll that does not compound."""

    fraction: float = Field(description="The share of the Kelly stake (a quarter by default).")
    max_stake: float = Field(description="No stake exceeds this share of the bankroll (5%).")
    unit: float = Field(
        description="A unit as a share of the bankroll (1%): a flat pick stakes one unit, a Kelly pick "
        "its stake divided by this, so `kelly_units` compares with the flat `units`."
    )


BACKTEST_SUMMARY = (
    "Predictions, graded picks, wins, accuracy, flat units (one per graded pick), profit and ROI, the "
    "same at fractional-Kelly stakes (`kelly_units`, `kelly_profit`, `kelly_roi`, see `kelly`), Brier "
    "score, pushes, ..."
)


class SpanFigures(Disclaimed):
    """A replay's figures over a span (``services.backtests.span_report``): a saved model's or a
    draft's backtest."""

    model_config = ConfigDict(populate_by_name=True)

    sport: str
    market: str
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")
    games_in_span: int
    kelly: KellyStakes
    summary: dict[str, Any] = Field(description=BACKTEST_SUMMARY)
    monthly: list[dict[str, Any]] = Field(description="The same figures per month.")


class BacktestReport(SpanFigures):
    """A backtest's figures (``services.backtests.backtest_model``) and where the run was recorded."""

    model_id: str
    version: int
    recorded_as: str = Field(description="The lake key of the recorded run (publishing reads it).")


@router.post(
    "/{model_id}/test",
    response_model=BacktestReport,
    summary="Backtest a model over the platform's history, as if live",
    responses=_NOT_FOUND | ELIGIBILITY_RESPONSES,
)
def backtest(
    model_id: ModelId,
    body: BacktestRequest,
    user: EligibleUser,
    registry: Registry,
    request: Request,
    idem: Idempotent,
) -> BacktestReport | Response:
    """Runs the same engine as the daily pipeline day by day over the span (cut-off at each game's
    start) and reports predictions, graded picks, accuracy, ROI, Brier score, pushes and a per-month
    table. The owner's run is recorded: publishing needs a backtest with 50 graded predictions."""
    if idem.replay is not None:
        return idem.replay
    state = owned_state(registry, model_id, user)
    version = body.version or state.latest
    if version not in state.versions:
        raise ApiError(404, "not_found", f"model {model_id!r} has no version {version}")
    if body.end < body.start or (body.end - body.start).days > MAX_SPAN_DAYS:
        raise ApiError(
            422, "invalid_span", f"the span must run forwards and cover at most {MAX_SPAN_DAYS} days"
        )
    config = ModelConfig.model_validate(registry.read(state, version).payload)
    report = backtest_model(request.app.state.lake, config, body.start, body.end, None, body.kelly_fraction)
    recorded_as = record_backtest(request.app.state.lake, report)
    return idem.answer(BacktestReport.model_validate(report | {"recorded_as": recorded_as}))
