"""Paying for a model (SPEC 8): a Stripe Checkout Session starts a paid subscription, Stripe cancels
it, and a billing portal session lets the subscriber manage it.

Stripe owns a paid subscription's state: the API answers the Checkout Session's URL and access begins
when Stripe's subscription events arrive (the ``subscriptions`` table follows them,
:func:`domain.money.subscriptions.subscription_states`). Stripe keeps idempotency keys for 24 hours
only, so the ids Stripe returns are stored and reused (the seed's ``stripe_price_id``,
``stripe_customer_id``) under ``inbox/stripe/`` (``stores/layout.py``): a model's product and price at
each amount, the user's customer, and per user and model the numbered checkout attempts, each with
the session Stripe created for it and a cancellation when the user asks for one.

An attempt (the price, trial, customer and URLs of one checkout) is recorded before Stripe is called
and Stripe is called with the attempt's key (``checkout:{user}:{model}:{price}:{n}``), so a retried
request never opens a second session. Subscribing again returns the open session of the same price;
a new attempt starts only when there is none and no subscription of an earlier checkout is still live
(an expired session, or a subscription that ended). The caller gives the time (the API's clock).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import stripe

from domain.errors import UserError
from domain.money.subscriptions import status_of, subscription_metadata
from services.payments import Payments
from stores.lake import Lake
from stores.layout import (
    paid_attempt_key,
    paid_attempts_prefix,
    parse_paid_attempt_key,
    stripe_customer_key,
    stripe_price_key,
    stripe_prices_prefix,
    user_paid_attempts_prefix,
)

ENDED = frozenset({"cancelled", "expired"})
"""Statuses after which the user may check out again."""


class NoPaidSubscriptionError(UserError):
    """The user holds no paid subscription to the model."""


class AlreadySubscribedError(UserError):
    """The user's subscription to the model (from an earlier checkout) is still live."""


class NoCustomerError(UserError):
    """The user has never checked out: Stripe holds no customer for them."""


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


def stored_customer(lake: Lake, user_id: str) -> str:
    """The user's Stripe customer id; :class:`NoCustomerError` before their first checkout."""
    key = stripe_customer_key(user_id)
    if not lake.exists(key):
        raise NoCustomerError(f"user {user_id} has no billing account yet: subscribe to a paid model first")
    return _read(lake, key)["customer_id"]


def _attempts(lake: Lake, user_id: str, model_id: str) -> list[int]:
    keys = lake.list_keys(paid_attempts_prefix(user_id, model_id))
    found = (parse_paid_attempt_key(k, user_id, model_id) for k in keys)
    return sorted(n for n in found if n is not None)


def _sessions(
    lake: Lake, payments: Payments, user_id: str, model_id: str
) -> Iterator[tuple[dict[str, Any], stripe.checkout.Session]]:
    """``(attempt, session)`` of the pair's checkouts, newest first, up to the newest completed one
    (whose subscription is the pair's current one; older checkouts cannot matter)."""
    for n in reversed(_attempts(lake, user_id, model_id)):
        done = paid_attempt_key(user_id, model_id, n, "session")
        if not lake.exists(done):
            continue
        session = payments.checkout_session(_read(lake, done)["session_id"])
        yield _read(lake, paid_attempt_key(user_id, model_id, n)), session
        if session.status == "complete":
            return


def _subscription_of(session: stripe.checkout.Session) -> str | None:
    sub = session.subscription
    return sub if isinstance(sub, str) or sub is None else sub.id


def has_checkouts(lake: Lake, user_id: str) -> bool:
    """Whether the user ever started a checkout (so Stripe may hold subscriptions of theirs)."""
    return next(iter(lake.list_keys(user_paid_attempts_prefix(user_id))), None) is not None


def checkout_subscription_ids(lake: Lake, payments: Payments, user_id: str) -> list[str]:
    """The Stripe subscriptions the user's completed checkouts started, one per model (the newest:
    a new checkout opens only after the earlier subscription ended), live or ended."""
    prefix = user_paid_attempts_prefix(user_id)
    models = sorted({key.removeprefix(prefix).split("/", 1)[0] for key in lake.list_keys(prefix)})
    found = []
    for model_id in models:
        for _, session in _sessions(lake, payments, user_id, model_id):
            sub_id = _subscription_of(session)
            if session.status == "complete" and sub_id is not None:
                found.append(sub_id)
    return found


