"""Fair cancellation's pure rules: the pro-rata refund by day, the invoices' subscription and period
in both API shapes, which subscriptions a status ends, and the suspension and archive records.

Worked by hand: a 999-cent month of 31 days cancelled 10 days 12 hours in has used 11 started days,
so 20 are refunded: 999 * 20 // 31 = 19,980 // 31 = 644 (644.5 rounded down)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.marketplace.listing import MODEL_STATUS, notifications, status_audit_records
from domain.money.refunds import (
    invoice_service_period,
    invoice_subscription_id,
    subscriptions_to_end,
    unused_refund_cents,
)
from domain.money.subscriptions import SUBSCRIPTIONS
from domain.tables.schemas import conform

START = dt.datetime(2026, 11, 5, 14, 30, tzinfo=dt.UTC)
END = START + dt.timedelta(days=31)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("cancelled_at", "cents"),
    [
        (START - DAY, 999),  # before the period: nothing used
        (START, 999),  # at its start: the first day starts now, so it is unused
        (START + dt.timedelta(seconds=1), 999 * 30 // 31),  # one second uses the first day
        (START + 10 * DAY, 999 * 21 // 31),  # exactly 10 days: the 11th starts now, unused
        (START + 10 * DAY + dt.timedelta(hours=12), 644),
        (END - dt.timedelta(seconds=1), 0),  # the last day has started
        (END, 0),
        (END + DAY, 0),
    ],
)
def test_unused_days_are_refunded_rounded_down(cancelled_at: dt.datetime, cents: int) -> None:
    assert unused_refund_cents(999, START, END, cancelled_at) == cents


def test_a_trial_paid_nothing_and_gets_nothing_back() -> None:
    assert unused_refund_cents(0, START, START + 7 * DAY, START + DAY) == 0


def test_a_short_last_day_counts_as_a_day() -> None:
    """30.5 days are 31 days, the last one of 12 hours."""
    end = START + dt.timedelta(days=30, hours=12)
    assert unused_refund_cents(3_100, START, end, START + 30 * DAY) == 100


def test_an_empty_period_or_negative_amount_is_an_error() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        unused_refund_cents(999, START, START, START)
    with pytest.raises(ValueError, match="negative"):
        unused_refund_cents(-1, START, END, START)


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=1, max_value=400 * 86_400),
    st.integers(min_value=-40 * 86_400, max_value=440 * 86_400),
    st.integers(min_value=0, max_value=86_400),
)
def test_refund_is_within_the_amount_and_never_grows_later(
    amount: int, length: int, at: int, later: int
) -> None:
    end = START + dt.timedelta(seconds=length)
    first = unused_refund_cents(amount, START, end, START + dt.timedelta(seconds=at))
    second = unused_refund_cents(amount, START, end, START + dt.timedelta(seconds=at + later))
    assert 0 <= second <= first <= amount


def _ts(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def test_invoice_subscription_and_period_in_old_and_new_api_shapes() -> None:
    line = {"period": {"start": _ts(START), "end": _ts(END)}}
    old = {"subscription": "sub_1", "period_start": 0, "period_end": 0, "lines": {"data": [line]}}
    new = {
        "parent": {"subscription_details": {"subscription": "sub_2"}},
        "lines": {"data": [line]},
    }
    by_line = {
        "lines": {"data": [line | {"parent": {"subscription_item_details": {"subscription": "sub_3"}}}]}
    }
    assert [invoice_subscription_id(i) for i in (old, new, by_line, {})] == ["sub_1", "sub_2", "sub_3", None]
    assert invoice_service_period(old) == (START, END)
    assert invoice_service_period({"lines": {"data": []}}) is None


def _status(model: str, status: str, price: int = 999, version: int = 2, was: str | None = None) -> dict:
    return {
        "model_id": model,
        "version": version,
        "owner_user_id": "c1",
        "name": f"Model {model}",
        "price_cents": price,
        "status": status,
        "since": START,
        "reason": was or status,
    }


def _sub(sub_id: str, model: str, stripe_status: str, user: str = "u1") -> dict:
    return {
        "subscription_id": sub_id,
        "user_id": user,
        "model_id": model,
        "creator_id": "c1",
        "price_cents": 0 if sub_id.startswith("free:") else 999,
        "stripe_status": stripe_status,
        "status": "active",
    }


def test_only_live_paid_subscriptions_of_suspended_or_archived_models_end() -> None:
    status = conform(
        pl.DataFrame([_status("m1", "suspended"), _status("m2", "archived"), _status("m3", "listed")]),
        MODEL_STATUS,
    )
    subs = conform(
        pl.DataFrame(
            [
                _sub("sub_a", "m1", "active"),
                _sub("sub_b", "m1", "past_due"),
                _sub("sub_c", "m1", "canceled"),
                _sub("sub_d", "m2", "trialing"),
                _sub("sub_e", "m3", "active"),
                _sub("free:u1:m1", "m1", None),
            ]
        ),
        SUBSCRIPTIONS,
    )
    ending = subscriptions_to_end(subs, status)
    assert ending.select("subscription_id", "listing_status", "version").rows() == [
        ("sub_a", "suspended", 2),
        ("sub_b", "suspended", 2),
        ("sub_d", "archived", 2),
    ]
    assert ending["since"].to_list() == [START] * 3
    # A subscription a fair cancellation already ended stays, so a late invoice of it is refunded.
    again = subscriptions_to_end(subs, status, ended_here={"sub_c", "sub_e"})
    assert again["subscription_id"].to_list() == ["sub_a", "sub_b", "sub_c", "sub_d"]


def test_a_suspension_and_an_archive_leave_one_record_and_one_notice_each() -> None:
    previous = conform(
        pl.DataFrame([_status("m1", "listed"), _status("m2", "listed", price=0)]), MODEL_STATUS
    )
    current = conform(
        pl.DataFrame(
            [_status("m1", "suspended", was="3 failing evaluations"), _status("m2", "archived", price=0)]
        ),
        MODEL_STATUS,
    )
    records = status_audit_records(previous, current)
    assert [(r.business_key, r.actor, r.action, r.before) for r in records] == [
        ("model.suspended:m1:v2", "pipeline", "model.suspended", {"status": "listed", "version": 2}),
        ("model.archived:m2", "c1", "model.archived", {"status": "listed", "version": 2}),
    ]
    assert status_audit_records(current, current) == []
    subs = conform(
        pl.DataFrame([_sub("sub_a", "m1", "active"), _sub("free:u2:m2", "m2", None, "u2")]), SUBSCRIPTIONS
    )
    sent = notifications(previous, current, subs, START)
    assert sent.select("user_id", "kind").rows() == [("u2", "archived"), ("u1", "suspended")]
    messages = dict(sent.select("kind", "message").iter_rows())
    assert "unused days of the period refunded" in messages["suspended"]
    assert "refunded" not in messages["archived"]  # a free model has nothing to refund
