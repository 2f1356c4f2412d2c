"""The money core: revenue split, ledger postings from Stripe events, payouts, subscription status.

Amounts are worked by hand: an invoice of 999 cents gives the creator 999 * 70 // 100 = 699 and the
platform 300; 10,000 gives 7,000 / 3,000; 7,142 gives 4,999 (one cent under the $50 minimum).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money.ledger import (
    CLEARING,
    LEDGER,
    PLATFORM,
    TRANSFERS,
    LedgerIndex,
    UnpostableEvent,
    balances,
    empty_ledger,
    entries_for_event,
    invoice_owner,
    post,
    post_events,
    split,
    to_frame,
    unbalanced,
)
from domain.money.payouts import (
    PAYOUTS,
    PayoutPlan,
    month_bounds,
    payout_entries,
    payouts_frame,
    plan_payouts,
)
from domain.money.subscriptions import (
    PAST_DUE_GRACE,
    status_of,
    subscription_metadata,
    subscription_states,
    with_access,
)

UTC = dt.UTC
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "stripe" / "fixtures3.json"


def ts(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{kind.replace('.', '_')}_{obj['id']}_{created}",
        "object": "event",
        "type": kind,
        "created": created,
        "data": {"object": obj},
    }


def invoice(invoice_id: str, amount: int, model: str = "m1", creator: str = "c1") -> dict[str, Any]:
    """A paid subscription invoice as API 2023-08-16 renders it (the fields the ledger reads)."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_paid": amount,
        "currency": "usd",
        "charge": f"ch_{invoice_id}",
        "payment_intent": f"pi_{invoice_id}",
        "subscription": "sub_1",
        "subscription_details": {"metadata": subscription_metadata(model, creator, "u1")},
        "lines": {"object": "list", "data": []},
        "metadata": {},
    }


def paid(invoice_id: str, amount: int, at: str, **owner: str) -> dict[str, Any]:
    return event("invoice.paid", invoice(invoice_id, amount, **owner), ts(at))


def refunded(invoice_id: str, cumulative: int, at: str) -> dict[str, Any]:
    charge = {
        "id": f"ch_{invoice_id}",
        "object": "charge",
        "amount_refunded": cumulative,
        "invoice": invoice_id,
        "payment_intent": f"pi_{invoice_id}",
    }
    return event("charge.refunded", charge, ts(at))


def disputed(
    kind: str, dispute_id: str, invoice_id: str, amount: int, status: str, at: str
) -> dict[str, Any]:
    dispute = {"id": dispute_id, "object": "dispute", "amount": amount, "charge": f"ch_{invoice_id}"}
    return event(kind, {**dispute, "status": status, "payment_intent": None}, ts(at))


def balance(ledger: pl.DataFrame, account: str) -> int:
    found = balances(ledger).filter(pl.col("account") == account)["balance_cents"]
    return int(found[0]) if len(found) else 0


def posted(events: list[dict[str, Any]], ledger: pl.DataFrame | None = None) -> pl.DataFrame:
    result = post_events(empty_ledger() if ledger is None else ledger, events)
    assert result.pending == {}
    return result.ledger


# -- split ---------------------------------------------------------------------------------------
def test_five_cents_split_three_two() -> None:
    assert split(5) == (3, 2)
    assert split(999) == (699, 300)
    assert split(1) == (0, 1)


@given(st.integers(min_value=0, max_value=10**12))
def test_split_sums_exactly_and_creator_gets_floor_of_70_percent(amount: int) -> None:
    creator, platform = split(amount)
    assert creator + platform == amount
    assert creator == math.floor(Fraction(7, 10) * amount)
    assert 0 <= platform <= amount


# -- revenue -------------------------------------------------------------------------------------
def test_invoice_paid_books_the_split_once_per_invoice() -> None:
    entries = entries_for_event(paid("in_1", 999, "2024-01-10T12:00:00"))
    rows = {e.account: e for e in entries}
    assert {a: e.amount_cents for a, e in rows.items()} == {CLEARING: -999, "creator:c1": 699, PLATFORM: 300}
    assert {e.entry_id for e in entries} == {
        "invoice:in_1:stripe_clearing",
        "invoice:in_1:creator:c1",
        "invoice:in_1:platform",
    }
    assert {(e.model_id, e.creator_id, e.charge_id, e.booked_at) for e in entries} == {
        ("m1", "c1", "ch_in_1", dt.datetime(2024, 1, 10, 12, tzinfo=UTC))
    }


