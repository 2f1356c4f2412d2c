"""Subscribers' ratings and reviews of models (SPEC 6, seed "Quality Control"). Pure.

Not the operator's *review* of a paid model before it is listed (``domain.marketplace.listing``,
``oddsforge review``): these are users' stars and words, called *user reviews* wherever the two could
be confused.

- 1 to 5 stars and up to 2,000 characters of text; one review per user and model, edited in place
  (every earlier text is kept: a review is the sequence of its texts, the last one counts).
- The author must have had access to the model for at least 7 days: a subscription that gives access
  now (trial, active, past_due in its grace; a free subscription to a free model) and began at least
  7 days ago (a trial's start counts). Never the model's creator.
- The creator may reply once per review; any user marks a review helpful once.
- Any user may report a review: it leaves the list (and the rating) until an operator decides. An
  operator's decision covers the reports made before it: ``hide`` keeps the review out for good,
  ``restore`` brings it back; a later report by another user hides it again until the next decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from domain.tables.schemas import UTC_TS

MIN_STARS = 1
MAX_STARS = 5
MAX_TEXT = 2_000
"""Characters of a review's text (SPEC 6)."""
MAX_REPLY = 2_000
MAX_REPORT_REASON = 500
MIN_ACCESS = dt.timedelta(days=7)
"""How long an author must have had access to the model (SPEC 6)."""

ModerationDecision = Literal["hide", "restore"]
Visibility = Literal["visible", "reported", "hidden"]
"""``reported``: a report awaits an operator; ``hidden``: an operator hid it. Only visible reviews
are listed and rated."""


def review_id(model_id: str, user_id: str) -> str:
    """The id of ``user_id``'s review of ``model_id``: one review per user and model, so the id is a
    digest of the pair (16 hex digits; it names the review without spelling the pair out)."""
    return hashlib.sha256(f"{model_id}\n{user_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ReviewText:
    """One text of a review: the first as posted, later ones as edited."""

    stars: int
    text: str
    at: dt.datetime


@dataclass(frozen=True)
class Reply:
    creator_id: str
    text: str
    at: dt.datetime


@dataclass(frozen=True)
class Report:
    user_id: str
    reason: str
    at: dt.datetime


@dataclass(frozen=True)
class Moderation:
    """An operator's decision ``n`` on a review, covering the reports of ``reporters``."""

    n: int
    decision: ModerationDecision
    reason: str
    operator: str
    at: dt.datetime
    reporters: tuple[str, ...]


@dataclass(frozen=True)
class UserReview:
    """A review as its stored objects make it."""

    model_id: str
    review_id: str
    user_id: str
    texts: tuple[ReviewText, ...]
    """Oldest first; never empty."""
    reply: Reply | None = None
    helpful: frozenset[str] = frozenset()
    """Users who found it helpful."""
    reports: tuple[Report, ...] = ()
    decisions: tuple[Moderation, ...] = ()
    """Oldest first."""

    @property
    def current(self) -> ReviewText:
        return self.texts[-1]

    @property
    def created_at(self) -> dt.datetime:
        return self.texts[0].at

    @property
    def pending_reports(self) -> tuple[Report, ...]:
        """Reports no operator has decided on yet."""
        decided = {user for d in self.decisions for user in d.reporters}
        return tuple(r for r in self.reports if r.user_id not in decided)

    @property
    def visibility(self) -> Visibility:
        if self.decisions and self.decisions[-1].decision == "hide":
            return "hidden"
        return "reported" if self.pending_reports else "visible"


class ReviewRefusedError(Exception):
    """The caller may not review this model (the message says why)."""


def check_may_review(
    user_id: str, creator_id: str, access_since: dt.datetime | None, now: dt.datetime
) -> None:
    """Raise :class:`ReviewRefusedError` unless ``user_id`` may review a model of ``creator_id``:
    never its creator, and only after :data:`MIN_ACCESS` of access that still holds now
    (``access_since``: when the caller's current access began; None without access)."""
    if user_id == creator_id:
        raise ReviewRefusedError("creators do not review their own models")
    if access_since is None:
        raise ReviewRefusedError(
            "only subscribers review a model: subscribe (a trial counts) and review after 7 days"
        )
    if now - access_since < MIN_ACCESS:
        ready = (access_since + MIN_ACCESS).isoformat(timespec="seconds")
        raise ReviewRefusedError(
            f"reviews need 7 days of access to the model; yours began "
            f"{access_since.isoformat(timespec='seconds')}: review from {ready}"
        )


USER_REVIEWS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "review_id": pl.String(),
    "user_id": pl.String(),
    "stars": pl.Int8(),
    "text": pl.String(),
    "created_at": UTC_TS,
    "edited_at": UTC_TS,
    "edits": pl.Int32(),
    "helpful": pl.Int32(),
    "reply": pl.String(),
    "replied_at": UTC_TS,
    "pending_reports": pl.Int32(),
    "visibility": pl.String(),
}
"""The ``user_reviews`` table: one row per review as it stands (its latest text; ``edited_at`` null
when never edited, ``edits`` the number of earlier texts kept). The ``model_ratings`` mart averages
the visible ones."""


def review_rows(reviews: Iterable[UserReview]) -> pl.DataFrame:
    """:data:`USER_REVIEWS` rows of ``reviews``, by model and review id."""
    rows = [
        {
            "model_id": r.model_id,
            "review_id": r.review_id,
            "user_id": r.user_id,
            "stars": r.current.stars,
            "text": r.current.text,
            "created_at": r.created_at,
            "edited_at": r.current.at if len(r.texts) > 1 else None,
            "edits": len(r.texts) - 1,
            "helpful": len(r.helpful),
            "reply": None if r.reply is None else r.reply.text,
            "replied_at": None if r.reply is None else r.reply.at,
            "pending_reports": len(r.pending_reports),
            "visibility": r.visibility,
        }
        for r in reviews
    ]
    return pl.DataFrame(rows, schema=USER_REVIEWS).sort("model_id", "review_id")


def replace_reviews(previous: pl.DataFrame, fresh: pl.DataFrame) -> pl.DataFrame:
    """``previous`` with the reviews in ``fresh`` (read again whole from all their objects) replacing
    their old rows: an incremental fold that is exact, since a review's objects are only ever added."""
    kept = previous.join(fresh, on=["model_id", "review_id"], how="anti")
    return pl.concat([kept, fresh.select(list(USER_REVIEWS))]).sort("model_id", "review_id")


def mean_rating(reviews: Iterable[UserReview]) -> tuple[float | None, int]:
    """The mean stars (2 decimals) and count of the visible reviews: what the listing shows (the
    ``model_ratings`` mart computes the same in SQL)."""
    stars = [r.current.stars for r in reviews if r.visibility == "visible"]
    return (round(sum(stars) / len(stars), 2) if stars else None), len(stars)
