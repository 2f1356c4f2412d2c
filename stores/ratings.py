"""Users' reviews (ratings) of models in the inbox: one folder per review,
``inbox/ratings/{model_id}/{review_id}/`` (``stores/layout.py``), every object written once.

A review's texts are numbered objects (``v000001`` posted, later ones edits), so an edit never
rewrites the earlier text, and of two concurrent edits exactly one takes each number. The creator's
reply, each user's helpful vote and each user's report are single objects named after who wrote
them, created if absent: a second reply, vote or report by the same user finds it there. Operators'
decisions (``oddsforge review-reports hide|restore``) are numbered objects too, each naming the
reports it decides, and each appends an audit record first (as ``stores.reviews`` does for paid-model
reviews), keyed by the review and decision number, so a retried decision records once.

The API reads a model's reviews here (read-your-writes, like model versions and free
subscriptions; one store per app, which keeps the objects it parsed); the ``user_reviews`` asset
folds the same objects into a table for the marts.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from domain.compliance.audit import AuditRecord
from domain.errors import UserError
from domain.marketplace.ratings import (
    Moderation,
    ModerationDecision,
    Reply,
    Report,
    ReviewText,
    UserReview,
    review_id,
)
from stores.audit import append
from stores.lake import Lake
from stores.layout import (
    RATINGS_INBOX,
    RatingKey,
    parse_rating_key,
    rating_key,
    rating_prefix,
    ratings_prefix,
)

_READ_THREADS = 16
_ATTEMPTS = 5
CACHED_OBJECTS = 100_000
"""Parsed review objects a store keeps: every object is written once and never changed, so a parsed
one stays exact, and a model's page then costs one listing plus the objects new since the last."""


class RatingConflictError(RuntimeError):
    """Concurrent edits kept winning the next text number."""


