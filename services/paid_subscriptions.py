"""Starting and cancelling paid subscriptions in Stripe, for the marketplace's subscribe endpoints.

Stripe owns a paid subscription's state: these functions ask Stripe for it and record what they
asked in the inbox; the ``subscriptions`` table then follows Stripe's ``customer.subscription.*``
webhooks (:func:`domain.money.subscriptions.subscription_states`). Stripe keeps idempotency keys for 24
hours only, so the ids Stripe returns are stored and reused (the seed's ``stripe_price_id``,
``stripe_customer_id``, ``stripe_subscription_id``) under ``inbox/stripe/`` (``stores/layout.py``):
a model's product and price at each amount, the user's customer, and per user and model the
numbered subscription attempts, each with the subscription Stripe created for it and a
cancellation when the user asks for one.

An attempt is recorded before Stripe is called and Stripe is called with the attempt's key
(``sub:{user}:{model}:{n}``), so a retried request never creates a second subscription; a new
attempt starts only once the previous subscription has ended. The caller gives the time (the API's
clock) that the records carry.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from domain.errors import UserError
from domain.money.subscriptions import (
    TERMINAL_STRIPE_STATUSES,
    status_of,
    subscription_metadata,
)
from services.payments import Payments
from stores.lake import Lake
from stores.layout import (
    paid_attempt_key,
    paid_attempts_prefix,
    parse_paid_attempt_key,
    stripe_customer_key,
    stripe_price_key,
    stripe_prices_prefix,
)


class NoPaidSubscriptionError(UserError):
    """The user holds no paid subscription to the model."""


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


def _read(lake: Lake, key: str) -> dict[str, Any]:
    return json.loads(lake.get_bytes(key))


def model_price(lake: Lake, payments: Payments, model_row: dict[str, Any], now: dt.datetime) -> str:
    """The Stripe price id of the model at its current ``price_cents``.

    The price recorded last is the model's live price: Stripe keeps it while the amount is unchanged;
    a new amount gets a new price and the previous one is archived (existing subscribers keep it).
    """
    model_id, cents = model_row["model_id"], int(model_row["price_cents"])
    key = stripe_price_key(model_id, cents)
    stored = [_read(lake, k) for k in lake.list_keys(stripe_prices_prefix(model_id)) if k.endswith(".json")]
    mine = next((s for s in stored if s["price_cents"] == cents), None)
    latest = max(stored, key=lambda s: s["recorded_at"], default=None)
    current = latest["price_id"] if latest else None
    product_id, price_id = payments.ensure_product_and_price(model_id, model_row["name"], cents, current)
    if mine is None or mine["price_id"] != price_id:
        record = {
            "model_id": model_id,
            "price_cents": cents,
            "product_id": product_id,
            "price_id": price_id,
            "recorded_at": now.isoformat(),
        }
        # A pointer to the live price at this amount: replaced when the model returns to an amount
        # whose earlier price was archived.
        lake.put_bytes(key, _json(record))
    return price_id


def customer(lake: Lake, payments: Payments, user_id: str) -> str:
    """The user's Stripe customer id, created once and stored."""
    key = stripe_customer_key(user_id)
    if not lake.exists(key):
        lake.put_new(key, _json({"user_id": user_id, "customer_id": payments.ensure_customer(user_id)}))
    return _read(lake, key)["customer_id"]


def _latest_attempt(lake: Lake, user_id: str, model_id: str) -> int:
    keys = lake.list_keys(paid_attempts_prefix(user_id, model_id))
    found = (parse_paid_attempt_key(k, user_id, model_id) for k in keys)
    return max((n for n in found if n is not None), default=0)


def _stripe_status(payments: Payments, subscription_id: str) -> tuple[str, bool]:
    sub = payments.client.v1.subscriptions.retrieve(subscription_id)
    return sub.status, bool(sub.cancel_at_period_end)


