"""Monthly creator payouts: records in the lake first, then Stripe Transfers under the same key.

Every object is created once with ``Lake.put_new``: a payout's intent (key, creator, amount, and
whether it awaits the creator's onboarding), an attempt marker written just before Stripe is first
called, and the Transfer Stripe returned; the month's records with their status go to
``tables/payouts/{YYYY-MM}.parquet``. Keys: ``stores/layout.py``. The creator's Connect account is
the one they opened (``stores.payout_accounts``): a payout never creates one.

A run of a month (:func:`pay_month`) plans with :func:`domain.money.payouts.plan_payouts` against every
intent already recorded and the creators whose accounts can receive transfers, writes the new intents,
then completes every intent of the month that has no recorded Transfer. An intent awaiting onboarding is
final for its month and moves no money (its amount carries over). Otherwise, with Stripe configured it
calls ``create_transfer`` with the payout key ``payout:{creator}:{YYYY-MM}`` as idempotency key, so a
run that died after Stripe answered gets the same Transfer back on the re-run; without Stripe the intent
stays ``pending_stripe`` and no money moves. An intent whose first call is over
:data:`STRIPE_KEY_MEMORY` old is not retried (Stripe has forgotten the key by then): it is reported
``unconfirmed`` for an operator. Each payout paid or awaiting onboarding appends one audit record under
its payout key.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import stripe

from domain.compliance.audit import AuditRecord
from domain.money.earnings import PAYOUT_RECORDS, records_frame
from domain.money.payouts import (
    AWAITING_ONBOARDING,
    PAYOUTS,
    PayoutPlan,
    month_bounds,
    payout_key,
    plan_payouts,
)
from services.payments import Payments
from stores.audit import append
from stores.lake import Lake
from stores.layout import (
    PAYOUTS_INBOX,
    PAYOUTS_TABLE_PREFIX,
    is_payout_intent_key,
    payout_attempt_key,
    payout_intent_key,
    payout_transfer_key,
    payouts_month_prefix,
    payouts_table_key,
)
from stores.payout_accounts import payable_creators, payout_account

STRIPE_KEY_MEMORY = dt.timedelta(hours=23)
"""Stripe keeps idempotency keys for at least 24 hours; an hour of margin."""


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, default=str).encode()


def _read(lake: Lake, key: str) -> dict[str, Any]:
    return json.loads(lake.get_bytes(key))


def _ts(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def recorded_payouts(lake: Lake) -> pl.DataFrame:
    """Every payout intent (any month) as :data:`domain.money.payouts.PAYOUTS` rows: what has been paid or
    set aside. Read from the intents, not the table, so a run that died before writing its table
    still counts."""
    known = read_payout_records(lake).with_columns(
        (pl.col("status") == AWAITING_ONBOARDING).alias("awaiting_onboarding")
    )
    keys = {payout_intent_key(m, c) for m, c in known.select("month", "creator_id").iter_rows()}
    missing = [k for k in lake.list_keys(PAYOUTS_INBOX) if is_payout_intent_key(k) and k not in keys]
    extra = pl.DataFrame([_intent_row(_read(lake, k)) for k in missing], schema=PAYOUTS)
    return pl.concat([known.select(list(PAYOUTS)), extra])


def _intent_row(intent: dict[str, Any]) -> dict[str, Any]:
    """An intent's :data:`domain.money.payouts.PAYOUTS` row (intents older than onboarding lack the flag)."""
    return {c: intent[c] for c in PAYOUTS if c != "awaiting_onboarding"} | {
        "awaiting_onboarding": intent.get("awaiting_onboarding", False)
    }


def read_payout_records(lake: Lake, creator_id: str | None = None) -> pl.DataFrame:
    """The ``payouts`` table (every month written so far), optionally one creator's rows."""
    keys = [k for k in lake.list_keys(PAYOUTS_TABLE_PREFIX) if k.endswith(".parquet")]
    table = lake.read_parquet(keys, PAYOUT_RECORDS).cast(PAYOUT_RECORDS)
    return table if creator_id is None else table.filter(pl.col("creator_id") == creator_id)


@dataclass
class MonthRun:
    """What one run of a month did."""

    month: str
    stripe: bool
    """Whether Stripe was configured (transfers made) or not (plans recorded as pending_stripe)."""
    records: pl.DataFrame
    """The month's :data:`domain.money.earnings.PAYOUT_RECORDS` after the run."""
    planned: list[PayoutPlan] = field(default_factory=list)
    """Payouts first recorded by this run."""
    transferred: list[str] = field(default_factory=list)
    """Creators whose Transfer this run recorded."""
    errors: dict[str, str] = field(default_factory=dict)


