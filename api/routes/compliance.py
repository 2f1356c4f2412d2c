"""Trust and compliance (SPEC 9): ``GET /legal`` for everyone, and the caller's self-exclusion.

A self-exclusion is stored before anything else happens, so it applies from the answer on; the
caller's paid subscriptions are then set to cancel at the end of their periods through Stripe
(``services/self_exclusion.py``). It cannot be lifted, and a shorter one than the exclusion in force
is refused (409), so it cannot be shortened either.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field

from api.auth import CurrentUser, current_user
from api.clock import Now
from api.compliance import current_self_exclusion
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.payments import get_payments, stripe_reachable
from api.visibility import snapshot_rows
from domain.compliance.eligibility import DEFAULT_MINIMUM_AGE, US_MINIMUM_AGE
from domain.compliance.legal import DISCLAIMER, DISCLAIMERS, HELP_LINES
from domain.compliance.self_exclusion import Period, SelfExclusion
from domain.models.registry import UnusableUserIdError
from services.paid_subscriptions import checkout_subscription_ids, has_checkouts
from services.self_exclusion import (
    ExclusionWouldShortenError,
    exclude,
    stop_renewals,
)

legal_router = APIRouter(tags=["compliance"], responses={500: ERROR_RESPONSES[500]})
router = APIRouter(
    prefix="/me",
    tags=["compliance"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 422, 500)},
)


class HelpLine(BaseModel):
    country: str = Field(description="ISO 3166-1 alpha-2 code of where the line answers.")
    name: str
    phone: str


class TermsVersions(BaseModel):
    user: str = Field(description="The user terms in force (`ODDSFORGE_USER_TERMS_VERSION`).")
    creator: str = Field(description="The creator terms in force (`ODDSFORGE_CREATOR_TERMS_VERSION`).")


class AgeRules(BaseModel):
    us_minimum_age: int = Field(description="The minimum age in US regions unless overridden.")
    default_minimum_age: int = Field(description="The minimum age elsewhere unless overridden.")
    overrides: dict[str, int] = Field(description="The operator's minimum age by region or country.")
    blocked_regions: list[str] = Field(description="Regions and countries where picks are not served.")


class Legal(BaseModel):
    disclaimer: str = Field(description="The text every answer with picks, figures or listings carries.")
    disclaimers: list[str]
    responsible_gambling: list[HelpLine]
    terms: TermsVersions
    eligibility: AgeRules


@legal_router.get("/legal", summary="Disclaimers, responsible-gambling help and the terms in force")
async def legal(request: Request) -> Legal:
    """Public: what OddsForge's picks are (and are not), where to find help with gambling, which
    terms versions are current, and who may read picks (age and region)."""
    settings = request.app.state.settings
    policy = settings.region_policy
    return Legal(
        disclaimer=DISCLAIMER,
        disclaimers=list(DISCLAIMERS),
        responsible_gambling=[HelpLine(country=c, name=n, phone=p) for c, n, p in HELP_LINES],
        terms=TermsVersions(user=settings.user_terms_version, creator=settings.creator_terms_version),
        eligibility=AgeRules(
            us_minimum_age=US_MINIMUM_AGE,
            default_minimum_age=DEFAULT_MINIMUM_AGE,
            overrides=dict(sorted(policy.minimum_ages.items())),
            blocked_regions=sorted(policy.blocked),
        ),
    )


class SelfExclusionRequest(BaseModel):
    period: Period = Field(description="`30d`, `6m`, `1y` or `permanent`.")


class SelfExclusionState(BaseModel):
    excluded: bool = Field(description="An exclusion is running: no picks and no new subscriptions.")
    period: Period | None = Field(description="The period asked for by the exclusion in force.")
    start_date: dt.date | None = Field(description="The day (UTC) the exclusion in force began.")
    end_date: dt.date | None = Field(
        description="The first day (UTC) it no longer applies; null when permanent or not excluded."
    )
    permanent: bool


def _state(exclusion: SelfExclusion | None) -> SelfExclusionState:
    if exclusion is None:
        return SelfExclusionState(
            excluded=False, period=None, start_date=None, end_date=None, permanent=False
        )
    return SelfExclusionState(
        excluded=True,
        period=exclusion.period,
        start_date=exclusion.start,
        end_date=exclusion.end,
        permanent=exclusion.end is None,
    )


def _stop_renewals(request: Request, user: str, exclusion: SelfExclusion) -> None:
    """Set the caller's paid subscriptions to cancel at period end: those their checkouts started and
    those the pipeline knows from Stripe's events and does not know to have ended. Stripe is called
    only when there are some."""
    known = snapshot_rows(
        request.app.state.store,
        "SELECT subscription_id FROM subscriptions WHERE user_id = ? AND NOT terminal "
        "AND NOT starts_with(subscription_id, 'free:')",
        [user],
    )
    lake = request.app.state.lake
    if not known and not has_checkouts(lake, user):
        return
    payments = get_payments(request)
    with stripe_reachable():
        started = checkout_subscription_ids(lake, payments, user)
        stop_renewals(payments, [*started, *(r["subscription_id"] for r in known)], exclusion)


@router.post(
    "/self-exclusion",
    status_code=201,
    summary="Exclude oneself from picks and subscriptions",
    responses={
        200: {
            "model": SelfExclusionState,
            "description": "The same exclusion was already asked for today: it stands, unchanged.",
        },
        400: {"model": ErrorBody, "description": "The caller's user id cannot hold a self-exclusion."},
        409: {
            "model": ErrorBody,
            "description": "`self_exclusion_active`: an exclusion ending later is already running; "
            "exclusions can be extended, never shortened.",
        },
        503: {
            "model": ErrorBody,
            "description": "The exclusion is stored and applies, but Stripe is not configured "
            "(`payments_not_configured`) or cannot be reached (`payments_unavailable`) to stop the "
            "caller's paid subscriptions from renewing: retry the same request to finish.",
        },
    },
)
def start_self_exclusion(
    body: Annotated[SelfExclusionRequest, Body()],
    user: CurrentUser,
    request: Request,
    response: Response,
    now: Now,
) -> SelfExclusionState:
    """From today (UTC) for the period: no picks, results or analyses and no new subscriptions (403
    `self_excluded`); every paid subscription is set to cancel at the end of its period. It cannot be
    lifted early. A longer exclusion than the one running extends it; a shorter one is refused."""
    try:
        outcome = exclude(request.app.state.lake, user, body.period, now)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except ExclusionWouldShortenError as exc:
        raise ApiError(409, "self_exclusion_active", str(exc)) from None
    _stop_renewals(request, user, outcome.exclusion)
    response.status_code = 201 if outcome.created else 200
    return _state(outcome.exclusion)


@router.get("/self-exclusion", summary="The caller's self-exclusion")
def get_self_exclusion(user: CurrentUser, request: Request, now: Now) -> SelfExclusionState:
    """The exclusion in force now, if any."""
    return _state(current_self_exclusion(request, user, now))
