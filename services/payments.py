"""The platform's Stripe account: products and prices for paid models, customers, subscriptions,
Connect accounts for creators and the Transfers that pay them (SPEC section 8). A plain class used by
the API and the pipeline alike (there through the thin resource in ``resources/payments.py``).

Every POST carries an idempotency key derived from the business key (``product:{model_id}``,
``price:{model_id}:{cents}:{previous price}``, ``customer:{user_id}``, ``sub:{user}:{model}:{n}``,
``account:{creator_id}``, ``payout:{creator_id}:{YYYY-MM}``), so a retried or re-run step never creates
a second object: Stripe answers a repeated key with the first response. Stripe keeps keys for 24
hours, so callers store the ids these methods return (the seed's ``stripe_customer_id``,
``stripe_price_id``, ``stripe_subscription_id``) and call a create only when they hold none. Products
get a deterministic id (``model_{model_id}``) and are idempotent for ever.

``api_base`` points the SDK at another server (``STRIPE_API_BASE``), which is how the tests run
against a local server that checks each request against Stripe's OpenAPI description.
"""

from __future__ import annotations

import os
import re
from typing import Any

import stripe

from domain.money.subscriptions import META_MODEL, META_USER

CURRENCY = "usd"
DEFAULT_API_BASE = stripe.DEFAULT_API_BASE
DEFAULT_NETWORK_RETRIES = 2
"""Safe because every POST carries an idempotency key."""
API_KEY_ENV = "STRIPE_API_KEY"
WEBHOOK_SECRET_ENV = "STRIPE_WEBHOOK_SECRET"
API_BASE_ENV = "STRIPE_API_BASE"
_STRIPE_ID_SAFE = re.compile(r"[A-Za-z0-9_-]{1,200}")


def api_base_from_env() -> str:
    """``STRIPE_API_BASE`` when set, else Stripe's own API."""
    return os.environ.get(API_BASE_ENV, DEFAULT_API_BASE)