def test_zero_invoice_books_nothing() -> None:
    """A trial starts with a $0 invoice; it books nothing and, metadata or not, is never pending."""
    trial = paid("in_trial", 0, "2024-01-01T00:00:00")
    assert entries_for_event(trial) == []
    trial["data"]["object"]["subscription_details"] = {"metadata": {}}
    result = post_events(empty_ledger(), [trial])
    assert (result.ledger.height, result.pending) == (0, {})


def test_events_that_move_no_money_post_nothing() -> None:
    created = event("customer.subscription.created", {"id": "sub_1", "status": "trialing"}, 1)
    assert entries_for_event(created) == []


@pytest.mark.parametrize(
    "where",
    ["subscription_details", "parent", "line", "invoice"],
)
def test_invoice_owner_from_each_place_stripe_puts_the_metadata(where: str) -> None:
    meta = subscription_metadata("m9", "c9", "u9")
    inv: dict[str, Any] = {"id": "in_9", "lines": {"data": [{"metadata": {}}]}, "metadata": {}}
    if where == "subscription_details":
        inv["subscription_details"] = {"metadata": meta}
    elif where == "parent":  # API 2025-03-31 and later
        inv["parent"] = {"type": "subscription_details", "subscription_details": {"metadata": meta}}
    elif where == "line":
        inv["lines"]["data"].append({"metadata": meta})
    else:
        inv["metadata"] = meta
    owner = invoice_owner(inv)
    assert owner is not None
    assert (owner.model_id, owner.creator_id) == ("m9", "c9")


def test_invoice_without_model_metadata_stays_pending() -> None:
    stray = paid("in_x", 500, "2024-01-02T00:00:00")
    stray["data"]["object"]["subscription_details"] = {"metadata": {}}
    with pytest.raises(UnpostableEvent, match="in_x"):
        entries_for_event(stray)
    result = post_events(empty_ledger(), [stray])
    assert result.ledger.is_empty()
    assert list(result.pending) == [stray["id"]]


def test_same_event_processed_twice_posts_once() -> None:
    e = paid("in_1", 999, "2024-01-10T00:00:00")
    first = post_events(empty_ledger(), [e, e])
    assert first.ledger.height == 3
    again = post_events(first.ledger, [e])
    assert again.new_entries.is_empty()
    assert again.ledger.equals(first.ledger)
    # A second delivery of the same invoice under another event id books nothing either.
    redelivered = copy.deepcopy(e) | {"id": "evt_other"}
    assert post_events(first.ledger, [redelivered]).new_entries.is_empty()


def test_post_is_append_only() -> None:
    first = posted([paid("in_1", 999, "2024-01-10T00:00:00")])
    second = post(first, entries_for_event(paid("in_2", 500, "2024-01-11T00:00:00")))
    assert second.head(first.height).equals(first)
    assert second.height == first.height + 3


# -- refunds and disputes ------------------------------------------------------------------------
def test_partial_refunds_add_up_to_the_original_split() -> None:
    ledger = posted(
        [
            paid("in_1", 999, "2024-01-10T00:00:00"),
            refunded("in_1", 333, "2024-01-11T00:00:00"),
            refunded("in_1", 999, "2024-01-12T00:00:00"),
        ]
    )
    refunds = ledger.filter(pl.col("kind") == "refund", pl.col("account") == "creator:c1")
    assert refunds["amount_cents"].to_list() == [-233, -466]  # 333 * 0.7 floor, then 699 - 233
    assert balance(ledger, "creator:c1") == 0
    assert balance(ledger, PLATFORM) == 0
    assert balance(ledger, CLEARING) == 0


def test_refund_events_out_of_order_or_repeated_give_the_same_ledger_totals() -> None:
    events = [
        paid("in_1", 1000, "2024-01-10T00:00:00"),
        refunded("in_1", 300, "2024-01-11T00:00:00"),
        refunded("in_1", 500, "2024-01-12T00:00:00"),
    ]
    expected = balances(posted(events))
    ledger = empty_ledger()
    for e in [events[0], events[2], events[1], events[2]]:  # one delivery per run
        ledger = posted([e], ledger)
    assert balances(ledger).equals(expected)
    assert balance(ledger, "creator:c1") == 700 - 350


