"""A month of paid subscriptions for ``oddsforge demo``, delivered as signed Stripe webhooks.

The demo cannot reach Stripe, and the product has no fake Stripe. So the demo plays Stripe's part
only where Stripe would call us: it writes the events Stripe sends for subscribers of the demo's
paid models (``customer.subscription.created``, ``invoice.paid``, ``charge.refunded``, ...), in the
shape of API version 2025-03-31, signs each body with the real algorithm and a demo signing secret,
and hands it to the same verification and store the webhook endpoint uses. Everything after that
(ledger, balances, the payout plan) is the product's own code. Event ids are derived from the model
and subscriber, so running the demo again stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from typing import Any

from domain.money.payouts import month_bounds
from domain.money.subscriptions import subscription_metadata
from stores.lake import Lake
from stores.stripe_events import sign_payload, store_event, verify_stripe_signature

DEMO_MONTH = "2025-11"
DEMO_WEBHOOK_SECRET = "whsec_oddsforge_demo_only_not_a_stripe_secret"
DEMO_SUBSCRIBERS = 12
API_VERSION = "2025-03-31.basil"
HOUR = 3_600
DAY = 24 * HOUR


def demo_event(tag: str, kind: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event about ``obj``, its id derived from ``tag``, kind, object and time (so a re-run
    delivers the same event, which the inbox stores once)."""
    digest = hashlib.sha256(f"{tag}/{kind}/{obj['id']}/{created}".encode()).hexdigest()[:24]
    return {
        "id": f"evt_demo_{digest}",
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def _subscription(
    sub_id: str, customer: str, model: dict[str, Any], meta: dict[str, str], status: str, start: int, end: int
) -> dict[str, Any]:
    trial_end = start + int(model["trial_days"]) * DAY if model["trial_days"] else None
    price = {
        "id": f"price_demo_{model['model_id'][:40]}",
        "object": "price",
        "currency": "usd",
        "unit_amount": int(model["price_cents"]),
        "product": f"model_{model['model_id']}",
        "recurring": {"interval": "month", "interval_count": 1},
    }
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "metadata": meta,
        "start_date": start,
        "trial_start": start if trial_end else None,
        "trial_end": trial_end,
        "cancel_at_period_end": False,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub_id.removeprefix('sub_')}",
                    "object": "subscription_item",
                    "price": price,
                    "quantity": 1,
                    "current_period_start": start,
                    "current_period_end": end,
                }
            ],
        },
    }


def _invoice(
    invoice_id: str, customer: str, sub_id: str, meta: dict[str, str], cents: int, at: int, reason: str
) -> dict[str, Any]:
    payment = {
        "object": "invoice_payment",
        "status": "paid",
        "payment": {"type": "payment_intent", "payment_intent": f"pi_{invoice_id.removeprefix('in_')}"},
    }
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "status": "paid",
        "billing_reason": reason,
        "currency": "usd",
        "amount_due": cents,
        "amount_paid": cents,
        "created": at,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id, "metadata": meta},
        },
        "lines": {"object": "list", "data": [{"object": "line_item", "amount": cents, "metadata": meta}]},
        "payments": {"object": "list", "data": [payment] if cents else []},
    }


def demo_events(model: dict[str, Any], month: str = DEMO_MONTH, subscribers: int = DEMO_SUBSCRIBERS) -> list:
    """The Stripe events of ``month`` for ``subscribers`` users of a paid model (``model``: model_id,
    owner_user_id, price_cents, trial_days).

    Subscriber i starts on day ~i of the month with the model's trial (a $0 invoice); at the trial's
    end the subscription becomes active and the first month is paid. The last subscriber cancels
    during the trial; the one before is refunded in full two days after paying, and cancels.
    """
    start_of_month = int(month_bounds(month)[0].timestamp())
    tag = hashlib.sha256(model["model_id"].encode()).hexdigest()[:10]
    cents, trial = int(model["price_cents"]), int(model["trial_days"]) * DAY
    events = []
    for i in range(1, subscribers + 1):
        user = f"fan{i:02d}"
        meta = subscription_metadata(model["model_id"], model["owner_user_id"], user)
        sub_id, customer = f"sub_demo_{tag}_{user}", f"cus_demo_{user}"
        start = start_of_month + (i - 1) * 18 * HOUR + 9 * HOUR
        paid_at = start + trial
        status = "trialing" if trial else "active"
        period_end = paid_at if trial else start + 30 * DAY
        created = _subscription(sub_id, customer, model, meta, status, start, period_end)
        events.append(demo_event(tag, "customer.subscription.created", start, created))
        if trial:
            trial_invoice = f"in_demo_{tag}_{user}_0"
            first = _invoice(trial_invoice, customer, sub_id, meta, 0, start, "subscription_create")
            events.append(demo_event(tag, "invoice.paid", start, first))
        if i == subscribers:  # cancels during the trial: never charged
            cancel_at = start + 3 * DAY
            ended = created | {"status": "canceled", "canceled_at": cancel_at, "ended_at": cancel_at}
            events.append(demo_event(tag, "customer.subscription.deleted", cancel_at, ended))
            continue
        active = _subscription(sub_id, customer, model, meta, "active", start, paid_at + 30 * DAY)
        invoice_id = f"in_demo_{tag}_{user}_1"
        invoice = _invoice(invoice_id, customer, sub_id, meta, cents, paid_at, "subscription_cycle")
        events.append(demo_event(tag, "customer.subscription.updated", paid_at, active))
        events.append(demo_event(tag, "invoice.paid", paid_at + 60, invoice))
        if i == subscribers - 1:  # refunded in full, then cancelled
            refund_at = paid_at + 2 * DAY
            charge = {
                "id": f"ch_{invoice_id.removeprefix('in_')}",
                "object": "charge",
                "amount": cents,
                "amount_refunded": cents,
                "refunded": True,
                "currency": "usd",
                "customer": customer,
                "payment_intent": f"pi_{invoice_id.removeprefix('in_')}",
            }
            events.append(demo_event(tag, "charge.refunded", refund_at, charge))
            ended = active | {"status": "canceled", "canceled_at": refund_at, "ended_at": refund_at}
            events.append(demo_event(tag, "customer.subscription.deleted", refund_at + 60, ended))
    return events


def deliver(lake: Lake, events: list[dict[str, Any]], secret: str, now: float) -> dict[str, int]:
    """Sign each event as Stripe would at ``now`` and pass it through the webhook's verification and
    store, in a shuffled order with one redelivery (Stripe guarantees neither order nor uniqueness)."""
    order = list(events)
    random.Random(7).shuffle(order)
    if order:
        order.append(order[len(order) // 2])
    stored = 0
    for event in order:
        payload = json.dumps(event).encode()
        header = sign_payload(payload, secret, int(now))
        stored += store_event(lake, verify_stripe_signature(payload, header, secret, now=now))
    return {"delivered": len(order), "stored": stored, "duplicates": len(order) - stored}


def deliver_demo_month(lake: Lake, paid_models: list[dict[str, Any]], month: str = DEMO_MONTH) -> dict:
    """A month of subscriptions to each paid demo model, delivered as signed webhooks."""
    events = [e for model in paid_models for e in demo_events(model, month)]
    counts = deliver(lake, events, DEMO_WEBHOOK_SECRET, dt.datetime.now(dt.UTC).timestamp())
    return {"month": month, "models": [m["model_id"] for m in paid_models], **counts}
