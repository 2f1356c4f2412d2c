"""Self-exclusions in the inbox: one immutable object per user, start day and period (SPEC 9).

Objects are created once and never changed or deleted, so an exclusion cannot be lifted or shortened
by anything the API does; the one in force is :func:`domain.compliance.self_exclusion.in_force` of
the user's objects. The API reads here on every request for picks (read-your-writes).
"""

from __future__ import annotations

import datetime as dt
import json

from domain.compliance.self_exclusion import SelfExclusion
from stores.lake import Lake
from stores.layout import parse_self_exclusion_key, self_exclusion_key, self_exclusions_prefix


def read_self_exclusions(lake: Lake, user_id: str) -> list[SelfExclusion]:
    """Every self-exclusion ``user_id`` ever asked for, oldest first."""
    found = []
    for key in lake.list_keys(self_exclusions_prefix(user_id)):
        parsed = parse_self_exclusion_key(key)
        if parsed is not None and parsed.user_id == user_id:
            stored = json.loads(lake.get_bytes(key))
            found.append(
                SelfExclusion(
                    user_id=user_id,
                    period=stored["period"],
                    start=parsed.start,
                    requested_at=dt.datetime.fromisoformat(stored["requested_at"]),
                )
            )
    return sorted(found, key=lambda e: (e.start, e.requested_at))


def record_self_exclusion(lake: Lake, exclusion: SelfExclusion) -> bool:
    """Store ``exclusion`` once; False when the same user, day and period was already stored."""
    body = {
        "user_id": exclusion.user_id,
        "period": exclusion.period,
        "start": exclusion.start.isoformat(),
        "end": exclusion.end.isoformat() if exclusion.end else None,
        "requested_at": exclusion.requested_at.isoformat(),
    }
    key = self_exclusion_key(exclusion.user_id, exclusion.start, exclusion.period)
    return lake.put_new(key, json.dumps(body, sort_keys=True).encode())
