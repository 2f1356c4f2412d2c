"""``POST /webhooks/stripe``: Stripe's deliveries, verified and stored, nothing else.

Stripe signs the raw body (``Stripe-Signature``); the signature is checked on exactly the bytes
received, within 300 seconds of its timestamp, before anything is stored. A verified event is
stored once under its id (``stores.stripe_events.store_event``): a redelivery, or the same event
arriving twice at once, is a 200 no-op. The answer goes back at once; the ledger and the
subscriptions table pick the event up from the inbox (``assets/payments.py``), so a slow pipeline
never makes Stripe time out and retry. ``account.updated`` is the exception: the creator's payout
account state is recorded before the answer (a few small objects, ``stores.payout_accounts``), so
the creator and the next payout run see it at once; a redelivery re-applies it, which writes nothing
new, so a crash between storing and applying heals on Stripe's retry. No bearer token: the signature
is the authentication.
"""

from __future__ import annotations

import logging

import stripe
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.clock import Now
from api.errors import ApiError, ErrorBody
from api.payments import get_payments
from stores.layout import stripe_event_key
from stores.payout_accounts import apply_account_event
from stores.stripe_events import DEFAULT_TOLERANCE_SECONDS, store_event, verify_stripe_signature

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
"""Stripe's events are a few kilobytes; a larger body is refused before it is read in full."""

router = APIRouter(tags=["webhooks"])


class WebhookReceipt(BaseModel):
    received: bool = True
    event_id: str
    type: str
    duplicate: bool = Field(description="True when this event had been received before (nothing stored).")


@router.post(
    "/webhooks/stripe",
    summary="Stripe webhook endpoint",
    responses={
        400: {"model": ErrorBody, "description": "Bad or missing signature, stale timestamp, not an event."},
        413: {"model": ErrorBody, "description": f"A body over {MAX_BODY_BYTES:,} bytes."},
        503: {"model": ErrorBody, "description": "Payments are not configured on this server."},
    },
)
async def stripe_webhook(request: Request, now: Now) -> WebhookReceipt:
    """Verify Stripe's signature on the raw body and store the event once (see the module notes)."""
    secret = get_payments(request).webhook_secret
    payload = await _capped_body(request)
    try:
        event = verify_stripe_signature(
            payload,
            request.headers.get("stripe-signature"),
            secret,
            DEFAULT_TOLERANCE_SECONDS,
            now.timestamp(),
        )
        stripe_event_key(str(event.get("id")))
    except (stripe.SignatureVerificationError, ValueError) as exc:
        log.warning("Stripe webhook refused: %s", exc)
        raise ApiError(400, "invalid_webhook", str(exc)) from None
    stored = await run_in_threadpool(store_event, request.app.state.lake, event)
    await run_in_threadpool(apply_account_event, request.app.state.lake, event)
    return WebhookReceipt(event_id=event["id"], type=event["type"], duplicate=not stored)


async def _capped_body(request: Request) -> bytes:
    too_large = ApiError(413, "payload_too_large", f"a webhook body is at most {MAX_BODY_BYTES:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
