"""Monthly creator payouts: records in the lake first, then Stripe Transfers under the same key.

Every object is created once with ``Lake.put_new``: a payout's intent (key, creator, amount), an
attempt marker written just before Stripe is first called, the Transfer Stripe returned, and the
creator's Connect account id; the month's records with their status go to
``tables/payouts/{YYYY-MM}.parquet``. Keys: ``stores/layout.py``.

A run of a month (:func:`pay_month`) plans with :func:`domain.money.payouts.plan_payouts` against every
intent already recorded, writes the new intents, then completes every intent of the month that has
no recorded Transfer: with Stripe configured it calls ``create_transfer`` with the payout key
``payout:{creator}:{YYYY-MM}`` as idempotency key, so a run that died after Stripe answered gets the
same Transfer back on the re-run; without Stripe the intent stays ``pending_stripe`` and no money
moves. An intent whose first call is over :data:`STRIPE_KEY_MEMORY` old is not retried (Stripe has
forgotten the key by then): it is reported ``unconfirmed`` for an operator.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import stripe

from domain.money.earnings import PAYOUT_RECORDS, records_frame
from domain.money.payouts import PAYOUTS, PayoutPlan, month_bounds, payout_key, plan_payouts
from services.payments import Payments
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
    stripe_account_key,
)

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
    tables = [k for k in lake.list_keys(PAYOUTS_TABLE_PREFIX) if k.endswith(".parquet")]
    known = lake.read_parquet(tables, PAYOUT_RECORDS).select(list(PAYOUTS)).cast(PAYOUTS)
    keys = {payout_intent_key(m, c) for m, c in known.select("month", "creator_id").iter_rows()}
    missing = [k for k in lake.list_keys(PAYOUTS_INBOX) if is_payout_intent_key(k) and k not in keys]
    rows = [_read(lake, k) for k in missing]
    extra = pl.DataFrame([{c: r[c] for c in PAYOUTS} for r in rows], schema=PAYOUTS)
    return pl.concat([known, extra])


def read_payout_records(lake: Lake, creator_id: str | None = None) -> pl.DataFrame:
    """The ``payouts`` table (every month written so far), optionally one creator's rows."""
    keys = [k for k in lake.list_keys(PAYOUTS_TABLE_PREFIX) if k.endswith(".parquet")]
    table = lake.read_parquet(keys, PAYOUT_RECORDS).cast(PAYOUT_RECORDS)
    return table if creator_id is None else table.filter(pl.col("creator_id") == creator_id)


def connect_account(lake: Lake, payments: Payments, creator_id: str) -> str:
    """The creator's Connect account id: stored once created (Stripe forgets idempotency keys)."""
    key = stripe_account_key(creator_id)
    if lake.exists(key):
        return _read(lake, key)["account_id"]
    account = payments.ensure_connect_account(creator_id)
    lake.put_new(key, _json({"creator_id": creator_id, "account_id": account}))
    return _read(lake, key)["account_id"]


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
    plans = plan_payouts(ledger, month, recorded_payouts(lake))
    run = MonthRun(month, payments is not None, pl.DataFrame(schema=PAYOUT_RECORDS))
    for plan in plans:
        intent = {
            "payout_key": plan.idempotency_key,
            "creator_id": plan.creator_id,
            "month": month,
            "amount_cents": plan.amount_cents,
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
    record = {c: intent[c] for c in PAYOUTS} | {"planned_at": _ts(intent["planned_at"])}
    done = payout_transfer_key(month, creator)
    if lake.exists(done):
        result = _read(lake, done)
        return record | _paid(result)
    if payments is None:
        return record | {"status": "pending_stripe", "detail": "STRIPE_API_KEY is not configured"}
    try:
        destination = connect_account(lake, payments, creator)
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
    return record | _paid(_read(lake, done))


def _paid(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "paid",
        "transfer_id": result["transfer_id"],
        "destination": result["destination"],
        "paid_at": _ts(result["paid_at"]),
    }
