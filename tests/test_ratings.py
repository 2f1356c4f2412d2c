"""Users' reviews of models: the rules (who may review, what a report hides until an operator
decides) on hand-made cases, and the store's objects on a real local lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from domain.marketplace.ratings import (
    USER_REVIEWS,
    ReviewRefusedError,
    check_may_review,
    mean_rating,
    replace_reviews,
    review_id,
    review_rows,
)
from stores.audit import read_audit
from stores.lake import Lake
from stores.layout import parse_rating_key, rating_key
from stores.ratings import ModerationError, RatingStore, moderate, reported_reviews

MODEL = "carol--rotation-abcdef"
T0 = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_a_review_needs_seven_days_of_access_that_still_holds_and_never_the_creator() -> None:
    check_may_review("dave", "carol", T0 - 7 * DAY, T0)  # exactly seven days
    check_may_review("dave", "carol", T0 - 30 * DAY, T0)
    refusals = [
        ("dave", T0 - 7 * DAY + dt.timedelta(seconds=1), "7 days"),
        ("dave", T0 - 3 * DAY, r"review from 2026-02-05T12:00:00\+00:00"),
        ("dave", None, "only subscribers"),
        ("carol", T0 - 90 * DAY, "creators do not review"),
    ]
    for user, since, message in refusals:
        with pytest.raises(ReviewRefusedError, match=message):
            check_may_review(user, "carol", since, T0)


def test_review_ids_are_per_user_and_model_and_keys_read_back() -> None:
    rid = review_id(MODEL, "dave")
    assert rid == review_id(MODEL, "dave") != review_id(MODEL, "erin") != review_id("x--m-abcdef", "dave")
    assert len(rid) == 16
    for record, n, user in [("text", 2, ""), ("reply", 0, ""), ("helpful", 0, "zoe"), ("report", 0, "zoe")]:
        parsed = parse_rating_key(rating_key(MODEL, rid, record, n, user))  # type: ignore[arg-type]
        assert parsed is not None and (parsed.model_id, parsed.review_id, parsed.record) == (
            MODEL,
            rid,
            record,
        )
    with pytest.raises(ValueError):
        rating_key(MODEL, "../../tables/x", "text", 1)
    with pytest.raises(ValueError):
        rating_key(MODEL, rid, "report", user_id="../bob")


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


def test_one_review_per_user_and_edits_keep_every_earlier_text(lake: Lake) -> None:
    store = RatingStore(lake)
    first = store.post(MODEL, "dave", 4, "steady", T0)
    assert first is not None and first.current.stars == 4 and first.visibility == "visible"
    assert store.post(MODEL, "dave", 1, "again", T0 + DAY) is None
    edited = store.edit(MODEL, "dave", 2, "cooled off", T0 + 2 * DAY)
    assert edited is not None
    assert [(t.stars, t.text) for t in edited.texts] == [(4, "steady"), (2, "cooled off")]
    assert (edited.created_at, edited.current.at) == (T0, T0 + 2 * DAY)
    assert store.edit(MODEL, "erin", 3, "none yet", T0) is None


def test_a_report_hides_a_review_until_an_operator_decides_and_each_decision_is_audited(lake: Lake) -> None:
    store = RatingStore(lake)
    review = store.post(MODEL, "dave", 5, "great", T0)
    assert review is not None
    assert store.report(review, "zoe", "spam", T0 + DAY) and not store.report(review, "zoe", "again", T0)
    reported = store.get(MODEL, review.review_id)
    assert reported is not None and reported.visibility == "reported"
    assert [r.review_id for r in reported_reviews(lake)] == [review.review_id]
    assert mean_rating([reported]) == (None, 0)  # a reported review is out of the rating too

    with pytest.raises(ModerationError, match="no review"):
        moderate(lake, MODEL, "0" * 16, "restore", "", "ops", T0)
    _, restored = moderate(lake, MODEL, review.review_id, "restore", "fair", "ops", T0 + 2 * DAY)
    assert restored.reporters == ("zoe",)
    back = store.get(MODEL, review.review_id)
    assert back is not None and back.visibility == "visible" and reported_reviews(lake) == []
    with pytest.raises(ModerationError, match="nothing to restore"):
        moderate(lake, MODEL, review.review_id, "restore", "", "ops", T0)

    # Another user's report hides it again; hiding keeps it out whatever comes later.
    assert store.report(back, "yan", "rude", T0 + 3 * DAY)
    moderate(lake, MODEL, review.review_id, "hide", "rude", "ops", T0 + 4 * DAY)
    hidden = store.get(MODEL, review.review_id)
    assert hidden is not None and hidden.visibility == "hidden"
    assert reported_reviews(lake) == [] and len(reported_reviews(lake, include_hidden=True)) == 1

    audit = read_audit(lake).filter(pl.col("object_type") == "user_review")
    assert audit.select("actor", "action").rows() == [
        ("operator:ops", "user_review.restored"),
        ("operator:ops", "user_review.hidden"),
    ]
    assert audit["object_id"].unique().to_list() == [f"{MODEL}/{review.review_id}"]


def test_the_table_folds_reviews_incrementally_exactly_as_a_rebuild(lake: Lake) -> None:
    store = RatingStore(lake)
    dave = store.post(MODEL, "dave", 4, "ok", T0)
    erin = store.post(MODEL, "erin", 2, "meh", T0)
    assert dave is not None and erin is not None
    before = review_rows(store.every())
    assert store.vote(dave, "zoe", T0) and not store.vote(dave, "zoe", T0)
    assert store.reply(erin, "carol", "thanks", T0) and not store.reply(erin, "carol", "twice", T0)
    store.edit(MODEL, "dave", 5, "better", T0 + DAY)
    changed = [rating_key(MODEL, dave.review_id, "helpful", user_id="zoe")]
    folded = replace_reviews(before, review_rows(store.read(changed)))
    folded = replace_reviews(folded, review_rows(store.read([rating_key(MODEL, erin.review_id, "reply")])))
    rebuilt = review_rows(store.every())
    assert folded.equals(rebuilt) and folded.schema == pl.Schema(USER_REVIEWS)
    rows = {r["user_id"]: r for r in rebuilt.iter_rows(named=True)}
    assert (rows["dave"]["stars"], rows["dave"]["edits"], rows["dave"]["helpful"]) == (5, 1, 1)
    assert (rows["erin"]["reply"], rows["erin"]["edited_at"]) == ("thanks", None)
    assert mean_rating(store.of_model(MODEL)) == (3.5, 2)
