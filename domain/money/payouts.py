"""Monthly creator payouts (SPEC section 8, seed "Revenue Model").

On the 1st, the month before is planned: a creator whose balance at the end of that month reaches
$50 (5,000 cents) is paid all of it; a smaller balance carries over, and a negative one (refunds or
disputes of revenue already paid out) nets off later payouts.

The balance used here is *earned minus paid*: the creator's ledger entries booked before the month's
end, except payout entries, minus every payout already recorded in ``existing_payouts`` (the payouts
table, any month). Payout records are written before Stripe is called, so a payout recorded but not
yet posted to the ledger (a crash in between) still counts as paid, and planning months out of order
never pays the same money twice. A creator with a record for the month is never planned again for
it, even if late revenue arrived; that revenue carries over to the next month.

A creator whose payout account cannot receive transfers (none yet, or Stripe has not enabled its
payouts) is not paid: the month's record says ``awaiting_onboarding`` and counts as the month's
decision but not as paid, so the balance carries over whole and the first month planned after
onboarding pays all of it under that month's key. Re-running either month pays nobody twice: the
held month is decided, the paying month has its record.

Each payout's idempotency key is ``payout:{creator_id}:{YYYY-MM}``: the key of its record, of its
Stripe Transfer and of its ledger transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import polars as pl

from domain.money.ledger import CREATOR_PREFIX, TRANSFERS, Entry, creator_account, transaction

PAYOUT_MINIMUM_CENTS = 5_000
"""The seed's $50 minimum payout."""
AWAITING_ONBOARDING = "awaiting_onboarding"
"""The status of a payout held because the creator's account cannot receive transfers."""

PAYOUTS: dict[str, pl.DataType] = {
    "payout_key": pl.String(),
    "creator_id": pl.String(),
    "month": pl.String(),
    "amount_cents": pl.Int64(),
    "awaiting_onboarding": pl.Boolean(),
}
"""Payout records; :func:`plan_payouts` reads these columns (a table may carry more, e.g. the
Stripe transfer id). ``awaiting_onboarding`` records hold nothing back: their amount stays in the
balance."""

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of a ``YYYY-MM`` month in UTC."""
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month {month!r} is not YYYY-MM")
    year, mon = int(month[:4]), int(month[5:])
    start = dt.datetime(year, mon, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def payout_key(creator_id: str, month: str) -> str:
    return f"payout:{creator_id}:{month}"


@dataclass(frozen=True)
class PayoutPlan:
    """One creator's payout for one month."""

    creator_id: str
    month: str
    amount_cents: int
    awaiting_onboarding: bool = False
    """The creator's account cannot receive transfers: nothing is paid and the balance carries over."""

    @property
    def idempotency_key(self) -> str:
        return payout_key(self.creator_id, self.month)

    @property
    def booked_at(self) -> dt.datetime:
        """The first instant after the month: the payout reduces the balance from the next month on."""
        return month_bounds(self.month)[1]


def plan_payouts(
    entries: pl.DataFrame,
    month: str,
    existing_payouts: pl.DataFrame,
    *,
    payable: Collection[str],
    minimum_cents: int = PAYOUT_MINIMUM_CENTS,
) -> list[PayoutPlan]:
    """The payouts owed for ``month`` (``YYYY-MM``), by creator id; those of creators not in
    ``payable`` (whose accounts can receive transfers) await onboarding. See the module notes."""
    _, end = month_bounds(month)
    earned = (
        entries.filter(
            pl.col("account").str.starts_with(CREATOR_PREFIX)
            & (pl.col("kind") != "payout")
            & (pl.col("booked_at") < end)
        )
        .group_by("creator_id")
        .agg(pl.col("amount_cents").sum().alias("earned"))
    )
    paid = (
        existing_payouts.filter(~pl.col("awaiting_onboarding").fill_null(False))
        .group_by("creator_id")
        .agg(pl.col("amount_cents").sum().alias("paid"))
    )
    done = existing_payouts.filter(pl.col("month") == month).select("creator_id")
    owed = (
        earned.join(paid, on="creator_id", how="left")
        .join(done, on="creator_id", how="anti")
        .select("creator_id", (pl.col("earned") - pl.col("paid").fill_null(0)).alias("owed"))
        .filter(pl.col("owed") >= minimum_cents)
        .sort("creator_id")
    )
    return [PayoutPlan(c, month, cents, c not in payable) for c, cents in owed.iter_rows()]


def payouts_frame(plans: Iterable[PayoutPlan]) -> pl.DataFrame:
    """Plans as payout records (:data:`PAYOUTS`), to store before any Transfer is created."""
    rows = [(p.idempotency_key, p.creator_id, p.month, p.amount_cents, p.awaiting_onboarding) for p in plans]
    return pl.DataFrame(rows, schema=PAYOUTS, orient="row")


def payout_entries(plan: PayoutPlan) -> list[Entry]:
    """The ledger transaction of a payout: debit the creator, credit ``stripe_transfers``."""
    return transaction(
        plan.idempotency_key,
        "payout",
        {creator_account(plan.creator_id): -plan.amount_cents, TRANSFERS: plan.amount_cents},
        booked_at=plan.booked_at,
        creator_id=plan.creator_id,
        model_id=None,
        source_id=plan.idempotency_key,
    )
