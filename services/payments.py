"""The platform's Stripe account: products and prices for paid models, customers, Checkout Sessions
that start subscriptions, billing portal sessions, Connect accounts for creators and the Transfers
that pay them (SPEC section 8). A plain class used by the API and the pipeline alike (there through
the thin resource in ``resources/payments.py``).

Every POST carries an idempotency key derived from the business key (``product:{model_id}``,
``price:{model_id}:{cents}:{previous price}``, ``customer:{user_id}``,
``checkout:{user}:{model}:{price}:{n}``, ``portal:{customer}:{unix second}``,
``connect-account:{creator_id}``, ``account-link:{creator_id}:{request time}``,
``payout:{creator_id}:{YYYY-MM}``, ``refund:{subscription_id}:{invoice_id}``), so a retried or
re-run step never creates a second object: Stripe answers a repeated key with the first response.
Stripe keeps keys for 24 hours, so callers store the ids these methods return (the seed's
``stripe_customer_id``, ``stripe_price_id``, the Checkout Session that leads to each
``stripe_subscription_id``, the creator's Connect account) and call a create only when they hold
none. Products get a deterministic id (``model_{model_id}``) and are idempotent for ever.

``api_base`` points the SDK at another server (``STRIPE_API_BASE``), which is how the tests run
against a local server that checks each request against Stripe's OpenAPI description.
"""

from __future__ import annotations

import os
import re
from typing import Any

import stripe

