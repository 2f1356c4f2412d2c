"""Users' reviews of models (SPEC 6 "Ratings and reviews"): post, edit, list, mark helpful, the
creator's reply, and reports.

Not the operator's review of a paid model (``oddsforge review``): these are subscribers' stars and
words (``domain.marketplace.ratings`` has the rules). Writes are immutable inbox objects
(``stores/ratings.py``) and reads come from the same inbox, so an author sees their review, and a
reporter sees it leave the list, at once, as a creator sees a new model version; the
``user_reviews`` table and the ``model_ratings`` mart (the listing's mean and count) follow through
the ratings inbox sensor. Only reviews visible to everyone are listed: a reported one waits for an
operator (``oddsforge review-reports``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import CurrentUser, current_user
from api.clock import Now
from api.compliance import PICKS_RESPONSES, PicksUser
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.idempotency import Idempotent
from api.pagination import Page, Pagination, decode_cursor, page_of
from api.routes.games import UtcDatetime
from api.visibility import ModelView, access_since, browsable
from domain.marketplace.ratings import (
    MAX_REPLY,
    MAX_REPORT_REASON,
    MAX_STARS,
    MAX_TEXT,
    MIN_STARS,
    ReviewRefusedError,
    UserReview,
    Visibility,
    check_may_review,
    mean_rating,
)
from domain.models.registry import UnusableUserIdError
from stores.ratings import RatingConflictError, RatingStore

router = APIRouter(
    prefix="/models",
    tags=["reviews"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 422, 500)},
)

ModelId = Annotated[str, Path(max_length=128, description="Model id, e.g. `user123--momentum-3fa9c1`.")]
ReviewId = Annotated[
    str, Path(pattern="^[0-9a-f]{16}$", description="A review's id (`review_id` of a listed review).")
]
ReviewSort = Literal["newest", "helpful"]

_NOT_FOUND = {
    404: {
        "model": ErrorBody,
        "description": "No such model (or not one the caller may see), or no such review.",
    }
}
_BAD_USER = {400: {"model": ErrorBody, "description": "The caller's user id cannot write reviews."}}
_CONFLICT = {409: {"model": ErrorBody, "description": "Concurrent edits of the review kept clashing; retry."}}


class ReviewBody(BaseModel):
    stars: int = Field(ge=MIN_STARS, le=MAX_STARS, description="1 to 5 stars.")
    text: str = Field(default="", max_length=MAX_TEXT, description="Up to 2,000 characters.")


class ReplyBody(BaseModel):
    text: str = Field(
        min_length=1, max_length=MAX_REPLY, description="The creator's answer, once per review."
    )


class ReportBody(BaseModel):
    reason: str = Field(
        default="", max_length=MAX_REPORT_REASON, description="What is wrong with the review."
    )


class EarlierText(BaseModel):
    stars: int
    text: str
    at: UtcDatetime


class CreatorReply(BaseModel):
    creator_id: str
    text: str
    at: UtcDatetime


class Review(BaseModel):
    """A user's review of a model as it stands."""

    review_id: str
    model_id: str
    user_id: str = Field(description="The author.")
    stars: int
    text: str
    created_at: UtcDatetime
    edited_at: UtcDatetime | None = Field(description="When the current text replaced an earlier one.")
    history: list[EarlierText] = Field(description="Earlier texts, oldest first (empty if never edited).")
    helpful: int = Field(description="Users who marked it helpful.")
    reply: CreatorReply | None
    visibility: Visibility = Field(description="Listed only while `visible`; `reported` awaits an operator.")


class ReviewsPage(Page[Review]):
    rating_mean: float | None = Field(
        description="Mean stars of the visible reviews (2 decimals); null if none."
    )
    ratings: int = Field(description="Visible reviews.")


class ReportReceipt(BaseModel):
    model_id: str
    review_id: str
    status: Literal["reported"] = Field(
        description="The review is out of the list until an operator decides."
    )


def _store(request: Request) -> RatingStore:
    return request.app.state.ratings


