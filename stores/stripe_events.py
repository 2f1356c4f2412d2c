"""Stripe webhooks: signature verification and the event inbox.

Stripe signs each delivery with the endpoint's secret: the ``Stripe-Signature`` header is
``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` (several ``v1`` entries while a
secret is being rolled). The scheme is implemented here rather than through
``stripe.WebhookSignature.verify_header`` because that reads the wall clock, and tests and replays need
to pass ``now``; the errors are the SDK's :class:`stripe.SignatureVerificationError`, and the test suite
checks both implementations agree.

Verified events go to the inbox (``stores.layout.stripe_event_key``) with create-if-absent, so Stripe's
retries and concurrent deliveries of one event store it once (SPEC section 8: deduplicated by event id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

import stripe

from stores.lake import Lake
from stores.layout import stripe_event_key

DEFAULT_TOLERANCE_SECONDS = 300


def _signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe would send with ``payload`` at ``timestamp``."""
    return f"t={timestamp},v1={_signature(payload, secret, timestamp)}"


def verify_stripe_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The event in ``payload`` if ``header`` signs it with ``secret`` within ``tolerance`` seconds.

    Raises :class:`stripe.SignatureVerificationError` naming the reason (no header, no ``v1``
    signature, a signature that does not match, a timestamp older than the tolerance, a body that is
    not a Stripe event).
    """

    def fail(reason: str) -> stripe.SignatureVerificationError:
        return stripe.SignatureVerificationError(reason, header, payload.decode("utf-8", "replace"))

    if not header:
        raise fail("no Stripe-Signature header")
    if not secret:
        raise fail("no webhook signing secret configured")
    parts = [item.split("=", 1) for item in header.split(",")]
    timestamps = [v for k, v in (p for p in parts if len(p) == 2) if k.strip() == "t"]
    signatures = [v for k, v in (p for p in parts if len(p) == 2) if k.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise fail("Stripe-Signature header has no valid timestamp")
    if not signatures:
        raise fail("Stripe-Signature header has no v1 signature")
    timestamp = int(timestamps[0])
    expected = _signature(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, s.strip()) for s in signatures):
        raise fail("signature does not match the payload")
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance:
        raise fail(f"timestamp is {age:.0f} s old, over the {tolerance} s tolerance")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise fail(f"payload is not JSON: {exc}") from None
    if not isinstance(event, dict) or event.get("object") != "event" or "type" not in event:
        raise fail("payload is not a Stripe event")
    return event


def store_event(lake: Lake, event: dict[str, Any]) -> bool:
    """Store a verified event in the inbox; False when it was already there (a redelivery)."""
    body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    return lake.put_new(stripe_event_key(event["id"]), body)


def read_events(lake: Lake, keys: Iterable[str]) -> list[dict[str, Any]]:
    """The events stored under ``keys`` (as listed under :data:`stores.layout.STRIPE_EVENTS_INBOX`)."""
    return [json.loads(lake.get_bytes(key)) for key in keys]
