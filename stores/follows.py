"""Follows in the inbox: one immutable event object per follow or unfollow of a creator.

Event n of a (follower, creator) pair is ``inbox/follows/{user_id}/{creator_id}/{n:06d}.json``, created
once, so of two concurrent changes exactly one takes number n+1 and the other re-reads. The state is
the greatest event; the ``follows`` asset folds the events into the ``follows`` table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from stores.lake import Lake
from stores.layout import FOLLOWS_INBOX, follow_event_key, follows_prefix, parse_follow_key

_ATTEMPTS = 5

Action = Literal["follow", "unfollow"]


class FollowConflictError(RuntimeError):
    """Concurrent changes kept winning the next event number."""


class FollowStore:
    """Follow events in the inbox of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def latest(self, user_id: str, creator_id: str) -> dict[str, Any] | None:
        """The pair's latest event; None if the user never followed the creator."""
        keys = [k for k in self.lake.list_keys(follows_prefix(user_id, creator_id)) if parse_follow_key(k)]
        return json.loads(self.lake.get_bytes(max(keys))) if keys else None

    def following(self, user_id: str) -> list[str]:
        """The creators ``user_id`` follows now, sorted."""
        latest: dict[str, str] = {}
        for key in self.lake.list_keys(follows_prefix(user_id)):
            parsed = parse_follow_key(key)
            if parsed is not None and parsed.user_id == user_id:
                latest[parsed.creator_id] = max(key, latest.get(parsed.creator_id, ""))
        return sorted(
            c for c, k in latest.items() if json.loads(self.lake.get_bytes(k))["action"] == "follow"
        )

    def change(self, user_id: str, creator_id: str, action: Action, now: dt.datetime) -> dict[str, Any]:
        """Follow or unfollow; idempotent: a change to the state already in force stores nothing."""
        for _ in range(_ATTEMPTS):
            current = self.latest(user_id, creator_id)
            if current is not None and current["action"] == action:
                return current
            if current is None and action == "unfollow":
                return {"user_id": user_id, "creator_id": creator_id, "action": action, "at": None, "n": 0}
            n = 1 if current is None else current["n"] + 1
            event = {
                "user_id": user_id,
                "creator_id": creator_id,
                "action": action,
                "at": now.isoformat(),
                "n": n,
            }
            if self.lake.put_new(
                follow_event_key(user_id, creator_id, n), json.dumps(event, sort_keys=True).encode()
            ):
                return event
        raise FollowConflictError(f"the follow of {creator_id!r} by {user_id!r} keeps changing; retry")

    def objects(self) -> Iterator[tuple[str, float]]:
        """``(key, modification time)`` of every follow event: what the follows sensor watches."""
        return ((k, t) for k, t in self.lake.list_objects(FOLLOWS_INBOX) if parse_follow_key(k) is not None)

    def load(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        """The events stored at ``keys``; a key that is not a follow event raises."""
        wanted = list(dict.fromkeys(keys))
        if bad := [k for k in wanted if parse_follow_key(k) is None]:
            raise ValueError(f"not follow events: {', '.join(bad)}")
        return [json.loads(self.lake.get_bytes(k)) for k in wanted]
