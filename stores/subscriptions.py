"""Free subscriptions in the inbox: one immutable event object per subscribe or unsubscribe.

Keys follow the seed's ``MODEL_SUBSCRIPTION#{user_id}`` / ``{model_id}`` design: event n of the
user's subscription is ``inbox/subscriptions/{user_id}/{model_id}/{n:06d}.json`` (``stores/layout.py``).

Events are created with create-if-absent, so of two concurrent changes exactly one takes number
n+1 and the other re-reads and retries. A subscription's state is its greatest event; the API reads
here (read-your-writes) and the ``subscriptions`` asset folds the events into the table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from domain.models.registry import UnusableUserIdError, check_user_id
from stores.lake import Lake
from stores.layout import (
    SUBSCRIPTIONS_INBOX,
    parse_subscription_key,
    subscription_event_key,
    subscription_prefix,
    user_subscriptions_prefix,
)

_ATTEMPTS = 5
_READ_THREADS = 16

Action = Literal["subscribe", "unsubscribe"]


def _usable(user_id: str) -> bool:
    try:
        check_user_id(user_id)
    except UnusableUserIdError:
        return False
    return True


@dataclass(frozen=True)
class FreeSubscription:
    """A user's free subscription to one model, as its latest event left it."""

    user_id: str
    model_id: str
    creator_id: str
    active: bool
    started_at: dt.datetime
    """When the current (or, once cancelled, the last) subscription began."""
    changed_at: dt.datetime
    n: int


def _state(event: dict[str, Any]) -> FreeSubscription:
    return FreeSubscription(
        user_id=event["user_id"],
        model_id=event["model_id"],
        creator_id=event["creator_id"],
        active=event["action"] == "subscribe",
        started_at=dt.datetime.fromisoformat(event["started_at"]),
        changed_at=dt.datetime.fromisoformat(event["at"]),
        n=event["n"],
    )


class SubscriptionConflictError(RuntimeError):
    """Concurrent changes kept winning the next event number."""


class SubscriptionStore:
    """Free subscription events in the inbox of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    # -- reads ------------------------------------------------------------------------------------
    def _latest_keys(self, prefix: str) -> dict[tuple[str, str], str]:
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        for key in self.lake.list_keys(prefix):
            parsed = parse_subscription_key(key)
            if parsed is None:
                continue
            pair = (parsed.user_id, parsed.model_id)
            if parsed.n > latest.get(pair, (0, ""))[0]:
                latest[pair] = (parsed.n, key)
        return {pair: key for pair, (_, key) in latest.items()}

    def _read(self, key: str) -> dict[str, Any]:
        return json.loads(self.lake.get_bytes(key))

    def state(self, user_id: str, model_id: str) -> FreeSubscription | None:
        """The user's subscription to ``model_id``; None if they never subscribed (or could not:
        their id cannot be a key segment)."""
        if not _usable(user_id):
            return None
        keys = self._latest_keys(subscription_prefix(user_id, model_id))
        key = keys.get((user_id, model_id))
        return None if key is None else _state(self._read(key))

    def of_user(self, user_id: str) -> list[FreeSubscription]:
        """Every model the user ever subscribed to, latest state each, sorted by model id."""
        if not _usable(user_id):
            return []
        keys = self._latest_keys(user_subscriptions_prefix(user_id))
        ordered = [keys[pair] for pair in sorted(keys) if pair[0] == user_id]
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            return [_state(event) for event in pool.map(self._read, ordered)]

    def inbox_keys(self) -> Iterator[str]:
        """Every event object, for a full rebuild of the table."""
        return (
            key for key in self.lake.list_keys(SUBSCRIPTIONS_INBOX) if parse_subscription_key(key) is not None
        )

    def load(self, keys: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
        """``(key, event)`` of each event key; a key that is not an event raises."""
        wanted = list(dict.fromkeys(keys))
        if bad := [key for key in wanted if parse_subscription_key(key) is None]:
            raise ValueError(f"not subscription events: {', '.join(bad)}")
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            return list(zip(wanted, pool.map(self._read, wanted), strict=True))

    # -- writes (create-if-absent only) -----------------------------------------------------------
    def _change(
        self, user_id: str, model_id: str, creator_id: str, action: Action, now: dt.datetime
    ) -> FreeSubscription:
        for _ in range(_ATTEMPTS):
            current = self.state(user_id, model_id)
            if current is not None and current.active == (action == "subscribe"):
                return current
            n = 1 if current is None else current.n + 1
            started = now if action == "subscribe" or current is None else current.started_at
            event = {
                "action": action,
                "user_id": user_id,
                "model_id": model_id,
                "creator_id": creator_id,
                "at": now.isoformat(),
                "started_at": started.isoformat(),
                "n": n,
            }
            body = json.dumps(event, sort_keys=True).encode()
            if self.lake.put_new(subscription_event_key(user_id, model_id, n), body):
                return _state(event)
        raise SubscriptionConflictError(
            f"the subscription of {user_id!r} to {model_id!r} keeps changing; retry"
        )

    def subscribe(self, user_id: str, model_id: str, creator_id: str, now: dt.datetime) -> FreeSubscription:
        """Start (or keep) the user's free subscription; idempotent while it is active."""
        return self._change(user_id, model_id, creator_id, "subscribe", now)

    def unsubscribe(self, user_id: str, model_id: str, now: dt.datetime) -> FreeSubscription | None:
        """End the user's free subscription; None if they never subscribed. Idempotent."""
        current = self.state(user_id, model_id)
        if current is None:
            return None
        return self._change(user_id, model_id, current.creator_id, "unsubscribe", now)
