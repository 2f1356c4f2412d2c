"""Stripe as a Dagster resource: secrets through ``dg.EnvVar`` (read at run time, never shown in the
UI); assets take ``payments: dg.ResourceParam[Payments | None]`` and get the plain
:class:`services.payments.Payments`."""

from __future__ import annotations

import dagster as dg

from services.payments import (
    API_KEY_ENV,
    DEFAULT_API_BASE,
    DEFAULT_NETWORK_RETRIES,
    WEBHOOK_SECRET_ENV,
    Payments,
    api_base_from_env,
)


class PaymentsResource(dg.ConfigurableResource):
    """The platform's Stripe account."""

    api_key: str
    webhook_secret: str
    """The webhook endpoint's signing secret (``whsec_...``), for verifying deliveries."""
    api_base: str = DEFAULT_API_BASE
    max_network_retries: int = DEFAULT_NETWORK_RETRIES

    @classmethod
    def from_env(cls) -> PaymentsResource:
        """Secrets read at run time (``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET``); ``STRIPE_API_BASE``
        when set."""
        return cls(
            api_key=dg.EnvVar(API_KEY_ENV),
            webhook_secret=dg.EnvVar(WEBHOOK_SECRET_ENV),
            api_base=api_base_from_env(),
        )

    def create_resource(self, context: dg.InitResourceContext) -> Payments:
        return Payments(self.api_key, self.webhook_secret, self.api_base, self.max_network_retries)
