"""Stripe for the API: the plain ``Payments`` client, built from the environment on first use.

``create_app(payments=...)`` may pass one (tests do); otherwise the first request that needs Stripe
builds it from ``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET`` and ``STRIPE_API_BASE``, so importing
the app or serving the other routes never needs Stripe's secrets. Without them, routes that need
Stripe answer 503 ``payments_not_configured``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import stripe
from fastapi import Depends, Request

from api.errors import ApiError
from services.payments import API_KEY_ENV, WEBHOOK_SECRET_ENV, Payments

log = logging.getLogger(__name__)

_SECRETS = (API_KEY_ENV, WEBHOOK_SECRET_ENV)
_build = threading.Lock()
STRIPE_RETRY_SECONDS = 30
"""``Retry-After`` while Stripe cannot be reached: a short outage, and retries are idempotent."""


def get_payments(request: Request) -> Payments:
    """FastAPI dependency: the app's Stripe client (``app.state.payments``)."""
    state = request.app.state
    with _build:
        if getattr(state, "payments", None) is None:
            missing = [name for name in _SECRETS if not os.environ.get(name)]
            if missing:
                raise ApiError(
                    503,
                    "payments_not_configured",
                    f"payments are not configured on this server: set {' and '.join(missing)}",
                )
            state.payments = Payments.from_env()
    return state.payments


StripePayments = Annotated[Payments, Depends(get_payments)]


@contextmanager
def stripe_reachable() -> Iterator[None]:
    """Stripe unreachable, failing on its side or throttling us is an outage, not this server's bug:
    503 ``payments_unavailable`` with ``Retry-After`` (the calls carry idempotency keys, so the
    client's retry creates nothing twice)."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
        log.warning("Stripe unavailable: %s", exc)
        raise ApiError(
            503,
            "payments_unavailable",
            f"Stripe cannot be reached right now; retry in {STRIPE_RETRY_SECONDS} s",
            headers={"Retry-After": str(STRIPE_RETRY_SECONDS)},
        ) from None
