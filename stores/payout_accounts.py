"""Creators' payout accounts: the one Stripe Connect account each creator opens, and its state.

Keys (``stores/layout.py``), every object created once (``Lake.put_new``):

- ``stripe_account_key(creator)``: the account Stripe created when the creator asked to onboard,
  with its state at creation. Stripe forgets idempotency keys after 24 hours, so this record, not the
  key ``connect-account:{creator_id}``, is what makes the account one per creator for ever.
- ``account_state_key(creator, created, event_id)``: the state an ``account.updated`` event
  reported. Keys sort by the event's time, so the creator's last key is the current state whatever
  order Stripe delivered the events in, and a redelivered event writes nothing.

The webhook endpoint applies ``account.updated`` events as they arrive (:func:`apply_account_event`),
so ``GET /creators/me/payout-account`` and the next payout run see them at once. Each account
created and each change of state seen appends an audit record (``stores.audit``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.compliance.audit import AuditRecord
from domain.money.accounts import AccountState, account_creator, account_state
from services.payments import Payments
from stores.audit import append
from stores.lake import Lake
from stores.layout import (
    STRIPE_ACCOUNTS_INBOX,
    account_state_key,
    account_states_prefix,
    stripe_account_creator,
    stripe_account_key,
)

log = logging.getLogger(__name__)

OBJECT_TYPE = "payout_account"


@dataclass(frozen=True)
class PayoutAccount:
    """A creator's Connect account and its current state."""

    creator_id: str
    account_id: str
    created_at: dt.datetime
    state: AccountState
    updated_at: dt.datetime | None
    """When Stripe reported :attr:`state` (an ``account.updated`` event); None: the state at creation."""


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


def _read(lake: Lake, key: str) -> dict[str, Any]:
    return json.loads(lake.get_bytes(key))


def open_payout_account(lake: Lake, payments: Payments, creator_id: str, now: dt.datetime) -> PayoutAccount:
    """The creator's account, created through Stripe the first time only; concurrent first calls
    get one account (the same idempotency key at Stripe, one record here)."""
    if not lake.exists(stripe_account_key(creator_id)):
        return record_payout_account(lake, creator_id, payments.ensure_connect_account(creator_id), now)
    opened = payout_account(lake, creator_id)
    assert opened is not None  # recorded, and never deleted
    return opened


def record_payout_account(
    lake: Lake, creator_id: str, account: Mapping[str, Any], now: dt.datetime
) -> PayoutAccount:
    """Record the Connect ``account`` Stripe created for the creator (the first record wins) and
    append its audit record; returns the recorded account."""
    record = {
        "creator_id": creator_id,
        "account_id": account["id"],
        "created_at": now.isoformat(),
        "state": account_state(account).to_dict(),
    }
    lake.put_new(stripe_account_key(creator_id), _json(record))
    opened = payout_account(lake, creator_id)
    assert opened is not None  # just written, and never deleted
    append(
        lake,
        AuditRecord(
            business_key=f"connect-account:{creator_id}",
            acted_at=opened.created_at,
            actor=creator_id,
            action="payout_account.created",
            object_type=OBJECT_TYPE,
            object_id=opened.account_id,
            after={"creator_id": creator_id, "account_id": opened.account_id},
        ),
    )
    return opened


def payout_account(lake: Lake, creator_id: str) -> PayoutAccount | None:
    """The creator's account with its latest reported state; None before they started onboarding."""
    key = stripe_account_key(creator_id)
    if not lake.exists(key):
        return None
    record = _read(lake, key)
    states = [k for k in lake.list_keys(account_states_prefix(creator_id)) if k.endswith(".json")]
    latest = _read(lake, max(states)) if states else None
    return PayoutAccount(
        creator_id,
        record["account_id"],
        dt.datetime.fromisoformat(record["created_at"]),
        AccountState.from_dict((latest or record)["state"]),
        dt.datetime.fromisoformat(latest["reported_at"]) if latest else None,
    )


def payable_creators(lake: Lake) -> set[str]:
    """Creators whose account can receive transfers now (Stripe enabled its payouts)."""
    creators = (stripe_account_creator(k) for k in lake.list_keys(STRIPE_ACCOUNTS_INBOX))
    accounts = (payout_account(lake, c) for c in creators if c is not None)
    return {a.creator_id for a in accounts if a is not None and a.state.payouts_enabled}


def apply_account_event(lake: Lake, event: Mapping[str, Any]) -> bool:
    """Record the state an ``account.updated`` event reports for a creator's account; False for other
    events and for accounts that are not a creator's (logged, never an error: Stripe has delivered)."""
    data = event.get("data")
    account = data.get("object") if isinstance(data, Mapping) else None
    if event.get("type") != "account.updated" or not isinstance(account, Mapping):
        return False
    try:
        state = account_state(account)
        creator = account_creator(account)
        known = payout_account(lake, creator) if creator else None
        if known is None or known.account_id != state.account_id:
            log.warning(
                "account.updated %s: %s is no creator's payout account", event["id"], state.account_id
            )
            return False
        key = account_state_key(known.creator_id, int(event["created"]), event["id"])  # checks the time
        at = dt.datetime.fromtimestamp(int(event["created"]), dt.UTC)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("account.updated %s not applied: %s", event.get("id"), exc)
        return False
    before = _state_before(lake, known, key)
    lake.put_new(
        key, _json({"event_id": event["id"], "reported_at": at.isoformat(), "state": state.to_dict()})
    )
    if before != state:
        append(
            lake,
            AuditRecord(
                business_key=f"account.updated:{event['id']}",
                acted_at=at,
                actor="stripe",
                action="account.updated",
                object_type=OBJECT_TYPE,
                object_id=state.account_id,
                before=before.to_dict(),
                after=state.to_dict(),
            ),
        )
    return True


def _state_before(lake: Lake, account: PayoutAccount, key: str) -> AccountState:
    """The state reported just before the one stored under ``key`` (the state at creation if none)."""
    prefix = account_states_prefix(account.creator_id)
    earlier = [k for k in lake.list_keys(prefix) if k.endswith(".json") and k < key]
    source = max(earlier) if earlier else stripe_account_key(account.creator_id)
    return AccountState.from_dict(_read(lake, source)["state"])
