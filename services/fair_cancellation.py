"""Fair cancellation (SPEC 6): end every paid subscription of a suspended or archived model at once
through Stripe and refund the unused days of what it paid (:mod:`domain.money.refunds`).

Per subscription, records go to ``inbox/cancellations/{subscription_id}/`` (``stores/layout.py``),
each created once, in this order: the cancellation's intent (its time and reason), Stripe's ``DELETE``
(key ``cancel_now:{subscription}``), what Stripe answered; then per paid invoice whose period has not
ended, the refund's intent (amount, charge), Stripe's Refund (key ``refund:{subscription}:{invoice}``),
the Refund Stripe returned. A run that dies anywhere is re-run safely: a recorded result is never
asked again, a recorded intent is asked with the same key (Stripe answers with the first Refund),
and the amount is the one first recorded. A refund intent older than Stripe remembers keys
(:data:`stores.payouts.STRIPE_KEY_MEMORY`) without a result is not retried but reported
``unconfirmed`` for an operator, as payouts do. The recorded Refunds are ledger sources
(``stores.ledger``): each posts its reversal like any refund, once.

The paid invoices come from the ledger: each booked ``invoice.paid`` names the Stripe event that
booked it (``source_id``), whose invoice gives the subscription, the service period and the charge.
The cancellation time that the refunds count from is when the model's status changed (``since``:
access ended then, however late this runs). Each cancellation and each refund appends one audit
record, keyed like its Stripe call; the suspension or archive itself is audited by ``model_status``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import stripe

from domain.compliance.audit import AuditRecord
from domain.money.ledger import CLEARING, invoice_payment_ids
from domain.money.refunds import invoice_service_period, invoice_subscription_id, unused_refund_cents
from services.payments import Payments
from stores import audit
from stores.lake import Lake
from stores.layout import (
    CANCELLATIONS_INBOX,
    cancellation_key,
    parse_cancelled_key,
    refund_key,
    stripe_event_key,
)
from stores.payouts import STRIPE_KEY_MEMORY

ACTOR = "pipeline"


@dataclass(frozen=True)
class PaidInvoice:
    """A booked invoice of a subscription: what it paid, for which period, through which charge."""

    invoice_id: str
    subscription_id: str
    amount_cents: int
    period_start: dt.datetime
    period_end: dt.datetime
    charge_id: str | None
    payment_intent_id: str | None


@dataclass
class CancellationRun:
    """What one run did (each list holds business keys)."""

    cancelled: list[str] = field(default_factory=list)
    refunded: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    refunded_cents: int = 0


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, default=str).encode()


def _read(lake: Lake, key: str) -> dict[str, Any]:
    return json.loads(lake.get_bytes(key))


def _create_once(lake: Lake, key: str, data: dict[str, Any]) -> dict[str, Any]:
    """The record at ``key``: ``data`` if this call created it, else the one stored first (so a
    re-run keeps the first run's time and amount)."""
    lake.put_new(key, _json(data))
    return _read(lake, key)


def ended_subscriptions(lake: Lake) -> set[str]:
    """The subscriptions a fair cancellation has ended at Stripe (their result is recorded)."""
    return {sub for key in lake.list_keys(CANCELLATIONS_INBOX) if (sub := parse_cancelled_key(key))}


def paid_invoices(lake: Lake, ledger: pl.DataFrame, model_ids: list[str]) -> dict[str, list[PaidInvoice]]:
    """The booked invoices of the models' subscriptions, per subscription id (see the module notes)."""
    booked = ledger.filter(
        (pl.col("kind") == "revenue") & (pl.col("account") == CLEARING) & pl.col("model_id").is_in(model_ids)
    )
    found: dict[str, list[PaidInvoice]] = {}
    for (source_id,) in booked.select("source_id").unique().iter_rows():
        invoice = json.loads(lake.get_bytes(stripe_event_key(source_id)))["data"]["object"]
        subscription, period = invoice_subscription_id(invoice), invoice_service_period(invoice)
        if subscription is None or period is None:
            continue
        charge, intent = invoice_payment_ids(invoice)
        found.setdefault(subscription, []).append(
            PaidInvoice(invoice["id"], subscription, int(invoice["amount_paid"]), *period, charge, intent)
        )
    return found


def end_subscriptions(
    lake: Lake,
    payments: Payments,
    targets: pl.DataFrame,
    invoices: dict[str, list[PaidInvoice]],
    now: dt.datetime,
) -> CancellationRun:
    """Cancel and refund every subscription of ``targets``
    (:func:`domain.money.refunds.subscriptions_to_end`); see the module notes."""
    run = CancellationRun()
    for row in targets.iter_rows(named=True):
        try:
            cancelled_at = _cancel(lake, payments, row, now, run)
            for invoice in invoices.get(row["subscription_id"], []):
                _refund(lake, payments, row, invoice, cancelled_at, now, run)
        except stripe.StripeError as exc:
            run.errors[row["subscription_id"]] = str(exc.user_message or exc)
    return run


def _cancel(
    lake: Lake, payments: Payments, row: dict[str, Any], now: dt.datetime, run: CancellationRun
) -> dt.datetime:
    """Cancel the subscription at Stripe once; returns the time its refunds count from."""
    sub = row["subscription_id"]
    intent = _create_once(
        lake,
        cancellation_key(sub, "cancel"),
        {
            "subscription_id": sub,
            "model_id": row["model_id"],
            "version": row["version"],
            "user_id": row["user_id"],
            "creator_id": row["creator_id"],
            "reason": row["listing_status"],
            "cancelled_at": (row["since"] or now).isoformat(),
            "requested_at": now.isoformat(),
        },
    )
    cancelled_at = dt.datetime.fromisoformat(intent["cancelled_at"])
    done = cancellation_key(sub, "cancelled")
    if not lake.exists(done):
        status = payments.cancel_subscription(sub, at_period_end=False)
        lake.put_new(
            done, _json({"subscription_id": sub, "stripe_status": status, "recorded_at": now.isoformat()})
        )
        run.cancelled.append(f"cancel:{sub}")
    result = _read(lake, done)
    audit.append(
        lake,
        AuditRecord(
            business_key=f"cancel:{sub}",
            acted_at=dt.datetime.fromisoformat(result["recorded_at"]),
            actor=ACTOR,
            action="subscription.cancelled",
            object_type="subscription",
            object_id=sub,
            before={
                "stripe_status": row["stripe_status"],
                "model_id": row["model_id"],
                "user_id": row["user_id"],
            },
            after={
                "stripe_status": result["stripe_status"],
                "reason": f"model {intent['reason']}",
                "cancelled_at": intent["cancelled_at"],
            },
        ),
    )
    return cancelled_at


def _refund(
    lake: Lake,
    payments: Payments,
    row: dict[str, Any],
    invoice: PaidInvoice,
    cancelled_at: dt.datetime,
    now: dt.datetime,
    run: CancellationRun,
) -> None:
    """Refund the unused days of one paid invoice once (nothing when none are left)."""
    sub, business_key = row["subscription_id"], f"refund:{row['subscription_id']}:{invoice.invoice_id}"
    amount = unused_refund_cents(invoice.amount_cents, invoice.period_start, invoice.period_end, cancelled_at)
    planned = refund_key(sub, invoice.invoice_id, "refunds")
    if amount > 0 and invoice.charge_id and not lake.exists(planned):
        amount = min(amount, payments.refundable_cents(invoice.charge_id))  # never more than is left
    if amount == 0:
        return
    intent = _create_once(
        lake,
        planned,
        {
            "refund_key": business_key,
            "subscription_id": sub,
            "invoice_id": invoice.invoice_id,
            "charge_id": invoice.charge_id,
            "payment_intent_id": invoice.payment_intent_id,
            "paid_cents": invoice.amount_cents,
            "period_start": invoice.period_start.isoformat(),
            "period_end": invoice.period_end.isoformat(),
            "cancelled_at": cancelled_at.isoformat(),
            "amount_cents": amount,
            "planned_at": now.isoformat(),
        },
    )
    done = refund_key(sub, invoice.invoice_id, "refunded")
    if not lake.exists(done):
        if now - dt.datetime.fromisoformat(intent["planned_at"]) > STRIPE_KEY_MEMORY:
            run.unconfirmed.append(business_key)
            return
        metadata = {"subscription_id": sub, "invoice_id": invoice.invoice_id, "model_id": row["model_id"]}
        refund = payments.refund(
            intent["charge_id"], intent["payment_intent_id"], intent["amount_cents"], business_key, metadata
        )
        record = {
            "refund_key": business_key,
            "subscription_id": sub,
            "invoice_id": invoice.invoice_id,
            "amount_cents": intent["amount_cents"],
            "recorded_at": now.isoformat(),
        }
        lake.put_new(done, _json(refund | record))
        run.refunded.append(business_key)
        run.refunded_cents += intent["amount_cents"]
    result = _read(lake, done)
    audit.append(
        lake,
        AuditRecord(
            business_key=business_key,
            acted_at=dt.datetime.fromisoformat(result["recorded_at"]),
            actor=ACTOR,
            action="refund.created",
            object_type="refund",
            object_id=result["refund_id"],
            before={
                "invoice_id": invoice.invoice_id,
                "paid_cents": invoice.amount_cents,
                "charge_id": result["charge"]["id"],
            },
            after={
                "amount_cents": result["amount_cents"],
                "period_start": intent["period_start"],
                "period_end": intent["period_end"],
                "cancelled_at": intent["cancelled_at"],
                "subscription_id": sub,
            },
        ),
    )