def test_refund_before_its_invoice_waits_for_it() -> None:
    refund = refunded("in_1", 1000, "2024-01-11T00:00:00")
    first = post_events(empty_ledger(), [refund])
    assert first.ledger.is_empty()
    assert "not booked yet" in first.pending[refund["id"]]
    second = post_events(first.ledger, [paid("in_1", 1000, "2024-01-10T00:00:00"), refund])
    assert second.pending == {}
    assert balance(second.ledger, "creator:c1") == 0


def test_dispute_reverses_and_a_won_dispute_reinstates() -> None:
    base = [paid("in_1", 2000, "2024-01-10T00:00:00")]
    inquiry = disputed("charge.dispute.created", "dp_0", "in_1", 2000, "warning_needs_response", "2024-01-11")
    assert posted([*base, inquiry]).height == 3  # an inquiry moves no money
    opened = disputed("charge.dispute.created", "dp_1", "in_1", 2000, "needs_response", "2024-01-12")
    withdrawn = disputed(
        "charge.dispute.funds_withdrawn", "dp_1", "in_1", 2000, "needs_response", "2024-01-12"
    )
    lost = posted([*base, opened, withdrawn])
    assert balance(lost, "creator:c1") == 0
    assert lost.filter(pl.col("kind") == "dispute").height == 3  # created and funds_withdrawn: one posting
    won = disputed("charge.dispute.closed", "dp_1", "in_1", 2000, "won", "2024-02-20")
    assert balance(posted([*base, opened, won]), "creator:c1") == 1400


def test_reinstatement_waits_for_its_dispute() -> None:
    base = posted([paid("in_1", 2000, "2024-01-10T00:00:00")])
    won = disputed("charge.dispute.funds_reinstated", "dp_1", "in_1", 2000, "won", "2024-02-20")
    result = post_events(base, [won])
    assert won["id"] in result.pending
    assert result.new_entries.is_empty()


@st.composite
def money_histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Random invoices with partial refunds and disputes, and the creator balances they must give."""
    events: list[dict[str, Any]] = []
    expected: dict[str, int] = {}
    for i in range(draw(st.integers(1, 6))):
        creator = draw(st.sampled_from(["c1", "c2"]))
        amount = draw(st.integers(1, 100_000))
        day = dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(hours=i)
        inv = f"in_{i}"
        events.append(event("invoice.paid", invoice(inv, amount, creator=creator), int(day.timestamp())))
        refunds = sorted(draw(st.lists(st.integers(1, amount), max_size=3)))
        for k, cumulative in enumerate(refunds):
            events.append(refunded(inv, cumulative, (day + dt.timedelta(minutes=k + 1)).isoformat()[:19]))
        final_refund = refunds[-1] if refunds else 0
        dispute = draw(st.integers(0, amount - final_refund))
        if dispute:
            at = (day + dt.timedelta(minutes=30)).isoformat()[:19]
            events.append(disputed("charge.dispute.created", f"dp_{i}", inv, dispute, "needs_response", at))
        owed = split(amount)[0] - split(final_refund)[0] - split(dispute)[0]
        expected[creator] = expected.get(creator, 0) + owed
    return events, expected


@settings(max_examples=40, deadline=None)
@given(money_histories(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_any_arrival_order_balances_to_zero_and_gives_the_same_balances(
    history: tuple[list[dict[str, Any]], dict[str, int]], rnd: Any, batch: int
) -> None:
    events, expected = history
    arrivals = events + rnd.sample(events, k=min(2, len(events)))  # some redeliveries
    rnd.shuffle(arrivals)
    ledger, pending = empty_ledger(), []
    for start in range(0, len(arrivals), batch):
        result = post_events(ledger, pending + arrivals[start : start + batch])
        for txn in result.new_entries.partition_by("txn_id"):
            assert txn["amount_cents"].sum() == 0
        ledger = result.ledger
        pending = [e for e in events if e["id"] in result.pending]
    assert post_events(ledger, pending).pending == {}
    ledger = post_events(ledger, pending).ledger
    assert unbalanced(ledger).is_empty()
    assert ledger["amount_cents"].sum() == 0
    assert ledger["entry_id"].is_unique().all()
    for creator, cents in expected.items():
        assert balance(ledger, f"creator:{creator}") == cents


# -- payouts -------------------------------------------------------------------------------------
def pay(
    ledger: pl.DataFrame, payouts: pl.DataFrame, month: str
) -> tuple[pl.DataFrame, pl.DataFrame, list[PayoutPlan]]:
    """What the monthly payout run does: plan, record, then post the payouts' entries."""
    plans = plan_payouts(ledger, month, payouts, payable=ONBOARDED)
    payouts = pl.concat([payouts, payouts_frame(plans)])
    ledger = post(ledger, [e for p in plans for e in payout_entries(p)])
    return ledger, payouts, plans


