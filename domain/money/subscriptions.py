"""Subscription status from Stripe's subscription and invoice events, whatever order they arrive in.

Stripe delivers webhooks at least once and in no guaranteed order. Two things are folded per
subscription, each as a maximum over the set of events (so the result is independent of arrival
order and of repeats, and the table can be folded incrementally: previous states take part as events):

- the *snapshot*: every ``customer.subscription.*`` event carries the whole subscription, so its state
  is the object of its latest event, where latest means the greatest ``(terminal, created, type rank,
  event id)``. ``terminal``: a subscription that reached ``canceled`` or ``incomplete_expired`` can
  never become live again (Stripe refuses to reactivate it), so such a snapshot beats every
  non-terminal one, even one with a later or equal timestamp that arrived late; ``created`` is Stripe's
  event time (whole seconds); within one second a ``created`` event comes before an ``updated`` one,
  which comes before ``deleted``; the event id breaks the remaining ties;
- the *latest invoice event*: ``invoice.payment_failed`` or ``invoice.paid`` (greatest ``(created,
  failed before paid, event id)``), with the invoice's own ``created`` time.

Stripe statuses map to the seed's four plus ``past_due`` (:data:`STATUS_OF_STRIPE`): ``trialing`` ->
trial; ``active`` -> active; ``past_due`` -> past_due; ``canceled`` -> cancelled (ended by the
subscriber or an operator); ``incomplete``, ``incomplete_expired``, ``unpaid`` and ``paused`` ->
expired (no paid period covers today: first payment pending or failed, retries exhausted, or a trial
that ended without payment). A live subscription (trialing, active, past_due) takes its status from
whichever is newer, the snapshot or the latest invoice event (the invoice wins a tie): a failed
invoice makes it past_due, a paid one active (trial while trialing: the trial's $0 invoice). So
``invoice.payment_failed`` makes a subscription past_due even before Stripe's own
``customer.subscription.updated`` arrives, and ``invoice.paid`` ends it.

Access (SPEC 6, :func:`access`): trial and active give access; past_due gives access for
:data:`PAST_DUE_GRACE` (3 days) after the failed invoice, measured from the invoice's ``created`` time
(``past_due_since``; Stripe's retries of one invoice keep it, so retries never extend the grace), up to
and excluding ``past_due_since + 3 days``; after that none until an invoice is paid. A past_due
snapshot without a known failed invoice gives none (fail closed until the failure's event arrives).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import polars as pl

from domain.tables.schemas import UTC_TS, conform

Status = Literal["trial", "active", "past_due", "cancelled", "expired"]

STATUS_OF_STRIPE: dict[str, Status] = {
    "trialing": "trial",
    "active": "active",
    "past_due": "past_due",
    "canceled": "cancelled",
    "incomplete": "expired",
    "incomplete_expired": "expired",
    "unpaid": "expired",
    "paused": "expired",
}
TERMINAL_STRIPE_STATUSES = frozenset({"canceled", "incomplete_expired"})
LIVE_STRIPE_STATUSES = frozenset({"trialing", "active", "past_due"})
"""Statuses whose access follows the latest invoice event when that is newer."""
ACCESS_STATUSES: frozenset[Status] = frozenset({"trial", "active"})
"""Statuses that give access at any time; past_due gives it for :data:`PAST_DUE_GRACE` only."""
PAST_DUE_GRACE = dt.timedelta(days=3)
"""SPEC 6: a past_due subscription keeps access this long after its failed invoice."""

EVENT_PREFIX = "customer.subscription."
_TYPE_RANK = {"customer.subscription.created": 0, "customer.subscription.deleted": 2}
"""Within one second: created (0) before any other update (1) before deleted (2)."""
INVOICE_FAILED = "invoice.payment_failed"
INVOICE_PAID = "invoice.paid"
_INVOICE_RANK = {INVOICE_FAILED: 0, INVOICE_PAID: 1}
"""Within one second a payment that succeeded comes after one that failed."""

META_MODEL = "model_id"
META_CREATOR = "creator_id"
META_USER = "user_id"
"""Metadata keys OddsForge sets on each Checkout Session and, through ``subscription_data``, on the
Stripe Subscription it creates (SPEC 8); Stripe copies them onto the subscription's invoices, which is
how revenue finds its model and creator."""

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
    "past_due_since": UTC_TS,
    "start_date": UTC_TS,
    "trial_end": UTC_TS,
    "current_period_end": UTC_TS,
    "cancel_at_period_end": pl.Boolean(),
    "terminal": pl.Boolean(),
    "event_created": UTC_TS,
    "event_rank": pl.Int8(),
    "event_id": pl.String(),
    "invoice_created": UTC_TS,
    "invoice_event_created": UTC_TS,
    "invoice_event_type": pl.String(),
    "invoice_event_id": pl.String(),
}
"""One row per subscription: its latest snapshot and latest invoice event. ``current_period_end`` is
the next billing date; ``past_due_since`` the failed invoice's creation while ``status`` is past_due;
the ``event_*``, ``terminal`` and ``invoice_*`` columns are the ordering keys that make folding
order-independent."""

_IDENTITY = ["customer_id", "user_id", "model_id", "creator_id"]
_SNAPSHOT = [
    c for c in SUBSCRIPTIONS if c not in ("status", "past_due_since") and not c.startswith("invoice_")
]
_INVOICE = ["subscription_id", *_IDENTITY, *(c for c in SUBSCRIPTIONS if c.startswith("invoice_"))]
_ORDER = ["terminal", "event_created", "event_rank", "event_id"]
_INVOICE_ORDER = ["invoice_event_created", "_invoice_rank", "invoice_event_id"]


def subscription_metadata(model_id: str, creator_id: str, user_id: str) -> dict[str, str]:
    """The metadata of a model's Checkout Session and of the Subscription it creates."""
    return {META_MODEL: model_id, META_CREATOR: creator_id, META_USER: user_id}


