"""Draft backtests and tuning runs: ``POST /backtests``, ``GET /backtests/{job_id}`` and
``POST /models/{model_id}/tune``.

A draft is a model config that need not be saved, validated exactly as ``POST /models`` validates
one. Up to one season (:data:`INLINE_SPAN_DAYS`) is answered in the request; a longer span, and
every tuning run, becomes a job (``services/jobs.py``): 202 with its id, then ``GET
/backtests/{job_id}`` shows its progress and, once done, its report. Only the job's owner may read
it (its objects live under the owner's id). A draft that names one of its author's models is
recorded against it: it counts for the publishing rule and in the listing's disclosure, like
``POST /models/{model_id}/test``; a tuning run counts there as the configurations it tried.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import current_user
from api.clock import Now
from api.compliance import ELIGIBILITY_RESPONSES, Disclaimed, EligibleUser
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail
from api.idempotency import Idempotency, Idempotent
from api.routes.games import SportKey
from api.routes.models import (
    CONFIG_EXAMPLE,
    KellyFractionField,
    Registry,
    SpanFigures,
    owned_state,
    validated_new,
)
from api.types import IsoDate
from domain.markets.value import KELLY_FRACTION
from domain.models.config import ModelConfig
from domain.models.registry import UnusableUserIdError
from domain.models.tuning import MAX_FOLDS, MAX_TRIALS, TuneSettings
from services.backtests import MAX_SPAN_DAYS, backtest_draft
from services.jobs import JobRunner
from stores.jobs import JobKind, JobState, JobView
from stores.layout import is_job_id

INLINE_SPAN_DAYS = 366
"""Spans up to this many days (one season of any sport) are answered inline; longer ones are jobs."""
JOB_ID_BYTES = 8

router = APIRouter(
    tags=["backtests"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 422, 500)},
)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such job, or not one of the caller's."}
}
_NO_MODEL: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such model, or not one the caller owns."}
}
_TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "`too_many_jobs`: the caller has as many jobs queued or running as allowed; "
        "`Retry-After` says when to look again.",
    }
}
_BAD_USER: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The caller's user id cannot own models or jobs."}
}


class JobAccepted(BaseModel):
    """A job was accepted: poll ``status_url`` (``GET /backtests/{job_id}``)."""

    job_id: str
    kind: JobKind
    state: JobState
    status_url: str


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobAccepted, "description": "Accepted as a job; poll `status_url`."}
}


class DraftBacktestRequest(BaseModel):
    """A draft config (as ``POST /models`` takes it), its sport and the span of game dates to replay."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    config: dict[str, Any] = Field(
        description="A model configuration (see `docs/model-config.schema.json`); need not be saved. "
        "Its `sport` may be left out (the request's is used).",
        examples=[CONFIG_EXAMPLE],
    )
    sport: SportKey
    start: IsoDate = Field(alias="from", description="First game date (inclusive).")
    end: IsoDate = Field(alias="to", description="Last game date (inclusive).")
    kelly_fraction: KellyFractionField = KELLY_FRACTION
    model_id: str | None = Field(
        default=None,
        max_length=128,
        description="One of the caller's models to record the run against (it then counts for "
        "publishing and in the listing's backtest count); none = a preview, recorded nowhere.",
    )


class DraftBacktestReport(SpanFigures):
    """A draft's backtest (``services.backtests.backtest_draft``)."""

    model_id: str | None = Field(description="The model the run was recorded against, if any.")
    draft: str = Field(description="16 hex digits naming the draft config by its content.")
    recorded_as: str | None = Field(description="The lake key of the recorded run; null for a preview.")


class JobStatus(Disclaimed):
    """A job's state, progress and, once done, its report."""

    job_id: str
    kind: JobKind
    state: JobState = Field(description="`queued`, `running`, `done` or `failed`.")
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description="The job's last sign of life (or its end).")
    attempts: int = Field(description="Workers that took the job up (a lost worker's job is resumed).")
    done: int = Field(description="Units done: game days of a backtest, folds of a tuning run.")
    total: int = Field(description="Units in all (0 until the worker knows).")
    error: str | None = Field(description="Why a failed job failed.")
    report: dict[str, Any] | None = Field(
        description="The report once done: a draft backtest's (as `POST /backtests` answers inline) "
        "or a tuning run's."
    )


class TuneRequest(BaseModel):
    """The span to tune over and how hard to search."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: IsoDate = Field(alias="from", description="First game date (inclusive).")
    end: IsoDate = Field(alias="to", description="Last game date (inclusive).")
    folds: int = Field(default=4, ge=2, le=MAX_FOLDS, description="Walk-forward folds of the span.")
    trials: int = Field(default=200, ge=1, le=MAX_TRIALS, description="Configurations to try.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the random search.")
    version: int | None = Field(default=None, ge=1, description="The version to tune (default: latest).")


def _check_span(start: dt.date, end: dt.date) -> None:
    if end < start or (end - start).days > MAX_SPAN_DAYS:
        raise ApiError(
            422, "invalid_span", f"the span must run forwards and cover at most {MAX_SPAN_DAYS} days"
        )


def _jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


def _accept(
    request: Request, response: Response, idem: Idempotency, user: str, kind: JobKind, params: dict[str, Any]
) -> JSONResponse:
    """Queue a job of the caller's (within their open-job limit) and answer 202."""
    jobs = _jobs(request)
    try:
        open_jobs = jobs.store.open_jobs(user)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if len(open_jobs) >= jobs.limits.open_per_user:
        seconds = int(jobs.limits.heartbeat_seconds)
        raise ApiError(
            429,
            "too_many_jobs",
            f"at most {jobs.limits.open_per_user} jobs queued or running at once; wait for one of "
            f"{', '.join(open_jobs)} to end",
            headers={"Retry-After": str(seconds)},
        )
    job_id = f"job-{os.urandom(JOB_ID_BYTES).hex()}"
    jobs.submit(user, job_id, kind, params)
    accepted = JobAccepted(job_id=job_id, kind=kind, state="queued", status_url=f"/backtests/{job_id}")
    response.status_code = 202
    response.headers["Location"] = accepted.status_url
    idem.answer(accepted)
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.status_url})