class Payments:
    """The platform's Stripe account, through the official SDK's ``StripeClient``."""

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        api_base: str = DEFAULT_API_BASE,
        max_network_retries: int = DEFAULT_NETWORK_RETRIES,
    ) -> None:
        """``webhook_secret`` is the webhook endpoint's signing secret (``whsec_...``), for verifying
        deliveries."""
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base}, max_network_retries=max_network_retries
        )

    @classmethod
    def from_env(cls) -> Payments:
        """Stripe as ``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET`` and ``STRIPE_API_BASE`` describe it
        now (the API reads them on first use; the pipeline through ``resources/payments.py``)."""
        return cls(
            api_key=os.environ[API_KEY_ENV],
            webhook_secret=os.environ[WEBHOOK_SECRET_ENV],
            api_base=api_base_from_env(),
        )

    # -- catalogue ---------------------------------------------------------------------------------
    def ensure_product_and_price(
        self, model_id: str, name: str, price_cents: int, current_price_id: str | None
    ) -> tuple[str, str]:
        """``(product_id, price_id)`` of a paid model's monthly price of ``price_cents``.

        The product is created once (id ``model_{model_id}``) and renamed when ``name`` changes.
        ``current_price_id`` is kept when it already charges ``price_cents`` a month; otherwise a new
        Price is created and the old one is archived: existing subscriptions keep their price, new
        ones get the new price.
        """
        if price_cents <= 0:
            raise ValueError(f"model {model_id}: a Stripe price needs a positive amount, got {price_cents}")
        product_id = self._ensure_product(model_id, name)
        current = self.client.v1.prices.retrieve(current_price_id) if current_price_id else None
        if current is not None and _is_monthly(current, product_id, price_cents):
            return product_id, current.id
        price = self.client.v1.prices.create(
            {
                "currency": CURRENCY,
                "unit_amount": price_cents,
                "recurring": {"interval": "month"},
                "product": product_id,
                "metadata": {META_MODEL: model_id},
            },
            {"idempotency_key": f"price:{model_id}:{price_cents}:{current_price_id or 'first'}"},
        )
        if current is not None and current.active:
            self.client.v1.prices.update(
                current.id, {"active": False}, {"idempotency_key": f"archive:{current.id}"}
            )
        return product_id, price.id

    def _ensure_product(self, model_id: str, name: str) -> str:
        if not _STRIPE_ID_SAFE.fullmatch(model_id):
            raise ValueError(f"model id {model_id!r} cannot be part of a Stripe product id")
        product_id = f"model_{model_id}"
        try:
            product = self.client.v1.products.retrieve(product_id)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            self.client.v1.products.create(
                {"id": product_id, "name": name, "metadata": {META_MODEL: model_id}},
                {"idempotency_key": f"product:{model_id}"},
            )
            return product_id
        if product.name != name:
            self.client.v1.products.update(
                product_id, {"name": name}, {"idempotency_key": f"product:{model_id}:name:{name}"}
            )
        return product_id

    # -- subscribers -------------------------------------------------------------------------------
    def ensure_customer(self, user_id: str, email: str | None = None) -> str:
        """A Stripe Customer for ``user_id`` (one per user, however often this is retried)."""
        params: dict[str, Any] = {"metadata": {META_USER: user_id}}
        if email:
            params["email"] = email
        customer = self.client.v1.customers.create(params, {"idempotency_key": f"customer:{user_id}"})
        return customer.id

    def create_subscription(
        self,
        customer_id: str,
        price_id: str,
        trial_days: int,
        metadata: dict[str, str],
        attempt: int = 1,
    ) -> str:
        """Subscribe a customer to a model's price; returns the subscription id.

        ``metadata`` is :func:`domain.money.subscriptions.subscription_metadata` (Stripe copies it onto every
        invoice, which is how revenue finds its model and creator). ``attempt`` numbers a user's
        subscriptions to one model (1, then 2 after a cancellation, ...) so that each is created once.
        The subscription starts ``trialing`` for ``trial_days`` (cancelled if no payment method was
        added by then) or ``incomplete`` until its first payment is confirmed.
        """
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": [{"price": price_id}],
            "metadata": metadata,
            "payment_behavior": "default_incomplete",
        }
        if trial_days > 0:
            params["trial_period_days"] = trial_days
            params["trial_settings"] = {"end_behavior": {"missing_payment_method": "cancel"}}
        key = f"sub:{metadata[META_USER]}:{metadata[META_MODEL]}:{attempt}"
        return self.client.v1.subscriptions.create(params, {"idempotency_key": key}).id

    def cancel_subscription(
        self, subscription_id: str, at_period_end: bool = True, idempotency_key: str | None = None
    ) -> str:
        """Cancel a subscription, by default when the paid period ends; returns its Stripe status.
        ``idempotency_key`` names the business action (default ``cancel:{subscription_id}``, the
        subscriber's own cancellation)."""
        if at_period_end:
            sub = self.client.v1.subscriptions.update(
                subscription_id,
                {"cancel_at_period_end": True},
                {"idempotency_key": idempotency_key or f"cancel:{subscription_id}"},
            )
        else:
            sub = self.client.v1.subscriptions.cancel(subscription_id)
        return sub.status

    # -- creators ----------------------------------------------------------------------------------
    def ensure_connect_account(self, creator_id: str, email: str | None = None) -> str:
        """An Express Connect account able to receive transfers, one per creator."""
        params: dict[str, Any] = {
            "type": "express",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"creator_id": creator_id},
        }
        if email:
            params["email"] = email
        account = self.client.v1.accounts.create(params, {"idempotency_key": f"account:{creator_id}"})
        return account.id

    def create_transfer(
        self, amount_cents: int, destination: str, idempotency_key: str, metadata: dict[str, str]
    ) -> str:
        """Pay ``amount_cents`` to a Connect account; the key (``payout:{creator}:{month}``) makes a
        retried payout a no-op. Returns the transfer id."""
        transfer = self.client.v1.transfers.create(
            {
                "amount": amount_cents,
                "currency": CURRENCY,
                "destination": destination,
                "metadata": {**metadata, "payout_key": idempotency_key},
            },
            {"idempotency_key": idempotency_key},
        )
        return transfer.id


def _is_monthly(price: stripe.Price, product_id: str, cents: int) -> bool:
    recurring = price.recurring
    return bool(
        price.active
        and price.unit_amount == cents
        and price.currency == CURRENCY
        and price.product == product_id
        and recurring is not None
        and recurring.interval == "month"
        and recurring.interval_count == 1
    )
