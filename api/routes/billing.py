"""``POST /billing/portal``: a Stripe billing portal session, where subscribers manage payment methods,
see invoices and cancel (SPEC 8).

The portal belongs to the caller's Stripe customer, which their first checkout created
(``services.paid_subscriptions``); a caller who never checked out has none (404). Changes made in the
portal reach OddsForge as Stripe's subscription webhooks, like every other change.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.auth import current_user
from api.clock import Now
from api.compliance import ELIGIBILITY_RESPONSES, EligibleUser
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.payments import get_payments, stripe_reachable
from services.paid_subscriptions import NoCustomerError, stored_customer

router = APIRouter(
    prefix="/billing",
    tags=["billing"],
    dependencies=[Depends(current_user)],
    responses={status: ERROR_RESPONSES[status] for status in (401, 500)},
)


class BillingPortal(BaseModel):
    url: str = Field(description="Stripe's billing portal for the caller; valid for a few minutes.")


@router.post(
    "/portal",
    summary="Open the Stripe billing portal",
    responses={
        **ELIGIBILITY_RESPONSES,
        404: {
            "model": ErrorBody,
            "description": "The caller has no billing account yet (`no_billing_account`): they never "
            "checked out a paid model.",
        },
        503: {
            "model": ErrorBody,
            "description": "Stripe is not configured here (`payments_not_configured`) or cannot be "
            "reached (`payments_unavailable`; retry after `Retry-After` seconds).",
        },
    },
)
def billing_portal(user: EligibleUser, request: Request, now: Now) -> BillingPortal:
    """A billing portal session for the caller's Stripe customer; Stripe sends them back to the
    configured return URL (`ODDSFORGE_BILLING_RETURN_URL`). Paying needs the region and age that
    picks need (SPEC 9); a self-excluded subscriber may still open it, to cancel or pay what is due."""
    payments = get_payments(request)
    try:
        customer_id = stored_customer(request.app.state.lake, user)
    except NoCustomerError as exc:
        raise ApiError(404, "no_billing_account", str(exc)) from None
    with stripe_reachable():
        url = payments.create_portal_session(
            customer_id, request.app.state.settings.billing_return_url, int(now.timestamp())
        )
    return BillingPortal(url=url)
