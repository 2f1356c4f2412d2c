"""The ledger in the lake, and the posting of new inbox objects onto it.

The ledger is ``tables/ledger/{YYYY-MM}.parquet``, the entries booked in that month (UTC),
append-only; ``tables/ledger_inbox.parquet`` records every inbox object the ledger has read (verified
Stripe events, recorded payout transfers, refunds of fair cancellations) and what came of it. Keys:
``stores/layout.py``.

:func:`post_inbox` reads the objects listed under those inbox prefixes that are new or were pending
last time, posts them with :func:`domain.money.ledger.post_events` (Stripe events) and
:func:`domain.money.payouts.payout_entries` (transfers), and appends the new entries to the objects of
the months they are booked in. Entry ids make every posting idempotent, so a run that dies between
its writes loses nothing: the next run reads the same objects again and adds only what is missing.
One run at a time writes (the sensor waits for the previous run).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import polars as pl

from domain.money.ledger import LEDGER, empty_ledger, post, post_events, to_frame
from domain.money.payouts import PayoutPlan, payout_entries
from domain.money.refunds import refund_observation
from domain.tables.schemas import UTC_TS
from stores.lake import Lake
from stores.layout import (
    CANCELLATIONS_INBOX,
    LEDGER_PREFIX,
    PAYOUTS_INBOX,
    STRIPE_EVENTS_INBOX,
    is_payout_transfer_key,
    is_refund_result_key,
    ledger_key,
    table_key,
)
from stores.stripe_events import read_events

INBOX_STATE_KEY = table_key("ledger_inbox")

LEDGER_INBOX: dict[str, pl.DataType] = {
    "key": pl.String(),
    "source_id": pl.String(),
    "type": pl.String(),
    "outcome": pl.String(),
    "entries": pl.Int64(),
    "reason": pl.String(),
    "processed_at": UTC_TS,
}
"""``outcome``: ``posted`` (it added entries), ``nothing`` (it moves no money, or was posted
already) or ``pending`` (it cannot be attributed yet: read again next run, ``reason`` says why)."""


def ledger_sources(lake: Lake) -> list[tuple[str, float]]:
    """``(key, mtime)`` of every inbox object the ledger posts from, sorted by key: Stripe events,
    payout transfers and the refunds of fair cancellations."""
    events = lake.list_objects(STRIPE_EVENTS_INBOX)
    transfers = (o for o in lake.list_objects(PAYOUTS_INBOX) if is_payout_transfer_key(o[0]))
    refunds = (o for o in lake.list_objects(CANCELLATIONS_INBOX) if is_refund_result_key(o[0]))
    return sorted([*events, *transfers, *refunds])


def read_ledger(lake: Lake, creator_id: str | None = None) -> pl.DataFrame:
    """Every ledger entry (or one creator's), in posting order within each month."""
    keys = [k for k in lake.list_keys(LEDGER_PREFIX) if k.endswith(".parquet")]
    if not keys:
        return empty_ledger()
    scan = pl.scan_parquet([lake.uri(k) for k in keys], storage_options=lake.polars_storage_options())
    if creator_id is not None:
        scan = scan.filter(pl.col("creator_id") == creator_id)
    return scan.collect().cast(LEDGER)


def read_inbox_state(lake: Lake) -> pl.DataFrame:
    if not lake.exists(INBOX_STATE_KEY):
        return pl.DataFrame(schema=LEDGER_INBOX)
    return lake.read_parquet([INBOX_STATE_KEY]).cast(LEDGER_INBOX)


def unread_keys(lake: Lake, state: pl.DataFrame | None = None) -> list[str]:
    """Inbox keys the ledger has not posted yet: new objects and pending ones."""
    state = read_inbox_state(lake) if state is None else state
    done = set(state.filter(pl.col("outcome") != "pending")["key"].to_list())
    return [k for k, _ in ledger_sources(lake) if k not in done]


@dataclass(frozen=True)
class LedgerRun:
    ledger: pl.DataFrame
    """The whole ledger after the run."""
    new_entries: pl.DataFrame
    read: pl.DataFrame
    """The :data:`LEDGER_INBOX` rows of the objects read this run."""
    months_written: list[str]

    @property
    def pending(self) -> pl.DataFrame:
        return self.read.filter(pl.col("outcome") == "pending")


def _transfer_plan(record: dict) -> PayoutPlan:
    return PayoutPlan(record["creator_id"], record["month"], int(record["amount_cents"]))


def post_inbox(lake: Lake, now: dt.datetime) -> LedgerRun:
    """Post every unread inbox object onto the ledger (see the module notes)."""
    state = read_inbox_state(lake)
    keys = unread_keys(lake, state)
    # A recorded refund is posted as the observation of its charge that it carries, by the same rule
    # as a charge.refunded webhook (domain.money.refunds): whichever comes first posts it, once.
    event_keys = [k for k in keys if k.startswith(STRIPE_EVENTS_INBOX) or is_refund_result_key(k)]
    transfer_keys = [k for k in keys if is_payout_transfer_key(k)]
    events = [
        refund_observation(obj) if is_refund_result_key(k) else obj
        for k, obj in zip(event_keys, read_events(lake, event_keys), strict=True)
    ]
    transfers = [json.loads(lake.get_bytes(k)) for k in transfer_keys]

    ledger = read_ledger(lake)
    posting = post_events(ledger, events)
    payouts = to_frame(e for t in transfers for e in payout_entries(_transfer_plan(t)))
    updated = post(posting.ledger, payouts)
    new = updated.slice(ledger.height)

    months = _append(lake, ledger, new)
    counts = dict(new.group_by("source_id").len().iter_rows())
    rows = [
        _state_row(key, e["id"], e["type"], counts.get(e["id"], 0), posting.pending.get(e["id"]), now)
        for key, e in zip(event_keys, events, strict=True)
    ] + [
        _state_row(key, t["payout_key"], "payout.transfer", counts.get(t["payout_key"], 0), None, now)
        for key, t in zip(transfer_keys, transfers, strict=True)
    ]
    read = pl.DataFrame(rows, schema=LEDGER_INBOX)
    if not read.is_empty():
        kept = state.join(read.select("key"), on="key", how="anti")
        lake.write_parquet(INBOX_STATE_KEY, pl.concat([kept, read]).sort("key"))
    return LedgerRun(updated, new, read, months)


def _state_row(
    key: str, source_id: str, kind: str, entries: int, pending: str | None, now: dt.datetime
) -> dict:
    outcome = "pending" if pending else "posted" if entries else "nothing"
    return {
        "key": key,
        "source_id": source_id,
        "type": kind,
        "outcome": outcome,
        "entries": entries,
        "reason": pending,
        "processed_at": now,
    }


def _append(lake: Lake, ledger: pl.DataFrame, new: pl.DataFrame) -> list[str]:
    """Write each month that ``new`` adds entries to: its previous entries followed by the new ones.

    Written before the inbox state, so a crash in between only makes the next run re-read objects
    whose entries are then found and skipped.
    """
    if new.is_empty():
        return []
    month = pl.col("booked_at").dt.strftime("%Y-%m")
    by_month = new.with_columns(month.alias("_month")).partition_by("_month", as_dict=True)
    written = []
    for (name,), part in sorted(by_month.items()):
        before = ledger.filter(month == name)
        lake.write_parquet(ledger_key(name), pl.concat([before, part.drop("_month")]))
        written.append(name)
    return written
