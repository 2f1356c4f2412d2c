"""Subscription status from Stripe's ``customer.subscription.*`` events, whatever order they arrive in.

Stripe delivers webhooks at least once and in no guaranteed order. Every subscription event carries
the whole subscription object, so the state of a subscription is the object of its *latest* event,
where latest means the greatest ``(terminal, created, type rank, event id)``:

- ``terminal``: a subscription that reached ``canceled`` or ``incomplete_expired`` can never become
  live again (Stripe refuses to reactivate it), so such a snapshot beats every non-terminal one, even
  one with a later or equal timestamp that arrived late;
- ``created`` is Stripe's event time (whole seconds); within one second a ``created`` event comes
  before an ``updated`` one, which comes before ``deleted``; the event id breaks the remaining ties.

Taking a maximum over a set is independent of arrival order and of repeats, and the state table can
be folded incrementally (previous states take part as events).

Stripe statuses map to the seed's four (``trial, active, cancelled, expired``):
``trialing`` -> trial; ``active`` and ``past_due`` -> active (Stripe is still retrying the payment,
so access continues through its retry window); ``canceled`` -> cancelled (ended by the subscriber or an
operator); ``incomplete``, ``incomplete_expired``, ``unpaid`` and ``paused`` -> expired (no paid
period covers today: first payment pending or failed, retries exhausted, or a trial that ended without
a payment method). Only trial and active give access.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import polars as pl

from domain.tables.schemas import UTC_TS

Status = Literal["trial", "active", "cancelled", "expired"]

STATUS_OF_STRIPE: dict[str, Status] = {
    "trialing": "trial",
    "active": "active",
    "past_due": "active",
    "canceled": "cancelled",
    "incomplete": "expired",
    "incomplete_expired": "expired",
    "unpaid": "expired",
    "paused": "expired",
}
TERMINAL_STRIPE_STATUSES = frozenset({"canceled", "incomplete_expired"})
ACCESS_STATUSES: frozenset[Status] = frozenset({"trial", "active"})

EVENT_PREFIX = "customer.subscription."
_TYPE_RANK = {"customer.subscription.created": 0, "customer.subscription.deleted": 2}
"""Within one second: created (0) before any other update (1) before deleted (2)."""

META_MODEL = "model_id"
META_CREATOR = "creator_user_id"
META_USER = "user_id"
"""Metadata keys OddsForge sets on each Stripe Subscription (the seed's ``metadata``); Stripe copies
them onto the subscription's invoices, which is how revenue finds its model and creator."""

SUBSCRIPTIONS: dict[str, pl.DataType] = {
    "subscription_id": pl.String(),
    "customer_id": pl.String(),
    "user_id": pl.String(),
    "model_id": pl.String(),
    "creator_id": pl.String(),
    "price_id": pl.String(),
    "price_cents": pl.Int64(),
    "stripe_status": pl.String(),
    "status": pl.String(),
    "start_date": UTC_TS,
    "trial_end": UTC_TS,
    "current_period_end": UTC_TS,
    "cancel_at_period_end": pl.Boolean(),
    "terminal": pl.Boolean(),
    "event_created": UTC_TS,
    "event_rank": pl.Int8(),
    "event_id": pl.String(),
}
"""One row per subscription: its latest snapshot. ``current_period_end`` is the next billing date;
the ``event_*`` and ``terminal`` columns are the ordering key that makes folding order-independent."""

_ORDER = ["terminal", "event_created", "event_rank", "event_id"]


def subscription_metadata(model_id: str, creator_id: str, user_id: str) -> dict[str, str]:
    """The metadata to create a model's Stripe Subscription with."""
    return {META_MODEL: model_id, META_CREATOR: creator_id, META_USER: user_id}


def status_of(stripe_status: str) -> Status:
    """The seed's status for a Stripe subscription status; an unknown status is an error, not a guess."""
    try:
        return STATUS_OF_STRIPE[stripe_status]
    except KeyError:
        raise ValueError(f"unknown Stripe subscription status {stripe_status!r}") from None


def has_access(status: str) -> bool:
    """Whether a subscriber in ``status`` may read the model's analyses (SPEC section 6)."""
    return status in ACCESS_STATUSES


def _ts(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _price(sub: Mapping[str, Any]) -> Mapping[str, Any]:
    items = (sub.get("items") or {}).get("data") or []
    price = items[0].get("price") if items else None
    return price if isinstance(price, Mapping) else {}


def _period_end(sub: Mapping[str, Any]) -> int | None:
    """``current_period_end`` lives on the subscription up to API 2025-03-31 and on its items after."""
    if sub.get("current_period_end") is not None:
        return sub["current_period_end"]
    items = (sub.get("items") or {}).get("data") or []
    ends = [i["current_period_end"] for i in items if i.get("current_period_end") is not None]
    return min(ends) if ends else None


def subscription_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One ``customer.subscription.*`` event as a row of :data:`SUBSCRIPTIONS`."""
    if not str(event.get("type", "")).startswith(EVENT_PREFIX):
        raise ValueError(f"event {event.get('id')} is a {event.get('type')}, not a subscription event")
    sub = event["data"]["object"]
    meta = sub.get("metadata") or {}
    price = _price(sub)
    customer = sub.get("customer")
    return {
        "subscription_id": sub["id"],
        "customer_id": customer.get("id") if isinstance(customer, Mapping) else customer,
        "user_id": meta.get(META_USER),
        "model_id": meta.get(META_MODEL),
        "creator_id": meta.get(META_CREATOR),
        "price_id": price.get("id"),
        "price_cents": price.get("unit_amount"),
        "stripe_status": sub["status"],
        "status": status_of(sub["status"]),
        "start_date": _ts(sub.get("start_date")),
        "trial_end": _ts(sub.get("trial_end")),
        "current_period_end": _ts(_period_end(sub)),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "terminal": sub["status"] in TERMINAL_STRIPE_STATUSES,
        "event_created": _ts(event["created"]),
        "event_rank": _TYPE_RANK.get(event["type"], 1),
        "event_id": event["id"],
    }


def subscription_states(
    events: Iterable[Mapping[str, Any]], previous: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The latest state of every subscription in ``previous`` or ``events`` (see the module notes).

    Non-subscription events are skipped, so the whole Stripe inbox can be passed. The result does not
    depend on the order of ``events`` nor on repeats, and ``subscription_states(b,
    subscription_states(a)) == subscription_states(a + b)``.
    """
    rows = [subscription_row(e) for e in events if str(e.get("type", "")).startswith(EVENT_PREFIX)]
    frames = [pl.DataFrame(rows, schema=SUBSCRIPTIONS)]
    if previous is not None:
        frames.insert(0, previous.select(list(SUBSCRIPTIONS)).cast(pl.Schema(SUBSCRIPTIONS)))
    return (
        pl.concat(frames)
        .sort(_ORDER)
        .group_by("subscription_id", maintain_order=True)
        .last()
        .sort("subscription_id")
    )