def status_of(stripe_status: str) -> Status:
    """The seed's status for a Stripe subscription status; an unknown status is an error, not a guess."""
    try:
        return STATUS_OF_STRIPE[stripe_status]
    except KeyError:
        raise ValueError(f"unknown Stripe subscription status {stripe_status!r}") from None


def access(now: dt.datetime) -> pl.Expr:
    """Whether a :data:`SUBSCRIPTIONS` row (only ``status`` and ``past_due_since`` are read) gives
    access to the model's analyses at ``now``: the one rule of SPEC 6 (see the module notes)."""
    grace = pl.col("past_due_since") + pl.duration(seconds=PAST_DUE_GRACE.total_seconds())
    in_grace = (pl.col("status") == "past_due") & (pl.lit(now).cast(UTC_TS) < grace).fill_null(False)
    return pl.col("status").is_in(list(ACCESS_STATUSES)) | in_grace


def with_access(subscriptions: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """The rows of ``subscriptions`` (any frame with ``status`` and ``past_due_since``) that give
    access at ``now``."""
    return subscriptions.filter(access(now))


def _ts(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _ref(value: Any) -> str | None:
    """A Stripe reference that may be an id or an expanded object."""
    if isinstance(value, Mapping):
        return value.get("id")
    return value if isinstance(value, str) else None


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


def invoice_metadata(invoice: Mapping[str, Any]) -> Mapping[str, Any]:
    """The OddsForge subscription metadata Stripe copied onto an invoice ({} when there is none).

    Looked up, in order, in ``subscription_details.metadata`` (API 2023-08 to 2025-02),
    ``parent.subscription_details.metadata`` (API 2025-03-31 and later), each line's ``metadata``
    (subscription lines reflect the subscription's metadata), then the invoice's own ``metadata``.
    """
    parent = invoice.get("parent") or {}
    lines = (invoice.get("lines") or {}).get("data") or []
    candidates = [
        (invoice.get("subscription_details") or {}).get("metadata"),
        (parent.get("subscription_details") or {}).get("metadata"),
        *(line.get("metadata") for line in lines),
        invoice.get("metadata"),
    ]
    return next((m for m in candidates if m and m.get(META_MODEL) and m.get(META_CREATOR)), {})


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills: ``subscription`` up to API 2025-02,
    ``parent.subscription_details.subscription`` after; None for an invoice outside subscriptions."""
    parent = invoice.get("parent") or {}
    return _ref(invoice.get("subscription")) or _ref(
        (parent.get("subscription_details") or {}).get("subscription")
    )


def subscription_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One ``customer.subscription.*`` event as the snapshot columns of a :data:`SUBSCRIPTIONS` row."""
    if not str(event.get("type", "")).startswith(EVENT_PREFIX):
        raise ValueError(f"event {event.get('id')} is a {event.get('type')}, not a subscription event")
    sub = event["data"]["object"]
    status_of(sub["status"])  # an unknown status is refused here, not folded
    meta = sub.get("metadata") or {}
    price = _price(sub)
    return {
        "subscription_id": sub["id"],
        "customer_id": _ref(sub.get("customer")),
        "user_id": meta.get(META_USER),
        "model_id": meta.get(META_MODEL),
        "creator_id": meta.get(META_CREATOR),
        "price_id": price.get("id"),
        "price_cents": price.get("unit_amount"),
        "stripe_status": sub["status"],
        "start_date": _ts(sub.get("start_date")),
        "trial_end": _ts(sub.get("trial_end")),
        "current_period_end": _ts(_period_end(sub)),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "terminal": sub["status"] in TERMINAL_STRIPE_STATUSES,
        "event_created": _ts(event["created"]),
        "event_rank": _TYPE_RANK.get(event["type"], 1),
        "event_id": event["id"],
    }


def invoice_row(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """An ``invoice.paid`` or ``invoice.payment_failed`` event as the invoice columns of a
    :data:`SUBSCRIPTIONS` row; None for an invoice outside subscriptions."""
    if event.get("type") not in _INVOICE_RANK:
        raise ValueError(f"event {event.get('id')} is a {event.get('type')}, not an invoice payment event")
    invoice = event["data"]["object"]
    subscription_id = invoice_subscription(invoice)
    if subscription_id is None:
        return None
    meta = invoice_metadata(invoice)
    return {
        "subscription_id": subscription_id,
        "customer_id": _ref(invoice.get("customer")),
        "user_id": meta.get(META_USER),
        "model_id": meta.get(META_MODEL),
        "creator_id": meta.get(META_CREATOR),
        "invoice_created": _ts(invoice.get("created", event["created"])),
        "invoice_event_created": _ts(event["created"]),
        "invoice_event_type": event["type"],
        "invoice_event_id": event["id"],
    }


def _latest(frame: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    return frame.sort(order).group_by("subscription_id", maintain_order=True).last()


def _status() -> pl.Expr:
    """The seed's status of a folded row: the snapshot's, unless a newer invoice event decides."""
    stripe = pl.col("stripe_status")
    mapped = stripe.replace_strict(STATUS_OF_STRIPE, default=None, return_dtype=pl.String())
    invoice_newer = pl.col("invoice_event_id").is_not_null() & (
        pl.col("event_created").is_null() | (pl.col("invoice_event_created") >= pl.col("event_created"))
    )
    failed = pl.col("invoice_event_type") == INVOICE_FAILED
    live = stripe.is_null() | stripe.is_in(list(LIVE_STRIPE_STATUSES))
    return (
        pl.when(~live)
        .then(mapped)
        .when(invoice_newer & failed)
        .then(pl.lit("past_due"))
        .when(invoice_newer & (stripe == "trialing"))
        .then(pl.lit("trial"))
        .when(invoice_newer)
        .then(pl.lit("active"))
        .otherwise(mapped)
    )


def subscription_states(
    events: Iterable[Mapping[str, Any]], previous: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The latest state of every subscription in ``previous`` or ``events`` (see the module notes).

    Other events are skipped, so the whole Stripe inbox can be passed. The result does not depend on
    the order of ``events`` nor on repeats, and ``subscription_states(b, subscription_states(a)) ==
    subscription_states(a + b)``.
    """
    snapshots, invoices = [], []
    for event in events:
        kind = str(event.get("type", ""))
        if kind.startswith(EVENT_PREFIX):
            snapshots.append(subscription_row(event))
        elif kind in _INVOICE_RANK and (row := invoice_row(event)) is not None:
            invoices.append(row)
    before = pl.DataFrame(schema=SUBSCRIPTIONS) if previous is None else conform(previous, SUBSCRIPTIONS)
    snapshot_schema = {c: SUBSCRIPTIONS[c] for c in _SNAPSHOT}
    invoice_schema = {c: SUBSCRIPTIONS[c] for c in _INVOICE}
    snapshot = _latest(
        pl.concat(
            [
                before.filter(pl.col("event_id").is_not_null()).select(_SNAPSHOT),
                pl.DataFrame(snapshots, schema=snapshot_schema),
            ]
        ),
        _ORDER,
    )
    invoice = _latest(
        pl.concat(
            [
                before.filter(pl.col("invoice_event_id").is_not_null()).select(_INVOICE),
                pl.DataFrame(invoices, schema=invoice_schema),
            ]
        ).with_columns(pl.col("invoice_event_type").replace_strict(_INVOICE_RANK).alias("_invoice_rank")),
        _INVOICE_ORDER,
    ).drop("_invoice_rank")
    joined = snapshot.join(invoice, on="subscription_id", how="full", coalesce=True, suffix="_invoice")
    status = _status()
    return conform(
        joined.with_columns(
            *(pl.coalesce(c, f"{c}_invoice").alias(c) for c in _IDENTITY),
            status.alias("status"),
            pl.when((status == "past_due") & (pl.col("invoice_event_type") == INVOICE_FAILED))
            .then(pl.col("invoice_created"))
            .alias("past_due_since"),
        ),
        SUBSCRIPTIONS,
    ).sort("subscription_id")
