"""``GET /creators/me/earnings``: what the caller earned as a creator, was paid and is owed.

Read from the lake's ``ledger`` and ``payouts`` tables (``assets/payments.py`` writes them; the
sensor posts a verified webhook within a minute), filtered to the caller, with the same functions
as the ``creator_balances`` table (``domain.money.earnings``). A user who never earned anything gets zeros.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, current_user
from api.errors import ERROR_RESPONSES
from domain.money.earnings import earnings_summary, monthly_earnings
from domain.money.payouts import PAYOUT_MINIMUM_CENTS
from stores.lake import Lake
from stores.ledger import read_ledger
from stores.payouts import read_payout_records

router = APIRouter(
    prefix="/creators",
    tags=["creators"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 500)},
)


class MonthEarnings(BaseModel):
    month: str = Field(description="`YYYY-MM` (UTC).")
    revenue_cents: int = Field(description="70% of the subscription invoices paid in the month.")
    reversed_cents: int = Field(description="Refunds and disputes taken back in the month (<= 0 mostly).")
    earned_cents: int = Field(description="revenue + reversed.")
    payout_cents: int | None = Field(description="The month's payout, made on the 1st of the next month.")
    payout_status: str | None = Field(
        description="`paid`, `pending_stripe` (no Stripe configured), `failed` or `unconfirmed`."
    )
    transfer_id: str | None = Field(description="The Stripe Transfer of a paid payout.")
    carried_over_cents: int = Field(description="Balance left after the month's payout.")


class Earnings(BaseModel):
    creator_id: str
    currency: str = "usd"
    balance_cents: int = Field(
        description="earned - paid - pending: what the next payout considers (negative after a refund of "
        "revenue already paid out; later revenue nets it off)."
    )
    pending_cents: int = Field(description="Payouts recorded but not transferred yet.")
    paid_cents: int = Field(description="Payouts transferred to the creator's Stripe account.")
    earned_cents: int = Field(description="Everything earned, net of refunds and disputes.")
    payout_minimum_cents: int = Field(description="A month's balance is paid out once it reaches this.")
    months: list[MonthEarnings]


def earnings_of(lake: Lake, creator_id: str) -> Earnings:
    entries = read_ledger(lake, creator_id)
    payouts = read_payout_records(lake, creator_id)
    months = monthly_earnings(entries, payouts)
    return Earnings(
        creator_id=creator_id,
        payout_minimum_cents=PAYOUT_MINIMUM_CENTS,
        months=[MonthEarnings(**row) for row in months.to_dicts()],
        **earnings_summary(entries, payouts),
    )


@router.get("/me/earnings", summary="The caller's earnings, balance and payouts per month")
async def my_earnings(request: Request, user_id: CurrentUser) -> Earnings:
    """Balance, pending and paid totals, and per month: revenue, refunds, payout and carry-over."""
    return await run_in_threadpool(earnings_of, request.app.state.lake, user_id)
