"""What creators earned, were paid and are owed, derived from ledger entries and payout records.

One implementation serves the ``creator_balances`` table, ``GET /creators/me/earnings`` and the
``oddsforge payouts`` report. Words (integer cents throughout):

- *revenue*: the creator's 70% of paid invoices (``kind == "revenue"``);
- *reversed*: refunds and disputes taken back, plus disputes won back (negative when more was taken);
- *earned* = revenue + reversed;
- *paid*: payouts whose Stripe Transfer is recorded; *pending*: payouts recorded (the money is
  set aside, :func:`domain.money.payouts.plan_payouts` counts it as paid) but not transferred yet;
  a payout *awaiting onboarding* sets nothing aside: its amount stays in the balance;
- *balance* = earned - paid - pending: what the next payout considers. It carries over below the
  $50 minimum and is negative after a refund of revenue already paid out, which later revenue nets off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

import polars as pl

from domain.money.ledger import CREATOR_PREFIX
from domain.money.payouts import AWAITING_ONBOARDING, PAYOUTS
from domain.tables.schemas import UTC_TS

PayoutStatus = Literal["paid", "pending_stripe", "failed", "unconfirmed", "awaiting_onboarding"]
"""``paid``: the Transfer is recorded. ``pending_stripe``: planned while no Stripe key was configured;
a run with a key transfers it under the same idempotency key. ``failed``: Stripe refused it this run
(retried next run). ``unconfirmed``: Stripe was called more than a day ago and no result was
recorded; Stripe no longer remembers the idempotency key, so an operator must look the transfer up
(metadata ``payout_key``) instead of the platform retrying blindly. ``awaiting_onboarding``: the
creator's payout account could not receive transfers when the month was planned; nothing was paid or
set aside, and the first month planned after onboarding pays the carried balance."""
PAYOUT_STATUSES: tuple[str, ...] = get_args(PayoutStatus)

PAYOUT_RECORDS: dict[str, pl.DataType] = {
    **PAYOUTS,
    "status": pl.String(),
    "transfer_id": pl.String(),
    "destination": pl.String(),
    "planned_at": UTC_TS,
    "paid_at": UTC_TS,
    "detail": pl.String(),
}
"""The ``payouts`` table: one row per creator and month with a payout recorded."""

CREATOR_BALANCES: dict[str, pl.DataType] = {
    "creator_id": pl.String(),
    "revenue_cents": pl.Int64(),
    "reversed_cents": pl.Int64(),
    "earned_cents": pl.Int64(),
    "paid_cents": pl.Int64(),
    "balance_cents": pl.Int64(),
    "last_booked_at": UTC_TS,
}
"""Per creator, from the ledger alone: ``paid_cents`` are payouts posted to the ledger (transferred)
and ``balance_cents`` is the creator account's balance."""

MONTHLY_EARNINGS: dict[str, pl.DataType] = {
    "creator_id": pl.String(),
    "month": pl.String(),
    "revenue_cents": pl.Int64(),
    "reversed_cents": pl.Int64(),
    "earned_cents": pl.Int64(),
    "payout_cents": pl.Int64(),
    "payout_status": pl.String(),
    "transfer_id": pl.String(),
    "carried_over_cents": pl.Int64(),
}
"""Per creator and month (``YYYY-MM``, UTC): what was earned in the month, the month's payout
(paid out on the 1st of the next) and the balance carried over after it."""

_REVENUE = pl.col("kind") == "revenue"
_PAYOUT = pl.col("kind") == "payout"


def _creator_entries(entries: pl.DataFrame) -> pl.DataFrame:
    return entries.filter(pl.col("account").str.starts_with(CREATOR_PREFIX))


def creator_balances(entries: pl.DataFrame) -> pl.DataFrame:
    """:data:`CREATOR_BALANCES` from ledger entries, one row per creator, sorted by creator."""
    cents = pl.col("amount_cents")
    return (
        _creator_entries(entries)
        .group_by("creator_id")
        .agg(
            cents.filter(_REVENUE).sum().alias("revenue_cents"),
            cents.filter(~_REVENUE & ~_PAYOUT).sum().alias("reversed_cents"),
            cents.filter(~_PAYOUT).sum().alias("earned_cents"),
            (-cents.filter(_PAYOUT)).sum().alias("paid_cents"),
            cents.sum().alias("balance_cents"),
            pl.col("booked_at").max().alias("last_booked_at"),
        )
        .select(list(CREATOR_BALANCES))
        .cast(pl.Schema(CREATOR_BALANCES))
        .sort("creator_id")
    )


def monthly_earnings(entries: pl.DataFrame, payouts: pl.DataFrame) -> pl.DataFrame:
    """:data:`MONTHLY_EARNINGS` from ledger entries and payout records (:data:`PAYOUT_RECORDS`).

    Payout entries are left out of the months' earnings: a payout is the month's ``payout_cents``
    (whatever its status), and ``carried_over_cents`` is everything earned up to the month's end
    minus every payout recorded for it and earlier months (except those awaiting onboarding).
    """
    cents = pl.col("amount_cents")
    earned = (
        _creator_entries(entries)
        .filter(~_PAYOUT)
        .with_columns(pl.col("booked_at").dt.strftime("%Y-%m").alias("month"))
        .group_by("creator_id", "month")
        .agg(
            cents.filter(_REVENUE).sum().alias("revenue_cents"),
            cents.filter(~_REVENUE).sum().alias("reversed_cents"),
            cents.sum().alias("earned_cents"),
        )
    )
    paid = payouts.select(
        "creator_id",
        "month",
        pl.col("amount_cents").alias("payout_cents"),
        pl.col("status").alias("payout_status"),
        "transfer_id",
    )
    return (
        earned.join(paid, on=["creator_id", "month"], how="full", coalesce=True)
        .with_columns(pl.col(c).fill_null(0) for c in ("revenue_cents", "reversed_cents", "earned_cents"))
        .sort("creator_id", "month")
        .with_columns(
            (pl.col("earned_cents") - _set_aside(pl.col("payout_cents"), pl.col("payout_status")))
            .cum_sum()
            .over("creator_id")
            .alias("carried_over_cents")
        )
        .select(list(MONTHLY_EARNINGS))
        .cast(pl.Schema(MONTHLY_EARNINGS))
    )


def _set_aside(cents: pl.Expr, status: pl.Expr) -> pl.Expr:
    """What a payout record takes out of the balance: nothing while it awaits onboarding."""
    return pl.when(status == AWAITING_ONBOARDING).then(0).otherwise(cents.fill_null(0))


def earnings_summary(entries: pl.DataFrame, payouts: pl.DataFrame) -> dict[str, Any]:
    """Totals of one creator's entries and payout records: earned, paid, pending and balance."""
    earned = int(_creator_entries(entries).filter(~_PAYOUT)["amount_cents"].sum())
    transferred = payouts["status"] == "paid"
    paid = int(payouts.filter(transferred)["amount_cents"].sum())
    held_back = _set_aside(pl.col("amount_cents"), pl.col("status")).sum()
    pending = int(payouts.filter(~transferred).select(held_back).item())
    return {
        "earned_cents": earned,
        "paid_cents": paid,
        "pending_cents": pending,
        "balance_cents": earned - paid - pending,
    }


def records_frame(records: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Payout records as a :data:`PAYOUT_RECORDS` frame, sorted by month and creator."""
    return pl.DataFrame(list(records), schema=PAYOUT_RECORDS).sort("month", "creator_id")