def start_paid_subscription(
    lake: Lake, payments: Payments, user_id: str, model_row: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """Subscribe ``user_id`` to a paid model (``model_row``: model_id, version, owner_user_id, name,
    price_cents, trial_days, status) with the model's trial; idempotent while the user's previous
    subscription to the model is live (its state is returned with ``created: false``)."""
    model_id, creator = model_row["model_id"], model_row["owner_user_id"]
    if int(model_row["price_cents"]) <= 0:
        raise ValueError(f"model {model_id} is free: it needs no Stripe subscription")
    attempt = _latest_attempt(lake, user_id, model_id)
    if attempt:
        done = paid_attempt_key(user_id, model_id, attempt, "subscription")
        if lake.exists(done):
            sub_id = _read(lake, done)["subscription_id"]
            status, cancelling = _stripe_status(payments, sub_id)
            if status not in TERMINAL_STRIPE_STATUSES:
                return _answer(model_row, user_id, attempt, sub_id, status, cancelling, created=False)
            attempt += 1
    else:
        attempt = 1
    intent_key = paid_attempt_key(user_id, model_id, attempt)
    if not lake.exists(intent_key):
        intent = {
            "user_id": user_id,
            "model_id": model_id,
            "version": model_row.get("version"),
            "creator_user_id": creator,
            "attempt": attempt,
            "price_id": model_price(lake, payments, model_row, now),
            "customer_id": customer(lake, payments, user_id),
            "trial_days": int(model_row.get("trial_days") or 0),
            "requested_at": now.isoformat(),
        }
        lake.put_new(intent_key, _json(intent))
    intent = _read(lake, intent_key)  # a concurrent request's intent wins: same Stripe key, same call
    sub_id = payments.create_subscription(
        intent["customer_id"],
        intent["price_id"],
        intent["trial_days"],
        subscription_metadata(model_id, creator, user_id),
        attempt=attempt,
    )
    lake.put_new(
        paid_attempt_key(user_id, model_id, attempt, "subscription"),
        _json({"subscription_id": sub_id, "recorded_at": now.isoformat()}),
    )
    status, cancelling = _stripe_status(payments, sub_id)
    return _answer(model_row, user_id, attempt, sub_id, status, cancelling, created=True)


def cancel_paid_subscription(
    lake: Lake, payments: Payments, user_id: str, model_id: str, now: dt.datetime
) -> dict[str, Any]:
    """Cancel the user's subscription to a paid model at the end of the paid period (or of the
    trial); access continues until then. Raises :class:`NoPaidSubscriptionError` when there is none."""
    attempt = _latest_attempt(lake, user_id, model_id)
    done = paid_attempt_key(user_id, model_id, attempt, "subscription") if attempt else None
    if done is None or not lake.exists(done):
        raise NoPaidSubscriptionError(f"user {user_id} has no paid subscription to model {model_id}")
    sub_id = _read(lake, done)["subscription_id"]
    status, cancelling = _stripe_status(payments, sub_id)
    if status in TERMINAL_STRIPE_STATUSES:
        raise NoPaidSubscriptionError(f"the subscription to model {model_id} has already ended")
    if not cancelling:
        lake.put_new(
            paid_attempt_key(user_id, model_id, attempt, "cancel"),
            _json({"subscription_id": sub_id, "requested_at": now.isoformat()}),
        )
        status = payments.cancel_subscription(sub_id, at_period_end=True)
    return {
        "model_id": model_id,
        "user_id": user_id,
        "subscription_id": sub_id,
        "stripe_status": status,
        "status": status_of(status),
        "cancel_at_period_end": True,
    }


def _answer(
    model_row: dict[str, Any],
    user_id: str,
    attempt: int,
    subscription_id: str,
    stripe_status: str,
    cancelling: bool,
    *,
    created: bool,
) -> dict[str, Any]:
    return {
        "model_id": model_row["model_id"],
        "user_id": user_id,
        "creator_user_id": model_row["owner_user_id"],
        "price_cents": int(model_row["price_cents"]),
        "trial_days": int(model_row.get("trial_days") or 0),
        "attempt": attempt,
        "subscription_id": subscription_id,
        "stripe_status": stripe_status,
        "status": status_of(stripe_status),
        "cancel_at_period_end": cancelling,
        "created": created,
    }