@router.post(
    "/backtests",
    response_model=DraftBacktestReport,
    summary="Backtest a draft config (inline up to a season, else as a job)",
    responses=_ACCEPTED | _NO_MODEL | _TOO_MANY | _BAD_USER | ELIGIBILITY_RESPONSES,
)
def backtest_draft_config(
    body: Annotated[DraftBacktestRequest, Body()],
    user: EligibleUser,
    registry: Registry,
    request: Request,
    response: Response,
    now: Now,
    idem: Idempotent,
) -> DraftBacktestReport | Response:
    """Validates `config` exactly as `POST /models` does (422 naming every offending field under
    `body.config`), then replays it over the span with the daily pipeline's engine as if live. Up
    to 366 days answer 200 with the report; a longer span (up to six seasons) answers 202 with a
    job to poll at `GET /backtests/{job_id}`. With `model_id` (one of the caller's models) the run
    is recorded against that model: it counts for publishing and in the listing's backtest count."""
    if idem.replay is not None:
        return idem.replay
    sport = body.sport.value
    if body.config.get("sport", sport) != sport:
        detail = ErrorDetail(
            field="body.sport", message=f"the config's sport is {body.config['sport']!r}", type="sport"
        )
        raise ApiError(422, "validation_error", "invalid request: body.sport", [detail])
    config = validated_new({"sport": sport} | body.config, registry, user, now, at="body.config")
    _check_span(body.start, body.end)
    if body.model_id is not None:
        owned_state(registry, body.model_id, user)
    if (body.end - body.start).days < INLINE_SPAN_DAYS:
        report = backtest_draft(
            registry.lake, config, body.start, body.end, body.model_id, kelly_fraction=body.kelly_fraction
        )
        return idem.answer(DraftBacktestReport.model_validate(report))
    params = {
        "config": config.to_payload(),
        "from": body.start.isoformat(),
        "to": body.end.isoformat(),
        "model_id": body.model_id,
        "kelly_fraction": body.kelly_fraction,
    }
    return _accept(request, response, idem, user, "backtest", params)


JobId = Annotated[str, Path(max_length=64, description="A job id, e.g. `job-3fa9c1d2e4b5a697`.")]


@router.get(
    "/backtests/{job_id}",
    summary="A backtest or tuning job: progress, then its report",
    responses=_NOT_FOUND | ELIGIBILITY_RESPONSES,
)
def backtest_job(job_id: JobId, user: EligibleUser, request: Request) -> JobStatus:
    """The job's state (`queued`, `running`, `done`, `failed`), the days (or folds) done of all, and
    its report once done. A job whose worker stopped is resumed by another (or failed after three
    workers stopped), so a job never stays `running` without progress. Only its owner may read it."""
    try:
        view = _jobs(request).status(user, job_id) if is_job_id(job_id) else None
    except UnusableUserIdError:
        view = None
    if view is None:
        raise ApiError(404, "not_found", f"no job with id {job_id!r}")
    return _status(view)


def _status(view: JobView) -> JobStatus:
    ended = view.result.finished_at if view.result else view.failure.failed_at if view.failure else None
    progress = view.progress
    return JobStatus(
        job_id=view.job_id,
        kind=view.request.kind,
        state=view.state,
        created_at=view.request.created_at,
        updated_at=ended or view.heartbeat,
        attempts=view.attempts,
        done=progress.done if progress else 0,
        total=progress.total if progress else 0,
        error=view.failure.message if view.failure else None,
        report=view.result.report if view.result else None,
    )


ModelId = Annotated[str, Path(max_length=128, description="Model id, e.g. `user123--momentum-3fa9c1`.")]


@router.post(
    "/models/{model_id}/tune",
    status_code=202,
    response_model=JobAccepted,
    summary="Tune a model's source weights and threshold (a job)",
    responses=_NO_MODEL | _TOO_MANY | ELIGIBILITY_RESPONSES,
    tags=["models"],
)
def tune_model(
    model_id: ModelId,
    body: TuneRequest,
    user: EligibleUser,
    registry: Registry,
    request: Request,
    response: Response,
    idem: Idempotent,
) -> JobAccepted | Response:
    """Searches `trials` configurations of the version's source weights and confidence threshold with
    walk-forward validation over `folds` folds of the span (chosen on the earlier folds, reported on
    the next) and answers 202 with a job: its report gives in-sample and out-of-sample accuracy, ROI
    and Brier score, the configurations tried and the best configuration, ready to `PUT`. The run is
    recorded on the model: the listing's backtest count grows by the configurations tried."""
    if idem.replay is not None:
        return idem.replay
    state = owned_state(registry, model_id, user)
    version = body.version or state.latest
    if version not in state.versions:
        raise ApiError(404, "not_found", f"model {model_id!r} has no version {version}")
    _check_span(body.start, body.end)
    config = ModelConfig.model_validate(registry.read(state, version).payload)
    settings = TuneSettings(folds=body.folds, trials=body.trials, seed=body.seed)
    params = {
        "config": config.to_payload(),
        "from": body.start.isoformat(),
        "to": body.end.isoformat(),
        "settings": settings.as_params(),
    }
    return _accept(request, response, idem, user, "tune", params)