def pay_month(
    lake: Lake, payments: Payments | None, month: str, ledger: pl.DataFrame, now: dt.datetime
) -> MonthRun:
    """Plan, record and (with Stripe) transfer the payouts of ``month``; see the module notes."""
    if now < month_bounds(month)[1]:
        raise ValueError(f"month {month} has not ended yet (now {now:%Y-%m-%d %H:%M} UTC)")
    plans = plan_payouts(ledger, month, recorded_payouts(lake), payable=payable_creators(lake))
    run = MonthRun(month, payments is not None, pl.DataFrame(schema=PAYOUT_RECORDS))
    for plan in plans:
        intent = {
            "payout_key": plan.idempotency_key,
            "creator_id": plan.creator_id,
            "month": month,
            "amount_cents": plan.amount_cents,
            "awaiting_onboarding": plan.awaiting_onboarding,
            "planned_at": now.isoformat(),
        }
        if lake.put_new(payout_intent_key(month, plan.creator_id), _json(intent)):
            run.planned.append(plan)
    intents = [_read(lake, k) for k in lake.list_keys(payouts_month_prefix(month)) if is_payout_intent_key(k)]
    run.records = records_frame(_complete(lake, payments, intent, now, run) for intent in intents)
    lake.write_parquet(payouts_table_key(month), run.records)
    return run


def _complete(
    lake: Lake, payments: Payments | None, intent: dict[str, Any], now: dt.datetime, run: MonthRun
) -> dict[str, Any]:
    """The record of one intent, calling Stripe when its Transfer is not recorded yet."""
    month, creator = intent["month"], intent["creator_id"]
    record = _intent_row(intent) | {"planned_at": _ts(intent["planned_at"])}
    if record["awaiting_onboarding"]:
        _audit(
            lake, intent, "payout.awaiting_onboarding", intent["planned_at"], {"status": AWAITING_ONBOARDING}
        )
        detail = "the creator's payout account could not receive transfers: the balance carries over"
        return record | {"status": AWAITING_ONBOARDING, "detail": detail}
    done = payout_transfer_key(month, creator)
    if lake.exists(done):
        return record | _paid(lake, intent, _read(lake, done))
    if payments is None:
        return record | {"status": "pending_stripe", "detail": "STRIPE_API_KEY is not configured"}
    account = payout_account(lake, creator)
    if account is None:  # an intent recorded before payouts waited for onboarding
        run.errors[creator] = "the creator has no payout account: they must start onboarding"
        return record | {"status": "failed", "detail": run.errors[creator]}
    destination = account.account_id
    try:
        lake.put_new(payout_attempt_key(month, creator), _json({"first_attempt_at": now.isoformat()}))
        first = dt.datetime.fromisoformat(_read(lake, payout_attempt_key(month, creator))["first_attempt_at"])
        if now - first > STRIPE_KEY_MEMORY:
            detail = f"Stripe first called at {first:%Y-%m-%d %H:%M} UTC and no transfer recorded: check it"
            return record | {"status": "unconfirmed", "detail": detail}
        transfer_id = payments.create_transfer(
            intent["amount_cents"],
            destination,
            payout_key(creator, month),
            {"creator_id": creator, "month": month},
        )
    except stripe.StripeError as exc:
        run.errors[creator] = str(exc.user_message or exc)
        return record | {"status": "failed", "detail": run.errors[creator]}
    result = {
        "payout_key": intent["payout_key"],
        "creator_id": creator,
        "month": month,
        "amount_cents": intent["amount_cents"],
        "transfer_id": transfer_id,
        "destination": destination,
        "paid_at": now.isoformat(),
    }
    lake.put_new(done, _json(result))
    run.transferred.append(creator)
    return record | _paid(lake, intent, _read(lake, done))


def _paid(lake: Lake, intent: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The record's fields of a recorded Transfer (and its audit record, appended once)."""
    moved = {"status": "paid", "transfer_id": result["transfer_id"], "destination": result["destination"]}
    _audit(lake, intent, "payout.transferred", result["paid_at"], moved)
    return moved | {"paid_at": _ts(result["paid_at"])}


def _audit(lake: Lake, intent: dict[str, Any], action: str, at: str, outcome: dict[str, Any]) -> None:
    """One audit record per payout, under its payout key (a re-run appends nothing)."""
    payout = {k: intent[k] for k in ("creator_id", "month", "amount_cents")}
    append(
        lake,
        AuditRecord(
            business_key=intent["payout_key"],
            acted_at=dt.datetime.fromisoformat(at),
            actor="pipeline",
            action=action,
            object_type="payout",
            object_id=intent["payout_key"],
            after=payout | outcome,
        ),
    )
