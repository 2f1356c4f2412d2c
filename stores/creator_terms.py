"""Creators' acceptances of the creator terms (SPEC 6): one immutable object per user and version.

``creator_terms_key(user, version)`` (``stores/layout.py``) is written create-if-absent, so accepting
a version again keeps the first acceptance and its time, and appends no second audit record.
Publishing a paid model needs the current version's object (``api/routes/models.py``).
"""

from __future__ import annotations

import datetime as dt
import json

from domain.compliance.audit import AuditRecord
from stores.audit import append
from stores.lake import Lake
from stores.layout import creator_terms_key


def accept_terms(lake: Lake, user_id: str, version: str, now: dt.datetime) -> dt.datetime:
    """Record ``user_id``'s acceptance of ``version``; returns when they first accepted it."""
    key = creator_terms_key(user_id, version)
    lake.put_new(
        key, json.dumps({"user_id": user_id, "version": version, "accepted_at": now.isoformat()}).encode()
    )
    accepted_at = terms_accepted_at(lake, user_id, version)
    assert accepted_at is not None  # just written, and never deleted
    append(
        lake,
        AuditRecord(
            business_key=f"creator-terms:{user_id}:{version}",
            acted_at=accepted_at,
            actor=user_id,
            action="terms.accepted",
            object_type="creator_terms",
            object_id=version,
            after={"user_id": user_id, "version": version},
        ),
    )
    return accepted_at


def terms_accepted_at(lake: Lake, user_id: str, version: str) -> dt.datetime | None:
    """When ``user_id`` accepted ``version`` of the creator terms; None if they never did."""
    key = creator_terms_key(user_id, version)
    if not lake.exists(key):
        return None
    return dt.datetime.fromisoformat(json.loads(lake.get_bytes(key))["accepted_at"])