def _at(doc: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(doc["at"])


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def _review(model_id: str, rid: str, objects: list[tuple[RatingKey, dict[str, Any]]]) -> UserReview | None:
    """The review made of its stored objects; None while it has no text (a vote cannot make one)."""
    texts, votes, reports, decisions, reply = [], set(), [], [], None
    user_id = ""
    for key, doc in objects:
        if key.record == "text":
            texts.append((key.n, ReviewText(doc["stars"], doc["text"], _at(doc))))
            user_id = doc["user_id"]
        elif key.record == "reply":
            reply = Reply(doc["creator_id"], doc["text"], _at(doc))
        elif key.record == "helpful":
            votes.add(doc["user_id"])
        elif key.record == "report":
            reports.append(Report(doc["user_id"], doc["reason"], _at(doc)))
        else:
            decisions.append(
                Moderation(
                    key.n or 0,
                    doc["decision"],
                    doc["reason"],
                    doc["operator"],
                    _at(doc),
                    tuple(doc["reporters"]),
                )
            )
    if not texts:
        return None
    return UserReview(
        model_id=model_id,
        review_id=rid,
        user_id=user_id,
        texts=tuple(t for _, t in sorted(texts, key=lambda pair: pair[0] or 0)),
        reply=reply,
        helpful=frozenset(votes),
        reports=tuple(sorted(reports, key=lambda r: (r.at, r.user_id))),
        decisions=tuple(sorted(decisions, key=lambda d: d.n)),
    )


class RatingStore:
    """Users' reviews in the inbox of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._parsed: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _doc(self, key: str) -> dict[str, Any]:
        with self._lock:
            if (found := self._parsed.get(key)) is not None:
                self._parsed.move_to_end(key)
                return found
        doc = json.loads(self.lake.get_bytes(key))
        with self._lock:
            self._parsed[key] = doc
            if len(self._parsed) > CACHED_OBJECTS:
                self._parsed.popitem(last=False)
        return doc

    # -- reads ------------------------------------------------------------------------------------
    def read(self, keys: Iterable[str]) -> list[UserReview]:
        """The reviews that ``keys`` (any of their objects) belong to, read whole from their objects,
        by model and review id; keys that are not review objects are ignored."""
        folders = sorted({(p.model_id, p.review_id) for k in keys if (p := parse_rating_key(k))})
        listed = [k for m, r in folders for k in self.lake.list_keys(rating_prefix(m, r))]
        return self._fold(listed)

    def _fold(self, keys: list[str]) -> list[UserReview]:
        parsed = [(p, k) for k in keys if (p := parse_rating_key(k)) is not None]
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            docs = list(pool.map(self._doc, [key for _, key in parsed]))
        grouped: dict[tuple[str, str], list[tuple[RatingKey, dict[str, Any]]]] = defaultdict(list)
        for (key, _), doc in zip(parsed, docs, strict=True):
            grouped[(key.model_id, key.review_id)].append((key, doc))
        found = (_review(m, r, objects) for (m, r), objects in sorted(grouped.items()))
        return [review for review in found if review is not None]

    def of_model(self, model_id: str) -> list[UserReview]:
        """Every review of ``model_id``, whatever its visibility (one listing of its folder)."""
        return self._fold(list(self.lake.list_keys(ratings_prefix(model_id))))

    def get(self, model_id: str, rid: str) -> UserReview | None:
        return next(iter(self._fold(list(self.lake.list_keys(rating_prefix(model_id, rid))))), None)

    def of_user(self, model_id: str, user_id: str) -> UserReview | None:
        """``user_id``'s review of ``model_id``, if they wrote one."""
        return self.get(model_id, review_id(model_id, user_id))

    def objects(self) -> Iterator[tuple[str, float]]:
        """``(key, modification time)`` of every review object: what the ratings inbox sensor watches."""
        return ((k, t) for k, t in self.lake.list_objects(RATINGS_INBOX) if parse_rating_key(k) is not None)

    def every(self) -> list[UserReview]:
        """Every review in the inbox (a full rebuild, the operators' list)."""
        return self._fold([k for k, _ in self.objects()])

    # -- writes (create-if-absent only) -----------------------------------------------------------
    def _put_text(self, model_id: str, user_id: str, n: int, stars: int, text: str, now: dt.datetime) -> bool:
        rid = review_id(model_id, user_id)
        doc = {"user_id": user_id, "stars": stars, "text": text, "at": now.isoformat()}
        return self.lake.put_new(rating_key(model_id, rid, "text", n), _dump(doc))

    def post(self, model_id: str, user_id: str, stars: int, text: str, now: dt.datetime) -> UserReview | None:
        """Store ``user_id``'s review of ``model_id``; None when they already reviewed it."""
        if not self._put_text(model_id, user_id, 1, stars, text, now):
            return None
        return self.of_user(model_id, user_id)

    def edit(self, model_id: str, user_id: str, stars: int, text: str, now: dt.datetime) -> UserReview | None:
        """Add a new text to ``user_id``'s review (the earlier ones stay); None without a review."""
        for _ in range(_ATTEMPTS):
            current = self.of_user(model_id, user_id)
            if current is None:
                return None
            if self._put_text(model_id, user_id, len(current.texts) + 1, stars, text, now):
                return self.of_user(model_id, user_id)
        raise RatingConflictError(f"the review of {model_id!r} by {user_id!r} keeps changing; retry")

    def reply(self, review: UserReview, creator_id: str, text: str, now: dt.datetime) -> bool:
        """Store the creator's reply; False when the review has one already."""
        doc = {"creator_id": creator_id, "text": text, "at": now.isoformat()}
        return self.lake.put_new(rating_key(review.model_id, review.review_id, "reply"), _dump(doc))

    def vote(self, review: UserReview, user_id: str, now: dt.datetime) -> bool:
        """Store ``user_id``'s helpful vote; False when they voted already."""
        key = rating_key(review.model_id, review.review_id, "helpful", user_id=user_id)
        return self.lake.put_new(key, _dump({"user_id": user_id, "at": now.isoformat()}))

    def report(self, review: UserReview, user_id: str, reason: str, now: dt.datetime) -> bool:
        """Store ``user_id``'s report; False when they reported it already."""
        key = rating_key(review.model_id, review.review_id, "report", user_id=user_id)
        return self.lake.put_new(key, _dump({"user_id": user_id, "reason": reason, "at": now.isoformat()}))

    def moderate(
        self, review: UserReview, decision: ModerationDecision, reason: str, operator: str, now: dt.datetime
    ) -> Moderation:
        """Record an operator's decision on ``review`` covering every report made so far, its audit
        record first; raises :class:`RatingConflictError` if another decision took its number."""
        decided = Moderation(
            n=len(review.decisions) + 1,
            decision=decision,
            reason=reason,
            operator=operator,
            at=now,
            reporters=tuple(r.user_id for r in review.reports),
        )
        append(self.lake, moderation_audit_record(review, decided))
        doc = {
            "decision": decision,
            "reason": reason,
            "operator": operator,
            "at": now.isoformat(),
            "reporters": list(decided.reporters),
        }
        if not self.lake.put_new(
            rating_key(review.model_id, review.review_id, "decision", decided.n), _dump(doc)
        ):
            raise RatingConflictError(
                f"another decision on review {review.review_id} was just recorded; retry"
            )
        return decided


def moderation_audit_record(review: UserReview, decision: Moderation) -> AuditRecord:
    """The audit record of an operator's ``decision`` on ``review`` (its state before and after)."""

    def state(visibility: str, pending: int) -> dict[str, Any]:
        return {"visibility": visibility, "pending_reports": pending}

    after = "hidden" if decision.decision == "hide" else "visible"
    return AuditRecord(
        business_key=f"user_review:{review.model_id}:{review.review_id}:decision:{decision.n}",
        acted_at=decision.at,
        actor=f"operator:{decision.operator}",
        action="user_review.hidden" if decision.decision == "hide" else "user_review.restored",
        object_type="user_review",
        object_id=f"{review.model_id}/{review.review_id}",
        before=state(review.visibility, len(review.pending_reports)),
        after=state(after, 0) | {"reason": decision.reason, "reports": list(decision.reporters)},
    )


class ModerationError(UserError):
    """No such review, or nothing for the decision to change."""


def reported_reviews(lake: Lake, include_hidden: bool = False) -> list[UserReview]:
    """Reviews awaiting an operator (reported), and with ``include_hidden`` those hidden too."""
    wanted = {"reported", "hidden"} if include_hidden else {"reported"}
    return [r for r in RatingStore(lake).every() if r.visibility in wanted]


def moderate(
    lake: Lake,
    model_id: str,
    rid: str,
    decision: ModerationDecision,
    reason: str,
    operator: str,
    now: dt.datetime,
) -> tuple[UserReview, Moderation]:
    """An operator hides or restores a review (``oddsforge review-reports``); the review as it was
    and the decision. Restoring a visible review, or hiding a hidden one no one reported since, is
    an error: there is nothing to decide."""
    try:
        review = RatingStore(lake).get(model_id, rid)
    except ValueError:  # not a model or review id
        review = None
    if review is None:
        raise ModerationError(f"no review {rid!r} of model {model_id!r}")
    if decision == "restore" and review.visibility == "visible":
        raise ModerationError(f"review {rid} is visible: nothing to restore")
    if decision == "hide" and review.visibility == "hidden" and not review.pending_reports:
        raise ModerationError(f"review {rid} is hidden already")
    return review, RatingStore(lake).moderate(review, decision, reason, operator, now)