def start_checkout(
    lake: Lake,
    payments: Payments,
    user_id: str,
    model_row: dict[str, Any],
    now: dt.datetime,
    urls: tuple[str, str],
) -> dict[str, Any]:
    """A Checkout Session for ``user_id`` to subscribe to a paid model (``model_row``: model_id,
    version, owner_user_id, name, price_cents, trial_days) with the model's trial; ``urls`` are the
    success and cancel URLs. An open session of the current price is returned again (``created:
    false``); :class:`AlreadySubscribedError` while the subscription of a completed checkout is live.
    """
    model_id, creator = model_row["model_id"], model_row["owner_user_id"]
    if int(model_row["price_cents"]) <= 0:
        raise ValueError(f"model {model_id} is free: it needs no Stripe checkout")
    price_id = model_price(lake, payments, model_row, now)
    for attempt, session in _sessions(lake, payments, user_id, model_id):
        if session.status == "open" and attempt["price_id"] == price_id:
            return _answer(model_row, attempt, session, created=False)
        sub_id = _subscription_of(session)
        if session.status == "complete" and sub_id is not None:
            status, _ = payments.subscription_status(sub_id)
            if status_of(status) not in ENDED:
                raise AlreadySubscribedError(
                    f"you already subscribe to model {model_id} ({status}): manage it through POST "
                    "/billing/portal or leave it through DELETE /marketplace/unsubscribe"
                )
    attempts = _attempts(lake, user_id, model_id)
    n = attempts[-1] if attempts else 0
    pending = n and not lake.exists(paid_attempt_key(user_id, model_id, n, "session"))
    if not (pending and _read(lake, paid_attempt_key(user_id, model_id, n))["price_id"] == price_id):
        n += 1  # otherwise: the last attempt never reached Stripe (a crash, an outage); retry it
    intent_key = paid_attempt_key(user_id, model_id, n)
    if not lake.exists(intent_key):
        intent = {
            "user_id": user_id,
            "model_id": model_id,
            "version": model_row.get("version"),
            "creator_id": creator,
            "attempt": n,
            "price_id": price_id,
            "price_cents": int(model_row["price_cents"]),
            "customer_id": customer(lake, payments, user_id),
            "trial_days": int(model_row.get("trial_days") or 0),
            "success_url": urls[0],
            "cancel_url": urls[1],
            "requested_at": now.isoformat(),
        }
        lake.put_new(intent_key, _json(intent))
    intent = _read(lake, intent_key)  # a concurrent request's intent wins: same Stripe key, same call
    session = payments.create_checkout_session(
        intent["customer_id"],
        intent["price_id"],
        intent["trial_days"],
        subscription_metadata(model_id, creator, user_id),
        (intent["success_url"], intent["cancel_url"]),
        idempotency_key=f"checkout:{user_id}:{model_id}:{intent['price_id']}:{n}",
    )
    lake.put_new(
        paid_attempt_key(user_id, model_id, n, "session"),
        _json({"session_id": session.id, "recorded_at": now.isoformat()}),
    )
    return _answer(model_row, intent, session, created=True)


def cancel_paid_subscription(
    lake: Lake, payments: Payments, user_id: str, model_id: str, now: dt.datetime
) -> dict[str, Any]:
    """Cancel the user's subscription to a paid model at the end of the paid period (or of the
    trial); access continues until then. Raises :class:`NoPaidSubscriptionError` when there is none."""
    for attempt, session in _sessions(lake, payments, user_id, model_id):
        sub_id = _subscription_of(session)
        if session.status != "complete" or sub_id is None:
            continue
        status, cancelling = payments.subscription_status(sub_id)
        if status_of(status) in ENDED:
            break
        if not cancelling:
            lake.put_new(
                paid_attempt_key(user_id, model_id, attempt["attempt"], "cancel"),
                _json({"subscription_id": sub_id, "requested_at": now.isoformat()}),
            )
            status = payments.cancel_subscription(sub_id, at_period_end=True)
        return {
            "model_id": model_id,
            "user_id": user_id,
            "creator_id": attempt["creator_id"],
            "price_cents": attempt["price_cents"],
            "subscription_id": sub_id,
            "stripe_status": status,
            "status": status_of(status),
            "cancel_at_period_end": True,
        }
    raise NoPaidSubscriptionError(f"user {user_id} has no live paid subscription to model {model_id}")


def _answer(
    model_row: dict[str, Any], attempt: dict[str, Any], session: stripe.checkout.Session, *, created: bool
) -> dict[str, Any]:
    return {
        "model_id": model_row["model_id"],
        "session_id": session.id,
        "checkout_url": session.url,
        "expires_at": dt.datetime.fromtimestamp(session.expires_at, dt.UTC) if session.expires_at else None,
        "price_cents": attempt["price_cents"],
        "trial_days": attempt["trial_days"],
        "created": created,
    }
