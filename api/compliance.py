"""Who may read picks, and what every answer with picks says (SPEC 9).

Routes that serve picks, results, analyses or model figures, run models or start a subscription take
:data:`EligibleUser` instead of ``CurrentUser``: the caller's token must place them in a region that
is not blocked (else ``451 region_blocked``) and make them at least that region's minimum age (else
``403 age_verification_required``); the region is judged first. Routes that hand out picks, or start
a subscription, take :data:`PicksUser`, which adds the caller's self-exclusion (``403 self_excluded``).
Browsing listings stays open to every authenticated user. Document the answers with
:data:`ELIGIBILITY_RESPONSES` or :data:`PICKS_RESPONSES`.

Answers that carry picks, model figures or listings derive from :class:`Disclaimed`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CurrentUser, token_claims
from api.clock import Now
from api.errors import ApiError, ErrorBody
from api.pagination import Page
from domain.compliance.eligibility import verification_day
from domain.compliance.legal import DISCLAIMER
from domain.compliance.self_exclusion import SelfExclusion, in_force
from domain.models.registry import UnusableUserIdError
from stores.self_exclusions import read_self_exclusions

T = TypeVar("T")


class Disclaimed(BaseModel):
    """An answer with picks, model figures or listings (the disclaimer is always present, so the
    OpenAPI document lists it as required)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    disclaimer: str = Field(
        default=DISCLAIMER, description="Entertainment only; past results do not predict future ones."
    )


class DisclaimedPage(Page[T], Disclaimed, Generic[T]):
    """A page of picks or listings."""


async def eligible_user(request: Request, user: CurrentUser, now: Now) -> str:
    """FastAPI dependency: the caller, if their region and age allow picks; else 451 or 403."""
    claims = token_claims(request)
    policy = request.app.state.settings.region_policy
    refusal = policy.refusal(claims.get("birthdate"), claims.get("region"), verification_day(now))
    if refusal is not None:
        code, message = refusal
        raise ApiError(451 if code == "region_blocked" else 403, code, message)
    return user


EligibleUser = Annotated[str, Depends(eligible_user)]


def current_self_exclusion(request: Request, user: str, now: dt.datetime) -> SelfExclusion | None:
    """The caller's self-exclusion in force now; None when free (or when the id cannot hold one)."""
    try:
        found = read_self_exclusions(request.app.state.lake, user)
    except UnusableUserIdError:
        return None
    return in_force(found, now.astimezone(dt.UTC).date())


def picks_user(request: Request, user: EligibleUser, now: Now) -> str:
    """FastAPI dependency: an :func:`eligible_user` who is not self-excluded; else 403 ``self_excluded``.
    (A sync function: reading the exclusions lists the lake, so FastAPI runs it in the threadpool.)"""
    exclusion = current_self_exclusion(request, user, now)
    if exclusion is not None:
        until = "permanently" if exclusion.end is None else f"until {exclusion.end.isoformat()}"
        message = f"you have excluded yourself from picks and subscriptions {until}"
        raise ApiError(403, "self_excluded", message)
    return user


PicksUser = Annotated[str, Depends(picks_user)]

_BLOCKED = {
    451: {
        "model": ErrorBody,
        "description": "`region_blocked`: the token's `region` is missing or on the operator's blocked list.",
    }
}
ELIGIBILITY_RESPONSES: dict[int | str, dict[str, Any]] = _BLOCKED | {
    403: {
        "model": ErrorBody,
        "description": "`age_verification_required`: the token has no `birthdate` (YYYY-MM-DD), or the "
        "caller is younger than the region's minimum (21 in the US, 18 elsewhere, unless the operator "
        "says otherwise). Checked after the region.",
    }
}
"""OpenAPI entries of a route taking :data:`EligibleUser`."""
PICKS_RESPONSES: dict[int | str, dict[str, Any]] = _BLOCKED | {
    403: {
        "model": ErrorBody,
        "description": "`age_verification_required` (no `birthdate`, or younger than the region's minimum; "
        "checked after the region) or `self_excluded` (the caller's self-exclusion is running).",
    }
}
"""OpenAPI entries of a route taking :data:`PicksUser`."""