def _out(review: UserReview) -> Review:
    current = review.current
    return Review(
        review_id=review.review_id,
        model_id=review.model_id,
        user_id=review.user_id,
        stars=current.stars,
        text=current.text,
        created_at=review.created_at,
        edited_at=current.at if len(review.texts) > 1 else None,
        history=[EarlierText(stars=t.stars, text=t.text, at=t.at) for t in review.texts[:-1]],
        helpful=len(review.helpful),
        reply=None if review.reply is None else CreatorReply(**vars(review.reply)),
        visibility=review.visibility,
    )


def _stamp(at: dt.datetime) -> str:
    """A time as a cursor string that sorts as the time does."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sort_key(review: UserReview, sort: ReviewSort) -> tuple[str, ...]:
    """Descending order's key as strings (a cursor holds the last one served)."""
    newest = (_stamp(review.created_at), review.review_id)
    return (f"{len(review.helpful):010d}", *newest) if sort == "helpful" else newest


def _unhidden_review(request: Request, model_id: str, review_id: str) -> UserReview:
    """The review if it exists and is not hidden by an operator, else a 404."""
    review = _store(request).get(model_id, review_id)
    if review is None or review.visibility == "hidden":
        raise ApiError(404, "not_found", f"no review {review_id!r} of model {model_id!r}")
    return review


@router.get("/{model_id}/reviews", summary="A model's reviews", responses=_NOT_FOUND)
def list_reviews(
    model_id: ModelId,
    user: CurrentUser,
    request: Request,
    page: Pagination,
    now: Now,
    sort: Annotated[ReviewSort, Query(description="`newest` first, or most `helpful` first.")] = "newest",
) -> ReviewsPage:
    """The visible reviews of a model the caller may browse, with their mean and count. Reported
    reviews are left out until an operator restores them; hidden ones for good."""
    browsable(request, model_id, user, now)
    visible = [r for r in _store(request).of_model(model_id) if r.visibility == "visible"]
    ordered = sorted(visible, key=lambda r: _sort_key(r, sort), reverse=True)
    if page.cursor is not None:
        after = decode_cursor(page.cursor, arity=3 if sort == "helpful" else 2)
        ordered = [r for r in ordered if _sort_key(r, sort) < after]
    listed = page_of(ordered[: page.limit + 1], page.limit, key=lambda r: _sort_key(r, sort))
    mean, count = mean_rating(visible)
    return ReviewsPage(
        items=[_out(r) for r in listed.items],
        next_cursor=listed.next_cursor,
        limit=listed.limit,
        rating_mean=mean,
        ratings=count,
    )


def _reviewable(request: Request, model_id: str, user: str, now: dt.datetime) -> ModelView:
    """The model if the caller may review it (SPEC 6), else 404 or 403 ``review_not_allowed``."""
    view = browsable(request, model_id, user, now)
    try:
        check_may_review(user, view.row["owner_user_id"], access_since(request, user, model_id, now), now)
    except ReviewRefusedError as exc:
        raise ApiError(403, "review_not_allowed", str(exc)) from None
    return view


_REFUSED = {
    403: {
        "model": ErrorBody,
        "description": "`review_not_allowed`: the caller created the model, or has not had access to it "
        "(a subscription with access now, a trial counts) for 7 days; or, as for picks, "
        "`age_verification_required` or `self_excluded`.",
    }
}


@router.post(
    "/{model_id}/reviews",
    status_code=201,
    summary="Review a model",
    responses=PICKS_RESPONSES
    | _REFUSED
    | _NOT_FOUND
    | _BAD_USER
    | {409: {"model": ErrorBody, "description": "`already_reviewed`: edit the review with PUT."}},
)
def post_review(
    model_id: ModelId,
    body: Annotated[ReviewBody, Body()],
    user: PicksUser,
    request: Request,
    now: Now,
    idem: Idempotent,
) -> Review:
    """1 to 5 stars and up to 2,000 characters, once per user and model, by a user who has had
    access to the model for at least 7 days (a trial counts; for a free model, since subscribing),
    never by its creator. Listed at once."""
    if idem.replay is not None:
        return idem.replay
    _reviewable(request, model_id, user, now)
    try:
        review = _store(request).post(model_id, user, body.stars, body.text, now)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if review is None:
        raise ApiError(409, "already_reviewed", f"you reviewed model {model_id!r} already: edit it with PUT")
    return idem.answer(_out(review))


