"""The caller as a creator: earnings, the payout account they onboard with, the creator terms.

``GET /creators/me/earnings`` reads the lake's ``ledger`` and ``payouts`` tables (``assets/payments.py``
writes them; the sensor posts a verified webhook within a minute), filtered to the caller, with the
same functions as the ``creator_balances`` table (``domain.money.earnings``). A user who never earned
anything gets zeros.

``POST /creators/me/payout-account`` opens the caller's Stripe Express account once
(``stores.payout_accounts``) and answers a fresh onboarding link each time (links are single use and
expire within minutes); ``GET`` answers the account's state as Stripe last reported it
(``account.updated``, applied by the webhook endpoint). Payouts go only to accounts with payouts
enabled; until then they wait (``awaiting_onboarding``) and the balance carries over.
``POST /creators/me/terms`` records acceptance of the current creator terms. Publishing a paid model
needs both (``api/routes/models.py``).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, current_user
from api.clock import Now
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, ErrorDetail
from api.payments import StripePayments, stripe_reachable
from domain.models.registry import UnusableUserIdError, check_user_id
from domain.money.earnings import earnings_summary, monthly_earnings
from domain.money.payouts import PAYOUT_MINIMUM_CENTS
from stores.creator_terms import accept_terms
from stores.lake import Lake
from stores.ledger import read_ledger
from stores.payout_accounts import PayoutAccount, open_payout_account, payout_account
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
        description="`paid`, `pending_stripe` (no Stripe configured), `failed`, `unconfirmed` or "
        "`awaiting_onboarding` (the payout account could not receive transfers: nothing was paid and the "
        "amount carries over)."
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


# ---- the payout account ----------------------------------------------------------------------------


class OnboardingLink(BaseModel):
    onboarding_url: str = Field(
        description="Stripe's onboarding for the caller's account (single use, expires)."
    )
    account_id: str = Field(description="The caller's Stripe Connect account.")


class PayoutAccountState(BaseModel):
    account_id: str
    onboarding_started: bool = Field(description="An account exists and onboarding links can be issued.")
    details_submitted: bool = Field(description="The creator completed Stripe's onboarding form.")
    payouts_enabled: bool = Field(description="Stripe pays the account out: monthly payouts are made to it.")
    requirements_due: list[str] = Field(description="What Stripe needs now (`requirements.currently_due`).")
    created_at: dt.datetime
    updated_at: dt.datetime | None = Field(
        description="When Stripe last reported the state (`account.updated`); null: the state at creation."
    )


_BAD_USER = {400: {"model": ErrorBody, "description": "The caller's user id cannot be a creator's."}}
_PAYMENTS = {
    503: {
        "model": ErrorBody,
        "description": "Stripe is not configured here (`payments_not_configured`) or cannot be reached "
        "(`payments_unavailable`; retry after `Retry-After` seconds).",
    }
}


def _creator(user_id: str) -> str:
    try:
        return check_user_id(user_id)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


@router.post(
    "/me/payout-account",
    status_code=201,
    summary="Open the caller's payout account (once) and get a link to Stripe's onboarding",
    responses=_BAD_USER | _PAYMENTS | {200: {"description": "The account existed: a fresh onboarding link."}},
)
def start_onboarding(
    request: Request, user_id: CurrentUser, payments: StripePayments, response: Response, now: Now
) -> OnboardingLink:
    """Creates a Stripe Express account the first time only (201; later calls 200), then an Account
    Link of type `account_onboarding`. Call again when a link expired."""
    lake, settings = request.app.state.lake, request.app.state.settings
    existed = payout_account(lake, _creator(user_id)) is not None
    with stripe_reachable():
        account = open_payout_account(lake, payments, user_id, now)
        url = payments.create_onboarding_link(
            account.account_id,
            settings.onboarding_refresh_url,
            settings.onboarding_return_url,
            f"account-link:{user_id}:{now.isoformat()}",
        )
    response.status_code = 200 if existed else 201
    return OnboardingLink(onboarding_url=url, account_id=account.account_id)


@router.get(
    "/me/payout-account",
    summary="The caller's payout account and its onboarding state",
    responses={404: {"model": ErrorBody, "description": "The caller has not started onboarding."}},
)
def my_payout_account(request: Request, user_id: CurrentUser) -> PayoutAccountState:
    """As Stripe last reported it (`account.updated` webhooks are applied as they arrive)."""
    try:
        account = payout_account(request.app.state.lake, user_id)
    except UnusableUserIdError:
        account = None
    if account is None:
        raise ApiError(
            404, "not_found", "no payout account: start onboarding with POST /creators/me/payout-account"
        )
    return _state(account)


def _state(account: PayoutAccount) -> PayoutAccountState:
    return PayoutAccountState(
        account_id=account.account_id,
        onboarding_started=True,
        details_submitted=account.state.details_submitted,
        payouts_enabled=account.state.payouts_enabled,
        requirements_due=list(account.state.requirements_due),
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


# ---- the creator terms -----------------------------------------------------------------------------


class TermsRequest(BaseModel):
    version: str = Field(
        max_length=64,
        description="The version accepted: the current one (a wrong one is refused, naming it).",
    )


class TermsAcceptance(BaseModel):
    version: str
    accepted_at: dt.datetime = Field(description="When the caller first accepted this version.")


@router.post(
    "/me/terms",
    summary="Accept the current creator terms",
    responses=_BAD_USER | {422: ERROR_RESPONSES[422] | {"description": "Not the current version (named)."}},
)
def accept_creator_terms(
    body: TermsRequest, request: Request, user_id: CurrentUser, now: Now
) -> TermsAcceptance:
    """Needed, with a payout account, to publish a paid model. Accepting again keeps the first time."""
    current = request.app.state.settings.creator_terms_version
    if body.version != current:
        detail = ErrorDetail(field="body.version", message=f"must be {current!r}", type="terms_version")
        raise ApiError(
            422,
            "terms_version",
            f"the current creator terms are version {current}, not {body.version!r}",
            [detail],
        )
    accepted_at = accept_terms(request.app.state.lake, _creator(user_id), current, now)
    return TermsAcceptance(version=current, accepted_at=accepted_at)