NO_PAYOUTS = pl.DataFrame(schema=PAYOUTS)
ONBOARDED = frozenset({"c1", "c2"})
"""Creators whose payout accounts can receive transfers."""


def test_month_bounds() -> None:
    assert month_bounds("2024-12") == (
        dt.datetime(2024, 12, 1, tzinfo=UTC),
        dt.datetime(2025, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2024-13")


def test_payout_key_entries_and_booking_time() -> None:
    (plan,) = plan_payouts(
        posted([paid("in_1", 10_000, "2024-01-10T00:00:00")]), "2024-01", NO_PAYOUTS, payable=ONBOARDED
    )
    assert plan == PayoutPlan("c1", "2024-01", 7_000)
    assert plan.idempotency_key == "payout:c1:2024-01"
    entries = to_frame(payout_entries(plan))
    assert dict(entries.select("account", "amount_cents").iter_rows()) == {
        "creator:c1": -7_000,
        TRANSFERS: 7_000,
    }
    assert entries["booked_at"].unique().to_list() == [dt.datetime(2024, 2, 1, tzinfo=UTC)]
    assert entries.schema == pl.Schema(LEDGER)


def test_only_revenue_booked_before_the_month_end_counts() -> None:
    ledger = posted(
        [
            paid("in_1", 7_142, "2024-01-31T23:59:59"),  # creator 4,999
            paid("in_2", 100, "2024-02-01T00:00:00"),  # creator 70, but in February
        ]
    )
    assert plan_payouts(ledger, "2024-01", NO_PAYOUTS, payable=ONBOARDED) == []
    assert plan_payouts(ledger, "2024-01", NO_PAYOUTS, payable=ONBOARDED, minimum_cents=4_999) == [
        PayoutPlan("c1", "2024-01", 4_999)
    ]


def test_creator_below_minimum_is_paid_next_month_after_more_revenue() -> None:
    ledger = posted([paid("in_1", 7_142, "2024-01-15T00:00:00")])
    ledger, payouts, plans = pay(ledger, NO_PAYOUTS, "2024-01")
    assert plans == []
    ledger = posted([paid("in_2", 500, "2024-02-03T00:00:00")], ledger)
    ledger, payouts, plans = pay(ledger, payouts, "2024-02")
    assert plans == [PayoutPlan("c1", "2024-02", 4_999 + 350)]
    assert balance(ledger, "creator:c1") == 0


def test_refund_after_a_payout_is_netted_off_the_next_payout() -> None:
    ledger = posted([paid("in_1", 10_000, "2024-01-10T00:00:00")])
    ledger, payouts, plans = pay(ledger, NO_PAYOUTS, "2024-01")
    assert plans == [PayoutPlan("c1", "2024-01", 7_000)]
    ledger = posted(
        [refunded("in_1", 10_000, "2024-02-05T00:00:00"), paid("in_2", 20_000, "2024-02-10T00:00:00")], ledger
    )
    assert balance(ledger, "creator:c1") == 7_000  # 7,000 - 7,000 paid - 7,000 refunded + 14,000
    ledger, payouts, plans = pay(ledger, payouts, "2024-02")
    assert plans == [PayoutPlan("c1", "2024-02", 7_000)]
    assert balance(ledger, "creator:c1") == 0
    assert balance(ledger, TRANSFERS) == 14_000
    assert unbalanced(ledger).is_empty()


def test_negative_balance_carries_into_the_next_month() -> None:
    ledger = posted([paid("in_1", 10_000, "2024-01-10T00:00:00")])
    ledger, payouts, _ = pay(ledger, NO_PAYOUTS, "2024-01")
    ledger = posted(
        [refunded("in_1", 10_000, "2024-02-05T00:00:00"), paid("in_2", 10_000, "2024-02-10")], ledger
    )
    ledger, payouts, plans = pay(ledger, payouts, "2024-02")
    assert plans == []  # -7,000 + 7,000 = 0
    ledger = posted([paid("in_3", 10_000, "2024-03-10T00:00:00")], ledger)
    assert pay(ledger, payouts, "2024-03")[2] == [PayoutPlan("c1", "2024-03", 7_000)]


def test_replanning_a_paid_month_plans_nothing() -> None:
    ledger = posted([paid("in_1", 10_000, "2024-01-10T00:00:00", creator="c1")])
    ledger, payouts, plans = pay(ledger, NO_PAYOUTS, "2024-01")
    assert [p.creator_id for p in plans] == ["c1"]
    late = posted(
        [paid("in_2", 10_000, "2024-01-30T00:00:00", creator="c1")], ledger
    )  # arrived after the run
    assert plan_payouts(late, "2024-01", payouts, payable=ONBOARDED) == []
    assert plan_payouts(late, "2024-02", payouts, payable=ONBOARDED) == [PayoutPlan("c1", "2024-02", 7_000)]


def test_recorded_payout_counts_even_before_its_entries_are_posted() -> None:
    ledger = posted([paid("in_1", 10_000, "2024-01-10T00:00:00"), paid("in_2", 10_000, "2024-02-10")])
    # February was paid (7,000 + 7,000), then January is planned late: nothing is owed for it.
    feb = payouts_frame([PayoutPlan("c1", "2024-02", 14_000)])
    assert plan_payouts(ledger, "2024-01", feb, payable=ONBOARDED) == []


def test_a_creator_without_onboarding_is_held_and_paid_the_carried_balance_after_it() -> None:
    ledger = posted([paid("in_1", 10_000, "2024-01-10T00:00:00")])
    (held,) = plan_payouts(ledger, "2024-01", NO_PAYOUTS, payable=set())
    assert held == PayoutPlan("c1", "2024-01", 7_000, awaiting_onboarding=True)
    payouts = payouts_frame([held])
    assert plan_payouts(ledger, "2024-01", payouts, payable=ONBOARDED) == []  # the month is decided
    assert plan_payouts(ledger, "2024-02", payouts, payable=set()) == [
        PayoutPlan("c1", "2024-02", 7_000, awaiting_onboarding=True)  # still no onboarding: carried
    ]
    ledger = posted([paid("in_2", 1_000, "2024-02-10T00:00:00")], ledger)
    ledger, payouts, plans = pay(ledger, payouts, "2024-02")  # onboarded in February
    assert plans == [PayoutPlan("c1", "2024-02", 7_000 + 700)]
    assert balance(ledger, "creator:c1") == 0
    for month in ("2024-01", "2024-02", "2024-03"):
        assert plan_payouts(ledger, month, payouts, payable=ONBOARDED) == [], month


# -- subscriptions -------------------------------------------------------------------------------
def sub_event(kind: str, status: str, created: int, **extra: Any) -> dict[str, Any]:
    obj = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "metadata": subscription_metadata("m1", "c1", "u1"),
        "items": {"data": [{"price": {"id": "price_1", "unit_amount": 999}}]},
        "current_period_end": created + 30 * 86_400,
        "cancel_at_period_end": False,
        **extra,
    }
    return event(f"customer.subscription.{kind}", obj, created)


def has_access(status: str, now: dt.datetime, past_due_since: dt.datetime | None = None) -> bool:
    row = pl.DataFrame(
        {"status": [status], "past_due_since": [past_due_since]},
        schema={"status": pl.String(), "past_due_since": pl.Datetime("us", "UTC")},
    )
    return with_access(row, now).height == 1


def test_status_mapping_and_access() -> None:
    assert [status_of(s) for s in ("trialing", "active", "past_due", "canceled", "unpaid")] == [
        "trial",
        "active",
        "past_due",
        "cancelled",
        "expired",
    ]
    now = dt.datetime(2026, 1, 10, tzinfo=UTC)
    assert [has_access(s, now) for s in ("trial", "active", "cancelled", "expired")] == [
        True,
        True,
        False,
        False,
    ]
    failed = now - PAST_DUE_GRACE
    second = dt.timedelta(seconds=1)
    assert has_access("past_due", now - second, failed)  # 3 days minus a second after the invoice
    assert not has_access("past_due", now, failed)  # exactly 3 days: over
    assert not has_access("past_due", now + second, failed)
    assert not has_access("past_due", now)  # no failed invoice known: none
    assert not has_access("cancelled", now - second, failed)
    with pytest.raises(ValueError, match="unknown"):
        status_of("bogus")


def test_subscription_state_is_the_same_for_any_order_and_repeats() -> None:
    t = ts("2024-01-01T00:00:00")
    events = [
        sub_event("created", "trialing", t),
        sub_event("updated", "active", t + 7 * 86_400),
        sub_event("updated", "past_due", t + 37 * 86_400),
    ]
    finals = {
        json.dumps(subscription_states([*order, order[0]]).to_dicts(), default=str)
        for order in itertools.permutations(events)
    }
    assert len(finals) == 1
    (state,) = subscription_states(events).to_dicts()
    assert (state["status"], state["stripe_status"], state["price_cents"]) == ("past_due", "past_due", 999)
    assert state["past_due_since"] is None  # no failed invoice known: past_due without access
    deleted = sub_event("deleted", "canceled", t + 40 * 86_400)
    for order in itertools.permutations([*events, deleted]):
        assert subscription_states(order)["status"].to_list() == ["cancelled"]


def test_cancellation_is_final_whatever_comes_after_it() -> None:
    t = ts("2024-03-01T00:00:00")
    deleted = sub_event("deleted", "canceled", t)
    same_second = sub_event("updated", "active", t) | {"id": "evt_zzzz"}  # sorts after by id
    later = sub_event("updated", "active", t + 5)
    for events in ([deleted, same_second], [later, deleted], [deleted, later, same_second]):
        assert subscription_states(events)["status"].to_list() == ["cancelled"]


def test_subscription_states_fold_incrementally() -> None:
    t = ts("2024-01-01T00:00:00")
    a = [sub_event("created", "incomplete", t), sub_event("updated", "active", t + 60)]
    b = [sub_event("updated", "trialing", t + 30), sub_event("updated", "past_due", t + 90)]
    assert subscription_states(b, subscription_states(a)).equals(subscription_states(a + b))


def invoice_event(kind: str, invoice_id: str, created: int, at: int) -> dict[str, Any]:
    """An invoice payment event as API 2025-03-31 renders it: the subscription under ``parent``."""
    obj = {
        "id": invoice_id,
        "object": "invoice",
        "created": created,
        "customer": "cus_1",
        "amount_paid": 999 if kind == "invoice.paid" else 0,
        "parent": {
            "subscription_details": {
                "subscription": "sub_1",
                "metadata": subscription_metadata("m1", "c1", "u1"),
            }
        },
    }
    return event(kind, obj, at)


def test_a_failed_invoice_gives_three_days_of_access_then_none_until_paid() -> None:
    t = ts("2024-02-01T00:00:00")
    renewal = t + 30 * 86_400  # the renewal invoice is created at the period's start ...
    first_try = renewal + 3_600  # ... and Stripe tries the payment an hour later
    events = [
        sub_event("created", "trialing", t),
        sub_event("updated", "active", t + 7 * 86_400),
        invoice_event("invoice.payment_failed", "in_2", renewal, first_try),
        invoice_event("invoice.payment_failed", "in_2", renewal, first_try + 86_400),  # a retry
    ]
    since = dt.datetime.fromtimestamp(renewal, UTC)
    states = {
        json.dumps(subscription_states([*order, order[-1]]).to_dicts(), default=str)
        for order in itertools.permutations(events)
    }
    assert len(states) == 1
    state = subscription_states(events)
    assert state.select("status", "stripe_status", "past_due_since", "user_id").row(0) == (
        "past_due",
        "active",  # Stripe's own past_due update has not arrived: the failed invoice decides
        since,
        "u1",
    )
    second = dt.timedelta(seconds=1)
    assert with_access(state, since + PAST_DUE_GRACE - second).height == 1
    assert with_access(state, since + PAST_DUE_GRACE + second).is_empty()
    stripe_update = sub_event("updated", "past_due", first_try)
    later = subscription_states([stripe_update], state)
    assert later.select("status", "stripe_status", "past_due_since").row(0) == ("past_due", "past_due", since)
    paid_late = invoice_event("invoice.paid", "in_2", renewal, renewal + 5 * 86_400)
    recovered = subscription_states([paid_late], later)
    assert recovered.select("status", "past_due_since").row(0) == ("active", None)
    assert with_access(recovered, since + 5 * PAST_DUE_GRACE).height == 1
    assert recovered.equals(subscription_states([*events, stripe_update, paid_late]))
    ended = sub_event("deleted", "canceled", first_try + 2 * 86_400)
    assert subscription_states([*events, ended])["status"].to_list() == ["cancelled"]


def test_invoice_events_fold_incrementally_in_any_split() -> None:
    t = ts("2024-03-01T00:00:00")
    events = [
        sub_event("created", "trialing", t),
        invoice_event("invoice.paid", "in_0", t, t),  # the trial's $0 invoice
        invoice_event("invoice.payment_failed", "in_1", t + 7 * 86_400, t + 7 * 86_400 + 60),
        sub_event("updated", "past_due", t + 7 * 86_400 + 60),
        invoice_event("invoice.paid", "in_1", t + 7 * 86_400, t + 8 * 86_400),
        sub_event("updated", "active", t + 8 * 86_400),
    ]
    whole = subscription_states(events)
    assert whole.select("status", "past_due_since").row(0) == ("active", None)
    for cut in range(len(events) + 1):
        for order in (events, events[::-1]):
            a, b = order[:cut], order[cut:]
            assert subscription_states(b, subscription_states(a)).equals(whole), cut
    assert subscription_states(events[:2]).select("status").item() == "trial"


def test_invoice_paid_before_subscription_created_ends_right() -> None:
    t = ts("2024-01-10T00:00:00")
    created = sub_event("created", "incomplete", t)
    activated = sub_event("updated", "active", t + 2)
    invoice_paid = event("invoice.paid", invoice("in_1", 999), t + 1)
    arrivals = [invoice_paid, activated, created]  # the payment lands before the subscription exists here
    result = post_events(empty_ledger(), arrivals[:1])
    assert result.pending == {}
    assert balance(result.ledger, "creator:c1") == 699
    assert set(result.ledger["model_id"]) == {"m1"}
    (state,) = subscription_states(arrivals).to_dicts()
    assert (state["status"], state["model_id"], state["creator_id"], state["user_id"]) == (
        "active",
        "m1",
        "c1",
        "u1",
    )
    assert state["status"] == "active"


# -- Stripe's own object shapes ------------------------------------------------------------------
def test_events_built_from_stripe_fixtures_post_as_expected() -> None:
    """The fields the ledger and the subscription fold read exist where Stripe's fixtures put them."""
    if not FIXTURES.is_file():
        pytest.skip(f"Stripe fixtures not found at {FIXTURES}")
    res = json.loads(FIXTURES.read_text())["resources"]
    meta = subscription_metadata("m1", "c1", "u1")
    inv = res["invoice"] | {"amount_paid": 2_000, "status": "paid", "charge": res["charge"]["id"]}
    inv["subscription_details"] = {"metadata": meta}
    charge = res["charge"] | {"amount_refunded": 500, "refunded": False, "invoice": inv["id"]}
    dispute = res["dispute"] | {"status": "needs_response", "amount": 1_500}
    sub = res["subscription"] | {"metadata": meta, "status": "trialing"}
    t = ts("2024-05-01T00:00:00")
    events = [
        event("invoice.paid", inv, t),
        event("charge.refunded", charge, t + 10),
        event("charge.dispute.created", dispute, t + 20),
        event("customer.subscription.created", sub, t - 5),
    ]
    ledger = posted(events)
    assert balance(ledger, "creator:c1") == 1_400 - 350 - 1_050
    assert unbalanced(ledger).is_empty()
    assert set(ledger.filter(pl.col("kind") == "dispute")["charge_id"]) == {res["charge"]["id"]}
    (state,) = subscription_states(events).to_dicts()
    assert (state["status"], state["price_id"], state["price_cents"]) == (
        "trial",
        res["subscription"]["items"]["data"][0]["price"]["id"],
        2_000,
    )


def test_ledger_index_only_reads_what_the_batch_mentions() -> None:
    ledger = posted([paid("in_1", 1_000, "2024-01-10T00:00:00"), paid("in_2", 2_000, "2024-01-11T00:00:00")])
    index = LedgerIndex.of(ledger, [refunded("in_2", 100, "2024-01-12T00:00:00")])
    assert set(index.owners) == {"in_2", "ch_in_2", "pi_in_2"}
    assert index.refunded == {}
