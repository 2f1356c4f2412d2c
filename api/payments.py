"""Stripe for the API: the plain ``Payments`` client, built from the environment on first use.

``create_app(payments=...)`` may pass one (tests do); otherwise the first request that needs Stripe
builds it from ``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET`` and ``STRIPE_API_BASE``, so importing
the app or serving the other routes never needs Stripe's secrets. Without them, routes that need
Stripe answer 503 ``payments_not_configured``.
"""

from __future__ import annotations

import os
import threading
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from services.payments import API_KEY_ENV, WEBHOOK_SECRET_ENV, Payments

_SECRETS = (API_KEY_ENV, WEBHOOK_SECRET_ENV)
_build = threading.Lock()


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
