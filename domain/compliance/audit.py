"""The audit log's records (SPEC 9): one per operator or money action, never changed or deleted.

A record names who acted (a user id, ``operator:{name}``, ``pipeline`` or ``stripe``), what they did
(``review.approved``, ``model.suspended``, ``refund.created``, ``payout.transferred``,
``account.updated``, ``terms.accepted``, ``self_exclusion.started``, ...), when, on which object, and
the object's relevant state before and after (JSON, ``null`` where there was none). Its id is derived
from the action's business key (``payout:{creator}:{month}``, ``refund:{subscription}``, a Stripe event
id, ...), so retrying an action, or re-running the step that took it, appends nothing: the store
writes each id create-if-absent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from domain.tables.schemas import UTC_TS

AUDIT: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "at": UTC_TS,
    "actor": pl.String(),
    "action": pl.String(),
    "object_type": pl.String(),
    "object_id": pl.String(),
    "before": pl.String(),
    "after": pl.String(),
    "business_key": pl.String(),
}
"""The ``audit`` table: ``before`` and ``after`` are canonical JSON text (keys sorted)."""

ACTION = re.compile(r"[a-z_]+\.[a-z_]+")
"""``{object}.{verb}``: ``review.approved``, ``payout.awaiting_onboarding``."""


@dataclass(frozen=True)
class AuditRecord:
    """One action; :attr:`record_id` is a digest of :attr:`business_key`."""

    business_key: str
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.business_key:
            raise ValueError("an audit record needs a business key (what makes a retried action the same)")
        if not ACTION.fullmatch(self.action):
            raise ValueError(f"audit action {self.action!r} is not of the form object.verb")
        if not (self.actor and self.object_type and self.object_id):
            raise ValueError(f"audit record {self.business_key!r} needs an actor, an object type and an id")
        if self.at.tzinfo is None:
            raise ValueError(f"audit record {self.business_key!r}: the time must be timezone-aware")

    @property
    def record_id(self) -> str:
        return hashlib.sha256(self.business_key.encode()).hexdigest()[:32]

    def row(self) -> dict[str, Any]:
        """The record as a row of :data:`AUDIT`."""
        return {
            "record_id": self.record_id,
            "at": self.at.astimezone(dt.UTC),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": _canonical(self.before),
            "after": _canonical(self.after),
            "business_key": self.business_key,
        }


def _canonical(state: dict[str, Any] | None) -> str | None:
    return None if state is None else json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
