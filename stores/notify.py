"""Notification channels in the inbox: webhook endpoints, preferences, and the records of every
delivery (keys: ``stores/layout.py``).

- An endpoint is created once (``webhooks/{user}/{endpoint_id}.json``, with its signing secret) and
  removed by a second object beside it; nothing rewrites either.
- Preferences are numbered objects; the greatest number is in force.
- A delivery (one notification on one channel, named by its idempotency key) is a series of
  attempts: ``attempt-{n}`` is created before attempt n is sent and ``result-{n}`` after it, both
  create-if-absent, so two runs never send the same attempt and a run killed between the two leaves
  an attempt without result that :func:`domain.marketplace.notify.next_step` retries once its lease
  ends. ``dead.json`` dead-letters a delivery whose retries ran out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from domain.marketplace.notify import Attempt, Preferences
from stores.lake import Lake
from stores.layout import (
    deliveries_prefix,
    delivery_record_key,
    parse_delivery_record_key,
    parse_preferences_key,
    parse_webhook_key,
    preferences_key,
    preferences_prefix,
    webhook_key,
    webhooks_prefix,
)

_ATTEMPTS = 5


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True).encode()


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    user_id: str
    url: str
    secret: str
    created_at: dt.datetime
    deleted_at: dt.datetime | None = None


@dataclass(frozen=True)
class Delivery:
    """What the records of one delivery say."""

    key: str
    notification_id: str
    attempts: list[Attempt]
    dead: dict[str, Any] | None


class NotifyStore:
    """Webhook endpoints, preferences and delivery records in one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def _read(self, key: str) -> dict[str, Any]:
        return json.loads(self.lake.get_bytes(key))

    # -- webhook endpoints ------------------------------------------------------------------------
    def register(self, user_id: str, endpoint_id: str, url: str, secret: str, now: dt.datetime) -> Endpoint:
        body = {
            "user_id": user_id,
            "endpoint_id": endpoint_id,
            "url": url,
            "secret": secret,
            "created_at": now.isoformat(),
        }
        if not self.lake.put_new(webhook_key(user_id, endpoint_id), _dump(body)):
            raise FileExistsError(f"webhook endpoint {endpoint_id} exists")
        return Endpoint(endpoint_id, user_id, url, secret, now)

    def endpoints(self, user_id: str, include_deleted: bool = False) -> list[Endpoint]:
        """The user's endpoints, oldest first (removed ones only with ``include_deleted``)."""
        made: dict[str, dict[str, Any]] = {}
        removed: dict[str, dt.datetime] = {}
        for key in self.lake.list_keys(webhooks_prefix(user_id)):
            parsed = parse_webhook_key(key)
            if parsed is None or parsed.user_id != user_id:
                continue
            body = self._read(key)
            if parsed.deleted:
                removed[parsed.endpoint_id] = dt.datetime.fromisoformat(body["deleted_at"])
            else:
                made[parsed.endpoint_id] = body
        found = [
            Endpoint(
                endpoint_id=i,
                user_id=user_id,
                url=b["url"],
                secret=b["secret"],
                created_at=dt.datetime.fromisoformat(b["created_at"]),
                deleted_at=removed.get(i),
            )
            for i, b in made.items()
            if include_deleted or i not in removed
        ]
        return sorted(found, key=lambda e: (e.created_at, e.endpoint_id))

    def remove(self, user_id: str, endpoint_id: str, now: dt.datetime) -> bool:
        """Remove an endpoint; False if the user has no such endpoint (a second removal is a no-op)."""
        if not self.lake.exists(webhook_key(user_id, endpoint_id)):
            return False
        self.lake.put_new(
            webhook_key(user_id, endpoint_id, deleted=True), _dump({"deleted_at": now.isoformat()})
        )
        return True

    # -- preferences ------------------------------------------------------------------------------
    def _preference_records(self, user_id: str) -> list[tuple[int, str]]:
        found = [
            (n, k)
            for k in self.lake.list_keys(preferences_prefix(user_id))
            if (n := parse_preferences_key(k))
        ]
        return sorted(found)

    def preferences(self, user_id: str) -> tuple[Preferences, dt.datetime | None]:
        """The preferences in force (defaults before any) and since when their email address holds."""
        prefs, since = Preferences(), None
        for _, key in self._preference_records(user_id):
            body = self._read(key)
            stored = Preferences.model_validate(body["preferences"])
            if stored.email != prefs.email:
                since = dt.datetime.fromisoformat(body["at"])
            prefs = stored
        return prefs, since

    def set_preferences(self, user_id: str, prefs: Preferences, now: dt.datetime) -> Preferences:
        for _ in range(_ATTEMPTS):
            records = self._preference_records(user_id)
            n = records[-1][0] + 1 if records else 1
            body = {"at": now.isoformat(), "preferences": prefs.model_dump(mode="json")}
            if self.lake.put_new(preferences_key(user_id, n), _dump(body)):
                return prefs
        raise RuntimeError(f"the preferences of {user_id!r} keep changing; retry")

    # -- deliveries -------------------------------------------------------------------------------
    def deliveries(self, user_id: str, channel: str) -> dict[str, Delivery]:
        """Every delivery made on one of the user's channels, by idempotency key."""
        records: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for key in self.lake.list_keys(deliveries_prefix(user_id, channel)):
            parsed = parse_delivery_record_key(key)
            if parsed is not None and parsed.user_id == user_id and parsed.channel == channel:
                records[parsed.key].append((parsed.record, parsed.n, key))
        return {k: self._delivery(k, found) for k, found in records.items()}

    def _delivery(self, key: str, found: list[tuple[str, int, str]]) -> Delivery:
        started = {n: self._read(k) for record, n, k in found if record == "attempt"}
        results = {n: self._read(k) for record, n, k in found if record == "result"}
        dead = next((self._read(k) for record, _, k in found if record == "dead"), None)
        attempts = [
            Attempt(
                n=n,
                at=dt.datetime.fromisoformat(body["at"]),
                ok=results[n]["ok"] if n in results else None,
                detail=results[n]["detail"] if n in results else "",
            )
            for n, body in sorted(started.items())
        ]
        notification_id = next(iter(started.values()), dead or {}).get("notification_id", "")
        return Delivery(key, notification_id, attempts, dead)

    def claim(
        self, user_id: str, channel: str, key: str, n: int, notification_id: str, now: dt.datetime
    ) -> bool:
        """Record attempt ``n`` before it is sent; False if another run recorded it first."""
        body = {"notification_id": notification_id, "at": now.isoformat()}
        return self.lake.put_new(delivery_record_key(user_id, channel, key, "attempt", n), _dump(body))

    def record_result(
        self, user_id: str, channel: str, key: str, n: int, ok: bool, detail: str, now: dt.datetime
    ) -> None:
        body = {"ok": ok, "detail": detail[:500], "at": now.isoformat()}
        self.lake.put_new(delivery_record_key(user_id, channel, key, "result", n), _dump(body))

    def dead_letter(self, user_id: str, channel: str, key: str, body: dict[str, Any]) -> bool:
        return self.lake.put_new(delivery_record_key(user_id, channel, key, "dead"), _dump(body))
