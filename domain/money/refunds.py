"""Fair cancellation (SPEC 6): which subscriptions a suspension or an archive ends, and what they get back.

When a paid model is suspended or archived, every live paid subscription to it is cancelled at once
and each paid invoice whose service period has not ended is refunded pro rata by day
(:func:`unused_refund_cents`). A period's days are 24-hour steps from the period's start (not
calendar days): day *i* is ``[start + i days, start + (i + 1) days)``, the last one possibly shorter.
A day that has started by the cancellation counts as used, even if only by a second (the subscriber
had access during it); the days not yet started are refunded, and the amount is rounded down.
Cancelling at the period's start refunds everything, at or after its end nothing, and a trial (an
invoice of 0) nothing.

The refund reaches the ledger as an *observation* of its charge (:func:`refund_observation`): the
charge's cumulative ``amount_refunded`` right after the refund, posted by the same rule as a
``charge.refunded`` webhook (``txn refund:{charge}:{cumulative}``, reversing the split of the
cumulative minus what was reversed before). Whichever of the two arrives first posts the reversal;
the other finds the cumulative already reversed and adds nothing, so the ledger never counts a
refund twice whatever the order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

import polars as pl

from domain.marketplace.listing import FREE_PREFIX, MODEL_STATUS
from domain.money.subscriptions import SUBSCRIPTIONS, TERMINAL_STRIPE_STATUSES
from domain.tables.schemas import conform

DAY = dt.timedelta(days=1)
ENDING_STATUSES = ("suspended", "archived")
"""Listing statuses that stop a paid model's billing."""


def _days(span: dt.timedelta) -> int:
    """Whole or started days in ``span`` (0 for a span of 0 or less)."""
    return max(0, -(-span // DAY))


def unused_refund_cents(
    amount_cents: int, period_start: dt.datetime, period_end: dt.datetime, cancelled_at: dt.datetime
) -> int:
    """The part of ``amount_cents`` paid for ``[period_start, period_end)`` that covers the days not
    yet started at ``cancelled_at``, rounded down (see the module notes)."""
    if amount_cents < 0:
        raise ValueError(f"a paid amount cannot be negative: {amount_cents}")
    if period_end <= period_start:
        raise ValueError(f"the period ends ({period_end}) before it starts ({period_start})")
    total = _days(period_end - period_start)
    used = min(total, _days(cancelled_at - period_start))
    return amount_cents * (total - used) // total


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("id")
    return value if isinstance(value, str) else None


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills: ``subscription`` up to API 2025-02,
    ``parent.subscription_details.subscription`` after, else a subscription line's."""
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    lines = (invoice.get("lines") or {}).get("data") or []
    line_subs = [
        _id(line.get("subscription"))
        or _id(((line.get("parent") or {}).get("subscription_item_details") or {}).get("subscription"))
        for line in lines
    ]
    candidates = [_id(invoice.get("subscription")), _id(parent.get("subscription")), *line_subs]
    return next((c for c in candidates if c), None)


def invoice_service_period(invoice: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime] | None:
    """The period a subscription invoice pays for: the span of its lines' ``period`` (the invoice's own
    ``period_start``/``period_end`` name the *previous* period of a renewal, so they are not used)."""
    lines = (invoice.get("lines") or {}).get("data") or []
    periods = [line["period"] for line in lines if line.get("period")]
    if not periods:
        return None
    start, end = min(p["start"] for p in periods), max(p["end"] for p in periods)
    return dt.datetime.fromtimestamp(start, dt.UTC), dt.datetime.fromtimestamp(end, dt.UTC)


def subscriptions_to_end(
    subscriptions: pl.DataFrame, model_status: pl.DataFrame, ended_here: Collection[str] = ()
) -> pl.DataFrame:
    """The live paid subscriptions of models whose listing status is suspended or archived, and
    those of ``ended_here`` (subscriptions a fair cancellation already ended: an invoice booked after
    that run, such as one whose ``invoice.paid`` arrived late, is refunded by the next run): every
    :data:`SUBSCRIPTIONS` column plus the model's ``listing_status``, ``version`` and ``since`` (when
    access ended, the time their refunds count from)."""
    ending = (
        conform(model_status, MODEL_STATUS)
        .filter(pl.col("status").is_in(ENDING_STATUSES))
        .select("model_id", pl.col("status").alias("listing_status"), "version", "since")
    )
    paid = conform(subscriptions, SUBSCRIPTIONS).filter(
        ~pl.col("subscription_id").str.starts_with(FREE_PREFIX)
        & (
            ~pl.col("stripe_status").is_in(list(TERMINAL_STRIPE_STATUSES))
            | pl.col("subscription_id").is_in(list(ended_here))
        )
    )
    return paid.join(ending, on="model_id").sort("subscription_id")


def refund_observation(refund: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded refund (its id, ``created``, and the charge as Stripe returned it with the refund)
    as the ``charge.refunded`` event the ledger posts it from (see the module notes)."""
    charge = refund["charge"]
    return {
        "id": refund["refund_id"],
        "object": "event",
        "type": "charge.refunded",
        "created": refund["created"],
        "data": {
            "object": {
                "id": charge["id"],
                "object": "charge",
                "amount_refunded": charge["amount_refunded"],
                "invoice": refund["invoice_id"],
                "payment_intent": _id(charge.get("payment_intent")),
            }
        },
    }