from domain.money.accounts import CREATOR_METADATA
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

    def create_checkout_session(
        self,
        customer_id: str,
        price_id: str,
        trial_days: int,
        metadata: dict[str, str],
        urls: tuple[str, str],
        idempotency_key: str,
    ) -> stripe.checkout.Session:
        """A Checkout Session in subscription mode for one model's price (SPEC 8).

        ``metadata`` is :func:`domain.money.subscriptions.subscription_metadata`, set on the session
        and, through ``subscription_data``, on the subscription it creates (Stripe copies it onto every
        invoice, which is how revenue finds its model and creator). ``trial_days`` 0 means no trial
        (Stripe refuses ``trial_period_days=0``). ``urls`` are where Stripe sends the subscriber after
        paying and after giving up (``{CHECKOUT_SESSION_ID}`` in the first is filled in by Stripe).
        """
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if trial_days > 0:
            subscription_data["trial_period_days"] = trial_days
        success_url, cancel_url = urls
        return self.client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": metadata[META_USER],
                "line_items": [{"price": price_id, "quantity": 1}],
                "subscription_data": subscription_data,
                "metadata": metadata,
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            {"idempotency_key": idempotency_key},
        )

    def checkout_session(self, session_id: str) -> stripe.checkout.Session:
        """A Checkout Session as Stripe holds it now (``open``, ``complete`` with its subscription, or
        ``expired``)."""
        return self.client.v1.checkout.sessions.retrieve(session_id)

    def subscription_status(self, subscription_id: str) -> tuple[str, bool]:
        """``(Stripe status, cancel_at_period_end)`` of a subscription."""
        sub = self.client.v1.subscriptions.retrieve(subscription_id)
        return sub.status, bool(sub.cancel_at_period_end)

    def create_portal_session(self, customer_id: str, return_url: str, at: int) -> str:
        """The URL of a billing portal session where the customer manages payment methods and
        cancels; ``at`` (a Unix second) keys it, so the SDK's retries of one request open one session."""
        session = self.client.v1.billing_portal.sessions.create(
            {"customer": customer_id, "return_url": return_url},
            {"idempotency_key": f"portal:{customer_id}:{at}"},
        )
        return session.url

    def cancel_subscription(
        self, subscription_id: str, at_period_end: bool = True, idempotency_key: str | None = None
    ) -> str:
        """Cancel a subscription, by default when the paid period ends; returns its Stripe status.

        ``idempotency_key`` names the business action of a cancellation at period end (default
        ``cancel:{subscription_id}``, the subscriber's own; a self-exclusion names its own). At once
        (``at_period_end=False``) is Stripe's ``DELETE``, without proration (a fair cancellation
        refunds the unused days itself, :meth:`refund`) and with the key ``cancel_now:{subscription_id}``
        (Stripe treats a DELETE as idempotent anyway). A subscription Stripe has already cancelled
        answers its status instead of an error.
        """
        if at_period_end:
            sub = self.client.v1.subscriptions.update(
                subscription_id,
                {"cancel_at_period_end": True},
                {"idempotency_key": idempotency_key or f"cancel:{subscription_id}"},
            )
            return sub.status
        try:
            sub = self.client.v1.subscriptions.cancel(
                subscription_id, {}, {"idempotency_key": f"cancel_now:{subscription_id}"}
            )
        except stripe.InvalidRequestError:
            sub = self.client.v1.subscriptions.retrieve(subscription_id)
            if sub.status != "canceled":
                raise
        return sub.status

    def refundable_cents(self, charge_id: str) -> int:
        """What is left to refund of a charge (an operator may have refunded part of it already):
        a refund over it would be refused by Stripe."""
        charge = self.client.v1.charges.retrieve(charge_id)
        return max(0, charge.amount - charge.amount_refunded)

    def refund(
        self,
        charge_id: str | None,
        payment_intent_id: str | None,
        amount_cents: int,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """Refund ``amount_cents`` of a charge (or of the payment intent that made it, for invoices
        that name only that); the key (``refund:{subscription}:{invoice}``) makes a retry a no-op.

        Returns ``refund_id``, ``created`` and the refunded ``charge`` as Stripe returned it with the
        refund (expanded, so its cumulative ``amount_refunded`` includes this refund).
        """
        if not (charge_id or payment_intent_id):
            raise ValueError("a refund needs the charge or the payment intent it gives back")
        target = {"charge": charge_id} if charge_id else {"payment_intent": payment_intent_id}
        refund = self.client.v1.refunds.create(
            {
                **target,
                "amount": amount_cents,
                "metadata": {**metadata, "refund_key": idempotency_key},
                "expand": ["charge"],
            },
            {"idempotency_key": idempotency_key},
        )
        charge = refund.charge
        if not isinstance(charge, stripe.Charge):
            raise stripe.APIError(f"refund {refund.id} came back without its charge expanded")
        return {
            "refund_id": refund.id,
            "created": refund.created,
            "charge": {
                "id": charge.id,
                "amount_refunded": charge.amount_refunded,
                "payment_intent": payment_intent_id or _plain_id(charge.payment_intent),
            },
        }

    # -- creators ----------------------------------------------------------------------------------
    def ensure_connect_account(self, creator_id: str, email: str | None = None) -> dict[str, Any]:
        """An Express Connect account for ``creator_id`` (one per creator, however often this is
        retried within Stripe's 24 hours: callers store its id), as Stripe's account object."""
        params: dict[str, Any] = {
            "type": "express",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {CREATOR_METADATA: creator_id},
        }
        if email:
            params["email"] = email
        account = self.client.v1.accounts.create(params, {"idempotency_key": f"connect-account:{creator_id}"})
        return account.to_dict()

    def create_onboarding_link(
        self, account_id: str, refresh_url: str, return_url: str, idempotency_key: str
    ) -> str:
        """The URL of a fresh Account Link to Stripe's onboarding for ``account_id`` (single use, valid
        for minutes: make one per request; ``idempotency_key`` names the request)."""
        link = self.client.v1.account_links.create(
            {
                "account": account_id,
                "type": "account_onboarding",
                "refresh_url": refresh_url,
                "return_url": return_url,
            },
            {"idempotency_key": idempotency_key},
        )
        return link.url

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


def _plain_id(value: Any) -> str | None:
    return getattr(value, "id", value) if value is not None else None


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