@router.put(
    "/{model_id}/reviews",
    summary="Edit one's review",
    responses=PICKS_RESPONSES | _NOT_FOUND | _BAD_USER | _CONFLICT,
)
def edit_review(
    model_id: ModelId, body: Annotated[ReviewBody, Body()], user: PicksUser, request: Request, now: Now
) -> Review:
    """Replace the stars and text of the caller's review; the earlier text is kept in `history`."""
    browsable(request, model_id, user, now)
    try:
        review = _store(request).edit(model_id, user, body.stars, body.text, now)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except RatingConflictError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    if review is None:
        raise ApiError(404, "not_found", f"you have not reviewed model {model_id!r}: POST a review first")
    return _out(review)


_ONCE = {200: {"description": "Done before by the caller: nothing changed."}}


@router.post(
    "/{model_id}/reviews/{review_id}/helpful",
    status_code=201,
    summary="Mark a review helpful",
    responses=PICKS_RESPONSES
    | _NOT_FOUND
    | _BAD_USER
    | _ONCE
    | {403: {"model": ErrorBody, "description": "Authors do not vote on their own review; or as for picks."}},
)
def mark_helpful(
    model_id: ModelId,
    review_id: ReviewId,
    user: PicksUser,
    request: Request,
    response: Response,
    now: Now,
    idem: Idempotent,
) -> Review:
    """One vote per user and review; voting again changes nothing (200)."""
    if idem.replay is not None:
        return idem.replay
    browsable(request, model_id, user, now)
    review = _unhidden_review(request, model_id, review_id)
    if review.user_id == user:
        raise ApiError(403, "forbidden", "authors do not vote on their own review")
    try:
        voted = _store(request).vote(review, user, now)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if not voted:
        response.status_code = 200
    return idem.answer(_out(_unhidden_review(request, model_id, review_id)))


@router.post(
    "/{model_id}/reviews/{review_id}/reply",
    status_code=201,
    summary="Reply to a review of one's model",
    responses=_NOT_FOUND
    | {
        403: {"model": ErrorBody, "description": "Only the model's creator replies."},
        409: {"model": ErrorBody, "description": "`already_replied`: one reply per review."},
    },
)
def reply_to_review(
    model_id: ModelId,
    review_id: ReviewId,
    body: Annotated[ReplyBody, Body()],
    user: CurrentUser,
    request: Request,
    now: Now,
    idem: Idempotent,
) -> Review:
    """The model's creator answers a review, once."""
    if idem.replay is not None:
        return idem.replay
    view = browsable(request, model_id, user, now)
    if view.row["owner_user_id"] != user:
        raise ApiError(403, "forbidden", "only the model's creator replies to its reviews")
    review = _unhidden_review(request, model_id, review_id)
    if not _store(request).reply(review, user, body.text, now):
        raise ApiError(409, "already_replied", f"review {review_id!r} has a reply already")
    return idem.answer(_out(_unhidden_review(request, model_id, review_id)))


@router.post(
    "/{model_id}/reviews/{review_id}/report",
    status_code=201,
    summary="Report a review",
    responses=_NOT_FOUND | _BAD_USER | _ONCE,
)
def report_review(
    model_id: ModelId,
    review_id: ReviewId,
    body: Annotated[ReportBody, Body()],
    user: CurrentUser,
    request: Request,
    response: Response,
    now: Now,
    idem: Idempotent,
) -> ReportReceipt:
    """Any user may report a review: it leaves the list (and the rating) until an operator decides
    (`oddsforge review-reports`). Reporting again changes nothing (200)."""
    if idem.replay is not None:
        return idem.replay
    browsable(request, model_id, user, now)
    review = _unhidden_review(request, model_id, review_id)
    try:
        reported = _store(request).report(review, user, body.reason, now)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if not reported:
        response.status_code = 200
    return idem.answer(ReportReceipt(model_id=model_id, review_id=review_id, status="reported"))
